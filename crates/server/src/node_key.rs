//! The node key: a 256-bit AES-GCM key in a file (mode `0600`) that seals what the KMS
//! node keeps secret in its store (access-key secrets, HSM access credentials, instance CA
//! keys, the management CA key). Every node over one database needs the same file; the
//! store holds a check value sealed under it, so a node with another key refuses to start
//! instead of failing request by request.

use std::fs;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use strongroom_crypto::random;
use strongroom_crypto::seal::{SEALING_KEY_LEN, SealingKey};
use strongroom_crypto::secret::SecretBytes;
use strongroom_store::Store;

/// The setting that holds the check value.
pub(crate) const CHECK_SETTING: &str = "node-key-check";
const CHECK_PLAINTEXT: &[u8] = b"strongroom node key check v1";

/// Why the node key could not be loaded or checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeKeyError {
    /// The file could not be read or written.
    #[error("node key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is absent and may not be made: the database was initialised by another
    /// node, whose key file this node needs.
    #[error(
        "node key file {path} does not exist, and this database was initialised with a node \
         key: copy that file here (every node over one database needs the same node key file)"
    )]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// The file does not hold a key.
    #[error("node key file {path} is not a {SEALING_KEY_LEN}-byte key ({len} bytes)")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// The key does not open the database's check value.
    #[error(
        "the node key {path} is not the key this database was initialised with; every node \
         over one database needs the same node key file"
    )]
    WrongKey {
        /// The file.
        path: PathBuf,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] strongroom_store::StoreError),
    /// The cipher failed.
    #[error("node key: {0}")]
    Crypto(#[from] strongroom_crypto::error::CryptoError),
}

/// The loaded node key.
pub struct NodeKey {
    key: SealingKey,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeKey(..)")
    }
}

impl NodeKey {
    /// Reads the key at `path`, creating it (`0600`, never overwriting) when `create`
    /// and the file is absent.
    ///
    /// # Errors
    /// [`NodeKeyError::Io`] or [`NodeKeyError::Malformed`].
    pub fn load(path: &Path, create: bool) -> Result<Self, NodeKeyError> {
        let io = |source| NodeKeyError::Io {
            path: path.to_owned(),
            source,
        };
        let bytes = match fs::File::open(path) {
            Ok(mut file) => {
                let mut bytes = SecretBytes::zeroed(0).into_zeroizing();
                file.read_to_end(&mut bytes).map_err(io)?;
                SecretBytes::from(bytes)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let mut fresh = SecretBytes::zeroed(SEALING_KEY_LEN);
                random::fill(fresh.expose_secret_mut())?;
                let mut options = fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt as _;
                    options.mode(0o600);
                }
                let mut file = options.open(path).map_err(io)?;
                file.write_all(fresh.expose_secret()).map_err(io)?;
                file.sync_all().map_err(io)?;
                fresh
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(NodeKeyError::Missing {
                    path: path.to_owned(),
                });
            }
            Err(e) => return Err(io(e)),
        };
        if bytes.len() != SEALING_KEY_LEN {
            return Err(NodeKeyError::Malformed {
                path: path.to_owned(),
                len: bytes.len(),
            });
        }
        Ok(Self {
            key: SealingKey::from_bytes(&bytes)?,
        })
    }

    /// Checks the key against the store's check value, storing ours when the store has
    /// none (the first node to start wins; a racing node then checks against it).
    ///
    /// # Errors
    /// [`NodeKeyError::WrongKey`] if the store was initialised with another key.
    pub async fn check<S: Store>(&self, store: &S, path: &Path) -> Result<(), NodeKeyError> {
        if store.get_setting(CHECK_SETTING).await?.is_none() {
            let sealed = self.key.seal(CHECK_PLAINTEXT, CHECK_SETTING.as_bytes())?;
            store.insert_setting(CHECK_SETTING, &sealed).await?;
        }
        let stored = store.get_setting(CHECK_SETTING).await?.unwrap_or_default();
        match self.key.open(&stored, CHECK_SETTING.as_bytes()) {
            Ok(plain) if plain.expose_secret() == CHECK_PLAINTEXT => Ok(()),
            _ => Err(NodeKeyError::WrongKey {
                path: path.to_owned(),
            }),
        }
    }

    /// Seals `plaintext` for the record `purpose` (the AAD: a sealed value cannot be moved
    /// to another record).
    ///
    /// # Errors
    /// [`NodeKeyError::Crypto`] if the cipher fails.
    pub fn seal(&self, plaintext: &[u8], purpose: &str) -> Result<Vec<u8>, NodeKeyError> {
        Ok(self.key.seal(plaintext, purpose.as_bytes())?)
    }

    /// Opens a value sealed for `purpose`.
    ///
    /// # Errors
    /// [`NodeKeyError::Crypto`] for a wrong key, wrong purpose or tampering.
    pub fn open(&self, sealed: &[u8], purpose: &str) -> Result<SecretBytes, NodeKeyError> {
        Ok(self.key.open(sealed, purpose.as_bytes())?)
    }
}

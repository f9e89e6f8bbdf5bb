//! The node's state on disk: one file, `state.json`, in the node's state directory,
//! with everything secret sealed.
//!
//! Layout of `state.json`:
//! - in the clear: format version, node id, zone label, a write generation, the
//!   argon2id parameters and salt, and the *key slots*;
//! - `sealed`: the [`SecretState`] (domain key, certificates, server key, port
//!   properties, cluster membership, the enrolment key) as JSON, sealed with AES-256-GCM
//!   under a random *state key*, the node id in the AAD.
//!
//! The state key is stored only wrapped, once per credential (LUKS-style slots): under
//! a key derived from the security officer's password with argon2id, and optionally
//! under an unseal-key file (32 random bytes, hex). Any one credential unseals the node;
//! a wrong one fails the AEAD check and reveals nothing.
//!
//! Durability: every write goes to `state.json.tmp`, is fsynced, renamed over
//! `state.json`, and the directory is fsynced. A crash at any point leaves either the
//! old or the new file, never a torn one, and a write that returned has reached the disk.
//! A lock file keeps two processes off one directory.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use strongroom_crypto::passphrase::{Argon2Params, derive_sealing_key};
use strongroom_crypto::random;
use strongroom_crypto::seal::SealingKey;
use strongroom_crypto::secret::SecretBytes;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The state file's name inside the state directory.
pub const STATE_FILE: &str = "state.json";
/// The lock file's name.
pub const LOCK_FILE: &str = "lock";
/// The format this code writes and reads.
pub const FORMAT: u32 = 1;
/// Bytes in an unseal key.
pub const UNSEAL_KEY_LEN: usize = 32;
const SALT_LEN: usize = 16;
const STATE_AAD: &[u8] = b"strongroom-hsm-state/1";
const SLOT_AAD: &[u8] = b"strongroom-hsm-slot/1";

/// Why the state could not be read, unsealed or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// A file system operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Another process holds the directory's lock.
    #[error("{0} is in use by another HSM node process")]
    Locked(PathBuf),
    /// The directory holds no initialised node.
    #[error("{0} holds no initialised HSM node (no {STATE_FILE})")]
    NotInitialised(PathBuf),
    /// The directory already holds a node.
    #[error("{0} already holds an initialised HSM node")]
    AlreadyInitialised(PathBuf),
    /// The state file is not one this version can read.
    #[error("{path} is not a valid state file: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The credential opens no key slot.
    #[error("the credential does not unseal this node")]
    WrongCredential,
    /// The node has no slot for this kind of credential.
    #[error("this node has no {0} key slot")]
    NoSuchSlot(&'static str),
    /// A bad unseal-key file.
    #[error("unseal key file {path}: {reason}")]
    BadUnsealKey {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// A crypto-core failure.
    #[error(transparent)]
    Crypto(#[from] strongroom_crypto::error::CryptoError),
    /// The sealed state did not encode or decode.
    #[error("state encoding: {0}")]
    Encoding(String),
}

/// Results of state operations.
pub type Result<T> = core::result::Result<T, StateError>;

/// A credential that unseals a node.
#[derive(Debug)]
pub enum Credential {
    /// The security officer's password.
    Password(SecretBytes),
    /// The contents of an unseal-key file (32 bytes).
    UnsealKey(SecretBytes),
}

impl Credential {
    /// Reads an unseal-key file: 64 hex digits (whitespace around them ignored).
    ///
    /// # Errors
    /// [`StateError::Io`] or [`StateError::BadUnsealKey`].
    pub fn from_unseal_key_file(path: &Path) -> Result<Self> {
        let text = Zeroizing::new(fs::read_to_string(path).map_err(|source| StateError::Io {
            action: "reading",
            path: path.to_owned(),
            source,
        })?);
        let bad = |reason| StateError::BadUnsealKey {
            path: path.to_owned(),
            reason,
        };
        let bytes = Zeroizing::new(hex::decode(text.trim()).map_err(|_| bad("not hex"))?);
        if bytes.len() != UNSEAL_KEY_LEN {
            return Err(bad("not 32 bytes (64 hex digits)"));
        }
        Ok(Self::UnsealKey(SecretBytes::copy_from(&bytes)))
    }

    fn slot_name(&self) -> &'static str {
        match self {
            Self::Password(_) => "password",
            Self::UnsealKey(_) => "unseal-key",
        }
    }
}

/// Writes a new random unseal key to `path` (mode 0600, refusing to overwrite).
///
/// # Errors
/// [`StateError::Io`] if the file exists or cannot be written.
pub fn create_unseal_key_file(path: &Path) -> Result<Credential> {
    let key = random::secret_bytes(UNSEAL_KEY_LEN)?;
    let text = Zeroizing::new(format!("{}\n", hex::encode(key.expose_secret())));
    let io = |action, source| StateError::Io {
        action,
        path: path.to_owned(),
        source,
    };
    let mut file = private_options()
        .create_new(true)
        .open(path)
        .map_err(|e| io("creating", e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| io("writing", e))?;
    file.sync_all().map_err(|e| io("syncing", e))?;
    Ok(Credential::UnsealKey(key))
}

/// The host port's properties (the guide's "host-port properties").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortProperties {
    /// TCP keep-alive idle time in seconds; 0 turns keep-alive off.
    pub keep_alive_secs: u32,
    /// Bytes of vendor message header before each frame. Strongroom frames carry their
    /// own length prefix, so only 0 is accepted.
    pub header_len: u32,
    /// Message encoding: only `ASCII` (the guide's value; frames are protobuf bytes).
    pub encoding: String,
    /// Two-way (mutual) TLS. Strongroom's host port is always two-way.
    pub two_way: bool,
    /// `TLSv1.2` (TLS 1.2 only) or `TLSv1.3` (TLS 1.3, and 1.2 for older clients).
    pub protocol: String,
}

impl Default for PortProperties {
    /// The guide's values: keep-alive 60 s, header length 0, ASCII, two-way, TLS 1.2.
    fn default() -> Self {
        Self {
            keep_alive_secs: 60,
            header_len: 0,
            encoding: "ASCII".to_owned(),
            two_way: true,
            protocol: "TLSv1.2".to_owned(),
        }
    }
}

impl PortProperties {
    /// Checks every property, saying what is wrong with the first bad one.
    ///
    /// # Errors
    /// A message for the officer.
    pub fn validate(&self) -> core::result::Result<(), String> {
        if self.keep_alive_secs > 7200 {
            return Err(format!(
                "keep-alive {} s is over the limit of 7200 s",
                self.keep_alive_secs
            ));
        }
        if self.header_len != 0 {
            return Err(format!(
                "message header length {} is not supported: Strongroom frames carry their own length prefix, set 0",
                self.header_len
            ));
        }
        if self.encoding != "ASCII" {
            return Err(format!(
                "encoding {:?} is not supported: set ASCII",
                self.encoding
            ));
        }
        if !self.two_way {
            return Err(
                "one-way communication is not supported: the host port always authenticates clients (two-way TLS)"
                    .to_owned(),
            );
        }
        self.tls_versions().map(|_| ())
    }

    /// The TLS versions the protocol property allows.
    ///
    /// # Errors
    /// A message for an unknown protocol.
    pub fn tls_versions(&self) -> core::result::Result<strongroom_certs::tls::TlsVersions, String> {
        match self.protocol.as_str() {
            "TLSv1.2" => Ok(strongroom_certs::tls::TlsVersions::Tls12Only),
            "TLSv1.3" => Ok(strongroom_certs::tls::TlsVersions::Tls12And13),
            other => Err(format!(
                "protocol {other:?} is not supported: set TLSv1.2 or TLSv1.3"
            )),
        }
    }
}

/// A node's place in its cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Holds the cluster's domain key from the start and syncs it to members.
    Primary,
    /// Receives the domain key and configuration from its primary.
    Member,
}

impl Role {
    /// The word used on the wire and in status output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Member => "member",
        }
    }
}

/// Another node of the cluster, as this node knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// Its officer-channel address, `host:port`.
    pub address: String,
    /// Its node id.
    pub node_id: String,
    /// Its zone label.
    pub zone: String,
    /// SHA-256 of its identity certificate, hex.
    pub identity_fingerprint: String,
    /// Its enrolment public key (DER SubjectPublicKeyInfo, RSA-2048), hex; the domain
    /// key is sent to it encrypted under this key.
    pub enrollment_public_key: String,
    /// The domain-key fingerprint it reported after the last sync; empty if never.
    #[serde(default)]
    pub synced_fingerprint: String,
}

/// The server certificate and key the host port presents.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct ServerIdentity {
    /// The chain, leaf first, DER, hex.
    pub chain: Vec<String>,
    /// The private key, PKCS#8 DER, hex.
    pub private_key: String,
}

impl core::fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerIdentity")
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// Everything sealed.
#[derive(Clone, Serialize, Deserialize)]
pub struct SecretState {
    /// Primary or member.
    pub role: Role,
    /// The domain key, hex; `None` on a member not yet synced.
    pub domain_key: Option<String>,
    /// Client certificates imported by the officer, PEM.
    pub client_certificates: Vec<String>,
    /// The host port's certificate and key, once imported.
    pub server: Option<ServerIdentity>,
    /// The host port's properties.
    pub properties: PortProperties,
    /// On a primary: the enrolled members.
    pub members: Vec<Peer>,
    /// On a member: the primary it accepts syncs from.
    pub primary: Option<Peer>,
    /// This node's enrolment key (RSA-2048 PKCS#8 DER, hex).
    pub enrollment_key: String,
}

impl Drop for SecretState {
    fn drop(&mut self) {
        if let Some(key) = &mut self.domain_key {
            key.zeroize();
        }
        self.enrollment_key.zeroize();
    }
}

impl core::fmt::Debug for SecretState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SecretState")
            .field("role", &self.role)
            .field("has_domain_key", &self.domain_key.is_some())
            .field("client_certificates", &self.client_certificates.len())
            .field("server", &self.server.is_some())
            .field("properties", &self.properties)
            .field("members", &self.members)
            .field("primary", &self.primary)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kdf {
    salt: String,
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
}

impl Kdf {
    fn params(&self) -> Argon2Params {
        Argon2Params {
            memory_kib: self.memory_kib,
            iterations: self.iterations,
            parallelism: self.parallelism,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Slots {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unseal_key: Option<String>,
}

/// The clear part of `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    format: u32,
    node_id: String,
    zone: String,
    generation: u64,
    kdf: Kdf,
    slots: Slots,
    sealed: String,
}

/// An open state directory: locked for this process, header read, and — once
/// unsealed — able to write new state.
pub struct NodeStore {
    dir: PathBuf,
    file: StateFile,
    state_key: Option<SealingKey>,
    _lock: File,
}

impl core::fmt::Debug for NodeStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NodeStore")
            .field("dir", &self.dir)
            .field("node_id", &self.file.node_id)
            .field("generation", &self.file.generation)
            .field("unsealed", &self.state_key.is_some())
            .finish_non_exhaustive()
    }
}

/// What a new node starts with.
#[derive(Debug)]
pub struct InitOptions<'a> {
    /// The node's zone label (free text, e.g. `cn-hangzhou-h`).
    pub zone: &'a str,
    /// The officer's password.
    pub password: &'a SecretBytes,
    /// An unseal key for a second slot, if any.
    pub unseal_key: Option<&'a SecretBytes>,
    /// argon2id cost.
    pub kdf: Argon2Params,
}

impl NodeStore {
    /// Whether `dir` holds an initialised node.
    pub fn is_initialised(dir: &Path) -> bool {
        dir.join(STATE_FILE).is_file()
    }

    /// Initialises a node in `dir` (created if missing, mode 0700): a fresh node id, a
    /// primary with a new domain key, an enrolment key, the guide's port properties.
    /// The store comes back unsealed.
    ///
    /// # Errors
    /// [`StateError::AlreadyInitialised`], I/O, or crypto failures.
    pub fn init(dir: &Path, options: &InitOptions<'_>) -> Result<(Self, SecretState)> {
        create_private_dir(dir)?;
        let lock = lock_dir(dir)?;
        if Self::is_initialised(dir) {
            return Err(StateError::AlreadyInitialised(dir.to_owned()));
        }
        let domain = strongroom_crypto::blob::DomainKey::generate()?;
        let enrollment = strongroom_crypto::material::KeyMaterial::generate(
            strongroom_crypto::spec::KeySpec::Rsa2048,
        )?;
        let state = SecretState {
            role: Role::Primary,
            domain_key: Some(hex::encode(domain.expose_secret().expose_secret())),
            client_certificates: Vec::new(),
            server: None,
            properties: PortProperties::default(),
            members: Vec::new(),
            primary: None,
            enrollment_key: hex::encode(enrollment.to_secret_bytes()?.expose_secret()),
        };
        let node_id = format!("hsm-{}", hex::encode(random::public_bytes(8)?));
        let salt = random::public_bytes(SALT_LEN)?;
        let kdf = Kdf {
            salt: hex::encode(&salt),
            memory_kib: options.kdf.memory_kib,
            iterations: options.kdf.iterations,
            parallelism: options.kdf.parallelism,
        };
        let state_key_bytes = random::secret_bytes(32)?;
        let state_key = SealingKey::from_bytes(&state_key_bytes)?;
        let mut slots = Slots::default();
        let password_kek =
            derive_sealing_key(options.password.expose_secret(), &salt, kdf.params())?;
        slots.password = Some(hex::encode(password_kek.seal(
            state_key_bytes.expose_secret(),
            &slot_aad(&node_id, "password"),
        )?));
        if let Some(unseal) = options.unseal_key {
            let kek = SealingKey::from_bytes(unseal)?;
            slots.unseal_key = Some(hex::encode(kek.seal(
                state_key_bytes.expose_secret(),
                &slot_aad(&node_id, "unseal-key"),
            )?));
        }
        let mut store = Self {
            dir: dir.to_owned(),
            file: StateFile {
                format: FORMAT,
                node_id,
                zone: options.zone.to_owned(),
                generation: 0,
                kdf,
                slots,
                sealed: String::new(),
            },
            state_key: Some(state_key),
            _lock: lock,
        };
        store.save(&state)?;
        Ok((store, state))
    }

    /// Opens an initialised node's directory, sealed.
    ///
    /// # Errors
    /// [`StateError::NotInitialised`], [`StateError::Locked`], [`StateError::Corrupt`].
    pub fn open(dir: &Path) -> Result<Self> {
        let lock = lock_dir(dir)?;
        let path = dir.join(STATE_FILE);
        if !path.is_file() {
            return Err(StateError::NotInitialised(dir.to_owned()));
        }
        let text = fs::read(&path).map_err(|source| StateError::Io {
            action: "reading",
            path: path.clone(),
            source,
        })?;
        let file: StateFile = serde_json::from_slice(&text).map_err(|e| StateError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if file.format != FORMAT {
            return Err(StateError::Corrupt {
                path,
                reason: format!("format {} (this version reads {FORMAT})", file.format),
            });
        }
        Ok(Self {
            dir: dir.to_owned(),
            file,
            state_key: None,
            _lock: lock,
        })
    }

    /// The node id.
    pub fn node_id(&self) -> &str {
        &self.file.node_id
    }

    /// The zone label.
    pub fn zone(&self) -> &str {
        &self.file.zone
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many times the state was written.
    pub fn generation(&self) -> u64 {
        self.file.generation
    }

    /// Whether [`NodeStore::unseal`] has succeeded.
    pub fn is_unsealed(&self) -> bool {
        self.state_key.is_some()
    }

    /// Unseals with a credential and returns the secret state.
    ///
    /// # Errors
    /// [`StateError::WrongCredential`] (the same for a wrong password or a wrong key),
    /// [`StateError::NoSuchSlot`], or [`StateError::Corrupt`].
    pub fn unseal(&mut self, credential: &Credential) -> Result<SecretState> {
        let slot_name = credential.slot_name();
        let wrapped = match credential {
            Credential::Password(_) => self.file.slots.password.as_ref(),
            Credential::UnsealKey(_) => self.file.slots.unseal_key.as_ref(),
        }
        .ok_or(StateError::NoSuchSlot(slot_name))?;
        let wrapped = hex::decode(wrapped).map_err(|_| self.corrupt("key slot is not hex"))?;
        let kek = match credential {
            Credential::Password(password) => {
                let salt = hex::decode(&self.file.kdf.salt)
                    .map_err(|_| self.corrupt("salt is not hex"))?;
                derive_sealing_key(password.expose_secret(), &salt, self.file.kdf.params())?
            }
            Credential::UnsealKey(key) => SealingKey::from_bytes(key)?,
        };
        let state_key_bytes = kek
            .open(&wrapped, &slot_aad(&self.file.node_id, slot_name))
            .map_err(|_| StateError::WrongCredential)?;
        let state_key = SealingKey::from_bytes(&state_key_bytes)?;
        let sealed =
            hex::decode(&self.file.sealed).map_err(|_| self.corrupt("sealed state is not hex"))?;
        let json = state_key
            .open(&sealed, &state_aad(&self.file.node_id))
            .map_err(|_| self.corrupt("sealed state does not open under its own state key"))?;
        let state: SecretState = serde_json::from_slice(json.expose_secret())
            .map_err(|e| self.corrupt(&format!("sealed state: {e}")))?;
        self.state_key = Some(state_key);
        Ok(state)
    }

    /// Seals `state` and writes it atomically and durably.
    ///
    /// # Errors
    /// [`StateError::Encoding`] if the store is sealed, or an I/O failure.
    pub fn save(&mut self, state: &SecretState) -> Result<()> {
        let key = self.state_key.as_ref().ok_or_else(|| {
            StateError::Encoding("the node is sealed; nothing can be written".into())
        })?;
        let json = Zeroizing::new(
            serde_json::to_vec(state).map_err(|e| StateError::Encoding(e.to_string()))?,
        );
        let mut next = self.file.clone();
        next.sealed = hex::encode(key.seal(&json, &state_aad(&next.node_id))?);
        next.generation = next.generation.saturating_add(1);
        let text =
            serde_json::to_vec_pretty(&next).map_err(|e| StateError::Encoding(e.to_string()))?;
        write_atomically(&self.dir, STATE_FILE, &text)?;
        self.file = next;
        Ok(())
    }

    fn corrupt(&self, reason: &str) -> StateError {
        StateError::Corrupt {
            path: self.dir.join(STATE_FILE),
            reason: reason.to_owned(),
        }
    }
}

fn state_aad(node_id: &str) -> Vec<u8> {
    [STATE_AAD, b"\0", node_id.as_bytes()].concat()
}

fn slot_aad(node_id: &str, slot: &str) -> Vec<u8> {
    [SLOT_AAD, b"\0", node_id.as_bytes(), b"\0", slot.as_bytes()].concat()
}

fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Creates `dir` (and parents) with mode 0700 if it does not exist.
///
/// # Errors
/// [`StateError::Io`].
pub fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| StateError::Io {
        action: "creating",
        path: dir.to_owned(),
        source,
    })
}

fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let file = private_options()
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|source| StateError::Io {
            action: "opening",
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(StateError::Locked(dir.to_owned())),
        Err(fs::TryLockError::Error(source)) => Err(StateError::Io {
            action: "locking",
            path,
            source,
        }),
    }
}

/// Writes `name` in `dir` as temp file, fsync, rename, fsync of the directory.
///
/// # Errors
/// [`StateError::Io`] naming the step that failed.
pub fn write_atomically(dir: &Path, name: &str, contents: &[u8]) -> Result<()> {
    let target = dir.join(name);
    let temp = dir.join(format!("{name}.tmp"));
    let io = |action, path: &Path, source| StateError::Io {
        action,
        path: path.to_owned(),
        source,
    };
    let mut file = private_options()
        .create(true)
        .truncate(true)
        .open(&temp)
        .map_err(|e| io("creating", &temp, e))?;
    file.write_all(contents)
        .map_err(|e| io("writing", &temp, e))?;
    file.sync_all().map_err(|e| io("syncing", &temp, e))?;
    drop(file);
    fs::rename(&temp, &target).map_err(|e| io("renaming into place", &target, e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("syncing directory", dir, e))
}

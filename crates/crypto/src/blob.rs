//! The domain key and key blobs (DESIGN.md, "Where key material lives").
//!
//! An HSM cluster shares one domain key. Every key version's material is stored by the
//! KMS as a key blob: the material sealed ([`crate::seal`]) under a key derived from
//! the domain key, with AAD binding the key id, the version id and the key spec. A blob
//! copied onto another key, another version or another spec does not open.
//!
//! ```text
//! blob = seal(HKDF-SHA256(domain key, info = "strongroom key blob v1"),
//!             plaintext = material export form (raw bytes or PKCS#8 DER),
//!             aad = "strongroom-key-blob" ‖ 0 ‖ len16(key id) ‖ key id
//!                   ‖ len16(version id) ‖ version id ‖ len16(spec) ‖ spec)
//! ```
//!
//! Length prefixes make the binding unambiguous (`"ab" + "c"` ≠ `"a" + "bc"`).

use core::fmt;

use aws_lc_rs::hkdf::{HKDF_SHA256, KeyType, Salt};

use crate::error::{CryptoError, Result};
use crate::hash;
use crate::material::KeyMaterial;
use crate::random;
use crate::seal::{SEALING_KEY_LEN, SealingKey};
use crate::secret::SecretBytes;
use crate::spec::KeySpec;

/// Length of the domain key.
pub const DOMAIN_KEY_LEN: usize = 32;

const BLOB_INFO: &[u8] = b"strongroom key blob v1";
const FINGERPRINT_INFO: &[u8] = b"strongroom domain key fingerprint v1";
const BLOB_AAD_LABEL: &[u8] = b"strongroom-key-blob";

/// An HSM cluster's shared secret. Never printed; leaves an HSM only sealed.
pub struct DomainKey {
    secret: SecretBytes,
    blob_key: SealingKey,
}

impl DomainKey {
    /// A fresh random domain key (made by the first node of a cluster).
    ///
    /// # Errors
    /// [`CryptoError::Internal`] if the random generator fails.
    pub fn generate() -> Result<Self> {
        Self::from_secret(random::secret_bytes(DOMAIN_KEY_LEN)?)
    }

    /// A domain key from its 32 secret bytes (after unsealing node state or a sync).
    ///
    /// # Errors
    /// [`CryptoError::InvalidLength`] if not 32 bytes.
    pub fn from_secret(secret: SecretBytes) -> Result<Self> {
        if secret.len() != DOMAIN_KEY_LEN {
            return Err(CryptoError::InvalidLength {
                min: DOMAIN_KEY_LEN,
                max: DOMAIN_KEY_LEN,
                actual: secret.len(),
            });
        }
        let blob_key = SealingKey::from_bytes(&derive(&secret, BLOB_INFO, SEALING_KEY_LEN)?)?;
        Ok(Self { secret, blob_key })
    }

    /// The secret bytes, for sealing the node's state or sending to a cluster member
    /// over an authenticated, encrypted channel. Nothing else should call this.
    pub fn expose_secret(&self) -> &SecretBytes {
        &self.secret
    }

    /// A public identifier of the key: 16 bytes derived one-way from it, in hex.
    /// Two nodes with the same fingerprint hold the same domain key.
    ///
    /// # Errors
    /// [`CryptoError::Internal`] if derivation fails.
    pub fn fingerprint(&self) -> Result<String> {
        let derived = derive(&self.secret, FINGERPRINT_INFO, 16)?;
        Ok(hex_lower(derived.expose_secret()))
    }

    /// Seals material into a key blob bound to `binding`.
    ///
    /// # Errors
    /// [`CryptoError::Internal`] if the spec in `binding` is not the material's, or
    /// sealing fails.
    pub fn seal_key(&self, binding: &BlobBinding<'_>, material: &KeyMaterial) -> Result<Vec<u8>> {
        if binding.spec != material.spec() {
            return Err(CryptoError::Internal(
                "blob binding spec differs from material",
            ));
        }
        let plaintext = material.to_secret_bytes()?;
        self.blob_key
            .seal(plaintext.expose_secret(), &binding.aad()?)
    }

    /// Opens a key blob bound to `binding` and parses its material.
    ///
    /// # Errors
    /// [`CryptoError::UnsealFailed`] for a blob of another key, version, spec or
    /// cluster, or a tampered one; [`CryptoError::MalformedSealedData`] for bad framing.
    pub fn open_key(&self, binding: &BlobBinding<'_>, blob: &[u8]) -> Result<KeyMaterial> {
        let plaintext = self.blob_key.open(blob, &binding.aad()?)?;
        KeyMaterial::import(binding.spec, plaintext.expose_secret())
            .map_err(|_| CryptoError::UnsealFailed)
    }
}

impl fmt::Debug for DomainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DomainKey([REDACTED])")
    }
}

/// What a key blob is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobBinding<'a> {
    /// The KMS key id.
    pub key_id: &'a str,
    /// The key version id.
    pub version_id: &'a str,
    /// The key spec.
    pub spec: KeySpec,
}

impl BlobBinding<'_> {
    fn aad(&self) -> Result<Vec<u8>> {
        let mut aad = Vec::with_capacity(64);
        aad.extend_from_slice(BLOB_AAD_LABEL);
        aad.push(0);
        for field in [self.key_id, self.version_id, self.spec.as_str()] {
            let len = u16::try_from(field.len())
                .map_err(|_| CryptoError::Internal("blob binding field too long"))?;
            aad.extend_from_slice(&len.to_be_bytes());
            aad.extend_from_slice(field.as_bytes());
        }
        Ok(aad)
    }
}

struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn derive(secret: &SecretBytes, info: &[u8], len: usize) -> Result<SecretBytes> {
    let prk = Salt::new(HKDF_SHA256, &hash::sha256(b"strongroom hkdf salt v1"))
        .extract(secret.expose_secret());
    let info = [info];
    let okm = prk
        .expand(&info, Len(len))
        .map_err(|_| CryptoError::Internal("HKDF expand"))?;
    let mut out = SecretBytes::zeroed(len);
    okm.fill(out.expose_secret_mut())
        .map_err(|_| CryptoError::Internal("HKDF fill"))?;
    Ok(out)
}

fn hex_lower(bytes: &[u8]) -> String {
    use core::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

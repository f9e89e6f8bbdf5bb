//! Data keys and data key pairs: fresh secrets handed to an application, usually
//! together with a copy encrypted under a KMS key (that part is [`crate::key::Key`]'s).

use crate::error::{CryptoError, Result};
use crate::material::KeyMaterial;
use crate::pem;
use crate::random;
use crate::secret::SecretBytes;
use crate::spec::{KeyFormat, KeySpec};

/// Smallest data key, in bytes.
pub const MIN_DATA_KEY_LEN: usize = 1;
/// Largest data key, in bytes.
pub const MAX_DATA_KEY_LEN: usize = 1024;
/// Data key length when none is asked for.
pub const DEFAULT_DATA_KEY_LEN: usize = 32;

/// A fresh random data key of `len` bytes.
///
/// # Errors
/// [`CryptoError::InvalidLength`] outside 1..=1024 bytes.
pub fn generate_data_key(len: usize) -> Result<SecretBytes> {
    if !(MIN_DATA_KEY_LEN..=MAX_DATA_KEY_LEN).contains(&len) {
        return Err(CryptoError::InvalidLength {
            min: MIN_DATA_KEY_LEN,
            max: MAX_DATA_KEY_LEN,
            actual: len,
        });
    }
    random::secret_bytes(len)
}

/// A generated key pair in the requested encoding.
#[derive(Debug)]
pub struct DataKeyPair {
    /// PKCS#8 PrivateKeyInfo, DER or PEM `PRIVATE KEY` text (as bytes).
    pub private_key: SecretBytes,
    /// SubjectPublicKeyInfo, DER or PEM `PUBLIC KEY` text (as bytes).
    pub public_key: Vec<u8>,
}

/// Generates a key pair of an asymmetric `spec`, encoded as `format`.
///
/// # Errors
/// [`CryptoError::NotAsymmetric`] for symmetric specs.
pub fn generate_key_pair(spec: KeySpec, format: KeyFormat) -> Result<DataKeyPair> {
    if !spec.is_asymmetric() {
        return Err(CryptoError::NotAsymmetric(spec));
    }
    let material = KeyMaterial::generate(spec)?;
    let private_der = material.to_secret_bytes()?;
    let public = material.public_key()?;
    Ok(match format {
        KeyFormat::Der => DataKeyPair {
            private_key: private_der,
            public_key: public.to_der(),
        },
        KeyFormat::Pem => DataKeyPair {
            private_key: pem::encode_secret(pem::PRIVATE_KEY_LABEL, &private_der)?,
            public_key: public.to_pem()?.into_bytes(),
        },
    })
}

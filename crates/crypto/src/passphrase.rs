//! Turning a passphrase (an HSM security officer's credential) into a sealing key with
//! Argon2id (RFC 9106).

use argon2::{Algorithm as Variant, Argon2, Params, Version};

use crate::error::{CryptoError, Result};
use crate::seal::{SEALING_KEY_LEN, SealingKey};
use crate::secret::SecretBytes;

/// Smallest salt accepted, in bytes.
pub const MIN_SALT_LEN: usize = 16;

/// Argon2id cost parameters. Stored next to the salt with whatever they sealed, so the
/// defaults can rise without locking out existing state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Argon2Params {
    /// The default: 64 MiB, 3 passes, 1 lane (RFC 9106 §4's second recommendation,
    /// with one lane for small machines). About a quarter of a second here.
    pub const DEFAULT: Self = Self {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 1,
    };

    /// Cheap parameters for tests only: never use them for real credentials.
    pub const INSECURE_FOR_TESTS: Self = Self {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Derives a sealing key from `passphrase` and `salt`.
///
/// # Errors
/// [`CryptoError::InvalidLength`] for an empty passphrase or a salt under 16 bytes;
/// [`CryptoError::Internal`] for parameters Argon2 refuses.
pub fn derive_sealing_key(
    passphrase: &[u8],
    salt: &[u8],
    params: Argon2Params,
) -> Result<SealingKey> {
    if passphrase.is_empty() {
        return Err(CryptoError::InvalidLength {
            min: 1,
            max: usize::MAX,
            actual: 0,
        });
    }
    if salt.len() < MIN_SALT_LEN {
        return Err(CryptoError::InvalidLength {
            min: MIN_SALT_LEN,
            max: usize::MAX,
            actual: salt.len(),
        });
    }
    let params = Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(SEALING_KEY_LEN),
    )
    .map_err(|_| CryptoError::Internal("invalid Argon2 parameters"))?;
    let mut out = SecretBytes::zeroed(SEALING_KEY_LEN);
    Argon2::new(Variant::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase, salt, out.expose_secret_mut())
        .map_err(|_| CryptoError::Internal("Argon2 derivation"))?;
    SealingKey::from_bytes(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_inputs_same_key_other_inputs_other_key() {
        let salt = [7u8; 16];
        let p = Argon2Params::INSECURE_FOR_TESTS;
        let a = derive_sealing_key(b"officer-password", &salt, p).unwrap();
        let b = derive_sealing_key(b"officer-password", &salt, p).unwrap();
        let c = derive_sealing_key(b"officer-passwore", &salt, p).unwrap();
        let d = derive_sealing_key(b"officer-password", &[8u8; 16], p).unwrap();
        let sealed = a.seal(b"domain key", b"").unwrap();
        assert_eq!(b.open(&sealed, b"").unwrap().expose_secret(), b"domain key");
        assert!(c.open(&sealed, b"").is_err());
        assert!(d.open(&sealed, b"").is_err());
    }

    #[test]
    fn weak_inputs_are_refused() {
        let p = Argon2Params::INSECURE_FOR_TESTS;
        assert!(derive_sealing_key(b"", &[0u8; 16], p).is_err());
        assert!(derive_sealing_key(b"pw", &[0u8; 8], p).is_err());
    }
}

//! Random bytes from the operating system's generator (through aws-lc-rs).

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::error::{CryptoError, Result};
use crate::secret::SecretBytes;

/// Fills `buf` with random bytes.
///
/// # Errors
/// [`CryptoError::Internal`] if the system generator fails.
pub fn fill(buf: &mut [u8]) -> Result<()> {
    SystemRandom::new()
        .fill(buf)
        .map_err(|_| CryptoError::Internal("system random generator failed"))
}

/// `len` random bytes that are secret (data keys, key material, passwords).
///
/// # Errors
/// [`CryptoError::Internal`] if the system generator fails.
pub fn secret_bytes(len: usize) -> Result<SecretBytes> {
    let mut out = SecretBytes::zeroed(len);
    fill(out.expose_secret_mut())?;
    Ok(out)
}

/// `len` random bytes that are not secret (IVs, nonces, salts).
///
/// # Errors
/// [`CryptoError::Internal`] if the system generator fails.
pub fn public_bytes(len: usize) -> Result<Vec<u8>> {
    let mut out = vec![0u8; len];
    fill(&mut out)?;
    Ok(out)
}

/// Adapter so RustCrypto curves (`k256`, `sm2`) draw from the same system generator.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SystemRng;

impl rand_core::TryRng for SystemRng {
    type Error = CryptoError;

    fn try_next_u32(&mut self) -> Result<u32> {
        let mut b = [0u8; 4];
        fill(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64> {
        let mut b = [0u8; 8];
        fill(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<()> {
        fill(dst)
    }
}

impl rand_core::TryCryptoRng for SystemRng {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_random_and_sized() {
        let a = public_bytes(32).unwrap();
        let b = public_bytes(32).unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert_eq!(secret_bytes(0).unwrap().len(), 0);
    }
}

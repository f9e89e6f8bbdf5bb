//! Sealing: AES-256-GCM with a random 96-bit nonce under a 256-bit key, for secrets at
//! rest (key blobs, an HSM node's state). Layout of a sealed value:
//!
//! ```text
//! format (1 byte, 0x01) ‖ nonce (12) ‖ ciphertext ‖ tag (16)
//! ```
//!
//! The format byte is authenticated (it is prefixed to the caller's AAD), so a future
//! layout cannot be confused with this one. Random nonces bound one key to about 2^32
//! seals before the collision risk matters (NIST SP 800-38D §8.3); a domain key seals
//! one blob per key version, far below that.

use core::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};

use crate::error::{CryptoError, Result};
use crate::secret::SecretBytes;

/// Length of a sealing key.
pub const SEALING_KEY_LEN: usize = 32;

const FORMAT_V1: u8 = 1;
const TAG_LEN: usize = 16;

/// Bytes a sealed value adds to its plaintext.
pub const SEAL_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

/// A 256-bit AES-GCM key for sealing secrets at rest.
pub struct SealingKey {
    key: RandomizedNonceKey,
}

impl SealingKey {
    /// A sealing key from 32 secret bytes.
    ///
    /// # Errors
    /// [`CryptoError::InvalidLength`] if `bytes` is not 32 bytes long.
    pub fn from_bytes(bytes: &SecretBytes) -> Result<Self> {
        if bytes.len() != SEALING_KEY_LEN {
            return Err(CryptoError::InvalidLength {
                min: SEALING_KEY_LEN,
                max: SEALING_KEY_LEN,
                actual: bytes.len(),
            });
        }
        let key = RandomizedNonceKey::new(&AES_256_GCM, bytes.expose_secret())
            .map_err(|_| CryptoError::Internal("sealing key setup"))?;
        Ok(Self { key })
    }

    /// Seals `plaintext`, binding `aad` (which is not stored; opening needs it again).
    ///
    /// # Errors
    /// [`CryptoError::Internal`] if the cipher fails.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let mut in_out = plaintext.to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(bound_aad(aad)), &mut in_out)
            .map_err(|_| CryptoError::Internal("sealing"))?;
        let mut out = Vec::with_capacity(SEAL_OVERHEAD + plaintext.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(nonce.as_ref());
        out.extend_from_slice(&in_out);
        Ok(out)
    }

    /// Opens a sealed value with the same `aad`.
    ///
    /// # Errors
    /// [`CryptoError::MalformedSealedData`] for bad framing, [`CryptoError::UnsealFailed`]
    /// for a wrong key, wrong AAD or any tampering.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<SecretBytes> {
        let (format, rest) = sealed
            .split_first()
            .ok_or(CryptoError::MalformedSealedData("empty"))?;
        if *format != FORMAT_V1 {
            return Err(CryptoError::MalformedSealedData("unknown format version"));
        }
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::MalformedSealedData("too short"));
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::UnsealFailed)?;
        let mut in_out = SecretBytes::copy_from(ciphertext);
        let len = self
            .key
            .open_in_place(nonce, Aad::from(bound_aad(aad)), in_out.expose_secret_mut())
            .map_err(|_| CryptoError::UnsealFailed)?
            .len();
        Ok(SecretBytes::copy_from(
            in_out
                .expose_secret()
                .get(..len)
                .ok_or(CryptoError::UnsealFailed)?,
        ))
    }
}

fn bound_aad(aad: &[u8]) -> Vec<u8> {
    let mut bound = Vec::with_capacity(1 + aad.len());
    bound.push(FORMAT_V1);
    bound.extend_from_slice(aad);
    bound
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealingKey([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random;

    fn key() -> SealingKey {
        SealingKey::from_bytes(&random::secret_bytes(32).unwrap()).unwrap()
    }

    #[test]
    fn seal_open_round_trip_and_aad_binding() {
        let k = key();
        let sealed = k.seal(b"state", b"ctx").unwrap();
        assert_eq!(sealed.len(), SEAL_OVERHEAD + 5);
        assert_eq!(k.open(&sealed, b"ctx").unwrap().expose_secret(), b"state");
        assert_eq!(k.open(&sealed, b"other"), Err(CryptoError::UnsealFailed));
        assert_eq!(key().open(&sealed, b"ctx"), Err(CryptoError::UnsealFailed));
    }

    #[test]
    fn tampering_and_framing_are_refused() {
        let k = key();
        let sealed = k.seal(b"state", b"").unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(k.open(&bad, b"").is_err(), "flip at {i} accepted");
        }
        assert_eq!(
            k.open(&[], b""),
            Err(CryptoError::MalformedSealedData("empty"))
        );
        assert_eq!(
            k.open(&sealed[..20], b""),
            Err(CryptoError::MalformedSealedData("too short"))
        );
        assert!(SealingKey::from_bytes(&SecretBytes::zeroed(16)).is_err());
    }
}

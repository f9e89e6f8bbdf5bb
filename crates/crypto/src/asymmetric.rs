//! Key pairs, one module per family. Each family has a `Private` (generate, PKCS#8 in
//! and out, sign, decrypt) and a `Public` (SubjectPublicKeyInfo in and out, verify,
//! encrypt). [`crate::material`] and [`crate::public`] dispatch to them by key spec.
//!
//! Signature encodings: RSA raw big-endian of modulus length; ECDSA and SM2 as DER
//! `SEQUENCE { r INTEGER, s INTEGER }`. A signature that does not decode simply does
//! not verify (`false`), it is not an error.

pub(crate) mod p256;
pub(crate) mod rsa;
pub(crate) mod secp256k1;
pub(crate) mod sm2;

use crate::error::{CryptoError, Result};
use crate::spec::MessageType;

/// Length of every digest a DIGEST message may carry (SHA-256 and SM3).
pub(crate) const DIGEST_LEN: usize = 32;

/// Checks a DIGEST message's length; RAW messages pass.
pub(crate) fn check_digest(message: &[u8], message_type: MessageType) -> Result<()> {
    if message_type == MessageType::Digest && message.len() != DIGEST_LEN {
        return Err(CryptoError::InvalidDigestLength {
            expected: DIGEST_LEN,
            actual: message.len(),
        });
    }
    Ok(())
}

//! PEM armour for public and private keys (RFC 7468), LF line endings.

use crate::error::{CryptoError, Result};
use crate::secret::SecretBytes;

/// Label of a SubjectPublicKeyInfo.
pub const PUBLIC_KEY_LABEL: &str = "PUBLIC KEY";
/// Label of a PKCS#8 PrivateKeyInfo.
pub const PRIVATE_KEY_LABEL: &str = "PRIVATE KEY";

/// Armours DER bytes under `label`.
///
/// # Errors
/// [`CryptoError::Internal`] only if the encoder fails (it does not for valid labels).
pub fn encode(label: &str, der: &[u8]) -> Result<String> {
    pem_rfc7468::encode_string(label, pem_rfc7468::LineEnding::LF, der)
        .map_err(|_| CryptoError::Internal("PEM encoding"))
}

/// Armours secret DER bytes (a private key) into a secret buffer.
///
/// # Errors
/// [`CryptoError::Internal`] only if the encoder fails.
pub fn encode_secret(label: &str, der: &SecretBytes) -> Result<SecretBytes> {
    let text = zeroize::Zeroizing::new(encode(label, der.expose_secret())?);
    Ok(SecretBytes::copy_from(text.as_bytes()))
}

/// Removes the armour, checking the label. Returns `None` for anything that is not a
/// single well-formed PEM block with that label.
pub fn decode(expected_label: &str, text: &str) -> Option<Vec<u8>> {
    let (label, der) = pem_rfc7468::decode_vec(text.trim().as_bytes()).ok()?;
    (label == expected_label).then_some(der)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_label_check() {
        let pem = encode(PUBLIC_KEY_LABEL, &[1, 2, 3]).unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert_eq!(decode(PUBLIC_KEY_LABEL, &pem), Some(vec![1, 2, 3]));
        assert_eq!(decode(PRIVATE_KEY_LABEL, &pem), None);
        assert_eq!(decode(PUBLIC_KEY_LABEL, "not pem"), None);
    }
}

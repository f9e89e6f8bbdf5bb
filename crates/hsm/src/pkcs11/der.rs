//! The little DER the PKCS#11 backend writes itself: SubjectPublicKeyInfo from a token's
//! public key attributes, ECDSA signatures from the token's raw `r ‖ s`, the SHA-256
//! DigestInfo prefix of PKCS#1 v1.5 signatures, and the curve OIDs a token takes as
//! `CKA_EC_PARAMS`.
//!
//! Everything written here is parsed back by the crypto core before it leaves the
//! backend (`PublicKey::from_der`), so an encoding mistake shows up as an error, never
//! as a key the KMS cannot use.

use crate::error::{HsmError, Result};

/// `CKA_EC_PARAMS` of NIST P-256: the DER OID 1.2.840.10045.3.1.7.
pub(super) const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];

/// `CKA_EC_PARAMS` of secp256k1: the DER OID 1.3.132.0.10.
pub(super) const SECP256K1_PARAMS: &[u8] = &[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x0A];

/// The DER `DigestInfo` prefix for SHA-256 (RFC 8017 §9.2, note 1): what `CKM_RSA_PKCS`
/// signs in front of a 32-byte digest to make an RSASSA-PKCS1-v1_5 SHA-256 signature.
pub(super) const SHA256_DIGEST_INFO_PREFIX: &[u8] = &[
    0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// `AlgorithmIdentifier { rsaEncryption, NULL }`.
const RSA_ENCRYPTION: &[u8] = &[
    0x30, 0x0D, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01, 0x05, 0x00,
];

/// The OID `id-ecPublicKey` (1.2.840.10045.2.1), DER.
const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];

/// Length of one coordinate or scalar on the 256-bit curves.
const SCALAR_LEN: usize = 32;

/// The order `n` of secp256k1.
const SECP256K1_ORDER: [u8; SCALAR_LEN] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE,
    0xBA, 0xAE, 0xDC, 0xE6, 0xAF, 0x48, 0xA0, 0x3B, 0xBF, 0xD2, 0x5E, 0x8C, 0xD0, 0x36, 0x41, 0x41,
];

/// `⌊n / 2⌋` of secp256k1: an `s` above it is "high".
const SECP256K1_HALF_ORDER: [u8; SCALAR_LEN] = [
    0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0x5D, 0x57, 0x6E, 0x73, 0x57, 0xA4, 0x50, 0x1D, 0xDF, 0xE9, 0x2F, 0x46, 0x68, 0x1B, 0x20, 0xA0,
];

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_SEQUENCE: u8 = 0x30;

/// DER SubjectPublicKeyInfo of an RSA key from `CKA_MODULUS` and `CKA_PUBLIC_EXPONENT`
/// (unsigned big-endian, as PKCS#11 stores them).
pub(super) fn rsa_spki(modulus: &[u8], exponent: &[u8]) -> Result<Vec<u8>> {
    let mut key = unsigned_integer(modulus)?;
    key.extend_from_slice(&unsigned_integer(exponent)?);
    let key = tlv(TAG_SEQUENCE, &key)?;
    let mut body = RSA_ENCRYPTION.to_vec();
    body.extend_from_slice(&bit_string(&key)?);
    tlv(TAG_SEQUENCE, &body)
}

/// DER SubjectPublicKeyInfo of an EC key on the named curve `params` (a DER OID, as in
/// `CKA_EC_PARAMS`) with the uncompressed `point`.
pub(super) fn ec_spki(params: &[u8], point: &[u8]) -> Result<Vec<u8>> {
    let mut algorithm = EC_PUBLIC_KEY.to_vec();
    algorithm.extend_from_slice(params);
    let mut body = tlv(TAG_SEQUENCE, &algorithm)?;
    body.extend_from_slice(&bit_string(point)?);
    tlv(TAG_SEQUENCE, &body)
}

/// The uncompressed point `04 ‖ x ‖ y` of a 256-bit curve from `CKA_EC_POINT`, which
/// PKCS#11 wants DER-wrapped in an OCTET STRING; some tokens return it bare.
pub(super) fn ec_point(attribute: &[u8]) -> Option<&[u8]> {
    const POINT_LEN: usize = 1 + 2 * SCALAR_LEN;
    match attribute {
        [TAG_OCTET_STRING, 0x41, point @ ..] if point.len() == POINT_LEN => Some(point),
        [0x04, ..] if attribute.len() == POINT_LEN => Some(attribute),
        _ => None,
    }
}

/// A DER `SEQUENCE { r INTEGER, s INTEGER }` from the raw `r ‖ s` that `CKM_ECDSA`
/// returns on a 256-bit curve. With `low_s` (secp256k1), an `s` above `n/2` is replaced
/// by `n - s`: both are valid, but verifiers in that ecosystem (k256, Bitcoin) accept
/// only the low one.
pub(super) fn ecdsa_signature(raw: &[u8], low_s: bool) -> Result<Vec<u8>> {
    let (r, s) = raw
        .split_at_checked(SCALAR_LEN)
        .filter(|(_, s)| s.len() == SCALAR_LEN)
        .ok_or_else(|| {
            HsmError::internal(format!(
                "the token returned a {}-byte ECDSA signature, expected 64",
                raw.len()
            ))
        })?;
    let mut s: [u8; SCALAR_LEN] = s
        .try_into()
        .map_err(|_| HsmError::internal("ECDSA signature split"))?;
    if low_s && s > SECP256K1_HALF_ORDER {
        s = subtract(&SECP256K1_ORDER, &s);
    }
    let mut body = unsigned_integer(r)?;
    body.extend_from_slice(&unsigned_integer(&s)?);
    tlv(TAG_SEQUENCE, &body)
}

/// `a - b` on 256-bit big-endian numbers, for `a > b`.
fn subtract(a: &[u8; SCALAR_LEN], b: &[u8; SCALAR_LEN]) -> [u8; SCALAR_LEN] {
    let mut out = [0u8; SCALAR_LEN];
    let mut borrow = false;
    for ((o, x), y) in out.iter_mut().rev().zip(a.iter().rev()).zip(b.iter().rev()) {
        let (d, b1) = x.overflowing_sub(*y);
        let (d, b2) = d.overflowing_sub(u8::from(borrow));
        *o = d;
        borrow = b1 || b2;
    }
    out
}

/// A DER INTEGER from an unsigned big-endian number.
fn unsigned_integer(be: &[u8]) -> Result<Vec<u8>> {
    let start = be.iter().position(|b| *b != 0).unwrap_or(be.len());
    let digits = be.get(start..).unwrap_or_default();
    let mut content = Vec::with_capacity(digits.len() + 1);
    if digits.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(digits);
    tlv(TAG_INTEGER, &content)
}

/// A DER BIT STRING with no unused bits.
fn bit_string(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut content = Vec::with_capacity(bytes.len() + 1);
    content.push(0);
    content.extend_from_slice(bytes);
    tlv(TAG_BIT_STRING, &content)
}

/// Tag, definite length, content.
fn tlv(tag: u8, content: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    if let Ok(short) = u8::try_from(content.len())
        && short < 0x80
    {
        out.push(short);
    } else {
        let len = content.len().to_be_bytes();
        let first = len.iter().position(|b| *b != 0).unwrap_or(len.len());
        let digits = len.get(first..).unwrap_or_default();
        let count =
            u8::try_from(digits.len()).map_err(|_| HsmError::internal("DER length of length"))?;
        out.push(0x80 | count);
        out.extend_from_slice(digits);
    }
    out.extend_from_slice(content);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]

    use super::*;

    #[test]
    fn integers_are_minimal_and_positive() {
        assert_eq!(unsigned_integer(&[0, 0, 1]).unwrap(), [2, 1, 1]);
        assert_eq!(unsigned_integer(&[0x80]).unwrap(), [2, 2, 0, 0x80]);
        assert_eq!(unsigned_integer(&[0, 0]).unwrap(), [2, 1, 0]);
        assert_eq!(unsigned_integer(&[]).unwrap(), [2, 1, 0]);
    }

    #[test]
    fn long_lengths() {
        let out = tlv(0x04, &[7u8; 300]).unwrap();
        assert_eq!(&out[..4], &[0x04, 0x82, 0x01, 0x2C]);
        assert_eq!(out.len(), 304);
        assert_eq!(&tlv(0x04, &[1u8; 0x7F]).unwrap()[..2], &[0x04, 0x7F]);
        assert_eq!(&tlv(0x04, &[1u8; 0x80]).unwrap()[..3], &[0x04, 0x81, 0x80]);
    }

    #[test]
    fn high_s_is_folded_to_low_s() {
        let mut high = SECP256K1_HALF_ORDER;
        high[31] += 1;
        let mut raw = vec![1u8; 32];
        raw.extend_from_slice(&high);
        let der = ecdsa_signature(&raw, true).unwrap();
        let expected_s = subtract(&SECP256K1_ORDER, &high);
        assert!(expected_s <= SECP256K1_HALF_ORDER);
        assert!(der.ends_with(&expected_s));
        // P-256 signatures are left alone.
        let der = ecdsa_signature(&raw, false).unwrap();
        assert!(der.ends_with(&high));
        assert!(ecdsa_signature(&raw[..63], true).is_err());
    }

    #[test]
    fn subtraction_borrows() {
        let mut a = [0u8; 32];
        a[30] = 1;
        let mut b = [0u8; 32];
        b[31] = 1;
        let mut expected = [0u8; 32];
        expected[31] = 0xFF;
        assert_eq!(subtract(&a, &b), expected);
    }

    #[test]
    fn ec_points_with_and_without_octet_string() {
        let mut point = vec![0x04];
        point.extend_from_slice(&[9u8; 64]);
        let mut wrapped = vec![0x04, 0x41];
        wrapped.extend_from_slice(&point);
        assert_eq!(ec_point(&wrapped), Some(point.as_slice()));
        assert_eq!(ec_point(&point), Some(point.as_slice()));
        assert_eq!(ec_point(&point[..64]), None);
    }
}

//! The PKCS#11 key blob: framing and the input of its binding tag. The format is
//! described in the parent module's documentation; the cryptography (key wrap, HMAC)
//! happens in the token, not here.

use strongroom_crypto::spec::KeySpec;

use crate::error::{HsmError, Result};

/// The first byte of every PKCS#11 key blob.
pub(super) const FORMAT_VERSION: u8 = 1;

/// Length of the binding tag (HMAC-SHA-256).
pub(super) const TAG_LEN: usize = 32;

/// Domain separation for the tag: no other HMAC computed with the binding key can be
/// mistaken for a blob's.
const TAG_CONTEXT: &[u8] = b"strongroom/pkcs11/key-blob";

/// What a blob is bound to.
#[derive(Debug, Clone, Copy)]
pub(super) struct Binding<'a> {
    pub(super) key_id: &'a str,
    pub(super) version_id: &'a str,
    pub(super) spec: KeySpec,
}

/// A blob split into its fields (not yet authenticated).
#[derive(Debug, Clone, Copy)]
pub(super) struct Parts<'a> {
    /// The key wrapped by the domain key (`CKM_AES_KEY_WRAP_PAD`).
    pub(super) wrapped: &'a [u8],
    /// DER SubjectPublicKeyInfo; empty for symmetric keys.
    pub(super) public_key: &'a [u8],
    /// HMAC-SHA-256 of [`tag_input`] under the binding key.
    pub(super) tag: &'a [u8],
}

/// What the binding key authenticates:
/// `context ‖ version ‖ lp(key_id) ‖ lp(version_id) ‖ lp(key_spec) ‖ lp(wrapped) ‖ lp(public_key)`,
/// each `lp` a 64-bit big-endian length followed by the bytes.
pub(super) fn tag_input(binding: &Binding<'_>, wrapped: &[u8], public_key: &[u8]) -> Vec<u8> {
    let fields: [&[u8]; 5] = [
        binding.key_id.as_bytes(),
        binding.version_id.as_bytes(),
        binding.spec.as_str().as_bytes(),
        wrapped,
        public_key,
    ];
    let mut out = Vec::with_capacity(
        TAG_CONTEXT.len() + 1 + fields.iter().map(|f| f.len() + 8).sum::<usize>(),
    );
    out.extend_from_slice(TAG_CONTEXT);
    out.push(FORMAT_VERSION);
    for field in fields {
        out.extend_from_slice(&u64::try_from(field.len()).unwrap_or(u64::MAX).to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

/// `version ‖ u32be len ‖ wrapped ‖ u32be len ‖ public_key ‖ tag`.
pub(super) fn encode(wrapped: &[u8], public_key: &[u8], tag: &[u8]) -> Result<Vec<u8>> {
    if tag.len() != TAG_LEN {
        return Err(HsmError::internal(format!(
            "the token returned a {}-byte HMAC, expected {TAG_LEN}",
            tag.len()
        )));
    }
    let mut out = Vec::with_capacity(1 + 8 + wrapped.len() + public_key.len() + TAG_LEN);
    out.push(FORMAT_VERSION);
    for field in [wrapped, public_key] {
        let len = u32::try_from(field.len())
            .map_err(|_| HsmError::internal("key blob field longer than 4 GiB"))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(field);
    }
    out.extend_from_slice(tag);
    Ok(out)
}

/// Splits a blob; `None` if it is not one (wrong version, bad lengths, trailing bytes).
pub(super) fn decode(blob: &[u8]) -> Option<Parts<'_>> {
    let (&version, rest) = blob.split_first()?;
    if version != FORMAT_VERSION {
        return None;
    }
    let (wrapped, rest) = field(rest)?;
    let (public_key, tag) = field(rest)?;
    if wrapped.is_empty() || tag.len() != TAG_LEN {
        return None;
    }
    Some(Parts {
        wrapped,
        public_key,
        tag,
    })
}

fn field(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
    rest.split_at_checked(len)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn round_trip_and_malformed() {
        let blob = encode(b"wrapped", b"public", &[7u8; TAG_LEN]).unwrap();
        let parts = decode(&blob).unwrap();
        assert_eq!(parts.wrapped, b"wrapped");
        assert_eq!(parts.public_key, b"public");
        assert_eq!(parts.tag, [7u8; TAG_LEN]);
        assert!(decode(&blob[..blob.len() - 1]).is_none());
        let mut longer = blob.clone();
        longer.push(0);
        assert!(decode(&longer).is_none());
        let mut other_version = blob.clone();
        other_version[0] = 2;
        assert!(decode(&other_version).is_none());
        assert!(decode(&[]).is_none());
        assert!(encode(b"w", b"", &[0u8; 31]).is_err());
    }

    #[test]
    fn tag_input_is_unambiguous() {
        let a = Binding {
            key_id: "ab",
            version_id: "c",
            spec: KeySpec::Aes256,
        };
        let b = Binding {
            key_id: "a",
            version_id: "bc",
            spec: KeySpec::Aes256,
        };
        assert_ne!(tag_input(&a, b"w", b""), tag_input(&b, b"w", b""));
        assert_ne!(tag_input(&a, b"w", b"p"), tag_input(&a, b"wp", b""));
    }
}

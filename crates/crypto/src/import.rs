//! Unwrapping externally wrapped key material (BYOK, `spec/product-model.md` §3), done
//! inside the HSM: the wrapping key pair is generated here ([`generate_wrapping_key`]),
//! its public half goes out through GetParametersForImport, and only this module ever
//! decrypts with its private half ([`unwrap_key_material`]).
//!
//! # Wire forms
//!
//! | Wrapping key | Algorithm | `EncryptedKeyMaterial` | Targets |
//! | --- | --- | --- | --- |
//! | `RSA_2048` | `RSAES_OAEP_SHA_256` | RSA-OAEP (SHA-256, MGF1-SHA-256, empty label) of the raw key | symmetric specs |
//! | `EC_SM2` | `SM2PKE` | SM2 encryption of the raw key | symmetric specs |
//! | `RSA_2048` | `RSAES_OAEP_SHA_256_AES_256_ECB_PKCS7_PAD` | `OAEP(K) ‖ AES-256-ECB-PKCS7_K(PKCS#8)`, `K` 32 bytes, `OAEP(K)` 256 bytes | RSA, EC_P256, EC_P256K, EC_SM2 |
//! | `EC_SM2` | `SM2PKE_SM4_ECB` | `SM2(K) ‖ SM4-ECB_K(d)`, `K` 16 bytes, `d` the 32-byte private scalar, no padding | EC_SM2 |
//!
//! A symmetric key's length is checked by [`KeyMaterial::import`], so `SM2PKE` may
//! carry AES keys and `RSAES_OAEP_SHA_256` SM4 keys. `RSAES_PKCS1_V1_5` and
//! `RSAES_OAEP_SHA_1` parse but are refused ([`CryptoError::WrappingAlgorithmNotSupported`]):
//! Dedicated KMS supports neither, and PKCS#1 v1.5 decryption is a padding-oracle risk.
//!
//! # SM2 ciphertext forms (research)
//!
//! Both forms are accepted wherever an SM2 ciphertext is expected, told apart by the
//! first byte:
//! - `0x30`: GM/T 0009 DER, `SEQUENCE { x INTEGER, y INTEGER, hash OCTET STRING,
//!   ciphertext OCTET STRING }`. This is what `openssl pkeyutl -encrypt` writes with an
//!   SM2 key, and the form of this crate's SM2PKE Encrypt/Decrypt.
//! - `0x04`: raw `C1 ‖ C3 ‖ C2` with `C1 = 0x04 ‖ x ‖ y` (65 bytes), `C3` the 32-byte
//!   SM3 hash, `C2` as long as the plaintext (113 bytes for a 16-byte SM4 key). The one
//!   sample of Alibaba's asymmetric-import code we could find (a third-party copy:
//!   `AsymmetricCryptoUtil.java` and `KmsClient.java` in package
//!   `com.alipay.antchain.bridge.plugins.ethereum2.kms` of AntChain Bridge) encrypts
//!   the ephemeral key for `SM2PKE_SM4_ECB` with BouncyCastle
//!   `new SM2Engine(SM2Engine.Mode.C1C3C2)`, i.e. this raw form without DER, and
//!   concatenates `encEphemeral ‖ encPrivateKey`. The same sample encrypts the
//!   envelope's `d` with `SM4/ECB/NoPadding` and wraps AES keys with
//!   `OAEPWithSHA-256`/`MGF1-SHA-256`, as the table above says.
//!
//! The old `C1 ‖ C2 ‖ C3` order is not accepted: structurally it cannot be told from
//! `C1 ‖ C3 ‖ C2`, and no source we found uses it. No retrievable Alibaba page states
//! the form for `SM2PKE` symmetric imports; the GetParametersForImport reference only
//! names the pairs (`RSA_2048` with the `RSAES_*` algorithms, Dedicated KMS excluding
//! `RSAES_OAEP_SHA_1`; `EC_SM2` with `SM2PKE`). That sample's ephemeral-key helper
//! always draws 32 bytes (its 16-byte SM4 branch is commented out), which BouncyCastle's
//! SM4 refuses, so its SM2 path cannot have run as written; SM4 has one key size, and
//! the ephemeral key here must be 16 bytes.
//!
//! In the SM2 envelope `encPrivateKey` is always exactly 32 bytes, so `encEphemeral` is
//! everything before the last 32 bytes, whichever form it takes (DER is also
//! self-delimiting, and a DER ciphertext with trailing bytes does not decrypt).
//!
//! # Errors and what they reveal
//!
//! Checks on public parameters come first and say exactly what is wrong: unknown,
//! refused or mismatched algorithms, a target the algorithm cannot carry, an empty or
//! oversized input. Everything after that — framing, public-key decryption, the
//! transport key's length, ECB length and padding — is one opaque
//! [`CryptoError::ImportUnwrapFailed`]. Material that unwraps but does not fit the
//! target (wrong length, not PKCS#8, wrong curve or size, scalar out of range) is
//! [`CryptoError::InvalidKeyMaterial`].
//!
//! # No integrity in the ECB envelopes
//!
//! ECB authenticates nothing. A changed block of `SM4-ECB(d)` decrypts to a different
//! but (almost always) valid scalar, so a tampered SM2 envelope imports a different key
//! without any error; a tampered AES-ECB block usually breaks PKCS#8 parsing or the RSA
//! key-consistency checks, but that is not a guarantee. This is the cloud's scheme, kept
//! for compatibility. Callers rely on the transport (TLS, the signed request) for
//! integrity, and on re-import compare the unwrapped material with the material the key
//! is already bound to.

use aes::Aes256;
use ecb::cipher::block_padding::{NoPadding, Padding, Pkcs7};
use ecb::cipher::consts::U16;
use ecb::cipher::{BlockCipherDecrypt, BlockModeDecrypt, BlockSizeUser, KeyInit};
use sm4::Sm4;

use crate::error::{CryptoError, Result};
use crate::material::KeyMaterial;
use crate::secret::SecretBytes;
use crate::spec::{Algorithm, KeySpec, WrappingAlgorithm, WrappingKeySpec};

/// Largest `EncryptedKeyMaterial` accepted, in bytes (after base64 decoding). The
/// largest legitimate input, an RSA-4096 PKCS#8 key in the RSA envelope, is under
/// 3 KiB.
pub const MAX_ENCRYPTED_KEY_MATERIAL_LEN: usize = 8192;

/// The AES-256 transport key of the RSA envelope.
const AES_256_KEY_LEN: usize = 32;

/// The SM4 transport key of the SM2 envelope.
const SM4_KEY_LEN: usize = 16;

/// An SM2 private scalar `d`, which is also the length of `SM4-ECB(d)`.
const SM2_SCALAR_LEN: usize = 32;

/// ECB block length of AES and SM4.
const BLOCK_LEN: usize = 16;

/// Checks that `algorithm` is supported and goes with `spec` (what GetParametersForImport
/// must check before it hands out a wrapping key).
///
/// # Errors
/// [`CryptoError::WrappingAlgorithmNotSupported`] for `RSAES_PKCS1_V1_5` and
/// `RSAES_OAEP_SHA_1`; [`CryptoError::WrappingMismatch`] when `RSA_2048` is paired with
/// an `SM2PKE*` algorithm or `EC_SM2` with an `RSAES_*` one.
pub fn check_wrapping(spec: WrappingKeySpec, algorithm: WrappingAlgorithm) -> Result<()> {
    if !algorithm.is_supported() {
        return Err(CryptoError::WrappingAlgorithmNotSupported(algorithm));
    }
    if algorithm.wrapping_key_spec() != spec {
        return Err(CryptoError::WrappingMismatch { spec, algorithm });
    }
    Ok(())
}

/// Checks that `algorithm` can carry material for a key of spec `target`: the direct
/// algorithms (`RSAES_OAEP_SHA_256`, `SM2PKE`) carry symmetric keys, the RSA envelope
/// carries key pairs, the SM2 envelope only EC_SM2 keys.
///
/// # Errors
/// [`CryptoError::WrappingAlgorithmNotSupported`] for a refused algorithm;
/// [`CryptoError::ImportTargetNotAllowed`] for a target the algorithm cannot carry.
pub fn check_import_target(algorithm: WrappingAlgorithm, target: KeySpec) -> Result<()> {
    let allowed = match algorithm {
        WrappingAlgorithm::RsaesPkcs1V15 | WrappingAlgorithm::RsaesOaepSha1 => {
            return Err(CryptoError::WrappingAlgorithmNotSupported(algorithm));
        }
        WrappingAlgorithm::RsaesOaepSha256 | WrappingAlgorithm::Sm2Pke => target.is_symmetric(),
        WrappingAlgorithm::RsaesOaepSha256Aes256EcbPkcs7Pad => target.is_asymmetric(),
        WrappingAlgorithm::Sm2PkeSm4Ecb => target == KeySpec::EcSm2,
    };
    if allowed {
        Ok(())
    } else {
        Err(CryptoError::ImportTargetNotAllowed { algorithm, target })
    }
}

/// Generates a fresh wrapping key pair (RSA-2048 or SM2). The caller seals it as a key
/// blob and publishes its [`KeyMaterial::public_key`].
///
/// # Errors
/// [`CryptoError::Internal`] if key generation fails.
pub fn generate_wrapping_key(spec: WrappingKeySpec) -> Result<KeyMaterial> {
    KeyMaterial::generate(spec.key_spec())
}

/// Unwraps `encrypted` (the base64-decoded `EncryptedKeyMaterial`) with the private
/// `wrapping_key` and imports the result as material for a key of spec `target`.
///
/// The forms are in the [module documentation](self).
///
/// # Errors
/// - [`CryptoError::NotAWrappingKey`] if `wrapping_key` is neither RSA-2048 nor SM2;
/// - as [`check_wrapping`] and [`check_import_target`];
/// - [`CryptoError::InvalidLength`] for an empty input or one longer than
///   [`MAX_ENCRYPTED_KEY_MATERIAL_LEN`];
/// - [`CryptoError::ImportUnwrapFailed`], deliberately opaque, for every framing,
///   decryption or padding failure;
/// - [`CryptoError::InvalidKeyMaterial`] for unwrapped material that does not fit
///   `target`.
pub fn unwrap_key_material(
    wrapping_key: &KeyMaterial,
    algorithm: WrappingAlgorithm,
    target: KeySpec,
    encrypted: &[u8],
) -> Result<KeyMaterial> {
    let spec = WrappingKeySpec::from_key_spec(wrapping_key.spec())
        .ok_or(CryptoError::NotAWrappingKey(wrapping_key.spec()))?;
    check_wrapping(spec, algorithm)?;
    check_import_target(algorithm, target)?;
    if encrypted.is_empty() || encrypted.len() > MAX_ENCRYPTED_KEY_MATERIAL_LEN {
        return Err(CryptoError::InvalidLength {
            min: 1,
            max: MAX_ENCRYPTED_KEY_MATERIAL_LEN,
            actual: encrypted.len(),
        });
    }
    match algorithm {
        WrappingAlgorithm::RsaesOaepSha256 => {
            let key = rsa_oaep_decrypt(wrapping_key, encrypted)?;
            KeyMaterial::import(target, key.expose_secret())
        }
        WrappingAlgorithm::Sm2Pke => {
            let key = sm2_decrypt(wrapping_key, encrypted)?;
            KeyMaterial::import(target, key.expose_secret())
        }
        WrappingAlgorithm::RsaesOaepSha256Aes256EcbPkcs7Pad => {
            unwrap_rsa_envelope(wrapping_key, target, encrypted)
        }
        WrappingAlgorithm::Sm2PkeSm4Ecb => unwrap_sm2_envelope(wrapping_key, encrypted),
        // Refused by `check_wrapping` above; kept explicit so that no fall-through can
        // ever reach a decryption with them.
        WrappingAlgorithm::RsaesPkcs1V15 | WrappingAlgorithm::RsaesOaepSha1 => {
            Err(CryptoError::WrappingAlgorithmNotSupported(algorithm))
        }
    }
}

/// `OAEP(K) ‖ AES-256-ECB-PKCS7_K(PKCS#8)`.
fn unwrap_rsa_envelope(
    wrapping_key: &KeyMaterial,
    target: KeySpec,
    encrypted: &[u8],
) -> Result<KeyMaterial> {
    let modulus_len =
        wrapping_key
            .spec()
            .rsa_bits()
            .map(|bits| bits / 8)
            .ok_or(CryptoError::Internal(
                "RSA wrapping key without a modulus size",
            ))?;
    let (wrapped_key, wrapped_material) = encrypted
        .split_at_checked(modulus_len)
        .ok_or(CryptoError::ImportUnwrapFailed)?;
    let transport_key = rsa_oaep_decrypt(wrapping_key, wrapped_key)?;
    if transport_key.len() != AES_256_KEY_LEN {
        return Err(CryptoError::ImportUnwrapFailed);
    }
    let pkcs8 = ecb_decrypt::<Aes256, Pkcs7>(transport_key.expose_secret(), wrapped_material)?;
    KeyMaterial::import(target, pkcs8.expose_secret())
}

/// `SM2(K) ‖ SM4-ECB_K(d)`, the last 32 bytes being `SM4-ECB_K(d)`.
fn unwrap_sm2_envelope(wrapping_key: &KeyMaterial, encrypted: &[u8]) -> Result<KeyMaterial> {
    let split = encrypted
        .len()
        .checked_sub(SM2_SCALAR_LEN)
        .ok_or(CryptoError::ImportUnwrapFailed)?;
    let (wrapped_key, wrapped_scalar) = encrypted
        .split_at_checked(split)
        .ok_or(CryptoError::ImportUnwrapFailed)?;
    let transport_key = sm2_decrypt(wrapping_key, wrapped_key)?;
    if transport_key.len() != SM4_KEY_LEN {
        return Err(CryptoError::ImportUnwrapFailed);
    }
    let scalar = ecb_decrypt::<Sm4, NoPadding>(transport_key.expose_secret(), wrapped_scalar)?;
    KeyMaterial::import_sm2_scalar(scalar.expose_secret())
}

fn rsa_oaep_decrypt(wrapping_key: &KeyMaterial, ciphertext: &[u8]) -> Result<SecretBytes> {
    wrapping_key
        .decrypt_asymmetric(Algorithm::RsaesOaepSha256, ciphertext)
        .map_err(|_| CryptoError::ImportUnwrapFailed)
}

/// SM2 decryption of either accepted form, chosen by the first byte.
fn sm2_decrypt(wrapping_key: &KeyMaterial, ciphertext: &[u8]) -> Result<SecretBytes> {
    match ciphertext.first() {
        Some(0x30) => wrapping_key.decrypt_asymmetric(Algorithm::Sm2Pke, ciphertext),
        Some(0x04) => wrapping_key.decrypt_sm2_c1c3c2(ciphertext),
        _ => return Err(CryptoError::ImportUnwrapFailed),
    }
    .map_err(|_| CryptoError::ImportUnwrapFailed)
}

/// ECB decryption with the padding `P` (PKCS#7 or none). The output stays in secret
/// buffers throughout.
fn ecb_decrypt<C, P>(key: &[u8], ciphertext: &[u8]) -> Result<SecretBytes>
where
    C: BlockCipherDecrypt + KeyInit + BlockSizeUser<BlockSize = U16>,
    P: Padding,
{
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(BLOCK_LEN) {
        return Err(CryptoError::ImportUnwrapFailed);
    }
    let decryptor =
        ecb::Decryptor::<C>::new_from_slice(key).map_err(|_| CryptoError::ImportUnwrapFailed)?;
    let mut out = SecretBytes::zeroed(ciphertext.len());
    let len = decryptor
        .decrypt_padded_b2b::<P>(ciphertext, out.expose_secret_mut())
        .map_err(|_| CryptoError::ImportUnwrapFailed)?
        .len();
    Ok(SecretBytes::copy_from(
        out.expose_secret()
            .get(..len)
            .ok_or(CryptoError::ImportUnwrapFailed)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_pairs() {
        use WrappingAlgorithm as A;
        use WrappingKeySpec as S;
        for (spec, algorithm) in [
            (S::Rsa2048, A::RsaesOaepSha256),
            (S::Rsa2048, A::RsaesOaepSha256Aes256EcbPkcs7Pad),
            (S::EcSm2, A::Sm2Pke),
            (S::EcSm2, A::Sm2PkeSm4Ecb),
        ] {
            assert_eq!(
                check_wrapping(spec, algorithm),
                Ok(()),
                "{spec} {algorithm}"
            );
        }
        for (spec, algorithm) in [
            (S::Rsa2048, A::Sm2Pke),
            (S::Rsa2048, A::Sm2PkeSm4Ecb),
            (S::EcSm2, A::RsaesOaepSha256),
            (S::EcSm2, A::RsaesOaepSha256Aes256EcbPkcs7Pad),
        ] {
            assert_eq!(
                check_wrapping(spec, algorithm),
                Err(CryptoError::WrappingMismatch { spec, algorithm })
            );
        }
        for spec in S::ALL {
            for algorithm in [A::RsaesPkcs1V15, A::RsaesOaepSha1] {
                assert_eq!(
                    check_wrapping(*spec, algorithm),
                    Err(CryptoError::WrappingAlgorithmNotSupported(algorithm))
                );
            }
        }
    }

    #[test]
    fn targets() {
        for spec in KeySpec::ALL {
            let spec = *spec;
            let direct = spec.is_symmetric();
            assert_eq!(
                check_import_target(WrappingAlgorithm::RsaesOaepSha256, spec).is_ok(),
                direct
            );
            assert_eq!(
                check_import_target(WrappingAlgorithm::Sm2Pke, spec).is_ok(),
                direct
            );
            assert_eq!(
                check_import_target(WrappingAlgorithm::RsaesOaepSha256Aes256EcbPkcs7Pad, spec)
                    .is_ok(),
                !direct
            );
            assert_eq!(
                check_import_target(WrappingAlgorithm::Sm2PkeSm4Ecb, spec).is_ok(),
                spec == KeySpec::EcSm2
            );
        }
    }
}

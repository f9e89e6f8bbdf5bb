//! Wrapping key material for import: what a *user* does before ImportKeyMaterial,
//! given only the public wrapping key GetParametersForImport returned.
//!
//! [`wrap_key_material`] is the exact inverse of [`crate::import::unwrap_key_material`]
//! for the four supported forms of the table in [`crate::import`]:
//!
//! | Algorithm | Output |
//! | --- | --- |
//! | `RSAES_OAEP_SHA_256` | RSA-OAEP (SHA-256, MGF1-SHA-256, empty label) of the raw key |
//! | `SM2PKE` | SM2 encryption of the raw key, GM/T 0009 DER (the form of this crate's SM2 encryption) |
//! | `RSAES_OAEP_SHA_256_AES_256_ECB_PKCS7_PAD` | `OAEP(K) ‖ AES-256-ECB-PKCS7_K(PKCS#8)`, `K` a fresh random 32-byte key |
//! | `SM2PKE_SM4_ECB` | `SM2(K) ‖ SM4-ECB_K(d)`, `K` a fresh random 16-byte key, `d` the 32-byte scalar, no padding |
//!
//! The material is checked before anything is encrypted, with the same rules the HSM
//! applies after unwrapping ([`KeyMaterial::import`]), so material the HSM would refuse
//! is refused here with a clear error instead of an opaque import failure later.
//! The ephemeral transport keys live only in [`SecretBytes`] and are wiped on drop.
//!
//! The output is ciphertext: the caller base64-encodes it as `EncryptedKeyMaterial`.

use aes::Aes256;
use ecb::cipher::block_padding::{NoPadding, Padding, Pkcs7};
use ecb::cipher::consts::U16;
use ecb::cipher::{BlockCipherEncrypt, BlockModeEncrypt, BlockSizeUser, KeyInit};
use sm2::pkcs8::DecodePrivateKey;
use sm4::Sm4;
use zeroize::Zeroizing;

use crate::error::{CryptoError, Result};
use crate::import::{check_import_target, check_wrapping};
use crate::material::KeyMaterial;
use crate::public::PublicKey;
use crate::random;
use crate::secret::SecretBytes;
use crate::spec::{Algorithm, KeySpec, WrappingAlgorithm};

/// The AES-256 transport key of the RSA envelope.
const AES_256_KEY_LEN: usize = 32;

/// The SM4 transport key of the SM2 envelope.
const SM4_KEY_LEN: usize = 16;

/// An SM2 private scalar `d`.
const SM2_SCALAR_LEN: usize = 32;

/// ECB block length of AES and SM4.
const BLOCK_LEN: usize = 16;

/// Wraps `material` for import into a key of spec `target` under the public wrapping
/// key `public_key_der` (DER SubjectPublicKeyInfo, as GetParametersForImport returns
/// it) with `algorithm`.
///
/// `material` is:
/// - for symmetric targets (`RSAES_OAEP_SHA_256`, `SM2PKE`): the raw key bytes;
/// - for `RSAES_OAEP_SHA_256_AES_256_ECB_PKCS7_PAD`: the private key as DER PKCS#8;
/// - for `SM2PKE_SM4_ECB`: the SM2 private key as DER PKCS#8, or its raw 32-byte
///   scalar `d`.
///
/// # Errors
/// - as [`check_wrapping`] and [`check_import_target`]: a refused algorithm, or a
///   target the algorithm cannot carry;
/// - [`CryptoError::InvalidPublicKey`] if `public_key_der` is not a public key of the
///   algorithm's wrapping key spec (RSA-2048 for `RSAES_*`, SM2 for `SM2PKE*`);
/// - [`CryptoError::InvalidKeyMaterial`] for material that does not fit `target`
///   (wrong length, not PKCS#8, wrong curve or RSA size, scalar out of range);
/// - [`CryptoError::Internal`] if the random generator or a primitive fails.
pub fn wrap_key_material(
    public_key_der: &[u8],
    algorithm: WrappingAlgorithm,
    target: KeySpec,
    material: &[u8],
) -> Result<Vec<u8>> {
    let spec = algorithm.wrapping_key_spec();
    check_wrapping(spec, algorithm)?;
    check_import_target(algorithm, target)?;
    let wrapping_key = PublicKey::from_der(spec.key_spec(), public_key_der)?;
    match algorithm {
        WrappingAlgorithm::RsaesOaepSha256 => {
            check_material(target, material)?;
            wrapping_key.encrypt(Algorithm::RsaesOaepSha256, material)
        }
        WrappingAlgorithm::Sm2Pke => {
            check_material(target, material)?;
            wrapping_key.encrypt(Algorithm::Sm2Pke, material)
        }
        WrappingAlgorithm::RsaesOaepSha256Aes256EcbPkcs7Pad => {
            check_material(target, material)?;
            let transport_key = random::secret_bytes(AES_256_KEY_LEN)?;
            let mut out =
                wrapping_key.encrypt(Algorithm::RsaesOaepSha256, transport_key.expose_secret())?;
            out.extend(ecb_encrypt::<Aes256, Pkcs7>(
                transport_key.expose_secret(),
                material,
            )?);
            Ok(out)
        }
        WrappingAlgorithm::Sm2PkeSm4Ecb => {
            let scalar = sm2_scalar(material)?;
            let transport_key = random::secret_bytes(SM4_KEY_LEN)?;
            let mut out = wrapping_key.encrypt(Algorithm::Sm2Pke, transport_key.expose_secret())?;
            out.extend(ecb_encrypt::<Sm4, NoPadding>(
                transport_key.expose_secret(),
                scalar.expose_secret(),
            )?);
            Ok(out)
        }
        // Refused by `check_wrapping` above; kept explicit so that nothing falls through.
        WrappingAlgorithm::RsaesPkcs1V15 | WrappingAlgorithm::RsaesOaepSha1 => {
            Err(CryptoError::WrappingAlgorithmNotSupported(algorithm))
        }
    }
}

/// Checks `material` the way the HSM will after unwrapping it.
fn check_material(target: KeySpec, material: &[u8]) -> Result<()> {
    KeyMaterial::import(target, material).map(drop)
}

/// The 32-byte scalar `d` of an SM2 private key given as PKCS#8 or as `d` itself,
/// checked to be a valid scalar.
fn sm2_scalar(material: &[u8]) -> Result<SecretBytes> {
    if material.len() == SM2_SCALAR_LEN {
        KeyMaterial::import_sm2_scalar(material)?;
        return Ok(SecretBytes::copy_from(material));
    }
    let secret =
        sm2::SecretKey::from_pkcs8_der(material).map_err(|_| CryptoError::InvalidKeyMaterial {
            spec: KeySpec::EcSm2,
            reason: "neither a PKCS#8 EC private key on the SM2 curve nor a 32-byte scalar",
        })?;
    let scalar = Zeroizing::new(secret.to_bytes());
    if scalar.len() != SM2_SCALAR_LEN {
        return Err(CryptoError::Internal("SM2 scalar encoding"));
    }
    Ok(SecretBytes::copy_from(scalar.as_slice()))
}

/// ECB encryption with the padding `P` (PKCS#7, or none over whole blocks).
fn ecb_encrypt<C, P>(key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>>
where
    C: BlockCipherEncrypt + KeyInit + BlockSizeUser<BlockSize = U16>,
    P: Padding,
{
    let encryptor = ecb::Encryptor::<C>::new_from_slice(key)
        .map_err(|_| CryptoError::Internal("ECB transport key length"))?;
    // Room for PKCS#7's padding block; NoPadding uses exactly the input's length.
    let mut out = vec![0u8; plaintext.len().saturating_add(BLOCK_LEN)];
    let len = encryptor
        .encrypt_padded_b2b::<P>(plaintext, &mut out)
        .map_err(|_| CryptoError::Internal("ECB padding"))?
        .len();
    out.truncate(len);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecb_lengths() {
        let key = [7u8; 32];
        assert_eq!(ecb_encrypt::<Aes256, Pkcs7>(&key, &[]).unwrap().len(), 16);
        assert_eq!(
            ecb_encrypt::<Aes256, Pkcs7>(&key, &[1; 16]).unwrap().len(),
            32
        );
        assert_eq!(
            ecb_encrypt::<Aes256, Pkcs7>(&key, &[1; 17]).unwrap().len(),
            32
        );
        assert_eq!(
            ecb_encrypt::<Sm4, NoPadding>(&key[..16], &[1; 32])
                .unwrap()
                .len(),
            32
        );
        assert!(ecb_encrypt::<Sm4, NoPadding>(&key[..16], &[1; 31]).is_err());
    }
}

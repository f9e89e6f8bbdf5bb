//! Symmetric encryption: AES-GCM (aws-lc-rs), AES-CBC and SM4-CBC (RustCrypto `aes`,
//! `sm4`, `cbc`), SM4-GCM (RustCrypto generic GCM over `sm4`).
//!
//! Encodings (fixed; the KMS and its SDK users rely on them):
//! - GCM: 12-byte IV, 16-byte tag **appended** to the ciphertext (`ciphertext ‖ tag`),
//!   the IV returned separately (`spec/instance-api.md` §8).
//! - CBC: 16-byte IV returned separately, PKCS#7 padding by default, or none.
//!
//! A caller may supply the IV; otherwise a random one is drawn. With GCM, reusing an IV
//! under one key is catastrophic, so callers that pass IVs own that risk (as the cloud
//! API allows); the KMS itself always draws them at random.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aws_lc_rs::aead::{self as lc_aead, Aad, LessSafeKey, Nonce, UnboundKey};
use cbc::cipher::block_padding::{NoPadding, Pkcs7};
use cbc::cipher::{
    BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, KeyIvInit,
};

use crate::error::{CryptoError, Result};
use crate::random;
use crate::secret::SecretBytes;
use crate::spec::{Algorithm, PaddingMode};

/// Largest AAD accepted (the cloud API's limit).
pub const MAX_AAD_LEN: usize = 8192;

/// GCM tag length in bytes.
pub const GCM_TAG_LEN: usize = 16;

const BLOCK_LEN: usize = 16;

/// The output of a symmetric encryption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymmetricCiphertext {
    /// `ciphertext ‖ tag` for GCM; the padded ciphertext for CBC.
    pub ciphertext: Vec<u8>,
    /// The IV used (given or drawn).
    pub iv: Vec<u8>,
}

/// Symmetric key bytes with the cipher family they belong to.
#[derive(Clone, Copy)]
pub(crate) enum SymmetricKey<'a> {
    Aes(&'a [u8]),
    Sm4(&'a [u8]),
}

/// Checks that `iv` has the length `algorithm` needs (12 bytes for GCM, 16 for CBC).
///
/// # Errors
/// [`CryptoError::InvalidIvLength`].
pub fn check_iv(algorithm: Algorithm, iv: &[u8]) -> Result<()> {
    let expected = algorithm.iv_len();
    if iv.len() != expected {
        return Err(CryptoError::InvalidIvLength {
            algorithm,
            expected,
            actual: iv.len(),
        });
    }
    Ok(())
}

fn check_aad(algorithm: Algorithm, aad: &[u8]) -> Result<()> {
    if aad.len() > MAX_AAD_LEN {
        return Err(CryptoError::AadTooLong(aad.len()));
    }
    if algorithm.is_cbc() && !aad.is_empty() {
        // CBC authenticates nothing: silently dropping the AAD would let a caller
        // believe it is bound to the ciphertext.
        return Err(CryptoError::UnexpectedParameter {
            algorithm,
            parameter: "AAD",
        });
    }
    Ok(())
}

/// Encrypts with a symmetric algorithm. `key` must already match the algorithm's family
/// (the key spec check is [`crate::policy`]'s job).
pub(crate) fn encrypt(
    key: SymmetricKey<'_>,
    algorithm: Algorithm,
    plaintext: &[u8],
    iv: Option<&[u8]>,
    aad: &[u8],
    padding: PaddingMode,
) -> Result<SymmetricCiphertext> {
    check_aad(algorithm, aad)?;
    let iv = match iv {
        Some(iv) => iv.to_vec(),
        None => random::public_bytes(algorithm.iv_len())?,
    };
    check_iv(algorithm, &iv)?;
    let ciphertext = match (key, algorithm) {
        (SymmetricKey::Aes(k), Algorithm::AesGcm) => aes_gcm_seal(k, &iv, aad, plaintext)?,
        (SymmetricKey::Sm4(k), Algorithm::Sm4Gcm) => sm4_gcm_seal(k, &iv, aad, plaintext)?,
        (SymmetricKey::Aes(k), Algorithm::AesCbc) => match k.len() {
            16 => cbc_encrypt::<aes::Aes128>(k, &iv, plaintext, padding)?,
            24 => cbc_encrypt::<aes::Aes192>(k, &iv, plaintext, padding)?,
            32 => cbc_encrypt::<aes::Aes256>(k, &iv, plaintext, padding)?,
            _ => return Err(CryptoError::Internal("AES key of invalid length")),
        },
        (SymmetricKey::Sm4(k), Algorithm::Sm4Cbc) => {
            cbc_encrypt::<sm4::Sm4>(k, &iv, plaintext, padding)?
        }
        _ => {
            return Err(CryptoError::Internal(
                "symmetric key and algorithm mismatch",
            ));
        }
    };
    Ok(SymmetricCiphertext { ciphertext, iv })
}

/// Decrypts with a symmetric algorithm. Every failure after parameter checks is the
/// opaque [`CryptoError::DecryptionFailed`].
pub(crate) fn decrypt(
    key: SymmetricKey<'_>,
    algorithm: Algorithm,
    ciphertext: &[u8],
    iv: &[u8],
    aad: &[u8],
    padding: PaddingMode,
) -> Result<SecretBytes> {
    check_aad(algorithm, aad)?;
    check_iv(algorithm, iv)?;
    match (key, algorithm) {
        (SymmetricKey::Aes(k), Algorithm::AesGcm) => aes_gcm_open(k, iv, aad, ciphertext),
        (SymmetricKey::Sm4(k), Algorithm::Sm4Gcm) => sm4_gcm_open(k, iv, aad, ciphertext),
        (SymmetricKey::Aes(k), Algorithm::AesCbc) => match k.len() {
            16 => cbc_decrypt::<aes::Aes128>(k, iv, ciphertext, padding),
            24 => cbc_decrypt::<aes::Aes192>(k, iv, ciphertext, padding),
            32 => cbc_decrypt::<aes::Aes256>(k, iv, ciphertext, padding),
            _ => Err(CryptoError::Internal("AES key of invalid length")),
        },
        (SymmetricKey::Sm4(k), Algorithm::Sm4Cbc) => {
            cbc_decrypt::<sm4::Sm4>(k, iv, ciphertext, padding)
        }
        _ => Err(CryptoError::Internal(
            "symmetric key and algorithm mismatch",
        )),
    }
}

fn aws_gcm_key(key: &[u8]) -> Result<LessSafeKey> {
    let algorithm = match key.len() {
        16 => &lc_aead::AES_128_GCM,
        24 => &lc_aead::AES_192_GCM,
        32 => &lc_aead::AES_256_GCM,
        _ => return Err(CryptoError::Internal("AES key of invalid length")),
    };
    let unbound =
        UnboundKey::new(algorithm, key).map_err(|_| CryptoError::Internal("AES-GCM key setup"))?;
    Ok(LessSafeKey::new(unbound))
}

fn gcm_nonce(iv: &[u8]) -> Result<Nonce> {
    Nonce::try_assume_unique_for_key(iv).map_err(|_| CryptoError::InvalidIvLength {
        algorithm: Algorithm::AesGcm,
        expected: 12,
        actual: iv.len(),
    })
}

fn aes_gcm_seal(key: &[u8], iv: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let key = aws_gcm_key(key)?;
    let mut in_out = Vec::with_capacity(plaintext.len() + GCM_TAG_LEN);
    in_out.extend_from_slice(plaintext);
    key.seal_in_place_append_tag(gcm_nonce(iv)?, Aad::from(aad), &mut in_out)
        .map_err(|_| CryptoError::Internal("AES-GCM seal"))?;
    Ok(in_out)
}

fn aes_gcm_open(key: &[u8], iv: &[u8], aad: &[u8], ciphertext: &[u8]) -> Result<SecretBytes> {
    let key = aws_gcm_key(key)?;
    let mut in_out = SecretBytes::copy_from(ciphertext);
    let len = key
        .open_in_place(gcm_nonce(iv)?, Aad::from(aad), in_out.expose_secret_mut())
        .map_err(|_| CryptoError::DecryptionFailed)?
        .len();
    Ok(SecretBytes::copy_from(
        in_out
            .expose_secret()
            .get(..len)
            .ok_or(CryptoError::DecryptionFailed)?,
    ))
}

type Sm4Gcm = aes_gcm::AesGcm<sm4::Sm4, aes_gcm::aead::consts::U12>;

fn sm4_gcm(key: &[u8]) -> Result<Sm4Gcm> {
    Sm4Gcm::new_from_slice(key).map_err(|_| CryptoError::Internal("SM4 key of invalid length"))
}

fn sm4_gcm_seal(key: &[u8], iv: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let nonce = aes_gcm::Nonce::<aes_gcm::aead::consts::U12>::try_from(iv).map_err(|_| {
        CryptoError::InvalidIvLength {
            algorithm: Algorithm::Sm4Gcm,
            expected: 12,
            actual: iv.len(),
        }
    })?;
    sm4_gcm(key)?
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| CryptoError::Internal("SM4-GCM seal"))
}

fn sm4_gcm_open(key: &[u8], iv: &[u8], aad: &[u8], ciphertext: &[u8]) -> Result<SecretBytes> {
    let nonce = aes_gcm::Nonce::<aes_gcm::aead::consts::U12>::try_from(iv).map_err(|_| {
        CryptoError::InvalidIvLength {
            algorithm: Algorithm::Sm4Gcm,
            expected: 12,
            actual: iv.len(),
        }
    })?;
    sm4_gcm(key)?
        .decrypt(
            &nonce,
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map(SecretBytes::new)
        .map_err(|_| CryptoError::DecryptionFailed)
}

fn cbc_encrypt<C>(key: &[u8], iv: &[u8], plaintext: &[u8], padding: PaddingMode) -> Result<Vec<u8>>
where
    C: BlockCipherEncrypt
        + cbc::cipher::KeyInit
        + cbc::cipher::BlockSizeUser<BlockSize = cbc::cipher::consts::U16>,
{
    let encryptor = cbc::Encryptor::<C>::new_from_slices(key, iv)
        .map_err(|_| CryptoError::Internal("CBC key or IV of invalid length"))?;
    let out = match padding {
        PaddingMode::Pkcs7 => {
            let mut out = vec![0u8; (plaintext.len() / BLOCK_LEN + 1) * BLOCK_LEN];
            let len = encryptor
                .encrypt_padded_b2b::<Pkcs7>(plaintext, &mut out)
                .map_err(|_| CryptoError::Internal("CBC output buffer"))?
                .len();
            out.truncate(len);
            out
        }
        PaddingMode::NoPadding => {
            if !plaintext.len().is_multiple_of(BLOCK_LEN) {
                return Err(CryptoError::NotBlockAligned(plaintext.len()));
            }
            let mut out = vec![0u8; plaintext.len()];
            encryptor
                .encrypt_padded_b2b::<NoPadding>(plaintext, &mut out)
                .map_err(|_| CryptoError::NotBlockAligned(plaintext.len()))?;
            out
        }
    };
    Ok(out)
}

fn cbc_decrypt<C>(
    key: &[u8],
    iv: &[u8],
    ciphertext: &[u8],
    padding: PaddingMode,
) -> Result<SecretBytes>
where
    C: BlockCipherDecrypt
        + cbc::cipher::KeyInit
        + cbc::cipher::BlockSizeUser<BlockSize = cbc::cipher::consts::U16>,
{
    if !ciphertext.len().is_multiple_of(BLOCK_LEN) {
        return Err(CryptoError::DecryptionFailed);
    }
    let decryptor = cbc::Decryptor::<C>::new_from_slices(key, iv)
        .map_err(|_| CryptoError::Internal("CBC key or IV of invalid length"))?;
    let mut out = SecretBytes::zeroed(ciphertext.len());
    let len = match padding {
        PaddingMode::Pkcs7 => {
            if ciphertext.is_empty() {
                return Err(CryptoError::DecryptionFailed);
            }
            decryptor
                .decrypt_padded_b2b::<Pkcs7>(ciphertext, out.expose_secret_mut())
                .map_err(|_| CryptoError::DecryptionFailed)?
                .len()
        }
        PaddingMode::NoPadding => decryptor
            .decrypt_padded_b2b::<NoPadding>(ciphertext, out.expose_secret_mut())
            .map_err(|_| CryptoError::DecryptionFailed)?
            .len(),
    };
    Ok(SecretBytes::copy_from(
        out.expose_secret()
            .get(..len)
            .ok_or(CryptoError::DecryptionFailed)?,
    ))
}

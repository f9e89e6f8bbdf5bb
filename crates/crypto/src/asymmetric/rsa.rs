//! RSA through aws-lc-rs: OAEP (SHA-256/MGF1-SHA-256 and SHA-1/MGF1-SHA-1, empty
//! label), PSS (SHA-256, MGF1-SHA-256, 32-byte salt) and PKCS#1 v1.5 with SHA-256.

use std::sync::OnceLock;

use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{
    KeyPair, KeySize, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm,
    OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey,
};
use aws_lc_rs::signature::{
    ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RSA_PSS_2048_8192_SHA256,
    RSA_PSS_SHA256, RsaEncoding, RsaParameters, UnparsedPublicKey,
};

use crate::asymmetric::check_digest;
use crate::error::{CryptoError, Result};
use crate::secret::SecretBytes;
use crate::spec::{Algorithm, KeySpec, MessageType};

fn bits(spec: KeySpec) -> Result<usize> {
    spec.rsa_bits()
        .ok_or(CryptoError::Internal("not an RSA spec"))
}

fn oaep(algorithm: Algorithm) -> Result<&'static OaepAlgorithm> {
    match algorithm {
        Algorithm::RsaesOaepSha256 => Ok(&OAEP_SHA256_MGF1SHA256),
        Algorithm::RsaesOaepSha1 => Ok(&OAEP_SHA1_MGF1SHA1),
        _ => Err(CryptoError::Internal("not an RSA cipher algorithm")),
    }
}

fn signing_encoding(algorithm: Algorithm) -> Result<&'static dyn RsaEncoding> {
    match algorithm {
        Algorithm::RsaPssSha256 => Ok(&RSA_PSS_SHA256),
        Algorithm::RsaPkcs1Sha256 => Ok(&RSA_PKCS1_SHA256),
        _ => Err(CryptoError::Internal("not an RSA signature algorithm")),
    }
}

fn sha256_digest(message: &[u8], message_type: MessageType) -> Result<Digest> {
    check_digest(message, message_type)?;
    match message_type {
        MessageType::Raw => Ok(digest::digest(&digest::SHA256, message)),
        MessageType::Digest => Digest::import_less_safe(message, &digest::SHA256)
            .map_err(|_| CryptoError::Internal("digest import")),
    }
}

/// An RSA private key. The signing form is parsed (and validated) once at import; the
/// decrypting form only when a decryption first needs it, since a key has one usage and
/// a second parse costs about as much as a signature.
pub(crate) struct Private {
    pkcs8: SecretBytes,
    signing: KeyPair,
    decrypting: OnceLock<PrivateDecryptingKey>,
}

impl Private {
    pub(crate) fn generate(spec: KeySpec) -> Result<Self> {
        let size = match bits(spec)? {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            _ => return Err(CryptoError::Internal("unsupported RSA size")),
        };
        let pair = KeyPair::generate(size).map_err(|_| CryptoError::Internal("RSA keygen"))?;
        let der = pair
            .as_der()
            .map_err(|_| CryptoError::Internal("RSA PKCS#8 encoding"))?;
        Self::from_pkcs8(spec, der.as_ref())
    }

    pub(crate) fn from_pkcs8(spec: KeySpec, der: &[u8]) -> Result<Self> {
        let invalid = |reason| CryptoError::InvalidKeyMaterial { spec, reason };
        let signing = KeyPair::from_pkcs8(der).map_err(|_| invalid("not an RSA PKCS#8 key"))?;
        if signing.public_modulus_len().checked_mul(8) != Some(bits(spec)?) {
            return Err(invalid("RSA modulus size does not match the key spec"));
        }
        Ok(Self {
            pkcs8: SecretBytes::copy_from(der),
            signing,
            decrypting: OnceLock::new(),
        })
    }

    pub(crate) fn to_pkcs8(&self) -> SecretBytes {
        self.pkcs8.clone()
    }

    pub(crate) fn public_key_der(&self) -> Result<Vec<u8>> {
        use aws_lc_rs::signature::KeyPair as _;
        self.signing
            .public_key()
            .as_der()
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| CryptoError::Internal("RSA public key encoding"))
    }

    fn decrypting(&self) -> Result<&PrivateDecryptingKey> {
        if let Some(key) = self.decrypting.get() {
            return Ok(key);
        }
        let key = PrivateDecryptingKey::from_pkcs8(self.pkcs8.expose_secret())
            .map_err(|_| CryptoError::Internal("RSA decrypting key"))?;
        // Another thread may have won the race; either value is the same key.
        let _ = self.decrypting.set(key);
        self.decrypting
            .get()
            .ok_or(CryptoError::Internal("RSA decrypting key"))
    }

    pub(crate) fn sign(
        &self,
        algorithm: Algorithm,
        message: &[u8],
        message_type: MessageType,
    ) -> Result<Vec<u8>> {
        let encoding = signing_encoding(algorithm)?;
        let mut signature = vec![0u8; self.signing.public_modulus_len()];
        match message_type {
            MessageType::Raw => {
                self.signing
                    .sign(encoding, &SystemRandom::new(), message, &mut signature)
            }
            MessageType::Digest => {
                let digest = sha256_digest(message, message_type)?;
                self.signing.sign_digest(encoding, &digest, &mut signature)
            }
        }
        .map_err(|_| CryptoError::Internal("RSA signing"))?;
        Ok(signature)
    }

    pub(crate) fn decrypt(&self, algorithm: Algorithm, ciphertext: &[u8]) -> Result<SecretBytes> {
        let key = OaepPrivateDecryptingKey::new(self.decrypting()?.clone())
            .map_err(|_| CryptoError::Internal("RSA OAEP key"))?;
        let mut out = SecretBytes::zeroed(key.min_output_size());
        let len = key
            .decrypt(oaep(algorithm)?, ciphertext, out.expose_secret_mut(), None)
            .map_err(|_| CryptoError::DecryptionFailed)?
            .len();
        Ok(SecretBytes::copy_from(
            out.expose_secret()
                .get(..len)
                .ok_or(CryptoError::DecryptionFailed)?,
        ))
    }
}

/// An RSA public key, parsed once: DER SubjectPublicKeyInfo, the two verification
/// forms and the OAEP encryption form.
#[derive(Clone)]
pub(crate) struct Public {
    der: Vec<u8>,
    pss: ParsedPublicKey,
    pkcs1: ParsedPublicKey,
    oaep: std::sync::Arc<OaepPublicEncryptingKey>,
}

impl Public {
    pub(crate) fn from_der(spec: KeySpec, der: &[u8]) -> Result<Self> {
        let invalid = |reason| CryptoError::InvalidPublicKey { spec, reason };
        let key =
            PublicEncryptingKey::from_der(der).map_err(|_| invalid("not an RSA public key"))?;
        if Some(key.key_size_bits()) != spec.rsa_bits() {
            return Err(invalid("RSA modulus size does not match the key spec"));
        }
        // Store the canonical encoding, whatever form the caller sent.
        let der = key
            .as_der()
            .map_err(|_| CryptoError::Internal("RSA public key encoding"))?
            .as_ref()
            .to_vec();
        let parse = |params: &'static RsaParameters| {
            UnparsedPublicKey::new(params, der.clone())
                .parse()
                .map_err(|_| invalid("not an RSA public key"))
        };
        Ok(Self {
            pss: parse(&RSA_PSS_2048_8192_SHA256)?,
            pkcs1: parse(&RSA_PKCS1_2048_8192_SHA256)?,
            oaep: std::sync::Arc::new(
                OaepPublicEncryptingKey::new(key)
                    .map_err(|_| invalid("not an RSA encryption key"))?,
            ),
            der,
        })
    }

    pub(crate) fn der(&self) -> &[u8] {
        &self.der
    }

    pub(crate) fn verify(
        &self,
        algorithm: Algorithm,
        message: &[u8],
        message_type: MessageType,
        signature_bytes: &[u8],
    ) -> Result<bool> {
        let key = match algorithm {
            Algorithm::RsaPssSha256 => &self.pss,
            Algorithm::RsaPkcs1Sha256 => &self.pkcs1,
            _ => return Err(CryptoError::Internal("not an RSA signature algorithm")),
        };
        let digest = sha256_digest(message, message_type)?;
        Ok(key.verify_digest_sig(&digest, signature_bytes).is_ok())
    }

    pub(crate) fn encrypt(&self, algorithm: Algorithm, plaintext: &[u8]) -> Result<Vec<u8>> {
        let oaep = oaep(algorithm)?;
        let max = self.oaep.max_plaintext_size(oaep);
        if plaintext.len() > max {
            return Err(CryptoError::PlaintextTooLong {
                max,
                actual: plaintext.len(),
            });
        }
        let mut out = vec![0u8; self.oaep.ciphertext_size()];
        let len = self
            .oaep
            .encrypt(oaep, plaintext, &mut out, None)
            .map_err(|_| CryptoError::Internal("RSA OAEP encryption"))?
            .len();
        out.truncate(len);
        Ok(out)
    }
}

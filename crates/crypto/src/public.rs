//! Public keys: what GetPublicKey returns and what Verify and public-key encryption
//! need. Encoded as DER SubjectPublicKeyInfo, and as PEM `PUBLIC KEY` text.

use core::fmt;

use crate::asymmetric::{p256, rsa, secp256k1, sm2};
use crate::error::{CryptoError, Result};
use crate::pem;
use crate::spec::{Algorithm, AlgorithmKind, KeySpec, MessageType};

/// The public half of an asymmetric key.
#[derive(Clone)]
pub struct PublicKey {
    spec: KeySpec,
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Rsa(rsa::Public),
    P256(p256::Public),
    Secp256k1(secp256k1::Public),
    Sm2(sm2::Public),
}

impl PublicKey {
    /// Parses a DER SubjectPublicKeyInfo for `spec`.
    ///
    /// # Errors
    /// [`CryptoError::NotAsymmetric`] for symmetric specs, [`CryptoError::InvalidPublicKey`]
    /// for bytes that are not a public key of that spec (wrong curve, wrong RSA size).
    pub fn from_der(spec: KeySpec, der: &[u8]) -> Result<Self> {
        let inner = match spec {
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
                Inner::Rsa(rsa::Public::from_der(spec, der)?)
            }
            KeySpec::EcP256 => Inner::P256(p256::Public::from_der(der)?),
            KeySpec::EcP256K => Inner::Secp256k1(secp256k1::Public::from_der(der)?),
            KeySpec::EcSm2 => Inner::Sm2(sm2::Public::from_der(der)?),
            KeySpec::Aes256 | KeySpec::Aes192 | KeySpec::Aes128 | KeySpec::Sm4 => {
                return Err(CryptoError::NotAsymmetric(spec));
            }
        };
        Ok(Self { spec, inner })
    }

    /// Parses PEM `PUBLIC KEY` text for `spec`.
    ///
    /// # Errors
    /// As [`PublicKey::from_der`], and [`CryptoError::InvalidPublicKey`] for text that is
    /// not one PEM `PUBLIC KEY` block.
    pub fn from_pem(spec: KeySpec, text: &str) -> Result<Self> {
        let der =
            pem::decode(pem::PUBLIC_KEY_LABEL, text).ok_or(CryptoError::InvalidPublicKey {
                spec,
                reason: "not a PEM PUBLIC KEY block",
            })?;
        Self::from_der(spec, &der)
    }

    /// The key spec.
    pub fn spec(&self) -> KeySpec {
        self.spec
    }

    /// DER SubjectPublicKeyInfo.
    pub fn to_der(&self) -> Vec<u8> {
        match &self.inner {
            Inner::Rsa(k) => k.der().to_vec(),
            Inner::P256(k) => k.der().to_vec(),
            Inner::Secp256k1(k) => k.der().to_vec(),
            Inner::Sm2(k) => k.der().to_vec(),
        }
    }

    /// PEM `-----BEGIN PUBLIC KEY-----` text.
    ///
    /// # Errors
    /// [`CryptoError::Internal`] only if encoding fails.
    pub fn to_pem(&self) -> Result<String> {
        pem::encode(pem::PUBLIC_KEY_LABEL, &self.to_der())
    }

    /// Verifies `signature` over `message` (or over the digest in `message` when
    /// `message_type` is DIGEST). A signature that is wrong or malformed gives
    /// `Ok(false)`.
    ///
    /// This checks that the algorithm fits the key's family, not the key's usage: usage
    /// is [`crate::key::Key`]'s check.
    ///
    /// # Errors
    /// [`CryptoError::AlgorithmNotAllowed`]-like refusals for an algorithm of another
    /// family, [`CryptoError::InvalidDigestLength`] for a DIGEST of the wrong length.
    pub fn verify(
        &self,
        algorithm: Algorithm,
        message: &[u8],
        message_type: MessageType,
        signature: &[u8],
    ) -> Result<bool> {
        match (&self.inner, algorithm) {
            (Inner::Rsa(k), Algorithm::RsaPssSha256 | Algorithm::RsaPkcs1Sha256) => {
                k.verify(algorithm, message, message_type, signature)
            }
            (Inner::P256(k), Algorithm::EcdsaSha256) => k.verify(message, message_type, signature),
            (Inner::Secp256k1(k), Algorithm::EcdsaSha256) => {
                k.verify(message, message_type, signature)
            }
            (Inner::Sm2(k), Algorithm::Sm2Dsa) => k.verify(message, message_type, signature),
            _ => Err(self.mismatch(algorithm)),
        }
    }

    /// Encrypts `plaintext` to this key (RSA-OAEP or SM2PKE).
    ///
    /// # Errors
    /// A refusal for an algorithm of another family, [`CryptoError::PlaintextTooLong`]
    /// beyond the key's capacity.
    pub fn encrypt(&self, algorithm: Algorithm, plaintext: &[u8]) -> Result<Vec<u8>> {
        match (&self.inner, algorithm) {
            (Inner::Rsa(k), Algorithm::RsaesOaepSha256 | Algorithm::RsaesOaepSha1) => {
                k.encrypt(algorithm, plaintext)
            }
            (Inner::Sm2(k), Algorithm::Sm2Pke) => k.encrypt(plaintext),
            _ => Err(self.mismatch(algorithm)),
        }
    }

    /// For SM2 keys: the 32-byte digest `e = SM3(Z_A ‖ M)` (distinguishing ID
    /// `1234567812345678`) that an SM2DSA DIGEST-mode Sign or Verify expects.
    ///
    /// # Errors
    /// [`CryptoError::AlgorithmNotAllowed`] for keys that are not SM2.
    pub fn sm2_signing_digest(&self, message: &[u8]) -> Result<Vec<u8>> {
        match &self.inner {
            Inner::Sm2(k) => k.digest_for_signing(message),
            _ => Err(self.mismatch(Algorithm::Sm2Dsa)),
        }
    }

    fn mismatch(&self, algorithm: Algorithm) -> CryptoError {
        let usage = match algorithm.kind() {
            AlgorithmKind::Signature => crate::spec::KeyUsage::SignVerify,
            AlgorithmKind::SymmetricCipher | AlgorithmKind::AsymmetricCipher => {
                crate::spec::KeyUsage::EncryptDecrypt
            }
        };
        CryptoError::AlgorithmNotAllowed {
            spec: self.spec,
            usage,
            algorithm,
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spec == other.spec && self.to_der() == other.to_der()
    }
}

impl Eq for PublicKey {}

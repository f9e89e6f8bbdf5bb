//! Key material: the secret of one key version, parsed once for use.
//!
//! Import and export forms (fixed): raw key bytes for symmetric specs; DER PKCS#8
//! PrivateKeyInfo for key pairs. The export form is what a key blob seals.

use core::fmt;

use crate::asymmetric::{p256, rsa, secp256k1, sm2};
use crate::cipher::{self, SymmetricCiphertext, SymmetricKey};
use crate::error::{CryptoError, Result};
use crate::public::PublicKey;
use crate::random;
use crate::secret::SecretBytes;
use crate::spec::{Algorithm, KeySpec, MessageType, PaddingMode};

/// The secret of one key version. Prints only its spec.
pub struct KeyMaterial {
    spec: KeySpec,
    inner: Inner,
    /// The public key of a key pair, derived and parsed once at construction.
    public: Option<PublicKey>,
}

enum Inner {
    Aes(SecretBytes),
    Sm4(SecretBytes),
    Rsa(Box<rsa::Private>),
    P256(Box<p256::Private>),
    Secp256k1(Box<secp256k1::Private>),
    Sm2(Box<sm2::Private>),
}

impl KeyMaterial {
    /// Generates fresh material for `spec` from the system random generator.
    ///
    /// # Errors
    /// [`CryptoError::Internal`] if the generator or key generation fails.
    pub fn generate(spec: KeySpec) -> Result<Self> {
        let inner = match spec {
            KeySpec::Aes256 | KeySpec::Aes192 | KeySpec::Aes128 => {
                Inner::Aes(random::secret_bytes(symmetric_len(spec)?)?)
            }
            KeySpec::Sm4 => Inner::Sm4(random::secret_bytes(symmetric_len(spec)?)?),
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
                Inner::Rsa(Box::new(rsa::Private::generate(spec)?))
            }
            KeySpec::EcP256 => Inner::P256(Box::new(p256::Private::generate()?)),
            KeySpec::EcP256K => Inner::Secp256k1(Box::new(secp256k1::Private::generate()?)),
            KeySpec::EcSm2 => Inner::Sm2(Box::new(sm2::Private::generate()?)),
        };
        Self::assemble(spec, inner)
    }

    /// Imports material: raw key bytes for symmetric specs, DER PKCS#8 for key pairs.
    ///
    /// # Errors
    /// [`CryptoError::InvalidKeyMaterial`] for a wrong length, bytes that are not
    /// PKCS#8, a key on another curve, or an RSA modulus of another size (which also
    /// refuses weak sizes such as 1024 bits).
    pub fn import(spec: KeySpec, bytes: &[u8]) -> Result<Self> {
        let inner = match spec {
            KeySpec::Aes256 | KeySpec::Aes192 | KeySpec::Aes128 | KeySpec::Sm4 => {
                if bytes.len() != symmetric_len(spec)? {
                    return Err(CryptoError::InvalidKeyMaterial {
                        spec,
                        reason: "wrong key length for the key spec",
                    });
                }
                let secret = SecretBytes::copy_from(bytes);
                if spec == KeySpec::Sm4 {
                    Inner::Sm4(secret)
                } else {
                    Inner::Aes(secret)
                }
            }
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
                Inner::Rsa(Box::new(rsa::Private::from_pkcs8(spec, bytes)?))
            }
            KeySpec::EcP256 => Inner::P256(Box::new(p256::Private::from_pkcs8(bytes)?)),
            KeySpec::EcP256K => Inner::Secp256k1(Box::new(secp256k1::Private::from_pkcs8(bytes)?)),
            KeySpec::EcSm2 => Inner::Sm2(Box::new(sm2::Private::from_pkcs8(bytes)?)),
        };
        Self::assemble(spec, inner)
    }

    /// Imports an SM2 private key given as its raw 32-byte scalar `d` (the form of
    /// the cloud's SM2 import envelope, `spec/product-model.md` §3).
    ///
    /// # Errors
    /// [`CryptoError::InvalidKeyMaterial`] if the bytes are not a valid scalar.
    pub fn import_sm2_scalar(bytes: &[u8]) -> Result<Self> {
        Self::assemble(
            KeySpec::EcSm2,
            Inner::Sm2(Box::new(sm2::Private::from_scalar(bytes)?)),
        )
    }

    /// The key spec.
    pub fn spec(&self) -> KeySpec {
        self.spec
    }

    /// The export form: raw bytes (symmetric) or DER PKCS#8 (key pairs). Only key blob
    /// sealing and data-key-pair generation should need this.
    ///
    /// # Errors
    /// [`CryptoError::Internal`] if encoding fails.
    pub fn to_secret_bytes(&self) -> Result<SecretBytes> {
        match &self.inner {
            Inner::Aes(k) | Inner::Sm4(k) => Ok(k.clone()),
            Inner::Rsa(k) => Ok(k.to_pkcs8()),
            Inner::P256(k) => Ok(k.to_pkcs8()),
            Inner::Secp256k1(k) => k.to_pkcs8(),
            Inner::Sm2(k) => k.to_pkcs8(),
        }
    }

    /// Whether `other` is the same key as `self` (a re-import of key material must be
    /// the material the key version already holds).
    ///
    /// Symmetric keys compare their bytes in constant time. Key pairs compare their
    /// public keys: a public key determines its private key (an EC point its scalar; an
    /// RSA modulus its factors), so this holds whichever PKCS#8 encoding the material
    /// came in, and it compares nothing secret. Material of different specs is never
    /// the same key.
    pub fn is_same_key(&self, other: &Self) -> bool {
        if self.spec != other.spec {
            return false;
        }
        match (&self.inner, &other.inner) {
            (Inner::Aes(a), Inner::Aes(b)) | (Inner::Sm4(a), Inner::Sm4(b)) => a == b,
            (Inner::Aes(_) | Inner::Sm4(_), _) | (_, Inner::Aes(_) | Inner::Sm4(_)) => false,
            _ => match (&self.public, &other.public) {
                (Some(a), Some(b)) => a == b,
                _ => false,
            },
        }
    }

    fn assemble(spec: KeySpec, inner: Inner) -> Result<Self> {
        let public_der = match &inner {
            Inner::Aes(_) | Inner::Sm4(_) => None,
            Inner::Rsa(k) => Some(k.public_key_der()?),
            Inner::P256(k) => Some(k.public_key_der()?),
            Inner::Secp256k1(k) => Some(k.public_key_der()?),
            Inner::Sm2(k) => Some(k.public_key_der()?),
        };
        let public = public_der
            .map(|der| PublicKey::from_der(spec, &der))
            .transpose()?;
        Ok(Self {
            spec,
            inner,
            public,
        })
    }

    /// The public key of a key pair.
    ///
    /// # Errors
    /// [`CryptoError::NotAsymmetric`] for symmetric material.
    pub fn public_key(&self) -> Result<PublicKey> {
        self.public_key_ref().cloned()
    }

    pub(crate) fn public_key_ref(&self) -> Result<&PublicKey> {
        self.public
            .as_ref()
            .ok_or(CryptoError::NotAsymmetric(self.spec))
    }

    fn symmetric(&self) -> Option<SymmetricKey<'_>> {
        match &self.inner {
            Inner::Aes(k) => Some(SymmetricKey::Aes(k.expose_secret())),
            Inner::Sm4(k) => Some(SymmetricKey::Sm4(k.expose_secret())),
            _ => None,
        }
    }

    /// Symmetric encryption; the algorithm must fit the material (checked).
    pub(crate) fn encrypt_symmetric(
        &self,
        algorithm: Algorithm,
        plaintext: &[u8],
        iv: Option<&[u8]>,
        aad: &[u8],
        padding: PaddingMode,
    ) -> Result<SymmetricCiphertext> {
        let key = self
            .symmetric()
            .ok_or(CryptoError::NotSymmetric(self.spec))?;
        cipher::encrypt(key, algorithm, plaintext, iv, aad, padding)
    }

    /// Symmetric decryption; the algorithm must fit the material (checked).
    pub(crate) fn decrypt_symmetric(
        &self,
        algorithm: Algorithm,
        ciphertext: &[u8],
        iv: &[u8],
        aad: &[u8],
        padding: PaddingMode,
    ) -> Result<SecretBytes> {
        let key = self
            .symmetric()
            .ok_or(CryptoError::NotSymmetric(self.spec))?;
        cipher::decrypt(key, algorithm, ciphertext, iv, aad, padding)
    }

    /// Private-key decryption (RSA-OAEP, SM2PKE).
    pub(crate) fn decrypt_asymmetric(
        &self,
        algorithm: Algorithm,
        ciphertext: &[u8],
    ) -> Result<SecretBytes> {
        match (&self.inner, algorithm) {
            (Inner::Rsa(k), Algorithm::RsaesOaepSha256 | Algorithm::RsaesOaepSha1) => {
                k.decrypt(algorithm, ciphertext)
            }
            (Inner::Sm2(k), Algorithm::Sm2Pke) => k.decrypt(ciphertext),
            _ => Err(CryptoError::Internal(
                "asymmetric key and algorithm mismatch",
            )),
        }
    }

    /// SM2 decryption of a raw `C1 ‖ C3 ‖ C2` ciphertext (key import only; the
    /// Decrypt API takes GM/T 0009 DER through [`KeyMaterial::decrypt_asymmetric`]).
    pub(crate) fn decrypt_sm2_c1c3c2(&self, ciphertext: &[u8]) -> Result<SecretBytes> {
        match &self.inner {
            Inner::Sm2(k) => k.decrypt_c1c3c2(ciphertext),
            _ => Err(CryptoError::Internal("not an SM2 key")),
        }
    }

    /// Signing.
    pub(crate) fn sign(
        &self,
        algorithm: Algorithm,
        message: &[u8],
        message_type: MessageType,
    ) -> Result<Vec<u8>> {
        match (&self.inner, algorithm) {
            (Inner::Rsa(k), Algorithm::RsaPssSha256 | Algorithm::RsaPkcs1Sha256) => {
                k.sign(algorithm, message, message_type)
            }
            (Inner::P256(k), Algorithm::EcdsaSha256) => k.sign(message, message_type),
            (Inner::Secp256k1(k), Algorithm::EcdsaSha256) => k.sign(message, message_type),
            (Inner::Sm2(k), Algorithm::Sm2Dsa) => k.sign(message, message_type),
            _ => Err(CryptoError::Internal("signing key and algorithm mismatch")),
        }
    }
}

fn symmetric_len(spec: KeySpec) -> Result<usize> {
    spec.symmetric_key_len()
        .ok_or(CryptoError::Internal("not a symmetric spec"))
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

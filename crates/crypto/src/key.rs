//! A usable key: material plus the usage it was created with. Every operation first
//! asks [`crate::policy::check`] whether this spec, usage, operation and algorithm go
//! together, so no combination outside the table can run.

use crate::error::{CryptoError, Result};
use crate::material::KeyMaterial;
use crate::policy::{self, Operation};
use crate::public::PublicKey;
use crate::secret::SecretBytes;
use crate::spec::{Algorithm, AlgorithmKind, KeySpec, KeyUsage, MessageType, PaddingMode};

/// What to encrypt and how. `None` fields take the key's defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct EncryptParams<'a> {
    /// The algorithm; the spec's default when `None`.
    pub algorithm: Option<Algorithm>,
    /// The IV (GCM 12 bytes, CBC 16); random when `None`. Asymmetric ciphers take none.
    pub iv: Option<&'a [u8]>,
    /// Additional authenticated data (GCM only; at most [`crate::cipher::MAX_AAD_LEN`]).
    pub aad: &'a [u8],
    /// Padding (CBC only); PKCS#7 when `None`.
    pub padding: Option<PaddingMode>,
}

/// How to decrypt. `None` fields take the key's defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct DecryptParams<'a> {
    /// The algorithm; the spec's default when `None`.
    pub algorithm: Option<Algorithm>,
    /// The IV the encryption used (symmetric only).
    pub iv: &'a [u8],
    /// The AAD the encryption used (GCM only).
    pub aad: &'a [u8],
    /// Padding (CBC only); PKCS#7 when `None`.
    pub padding: Option<PaddingMode>,
}

/// The result of an encryption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encrypted {
    /// The algorithm used.
    pub algorithm: Algorithm,
    /// `ciphertext ‖ tag` (GCM), padded ciphertext (CBC), or the public-key ciphertext
    /// (RSA-OAEP raw, SM2PKE GM/T 0009 DER).
    pub ciphertext: Vec<u8>,
    /// The IV used; empty for asymmetric ciphers.
    pub iv: Vec<u8>,
    /// The padding used, for CBC; `None` otherwise.
    pub padding: Option<PaddingMode>,
}

/// Key material with its usage.
#[derive(Debug)]
pub struct Key {
    material: KeyMaterial,
    usage: KeyUsage,
}

impl Key {
    /// Pairs material with a usage.
    ///
    /// # Errors
    /// [`CryptoError::UsageNotAllowed`] if the spec cannot have this usage.
    pub fn new(material: KeyMaterial, usage: KeyUsage) -> Result<Self> {
        let spec = material.spec();
        if !policy::usage_allowed(spec, usage) {
            return Err(CryptoError::UsageNotAllowed { spec, usage });
        }
        Ok(Self { material, usage })
    }

    /// The key spec.
    pub fn spec(&self) -> KeySpec {
        self.material.spec()
    }

    /// The usage.
    pub fn usage(&self) -> KeyUsage {
        self.usage
    }

    /// The material.
    pub fn material(&self) -> &KeyMaterial {
        &self.material
    }

    /// The public key (key pairs only).
    ///
    /// # Errors
    /// [`CryptoError::NotAsymmetric`] for symmetric keys.
    pub fn public_key(&self) -> Result<PublicKey> {
        self.material.public_key()
    }

    fn check(&self, operation: Operation, algorithm: Option<Algorithm>) -> Result<Algorithm> {
        policy::check(self.spec(), self.usage, operation, algorithm)
    }

    /// Encrypts `plaintext`.
    ///
    /// # Errors
    /// A policy refusal, a parameter error (IV length, AAD with CBC or an asymmetric
    /// cipher, unaligned NO_PADDING data, too long a plaintext), or an internal failure.
    pub fn encrypt(&self, plaintext: &[u8], params: &EncryptParams<'_>) -> Result<Encrypted> {
        let algorithm = self.check(Operation::Encrypt, params.algorithm)?;
        let padding = padding_for(algorithm, params.padding)?;
        match algorithm.kind() {
            AlgorithmKind::SymmetricCipher => {
                let out = self.material.encrypt_symmetric(
                    algorithm,
                    plaintext,
                    params.iv,
                    params.aad,
                    padding.unwrap_or_default(),
                )?;
                Ok(Encrypted {
                    algorithm,
                    ciphertext: out.ciphertext,
                    iv: out.iv,
                    padding,
                })
            }
            AlgorithmKind::AsymmetricCipher => {
                reject_nonempty(algorithm, "IV", params.iv.unwrap_or_default())?;
                reject_nonempty(algorithm, "AAD", params.aad)?;
                let ciphertext = self
                    .material
                    .public_key_ref()?
                    .encrypt(algorithm, plaintext)?;
                Ok(Encrypted {
                    algorithm,
                    ciphertext,
                    iv: Vec::new(),
                    padding: None,
                })
            }
            AlgorithmKind::Signature => Err(CryptoError::Internal(
                "policy allowed a signature to encrypt",
            )),
        }
    }

    /// Decrypts `ciphertext`.
    ///
    /// # Errors
    /// A policy refusal, a parameter error, or the opaque
    /// [`CryptoError::DecryptionFailed`].
    pub fn decrypt(&self, ciphertext: &[u8], params: &DecryptParams<'_>) -> Result<SecretBytes> {
        let algorithm = self.check(Operation::Decrypt, params.algorithm)?;
        let padding = padding_for(algorithm, params.padding)?;
        match algorithm.kind() {
            AlgorithmKind::SymmetricCipher => self.material.decrypt_symmetric(
                algorithm,
                ciphertext,
                params.iv,
                params.aad,
                padding.unwrap_or_default(),
            ),
            AlgorithmKind::AsymmetricCipher => {
                reject_nonempty(algorithm, "IV", params.iv)?;
                reject_nonempty(algorithm, "AAD", params.aad)?;
                self.material.decrypt_asymmetric(algorithm, ciphertext)
            }
            AlgorithmKind::Signature => Err(CryptoError::Internal(
                "policy allowed a signature to decrypt",
            )),
        }
    }

    /// Signs `message` (RAW) or the digest in `message` (DIGEST, 32 bytes). Returns the
    /// algorithm used and the signature.
    ///
    /// # Errors
    /// A policy refusal, [`CryptoError::InvalidDigestLength`], or an internal failure.
    pub fn sign(
        &self,
        algorithm: Option<Algorithm>,
        message: &[u8],
        message_type: MessageType,
    ) -> Result<(Algorithm, Vec<u8>)> {
        let algorithm = self.check(Operation::Sign, algorithm)?;
        let signature = self.material.sign(algorithm, message, message_type)?;
        Ok((algorithm, signature))
    }

    /// Verifies a signature; `Ok(false)` when it does not match.
    ///
    /// # Errors
    /// A policy refusal or [`CryptoError::InvalidDigestLength`].
    pub fn verify(
        &self,
        algorithm: Option<Algorithm>,
        message: &[u8],
        message_type: MessageType,
        signature: &[u8],
    ) -> Result<(Algorithm, bool)> {
        let algorithm = self.check(Operation::Verify, algorithm)?;
        let valid =
            self.material
                .public_key_ref()?
                .verify(algorithm, message, message_type, signature)?;
        Ok((algorithm, valid))
    }
}

/// The padding an algorithm runs with: CBC defaults to PKCS#7; other algorithms take
/// none, and naming one for them is an error rather than silently ignored. Public so
/// that other engines (a PKCS#11 token) apply the same rule.
///
/// # Errors
/// [`CryptoError::UnexpectedParameter`] for a padding mode with a non-CBC algorithm.
pub fn padding_for(
    algorithm: Algorithm,
    requested: Option<PaddingMode>,
) -> Result<Option<PaddingMode>> {
    if algorithm.is_cbc() {
        Ok(Some(requested.unwrap_or_default()))
    } else if requested.is_some() {
        Err(CryptoError::UnexpectedParameter {
            algorithm,
            parameter: "padding mode",
        })
    } else {
        Ok(None)
    }
}

fn reject_nonempty(algorithm: Algorithm, parameter: &'static str, value: &[u8]) -> Result<()> {
    if value.is_empty() {
        Ok(())
    } else {
        Err(CryptoError::UnexpectedParameter {
            algorithm,
            parameter,
        })
    }
}

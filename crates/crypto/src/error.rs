//! The one error type of the crypto core.
//!
//! Variants say what was wrong with the caller's input in words a KMS can map to a wire
//! code. Failures of a cryptographic check (a GCM tag, a blob's binding, padding) are
//! deliberately opaque: they never say which byte or which check failed.

use crate::spec::{Algorithm, KeySpec, KeyUsage, WrappingAlgorithm, WrappingKeySpec};

/// Why a crypto-core call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A wire string that names no key spec.
    #[error("unknown key spec {0:?}")]
    UnknownKeySpec(String),
    /// A wire string that names no key usage.
    #[error("unknown key usage {0:?}")]
    UnknownKeyUsage(String),
    /// A wire string that names no algorithm.
    #[error("unknown algorithm {0:?}")]
    UnknownAlgorithm(String),
    /// A wire string that names no padding mode.
    #[error("unknown padding mode {0:?}")]
    UnknownPaddingMode(String),
    /// A wire string that names no message type.
    #[error("unknown message type {0:?}")]
    UnknownMessageType(String),
    /// A wire string that names no hash algorithm.
    #[error("unknown hash algorithm {0:?}")]
    UnknownHashAlgorithm(String),
    /// A wire string that names no key format.
    #[error("unknown key format {0:?}")]
    UnknownKeyFormat(String),
    /// A wire string that names no wrapping key spec.
    #[error("unknown wrapping key spec {0:?}")]
    UnknownWrappingKeySpec(String),
    /// A wire string that names no wrapping algorithm.
    #[error("unknown wrapping algorithm {0:?}")]
    UnknownWrappingAlgorithm(String),
    /// The key spec cannot be used for this usage (for example an AES key for SIGN/VERIFY).
    #[error("key spec {spec} does not support key usage {usage}")]
    UsageNotAllowed {
        /// The key's spec.
        spec: KeySpec,
        /// The usage asked for.
        usage: KeyUsage,
    },
    /// The algorithm is not allowed for this key spec and usage.
    #[error("algorithm {algorithm} is not allowed for a {spec} key with usage {usage}")]
    AlgorithmNotAllowed {
        /// The key's spec.
        spec: KeySpec,
        /// The key's usage.
        usage: KeyUsage,
        /// The algorithm asked for.
        algorithm: Algorithm,
    },
    /// The operation is not one the key's usage permits (for example Sign with an
    /// ENCRYPT/DECRYPT key).
    #[error("operation {operation} is not permitted by key usage {usage}")]
    OperationNotAllowed {
        /// The key's usage.
        usage: KeyUsage,
        /// The operation asked for.
        operation: &'static str,
    },
    /// The operation needs an asymmetric key (a public key, a data key pair).
    #[error("key spec {0} is not asymmetric")]
    NotAsymmetric(KeySpec),
    /// The operation needs a symmetric key.
    #[error("key spec {0} is not symmetric")]
    NotSymmetric(KeySpec),
    /// An IV or nonce of the wrong length for the algorithm.
    #[error("invalid IV length {actual} for {algorithm}, expected {expected}")]
    InvalidIvLength {
        /// The algorithm.
        algorithm: Algorithm,
        /// The length it needs.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// A parameter that the algorithm does not take was given (an IV or AAD for an
    /// asymmetric cipher, AAD for CBC).
    #[error("{parameter} is not accepted by {algorithm}")]
    UnexpectedParameter {
        /// The algorithm.
        algorithm: Algorithm,
        /// The parameter that must be empty.
        parameter: &'static str,
    },
    /// Additional authenticated data longer than [`crate::cipher::MAX_AAD_LEN`].
    #[error("AAD is {0} bytes, more than the limit of {max}", max = crate::cipher::MAX_AAD_LEN)]
    AadTooLong(usize),
    /// NO_PADDING with a plaintext that is not a whole number of blocks, or a CBC
    /// ciphertext that is not.
    #[error("data length {0} is not a multiple of the 16-byte block size")]
    NotBlockAligned(usize),
    /// A plaintext too long for the asymmetric cipher and key size.
    #[error("plaintext is {actual} bytes, more than {max} for this key and algorithm")]
    PlaintextTooLong {
        /// The most the key can encrypt.
        max: usize,
        /// What was given.
        actual: usize,
    },
    /// A DIGEST message whose length is not the hash's output length.
    #[error("digest is {actual} bytes, expected {expected}")]
    InvalidDigestLength {
        /// The length needed.
        expected: usize,
        /// What was given.
        actual: usize,
    },
    /// A requested length outside the allowed range (random bytes, data keys).
    #[error("length {actual} is outside {min}..={max}")]
    InvalidLength {
        /// Smallest allowed.
        min: usize,
        /// Largest allowed.
        max: usize,
        /// What was given.
        actual: usize,
    },
    /// Key material that does not parse or does not fit the spec (wrong length, wrong
    /// curve, wrong RSA size, not PKCS#8).
    #[error("invalid key material for {spec}: {reason}")]
    InvalidKeyMaterial {
        /// The spec the material was meant for.
        spec: KeySpec,
        /// What is wrong, in words; never the material itself.
        reason: &'static str,
    },
    /// A public key that does not parse as SubjectPublicKeyInfo for the spec.
    #[error("invalid public key for {spec}: {reason}")]
    InvalidPublicKey {
        /// The spec the key was meant for.
        spec: KeySpec,
        /// What is wrong.
        reason: &'static str,
    },
    /// Decryption failed: wrong key, wrong IV or AAD, tampered or truncated ciphertext,
    /// or bad padding. Deliberately says no more.
    #[error("decryption failed")]
    DecryptionFailed,
    /// A wrapping algorithm that is a known name but is refused: `RSAES_OAEP_SHA_1`
    /// (not supported by Dedicated KMS) and `RSAES_PKCS1_V1_5` (not supported either,
    /// and PKCS#1 v1.5 decryption is a padding-oracle risk).
    #[error("wrapping algorithm {0} is not supported")]
    WrappingAlgorithmNotSupported(WrappingAlgorithm),
    /// The wrapping algorithm does not go with the wrapping key spec (RSA_2048 takes
    /// only `RSAES_*`, EC_SM2 only `SM2PKE*`).
    #[error("wrapping algorithm {algorithm} cannot be used with wrapping key spec {spec}")]
    WrappingMismatch {
        /// The wrapping key spec.
        spec: WrappingKeySpec,
        /// The wrapping algorithm asked for.
        algorithm: WrappingAlgorithm,
    },
    /// A key of this spec cannot serve as a wrapping key.
    #[error("a {0} key cannot be a wrapping key")]
    NotAWrappingKey(KeySpec),
    /// The wrapping algorithm cannot carry material for the target key spec (direct
    /// algorithms carry symmetric keys, envelopes key pairs, `SM2PKE_SM4_ECB` only
    /// EC_SM2 keys).
    #[error("wrapping algorithm {algorithm} cannot import material for a {target} key")]
    ImportTargetNotAllowed {
        /// The wrapping algorithm.
        algorithm: WrappingAlgorithm,
        /// The key spec the material was meant for.
        target: KeySpec,
    },
    /// Wrapped key material could not be unwrapped: malformed framing, a public-key or
    /// symmetric decryption failure, bad padding, or a transport key of the wrong
    /// length. Deliberately says no more.
    #[error("encrypted key material could not be unwrapped")]
    ImportUnwrapFailed,
    /// A sealed object (key blob, sealed state) failed to open: wrong domain key, wrong
    /// binding, or tampering. Deliberately says no more.
    #[error("sealed data could not be opened")]
    UnsealFailed,
    /// A sealed object whose framing is malformed (too short, unknown format version).
    #[error("malformed sealed data: {0}")]
    MalformedSealedData(&'static str),
    /// The system random generator or a primitive failed internally.
    #[error("internal cryptographic failure: {0}")]
    Internal(&'static str),
}

/// Results of the crypto core.
pub type Result<T, E = CryptoError> = core::result::Result<T, E>;

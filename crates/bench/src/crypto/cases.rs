//! What the crypto benchmark measures, enumerated from the crypto core's policy table,
//! and how each case prepares a ready-to-call operation.

use std::collections::HashMap;
use std::hint::black_box;

use strongroom_crypto::blob::{BlobBinding, DomainKey};
use strongroom_crypto::data_key;
use strongroom_crypto::hash;
use strongroom_crypto::key::{DecryptParams, EncryptParams, Key};
use strongroom_crypto::material::KeyMaterial;
use strongroom_crypto::policy;
use strongroom_crypto::random;
use strongroom_crypto::secret::SecretBytes;
use strongroom_crypto::spec::{
    Algorithm, AlgorithmKind, HashAlgorithm, KeyFormat, KeySpec, KeyUsage, MessageType,
};

use crate::error::{BenchError, Failure};
use crate::measure::Op;

/// Plaintext sizes for symmetric ciphers.
const SYMMETRIC_SIZES: [usize; 2] = [32, 1024];
/// Plaintext size for public-key encryption.
const ASYMMETRIC_PLAINTEXT: usize = 32;
/// Length of RAW messages that are signed and verified.
const MESSAGE_LEN: usize = 32;
/// Input size for hashes.
const HASH_INPUT: usize = 1024;
/// Size of random fills and data keys.
const RANDOM_LEN: usize = 32;

/// Key blob binding used by the seal/open cases.
const BLOB_KEY_ID: &str = "key-bench-0000";
const BLOB_VERSION_ID: &str = "version-bench-0000";

/// One thing to time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Case {
    /// `Key::encrypt`: symmetric with a random IV, or public-key.
    Encrypt {
        spec: KeySpec,
        algorithm: Algorithm,
        size: usize,
    },
    /// `Key::decrypt` of a ciphertext made once beforehand.
    Decrypt {
        spec: KeySpec,
        algorithm: Algorithm,
        size: usize,
    },
    /// `PublicKey::encrypt` with the public key taken from the key once beforehand.
    EncryptWithPublicKey {
        spec: KeySpec,
        algorithm: Algorithm,
        size: usize,
    },
    /// `Key::sign` of a RAW message.
    Sign { spec: KeySpec, algorithm: Algorithm },
    /// `Key::verify` of a RAW message and a valid signature.
    Verify { spec: KeySpec, algorithm: Algorithm },
    /// `PublicKey::verify` with the public key taken from the key once beforehand.
    VerifyWithPublicKey { spec: KeySpec, algorithm: Algorithm },
    /// `KeyMaterial::generate`.
    GenerateKey { spec: KeySpec },
    /// `data_key::generate_key_pair` in DER.
    GenerateDataKeyPair { spec: KeySpec },
    /// `DomainKey::seal_key`.
    SealBlob { spec: KeySpec },
    /// `DomainKey::open_key` (opens and parses the material).
    OpenBlob { spec: KeySpec },
    /// `hash::hash`.
    Hash {
        algorithm: HashAlgorithm,
        size: usize,
    },
    /// `random::fill` into a reused buffer.
    Random { size: usize },
    /// `data_key::generate_data_key`.
    DataKey { size: usize },
}

/// Every case, in the order they run: per key spec its operations (each algorithm the
/// policy table allows), then key generation; then key blobs, hashes and randomness.
pub(crate) fn all() -> Vec<Case> {
    let mut cases = Vec::new();
    for &spec in KeySpec::ALL {
        for usage in policy::usages(spec) {
            let algorithms = policy::algorithms(spec, usage);
            let default = algorithms.first().copied();
            for &algorithm in algorithms {
                let is_default = Some(algorithm) == default;
                match algorithm.kind() {
                    AlgorithmKind::SymmetricCipher => {
                        for size in SYMMETRIC_SIZES {
                            cases.push(Case::Encrypt {
                                spec,
                                algorithm,
                                size,
                            });
                            cases.push(Case::Decrypt {
                                spec,
                                algorithm,
                                size,
                            });
                        }
                    }
                    AlgorithmKind::AsymmetricCipher => {
                        let size = ASYMMETRIC_PLAINTEXT;
                        cases.push(Case::Encrypt {
                            spec,
                            algorithm,
                            size,
                        });
                        if is_default {
                            cases.push(Case::EncryptWithPublicKey {
                                spec,
                                algorithm,
                                size,
                            });
                        }
                        cases.push(Case::Decrypt {
                            spec,
                            algorithm,
                            size,
                        });
                    }
                    AlgorithmKind::Signature => {
                        cases.push(Case::Sign { spec, algorithm });
                        cases.push(Case::Verify { spec, algorithm });
                        if is_default {
                            cases.push(Case::VerifyWithPublicKey { spec, algorithm });
                        }
                    }
                }
            }
        }
        cases.push(Case::GenerateKey { spec });
        if spec.is_asymmetric() {
            cases.push(Case::GenerateDataKeyPair { spec });
        }
    }
    // Key blobs: one symmetric spec and one RSA spec (the largest and slowest to parse
    // of the common ones).
    let symmetric = KeySpec::ALL.iter().copied().find(|s| s.is_symmetric());
    let rsa = KeySpec::ALL
        .iter()
        .copied()
        .find(|s| s.rsa_bits().is_some());
    for spec in [symmetric, rsa].into_iter().flatten() {
        cases.push(Case::SealBlob { spec });
        cases.push(Case::OpenBlob { spec });
    }
    for &algorithm in HashAlgorithm::ALL {
        cases.push(Case::Hash {
            algorithm,
            size: HASH_INPUT,
        });
    }
    cases.push(Case::Random { size: RANDOM_LEN });
    cases.push(Case::DataKey { size: RANDOM_LEN });
    cases
}

impl Case {
    /// The row name; filters match it.
    pub(crate) fn name(&self) -> String {
        match *self {
            Self::Encrypt {
                spec,
                algorithm,
                size,
            } => format!("{spec} Encrypt {algorithm} {size} B"),
            Self::Decrypt {
                spec,
                algorithm,
                size,
            } => format!("{spec} Decrypt {algorithm} {size} B"),
            Self::EncryptWithPublicKey {
                spec,
                algorithm,
                size,
            } => format!("{spec} Encrypt {algorithm} {size} B via PublicKey"),
            Self::Sign { spec, algorithm } => {
                format!("{spec} Sign {algorithm} RAW {MESSAGE_LEN} B")
            }
            Self::Verify { spec, algorithm } => {
                format!("{spec} Verify {algorithm} RAW {MESSAGE_LEN} B")
            }
            Self::VerifyWithPublicKey { spec, algorithm } => {
                format!("{spec} Verify {algorithm} RAW {MESSAGE_LEN} B via PublicKey")
            }
            Self::GenerateKey { spec } => format!("{spec} generate key"),
            Self::GenerateDataKeyPair { spec } => format!("{spec} generate data key pair DER"),
            Self::SealBlob { spec } => format!("{spec} seal key blob"),
            Self::OpenBlob { spec } => format!("{spec} open key blob"),
            Self::Hash { algorithm, size } => format!("{algorithm} hash {size} B"),
            Self::Random { size } => format!("random fill {size} B"),
            Self::DataKey { size } => format!("data key {size} B"),
        }
    }

    /// The key spec, for cases that use one.
    pub(crate) fn spec(&self) -> Option<KeySpec> {
        match *self {
            Self::Encrypt { spec, .. }
            | Self::Decrypt { spec, .. }
            | Self::EncryptWithPublicKey { spec, .. }
            | Self::Sign { spec, .. }
            | Self::Verify { spec, .. }
            | Self::VerifyWithPublicKey { spec, .. }
            | Self::GenerateKey { spec }
            | Self::GenerateDataKeyPair { spec }
            | Self::SealBlob { spec }
            | Self::OpenBlob { spec } => Some(spec),
            Self::Hash { .. } | Self::Random { .. } | Self::DataKey { .. } => None,
        }
    }

    /// The operation, in a word or two.
    pub(crate) fn operation(&self) -> &'static str {
        match self {
            Self::Encrypt { .. } => "Encrypt",
            Self::Decrypt { .. } => "Decrypt",
            Self::EncryptWithPublicKey { .. } => "Encrypt (PublicKey)",
            Self::Sign { .. } => "Sign",
            Self::Verify { .. } => "Verify",
            Self::VerifyWithPublicKey { .. } => "Verify (PublicKey)",
            Self::GenerateKey { .. } => "GenerateKey",
            Self::GenerateDataKeyPair { .. } => "GenerateDataKeyPair",
            Self::SealBlob { .. } => "SealKeyBlob",
            Self::OpenBlob { .. } => "OpenKeyBlob",
            Self::Hash { .. } => "Hash",
            Self::Random { .. } => "Random",
            Self::DataKey { .. } => "GenerateDataKey",
        }
    }

    /// The algorithm's wire name, where one applies.
    pub(crate) fn algorithm(&self) -> Option<&'static str> {
        match *self {
            Self::Encrypt { algorithm, .. }
            | Self::Decrypt { algorithm, .. }
            | Self::EncryptWithPublicKey { algorithm, .. }
            | Self::Sign { algorithm, .. }
            | Self::Verify { algorithm, .. }
            | Self::VerifyWithPublicKey { algorithm, .. } => Some(algorithm.as_str()),
            Self::Hash { algorithm, .. } => Some(algorithm.as_str()),
            _ => None,
        }
    }

    /// Input bytes per call, where a size applies.
    pub(crate) fn bytes(&self) -> Option<usize> {
        match *self {
            Self::Encrypt { size, .. }
            | Self::Decrypt { size, .. }
            | Self::EncryptWithPublicKey { size, .. }
            | Self::Hash { size, .. }
            | Self::Random { size }
            | Self::DataKey { size } => Some(size),
            Self::Sign { .. } | Self::Verify { .. } | Self::VerifyWithPublicKey { .. } => {
                Some(MESSAGE_LEN)
            }
            _ => None,
        }
    }

    /// Whether bytes per second mean something (bulk data rather than a fixed-size
    /// message or secret).
    pub(crate) fn has_throughput(&self) -> bool {
        match *self {
            Self::Encrypt { algorithm, .. } | Self::Decrypt { algorithm, .. } => {
                algorithm.kind() == AlgorithmKind::SymmetricCipher
            }
            Self::Hash { .. } => true,
            _ => false,
        }
    }

    /// The key spec whose material the case imports (generated once per spec and
    /// shared by every case and thread).
    fn material_spec(&self) -> Option<KeySpec> {
        match *self {
            Self::GenerateKey { .. } | Self::GenerateDataKeyPair { .. } => None,
            _ => self.spec(),
        }
    }

    /// Prepares the operation: imports a key, makes the inputs, checks once that the
    /// operation gives the right answer, and returns the call to time.
    pub(crate) fn prepare(&self, keys: &Keys) -> Result<Op, Failure> {
        match *self {
            Self::Encrypt {
                spec,
                algorithm,
                size,
            } => {
                let key = keys.key(spec, algorithm)?;
                let plaintext = vec![0x5a; size];
                let params = encrypt_params(algorithm);
                round_trip(&key, algorithm, &plaintext)?;
                Ok(Box::new(move || {
                    black_box(key.encrypt(black_box(&plaintext), &params)?);
                    Ok(())
                }))
            }
            Self::Decrypt {
                spec,
                algorithm,
                size,
            } => {
                let key = keys.key(spec, algorithm)?;
                let plaintext = vec![0x5a; size];
                let encrypted = round_trip(&key, algorithm, &plaintext)?;
                Ok(Box::new(move || {
                    let params = DecryptParams {
                        algorithm: Some(algorithm),
                        iv: &encrypted.iv,
                        aad: &[],
                        padding: encrypted.padding,
                    };
                    black_box(key.decrypt(black_box(&encrypted.ciphertext), &params)?);
                    Ok(())
                }))
            }
            Self::EncryptWithPublicKey {
                spec,
                algorithm,
                size,
            } => {
                let key = keys.key(spec, algorithm)?;
                let plaintext = vec![0x5a; size];
                round_trip(&key, algorithm, &plaintext)?;
                let public = key.public_key()?;
                Ok(Box::new(move || {
                    black_box(public.encrypt(algorithm, black_box(&plaintext))?);
                    Ok(())
                }))
            }
            Self::Sign { spec, algorithm } => {
                let key = keys.key(spec, algorithm)?;
                let message = vec![0x5a; MESSAGE_LEN];
                signature(&key, algorithm, &message)?;
                Ok(Box::new(move || {
                    black_box(key.sign(Some(algorithm), black_box(&message), MessageType::Raw)?);
                    Ok(())
                }))
            }
            Self::Verify { spec, algorithm } => {
                let key = keys.key(spec, algorithm)?;
                let message = vec![0x5a; MESSAGE_LEN];
                let signature = signature(&key, algorithm, &message)?;
                Ok(Box::new(move || {
                    let (_, valid) = key.verify(
                        Some(algorithm),
                        black_box(&message),
                        MessageType::Raw,
                        black_box(&signature),
                    )?;
                    if valid {
                        Ok(())
                    } else {
                        Err(Failure::WrongResult("a valid signature did not verify"))
                    }
                }))
            }
            Self::VerifyWithPublicKey { spec, algorithm } => {
                let key = keys.key(spec, algorithm)?;
                let message = vec![0x5a; MESSAGE_LEN];
                let signature = signature(&key, algorithm, &message)?;
                let public = key.public_key()?;
                Ok(Box::new(move || {
                    let valid = public.verify(
                        algorithm,
                        black_box(&message),
                        MessageType::Raw,
                        black_box(&signature),
                    )?;
                    if valid {
                        Ok(())
                    } else {
                        Err(Failure::WrongResult("a valid signature did not verify"))
                    }
                }))
            }
            Self::GenerateKey { spec } => Ok(Box::new(move || {
                black_box(KeyMaterial::generate(spec)?);
                Ok(())
            })),
            Self::GenerateDataKeyPair { spec } => Ok(Box::new(move || {
                black_box(data_key::generate_key_pair(spec, KeyFormat::Der)?);
                Ok(())
            })),
            Self::SealBlob { spec } => {
                let material = keys.material(spec)?;
                let domain = DomainKey::generate()?;
                Ok(Box::new(move || {
                    black_box(domain.seal_key(&blob_binding(spec), black_box(&material))?);
                    Ok(())
                }))
            }
            Self::OpenBlob { spec } => {
                let material = keys.material(spec)?;
                let domain = DomainKey::generate()?;
                let blob = domain.seal_key(&blob_binding(spec), &material)?;
                let opened = domain.open_key(&blob_binding(spec), &blob)?;
                if opened.to_secret_bytes()? != material.to_secret_bytes()? {
                    return Err(Failure::WrongResult("an opened key blob differs"));
                }
                Ok(Box::new(move || {
                    black_box(domain.open_key(&blob_binding(spec), black_box(&blob))?);
                    Ok(())
                }))
            }
            Self::Hash { algorithm, size } => {
                let data = vec![0x5a; size];
                Ok(Box::new(move || {
                    black_box(hash::hash(algorithm, black_box(&data)));
                    Ok(())
                }))
            }
            Self::Random { size } => {
                let mut buffer = vec![0; size];
                Ok(Box::new(move || {
                    random::fill(black_box(&mut buffer))?;
                    Ok(())
                }))
            }
            Self::DataKey { size } => Ok(Box::new(move || {
                black_box(data_key::generate_data_key(size)?);
                Ok(())
            })),
        }
    }
}

/// Key material generated once per key spec, in its export form, so that every case
/// and thread can import its own copy without paying for RSA key generation again.
#[derive(Debug, Default)]
pub(crate) struct Keys {
    exported: HashMap<KeySpec, SecretBytes>,
}

impl Keys {
    /// Generates material for the spec `case` needs, unless already there.
    pub(crate) fn ensure(&mut self, case: &Case) -> Result<(), BenchError> {
        let Some(spec) = case.material_spec() else {
            return Ok(());
        };
        if self.exported.contains_key(&spec) {
            return Ok(());
        }
        let failed = |source| BenchError::Crypto {
            case: format!("generating the {spec} key"),
            source,
        };
        let material = KeyMaterial::generate(spec).map_err(failed)?;
        let exported = material.to_secret_bytes().map_err(failed)?;
        self.exported.insert(spec, exported);
        Ok(())
    }

    fn material(&self, spec: KeySpec) -> Result<KeyMaterial, Failure> {
        let exported = self
            .exported
            .get(&spec)
            .ok_or(Failure::WrongResult("key material was not generated"))?;
        Ok(KeyMaterial::import(spec, exported.expose_secret())?)
    }

    /// A key of `spec` with the usage `algorithm` needs.
    fn key(&self, spec: KeySpec, algorithm: Algorithm) -> Result<Key, Failure> {
        let usage = match algorithm.kind() {
            AlgorithmKind::Signature => KeyUsage::SignVerify,
            AlgorithmKind::SymmetricCipher | AlgorithmKind::AsymmetricCipher => {
                KeyUsage::EncryptDecrypt
            }
        };
        Ok(Key::new(self.material(spec)?, usage)?)
    }
}

fn encrypt_params(algorithm: Algorithm) -> EncryptParams<'static> {
    // Random IV, no AAD, default padding: what the KMS does for a plain Encrypt.
    EncryptParams {
        algorithm: Some(algorithm),
        ..EncryptParams::default()
    }
}

/// Encrypts and decrypts once, checking the plaintext comes back.
fn round_trip(
    key: &Key,
    algorithm: Algorithm,
    plaintext: &[u8],
) -> Result<strongroom_crypto::key::Encrypted, Failure> {
    let encrypted = key.encrypt(plaintext, &encrypt_params(algorithm))?;
    let params = DecryptParams {
        algorithm: Some(algorithm),
        iv: &encrypted.iv,
        aad: &[],
        padding: encrypted.padding,
    };
    let decrypted = key.decrypt(&encrypted.ciphertext, &params)?;
    if decrypted.expose_secret() != plaintext {
        return Err(Failure::WrongResult(
            "decryption did not return the plaintext",
        ));
    }
    Ok(encrypted)
}

/// Signs once and checks the signature verifies.
fn signature(key: &Key, algorithm: Algorithm, message: &[u8]) -> Result<Vec<u8>, Failure> {
    let (_, signature) = key.sign(Some(algorithm), message, MessageType::Raw)?;
    let (_, valid) = key.verify(Some(algorithm), message, MessageType::Raw, &signature)?;
    if !valid {
        return Err(Failure::WrongResult("a fresh signature did not verify"));
    }
    Ok(signature)
}

fn blob_binding(spec: KeySpec) -> BlobBinding<'static> {
    BlobBinding {
        key_id: BLOB_KEY_ID,
        version_id: BLOB_VERSION_ID,
        spec,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_spec_and_every_allowed_algorithm_is_covered() {
        let cases = all();
        for &spec in KeySpec::ALL {
            assert!(
                cases.contains(&Case::GenerateKey { spec }),
                "{spec} has no key generation"
            );
            for usage in policy::usages(spec) {
                for &algorithm in policy::algorithms(spec, usage) {
                    let ops: Vec<Case> = cases
                        .iter()
                        .copied()
                        .filter(|c| {
                            c.spec() == Some(spec) && c.algorithm() == Some(algorithm.as_str())
                        })
                        .collect();
                    let (first, second) = match algorithm.kind() {
                        AlgorithmKind::Signature => ("Sign", "Verify"),
                        _ => ("Encrypt", "Decrypt"),
                    };
                    for operation in [first, second] {
                        assert!(
                            ops.iter().any(|c| c.operation() == operation),
                            "{spec} {algorithm} has no {operation}"
                        );
                    }
                    if algorithm.kind() == AlgorithmKind::SymmetricCipher {
                        for size in SYMMETRIC_SIZES {
                            assert!(ops.iter().any(|c| c.bytes() == Some(size)));
                        }
                    }
                }
            }
        }
        let specs: HashSet<KeySpec> = cases.iter().filter_map(Case::spec).collect();
        assert_eq!(specs.len(), 10);
        for algorithm in HashAlgorithm::ALL {
            assert!(
                cases
                    .iter()
                    .any(|c| c.algorithm() == Some(algorithm.as_str()) && c.operation() == "Hash")
            );
        }
        assert!(
            cases
                .iter()
                .any(|c| matches!(c, Case::SealBlob { spec } if spec.is_symmetric()))
        );
        assert!(
            cases
                .iter()
                .any(|c| matches!(c, Case::OpenBlob { spec } if spec.rsa_bits().is_some()))
        );
    }

    #[test]
    fn names_are_unique() {
        let cases = all();
        let names: HashSet<String> = cases.iter().map(Case::name).collect();
        assert_eq!(names.len(), cases.len());
    }

    #[test]
    fn only_operations_allowed_by_policy_are_listed() {
        for case in all() {
            let (Some(spec), Some(algorithm)) = (case.spec(), case.algorithm()) else {
                continue;
            };
            if case.operation() == "Hash" {
                continue;
            }
            let algorithm: Algorithm = algorithm.parse().unwrap();
            let allowed = policy::usages(spec)
                .any(|usage| policy::algorithms(spec, usage).contains(&algorithm));
            assert!(allowed, "{}", case.name());
        }
    }
}

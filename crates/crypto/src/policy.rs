//! Which key spec may be used for which usage and algorithm: one table, the only place
//! this is decided. [`crate::key::Key`] consults it before every operation.
//!
//! Sources: `spec/product-model.md` §1.3 and §2 (specs, usages, algorithms),
//! `spec/instance-api.md` §7 (wire names, defaults). Not offered, deliberately:
//! ECB modes (no IV, leaks equal blocks), and `ECIES_DH_SHA_1_XOR_HMAC` for EC_P256 and
//! EC_P256K (SHA-1 KDF and XOR cipher; no SDK needs it). Those strings parse as unknown
//! algorithms.

use core::fmt;

use crate::error::{CryptoError, Result};
use crate::spec::{Algorithm, KeySpec, KeyUsage};

/// An operation on a key, for the usage check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Encrypt (also data-key generation under a symmetric key).
    Encrypt,
    /// Decrypt.
    Decrypt,
    /// Sign.
    Sign,
    /// Verify.
    Verify,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 4] = [Self::Encrypt, Self::Decrypt, Self::Sign, Self::Verify];

    /// The operation's name as the APIs spell it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Encrypt => "Encrypt",
            Self::Decrypt => "Decrypt",
            Self::Sign => "Sign",
            Self::Verify => "Verify",
        }
    }

    /// The usage that permits this operation.
    pub const fn usage(self) -> KeyUsage {
        match self {
            Self::Encrypt | Self::Decrypt => KeyUsage::EncryptDecrypt,
            Self::Sign | Self::Verify => KeyUsage::SignVerify,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row: a spec, a usage it allows, and the algorithms it allows under that usage,
/// the default first.
struct Row {
    spec: KeySpec,
    usage: KeyUsage,
    algorithms: &'static [Algorithm],
}

/// The table. A (spec, usage) pair that is not here is not allowed.
const TABLE: &[Row] = &[
    Row {
        spec: KeySpec::Aes256,
        usage: KeyUsage::EncryptDecrypt,
        algorithms: &[Algorithm::AesGcm, Algorithm::AesCbc],
    },
    Row {
        spec: KeySpec::Aes192,
        usage: KeyUsage::EncryptDecrypt,
        algorithms: &[Algorithm::AesGcm, Algorithm::AesCbc],
    },
    Row {
        spec: KeySpec::Aes128,
        usage: KeyUsage::EncryptDecrypt,
        algorithms: &[Algorithm::AesGcm, Algorithm::AesCbc],
    },
    Row {
        spec: KeySpec::Sm4,
        usage: KeyUsage::EncryptDecrypt,
        algorithms: &[Algorithm::Sm4Gcm, Algorithm::Sm4Cbc],
    },
    Row {
        spec: KeySpec::Rsa2048,
        usage: KeyUsage::EncryptDecrypt,
        algorithms: &[Algorithm::RsaesOaepSha256, Algorithm::RsaesOaepSha1],
    },
    Row {
        spec: KeySpec::Rsa2048,
        usage: KeyUsage::SignVerify,
        algorithms: &[Algorithm::RsaPssSha256, Algorithm::RsaPkcs1Sha256],
    },
    Row {
        spec: KeySpec::Rsa3072,
        usage: KeyUsage::EncryptDecrypt,
        algorithms: &[Algorithm::RsaesOaepSha256, Algorithm::RsaesOaepSha1],
    },
    Row {
        spec: KeySpec::Rsa3072,
        usage: KeyUsage::SignVerify,
        algorithms: &[Algorithm::RsaPssSha256, Algorithm::RsaPkcs1Sha256],
    },
    Row {
        spec: KeySpec::Rsa4096,
        usage: KeyUsage::EncryptDecrypt,
        algorithms: &[Algorithm::RsaesOaepSha256, Algorithm::RsaesOaepSha1],
    },
    Row {
        spec: KeySpec::Rsa4096,
        usage: KeyUsage::SignVerify,
        algorithms: &[Algorithm::RsaPssSha256, Algorithm::RsaPkcs1Sha256],
    },
    Row {
        spec: KeySpec::EcP256,
        usage: KeyUsage::SignVerify,
        algorithms: &[Algorithm::EcdsaSha256],
    },
    Row {
        spec: KeySpec::EcP256K,
        usage: KeyUsage::SignVerify,
        algorithms: &[Algorithm::EcdsaSha256],
    },
    Row {
        spec: KeySpec::EcSm2,
        usage: KeyUsage::EncryptDecrypt,
        algorithms: &[Algorithm::Sm2Pke],
    },
    Row {
        spec: KeySpec::EcSm2,
        usage: KeyUsage::SignVerify,
        algorithms: &[Algorithm::Sm2Dsa],
    },
];

fn row(spec: KeySpec, usage: KeyUsage) -> Option<&'static Row> {
    TABLE.iter().find(|r| r.spec == spec && r.usage == usage)
}

/// Whether a key of `spec` may be created with `usage`.
pub fn usage_allowed(spec: KeySpec, usage: KeyUsage) -> bool {
    row(spec, usage).is_some()
}

/// The usages a spec allows, in table order.
pub fn usages(spec: KeySpec) -> impl Iterator<Item = KeyUsage> {
    TABLE
        .iter()
        .filter(move |r| r.spec == spec)
        .map(|r| r.usage)
}

/// The usage a key of `spec` gets when none is given: SIGN/VERIFY if the spec can
/// sign, else ENCRYPT/DECRYPT (the cloud's CreateKey default).
pub fn default_usage(spec: KeySpec) -> KeyUsage {
    if usage_allowed(spec, KeyUsage::SignVerify) {
        KeyUsage::SignVerify
    } else {
        KeyUsage::EncryptDecrypt
    }
}

/// The algorithms a (spec, usage) pair allows, the default first; empty if the pair
/// itself is not allowed.
pub fn algorithms(spec: KeySpec, usage: KeyUsage) -> &'static [Algorithm] {
    row(spec, usage).map_or(&[], |r| r.algorithms)
}

/// The algorithm used when a request names none.
pub fn default_algorithm(spec: KeySpec, usage: KeyUsage) -> Option<Algorithm> {
    algorithms(spec, usage).first().copied()
}

/// Checks that a key of `spec` and `usage` may run `operation` with `algorithm`
/// (or with its default when `algorithm` is `None`), and returns the algorithm to use.
///
/// # Errors
/// [`CryptoError::UsageNotAllowed`] if the spec cannot have the usage at all,
/// [`CryptoError::OperationNotAllowed`] if the usage does not permit the operation,
/// [`CryptoError::AlgorithmNotAllowed`] if the algorithm does not fit the key.
pub fn check(
    spec: KeySpec,
    usage: KeyUsage,
    operation: Operation,
    algorithm: Option<Algorithm>,
) -> Result<Algorithm> {
    let row = row(spec, usage).ok_or(CryptoError::UsageNotAllowed { spec, usage })?;
    if operation.usage() != usage {
        return Err(CryptoError::OperationNotAllowed {
            usage,
            operation: operation.as_str(),
        });
    }
    let chosen = match algorithm {
        Some(algorithm) => algorithm,
        None => *row
            .algorithms
            .first()
            .ok_or(CryptoError::Internal("policy row without algorithms"))?,
    };
    if !row.algorithms.contains(&chosen) {
        return Err(CryptoError::AlgorithmNotAllowed {
            spec,
            usage,
            algorithm: chosen,
        });
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::AlgorithmKind;

    /// Whether an algorithm of this kind can serve the operation at all.
    fn kind_fits(kind: AlgorithmKind, operation: Operation) -> bool {
        match operation {
            Operation::Encrypt | Operation::Decrypt => kind != AlgorithmKind::Signature,
            Operation::Sign | Operation::Verify => kind == AlgorithmKind::Signature,
        }
    }

    #[test]
    fn table_is_consistent() {
        for row in TABLE {
            assert!(!row.algorithms.is_empty(), "{} {}", row.spec, row.usage);
            for algorithm in row.algorithms {
                let needed = match row.usage {
                    KeyUsage::EncryptDecrypt => Operation::Encrypt,
                    KeyUsage::SignVerify => Operation::Sign,
                };
                assert!(
                    kind_fits(algorithm.kind(), needed),
                    "{algorithm} in {}",
                    row.spec
                );
                let symmetric = algorithm.kind() == AlgorithmKind::SymmetricCipher;
                assert_eq!(
                    symmetric,
                    row.spec.is_symmetric(),
                    "{algorithm} {}",
                    row.spec
                );
            }
            let dupes = TABLE
                .iter()
                .filter(|r| r.spec == row.spec && r.usage == row.usage)
                .count();
            assert_eq!(dupes, 1);
        }
        for spec in KeySpec::ALL {
            assert!(usages(*spec).next().is_some(), "{spec} has no usage");
        }
    }

    #[test]
    fn defaults_follow_the_cloud() {
        assert_eq!(default_usage(KeySpec::Aes256), KeyUsage::EncryptDecrypt);
        assert_eq!(default_usage(KeySpec::Rsa2048), KeyUsage::SignVerify);
        assert_eq!(default_usage(KeySpec::EcSm2), KeyUsage::SignVerify);
        let d = |s, u| default_algorithm(s, u).unwrap();
        assert_eq!(
            d(KeySpec::Aes128, KeyUsage::EncryptDecrypt),
            Algorithm::AesGcm
        );
        assert_eq!(d(KeySpec::Sm4, KeyUsage::EncryptDecrypt), Algorithm::Sm4Gcm);
        assert_eq!(
            d(KeySpec::Rsa3072, KeyUsage::EncryptDecrypt),
            Algorithm::RsaesOaepSha256
        );
        assert_eq!(
            d(KeySpec::Rsa4096, KeyUsage::SignVerify),
            Algorithm::RsaPssSha256
        );
        assert_eq!(
            d(KeySpec::EcP256K, KeyUsage::SignVerify),
            Algorithm::EcdsaSha256
        );
        assert_eq!(
            d(KeySpec::EcSm2, KeyUsage::EncryptDecrypt),
            Algorithm::Sm2Pke
        );
        assert_eq!(d(KeySpec::EcSm2, KeyUsage::SignVerify), Algorithm::Sm2Dsa);
        assert_eq!(
            default_algorithm(KeySpec::Aes256, KeyUsage::SignVerify),
            None
        );
    }

    #[test]
    fn check_refuses_with_the_right_reason() {
        assert_eq!(
            check(KeySpec::Aes256, KeyUsage::SignVerify, Operation::Sign, None),
            Err(CryptoError::UsageNotAllowed {
                spec: KeySpec::Aes256,
                usage: KeyUsage::SignVerify
            })
        );
        assert_eq!(
            check(
                KeySpec::Rsa2048,
                KeyUsage::SignVerify,
                Operation::Encrypt,
                None
            ),
            Err(CryptoError::OperationNotAllowed {
                usage: KeyUsage::SignVerify,
                operation: "Encrypt"
            })
        );
        assert_eq!(
            check(
                KeySpec::EcSm2,
                KeyUsage::SignVerify,
                Operation::Sign,
                Some(Algorithm::RsaPssSha256)
            ),
            Err(CryptoError::AlgorithmNotAllowed {
                spec: KeySpec::EcSm2,
                usage: KeyUsage::SignVerify,
                algorithm: Algorithm::RsaPssSha256
            })
        );
        assert_eq!(
            check(
                KeySpec::Sm4,
                KeyUsage::EncryptDecrypt,
                Operation::Decrypt,
                None
            ),
            Ok(Algorithm::Sm4Gcm)
        );
    }
}

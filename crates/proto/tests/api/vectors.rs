//! Replays the captured SDK requests (`../shared/vectors/dkms-sdk/`, see its README):
//! for each, the string to sign rebuilt from the headers as received (original case and
//! order) equals the one recorded, the body digest matches `content-sha256`, the
//! `authorization` verifies with the test client key's certificate, and signing the
//! string with the test client key reproduces it byte for byte (PKCS#1 v1.5 is
//! deterministic).

use std::path::{Path, PathBuf};

use serde_json::Value;
use strongroom_crypto::pem;
use strongroom_crypto::secret::SecretBytes;
use strongroom_proto::signature::{self, ClientPublicKey, SignatureError};

pub(crate) fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/dkms-sdk")
}

pub(crate) fn client_public_key() -> ClientPublicKey {
    let pem_text = std::fs::read_to_string(vectors_dir().join("pki/client.cert.pem")).unwrap();
    let der = pem::decode("CERTIFICATE", &pem_text).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    ClientPublicKey::from_spki_der(cert.public_key().raw).unwrap()
}

fn client_private_key() -> SecretBytes {
    let pem_text = std::fs::read_to_string(vectors_dir().join("pki/client.key.pem")).unwrap();
    SecretBytes::new(pem::decode(pem::PRIVATE_KEY_LABEL, &pem_text).unwrap())
}

/// One captured request, as received.
pub(crate) struct Captured {
    /// The path under the vectors directory, e.g. `01_Encrypt.json`, `java/01_Encrypt.json`.
    pub(crate) name: String,
    /// Name/value pairs in wire order and original case.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) string_to_sign: String,
    /// The request message's name, e.g. `EncryptRequest`.
    pub(crate) message: String,
    /// What the SDK was asked to send: the body's fields by PascalCase name, bytes in hex.
    pub(crate) decoded_body: Value,
    /// What the capture server answered: `status`, `message`, `fields`, `body_hex`.
    pub(crate) response: Value,
}

impl Captured {
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{}: no {name} header", self.name))
    }
}

pub(crate) fn captured() -> Vec<Captured> {
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in [vectors_dir(), vectors_dir().join("java")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let is_vector = path.extension().is_some_and(|e| e == "json")
                && path.file_name().is_some_and(|n| n != "summary.json");
            if is_vector {
                files.push(path);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let json: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let headers = json["request"]["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|pair| {
                    (
                        pair[0].as_str().unwrap().to_owned(),
                        pair[1].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            Captured {
                name: path
                    .strip_prefix(vectors_dir())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                headers,
                body: hex::decode(json["request"]["body_hex"].as_str().unwrap()).unwrap(),
                string_to_sign: json["string_to_sign"].as_str().unwrap().to_owned(),
                message: json["request"]["message"].as_str().unwrap().to_owned(),
                decoded_body: json["request"]["decoded_body"].clone(),
                response: json["response"].clone(),
            }
        })
        .collect()
}

#[test]
fn every_captured_request_verifies_and_re_signs() {
    let public = client_public_key();
    let private = client_private_key();
    let vectors = captured();
    // 25 Python requests and 7 Java ones.
    assert_eq!(vectors.len(), 32, "vector files changed");
    for v in &vectors {
        let headers = v.headers.iter().map(|(n, val)| (n.as_str(), val.as_str()));
        let sts = signature::string_to_sign("POST", headers).unwrap();
        assert_eq!(sts, v.string_to_sign, "{}: string to sign", v.name);
        assert_eq!(
            signature::content_sha256(&v.body),
            v.header("content-sha256"),
            "{}: body digest",
            v.name
        );
        let authorization = v.header("authorization");
        public
            .verify(&sts, authorization)
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(
            signature::sign(&private, &sts).unwrap(),
            authorization,
            "{}",
            v.name
        );
    }
}

#[test]
fn tampering_with_any_signed_part_is_detected() {
    let public = client_public_key();
    let v = captured()
        .into_iter()
        .find(|v| v.name == "ext_extra_header_Decrypt.json")
        .unwrap();
    let authorization = v.header("authorization").to_owned();
    for (i, (name, _)) in v.headers.iter().enumerate() {
        let lower = name.to_ascii_lowercase();
        let signed = lower.starts_with("x-kms-")
            || ["date", "content-sha256", "content-type"].contains(&lower.as_str());
        let mut headers = v.headers.clone();
        headers[i].1.push('x');
        let sts = signature::string_to_sign(
            "POST",
            headers.iter().map(|(n, val)| (n.as_str(), val.as_str())),
        )
        .unwrap();
        let result = public.verify(&sts, &authorization);
        if signed {
            assert_eq!(
                result,
                Err(SignatureError::Mismatch),
                "{name} changed but still verifies"
            );
        } else if lower != "authorization" {
            assert_eq!(result, Ok(()), "{name} is not signed");
        }
    }
    // A dropped caller header (the migration extension) is detected too.
    let without: Vec<_> = v
        .headers
        .iter()
        .filter(|(n, _)| n != "x-kms-migrationkeyversionid")
        .map(|(n, val)| (n.as_str(), val.as_str()))
        .collect();
    assert_eq!(
        without.len(),
        v.headers.len() - 1,
        "vector has the extension header"
    );
    let sts = signature::string_to_sign("POST", without).unwrap();
    assert_eq!(
        public.verify(&sts, &authorization),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn malformed_authorization_values_are_refused() {
    let public = client_public_key();
    let v = captured().into_iter().next().unwrap();
    for bad in [
        "",
        "Bearer",
        "bearer abc",
        "Basic abc",
        "Bearer !!!notbase64",
        "Bearer ",
    ] {
        let result = public.verify(&v.string_to_sign, bad);
        assert!(
            matches!(
                result,
                Err(SignatureError::MalformedAuthorization | SignatureError::Mismatch)
            ),
            "{bad:?}: {result:?}"
        );
    }
}

//! Client keys: the loader on the SDK vector (the cloud's RC2-40 + 3DES layout), our
//! client keys against the demands of Go's `golang.org/x/crypto/pkcs12`
//! (spec/instance-api.md §4.1) checked structurally in DER, read by OpenSSL 3 (without
//! `-legacy`) and Python `cryptography`, wrong passwords refused everywhere, and the
//! key files.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt as _, KeyIvInit as _};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::encrypted_data::EncryptedData;
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode as _, Encode as _};
use pkcs12::kdf::{Pkcs12KeyType, derive_key_utf8};
use pkcs12::pbe_params::{EncryptedPrivateKeyInfo, Pkcs12PbeParams};
use pkcs12::pfx::{Pfx, Version};
use pkcs12::safe_bag::PrivateKeyInfo;
use pkcs12::{CertBag, SafeBag};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use strongroom_certs::client_key::{self, ClientKey};
use strongroom_certs::error::CertsError;
use strongroom_certs::password::Password;
use strongroom_certs::pki::key_matches_certificate;
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer as _, X509Certificate};

use crate::support::{Scratch, openssl, python, run_fails, run_ok};
use crate::tool::{PY_LOAD_PKCS12, pkcs12_info};

const INSTANCE: &str = "kst-tst65f0c0dkms0test001";
const VECTOR_KEY_ID: &str = "KAAP.93fcc101-0054-47c1-be14-53f53e61491c";

const OID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const OID_ENCRYPTED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.6");
const OID_PBE_SHA1_3DES: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.3");
const OID_CERT_BAG: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.3");
const OID_SHROUDED_KEY_BAG: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.2");
const OID_X509_CERTIFICATE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.22.1");
const OID_LOCAL_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.21");
const OID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/dkms-sdk/pki")
}

/// A client key valid for five years from a whole second (certificates hold seconds).
fn new_client_key(password: &Password) -> ClientKey {
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    client_key::generate(INSTANCE, password, now, now + client_key::DEFAULT_VALIDITY).unwrap()
}

#[test]
fn loader_reads_the_cloud_layout_from_the_sdk_vector() {
    let dir = vectors();
    let json = dir.join(format!("clientKey_{VECTOR_KEY_ID}.json"));
    let password = client_key::read_password_file(
        &dir.join(format!("clientKey_{VECTOR_KEY_ID}_Password.txt")),
    )
    .unwrap();
    assert_eq!(
        password.expose_secret().len(),
        32,
        "the trailing newline is trimmed"
    );
    let loaded = client_key::load_file(&json, &password).unwrap();
    assert_eq!(loaded.key_id, VECTOR_KEY_ID);

    let expected_key = PrivatePkcs8KeyDer::from_pem_file(dir.join("client.key.pem")).unwrap();
    assert_eq!(
        loaded.private_key.expose_secret(),
        expected_key.secret_pkcs8_der()
    );
    let expected_cert = CertificateDer::from_pem_file(dir.join("client.cert.pem")).unwrap();
    assert_eq!(loaded.certificate, expected_cert);

    // The vector really is the legacy layout with an RC2-40 certificate bag.
    let der = pkcs12_der(&std::fs::read_to_string(&json).unwrap());
    let info = crate::support::finish(
        openssl()
            .args(["pkcs12", "-legacy", "-info", "-noout", "-passin"])
            .arg(format!("pass:{}", password.expose_secret()))
            .arg("-in")
            .arg(Scratch::new().write("vector.p12", &der)),
        b"",
    );
    assert!(
        info.stderr.contains("pbeWithSHA1And40BitRC2-CBC"),
        "{}",
        info.stderr
    );

    assert!(matches!(
        client_key::load_file(&json, &Password::from("c383f5528f54394676ca89b8e47096e7")),
        Err(CertsError::WrongPassword)
    ));
}

#[test]
fn our_client_key_meets_the_go_pkcs12_demands() {
    let password = Password::generate().unwrap();
    let key = new_client_key(&password);
    let der = STANDARD.decode(key.private_key_data.as_bytes()).unwrap();
    let pw = password.expose_secret();

    // PFX v3, authSafe of type data, MAC HMAC-SHA1.
    let pfx = Pfx::from_der(&der).unwrap();
    assert_eq!(pfx.version, Version::V3);
    assert_eq!(pfx.auth_safe.content_type, OID_DATA);
    let mac = pfx.mac_data.as_ref().expect("a MAC");
    assert_eq!(mac.mac.algorithm.oid, OID_SHA1);
    assert_eq!(mac.mac.digest.as_bytes().len(), 20);
    assert_eq!(mac.mac_salt.as_bytes().len(), 8);
    assert!(mac.iterations >= 1);

    // AuthenticatedSafe: [encryptedData (3DES) with the certificate, data with the key].
    let safe_bytes = OctetString::from_der(&pfx.auth_safe.content.to_der().unwrap())
        .unwrap()
        .into_bytes();
    let safes = Vec::<ContentInfo>::from_der(&safe_bytes).unwrap();
    assert_eq!(safes.len(), 2);
    assert_eq!(safes[0].content_type, OID_ENCRYPTED_DATA);
    assert_eq!(safes[1].content_type, OID_DATA);

    let encrypted = EncryptedData::from_der(&safes[0].content.to_der().unwrap()).unwrap();
    assert_eq!(encrypted.version, CmsVersion::V0);
    assert_eq!(encrypted.enc_content_info.content_type, OID_DATA);
    assert_eq!(
        encrypted.enc_content_info.content_enc_alg.oid,
        OID_PBE_SHA1_3DES
    );
    let cert_bags_der = decrypt_3des(
        &encrypted.enc_content_info.content_enc_alg,
        encrypted
            .enc_content_info
            .encrypted_content
            .as_ref()
            .unwrap()
            .as_bytes(),
        pw,
    );
    let cert_bags = Vec::<SafeBag>::from_der(&cert_bags_der).unwrap();
    assert_eq!(cert_bags.len(), 1, "exactly one certificate bag");
    assert_eq!(cert_bags[0].bag_id, OID_CERT_BAG);
    let cert_bag = CertBag::from_der(bag_content(&cert_bags[0])).unwrap();
    assert_eq!(cert_bag.cert_id, OID_X509_CERTIFICATE);
    assert_eq!(cert_bag.cert_value.as_bytes(), key.certificate.as_ref());
    let cert_key_id = only_local_key_id(&cert_bags[0]);

    let key_bags = Vec::<SafeBag>::from_der(
        &OctetString::from_der(&safes[1].content.to_der().unwrap())
            .unwrap()
            .into_bytes(),
    )
    .unwrap();
    assert_eq!(key_bags.len(), 1, "exactly one key bag");
    assert_eq!(key_bags[0].bag_id, OID_SHROUDED_KEY_BAG);
    let shrouded = EncryptedPrivateKeyInfo::from_der(bag_content(&key_bags[0])).unwrap();
    assert_eq!(shrouded.encryption_algorithm.oid, OID_PBE_SHA1_3DES);
    let pkcs8 = decrypt_3des(
        &shrouded.encryption_algorithm,
        shrouded.encrypted_data.as_bytes(),
        pw,
    );
    let info = PrivateKeyInfo::from_der(&pkcs8).unwrap();
    assert_eq!(info.algorithm.oid, OID_RSA_ENCRYPTION);
    assert_eq!(only_local_key_id(&key_bags[0]), cert_key_id);

    // The key in the file is the certificate's, and our loader agrees.
    let loaded = client_key::load(&key_json(&key), &password).unwrap();
    assert_eq!(loaded.private_key.expose_secret(), pkcs8.as_slice());
    assert!(key_matches_certificate(&loaded.private_key, &key.certificate).unwrap());
    assert_eq!(loaded.certificate, key.certificate);
    assert!(matches!(
        client_key::load(
            &key_json(&key),
            &Password::from("0123456789abcdef0123456789abcdef")
        ),
        Err(CertsError::WrongPassword)
    ));
}

#[test]
fn our_client_key_certificate_is_like_the_clouds() {
    let key = new_client_key(&Password::generate().unwrap());
    let (_, cert) = X509Certificate::from_der(&key.certificate).unwrap();
    assert_eq!(
        cert.signature_algorithm.algorithm.to_id_string(),
        OID_SHA256_WITH_RSA.to_string()
    );
    assert_eq!(cert.subject(), cert.issuer(), "self-signed");
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap();
    assert_eq!(cn, format!("{INSTANCE}-client"));
    assert_eq!(cert.public_key().parsed().unwrap().key_size(), 2048);
    let extensions = cert.extensions();
    assert_eq!(extensions.len(), 1, "only KeyUsage");
    let key_usage = cert.key_usage().unwrap().unwrap();
    assert!(key_usage.critical);
    assert!(key_usage.value.digital_signature());
    assert_eq!(key_usage.value.flags, 1, "digitalSignature only");
    assert_eq!(cert.validity().not_before.to_datetime(), key.not_before);
    assert_eq!(cert.validity().not_after.to_datetime(), key.not_after);
    assert!(key.not_after - key.not_before >= Duration::days(5 * 365));
    assert!(key.key_id.starts_with("KAAP."));
    assert_eq!(
        key.certificate_pem,
        strongroom_certs::pki::certificate_pem(&key.certificate)
    );
}

#[test]
fn openssl_and_python_read_our_client_key_and_refuse_wrong_passwords() {
    let password = Password::generate().unwrap();
    let key = new_client_key(&password);
    let scratch = Scratch::new();
    let p12 = scratch.write(
        "client.p12",
        &STANDARD.decode(key.private_key_data.as_bytes()).unwrap(),
    );
    let pw = password.expose_secret();

    let info = pkcs12_info(&p12, pw);
    assert!(info.contains("MAC: sha1"), "{info}");
    assert_eq!(
        info.matches("pbeWithSHA1And3-KeyTripleDES-CBC").count(),
        2,
        "{info}"
    );
    assert!(
        info.contains("Certificate bag") && info.contains("Shrouded Keybag"),
        "{info}"
    );
    // The bag attributes OpenSSL prints: localKeyID only, on both bags.
    let bags = run_ok(
        openssl()
            .args(["pkcs12", "-info", "-nodes", "-passin"])
            .arg(format!("pass:{pw}"))
            .arg("-in")
            .arg(&p12),
    );
    assert_eq!(bags.matches("localKeyID:").count(), 2, "{bags}");
    assert!(!bags.contains("friendlyName"), "{bags}");
    let wrong = run_fails(
        openssl()
            .args(["pkcs12", "-info", "-noout", "-passin", "pass:wrong", "-in"])
            .arg(&p12),
    );
    assert!(wrong.to_lowercase().contains("mac verify"), "{wrong}");

    let out = run_ok(python().args(["-c", PY_LOAD_PKCS12]).arg(&p12).arg(pw));
    assert_eq!(
        out.trim(),
        format!("match rsa 0 CN={INSTANCE}-client,OU=Client Key,O=Strongroom")
    );
    let wrong = run_ok(python().args(["-c", PY_LOAD_PKCS12]).arg(&p12).arg("wrong"));
    assert_eq!(wrong.trim(), "refused");
}

#[test]
fn key_files_hold_exactly_key_id_and_private_key_data() {
    let password = Password::generate().unwrap();
    let key = new_client_key(&password);
    let scratch = Scratch::new();
    let dir = scratch.path("keys");
    let files = client_key::write_files(&dir, &key, &password).unwrap();
    assert_eq!(
        files.key_file,
        dir.join(format!("clientKey_{}.json", key.key_id))
    );
    assert_eq!(
        files.password_file,
        dir.join(format!("clientKey_{}_Password.txt", key.key_id))
    );
    for path in [&files.key_file, &files.password_file] {
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", path.display());
    }
    let text = std::fs::read_to_string(&files.key_file).unwrap();
    assert_eq!(text, key.key_file_json().unwrap().as_str());
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let object = json.as_object().unwrap();
    assert_eq!(
        object.keys().collect::<Vec<_>>(),
        vec!["KeyId", "PrivateKeyData"]
    );
    assert_eq!(object["KeyId"], key.key_id.as_str());
    assert_eq!(object["PrivateKeyData"], key.private_key_data.as_str());
    assert_eq!(
        std::fs::read_to_string(&files.password_file).unwrap(),
        password.expose_secret(),
        "no trailing newline"
    );

    let read_back = client_key::read_password_file(&files.password_file).unwrap();
    let loaded = client_key::load_file(&files.key_file, &read_back).unwrap();
    assert_eq!(loaded.key_id, key.key_id);
    assert_eq!(loaded.certificate, key.certificate);

    assert!(matches!(
        client_key::write_files(&dir, &key, &password),
        Err(CertsError::FileExists { .. })
    ));
}

#[test]
fn non_rsa_keys_and_bad_instance_ids_are_refused() {
    let password = Password::generate().unwrap();
    let (nb, na) = client_key::default_validity();
    assert!(matches!(
        client_key::generate("Not An Id", &password, nb, na),
        Err(CertsError::InvalidInstanceId { .. })
    ));
    assert!(matches!(
        client_key::generate(INSTANCE, &password, na, nb),
        Err(CertsError::InvalidValidity { .. })
    ));
    // A well-formed file holding an EC key is not a client key.
    let validity = strongroom_certs::pki::Validity::days_from_now(5).unwrap();
    let ca = strongroom_certs::pki::CertificateAuthority::new_root(
        "ec",
        strongroom_certs::pki::KeyType::EcP256,
        validity,
        None,
    )
    .unwrap();
    let ec = ca
        .issue_client("ec", strongroom_certs::pki::KeyType::EcP256, validity)
        .unwrap();
    let p12 = strongroom_certs::pkcs12::write(
        &ec.private_key,
        &[ec.certificate],
        &password,
        strongroom_certs::pkcs12::Pkcs12Format::Legacy,
    )
    .unwrap();
    let json = serde_json::json!({
        "KeyId": "KAAP.00000000-0000-4000-8000-000000000000",
        "PrivateKeyData": STANDARD.encode(p12),
    })
    .to_string();
    assert!(matches!(
        client_key::load(&json, &password),
        Err(CertsError::InvalidPrivateKey { .. })
    ));
}

fn key_json(key: &ClientKey) -> String {
    serde_json::json!({
        "KeyId": key.key_id,
        "PrivateKeyData": key.private_key_data.as_str(),
        "Ignored": "extra members are ignored",
    })
    .to_string()
}

fn pkcs12_der(json: &str) -> Vec<u8> {
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    STANDARD
        .decode(value["PrivateKeyData"].as_str().unwrap())
        .unwrap()
}

/// A bag's value inside its `[0] EXPLICIT` wrapper (which the decoder keeps).
fn bag_content(bag: &SafeBag) -> &[u8] {
    der::AnyRef::from_der(&bag.bag_value).unwrap().value()
}

/// The value of a bag's only attribute, which must be localKeyID (an OCTET STRING).
fn only_local_key_id(bag: &SafeBag) -> Vec<u8> {
    let attributes = bag.bag_attributes.as_ref().expect("bag attributes");
    let oids: Vec<_> = attributes.iter().map(|a| a.oid).collect();
    assert_eq!(oids, vec![OID_LOCAL_KEY_ID], "only localKeyID");
    let attribute = attributes.iter().next().unwrap();
    assert_eq!(attribute.values.len(), 1);
    let value = attribute.values.iter().next().unwrap();
    OctetString::from_der(&value.to_der().unwrap())
        .unwrap()
        .into_bytes()
        .into_vec()
}

/// pbeWithSHAAnd3-KeyTripleDES-CBC decryption (RFC 7292 B.2, C), written here from the
/// RFC so the structure is checked without our encoder.
fn decrypt_3des(
    algorithm: &cms::cert::x509::spki::AlgorithmIdentifierOwned,
    ciphertext: &[u8],
    password: &str,
) -> Vec<u8> {
    assert_eq!(algorithm.oid, OID_PBE_SHA1_3DES);
    let params =
        Pkcs12PbeParams::from_der(&algorithm.parameters.as_ref().unwrap().to_der().unwrap())
            .unwrap();
    assert_eq!(params.salt.as_bytes().len(), 8);
    assert!(params.iterations >= 1);
    let salt = params.salt.as_bytes();
    let key = derive_key_utf8::<sha1::Sha1>(
        password,
        salt,
        Pkcs12KeyType::EncryptionKey,
        params.iterations,
        24,
    )
    .unwrap();
    let iv = derive_key_utf8::<sha1::Sha1>(password, salt, Pkcs12KeyType::Iv, params.iterations, 8)
        .unwrap();
    cbc::Decryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
        .unwrap()
        .decrypt_padded_vec::<Pkcs7>(ciphertext)
        .unwrap()
}

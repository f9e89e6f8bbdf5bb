//! The certificate loaders: client-key files, PKCS#12 and PEM.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use strongroom_certs::client_key;
use strongroom_certs::password::Password;
use strongroom_certs::pki::{self, CertificateAuthority};
use strongroom_certs::tls::{self, TlsVersions};
use strongroom_crypto::secret::SecretBytes;
use strongroom_proto::signature::{ClientPublicKey, RequestSigner};

use crate::fixture::{PASSWORD, fixture};

pub(crate) const JSON_DICTIONARY: &[&[u8]] = &[
    b"\"KeyId\"",
    b"\"PrivateKeyData\"",
    b"\"KAAP.\"",
    b"KAAP.",
    b"{}",
    b"[]",
    b"null",
    b"\\u0000",
    b"\\ud800",
    b"1e999999",
    b"=",
    b"\n",
    b"MII",
];

pub(crate) const DER_DICTIONARY: &[&[u8]] = &[
    // Lengths: indefinite, long forms, huge.
    &[0x80],
    &[0x81, 0xff],
    &[0x82, 0xff, 0xff],
    &[0x84, 0xff, 0xff, 0xff, 0xff],
    &[0x88, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    // INTEGER iteration counts: 1, 0, -1, 2^31 - 1, a big one.
    &[0x02, 0x01, 0x01],
    &[0x02, 0x01, 0x00],
    &[0x02, 0x01, 0xff],
    &[0x02, 0x04, 0x7f, 0xff, 0xff, 0xff],
    &[0x02, 0x03, 0x0f, 0x42, 0x40],
    // NULL, empty SEQUENCE, empty OCTET STRING, empty SET.
    &[0x05, 0x00],
    &[0x30, 0x00],
    &[0x04, 0x00],
    &[0x31, 0x00],
    // OIDs: pkcs7-data, pkcs7-encryptedData, PBES2, pbeWithSHAAnd3-KeyTripleDES-CBC.
    &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01,
    ],
    &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x06,
    ],
    &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d,
    ],
    &[
        0x06, 0x0a, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01, 0x03,
    ],
];

pub(crate) const PEM_DICTIONARY: &[&[u8]] = &[
    b"-----BEGIN CERTIFICATE-----\n",
    b"-----END CERTIFICATE-----\n",
    b"-----BEGIN PRIVATE KEY-----\n",
    b"-----END PRIVATE KEY-----\n",
    b"-----BEGIN PUBLIC KEY-----\n",
    b"-----BEGIN RSA PRIVATE KEY-----\n",
    b"-----BEGIN X509 CRL-----\n",
    b"-----",
    b"Proc-Type: 4,ENCRYPTED\n",
    b"\r\n",
    b"=",
    b"MII",
    b"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA",
];

fn password() -> Password {
    Password::new(PASSWORD.to_owned())
}

/// The client-key-file target: the JSON text (lossy UTF-8) through
/// [`client_key::load`] with the fixed password; a key that loads is then made into a
/// request signer and its certificate into a verifying key.
pub fn client_key_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(loaded) = client_key::load(&text, &password()) {
        assert!(
            loaded.key_id.starts_with(client_key::KEY_ID_PREFIX),
            "a client key without KAAP. loaded"
        );
        let _ = RequestSigner::new(&loaded.private_key);
        if let Ok(spki) = pki::certificate_public_key(&loaded.certificate) {
            let _ = ClientPublicKey::from_spki_der(&spki);
        }
    }
}

/// The PKCS#12 target: the DER through [`strongroom_certs::pkcs12::read`] with the fixed
/// password; what opens is checked (key first certificate) and made into the HSM link's
/// TLS client configuration, as `ConnectKmsInstance` does.
pub fn pkcs12(data: &[u8]) {
    let Ok(contents) = strongroom_certs::pkcs12::read(data, &password()) else {
        return;
    };
    let leaf = contents.certificates.first();
    assert!(
        leaf.is_some_and(|leaf| matches!(
            pki::key_matches_certificate(&contents.private_key, leaf),
            Ok(true)
        )),
        "pkcs12::read returned no certificate, or a first one that is not the key's"
    );
    let cas: Vec<_> = contents.certificates.clone();
    let _ = tls::mtls_client_config(
        contents.certificates.clone(),
        &contents.private_key,
        &cas,
        TlsVersions::Tls12And13,
    );
}

/// The PEM target: [`pki::certificates_from_pem`], then per certificate its fingerprint,
/// public key (as a client key's verifying key) and use as a CA (rebuilt with the fixed
/// key, and as the HSM link's trusted CAs); the text also through the PEM private-key
/// and public-key readers.
pub fn pem(data: &[u8]) {
    if let Ok(certificates) = pki::certificates_from_pem(data) {
        for certificate in &certificates {
            let _ = pki::fingerprint(certificate);
            if let Ok(spki) = pki::certificate_public_key(certificate) {
                let _ = ClientPublicKey::from_spki_der(&spki);
            }
        }
        if let Some(generated) = &fixture().generated {
            if let Some(first) = certificates.first() {
                let _ = CertificateAuthority::from_der(&generated.private_key, first);
                let _ = pki::key_matches_certificate(&generated.private_key, first);
            }
            if !certificates.is_empty() {
                let _ = tls::mtls_client_config(
                    vec![generated.certificate.clone()],
                    &generated.private_key,
                    &certificates,
                    TlsVersions::Tls12And13,
                );
            }
        }
    }
    let text = String::from_utf8_lossy(data);
    if let Some(der) = strongroom_crypto::pem::decode("PRIVATE KEY", &text) {
        let key = SecretBytes::new(der);
        let _ = RequestSigner::new(&key);
        if let Some(generated) = &fixture().generated {
            let _ = pki::key_matches_certificate(&key, &generated.certificate);
        }
    }
    for spec in [
        strongroom_crypto::spec::KeySpec::Rsa2048,
        strongroom_crypto::spec::KeySpec::EcP256,
    ] {
        let _ = strongroom_crypto::public::PublicKey::from_pem(spec, &text);
    }
}

/// The vectors' client-key file and the one made in code, and each with its PKCS#12
/// replaced by one without a MAC (so that mutations reach the decryption and bags).
pub(crate) fn client_key_seeds() -> Vec<Vec<u8>> {
    let fixture = fixture();
    let mut seeds: Vec<Vec<u8>> = fixture
        .pki_files
        .iter()
        .filter(|(name, _)| name.starts_with("clientKey_") && name.ends_with(".json"))
        .filter(|(name, _)| !name.ends_with("_Password.txt"))
        .map(|(_, bytes)| bytes.clone())
        .collect();
    if let Some(generated) = &fixture.generated {
        seeds.push(generated.key_file.clone().into_bytes());
    }
    for p12 in pkcs12_seeds() {
        seeds.push(key_file("KAAP.93fcc101-0054-47c1-be14-53f53e61491c", &p12));
    }
    seeds
}

fn key_file(key_id: &str, p12: &[u8]) -> Vec<u8> {
    serde_json::json!({ "KeyId": key_id, "PrivateKeyData": STANDARD.encode(p12) })
        .to_string()
        .into_bytes()
}

/// The vectors' `client.p12`, the legacy and modern PKCS#12 made in code, and each of
/// them without its MAC.
pub(crate) fn pkcs12_seeds() -> Vec<Vec<u8>> {
    let fixture = fixture();
    let mut whole: Vec<Vec<u8>> = fixture
        .pki_files
        .iter()
        .filter(|(name, _)| name.ends_with(".p12"))
        .map(|(_, bytes)| bytes.clone())
        .collect();
    if let Some(generated) = &fixture.generated {
        whole.push(generated.p12_legacy.clone());
        whole.push(generated.p12_modern.clone());
    }
    let stripped: Vec<Vec<u8>> = whole.iter().filter_map(|p12| without_mac(p12)).collect();
    whole.extend(stripped);
    whole
}

/// The vectors' PEM files, and PEM made in code (a certificate, a private key, a chain).
pub(crate) fn pem_seeds() -> Vec<Vec<u8>> {
    let fixture = fixture();
    let mut seeds: Vec<Vec<u8>> = fixture
        .pki_files
        .iter()
        .filter(|(name, _)| name.ends_with(".pem"))
        .map(|(_, bytes)| bytes.clone())
        .collect();
    if let Some(generated) = &fixture.generated {
        let certificate = pki::certificate_pem(&generated.certificate);
        let key = pki::private_key_pem(&generated.private_key);
        seeds.push(certificate.clone().into_bytes());
        seeds.push(key.expose_secret().to_vec());
        let mut both = certificate.into_bytes();
        both.extend_from_slice(key.expose_secret());
        seeds.push(both);
    }
    seeds
}

/// A PFX without its optional `macData`: `SEQUENCE { version, authSafe }`.
fn without_mac(pfx: &[u8]) -> Option<Vec<u8>> {
    let (tag, content, _) = der_element(pfx)?;
    if tag != 0x30 {
        return None;
    }
    let (_, _, after_version) = der_element(content)?;
    let (_, _, after_auth_safe) = der_element(after_version)?;
    let kept = content.get(..content.len().checked_sub(after_auth_safe.len())?)?;
    let mut out = vec![0x30];
    out.extend(der_length(kept.len()));
    out.extend_from_slice(kept);
    Some(out)
}

/// One DER element at the start of `data`: its tag, its content, and what follows it.
fn der_element(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let (bytes, rest) = rest.split_at_checked(count)?;
        let len = bytes.iter().try_fold(0usize, |acc, b| {
            acc.checked_mul(256)?.checked_add(usize::from(*b))
        })?;
        (len, rest)
    };
    let (content, after) = rest.split_at_checked(len)?;
    Some((tag, content, after))
}

/// A DER length.
fn der_length(len: usize) -> Vec<u8> {
    if let Ok(short) = u8::try_from(len)
        && short < 0x80
    {
        return vec![short];
    }
    let bytes: Vec<u8> = len
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    let mut out = vec![0x80 | u8::try_from(bytes.len()).unwrap_or(8)];
    out.extend(bytes);
    out
}

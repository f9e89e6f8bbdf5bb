//! `{:?}` of every public type that holds a key or a password shows none of it
//! (style guide rule 13): not as hex, not as a byte list, not as base64.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use strongroom_certs::client_key;
use strongroom_certs::instance_ca;
use strongroom_certs::password::Password;
use strongroom_certs::pkcs12::{self, Pkcs12Format};
use strongroom_certs::pki::{CertificateAuthority, KeyType, ServerNames, Validity};
use strongroom_certs::tls::{ClientAllowList, TlsVersions, mtls_server_config};
use strongroom_certs::tool::GenerateOptions;
use strongroom_crypto::secret::SecretBytes;

/// Ways a slice of `secret` could show up in printed text.
fn fragments(secret: &[u8]) -> Vec<String> {
    assert!(secret.len() >= 48, "a key, not a stub");
    let mid = secret.len() / 2;
    let window = &secret[mid..mid + 12];
    let encoded = STANDARD.encode(secret);
    let b64_mid = encoded.len() / 2;
    vec![
        hex::encode(window),
        hex::encode_upper(window),
        format!("{window:?}").trim_matches(['[', ']']).to_owned(),
        encoded[b64_mid..b64_mid + 16].to_owned(),
    ]
}

fn assert_hidden(printed: &str, secrets: &[&[u8]]) {
    for secret in secrets {
        for fragment in fragments(secret) {
            assert!(
                !printed.contains(&fragment),
                "{fragment:?} appears in {printed}"
            );
        }
    }
}

#[test]
fn debug_output_never_contains_keys_or_passwords() {
    let password_text = "a-long-and-secret-tool-password-0123456789";
    let password = Password::from(password_text);
    let options = GenerateOptions::new("/tmp/unused", password.clone());
    let printed = format!("{options:?} {password:?}");
    assert!(!printed.contains(password_text), "{printed}");

    let validity = Validity::days_from_now(30).unwrap();
    let ca = CertificateAuthority::new_root("ca", KeyType::Rsa2048, validity, Some(0)).unwrap();
    let ca_key: SecretBytes = ca.private_key();
    let leaf = ca
        .issue_server("s", &ServerNames::default(), KeyType::Rsa2048, validity)
        .unwrap();
    assert_hidden(
        &format!("{ca:?} {leaf:?}"),
        &[ca_key.expose_secret(), leaf.private_key.expose_secret()],
    );

    let p12 = pkcs12::write(
        &leaf.private_key,
        std::slice::from_ref(&leaf.certificate),
        &password,
        Pkcs12Format::Modern,
    )
    .unwrap();
    let contents = pkcs12::read(&p12, &password).unwrap();
    assert_hidden(
        &format!("{contents:?}"),
        &[leaf.private_key.expose_secret()],
    );

    let pki = instance_ca::create("kst-redaction", &ServerNames::default()).unwrap();
    assert_hidden(
        &format!("{pki:?}"),
        &[
            pki.ca.root_private_key.expose_secret(),
            pki.ca.issuing_private_key.expose_secret(),
            pki.server.private_key.expose_secret(),
        ],
    );

    let client_password = Password::generate().unwrap();
    let (nb, na) = client_key::default_validity();
    let key = client_key::generate("kst-redaction", &client_password, nb, na).unwrap();
    let json = serde_json::json!({
        "KeyId": key.key_id,
        "PrivateKeyData": key.private_key_data.as_str(),
    })
    .to_string();
    let loaded = client_key::load(&json, &client_password).unwrap();
    let printed = format!("{key:?} {loaded:?} {client_password:?}");
    assert_hidden(
        &printed,
        &[
            key.private_key_data.as_bytes(),
            loaded.private_key.expose_secret(),
        ],
    );
    assert!(
        !printed.contains(client_password.expose_secret()),
        "{printed}"
    );
    assert!(
        !printed.contains(&key.private_key_data[100..140]),
        "{printed}"
    );

    let allow = ClientAllowList::new();
    let config = mtls_server_config(
        vec![leaf.certificate.clone()],
        &leaf.private_key,
        std::slice::from_ref(ca.certificate()),
        allow,
        TlsVersions::Tls12Only,
    )
    .unwrap();
    assert_hidden(&format!("{config:?}"), &[leaf.private_key.expose_secret()]);
}

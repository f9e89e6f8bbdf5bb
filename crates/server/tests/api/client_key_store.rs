//! No secret of a client key reaches the store (`docs/access.md`): after client keys are
//! made through the management API, the store, on SQLite (every file of the node's data
//! directory, byte for byte, write-ahead log included) and on PostgreSQL (every row of
//! every table, as text), holds neither a password nor any form of a private key, while
//! it does hold each key's certificate (which shows the search looks where the records
//! are).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use strongroom_certs::client_key;
use strongroom_certs::password::Password;

use crate::support::{self, Kms};

/// What must never be found, and what must be, for one client key.
struct Made {
    id: String,
    certificate_pem: String,
    secrets: Vec<(String, Vec<u8>)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_key_secrets_are_not_in_the_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("kms");
    let kms = support::kms(&data).await;
    let made = make_client_keys(&kms).await;
    kms.server.shutdown().await;
    let haystack = read_all(&data);
    assert!(haystack.len() > 4096, "the data directory holds the store");
    check(&haystack, &made);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_key_secrets_are_not_in_the_postgres_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("kms");
    let url = support::fresh_database().await;
    let kms = support::kms_on(&data, &url, None).await;
    let made = make_client_keys(&kms).await;
    kms.server.shutdown().await;
    let mut haystack = postgres_text(&url).await;
    haystack.extend(read_all(&data));
    check(&haystack, &made);
}

/// Every row of every table of the database at `url`, as text.
pub(crate) async fn postgres_text(url: &str) -> Vec<u8> {
    let (db, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let tables = db
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
            &[],
        )
        .await
        .unwrap();
    assert!(tables.len() > 5, "the schema's tables are listed");
    let mut haystack = Vec::new();
    for table in tables {
        let name: String = table.get(0);
        let rows = db
            .query(&format!("SELECT t::text FROM \"{name}\" t"), &[])
            .await
            .unwrap();
        for row in rows {
            let text: String = row.get(0);
            haystack.extend(text.into_bytes());
        }
    }
    haystack
}

/// The bytes of every file under `dir`, one after another.
pub(crate) fn read_all(dir: &std::path::Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for path in walk(dir) {
        match std::fs::read(&path) {
            Ok(content) => bytes.extend(content),
            // A socket or a file removed since the listing.
            Err(e) if path.exists() => panic!("{}: {e}", path.display()),
            Err(_) => {}
        }
    }
    bytes
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

async fn make_client_keys(kms: &Kms) -> Vec<Made> {
    let c = support::client(&kms.server, &kms.access_key_id, &kms.access_key_secret);
    let instance = c.call("CreateKmsInstance", &[]).await.unwrap()["KmsInstances"]["KmsInstance"]
        [0]["KmsInstanceId"]
        .as_str()
        .unwrap()
        .to_owned();
    support::key_access_point(&c, &instance).await;
    let mut made = Vec::new();
    for password in ["Zq9-needle-pw-one", "Zq9-needle-pw-two", "Zq9_needle_pw_3"] {
        let answer = c
            .call(
                "CreateClientKey",
                &[("AapName", "app"), ("Password", password)],
            )
            .await
            .unwrap();
        made.push(secrets_of(&c, &answer, password).await);
    }
    made
}

async fn secrets_of(
    c: &strongroom_server::client::ManagementClient,
    answer: &Value,
    password: &str,
) -> Made {
    let id = answer["ClientKeyId"].as_str().unwrap().to_owned();
    let data = answer["PrivateKeyData"].as_str().unwrap().to_owned();
    let file = serde_json::json!({"KeyId": id, "PrivateKeyData": data}).to_string();
    let loaded = client_key::load(&file, &Password::new(password.to_owned())).unwrap();
    let der = loaded.private_key.expose_secret().to_vec();
    // The tail of an RSA PKCS#8 key is its CRT parameters (p, q, dp, dq, qinv): secret,
    // unlike the modulus near its start, which the certificate holds.
    let tail = der[der.len() - 300..der.len() - 200].to_vec();
    let utf16: Vec<u8> = password.encode_utf16().flat_map(u16::to_be_bytes).collect();
    let secrets = vec![
        ("password".to_owned(), password.as_bytes().to_vec()),
        ("password, UTF-16".to_owned(), utf16),
        ("PrivateKeyData".to_owned(), data.clone().into_bytes()),
        ("PKCS#12".to_owned(), STANDARD.decode(&data).unwrap()),
        ("private key DER".to_owned(), der.clone()),
        (
            "private key base64".to_owned(),
            STANDARD.encode(&der).into_bytes(),
        ),
        ("private key hex".to_owned(), hex::encode(&der).into_bytes()),
        ("CRT parameters".to_owned(), tail.clone()),
        (
            "CRT parameters, hex".to_owned(),
            hex::encode(&tail).into_bytes(),
        ),
        (
            "CRT parameters, HEX".to_owned(),
            hex::encode_upper(&tail).into_bytes(),
        ),
    ];
    let got = c
        .call("GetClientKey", &[("ClientKeyId", &id)])
        .await
        .unwrap();
    Made {
        id,
        certificate_pem: got["PublicKeyData"].as_str().unwrap().to_owned(),
        secrets,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn check(haystack: &[u8], made: &[Made]) {
    assert_eq!(made.len(), 3);
    for key in made {
        // The search looks where the records are: the public part is there.
        assert!(
            contains(haystack, key.id.as_bytes()),
            "{} is stored",
            key.id
        );
        let line = key
            .certificate_pem
            .lines()
            .find(|l| !l.starts_with("-----"))
            .unwrap();
        assert!(
            contains(haystack, line.as_bytes()),
            "the certificate of {} is stored",
            key.id
        );
        for (what, secret) in &key.secrets {
            assert!(
                !contains(haystack, secret),
                "the {what} of {} is in the store",
                key.id
            );
        }
    }
}

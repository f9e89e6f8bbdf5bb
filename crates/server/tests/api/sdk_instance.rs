//! The instance API (`docs/instance-api.md`) driven by the official dedicated-KMS SDK for
//! Python (`alibabacloud-dkms-gcs` 1.0.2, in the venv `scripts/test.sh` makes) over TLS
//! with the instance's CA file, against one node with two real HSM nodes: every API,
//! every key spec it applies to, and the refusals of `spec/instance-api.md` §11. The
//! script (`sdk_instance.py`) makes the calls and the independent checks; this side sets
//! up keys, access points and client keys through the management API and holds the
//! expected error codes.

use std::path::Path;

use serde_json::{Value, json};
use strongroom_certs::client_key;
use strongroom_certs::password::Password;
use strongroom_server::client::ManagementClient;

use crate::support::{self, Hsms};

/// Every key the script uses: (spec, usage).
const KEYS: &[(&str, &str)] = &[
    ("Aliyun_AES_256", "ENCRYPT/DECRYPT"),
    ("Aliyun_AES_192", "ENCRYPT/DECRYPT"),
    ("Aliyun_AES_128", "ENCRYPT/DECRYPT"),
    ("Aliyun_SM4", "ENCRYPT/DECRYPT"),
    ("RSA_2048", "ENCRYPT/DECRYPT"),
    ("RSA_2048", "SIGN/VERIFY"),
    ("RSA_3072", "ENCRYPT/DECRYPT"),
    ("RSA_3072", "SIGN/VERIFY"),
    ("RSA_4096", "SIGN/VERIFY"),
    ("EC_SM2", "ENCRYPT/DECRYPT"),
    ("EC_SM2", "SIGN/VERIFY"),
    ("EC_P256", "SIGN/VERIFY"),
    ("EC_P256K", "SIGN/VERIFY"),
];

const KEY_USER: &str = "RbacPermission/Template/CryptoServiceKeyUser";
const SECRET_USER: &str = "RbacPermission/Template/CryptoServiceSecretUser";

/// Sends this process's logs, at debug level, to `file` (each test runs in its own
/// process under the test runner; elsewhere the first test to ask wins).
pub(crate) fn capture_logs(file: &Path) {
    let file = std::fs::File::create(file).unwrap();
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_instance_sdk_against_an_instance_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("node.log");
    capture_logs(&log);
    let hsms = Hsms::start(&dir.path().join("hsm")).await;
    let kms = support::kms(&dir.path().join("kms")).await;
    let c = support::client(&kms.server, &kms.access_key_id, &kms.access_key_secret);
    let instance = support::connected_instance(&c, &hsms, &[]).await;

    let mut keys = Vec::new();
    for (spec, usage) in KEYS {
        let id = create_key(&c, &instance, spec, usage).await;
        let alias = format!(
            "alias/sdk-{}-{}",
            spec.to_lowercase(),
            &usage[..4].to_lowercase()
        );
        c.call("CreateAlias", &[("AliasName", &alias), ("KeyId", &id)])
            .await
            .unwrap();
        keys.push(json!({"id": id, "spec": spec, "usage": usage, "alias": alias}));
    }
    // A rotated key: its first version and its new primary one.
    let rotated = create_key(&c, &instance, "Aliyun_AES_256", "ENCRYPT/DECRYPT").await;
    let initial = c
        .call("DescribeKey", &[("KeyId", &rotated)])
        .await
        .unwrap()["KeyMetadata"]["PrimaryKeyVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let primary = c
        .call("CreateKeyVersion", &[("KeyId", &rotated)])
        .await
        .unwrap()["KeyVersion"]["KeyVersionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let rotation = json!({"key": rotated, "initial": initial, "primary": primary});
    let disabled = create_key(&c, &instance, "Aliyun_AES_256", "ENCRYPT/DECRYPT").await;
    c.call("DisableKey", &[("KeyId", &disabled)]).await.unwrap();
    let aes = keys[0]["id"].as_str().unwrap().to_owned();

    // Who may call: from loopback everything; one key only; from another network.
    for (name, sources) in [("loopback", "127.0.0.1,::1"), ("elsewhere", "10.0.0.0/8")] {
        c.call(
            "CreateNetworkRule",
            &[
                ("Name", name),
                ("Type", "Private"),
                ("SourcePrivateIp", sources),
            ],
        )
        .await
        .unwrap();
    }
    let policy = |name: &'static str, permissions: Value, resources: Value, rule: &'static str| {
        let c = &c;
        let instance = instance.clone();
        async move {
            c.call(
                "CreatePolicy",
                &[
                    ("Name", name),
                    ("KmsInstance", &instance),
                    ("Permissions", &permissions.to_string()),
                    ("Resources", &resources.to_string()),
                    (
                        "AccessControlRules",
                        &json!({"NetworkRules": [rule]}).to_string(),
                    ),
                ],
            )
            .await
            .unwrap();
        }
    };
    policy(
        "all",
        json!([KEY_USER, SECRET_USER]),
        json!(["key/*", "secret/*"]),
        "loopback",
    )
    .await;
    policy(
        "one-key",
        json!([KEY_USER]),
        json!([format!("key/{aes}")]),
        "loopback",
    )
    .await;
    policy(
        "wrong-net",
        json!([KEY_USER]),
        json!(["key/*"]),
        "elsewhere",
    )
    .await;
    let files = dir.path().join("app");
    let mut clients = serde_json::Map::new();
    let now = time::OffsetDateTime::now_utc();
    let expires_at = now + time::Duration::seconds(20);
    for (name, policy, validity) in [
        ("main", "all", None),
        ("limited", "one-key", None),
        ("wrong_network", "wrong-net", None),
        (
            "expiring",
            "all",
            Some((now - time::Duration::hours(1), expires_at)),
        ),
    ] {
        c.call(
            "CreateApplicationAccessPoint",
            &[("Name", name), ("Policies", &json!([policy]).to_string())],
        )
        .await
        .unwrap();
        let made = client_key_files(&c, name, validity, &files).await;
        clients.insert(name.to_owned(), made);
    }

    let (ca_file, endpoint) = instance_endpoint(&c, &instance, &files).await;

    let output = tokio::process::Command::new(sdk_python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/api/sdk_instance.py"
        ))
        .env("SR_ENDPOINT", &endpoint)
        .env("SR_CA", &ca_file)
        .env("SR_CLIENTS", Value::Object(clients.clone()).to_string())
        .env("SR_EXPIRES_AT", expires_at.unix_timestamp().to_string())
        .env("SR_KEYS", Value::Array(keys).to_string())
        .env("SR_DISABLED", &disabled)
        .env("SR_ROTATED", rotation.to_string())
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "the SDK script failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    eprintln!("{out:#}");
    check(&out);
    let secret = kms.access_key_secret.clone();
    kms.server.shutdown().await;
    no_secrets_in_logs(
        &log,
        &dir.path().join("kms").join("audit.log"),
        &clients,
        &secret,
    );
    hsms.primary.shutdown().await;
    hsms.member.shutdown().await;
}

/// The node's debug log and its audit log hold none of the test's secrets: client-key
/// passwords and private keys, the AccessKey secret, the plaintexts' fixed prefixes.
fn no_secrets_in_logs(
    log: &Path,
    audit: &Path,
    clients: &serde_json::Map<String, Value>,
    access_key_secret: &str,
) {
    let mut secrets: Vec<(String, String)> = vec![
        ("the AccessKey secret".into(), access_key_secret.to_owned()),
        ("a plaintext".into(), "hello dkms".into()),
        ("a message".into(), "message for ".into()),
    ];
    for (name, client) in clients {
        secrets.push((
            format!("the password of {name}"),
            client["password"].as_str().unwrap().to_owned(),
        ));
        let file: Value = serde_json::from_str(
            &std::fs::read_to_string(client["key_file"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        let data = file["PrivateKeyData"].as_str().unwrap();
        secrets.push((format!("the private key of {name}"), data[..64].to_owned()));
    }
    let log_text = std::fs::read_to_string(log).unwrap();
    // The audit writer may still be writing what the last requests queued.
    let mut audit_text = String::new();
    for _ in 0..40 {
        let now = std::fs::read_to_string(audit).unwrap();
        if now.len() == audit_text.len() && !now.is_empty() {
            break;
        }
        audit_text = now;
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let lines = audit_text.lines().count();
    assert!(lines > 200, "the audit log holds every call: {lines} lines");
    if log_text.is_empty() {
        eprintln!(
            "another test holds this process's log subscriber: only the audit log is searched"
        );
    }
    for (what, secret) in &secrets {
        for (name, text) in [("the debug log", &log_text), ("the audit log", &audit_text)] {
            assert!(!text.contains(secret.as_str()), "{what} is in {name}");
        }
    }
}

pub(crate) async fn create_key(
    c: &ManagementClient,
    instance: &str,
    spec: &str,
    usage: &str,
) -> String {
    c.call(
        "CreateKey",
        &[
            ("DKMSInstanceId", instance),
            ("KeySpec", spec),
            ("KeyUsage", usage),
        ],
    )
    .await
    .unwrap()["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The instance's CA file (`PrivateKmsCA_<id>.pem`, written in `dir`) and endpoint
/// (`127.0.0.1:<InstanceApiPort>`), as a user gets them, once the endpoint accepts
/// connections.
pub(crate) async fn instance_endpoint(
    c: &ManagementClient,
    instance: &str,
    dir: &Path,
) -> (std::path::PathBuf, String) {
    let got = c
        .call("GetKmsInstance", &[("KmsInstanceId", instance)])
        .await
        .unwrap();
    let ca_file = dir.join(format!("PrivateKmsCA_{instance}.pem"));
    std::fs::write(
        &ca_file,
        got["KmsInstance"]["CaCertificateChainPem"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let port = got["KmsInstance"]["InstanceApiPort"].as_u64().unwrap();
    let endpoint = format!("127.0.0.1:{port}");
    support::eventually("the instance endpoint", || async {
        tokio::net::TcpStream::connect(&endpoint).await.is_ok()
    })
    .await;
    (ca_file, endpoint)
}

/// A client key of access point `aap`, saved as the console saves it; `{key_file,
/// password}`.
pub(crate) async fn client_key_files(
    c: &ManagementClient,
    aap: &str,
    validity: Option<(time::OffsetDateTime, time::OffsetDateTime)>,
    dir: &Path,
) -> Value {
    let password = format!("Pass-{aap}-1");
    let format = time::format_description::well_known::Rfc3339;
    let times = validity.map(|(a, b)| {
        (
            a.replace_nanosecond(0).unwrap().format(&format).unwrap(),
            b.replace_nanosecond(0).unwrap().format(&format).unwrap(),
        )
    });
    let mut params = vec![("AapName", aap), ("Password", password.as_str())];
    if let Some((before, after)) = &times {
        params.push(("NotBefore", before));
        params.push(("NotAfter", after));
    }
    let made = c.call("CreateClientKey", &params).await.unwrap();
    let files = client_key::write_answer_files(
        dir,
        made["ClientKeyId"].as_str().unwrap(),
        made["PrivateKeyData"].as_str().unwrap(),
        &Password::new(password.clone()),
    )
    .unwrap();
    json!({"key_file": files.key_file, "password": password})
}

pub(crate) fn sdk_python() -> String {
    std::env::var("STRONGROOM_DKMS_PYTHON").unwrap_or_else(|_| {
        panic!(
            "STRONGROOM_DKMS_PYTHON is not set: run scripts/test.sh, which makes the venv \
             with the official SDK"
        )
    })
}

/// The code and HTTP status each refusal must have, by the end of its name.
fn expected(name: &str) -> (&'static str, i64) {
    const TABLE: &[(&str, &str, i64)] = &[
        ("wrong aad", "InvalidParameter", 400),
        ("decrypt with the other version", "InvalidParameter", 400),
        (
            "encrypt with a version of another key",
            "InvalidParameter",
            400,
        ),
        ("tampered ciphertext", "InvalidParameter", 400),
        ("data key of 1025 bytes", "InvalidParameter", 400),
        ("random of 1025 bytes", "InvalidParameter", 400),
        ("pair of an unknown spec", "InvalidParameter", 400),
        ("sign with the wrong algorithm", "InvalidParameter", 400),
        ("sign with an encryption key", "UnsupportedOperation", 400),
        ("encrypt with a signing key", "UnsupportedOperation", 400),
        ("public key of a symmetric key", "UnsupportedOperation", 400),
        (
            "advance encrypt with an RSA key",
            "UnsupportedOperation",
            400,
        ),
        ("unknown key", "Forbidden.KeyNotFound", 404),
        ("unknown alias", "Forbidden.KeyNotFound", 404),
        ("disabled key", "Rejected.Disabled", 409),
        ("secret not found", "Forbidden.ResourceNotFound", 404),
        ("resource outside the policy", "Forbidden.NoPermission", 403),
        (
            "secret without the secret permission",
            "Forbidden.NoPermission",
            403,
        ),
        (
            "source outside the network rule",
            "Forbidden.NoPermission",
            403,
        ),
        ("tampered signature", "SignatureNotMatch", 401),
        ("unknown client key", "Unauthorized", 404),
        ("expired client key", "Unauthorized", 404),
    ];
    TABLE
        .iter()
        .find(|(suffix, _, _)| name.ends_with(suffix))
        .map(|(_, code, status)| (*code, *status))
        .unwrap_or_else(|| panic!("no expected code for the refusal {name:?}"))
}

fn check(out: &Value) {
    let mut failed = Vec::new();
    for (section, trace) in out["errors"].as_object().unwrap() {
        eprintln!(
            "section {section} raised:\n{}",
            trace.as_str().unwrap_or_default()
        );
        failed.push(format!("section {section}"));
    }
    let checks = out["checks"].as_object().unwrap();
    assert!(checks.len() > 150, "only {} checks ran", checks.len());
    for (name, ok) in checks {
        if ok != &Value::Bool(true) {
            failed.push(format!("check {name}"));
        }
    }
    let refusals = out["refusals"].as_object().unwrap();
    assert!(refusals.len() >= 20, "only {} refusals ran", refusals.len());
    for (name, got) in refusals {
        let (code, status) = expected(name);
        if got["code"].as_str() != Some(code) || got["status"].as_i64() != Some(status) {
            failed.push(format!("refusal {name}: {got} (expected {code} {status})"));
        }
    }
    assert!(failed.is_empty(), "failed:\n{}", failed.join("\n"));
}

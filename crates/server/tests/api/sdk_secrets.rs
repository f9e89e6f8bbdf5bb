//! Secrets (`docs/secrets.md`) end to end with both official SDKs, on SQLite and on
//! PostgreSQL, against one node with two real HSM nodes: the management SDK
//! (`sdk_secrets.py`, typed models) creates, versions, lists, updates, deletes and
//! restores secrets, with the refusals' codes; then the dedicated-KMS SDK
//! (`sdk_secrets_instance.py`) reads them through the instance endpoint with three client
//! keys — one allowed every secret, one allowed one secret, one whose policy grants only
//! the key permission — and a secret under a disabled key. Finally the store (the SQLite
//! files, or every PostgreSQL row as text) is searched for every value in every form, and
//! holds none.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::client_key_store::{postgres_text, read_all};
use crate::sdk_instance::{
    capture_logs, client_key_files, create_key, instance_endpoint, sdk_python,
};
use crate::support::{self, Hsms, Kms};

const KEY_USER: &str = "RbacPermission/Template/CryptoServiceKeyUser";
const SECRET_USER: &str = "RbacPermission/Template/CryptoServiceSecretUser";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sdks_keep_and_read_secrets_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("node.log");
    capture_logs(&log);
    let hsms = Hsms::start(&dir.path().join("hsm")).await;
    let data = dir.path().join("kms");
    let kms = support::kms(&data).await;
    let values = run(&kms, &hsms, dir.path()).await;
    kms.server.shutdown().await;
    let haystack = read_all(&data);
    assert!(haystack.len() > 4096, "the data directory holds the store");
    no_plaintext(&haystack, &values);
    // Nor is one in the node's debug log or its audit log (the data directory, searched
    // above, holds the audit log too).
    let log_text = std::fs::read(&log).unwrap();
    if !log_text.is_empty() {
        no_plaintext_in(&log_text, &values);
    }
    hsms.primary.shutdown().await;
    hsms.member.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sdks_keep_and_read_secrets_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let hsms = Hsms::start(&dir.path().join("hsm")).await;
    let data = dir.path().join("kms");
    let url = support::fresh_database().await;
    let kms = support::kms_on(&data, &url, None).await;
    let values = run(&kms, &hsms, dir.path()).await;
    kms.server.shutdown().await;
    let mut haystack = postgres_text(&url).await;
    haystack.extend(read_all(&data));
    no_plaintext(&haystack, &values);
    hsms.primary.shutdown().await;
    hsms.member.shutdown().await;
}

/// Both scripts; returns every secret value they stored.
async fn run(kms: &Kms, hsms: &Hsms, dir: &Path) -> Vec<Vec<u8>> {
    let c = support::client(&kms.server, &kms.access_key_id, &kms.access_key_secret);
    let instance = support::connected_instance(&c, hsms, &[("SecretNum", "6")]).await;
    let aes = create_key(&c, &instance, "Aliyun_AES_256", "ENCRYPT/DECRYPT").await;
    let sm4 = create_key(&c, &instance, "Aliyun_SM4", "ENCRYPT/DECRYPT").await;
    let rsa = create_key(&c, &instance, "RSA_2048", "ENCRYPT/DECRYPT").await;
    let to_disable = create_key(&c, &instance, "Aliyun_AES_256", "ENCRYPT/DECRYPT").await;
    c.call(
        "CreateAlias",
        &[("AliasName", "alias/secrets"), ("KeyId", &aes)],
    )
    .await
    .unwrap();

    // 1. The management SDK.
    let output = tokio::process::Command::new(support::mgmt_python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/api/sdk_secrets.py"
        ))
        .env("SR_ENDPOINT", &kms.endpoint)
        .env("SR_CA", &kms.ca_file)
        .env("SR_AK", &kms.access_key_id)
        .env("SR_SK", &kms.access_key_secret)
        .env("SR_INSTANCE", &instance)
        .env("SR_AES", &aes)
        .env("SR_SM4", &sm4)
        .env("SR_RSA", &rsa)
        .env("SR_DISABLE", &to_disable)
        .env("SR_ALIAS", "alias/secrets")
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "the management SDK script failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let managed: Value = serde_json::from_slice(&output.stdout).unwrap();
    eprintln!("{managed:#}");
    check(&managed, 60, management_refusal);
    let facts = &managed["facts"];
    assert_eq!(
        quota(&facts["quota_after_fill"]),
        (6, 6),
        "the quota counts every secret"
    );
    assert_eq!(quota(&facts["quota_after_delete"]), (6, 4));

    // 2. Who may read: every secret; one secret; keys only (its policy names secrets).
    c.call(
        "CreateNetworkRule",
        &[
            ("Name", "loopback"),
            ("Type", "Private"),
            ("SourcePrivateIp", "127.0.0.1,::1"),
        ],
    )
    .await
    .unwrap();
    let files = dir.join("app");
    let mut clients = serde_json::Map::new();
    for (name, permissions, resources) in [
        ("all", json!([SECRET_USER]), json!(["secret/*"])),
        ("one", json!([SECRET_USER]), json!(["secret/db-password"])),
        ("keys_only", json!([KEY_USER]), json!(["key/*", "secret/*"])),
    ] {
        c.call(
            "CreatePolicy",
            &[
                ("Name", name),
                ("KmsInstance", &instance),
                ("Permissions", &permissions.to_string()),
                ("Resources", &resources.to_string()),
                ("AccessControlRules", r#"{"NetworkRules":["loopback"]}"#),
            ],
        )
        .await
        .unwrap();
        c.call(
            "CreateApplicationAccessPoint",
            &[("Name", name), ("Policies", &json!([name]).to_string())],
        )
        .await
        .unwrap();
        clients.insert(
            name.to_owned(),
            client_key_files(&c, name, None, &files).await,
        );
    }
    let (ca_file, endpoint) = instance_endpoint(&c, &instance, &files).await;

    // 3. The instance SDK.
    let output = tokio::process::Command::new(sdk_python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/api/sdk_secrets_instance.py"
        ))
        .env("SR_ENDPOINT", &endpoint)
        .env("SR_CA", &ca_file)
        .env("SR_CLIENTS", Value::Object(clients).to_string())
        .env("SR_FACTS", facts.to_string())
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "the instance SDK script failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read: Value = serde_json::from_slice(&output.stdout).unwrap();
    eprintln!("{read:#}");
    check(&read, 30, instance_refusal);

    let mut values: Vec<Vec<u8>> = facts["secrets"]
        .as_object()
        .unwrap()
        .values()
        .map(|s| {
            let data = s["data"].as_str().unwrap();
            if s["type"] == "binary" {
                STANDARD.decode(data).unwrap()
            } else {
                data.as_bytes().to_vec()
            }
        })
        .collect();
    values.push(
        facts["previous"]["data"]
            .as_str()
            .unwrap()
            .as_bytes()
            .to_vec(),
    );
    values
}

/// `(quota, used)` of a `GetKmsInstanceQuotaInfos` entry the script printed as JSON.
fn quota(info: &Value) -> (u64, u64) {
    let info: Value = serde_json::from_str(info.as_str().unwrap()).unwrap();
    (
        info["ResourceQuota"].as_u64().unwrap(),
        info["UsedQuantity"].as_u64().unwrap(),
    )
}

/// The code and HTTP status of each management refusal.
fn management_refusal(name: &str) -> (&'static str, i64) {
    const NOT_FOUND: (&str, i64) = ("Forbidden.ResourceNotFound", 404);
    const INVALID: (&str, i64) = ("InvalidParameter", 400);
    match name {
        "put the same version with other data" | "duplicate name" => {
            ("Rejected.ResourceExist", 409)
        }
        "move to an unknown version"
        | "get an unknown version"
        | "get an unknown stage"
        | "get an unknown secret"
        | "describe a destroyed secret"
        | "delete an unknown secret" => NOT_FOUND,
        "get a secret pending deletion" | "put to a secret pending deletion" => {
            ("Rejected.PendingDeletion", 409)
        }
        "schedule deletion of a key that encrypts secrets" => ("Rejected.ResourceInUse", 409),
        "one secret over the quota" => ("Rejected.LimitExceeded", 400),
        "unknown key" => ("Forbidden.KeyNotFound", 404),
        "managed type" | "automatic rotation" => ("UnsupportedOperation", 400),
        "no version id" => ("MissingParameter", 400),
        "get under a disabled key" | "put under a disabled key" => ("Rejected.Disabled", 409),
        _ => INVALID,
    }
}

/// The code and HTTP status of each instance-API refusal.
fn instance_refusal(name: &str) -> (&'static str, i64) {
    match name {
        "all: encryption key disabled" => ("Rejected.Disabled", 409),
        "one: another secret"
        | "one: an unknown secret"
        | "keys_only: a secret"
        | "keys_only: an unknown secret" => ("Forbidden.NoPermission", 403),
        _ => ("Forbidden.ResourceNotFound", 404),
    }
}

fn check(out: &Value, min_checks: usize, expected: fn(&str) -> (&'static str, i64)) {
    let mut failed = Vec::new();
    for (section, trace) in out["errors"].as_object().unwrap() {
        eprintln!(
            "section {section} raised:\n{}",
            trace.as_str().unwrap_or_default()
        );
        failed.push(format!("section {section}"));
    }
    let checks = out["checks"].as_object().unwrap();
    assert!(
        checks.len() >= min_checks,
        "only {} checks ran",
        checks.len()
    );
    for (name, ok) in checks {
        if ok != &Value::Bool(true) {
            failed.push(format!("check {name}"));
        }
    }
    for (name, got) in out["refusals"].as_object().unwrap() {
        let (code, status) = expected(name);
        if got["code"].as_str() != Some(code) || got["status"].as_i64() != Some(status) {
            failed.push(format!("refusal {name}: {got} (expected {code} {status})"));
        }
    }
    assert!(failed.is_empty(), "failed:\n{}", failed.join("\n"));
}

/// No value is in the store in any form a careless implementation would leave: raw,
/// base64, hex.
fn no_plaintext(haystack: &[u8], values: &[Vec<u8>]) {
    no_plaintext_in(haystack, values);
    // The search itself finds what is there.
    assert!(
        haystack.windows(11).any(|w| w == b"db-password"),
        "secret names are in the store"
    );
}

fn no_plaintext_in(haystack: &[u8], values: &[Vec<u8>]) {
    let found = |needle: &[u8]| haystack.windows(needle.len()).any(|w| w == needle);
    assert!(values.len() >= 4, "every value is searched for");
    for value in values {
        assert!(value.len() >= 8, "a value long enough to search for");
        for (form, needle) in [
            ("raw", value.clone()),
            ("base64", STANDARD.encode(value).into_bytes()),
            ("hex", hex::encode(value).into_bytes()),
        ] {
            assert!(
                !found(&needle),
                "a secret value is in the store ({form}): {:?}",
                String::from_utf8_lossy(value)
            );
        }
    }
}

//! Application access (`docs/access.md`) driven by the official management SDK
//! (`alibabacloud-kms20160120` 3.3.1, typed models) against one node, on SQLite and on
//! PostgreSQL: network rules, policies, access points and client keys, every field read
//! through the SDK's models, the refusals with their codes, the references the store
//! holds, and client keys opened by `cryptography` with nothing but the password. The
//! script (`sdk_access.py`) does the calls; the checks are here.

use std::panic::AssertUnwindSafe;

use serde_json::{Value, json};

use crate::support::{self, Kms};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sdk_drives_access_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let kms = support::kms(&dir.path().join("kms")).await;
    let out = run_script(&kms).await;
    eprintln!("{out:#}");
    check(&out);
    kms.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sdk_drives_access_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let url = support::fresh_database().await;
    let kms = support::kms_on(&dir.path().join("kms"), &url, None).await;
    let out = run_script(&kms).await;
    eprintln!("{out:#}");
    check(&out);
    kms.server.shutdown().await;
}

async fn run_script(kms: &Kms) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/sdk_access.py");
    let output = tokio::process::Command::new(support::mgmt_python())
        .arg(script)
        .env("SR_ENDPOINT", &kms.endpoint)
        .env("SR_CA", &kms.ca_file)
        .env("SR_AK", &kms.access_key_id)
        .env("SR_SK", &kms.access_key_secret)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "the SDK script failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

type Check = fn(&Context, &Value);

struct Context {
    instance: String,
    account: String,
}

impl Context {
    fn arn(&self, kind: &str, name: &str) -> String {
        format!("acs:kms:cn-hangzhou:{}:{kind}/{name}", self.account)
    }
}

fn check(out: &Value) {
    let errors = out["errors"].as_object().unwrap();
    for (name, trace) in errors {
        eprintln!(
            "section {name} raised:\n{}",
            trace.as_str().unwrap_or_default()
        );
    }
    let arn = out["network_rules"]["created"][0]["arn"]
        .as_str()
        .unwrap_or("acs:kms:cn-hangzhou:0:x");
    let ctx = Context {
        instance: out["setup"]["instance"].as_str().unwrap().to_owned(),
        account: arn.split(':').nth(3).unwrap().to_owned(),
    };
    let sections: [(&str, Check); 5] = [
        ("network_rules", check_network_rules),
        ("policies", check_policies),
        ("access_points", check_access_points),
        ("client_keys", check_client_keys),
        ("teardown", check_teardown),
    ];
    let mut failed: Vec<&str> = errors.keys().map(String::as_str).collect();
    for (name, checker) in sections {
        if errors.contains_key(name) {
            continue;
        }
        let checked = std::panic::catch_unwind(AssertUnwindSafe(|| checker(&ctx, &out[name])));
        if checked.is_err() {
            failed.push(name);
        }
    }
    assert!(failed.is_empty(), "sections failed: {failed:?}");
}

/// Every refusal named has the code and HTTP status expected.
#[track_caller]
fn refusals(v: &Value, expected: &[(&str, &str, i64)]) {
    for (name, code, status) in expected {
        let got = &v[*name];
        assert_eq!(
            (got["code"].as_str(), got["status"].as_i64()),
            (Some(*code), Some(*status)),
            "{name}: {got}"
        );
    }
    assert_eq!(
        v.as_object().unwrap().len(),
        expected.len(),
        "every refusal is checked"
    );
}

const INVALID: (&str, i64) = ("InvalidParameter", 400);
const MISSING: (&str, i64) = ("MissingParameter", 400);
const NOT_FOUND: (&str, i64) = ("Forbidden.ResourceNotFound", 404);
const EXISTS: (&str, i64) = ("Rejected.ResourceExist", 409);
const IN_USE: (&str, i64) = ("Rejected.ResourceInUse", 409);

fn expect<'a>(name: &'a str, (code, status): (&'a str, i64)) -> (&'a str, &'a str, i64) {
    (name, code, status)
}

fn check_network_rules(ctx: &Context, v: &Value) {
    let a = json!({
        "arn": ctx.arn("network", "rule-a"), "name": "rule-a", "type": "Private",
        "source_private_ip": ["10.0.0.0/8", "192.168.1.10", "fd00::/8"], "description": "office",
    });
    assert_eq!(v["created"][0], a);
    assert_eq!(
        v["created"][1],
        json!({
            "arn": ctx.arn("network", "rule-b"), "name": "rule-b", "type": "Private",
            "source_private_ip": ["127.0.0.1", "172.16.0.0/12"], "description": "",
        })
    );
    // The SDK's DescribeNetworkRule model has no Name field.
    let mut described = a.clone();
    described["name"] = Value::Null;
    assert_eq!(v["described"], described);
    assert_eq!(
        v["after_bad_update"], described,
        "a refused update changes nothing"
    );
    assert_eq!(
        v["updated"]["source_private_ip"],
        json!(["127.0.0.1", "::1"])
    );
    assert_eq!(v["updated"]["description"], "loopback");
    let pages = v["pages"].as_array().unwrap();
    for (i, page) in pages.iter().enumerate() {
        assert_eq!(
            (page["total"].as_i64(), page["size"].as_i64()),
            (Some(2), Some(1))
        );
        assert_eq!(page["number"].as_i64(), Some(i as i64 + 1));
    }
    assert_eq!(
        pages[0]["items"],
        json!([{"name": "rule-a", "type": "Private"}])
    );
    assert_eq!(
        pages[1]["items"],
        json!([{"name": "rule-b", "type": "Private"}])
    );
    assert_eq!(pages[2]["items"], json!([]));
    refusals(
        &v["refusals"],
        &[
            expect("bad_address", INVALID),
            expect("host_bits", INVALID),
            expect("one_bad_of_two", INVALID),
            expect("empty", MISSING),
            expect("public_type", INVALID),
            expect("bad_name", INVALID),
            expect("duplicate", EXISTS),
            expect("update_bad", INVALID),
            expect("describe_missing", NOT_FOUND),
            expect("delete_missing", NOT_FOUND),
        ],
    );
}

fn check_policies(ctx: &Context, v: &Value) {
    let key_user = "RbacPermission/Template/CryptoServiceKeyUser";
    let secret_user = "RbacPermission/Template/CryptoServiceSecretUser";
    assert_eq!(
        v["created"][0],
        json!({
            "arn": ctx.arn("policy", "policy-keys"), "name": "policy-keys",
            "kms_instance": ctx.instance, "permissions": [key_user], "resources": ["key/*"],
            "access_control_rules": {"NetworkRules": ["rule-a", "rule-b"]},
            "description": "keys",
        })
    );
    assert_eq!(
        v["created"][1]["permissions"],
        json!([secret_user, key_user])
    );
    assert_eq!(
        v["created"][1]["resources"],
        json!(["secret/*", "secret/app1-*"])
    );
    assert_eq!(
        v["described"],
        json!({
            "arn": ctx.arn("policy", "policy-secrets"), "name": "policy-secrets",
            "kms_instance": ctx.instance, "permissions": [secret_user],
            "resources": ["secret/db-password"],
            "access_control_rules": {"NetworkRules": ["rule-a"]}, "description": "db",
        })
    );
    assert_eq!(
        v["listed"],
        json!({"total": 2, "names": ["policy-keys", "policy-secrets"]})
    );
    refusals(
        &v["refusals"],
        &[
            expect("unknown_permission", INVALID),
            expect("alias_resource", INVALID),
            expect("bare_star", INVALID),
            expect("no_resources", MISSING),
            expect("unknown_rule", NOT_FOUND),
            expect("unknown_instance", ("Forbidden.DKMSInstanceNotFound", 403)),
            expect("duplicate", EXISTS),
            expect("bad_rules_json", INVALID),
            expect("rule_in_use", IN_USE),
            expect("instance_in_use", IN_USE),
            expect("describe_missing", NOT_FOUND),
        ],
    );
}

fn check_access_points(ctx: &Context, v: &Value) {
    assert_eq!(
        v["created"],
        json!({
            "arn": ctx.arn("aap", "app1"), "name": "app1", "authentication_method": "ClientKey",
            "policies": ["policy-keys"], "description": "first app",
        })
    );
    assert_eq!(
        v["described"],
        json!({
            "arn": ctx.arn("aap", "app2"), "name": "app2", "authentication_method": "ClientKey",
            "policies": ["policy-keys", "policy-secrets"], "description": "second app",
        })
    );
    assert_eq!(
        v["listed"],
        json!({"total": 2, "items": [
            {"name": "app1", "method": "ClientKey"}, {"name": "app2", "method": "ClientKey"},
        ]})
    );
    refusals(
        &v["refusals"],
        &[
            expect("four_policies", INVALID),
            expect("no_policy", MISSING),
            expect("unknown_policy", NOT_FOUND),
            expect("ram_role", INVALID),
            expect("duplicate", EXISTS),
            expect("policy_in_use", IN_USE),
            expect("describe_missing", NOT_FOUND),
        ],
    );
}

fn unix(iso: &Value) -> i64 {
    let text = iso.as_str().unwrap();
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .unix_timestamp()
}

fn is_client_key_id(id: &str) -> bool {
    id.strip_prefix("KAAP.").is_some_and(|uuid| {
        uuid.len() == 36
            && uuid.chars().enumerate().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => c == '-',
                14 => c == '4',
                _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
            })
    })
}

fn check_client_keys(_ctx: &Context, v: &Value) {
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let mut ids = Vec::new();
    for row in rows {
        let created = &row["created"];
        let got = &row["got"];
        let id = created["client_key_id"].as_str().unwrap();
        assert!(is_client_key_id(id), "{id}");
        ids.push(id.to_owned());
        assert_eq!(created["key_algorithm"], "RSA_2048");
        assert_eq!(got["client_key_id"], id);
        assert_eq!(got["aap_name"], "app1");
        assert_eq!(got["key_algorithm"], "RSA_2048");
        assert_eq!(got["key_origin"], "KMS_PROVIDED");
        assert_eq!(got["not_before"], created["not_before"]);
        assert_eq!(got["not_after"], created["not_after"]);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!((now - unix(&got["create_time"])).abs() < 600, "{got}");
        assert!(
            got["public_key_data"]
                .as_str()
                .unwrap()
                .starts_with("-----BEGIN CERTIFICATE-----"),
            "PublicKeyData is the certificate"
        );
        assert_eq!(row["rsa_bits"], 2048);
        assert_eq!(row["p12_cert_is_kept_cert"], true);
        assert_eq!(
            row["cert_not_before"].as_i64(),
            Some(unix(&created["not_before"]))
        );
        assert_eq!(
            row["cert_not_after"].as_i64(),
            Some(unix(&created["not_after"]))
        );
        assert_eq!(row["wrong_password_opens"], false);
    }
    // The default validity: five years (and a leap day), from now less an hour.
    let default = unix(&rows[0]["created"]["not_after"]) - unix(&rows[0]["created"]["not_before"]);
    let days = default / 86_400;
    assert!((5 * 365..=5 * 365 + 2).contains(&days), "{days} days");
    assert_eq!(rows[1]["created"]["not_before"], "2026-01-01T00:00:00Z");
    assert_eq!(rows[1]["created"]["not_after"], "2031-06-30T12:00:00Z");
    let listed: Vec<&str> = v["listed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["client_key_id"].as_str().unwrap())
        .collect();
    // Oldest first; keys made in the same second by id.
    let mut by_age: Vec<&Value> = rows.iter().map(|r| &r["got"]).collect();
    by_age.sort_by_key(|k| {
        (
            unix(&k["create_time"]),
            k["client_key_id"].as_str().unwrap(),
        )
    });
    let expected: Vec<&str> = by_age
        .iter()
        .map(|k| k["client_key_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, expected, "ListClientKeys: every key, oldest first");
    for (listed, got) in v["listed"].as_array().unwrap().iter().zip(by_age) {
        assert_eq!(listed, got, "ListClientKeys shows what GetClientKey shows");
    }
    refusals(
        &v["refusals"],
        &[
            expect("fourth", ("Rejected.LimitExceeded", 400)),
            expect("short", INVALID),
            expect("one_class", INVALID),
            expect("long", INVALID),
            expect("space", INVALID),
            expect("before_only", MISSING),
            expect("after_only", MISSING),
            expect("reversed", INVALID),
            expect("bad_time", INVALID),
            expect("unknown_aap", NOT_FOUND),
            expect("list_unknown_aap", NOT_FOUND),
            expect("aap_in_use", IN_USE),
            expect("get_missing", NOT_FOUND),
        ],
    );
    assert_eq!(
        (
            v["deleted"]["code"].as_str(),
            v["deleted"]["status"].as_i64()
        ),
        (Some(NOT_FOUND.0), Some(NOT_FOUND.1))
    );
    let again = v["again"].as_str().unwrap();
    assert!(is_client_key_id(again) && !ids.iter().any(|i| i == again));
}

fn check_teardown(_ctx: &Context, v: &Value) {
    assert_eq!(v["counts"], json!({"rules": 0, "policies": 0, "points": 0}));
    assert_eq!(v["released"]["code"], "OK", "{}", v["released"]);
}

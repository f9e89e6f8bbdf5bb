//! The key actions (`docs/keys.md`) driven by the official management SDK
//! (`alibabacloud-kms20160120` 3.3.1, typed models) against one node with two real HSM
//! nodes, on SQLite and on PostgreSQL: every spec and usage, refusals with the cloud's
//! codes, listing, lifecycle, aliases, tags, versions and rotation, public keys, use of
//! keys, import wrapped by independent implementations (`cryptography`, `gmssl`), and
//! the key quota. The script (`sdk_keys.py`) does the calls; the checks are here.

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;

use serde_json::Value;

use crate::support::{self, Hsms, Kms, P12_PASSWORD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sdk_drives_keys_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let hsms = Hsms::start(&dir.path().join("hsm")).await;
    let kms = support::kms(&dir.path().join("kms")).await;
    let out = run_script(&kms, &hsms).await;
    // Shown only when an assertion fails.
    eprintln!("{out:#}");
    check(&out);
    kms.server.shutdown().await;
    hsms.primary.shutdown().await;
    hsms.member.shutdown().await;
}

/// The same on PostgreSQL: the other store's key queries (filters, paging, the quota
/// count, compare-and-set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sdk_drives_keys_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let hsms = Hsms::start(&dir.path().join("hsm")).await;
    let url = support::fresh_database().await;
    let kms = support::kms_on(&dir.path().join("kms"), &url, None).await;
    let out = run_script(&kms, &hsms).await;
    eprintln!("{out:#}");
    check(&out);
    kms.server.shutdown().await;
    hsms.primary.shutdown().await;
    hsms.member.shutdown().await;
}

async fn run_script(kms: &Kms, hsms: &Hsms) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/sdk_keys.py");
    let output = tokio::process::Command::new(support::mgmt_python())
        .arg(script)
        .env("SR_ENDPOINT", &kms.endpoint)
        .env("SR_CA", &kms.ca_file)
        .env("SR_AK", &kms.access_key_id)
        .env("SR_SK", &kms.access_key_secret)
        .env("SR_NODES", hsms.nodes_json())
        .env("SR_P12", &hsms.certs.client_p12)
        .env("SR_P12_PASSWORD", P12_PASSWORD)
        .env("SR_ROOTCA", &hsms.certs.rootca_pem)
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

/// Checks every section, then fails naming each section that raised in the script or
/// failed a check here (each failure's message is printed as it happens).
fn check(out: &Value) {
    assert_eq!(out["setup"]["status"], "Connected", "{}", out["setup"]);
    let skipped = out["skipped"].as_array().unwrap();
    for name in skipped {
        eprintln!("section {name} skipped: the node does not serve its actions yet");
    }
    let errors = out["errors"].as_object().unwrap();
    for (name, trace) in errors {
        eprintln!("section {name} raised:\n{}", text(trace));
    }
    assert!(
        !errors.contains_key("create"),
        "every section uses the keys of the section create, which raised"
    );
    let ctx = Context::new(out);
    let sections: [(&str, Check); 11] = [
        ("create", check_create),
        ("invalid", check_invalid),
        ("list", check_list),
        ("lifecycle", check_lifecycle),
        ("aliases", check_aliases),
        ("tags", check_tags),
        ("versions", check_versions),
        ("public_keys", check_public_keys),
        ("use", check_use),
        ("import", check_import),
        ("quota", check_quota),
    ];
    let mut failed: Vec<&str> = errors.keys().map(String::as_str).collect();
    for (name, checker) in sections {
        if skipped.iter().any(|s| s == name) || errors.contains_key(name) {
            continue;
        }
        let checked = std::panic::catch_unwind(AssertUnwindSafe(|| checker(&ctx, &out[name])));
        if checked.is_err() {
            failed.push(name);
        }
    }
    assert!(failed.is_empty(), "sections failed: {failed:?}");
}

/// One section's checks.
type Check = fn(&Context, &Value);

/// What every section's checks share: the instances and the account id of the ARNs.
struct Context {
    instance: String,
    idle_instance: String,
    account: String,
    /// (spec, usage) → key id, from the `create` section.
    keys: Vec<(String, String, String)>,
}

impl Context {
    fn new(out: &Value) -> Self {
        let rows = out["create"]["rows"].as_array().unwrap();
        let arn = rows[0]["created"]["arn"].as_str().unwrap();
        let account = arn.split(':').nth(3).unwrap().to_owned();
        Self {
            instance: text(&out["setup"]["instance"]).to_owned(),
            idle_instance: text(&out["setup"]["idle_instance"]).to_owned(),
            account,
            keys: rows
                .iter()
                .map(|r| {
                    (
                        text(&r["spec"]).to_owned(),
                        text(&r["usage"]).to_owned(),
                        text(&r["created"]["key_id"]).to_owned(),
                    )
                })
                .collect(),
        }
    }

    fn key(&self, spec: &str, usage: &str) -> &str {
        self.keys
            .iter()
            .find(|(s, u, _)| s == spec && u == usage)
            .map(|(_, _, id)| id.as_str())
            .unwrap()
    }

    fn key_arn(&self, id: &str) -> String {
        format!("acs:kms:cn-hangzhou:{}:key/{id}", self.account)
    }

    fn alias_arn(&self, name: &str) -> String {
        format!(
            "acs:kms:cn-hangzhou:{}:alias/{}",
            self.account,
            name.strip_prefix("alias/").unwrap()
        )
    }
}

fn text(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
}

fn ids(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected a list, got {v}"))
        .iter()
        .map(|i| text(i).to_owned())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// A failure's code and HTTP status are the ones expected.
#[track_caller]
fn refused(v: &Value, code: &str, status: i64) {
    assert_eq!(
        (v["code"].as_str(), v["status"].as_i64()),
        (Some(code), Some(status)),
        "{v}"
    );
}

#[track_caller]
fn ok(v: &Value) {
    assert_eq!(v["code"], "OK", "{v}");
}

fn is_key_id(s: &str) -> bool {
    s.strip_prefix("key-").is_some_and(|rest| {
        rest.len() == 24
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| {
            g.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        })
}

/// `2026-11-28T23:05:34Z`.
fn is_iso(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// Absent or empty: the typed models read a missing field as `None`.
fn absent(v: &Value) -> bool {
    v.is_null() || v == ""
}

#[track_caller]
fn within(v: &Value, expected: i64, slack: i64) {
    let got = v
        .as_i64()
        .unwrap_or_else(|| panic!("expected a number, got {v}"));
    assert!(
        (got - expected).abs() <= slack,
        "{got} is not {expected} ± {slack}"
    );
}

/// A `KeyMetadata` of a key made in the HSM, as every key starts.
#[track_caller]
fn fresh_metadata(ctx: &Context, m: &Value, spec: &str, usage: &str) {
    let id = text(&m["key_id"]);
    assert!(is_key_id(id), "{id}");
    assert_eq!(m["arn"], ctx.key_arn(id), "{m}");
    assert_eq!(m["key_spec"], spec, "{m}");
    assert_eq!(m["key_usage"], usage, "{m}");
    assert_eq!(m["key_state"], "Enabled", "{m}");
    assert_eq!(m["origin"], "Aliyun_KMS", "{m}");
    assert_eq!(m["protection_level"], "HSM", "{m}");
    assert!(is_iso(text(&m["creation_date"])), "{m}");
    assert!(is_uuid(text(&m["primary_key_version"])), "{m}");
    assert_eq!(m["dkmsinstance_id"], ctx.instance.as_str(), "{m}");
    assert_eq!(m["automatic_rotation"], "Disabled", "{m}");
    assert!(!text(&m["creator"]).is_empty(), "{m}");
    assert!(absent(&m["delete_date"]), "{m}");
    assert!(absent(&m["next_rotation_date"]), "{m}");
    assert!(absent(&m["material_expire_time"]), "{m}");
}

fn check_create(ctx: &Context, s: &Value) {
    assert!(
        !ctx.account.is_empty() && ctx.account.bytes().all(|b| b.is_ascii_digit()),
        "{}",
        ctx.account
    );
    let rows = s["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 14);
    let mut seen = BTreeSet::new();
    for row in rows {
        let (spec, usage) = (text(&row["spec"]), text(&row["usage"]));
        let created = &row["created"];
        let described = &row["described"];
        fresh_metadata(ctx, created, spec, usage);
        fresh_metadata(ctx, described, spec, usage);
        assert!(seen.insert(text(&created["key_id"]).to_owned()));
        // DescribeKey answers what CreateKey answered, and more.
        for (field, value) in created.as_object().unwrap() {
            assert_eq!(&described[field], value, "{field} of {spec} {usage}");
        }
        assert_eq!(described["deletion_protection"], "Disabled", "{described}");
        let asked = &row["asked"];
        match asked["description"].as_str() {
            Some(d) => {
                assert_eq!(described["description"], d);
                let tags: Vec<(&str, &str, &str)> = row["tags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| {
                        (
                            text(&t["key_id"]),
                            text(&t["tag_key"]),
                            text(&t["tag_value"]),
                        )
                    })
                    .collect();
                let id = text(&created["key_id"]);
                let mut tags = tags;
                tags.sort_unstable();
                assert_eq!(
                    tags,
                    vec![(id, "made-by", "sdk_keys.py"), (id, "spec", spec)]
                );
            }
            None => {
                assert!(absent(&described["description"]), "{described}");
                assert_eq!(row["tags"], serde_json::json!([]));
            }
        }
    }
    let defaults = &s["defaults"];
    for (name, spec, usage) in [
        ("none", "Aliyun_AES_256", "ENCRYPT/DECRYPT"),
        ("EC_P256", "EC_P256", "SIGN/VERIFY"),
        ("RSA_2048", "RSA_2048", "SIGN/VERIFY"),
        ("EC_SM2", "EC_SM2", "SIGN/VERIFY"),
        ("Aliyun_SM4", "Aliyun_SM4", "ENCRYPT/DECRYPT"),
        ("explicit", "Aliyun_AES_256", "ENCRYPT/DECRYPT"),
    ] {
        fresh_metadata(ctx, &defaults[name], spec, usage);
    }
}

fn check_invalid(ctx: &Context, s: &Value) {
    for name in [
        "sm2_bogus_usage",
        "aes_sign",
        "sm4_sign",
        "p256_encrypt",
        "p256k_encrypt",
        "unknown_spec",
        "software",
        "hsm_internal",
        "unknown_origin",
        "long_description",
        "additional_on_p256",
        "additional_on_aes",
        "additional_same",
    ] {
        refused(&s[name], "InvalidParameter", 400);
    }
    for name in ["sm2_bogus_usage", "aes_sign", "p256_encrypt"] {
        assert!(
            text(&s[name]["message"]).contains("KeyUsage"),
            "{}",
            s[name]
        );
    }
    refused(&s["rotation_rsa"], "UnsupportedOperation", 400);
    refused(&s["rotation_external"], "UnsupportedOperation", 400);
    refused(
        &s["unknown_instance"],
        "Forbidden.DKMSInstanceNotFound",
        403,
    );
    refused(
        &s["idle_instance"],
        "Forbidden.DKMSInstanceStateInvalid",
        403,
    );
    refused(&s["no_instance"], "MissingParameter", 400);
    assert_ne!(ctx.idle_instance, ctx.instance);

    let id = text(&s["additional_rsa_id"]);
    for m in [&s["additional_rsa_created"], &s["additional_rsa_described"]] {
        assert_eq!(m["KeyId"], id);
        assert_eq!(m["KeySpec"], "RSA_2048");
        assert_eq!(m["KeyUsage"], "SIGN/VERIFY");
        assert_eq!(m["AdditionalKeyUsage"], "ENCRYPT/DECRYPT", "{m}");
        assert_eq!(m["KeyState"], "Enabled");
    }
    assert_eq!(ids(&s["additional_rsa_by_encrypt"]), set(&[id]));
    assert_eq!(ids(&s["additional_rsa_by_sign"]), set(&[id]));
    let plain = &s["plain_rsa_described"];
    assert_eq!(plain["KeyUsage"], "SIGN/VERIFY");
    assert!(plain.get("AdditionalKeyUsage").is_none(), "{plain}");
}

fn check_list(ctx: &Context, s: &Value) {
    let k: Vec<&str> = s["ids"].as_array().unwrap().iter().map(text).collect();
    assert_eq!(k.len(), 5);
    let all = ids(&s["all_made"]);
    let listed = |name: &str| ids(&s[name]["ids"]);
    assert_eq!(s["tag"]["total"], 5);
    assert_eq!(listed("tag"), set(&k));
    assert_eq!(listed("enabled"), set(&[k[0], k[2], k[3], k[4]]));
    assert_eq!(listed("disabled"), set(&[k[1]]));
    assert_eq!(s["disabled"]["total"], 1);
    assert_eq!(listed("sm4"), set(&[k[3]]));
    assert_eq!(listed("sm4_or_p256"), set(&[k[3], k[4]]));
    assert_eq!(listed("sign"), set(&[k[4]]));
    assert_eq!(listed("in_instance"), set(&k));
    assert_eq!(s["in_idle_instance"]["total"], 0);
    assert_eq!(listed("in_idle_instance"), set(&[]));
    assert_eq!(listed("alias"), set(&[k[2]]));
    assert_eq!(listed("instance_all"), all);
    assert_eq!(s["instance_all"]["total"], all.len());
    assert_eq!(listed("unfiltered"), all);
    assert_eq!(s["unfiltered"]["total"], all.len());
    for (id, arn) in s["unfiltered"]["ids"]
        .as_array()
        .unwrap()
        .iter()
        .zip(s["unfiltered"]["arns"].as_array().unwrap())
    {
        assert_eq!(text(arn), ctx.key_arn(text(id)));
    }
    // Paging: 2 + 2 + 1, no key twice, none left out.
    let mut paged = BTreeSet::new();
    for (n, page) in s["pages"].as_array().unwrap().iter().enumerate() {
        assert_eq!(page["total"], 5, "{page}");
        assert_eq!(page["page_number"], n + 1, "{page}");
        assert_eq!(page["page_size"], 2, "{page}");
        let got = ids(&page["ids"]);
        assert_eq!(got.len(), if n < 2 { 2 } else { 1 }, "{page}");
        for id in got {
            assert!(paged.insert(id));
        }
    }
    assert_eq!(paged, set(&k));
    let default_page = &s["default_page"];
    assert_eq!(default_page["page_size"], 10);
    assert_eq!(default_page["page_number"], 1);
    assert_eq!(default_page["count"], 10);
    assert_eq!(default_page["total"], all.len());
    refused(&s["bad_filter"], "InvalidParameter", 400);
    refused(&s["bad_page_size"], "InvalidParameter", 400);
}

fn check_lifecycle(ctx: &Context, s: &Value) {
    let key = text(&s["key"]);
    assert_eq!(s["description"], "after");
    assert_eq!(s["disabled"], "Disabled");
    refused(&s["disabled_new_version"], "Rejected.Disabled", 409);
    refused(&s["disabled_cancel"], "Rejected.Disabled", 409);
    assert_eq!(s["enabled"], "Enabled");
    refused(&s["enabled_cancel"], "Rejected.Enabled", 409);
    refused(&s["window_6"], "InvalidParameter", 400);
    refused(&s["window_367"], "InvalidParameter", 400);
    refused(&s["window_missing"], "MissingParameter", 400);
    ok(&s["window_7"]);
    let pending = &s["pending"];
    assert_eq!(pending["key_state"], "PendingDeletion");
    assert!(is_iso(text(&pending["delete_date"])), "{pending}");
    within(&s["delete_in"], 7 * 86_400, 120);
    refused(&s["pending_disable"], "Rejected.StateModifiedFailed", 409);
    refused(&s["pending_enable"], "Rejected.StateModifiedFailed", 409);
    for name in [
        "pending_description",
        "pending_schedule",
        "pending_protection",
        "pending_new_version",
    ] {
        refused(&s[name], "Rejected.PendingDeletion", 409);
    }
    assert_eq!(ids(&s["pending_listed"]), set(&[key]));
    let cancelled = &s["cancelled"];
    assert_eq!(cancelled["key_state"], "Enabled");
    assert!(absent(&cancelled["delete_date"]), "{cancelled}");
    assert_eq!(cancelled["description"], "after");
    assert_eq!(
        s["protected"],
        serde_json::json!({"deletion_protection": "Enabled", "description": "keep it"})
    );
    refused(
        &s["protected_schedule"],
        "Forbidden.DeletionProtection",
        403,
    );
    assert_eq!(s["protected_state"], "Enabled");
    ok(&s["unprotect"]);
    assert_eq!(s["unprotected"], "Disabled");
    ok(&s["unprotected_schedule"]);
    within(&s["unprotected_delete_in"], 30 * 86_400, 120);
    for name in ["unknown_describe", "unknown_enable", "unknown_schedule"] {
        refused(&s[name], "Forbidden.KeyNotFound", 404);
    }
    assert_eq!(s["by_arn"], key);
    assert!(ctx.key_arn(key).ends_with(key));
}

fn check_aliases(ctx: &Context, s: &Value) {
    let (one, two) = (text(&s["one"]), text(&s["two"]));
    for name in ["create", "create_nested", "create_longest", "reused"] {
        ok(&s[name]);
    }
    refused(&s["duplicate"], "Rejected.AliasExist", 409);
    for name in [
        "no_prefix",
        "acs",
        "acs_bare",
        "bad_characters",
        "dot",
        "empty",
        "too_long",
    ] {
        refused(&s[name], "InvalidParameter", 400);
    }
    refused(&s["unknown_key"], "Forbidden.KeyNotFound", 404);
    assert_eq!(s["by_alias"], one);
    assert_eq!(s["by_alias_arn"], one);
    assert_eq!(s["moved"], two);
    refused(&s["update_unknown"], "Forbidden.AliasNotFound", 404);
    refused(&s["update_to_unknown_key"], "Forbidden.KeyNotFound", 404);

    let longest = format!("alias/{}", "a".repeat(255));
    let list = &s["list"];
    let aliases = list["aliases"].as_array().unwrap();
    assert_eq!(list["total"], aliases.len(), "{list}");
    assert_eq!(list["page_size"], 100);
    let names: BTreeSet<String> = aliases
        .iter()
        .map(|a| text(&a["alias_name"]).to_owned())
        .collect();
    assert!(names.is_superset(&set(&["alias/sdk-app", "alias/sdk/app_1-x", &longest])));
    for a in aliases {
        assert_eq!(text(&a["alias_arn"]), ctx.alias_arn(text(&a["alias_name"])));
        assert!(is_key_id(text(&a["key_id"])));
    }
    let app = aliases
        .iter()
        .find(|a| a["alias_name"] == "alias/sdk-app")
        .unwrap();
    assert_eq!(app["key_id"], two);
    assert_eq!(s["list_default_page_size"], 10);
    assert_eq!(s["by_key_one"]["total"], 2);
    let of_one: BTreeSet<String> = s["by_key_one"]["aliases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            assert_eq!(a["key_id"], one);
            text(&a["alias_name"]).to_owned()
        })
        .collect();
    assert_eq!(of_one, set(&["alias/sdk/app_1-x", &longest]));
    assert_eq!(s["by_key_two"]["total"], 1);
    assert_eq!(s["by_key_two"]["aliases"][0]["alias_name"], "alias/sdk-app");
    assert_eq!(
        s["by_key_two"]["aliases"][0]["alias_arn"],
        ctx.alias_arn("alias/sdk-app")
    );
    refused(&s["deleted_describe"], "Forbidden.AliasNotFound", 404);
    refused(&s["deleted_again"], "Forbidden.AliasNotFound", 404);
    assert_eq!(s["after_delete_two"], 0);
}

fn check_tags(_ctx: &Context, s: &Value) {
    let key = text(&s["key"]);
    let tag = |k: &str, v: &str| serde_json::json!({"key_id": key, "tag_key": k, "tag_value": v});
    assert_eq!(s["born"], serde_json::json!([tag("born", "with")]));
    ok(&s["tag"]);
    assert_eq!(
        s["tagged"],
        serde_json::json!([
            tag("born", "with"),
            tag("env", "prod"),
            tag("team", "a b/c:d@e")
        ])
    );
    ok(&s["replace"]);
    assert_eq!(
        s["replaced"],
        serde_json::json!([
            tag("born", "with"),
            tag("env", "dev"),
            tag("team", "a b/c:d@e")
        ])
    );
    assert_eq!(s["untagged"], serde_json::json!([tag("env", "dev")]));
    for name in [
        "aliyun_prefix",
        "acs_prefix",
        "bad_character",
        "too_long",
        "too_many",
    ] {
        refused(&s[name], "InvalidParameter", 400);
    }
    assert_eq!(s["after_refusals"], s["untagged"]);
    refused(&s["unknown_key"], "Forbidden.KeyNotFound", 404);
}

fn check_versions(_ctx: &Context, s: &Value) {
    let key = text(&s["key"]);
    let first = text(&s["first"]);
    let created = &s["created"];
    let second = text(&created["key_version_id"]);
    assert!(is_uuid(second) && second != first, "{created}");
    assert_eq!(created["key_id"], key);
    assert!(is_iso(text(&created["creation_date"])));
    assert_eq!(s["primary_after"], second);
    let list = &s["list"];
    assert_eq!(list["total"], 2);
    let versions = list["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["key_version_id"], first);
    assert_eq!(&versions[1], created);
    assert_eq!(&s["describe_first"], &versions[0]);
    assert_eq!(s["order_made"].as_array().unwrap().len(), 5);
    assert_eq!(s["order_listed"], s["order_made"]);
    assert_eq!(s["order_paged"], s["order_made"]);
    assert_eq!(s["describe_first"]["key_id"], key);
    refused(&s["describe_unknown"], "Forbidden.KeyVersionNotFound", 404);

    ok(&s["policy_seconds"]);
    let r = &s["rotation_seconds"];
    assert_eq!(r["automatic_rotation"], "Enabled", "{r}");
    assert_eq!(r["rotation_interval"], "604800s", "{r}");
    assert!(is_iso(text(&r["next_rotation_date"])), "{r}");
    assert_eq!(r["next_after_last"], 604_800, "{r}");
    ok(&s["policy_days"]);
    let r = &s["rotation_days"];
    assert_eq!(r["automatic_rotation"], "Enabled", "{r}");
    assert_eq!(r["rotation_interval"], "2592000s", "{r}");
    assert_eq!(r["next_after_last"], 2_592_000, "{r}");
    for name in ["policy_one_day", "policy_731_days", "policy_garbage"] {
        refused(&s[name], "InvalidParameter", 400);
    }
    assert_eq!(s["rotation_after_refusals"], s["rotation_days"]);
    assert_eq!(s["rotation_disabled_key"], "Suspended");
    refused(&s["policy_disabled_key"], "Rejected.Disabled", 409);
    assert_eq!(s["rotation_enabled_again"], "Enabled");
    ok(&s["policy_off"]);
    assert_eq!(s["rotation_off"]["automatic_rotation"], "Disabled");
    assert!(absent(&s["rotation_off"]["next_rotation_date"]));

    refused(&s["policy_rsa"], "UnsupportedOperation", 400);
    ok(&s["rsa_new_version"]);
    let rotating = &s["created_rotating"];
    assert_eq!(rotating["automatic_rotation"], "Enabled", "{rotating}");
    assert_eq!(rotating["rotation_interval"], "2592000s", "{rotating}");
    assert_eq!(s["created_rotating_next_after_last"], 2_592_000);
    assert_eq!(s["created_default_interval"], "31536000s");
}

fn check_public_keys(ctx: &Context, s: &Value) {
    for (spec, usage, kind, detail) in [
        ("RSA_2048", "SIGN/VERIFY", "rsa", "2048"),
        ("RSA_3072", "ENCRYPT/DECRYPT", "rsa", "3072"),
        ("EC_P256", "SIGN/VERIFY", "ec", "secp256r1"),
        ("EC_P256K", "SIGN/VERIFY", "ec", "secp256k1"),
        ("EC_SM2", "SIGN/VERIFY", "ec", "sm2"),
        ("EC_SM2", "ENCRYPT/DECRYPT", "ec", "sm2"),
    ] {
        let p = &s[format!("{spec} {usage}")];
        assert_eq!(p["key_id"], ctx.key(spec, usage), "{p}");
        assert!(is_uuid(text(&p["version"])), "{p}");
        assert_eq!(p["version"], p["primary"], "{p}");
        assert_eq!(p["explicit_version"], p["primary"], "{p}");
        assert_eq!(p["stable"], true, "{p}");
        assert_eq!(p["pem_head"], "-----BEGIN PUBLIC KEY-----", "{p}");
        assert_eq!(p["pem_tail"], "-----END PUBLIC KEY-----", "{p}");
        assert_eq!(p["kind"], kind, "{p}");
        if kind == "rsa" {
            assert_eq!(p["size"].to_string(), detail, "{p}");
        } else {
            assert_eq!(p["curve"], detail, "{p}");
        }
        if p["parsed_by"] == "cryptography" {
            assert_eq!(p["der_round_trip"], true, "{p}");
        } else {
            // cryptography has no SM2 curve: checked structurally and on the curve.
            assert_eq!(spec, "EC_SM2", "{p}");
            assert_eq!(p["parsed_by"], "sm2-der", "{p}");
        }
    }
    refused(&s["symmetric"], "UnsupportedOperation", 400);
    refused(&s["unknown_version"], "Forbidden.KeyVersionNotFound", 404);
    refused(&s["disabled"], "Rejected.Disabled", 409);
}

/// The node signed, `cryptography` verified; and the other way round.
#[track_caller]
fn signs_both_ways(u: &Value, key: &str, imported: bool) {
    assert_eq!(u["key_id"], key, "{u}");
    assert!(is_uuid(text(&u["version"])), "{u}");
    assert_eq!(u["python_verifies"], true, "{u}");
    assert_eq!(u["node_verifies_own"], true, "{u}");
    assert_eq!(u["node_rejects_other_digest"], false, "{u}");
    if imported {
        assert_eq!(u["node_verifies_python"], true, "{u}");
        assert_eq!(u["node_rejects_tampered"], false, "{u}");
    }
}

fn check_use(ctx: &Context, s: &Value) {
    let aes = ctx.key("Aliyun_AES_256", "ENCRYPT/DECRYPT");
    let e = &s["encrypt"];
    assert_eq!(e["key_id"], aes, "{e}");
    assert_eq!(e["version"], e["primary"], "{e}");
    assert_eq!(e["blob_version"], e["primary"], "{e}");
    // KeyVersionId 36 ‖ IV 12 ‖ the 28 bytes of the Plaintext string ‖ tag 16.
    assert_eq!(e["blob_len"], 36 + 12 + 28 + 16, "{e}");
    let d = &s["decrypt"];
    assert_eq!(d["key_id"], aes, "{d}");
    assert_eq!(d["version"], e["version"], "{d}");
    assert_eq!(d["round_trip"], true, "{d}");
    assert_eq!(s["decrypt_context"], true);
    for name in [
        "decrypt_wrong_context",
        "decrypt_missing_context",
        "decrypt_tampered",
    ] {
        refused(&s[name], "InvalidCiphertext", 400);
    }
    assert_eq!(s["sm4_round_trip"], true);
    let r = &s["rotated"];
    assert_eq!(r["newer_version"], r["new_version"], "{r}");
    assert_ne!(r["old_version"], r["new_version"], "{r}");
    assert_eq!(r["old_opens"], true, "{r}");
    assert_eq!(r["new_opens"], true, "{r}");
    refused(&s["disabled_encrypt"], "Rejected.Disabled", 409);
    refused(&s["disabled_decrypt"], "Rejected.Disabled", 409);
    refused(&s["encrypt_with_sign_key"], "UnsupportedOperation", 400);
    refused(&s["sign_with_aes"], "InvalidParameter", 400);
    assert!(text(&s["sign_with_aes"]["message"]).contains("KeyId"));
    refused(&s["encrypt_unknown_key"], "Forbidden.KeyNotFound", 404);
    ok(&s["encrypt_by_alias"]);
    for spec in ["RSA_2048", "EC_P256", "EC_P256K"] {
        signs_both_ways(
            &s[format!("sign {spec}")],
            ctx.key(spec, "SIGN/VERIFY"),
            false,
        );
    }
    refused(&s["sign_wrong_algorithm"], "InvalidParameter", 400);
    refused(&s["sign_short_digest"], "InvalidParameter", 400);
}

fn check_import(_ctx: &Context, s: &Value) {
    for name in ["aes", "sm4"] {
        let i = &s[name];
        let created = &i["created"];
        let key = text(&created["key_id"]);
        assert_eq!(created["key_state"], "PendingImport", "{created}");
        assert_eq!(created["origin"], "EXTERNAL", "{created}");
        assert!(is_uuid(text(&created["primary_key_version"])), "{created}");
        refused(&i["enable_pending"], "Rejected.StateModifiedFailed", 409);
        refused(&i["encrypt_pending"], "Rejected.PendingImport", 409);
        refused(&i["new_version_pending"], "UnsupportedOperation", 400);
        assert_eq!(i["params"]["key_id"], key);
        assert!(i["params"]["token_len"].as_i64().unwrap() > 0);
        within(&i["params"]["expires_in"], 86_400, 120);
        refused(&i["past_expiry"], "InvalidParameter", 400);
        ok(&i["import"]);
        let after = &i["after"];
        assert_eq!(after["key_state"], "Enabled", "{after}");
        assert!(is_iso(text(&after["material_expire_time"])), "{after}");
        within(
            &i["expire_in"],
            i["expire_expected_in"].as_i64().unwrap(),
            5,
        );
        let u = &i["use"];
        assert_eq!(u["version"], created["primary_key_version"], "{u}");
        assert_eq!(u["blob_version"], u["version"], "{u}");
        // The bytes of the Plaintext string, opened here with the original material
        // (AAD empty, and SHA-256 of the sorted context pairs).
        assert_eq!(u["plaintext_form"], "text", "{u}");
        assert_eq!(u["context_form"], "text", "{u}");
        assert_eq!(u["decrypt"], true, "{u}");
        ok(&i["reimport_same"]);
        refused(&i["reimport_other"], "InvalidParameter", 400);
        refused(&i["unknown_token"], "InvalidParameter", 400);
        refused(&i["garbage"], "InvalidParameter", 400);
        assert_eq!(i["after_reimports"], true);
        assert_eq!(i["deleted_state"], "PendingImport");
        refused(&i["deleted_encrypt"], "Rejected.PendingImport", 409);
        refused(&i["deleted_decrypt"], "Rejected.PendingImport", 409);
        ok(&i["restore"]);
        assert_eq!(i["restored_state"], "Enabled");
        assert_eq!(i["restored_decrypt"], true);
    }
    refused(&s["foreign_token"], "InvalidParameter", 400);
    refused(&s["pkcs1_refused"], "InvalidParameter", 400);
    refused(&s["oaep_sha1_refused"], "InvalidParameter", 400);
    refused(&s["mismatched_wrapping"], "InvalidParameter", 400);
    refused(&s["params_for_kms_key"], "UnsupportedOperation", 400);
    for name in ["rsa", "p256"] {
        let i = &s[name];
        let created = &i["created"];
        let key = text(&created["key_id"]);
        assert_eq!(created["key_state"], "PendingImport", "{created}");
        assert_eq!(created["origin"], "EXTERNAL", "{created}");
        refused(&i["public_pending"], "Rejected.PendingImport", 409);
        ok(&i["import"]);
        assert_eq!(i["state"], "Enabled");
        assert_eq!(i["public_equal"], true);
        signs_both_ways(&i["use"], key, true);
        ok(&i["reimport_same"]);
        refused(&i["reimport_other"], "InvalidParameter", 400);
        assert_eq!(i["deleted_state"], "PendingImport");
        refused(&i["deleted_sign"], "Rejected.PendingImport", 409);
        refused(&i["deleted_import_other"], "InvalidParameter", 400);
        assert_eq!(i["deleted_import_other_state"], "PendingImport");
    }
    refused(&s["wrong_kind"], "InvalidParameter", 400);
    assert_eq!(s["wrong_kind_state"], "PendingImport");
}

fn check_quota(_ctx: &Context, s: &Value) {
    let before = &s["before"][0];
    assert_eq!(before["resource_type"], "key");
    assert_eq!(before["resource_quota"], 100);
    // Every version the script made before, each key's first one included.
    let used = s["versions_before"].as_i64().unwrap();
    assert!(used > 30, "{s}");
    assert_eq!(before["used_quantity"], used, "{before}");
    assert_eq!(s["filled"].as_i64().unwrap(), 100 - used, "{s}");
    refused(&s["refusal"], "Rejected.LimitExceeded", 400);
    assert_eq!(
        s["after"],
        serde_json::json!([{"resource_type": "key", "resource_quota": 100, "used_quantity": 100}])
    );
    refused(&s["new_version"], "Rejected.LimitExceeded", 400);
    assert_eq!(s["listed"], s["made"]);
}

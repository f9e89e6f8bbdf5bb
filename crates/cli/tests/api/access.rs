//! `strongroom aap …`, `policy …`, `network-rule …` and `client-key …` as a user runs
//! them, against a node whose instance is Connected to two real HSM node processes: the
//! guide's step 5 in one command (files, modes, the password shown once, the instance CA),
//! the undo of a quick create that fails half-way, the client-key limit, references that
//! refuse deletion, and the one-resource commands.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use strongroom_certs::client_key;

use crate::support_kms::{HsmCluster, Kms};

fn mode(file: &Path) -> u32 {
    std::fs::metadata(file).unwrap().permissions().mode() & 0o777
}

fn value_after<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|line| line.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label} in {text}"))
        .split_whitespace()
        .next()
        .unwrap()
}

#[test]
fn guide_step_five_in_one_command_and_the_access_commands() {
    let scratch = tempfile::tempdir().unwrap();
    let cluster = HsmCluster::start(scratch.path());
    let kms = Kms::start(&[], None);
    let instance = kms.connected_instance(&cluster);
    let out_dir = scratch.path().join("app1-files");

    // The quick create.
    let made = kms.ok(&[
        "aap",
        "create",
        "--instance",
        &instance,
        "--name",
        "app1",
        "--resources",
        "key/*",
        "--network",
        "10.0.0.0/8,192.168.1.10",
        "--dir",
        out_dir.to_str().unwrap(),
    ]);
    let key_id = value_after(&made, "client key ").to_owned();
    let password = value_after(&made, "password: ").to_owned();
    assert!(key_id.starts_with("KAAP."), "{made}");
    assert_eq!(
        made.matches(&password).count(),
        1,
        "the password is shown once"
    );
    let (key_name, password_name) = client_key::file_names(&key_id);
    let key_file = out_dir.join(&key_name);
    let password_file = out_dir.join(&password_name);
    for file in [&key_file, &password_file] {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    assert_eq!(std::fs::read_to_string(&password_file).unwrap(), password);
    let read = client_key::read_password_file(&password_file).unwrap();
    let loaded = client_key::load_file(&key_file, &read).unwrap();
    assert_eq!(loaded.key_id, key_id);
    let ca = std::fs::read_to_string(out_dir.join(format!("PrivateKmsCA_{instance}.pem"))).unwrap();
    assert_eq!(ca.matches("-----BEGIN CERTIFICATE-----").count(), 2, "{ca}");
    // The same chain as `instance get --write-ca` writes.
    let ca_dir = scratch.path().join("ca");
    kms.ok(&[
        "instance",
        "get",
        &instance,
        "--write-ca",
        ca_dir.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(ca_dir.join(format!("PrivateKmsCA_{instance}.pem"))).unwrap(),
        ca
    );

    // What it made, through the one-resource commands.
    let rule = kms.ok(&["network-rule", "get", "app1-network"]);
    assert!(rule.contains("10.0.0.0/8,192.168.1.10"), "{rule}");
    let policy = kms.json(&["policy", "get", "app1-policy"]);
    assert_eq!(policy["KmsInstance"], instance.as_str());
    assert_eq!(policy["Resources"], r#"["key/*"]"#);
    assert_eq!(
        policy["Permissions"],
        r#"["RbacPermission/Template/CryptoServiceKeyUser"]"#
    );
    assert_eq!(
        policy["AccessControlRules"],
        r#"{"NetworkRules":["app1-network"]}"#
    );
    let point = kms.ok(&["aap", "get", "app1"]);
    assert!(
        point.contains("app1-policy") && point.contains(&key_id),
        "{point}"
    );
    assert!(point.contains("(1 client keys)"), "{point}");

    // A quick create that fails half-way undoes what it made.
    let failed = kms.refused(&[
        "aap",
        "create",
        "--instance",
        &instance,
        "--name",
        "app2",
        "--resources",
        "alias/nope",
        "--network",
        "10.1.0.0/16",
    ]);
    assert!(failed.contains("InvalidParameter"), "{failed}");
    assert!(
        failed.contains("undone: DeleteNetworkRule app2-network"),
        "{failed}"
    );
    let rules = kms.ok(&["network-rule", "list"]);
    assert!(
        !rules.contains("app2-network") && rules.contains("app1-network"),
        "{rules}"
    );
    // The same name again: refused at the first step, and nothing is undone that
    // another command made.
    let again = kms.refused(&[
        "aap",
        "create",
        "--instance",
        &instance,
        "--name",
        "app1",
        "--resources",
        "key/*",
        "--network",
        "10.0.0.0/8",
    ]);
    assert!(again.contains("Rejected.ResourceExist"), "{again}");
    assert!(!again.contains("undone"), "{again}");
    kms.ok(&["network-rule", "get", "app1-network"]);

    // More client keys: a chosen password and validity; at most three.
    let chosen = scratch.path().join("chosen.txt");
    std::fs::write(&chosen, "Chosen-Pass-42\n").unwrap();
    let second = kms.json(&[
        "client-key",
        "create",
        "--aap",
        "app1",
        "--dir",
        out_dir.to_str().unwrap(),
        "--password-file",
        chosen.to_str().unwrap(),
        "--not-before",
        "2026-01-01T00:00:00Z",
        "--not-after",
        "2027-12-31T00:00:00Z",
    ]);
    assert_eq!(second["ClientKey"]["NotAfter"], "2027-12-31T00:00:00Z");
    assert!(
        second["ClientKey"].get("PrivateKeyData").is_none(),
        "{second}"
    );
    let second_file = Path::new(second["KeyFile"].as_str().unwrap());
    client_key::load_file(
        second_file,
        &strongroom_certs::password::Password::new("Chosen-Pass-42".into()),
    )
    .unwrap();
    let third = kms.ok(&[
        "client-key",
        "create",
        "--aap",
        "app1",
        "--dir",
        out_dir.to_str().unwrap(),
    ]);
    assert!(third.contains("password: "), "{third}");
    let fourth = kms.refused(&[
        "client-key",
        "create",
        "--aap",
        "app1",
        "--dir",
        out_dir.to_str().unwrap(),
    ]);
    assert!(fourth.contains("Rejected.LimitExceeded"), "{fourth}");
    let weak = scratch.path().join("weak.txt");
    std::fs::write(&weak, "abcdefghij").unwrap();
    let refused = kms.refused(&[
        "client-key",
        "create",
        "--aap",
        "app1",
        "--password-file",
        weak.to_str().unwrap(),
    ]);
    assert!(
        refused.contains("InvalidParameter") && !refused.contains("abcdefghij"),
        "{refused}"
    );
    let listed = kms.json(&["client-key", "list", "--aap", "app1"]);
    assert_eq!(listed["ClientKeys"].as_array().unwrap().len(), 3);

    // References hold: each deletion refused while something uses the resource.
    for (args, code) in [
        (vec!["aap", "delete", "app1"], "Rejected.ResourceInUse"),
        (
            vec!["policy", "delete", "app1-policy"],
            "Rejected.ResourceInUse",
        ),
        (
            vec!["network-rule", "delete", "app1-network"],
            "Rejected.ResourceInUse",
        ),
        (
            vec![
                "client-key",
                "get",
                "KAAP.00000000-0000-4000-8000-000000000000",
            ],
            "Forbidden.ResourceNotFound",
        ),
    ] {
        let stderr = kms.refused(&args);
        assert!(stderr.contains(code), "{args:?}: {stderr}");
    }

    // Updates.
    kms.ok(&[
        "network-rule",
        "update",
        "app1-network",
        "--sources",
        "10.0.0.0/8,fd00::/8",
        "--description",
        "office",
    ]);
    let rule = kms.json(&["network-rule", "get", "app1-network"]);
    assert_eq!(rule["SourcePrivateIp"], r#"["10.0.0.0/8","fd00::/8"]"#);
    assert_eq!(rule["Description"], "office");
    kms.ok(&[
        "policy",
        "update",
        "app1-policy",
        "--resources",
        "key/*,secret/*",
    ]);
    let policy = kms.json(&["policy", "get", "app1-policy"]);
    assert_eq!(
        policy["Permissions"],
        r#"["RbacPermission/Template/CryptoServiceKeyUser","RbacPermission/Template/CryptoServiceSecretUser"]"#
    );
    kms.ok(&[
        "network-rule",
        "create",
        "--name",
        "second",
        "--sources",
        "127.0.0.1",
    ]);
    kms.ok(&[
        "policy",
        "create",
        "--name",
        "p2",
        "--instance",
        &instance,
        "--resources",
        "secret/db",
        "--network-rules",
        "second",
    ]);
    kms.ok(&["aap", "update", "app1", "--policies", "app1-policy,p2"]);
    let point = kms.json(&["aap", "get", "app1"]);
    assert_eq!(
        point["ApplicationAccessPoint"]["Policies"],
        r#"["app1-policy","p2"]"#
    );

    // Tearing down, in the order the references allow.
    for key in listed["ClientKeys"].as_array().unwrap() {
        kms.ok(&["client-key", "delete", key["ClientKeyId"].as_str().unwrap()]);
    }
    kms.ok(&["aap", "delete", "app1"]);
    kms.ok(&["policy", "delete", "app1-policy"]);
    kms.ok(&["policy", "delete", "p2"]);
    kms.ok(&["network-rule", "delete", "app1-network"]);
    kms.ok(&["network-rule", "delete", "second"]);
    let empty = kms.ok(&["aap", "list"]);
    assert!(empty.contains("0 shown"), "{empty}");
}

//! `strongroom secret …` as a user runs them, against a node whose instance is
//! Connected to two real HSM node processes: values from text and binary files and
//! from standard input read back byte for byte, versions and stages, listing,
//! describing, deletion, restoring, and random passwords.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Output, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::support_kms::{HsmCluster, Kms, first_line, line_value, strongroom};

/// The words of the table row whose first column is `first`.
fn row(table: &str, first: &str) -> Vec<String> {
    table
        .lines()
        .map(|line| {
            line.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .find(|words| words.first().is_some_and(|w| w == first))
        .unwrap_or_else(|| panic!("no row {first} in {table}"))
}

fn succeeded(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a client command with `input` on its standard input.
fn with_stdin(kms: &Kms, args: &[&str], input: &[u8]) -> Output {
    let mut child = kms
        .command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// `secret get` that must succeed: (stdout, stderr).
fn get(kms: &Kms, args: &[&str]) -> (Vec<u8>, String) {
    let mut all = vec!["secret", "get"];
    all.extend_from_slice(args);
    let out = kms.cli(&all);
    succeeded(&format!("{all:?}"), &out);
    (out.stdout, String::from_utf8(out.stderr).unwrap())
}

#[test]
fn secret_lifecycle_through_the_cli() {
    let scratch = tempfile::tempdir().unwrap();
    let cluster = HsmCluster::start(scratch.path());
    let kms = Kms::start(&[], None);
    let instance = kms.connected_instance_with(&cluster, &["--secret-num", "10"]);
    let key = first_line(&kms.ok(&["key", "create", "--instance", &instance]));
    assert!(key.starts_with("key-"), "{key}");
    let file = |name: &str| scratch.path().join(name).to_str().unwrap().to_owned();

    // A text value with what trimming would lose: leading and trailing blanks, two
    // newlines, non-ASCII.
    let text = "  db-password: s3cr\u{e9}t \u{1f511}\t\n\n";
    std::fs::write(file("text.txt"), text).unwrap();
    let created = kms.ok(&[
        "secret",
        "create",
        "--name",
        "db/password",
        "--key",
        &key,
        "--data-file",
        &file("text.txt"),
        "--description",
        "the database",
        "--tag",
        "env=test",
        "--tag",
        "team=kms",
        "--instance",
        &instance,
    ]);
    assert_eq!(line_value(&created, "SecretName"), "db/password");
    assert_eq!(line_value(&created, "VersionId"), "v1");
    assert_eq!(line_value(&created, "SecretType"), "Generic");
    assert_eq!(line_value(&created, "DKMSInstanceId"), instance);
    assert!(
        line_value(&created, "Arn").ends_with(":secret/db/password"),
        "{created}"
    );
    // stdout is the value, byte for byte; the version and its stages are on stderr.
    let (value, about) = get(&kms, &["--name", "db/password"]);
    assert_eq!(value, text.as_bytes());
    assert!(
        about.contains("v1") && about.contains("ACSCurrent"),
        "{about}"
    );

    // A binary value, with the bytes text could not hold.
    let bytes: Vec<u8> = [0u8, 0xff, 0, b'\n', 0xfe, 0x80]
        .into_iter()
        .chain((0..=255u8).rev())
        .chain([0xff, 0])
        .collect();
    std::fs::write(file("blob.bin"), &bytes).unwrap();
    // Bytes that are not UTF-8 are refused as text, before anything is sent.
    let not_text = kms.refused(&[
        "secret",
        "create",
        "--name",
        "blob",
        "--key",
        &key,
        "--data-file",
        &file("blob.bin"),
    ]);
    assert!(not_text.contains("--binary-file"), "{not_text}");
    let created = kms.json(&[
        "secret",
        "create",
        "--name",
        "blob",
        "--key",
        &key,
        "--binary-file",
        &file("blob.bin"),
        "--version-id",
        "b1",
    ]);
    assert_eq!(created["SecretName"], "blob", "{created}");
    assert_eq!(created["VersionId"], "b1", "{created}");
    // --output writes the bytes to a new file readable by its owner only.
    let (printed, about) = get(&kms, &["--name", "blob", "--output", &file("blob.out")]);
    assert!(printed.is_empty());
    assert!(about.contains("b1"), "{about}");
    assert_eq!(std::fs::read(file("blob.out")).unwrap(), bytes);
    let mode = std::fs::metadata(file("blob.out"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // An existing file is kept, unless --force.
    std::fs::write(file("blob.out"), b"kept").unwrap();
    let exists = kms.refused(&[
        "secret",
        "get",
        "--name",
        "blob",
        "--output",
        &file("blob.out"),
    ]);
    assert!(exists.contains("--force"), "{exists}");
    assert_eq!(std::fs::read(file("blob.out")).unwrap(), b"kept");
    get(
        &kms,
        &["--name", "blob", "--output", &file("blob.out"), "--force"],
    );
    assert_eq!(std::fs::read(file("blob.out")).unwrap(), bytes);
    // Without --output a binary value is printed as base64, with a note.
    let (printed, note) = get(&kms, &["--name", "blob"]);
    assert_eq!(
        String::from_utf8(printed).unwrap().trim_end(),
        STANDARD.encode(&bytes)
    );
    assert!(note.contains("base64"), "{note}");
    let answer = kms.json(&["secret", "get", "--name", "blob"]);
    assert_eq!(answer["SecretDataType"], "binary", "{answer}");
    assert_eq!(answer["SecretData"], STANDARD.encode(&bytes), "{answer}");

    // A new version from standard input takes ACSCurrent; v1 becomes ACSPrevious.
    let second = "second value, from stdin";
    let put = with_stdin(
        &kms,
        &[
            "secret",
            "put",
            "--name",
            "db/password",
            "--version-id",
            "v2",
            "--data-file",
            "-",
        ],
        second.as_bytes(),
    );
    succeeded("secret put from stdin", &put);
    let put = String::from_utf8(put.stdout).unwrap();
    assert_eq!(line_value(&put, "VersionId"), "v2");
    assert_eq!(line_value(&put, "VersionStages"), "ACSCurrent");
    assert_eq!(get(&kms, &["--name", "db/password"]).0, second.as_bytes());
    let (previous, about) = get(&kms, &["--name", "db/password", "--stage", "ACSPrevious"]);
    assert_eq!(previous, text.as_bytes());
    assert!(
        about.contains("v1") && about.contains("ACSPrevious"),
        "{about}"
    );
    assert_eq!(
        get(&kms, &["--name", "db/password", "--version-id", "v1"]).0,
        text.as_bytes()
    );
    let versions = kms.ok(&["secret", "versions", "--name", "db/password"]);
    assert_eq!(row(&versions, "v1")[2], "ACSPrevious", "{versions}");
    assert_eq!(row(&versions, "v2")[2], "ACSCurrent", "{versions}");
    assert!(row(&versions, "v2")[1].ends_with('Z'), "{versions}");

    // A version with a stage of its own leaves ACSCurrent where it is.
    std::fs::write(file("third.txt"), "third").unwrap();
    kms.ok(&[
        "secret",
        "put",
        "--name",
        "db/password",
        "--version-id",
        "v3",
        "--data-file",
        &file("third.txt"),
        "--stage",
        "Testing",
    ]);
    assert_eq!(
        get(&kms, &["--name", "db/password", "--stage", "Testing"]).0,
        b"third"
    );
    assert_eq!(get(&kms, &["--name", "db/password"]).0, second.as_bytes());
    // The next current version: v2 becomes ACSPrevious, v1 keeps no stage and is
    // listed with --all only.
    std::fs::write(file("fourth.txt"), "fourth").unwrap();
    kms.ok(&[
        "secret",
        "put",
        "--name",
        "db/password",
        "--version-id",
        "v4",
        "--data-file",
        &file("fourth.txt"),
    ]);
    let versions = kms.ok(&["secret", "versions", "--name", "db/password"]);
    assert!(!versions.contains("\nv1 "), "{versions}");
    assert_eq!(row(&versions, "v2")[2], "ACSPrevious", "{versions}");
    assert_eq!(row(&versions, "v3")[2], "Testing", "{versions}");
    assert_eq!(row(&versions, "v4")[2], "ACSCurrent", "{versions}");
    let all = kms.json(&["secret", "versions", "--name", "db/password", "--all"]);
    let ids: Vec<&str> = all["VersionIds"]["VersionId"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["VersionId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["v1", "v2", "v3", "v4"], "{all}");

    // List, with filters.
    let listed = kms.ok(&["secret", "list", "--name-contains", "db/"]);
    assert_eq!(row(&listed, "db/password")[1], "Generic", "{listed}");
    assert!(!listed.contains("blob"), "{listed}");
    assert!(listed.contains("1 in total"), "{listed}");
    let by_instance = kms.json(&["secret", "list", "--instance", &instance]);
    assert_eq!(by_instance["TotalCount"], 2, "{by_instance}");

    // Describe: metadata and tags.
    let described = kms.ok(&["secret", "describe", "--name", "db/password"]);
    assert_eq!(line_value(&described, "Description"), "the database");
    assert_eq!(line_value(&described, "EncryptionKeyId"), key);
    assert_eq!(line_value(&described, "DKMSInstanceId"), instance);
    assert!(line_value(&described, "CreateTime").ends_with('Z'));
    let mut tags: Vec<String> = line_value(&described, "Tags")
        .split(',')
        .map(str::to_owned)
        .collect();
    tags.sort();
    assert_eq!(tags, ["env=test", "team=kms"], "{described}");
    assert!(!described.contains("PlannedDeleteTime"), "{described}");

    // Deletion with a recovery window: refused reads, then restored.
    let deleted = kms.ok(&[
        "secret",
        "delete",
        "--name",
        "db/password",
        "--recovery-days",
        "7",
    ]);
    assert!(
        deleted.starts_with("db/password: scheduled for deletion at ")
            && deleted.trim().ends_with('Z'),
        "{deleted}"
    );
    let planned = line_value(
        &kms.ok(&["secret", "describe", "--name", "db/password"]),
        "PlannedDeleteTime",
    );
    assert!(planned.ends_with('Z'), "{planned}");
    let listed = kms.ok(&["secret", "list", "--name-contains", "db/"]);
    assert_eq!(row(&listed, "db/password")[3], planned, "{listed}");
    let pending = kms.refused(&["secret", "get", "--name", "db/password"]);
    assert!(
        pending.starts_with("Rejected.PendingDeletion: "),
        "{pending}"
    );
    assert_eq!(
        kms.ok(&["secret", "restore", "--name", "db/password"])
            .trim(),
        "db/password: deletion cancelled"
    );
    assert_eq!(get(&kms, &["--name", "db/password"]).0, b"fourth");
    assert!(
        !kms.ok(&["secret", "describe", "--name", "db/password"])
            .contains("PlannedDeleteTime")
    );

    // Deletion without recovery: gone at once.
    assert_eq!(
        kms.ok(&["secret", "delete", "--name", "blob", "--force"])
            .trim(),
        "blob: deleted"
    );
    let gone = kms.refused(&["secret", "describe", "--name", "blob"]);
    assert!(gone.starts_with("Forbidden.ResourceNotFound: "), "{gone}");
    assert!(gone.contains("(request "), "{gone}");
    let gone = kms.refused(&["secret", "get", "--name", "blob"]);
    assert!(gone.starts_with("Forbidden.ResourceNotFound: "), "{gone}");
    // The refused value never became a secret.
    assert_eq!(kms.json(&["secret", "list"])["TotalCount"], 1);

    // Random passwords.
    let password = kms.ok(&["secret", "random-password", "--length", "40"]);
    let password = password.strip_suffix('\n').unwrap();
    assert_eq!(password.chars().count(), 40, "{password:?}");
    let letters = kms.ok(&[
        "secret",
        "random-password",
        "--exclude-numbers",
        "--exclude-punctuation",
        "--exclude-characters",
        "aeiouAEIOU",
    ]);
    let letters = letters.trim_end();
    assert_eq!(letters.chars().count(), 32, "{letters:?}");
    assert!(
        letters
            .chars()
            .all(|c| c.is_ascii_alphabetic() && !"aeiouAEIOU".contains(c)),
        "{letters:?}"
    );
}

#[test]
fn a_secret_value_is_never_a_flag_value() {
    let home = tempfile::tempdir().unwrap();
    // Connection settings that reach nothing: nothing here may be sent.
    let run = |args: &[&str]| {
        let mut all = vec!["secret"];
        all.extend_from_slice(args);
        strongroom()
            .args(&all)
            .env("HOME", home.path())
            .env("STRONGROOM_ENDPOINT", "127.0.0.1:1")
            .env("STRONGROOM_INSECURE_HTTP", "1")
            .env("STRONGROOM_ACCESS_KEY_ID", "LTAI-test")
            .env("STRONGROOM_ACCESS_KEY_SECRET", "not-a-secret")
            .output()
            .unwrap()
    };
    // No value, two values, or a value on the command line: usage errors (status 2),
    // before anything is read or sent.
    for args in [
        &["create", "--name", "app", "--key", "alias/k"][..],
        &[
            "create",
            "--name",
            "app",
            "--key",
            "alias/k",
            "--data-file",
            "a",
            "--binary-file",
            "b",
        ],
        &[
            "create", "--name", "app", "--key", "alias/k", "--data", "hunter2",
        ],
        &["put", "--name", "app", "--data-file", "-"],
        &["get", "--name", "app", "--version-id", "v1", "--stage", "S"],
        &["delete", "--name", "app", "--force", "--recovery-days", "7"],
        &["random-password", "--length", "7"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    // A missing file is named.
    let out = run(&[
        "create",
        "--name",
        "app",
        "--key",
        "alias/k",
        "--data-file",
        "/nonexistent/value",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/value"), "{stderr}");
}

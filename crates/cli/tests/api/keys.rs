//! `strongroom key …` and `strongroom alias …` as a user runs them, against a node whose
//! instance is Connected to two real HSM node processes: the lifecycle, versions,
//! public keys and aliases; `key import --material FILE` for symmetric and asymmetric
//! keys; and a search of the node's files and log for imported material in plaintext.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};

use crate::support_kms::{HsmCluster, Kms, first_line, line_value};

fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    let mut urandom = std::fs::File::open("/dev/urandom").unwrap();
    std::io::Read::read_exact(&mut urandom, &mut bytes).unwrap();
    bytes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh private key made by OpenSSL, PKCS#8 PEM (`genpkey` writes PKCS#8).
fn openssl_key(file: &Path, algorithm: &[&str]) {
    let mut args = vec!["genpkey"];
    args.extend_from_slice(algorithm);
    args.extend_from_slice(&["-out", file.to_str().unwrap()]);
    openssl(&args);
    let pem = std::fs::read_to_string(file).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
}

fn same_pem(a: &str, b: &str) -> bool {
    let strip = |s: &str| s.split_whitespace().collect::<String>();
    strip(a) == strip(b)
}

#[test]
fn key_and_alias_lifecycle_through_the_cli() {
    let scratch = tempfile::tempdir().unwrap();
    let cluster = HsmCluster::start(scratch.path());
    let kms = Kms::start(&[], None);
    let instance = kms.connected_instance(&cluster);

    // Create: the id first, then the metadata.
    let created = kms.ok(&[
        "key",
        "create",
        "--instance",
        &instance,
        "--description",
        "first key",
        "--tag",
        "env=test",
    ]);
    let key = first_line(&created);
    assert!(key.starts_with("key-") && key.len() == 28, "{created}");
    assert_eq!(line_value(&created, "KeySpec"), "Aliyun_AES_256");
    assert_eq!(line_value(&created, "KeyState"), "Enabled");
    assert_eq!(line_value(&created, "DKMSInstanceId"), instance);
    assert_eq!(line_value(&created, "Description"), "first key");
    assert_eq!(kms.ok(&["key", "tags", &key]).trim(), "env=test");

    // A second, asymmetric key and a rotating one.
    let rsa = first_line(&kms.ok(&[
        "key",
        "create",
        "--instance",
        &instance,
        "--spec",
        "RSA_2048",
    ]));
    let rotating = kms.ok(&[
        "key",
        "create",
        "--instance",
        &instance,
        "--spec",
        "Aliyun_SM4",
        "--rotation-interval",
        "30d",
    ]);
    assert_eq!(line_value(&rotating, "AutomaticRotation"), "Enabled");
    assert_eq!(line_value(&rotating, "RotationInterval"), "2592000s");
    assert!(line_value(&rotating, "NextRotationDate").ends_with('Z'));

    // List, with filters.
    let listed = kms.ok(&["key", "list", "--instance", &instance]);
    assert!(listed.contains(&key) && listed.contains(&rsa), "{listed}");
    assert!(listed.contains("3 in total"), "{listed}");
    let signing = kms.ok(&["key", "list", "--usage", "SIGN/VERIFY"]);
    assert!(
        signing.contains(&rsa) && !signing.contains(&key),
        "{signing}"
    );
    let tagged = kms.json(&["key", "list", "--tag-key", "env"]);
    assert_eq!(tagged["TotalCount"], 1, "{tagged}");
    assert_eq!(tagged["Keys"]["Key"][0]["KeyId"], key.as_str());
    let two_specs = kms.json(&["key", "list", "--spec", "RSA_2048", "--spec", "Aliyun_SM4"]);
    assert_eq!(two_specs["TotalCount"], 2, "{two_specs}");

    // Describe, also as JSON.
    let described = kms.ok(&["key", "describe", &key]);
    assert_eq!(line_value(&described, "KeyUsage"), "ENCRYPT/DECRYPT");
    assert_eq!(line_value(&described, "ProtectionLevel"), "HSM");
    let arn = line_value(&described, "Arn");
    assert!(arn.starts_with("acs:kms:") && arn.ends_with(&key), "{arn}");
    let metadata = kms.json(&["key", "describe", &arn]);
    assert_eq!(metadata["KeyMetadata"]["KeyId"], key.as_str());

    // Disable and enable.
    assert_eq!(
        kms.ok(&["key", "disable", &key]).trim(),
        format!("{key}: disabled")
    );
    assert_eq!(
        line_value(&kms.ok(&["key", "describe", &key]), "KeyState"),
        "Disabled"
    );
    let disabled = kms.ok(&["key", "list", "--state", "Disabled"]);
    assert!(
        disabled.contains(&key) && !disabled.contains(&rsa),
        "{disabled}"
    );
    let refused = kms.refused(&["key", "rotate", &key]);
    assert!(refused.starts_with("Rejected.Disabled: "), "{refused}");
    kms.ok(&["key", "enable", &key]);
    assert_eq!(
        line_value(&kms.ok(&["key", "describe", &key]), "KeyState"),
        "Enabled"
    );

    // Versions and rotation.
    let first_version = line_value(&kms.ok(&["key", "describe", &key]), "PrimaryKeyVersion");
    let second_version = kms.ok(&["key", "rotate", &key]).trim().to_owned();
    assert_eq!(second_version.len(), 36, "{second_version}");
    assert_ne!(second_version, first_version);
    assert_eq!(
        line_value(&kms.ok(&["key", "describe", &key]), "PrimaryKeyVersion"),
        second_version
    );
    let versions = kms.ok(&["key", "versions", &key]);
    let ids: Vec<&str> = versions
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|word| word.len() == 36)
        .collect();
    assert_eq!(
        ids,
        [first_version.as_str(), second_version.as_str()],
        "{versions}"
    );
    assert!(versions.contains("2 in total"), "{versions}");
    kms.ok(&[
        "key",
        "rotation-policy",
        &key,
        "--enable",
        "--interval",
        "7d",
    ]);
    let rotation = kms.ok(&["key", "describe", &key]);
    assert_eq!(line_value(&rotation, "AutomaticRotation"), "Enabled");
    assert_eq!(line_value(&rotation, "RotationInterval"), "604800s");
    kms.ok(&["key", "rotation-policy", &key, "--disable"]);
    assert_eq!(
        line_value(&kms.ok(&["key", "describe", &key]), "AutomaticRotation"),
        "Disabled"
    );
    let unsupported = kms.refused(&["key", "rotation-policy", &rsa, "--enable"]);
    assert!(
        unsupported.starts_with("UnsupportedOperation: "),
        "{unsupported}"
    );

    // Public keys: printed, or written to a file; none for a symmetric key.
    let pem = kms.ok(&["key", "public-key", &rsa]);
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
    let rsa_version = line_value(&kms.ok(&["key", "describe", &rsa]), "PrimaryKeyVersion");
    let out = kms.dir.path().join("rsa.pub.pem");
    let written = kms.cli(&[
        "key",
        "public-key",
        &rsa,
        "--version",
        &rsa_version,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(written.status.success());
    assert!(written.stdout.is_empty());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), pem);
    assert!(kms.refused(&["key", "public-key", &key]).contains(": "));

    // Description, tags.
    kms.ok(&["key", "update-description", &key, "renamed"]);
    assert_eq!(
        line_value(&kms.ok(&["key", "describe", &key]), "Description"),
        "renamed"
    );
    kms.ok(&["key", "tag", &key, "team=kms", "env=prod"]);
    let tags = kms.ok(&["key", "tags", &key]);
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort_unstable();
    assert_eq!(tags, ["env=prod", "team=kms"]);
    kms.ok(&["key", "untag", &key, "env"]);
    assert_eq!(kms.ok(&["key", "tags", &key]).trim(), "team=kms");

    // Aliases: the prefix is optional; an alias names its key everywhere.
    assert_eq!(
        kms.ok(&["alias", "create", "app", &key]).trim(),
        format!("alias/app -> {key}")
    );
    assert_eq!(
        line_value(&kms.ok(&["key", "describe", "alias/app"]), "KeyId"),
        key
    );
    let exists = kms.refused(&["alias", "create", "alias/app", &rsa]);
    assert!(exists.starts_with("Rejected.AliasExist: "), "{exists}");
    kms.ok(&["alias", "create", "alias/other", &key]);
    let aliases = kms.ok(&["alias", "list"]);
    assert!(
        aliases.contains("alias/app") && aliases.contains("alias/other"),
        "{aliases}"
    );
    assert!(aliases.contains("2 in total"), "{aliases}");
    let by_key = kms.json(&["alias", "list", "--key", &key]);
    assert_eq!(by_key["TotalCount"], 2, "{by_key}");
    assert!(
        kms.ok(&["key", "list", "--alias", "alias/app"])
            .contains(&key)
    );
    kms.ok(&["alias", "update", "app", &rsa]);
    let moved = kms.ok(&["alias", "list", "--key", &rsa]);
    assert!(moved.contains("alias/app"), "{moved}");
    assert_eq!(
        line_value(&kms.ok(&["key", "describe", "alias/app"]), "KeyId"),
        rsa
    );
    kms.ok(&["alias", "delete", "app"]);
    let gone = kms.refused(&["key", "describe", "alias/app"]);
    assert!(gone.starts_with("Forbidden.AliasNotFound: "), "{gone}");

    // Deletion protection, deletion and its cancellation.
    kms.ok(&["key", "protect", &key, "--reason", "production"]);
    let protection = kms.ok(&["key", "describe", &key]);
    assert_eq!(line_value(&protection, "DeletionProtection"), "Enabled");
    assert_eq!(
        line_value(&protection, "DeletionProtectionDescription"),
        "production"
    );
    let protected = kms.refused(&["key", "schedule-deletion", &key, "--days", "7"]);
    assert!(
        protected.starts_with("Forbidden.DeletionProtection: "),
        "{protected}"
    );
    kms.ok(&["key", "protect", &key, "--off"]);
    // The window is checked before anything is sent.
    let short = kms.cli(&["key", "schedule-deletion", &key, "--days", "6"]);
    assert_eq!(short.status.code(), Some(2));
    kms.ok(&["key", "schedule-deletion", &key, "--days", "7"]);
    let pending = kms.ok(&["key", "describe", &key]);
    assert_eq!(line_value(&pending, "KeyState"), "PendingDeletion");
    assert!(
        line_value(&pending, "DeleteDate").ends_with('Z'),
        "{pending}"
    );
    let state = kms.refused(&["key", "disable", &key]);
    assert!(
        state.starts_with("Rejected.StateModifiedFailed: "),
        "{state}"
    );
    kms.ok(&["key", "cancel-deletion", &key]);
    let back = kms.ok(&["key", "describe", &key]);
    assert_eq!(line_value(&back, "KeyState"), "Enabled");
    assert!(!back.contains("DeleteDate"), "{back}");

    // Refusals print the API's code and the request id, and exit 1.
    let missing = kms.refused(&["key", "describe", "key-000000000000000000000000"]);
    assert!(missing.starts_with("Forbidden.KeyNotFound: "), "{missing}");
    assert!(missing.contains("(request "), "{missing}");
}

/// Creates an EXTERNAL key; returns its id.
fn external_key(kms: &Kms, instance: &str, spec: &str, usage: Option<&str>) -> String {
    let mut args = vec![
        "key",
        "create",
        "--instance",
        instance,
        "--spec",
        spec,
        "--origin",
        "EXTERNAL",
    ];
    if let Some(usage) = usage {
        args.extend_from_slice(&["--usage", usage]);
    }
    let created = kms.ok(&args);
    assert_eq!(
        line_value(&created, "KeyState"),
        "PendingImport",
        "{created}"
    );
    assert_eq!(line_value(&created, "Origin"), "EXTERNAL");
    first_line(&created)
}

/// Imports `material` into `key`, checks it is Enabled, re-imports the same file and
/// sees `other` refused.
fn import_and_reimport(kms: &Kms, key: &str, material: &Path, other: &Path) {
    let imported = kms.ok(&[
        "key",
        "import",
        key,
        "--material",
        material.to_str().unwrap(),
    ]);
    assert!(imported.contains("key material imported"), "{imported}");
    assert_eq!(
        line_value(&kms.ok(&["key", "describe", key]), "KeyState"),
        "Enabled"
    );
    kms.ok(&[
        "key",
        "import",
        key,
        "--material",
        material.to_str().unwrap(),
    ]);
    let refused = kms.refused(&["key", "import", key, "--material", other.to_str().unwrap()]);
    assert!(refused.starts_with("InvalidParameter: "), "{refused}");
    assert_eq!(
        line_value(&kms.ok(&["key", "describe", key]), "KeyState"),
        "Enabled"
    );
}

#[test]
fn import_key_material_from_files() {
    let scratch = tempfile::tempdir().unwrap();
    let cluster = HsmCluster::start(scratch.path());
    let kms = Kms::start(&[], None);
    let instance = kms.connected_instance(&cluster);
    let file = |name: &str| -> PathBuf { scratch.path().join(name) };

    // AES-256 from 32 raw bytes; a different 32 bytes are refused on re-import.
    std::fs::write(file("aes.bin"), random_bytes(32)).unwrap();
    std::fs::write(file("aes-other.bin"), random_bytes(32)).unwrap();
    let aes = external_key(&kms, &instance, "Aliyun_AES_256", None);
    // A file of the wrong size says so, and does not name its content.
    std::fs::write(file("short.bin"), [7u8; 31]).unwrap();
    let short = kms.refused(&[
        "key",
        "import",
        &aes,
        "--material",
        file("short.bin").to_str().unwrap(),
    ]);
    assert!(short.contains("31 bytes"), "{short}");
    import_and_reimport(&kms, &aes, &file("aes.bin"), &file("aes-other.bin"));
    // Imported material has an expiry when asked for one.
    let expiry = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 86_400)
        .to_string();
    kms.ok(&[
        "key",
        "import",
        &aes,
        "--material",
        file("aes.bin").to_str().unwrap(),
        "--expire-unix",
        &expiry,
    ]);
    assert!(line_value(&kms.ok(&["key", "describe", &aes]), "MaterialExpireTime").ends_with('Z'));

    // SM4 from hex text (EC_SM2 + SM2PKE by default).
    std::fs::write(file("sm4.hex"), format!("{}\n", hex(&random_bytes(16)))).unwrap();
    std::fs::write(file("sm4-other.hex"), hex(&random_bytes(16)).to_uppercase()).unwrap();
    let sm4 = external_key(&kms, &instance, "Aliyun_SM4", None);
    import_and_reimport(&kms, &sm4, &file("sm4.hex"), &file("sm4-other.hex"));

    // An AES-128 key from base64 text, wrapped with SM2 on request.
    std::fs::write(file("aes128.b64"), STANDARD.encode(random_bytes(16))).unwrap();
    let aes128 = external_key(&kms, &instance, "Aliyun_AES_128", None);
    kms.ok(&[
        "key",
        "import",
        &aes128,
        "--material",
        file("aes128.b64").to_str().unwrap(),
        "--wrapping-spec",
        "EC_SM2",
    ]);

    // RSA_2048 SIGN/VERIFY from OpenSSL's PKCS#8 PEM; its public key is OpenSSL's.
    openssl_key(
        &file("rsa.pem"),
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    openssl_key(
        &file("rsa-other.pem"),
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    let rsa = external_key(&kms, &instance, "RSA_2048", Some("SIGN/VERIFY"));
    import_and_reimport(&kms, &rsa, &file("rsa.pem"), &file("rsa-other.pem"));
    openssl(&[
        "pkey",
        "-in",
        file("rsa.pem").to_str().unwrap(),
        "-pubout",
        "-out",
        file("rsa.pub").to_str().unwrap(),
    ]);
    assert!(same_pem(
        &kms.ok(&["key", "public-key", &rsa]),
        &std::fs::read_to_string(file("rsa.pub")).unwrap()
    ));

    // EC_P256 from PKCS#8 DER.
    let ec_pkeyopt = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
    openssl_key(&file("ec.pem"), &ec_pkeyopt);
    openssl_key(&file("ec-other.pem"), &ec_pkeyopt);
    for name in ["ec", "ec-other"] {
        openssl(&[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            file(&format!("{name}.pem")).to_str().unwrap(),
            "-outform",
            "DER",
            "-out",
            file(&format!("{name}.der")).to_str().unwrap(),
        ]);
    }
    let ec = external_key(&kms, &instance, "EC_P256", None);
    import_and_reimport(&kms, &ec, &file("ec.der"), &file("ec-other.der"));
    openssl(&[
        "pkey",
        "-in",
        file("ec.pem").to_str().unwrap(),
        "-pubout",
        "-out",
        file("ec.pub").to_str().unwrap(),
    ]);
    assert!(same_pem(
        &kms.ok(&["key", "public-key", &ec]),
        &std::fs::read_to_string(file("ec.pub")).unwrap()
    ));

    // EC_SM2 from OpenSSL's PKCS#8 PEM (EC_SM2 + SM2PKE_SM4_ECB by default).
    openssl_key(&file("sm2.pem"), &["-algorithm", "SM2"]);
    openssl_key(&file("sm2-other.pem"), &["-algorithm", "SM2"]);
    let sm2 = external_key(&kms, &instance, "EC_SM2", Some("SIGN/VERIFY"));
    import_and_reimport(&kms, &sm2, &file("sm2.pem"), &file("sm2-other.pem"));

    // A traditional (non-PKCS#8) PEM is refused before anything is sent, with advice.
    openssl(&[
        "pkey",
        "-in",
        file("ec-other.pem").to_str().unwrap(),
        "-traditional",
        "-out",
        file("ec-sec1.pem").to_str().unwrap(),
    ]);
    let sec1 = kms.refused(&[
        "key",
        "import",
        &ec,
        "--material",
        file("ec-sec1.pem").to_str().unwrap(),
    ]);
    assert!(sec1.contains("openssl pkcs8 -topk8"), "{sec1}");
    // A key made in the HSM takes no material.
    let made = first_line(&kms.ok(&["key", "create", "--instance", &instance]));
    let refused = kms.refused(&[
        "key",
        "import",
        &made,
        "--material",
        file("aes.bin").to_str().unwrap(),
    ]);
    assert!(refused.contains(": "), "{refused}");
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// Whether `file` contains `needle` anywhere.
fn file_contains(file: &Path, needle: &[u8]) -> bool {
    assert!(!needle.is_empty());
    let bytes = std::fs::read(file).unwrap();
    bytes.windows(needle.len()).any(|window| window == needle)
}

/// The files among `files` that contain `needle`.
fn containing(files: &[PathBuf], needle: &[u8]) -> Vec<PathBuf> {
    files
        .iter()
        .filter(|file| file_contains(file, needle))
        .cloned()
        .collect()
}

/// The forms in which `material` could appear: raw, hex in both cases, base64 (with
/// and without padding, standard and URL-safe), and base64 of the material at each of
/// the three byte alignments it could have inside a longer base64 text.
fn encodings(material: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![
        ("raw".to_owned(), material.to_vec()),
        ("hex".to_owned(), hex(material).into_bytes()),
        ("HEX".to_owned(), hex(material).to_uppercase().into_bytes()),
        ("base64".to_owned(), STANDARD.encode(material).into_bytes()),
        (
            "base64url".to_owned(),
            URL_SAFE_NO_PAD.encode(material).into_bytes(),
        ),
    ];
    for skip in 0..3 {
        let rest = &material[skip..];
        let whole = rest.len() / 3 * 3;
        out.push((
            format!("base64 at offset {skip}"),
            STANDARD_NO_PAD.encode(&rest[..whole]).into_bytes(),
        ));
    }
    out
}

#[test]
fn imported_material_is_nowhere_in_plaintext() {
    let scratch = tempfile::tempdir().unwrap();
    let cluster = HsmCluster::start(scratch.path());
    let log = scratch.path().join("server.log");
    let mut kms = Kms::start(&["--maintenance-interval-secs", "1"], Some(&log));
    let instance = kms.connected_instance(&cluster);
    let material = random_bytes(32);
    let material_file = scratch.path().join("material.bin");
    std::fs::write(&material_file, &material).unwrap();
    let key = external_key(&kms, &instance, "Aliyun_AES_256", None);
    kms.ok(&[
        "key",
        "import",
        &key,
        "--material",
        material_file.to_str().unwrap(),
    ]);
    // Re-import, and use the key's metadata, so that every path that sees the key runs.
    kms.ok(&[
        "key",
        "import",
        &key,
        "--material",
        material_file.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        line_value(&kms.ok(&["key", "describe", &key]), "KeyState"),
        "Enabled"
    );
    // Let the maintenance task run over the key at least once.
    std::thread::sleep(std::time::Duration::from_secs(2));
    kms.stop();

    let data_files = files_under(&kms.data);
    let names: Vec<String> = data_files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n == "kms.db"), "{names:?}");
    let mut searched = data_files.clone();
    searched.push(log.clone());
    let hsm_files: Vec<PathBuf> = cluster
        .state_dirs
        .iter()
        .flat_map(|d| files_under(d))
        .collect();
    assert!(!hsm_files.is_empty());

    // Controls: the search finds what is there.
    assert!(
        !containing(&data_files, key.as_bytes()).is_empty(),
        "the key id is in the database"
    );
    assert!(
        file_contains(&log, key.as_bytes()),
        "the key id is in the debug log"
    );
    let control = scratch.path().join("control");
    let mut all_forms = Vec::new();
    for (_, bytes) in encodings(&material) {
        all_forms.extend_from_slice(b"..");
        all_forms.extend_from_slice(&bytes);
    }
    std::fs::write(&control, &all_forms).unwrap();
    for (form, bytes) in encodings(&material) {
        assert!(file_contains(&control, &bytes), "control: {form}");
    }
    assert!(file_contains(&material_file, &material));

    // The material itself is nowhere: not in the node's files, not in its log, not in
    // the HSM nodes' state.
    for (form, bytes) in encodings(&material) {
        let found = containing(&searched, &bytes);
        assert!(found.is_empty(), "the material ({form}) is in {found:?}");
        let found = containing(&hsm_files, &bytes);
        assert!(found.is_empty(), "the material ({form}) is in {found:?}");
    }
}

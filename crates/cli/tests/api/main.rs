//! The binaries as a user runs them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: an unexpected error should fail the test loudly"
)]

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

mod access;
mod crash;
mod hsm;
mod hsm_faults;
mod keys;
mod mgmt;
mod quickstart;
mod secrets;
mod support_kms;

#[test]
fn the_guides_certificate_command_works_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_hsm_certificate_generate"))
            .current_dir(dir.path())
            .args(["-dir", "./certs", "-pswd", "12345678"])
            .output()
            .unwrap()
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let certs = dir.path().join("certs");
    let mut names: Vec<String> = std::fs::read_dir(&certs)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "client.p12",
            "client.pem",
            "rootca.key",
            "rootca.pem",
            "server.p12"
        ]
    );
    for private in ["client.p12", "rootca.key", "server.p12"] {
        let mode = std::fs::metadata(certs.join(private))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{private}");
    }
    // A second run refuses to overwrite, and says why.
    let second = run();
    assert_eq!(second.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&second.stderr).contains("not empty"));
}

#[test]
fn strongroom_certs_generate_takes_options_and_refuses_short_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let strongroom = env!("CARGO_BIN_EXE_strongroom");
    let short = Command::new(strongroom)
        .args(["certs", "generate", "-dir"])
        .arg(dir.path().join("a"))
        .args(["-pswd", "1234567"])
        .output()
        .unwrap();
    assert_eq!(short.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 8"));
    assert!(
        !dir.path().join("a").exists(),
        "nothing is created for a refused password"
    );
    let ok = Command::new(strongroom)
        .args(["certs", "generate", "--dir"])
        .arg(dir.path().join("b"))
        .args([
            "--password",
            "12345678",
            "--host",
            "hsm-a.example,10.1.2.3",
            "--key-type",
            "ec-p256",
        ])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(dir.path().join("b/server.p12").exists());
}

//! The certificate tool: the five files, their modes, the directory rules, and what
//! OpenSSL 3 and Python `cryptography` make of the output.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use strongroom_certs::error::CertsError;
use strongroom_certs::password::Password;
use strongroom_certs::pkcs12::{self, Pkcs12Format};
use strongroom_certs::pki::{KeyType, certificate_pem};
use strongroom_certs::tool::{self, GenerateOptions};

use crate::support::{Scratch, finish, openssl, path_str, python, run_fails, run_ok};

const PASSWORD: &str = "12345678";

/// Loads a PKCS#12 with Python `cryptography`; prints
/// `match|mismatch rsa|ec <number of extra certificates> <subject>` or `refused`.
pub const PY_LOAD_PKCS12: &str = r#"
import sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
data = open(sys.argv[1], "rb").read()
try:
    key, cert, extra = pkcs12.load_key_and_certificates(data, sys.argv[2].encode())
except ValueError as e:
    print("refused")
    sys.exit(0)
spki = lambda k: k.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
kind = "rsa" if isinstance(key, rsa.RSAPrivateKey) else "ec" if isinstance(key, ec.EllipticCurvePrivateKey) else "other"
match = "match" if spki(key.public_key()) == spki(cert.public_key()) else "mismatch"
print(match, kind, len(extra), cert.subject.rfc4514_string())
"#;

/// `openssl pkcs12 -info -noout` (no `-legacy`), which must succeed; returns what it
/// printed (the structure goes to stderr).
pub fn pkcs12_info(p12: &Path, password: &str) -> String {
    let out = finish(
        openssl()
            .args(["pkcs12", "-info", "-noout", "-passin"])
            .arg(format!("pass:{password}"))
            .arg("-in")
            .arg(p12),
        b"",
    );
    assert!(out.success, "openssl pkcs12 -info failed: {}", out.stderr);
    format!("{}{}", out.stdout, out.stderr)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn generate(scratch: &Scratch, key_type: KeyType, format: Pkcs12Format) -> tool::GeneratedFiles {
    let mut options = GenerateOptions::new(scratch.path("certs"), Password::from(PASSWORD));
    options.key_type = key_type;
    options.pkcs12_format = format;
    tool::generate(&options).unwrap()
}

#[test]
fn writes_exactly_five_files_with_private_ones_0600() {
    let scratch = Scratch::new();
    let files = generate(&scratch, KeyType::Rsa2048, Pkcs12Format::Modern);
    let dir = scratch.path("certs");
    let names: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let expected: BTreeSet<String> = [
        "client.p12",
        "client.pem",
        "rootca.key",
        "rootca.pem",
        "server.p12",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(names, expected);
    assert_eq!(mode(&dir), 0o700);
    for private in [&files.rootca_key, &files.client_p12, &files.server_p12] {
        assert_eq!(mode(private), 0o600, "{}", private.display());
    }
    for public in [&files.rootca_pem, &files.client_pem] {
        assert_eq!(mode(public) & 0o600, 0o600, "{}", public.display());
        assert_eq!(mode(public) & 0o022, 0, "{}", public.display());
    }
    let rootca_key = std::fs::read_to_string(&files.rootca_key).unwrap();
    assert!(rootca_key.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert_eq!(
        std::fs::read_to_string(&files.client_pem).unwrap(),
        certificate_pem(&files.client_certificate)
    );
}

#[test]
fn non_empty_directories_need_force() {
    let scratch = Scratch::new();
    let first = generate(&scratch, KeyType::EcP256, Pkcs12Format::Modern);
    let mut options = GenerateOptions::new(scratch.path("certs"), Password::from(PASSWORD));
    options.key_type = KeyType::EcP256;
    assert!(matches!(
        tool::generate(&options),
        Err(CertsError::DirectoryNotEmpty { .. })
    ));
    // Nothing was touched by the refused run.
    assert_eq!(
        std::fs::read_to_string(&first.rootca_pem).unwrap(),
        certificate_pem(&first.ca_certificate)
    );
    options.force = true;
    let second = tool::generate(&options).unwrap();
    assert_ne!(second.ca_certificate, first.ca_certificate);
    assert_eq!(mode(&second.rootca_key), 0o600);

    // An existing empty directory is fine; a file in place of the directory is not.
    let empty = scratch.path("empty");
    std::fs::create_dir(&empty).unwrap();
    let mut options = GenerateOptions::new(&empty, Password::from(PASSWORD));
    options.key_type = KeyType::EcP256;
    tool::generate(&options).unwrap();
    let file = scratch.write("file", b"x");
    let mut options = GenerateOptions::new(&file, Password::from(PASSWORD));
    options.key_type = KeyType::EcP256;
    options.force = true;
    assert!(matches!(
        tool::generate(&options),
        Err(CertsError::NotADirectory { .. })
    ));
}

#[test]
fn openssl_reads_and_verifies_the_output() {
    for key_type in [KeyType::Rsa2048, KeyType::EcP256] {
        let scratch = Scratch::new();
        let files = generate(&scratch, key_type, Pkcs12Format::Modern);
        let ca = path_str(&files.rootca_pem);

        for p12 in [&files.client_p12, &files.server_p12] {
            let info = pkcs12_info(p12, PASSWORD);
            assert!(info.contains("MAC: sha256"), "{info}");
            assert!(
                info.contains("PBES2") && info.contains("AES-256-CBC"),
                "{info}"
            );
            assert!(!info.contains("3DES") && !info.contains("RC2"), "{info}");
            let wrong = run_fails(
                openssl()
                    .args([
                        "pkcs12",
                        "-info",
                        "-noout",
                        "-passin",
                        "pass:87654321",
                        "-in",
                    ])
                    .arg(p12),
            );
            assert!(wrong.to_lowercase().contains("mac verify"), "{wrong}");
        }

        // The server certificate, out of server.p12, for an SSL server at 127.0.0.1
        // and localhost; the client certificate for an SSL client.
        let server_pem = scratch.path("server-cert.pem");
        run_ok(
            openssl()
                .args(["pkcs12", "-nokeys", "-clcerts", "-in"])
                .arg(&files.server_p12)
                .args(["-passin", &format!("pass:{PASSWORD}"), "-out"])
                .arg(&server_pem),
        );
        for check in [
            ["-verify_ip", "127.0.0.1"],
            ["-verify_hostname", "localhost"],
        ] {
            let out = run_ok(
                openssl()
                    .args(["verify", "-CAfile", ca, "-purpose", "sslserver"])
                    .args(check)
                    .arg(&server_pem),
            );
            assert!(out.contains(": OK"), "{out}");
        }
        run_fails(
            openssl()
                .args(["verify", "-CAfile", ca, "-verify_hostname", "example.com"])
                .arg(&server_pem),
        );
        let out = run_ok(
            openssl()
                .args(["verify", "-CAfile", ca, "-purpose", "sslclient"])
                .arg(&files.client_pem),
        );
        assert!(out.contains(": OK"), "{out}");

        // Extensions.
        let ext = |path: &Path, names: &str| {
            run_ok(
                openssl()
                    .args(["x509", "-noout", "-ext", names, "-in"])
                    .arg(path),
            )
        };
        let ca_ext = ext(&files.rootca_pem, "basicConstraints,keyUsage");
        assert!(ca_ext.contains("Basic Constraints: critical"), "{ca_ext}");
        assert!(ca_ext.contains("CA:TRUE"), "{ca_ext}");
        assert!(ca_ext.contains("Certificate Sign"), "{ca_ext}");
        let server_ext = ext(
            &server_pem,
            "subjectAltName,extendedKeyUsage,basicConstraints",
        );
        assert!(server_ext.contains("DNS:localhost"), "{server_ext}");
        assert!(server_ext.contains("IP Address:127.0.0.1"), "{server_ext}");
        assert!(
            server_ext.contains("TLS Web Server Authentication"),
            "{server_ext}"
        );
        assert!(server_ext.contains("CA:FALSE"), "{server_ext}");
        let client_ext = ext(&files.client_pem, "extendedKeyUsage");
        assert!(
            client_ext.contains("TLS Web Client Authentication"),
            "{client_ext}"
        );

        // rootca.key is the CA certificate's key.
        let key_pub = run_ok(
            openssl()
                .args(["pkey", "-pubout", "-in"])
                .arg(&files.rootca_key),
        );
        let cert_pub = run_ok(
            openssl()
                .args(["x509", "-noout", "-pubkey", "-in"])
                .arg(&files.rootca_pem),
        );
        assert_eq!(key_pub, cert_pub);
    }
}

#[test]
fn python_reads_the_pkcs12_files() {
    for (key_type, kind) in [(KeyType::Rsa2048, "rsa"), (KeyType::EcP256, "ec")] {
        for format in [Pkcs12Format::Modern, Pkcs12Format::Legacy] {
            let scratch = Scratch::new();
            let files = generate(&scratch, key_type, format);
            for (p12, subject) in [
                (&files.client_p12, "CN=Strongroom KMS client,O=Strongroom"),
                (&files.server_p12, "CN=Strongroom HSM,O=Strongroom"),
            ] {
                let out = run_ok(python().args(["-c", PY_LOAD_PKCS12]).arg(p12).arg(PASSWORD));
                assert_eq!(
                    out.trim(),
                    format!("match {kind} 1 {subject}"),
                    "{format:?}"
                );
                let wrong = run_ok(
                    python()
                        .args(["-c", PY_LOAD_PKCS12])
                        .arg(p12)
                        .arg("wrong-password"),
                );
                assert_eq!(wrong.trim(), "refused");
            }
        }
    }
}

#[test]
fn our_reader_gets_key_and_chain_back() {
    let scratch = Scratch::new();
    let files = generate(&scratch, KeyType::Rsa2048, Pkcs12Format::Modern);
    let password = Password::from(PASSWORD);
    let client = pkcs12::read(&std::fs::read(&files.client_p12).unwrap(), &password).unwrap();
    assert_eq!(
        client.certificates,
        vec![
            files.client_certificate.clone(),
            files.ca_certificate.clone()
        ]
    );
    let server = pkcs12::read(&std::fs::read(&files.server_p12).unwrap(), &password).unwrap();
    assert_eq!(server.certificates[0], files.server_certificate);
    assert!(matches!(
        pkcs12::read(
            &std::fs::read(&files.server_p12).unwrap(),
            &Password::from("1234567X")
        ),
        Err(CertsError::WrongPassword)
    ));
}

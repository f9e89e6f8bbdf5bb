//! PKCS#12 in both directions against OpenSSL 3: we read what `openssl pkcs12 -export`
//! writes (its default PBES2/AES-256 and `-legacy` RC2-40 + 3DES); OpenSSL reads both
//! layouts we write, and the key it extracts is the certificate's.

use rustls::pki_types::CertificateDer;
use strongroom_certs::error::CertsError;
use strongroom_certs::password::Password;
use strongroom_certs::pkcs12::{self, Pkcs12Format};
use strongroom_certs::pki::{
    CertificateAuthority, IssuedCertificate, KeyType, Validity, certificate_pem,
    key_matches_certificate, private_key_pem,
};

use crate::support::{Scratch, openssl, run_ok};
use crate::tool::pkcs12_info;

const PASSWORD: &str = "pkcs12-test-password";

fn leaf_and_ca(key_type: KeyType) -> (IssuedCertificate, CertificateDer<'static>) {
    let validity = Validity::days_from_now(30).unwrap();
    let ca = CertificateAuthority::new_root("Interop CA", key_type, validity, Some(0)).unwrap();
    let leaf = ca.issue_client("interop", key_type, validity).unwrap();
    (leaf, ca.certificate().clone())
}

#[test]
fn we_read_what_openssl_writes() {
    for key_type in [KeyType::Rsa2048, KeyType::EcP256] {
        let (leaf, ca) = leaf_and_ca(key_type);
        let scratch = Scratch::new();
        let key = scratch.write(
            "key.pem",
            private_key_pem(&leaf.private_key).expose_secret(),
        );
        let cert = scratch.write("cert.pem", certificate_pem(&leaf.certificate).as_bytes());
        let ca_pem = scratch.write("ca.pem", certificate_pem(&ca).as_bytes());
        for legacy in [false, true] {
            let out = scratch.path(if legacy { "legacy.p12" } else { "modern.p12" });
            let mut command = openssl();
            command
                .args(["pkcs12", "-export", "-inkey"])
                .arg(&key)
                .arg("-in")
                .arg(&cert)
                .arg("-certfile")
                .arg(&ca_pem)
                .args(["-passout", &format!("pass:{PASSWORD}"), "-out"])
                .arg(&out);
            if legacy {
                command.arg("-legacy");
            }
            run_ok(&mut command);
            let info = pkcs12_info_any(&out, legacy);
            if legacy {
                assert!(info.contains("pbeWithSHA1And40BitRC2-CBC"), "{info}");
            } else {
                assert!(info.contains("AES-256-CBC"), "{info}");
            }

            let der = std::fs::read(&out).unwrap();
            let contents = pkcs12::read(&der, &Password::from(PASSWORD)).unwrap();
            assert_eq!(
                contents.certificates,
                vec![leaf.certificate.clone(), ca.clone()]
            );
            assert!(key_matches_certificate(&contents.private_key, &leaf.certificate).unwrap());
            assert!(matches!(
                pkcs12::read(&der, &Password::from("not the password")),
                Err(CertsError::WrongPassword)
            ));
        }
    }
}

/// `openssl pkcs12 -info`, with `-legacy` when the file needs it (RC2-40).
fn pkcs12_info_any(p12: &std::path::Path, legacy: bool) -> String {
    if !legacy {
        return pkcs12_info(p12, PASSWORD);
    }
    let out = crate::support::finish(
        openssl()
            .args(["pkcs12", "-legacy", "-info", "-noout", "-passin"])
            .arg(format!("pass:{PASSWORD}"))
            .arg("-in")
            .arg(p12),
        b"",
    );
    assert!(out.success, "{}", out.stderr);
    format!("{}{}", out.stdout, out.stderr)
}

#[test]
fn openssl_reads_what_we_write_without_legacy() {
    for key_type in [KeyType::Rsa2048, KeyType::EcP256] {
        let (leaf, ca) = leaf_and_ca(key_type);
        let scratch = Scratch::new();
        for format in [Pkcs12Format::Modern, Pkcs12Format::Legacy] {
            let der = pkcs12::write(
                &leaf.private_key,
                &[leaf.certificate.clone(), ca.clone()],
                &Password::from(PASSWORD),
                format,
            )
            .unwrap();
            let p12 = scratch.write("ours.p12", &der);
            let info = pkcs12_info(&p12, PASSWORD);
            match format {
                Pkcs12Format::Modern => {
                    assert!(info.contains("MAC: sha256"), "{info}");
                    assert_eq!(
                        info.matches("PBES2, PBKDF2, AES-256-CBC").count(),
                        2,
                        "{info}"
                    );
                }
                _ => {
                    assert!(info.contains("MAC: sha1"), "{info}");
                    assert_eq!(
                        info.matches("pbeWithSHA1And3-KeyTripleDES-CBC").count(),
                        2,
                        "{info}"
                    );
                }
            }
            // The key OpenSSL extracts is the certificate's.
            let key_pem = scratch.path("extracted-key.pem");
            run_ok(
                openssl()
                    .args(["pkcs12", "-nocerts", "-nodes", "-passin"])
                    .arg(format!("pass:{PASSWORD}"))
                    .arg("-in")
                    .arg(&p12)
                    .arg("-out")
                    .arg(&key_pem),
            );
            let from_key = run_ok(openssl().args(["pkey", "-pubout", "-in"]).arg(&key_pem));
            let cert_pem = scratch.write("leaf.pem", certificate_pem(&leaf.certificate).as_bytes());
            let from_cert = run_ok(
                openssl()
                    .args(["x509", "-noout", "-pubkey", "-in"])
                    .arg(&cert_pem),
            );
            assert_eq!(from_key, from_cert, "{format:?}");
        }
    }
}

//! Instance CAs: the chain under `openssl verify`, the `PrivateKmsCA_<id>.pem` bundle
//! (exactly root then issuing CA), rustls with the bundle as roots accepting the
//! endpoint's names and refusing others, and re-issuing the server certificate from
//! the stored issuing CA.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, Connection, RootCertStore, ServerConnection};
use strongroom_certs::error::CertsError;
use strongroom_certs::instance_ca::{self, ServerCertificate};
use strongroom_certs::pki::{ServerNames, certificate_pem, certificates_from_pem};
use strongroom_certs::tls::https_server_config;
use x509_parser::prelude::{FromDer as _, X509Certificate};

use crate::support::{Scratch, handshake, openssl, path_str, run_fails, run_ok};

const INSTANCE: &str = "kst-test65f0c0dkms0test001";

fn host() -> String {
    format!("{INSTANCE}.cryptoservice.kms.aliyuncs.com")
}

/// `openssl verify -CAfile root -untrusted issuing server` plus `extra` arguments.
fn openssl_verify(
    scratch: &Scratch,
    root: &CertificateDer<'_>,
    issuing: &CertificateDer<'_>,
    leaf: &CertificateDer<'_>,
    extra: &[&str],
) -> Result<String, String> {
    let root = scratch.write("root.pem", certificate_pem(root).as_bytes());
    let issuing = scratch.write("issuing.pem", certificate_pem(issuing).as_bytes());
    let leaf = scratch.write("server.pem", certificate_pem(leaf).as_bytes());
    let out = crate::support::finish(
        openssl()
            .args([
                "verify",
                "-CAfile",
                path_str(&root),
                "-untrusted",
                path_str(&issuing),
            ])
            .args(extra)
            .arg(&leaf),
        b"",
    );
    if out.success {
        Ok(out.stdout)
    } else {
        Err(format!("{}{}", out.stdout, out.stderr))
    }
}

/// A rustls client trusting exactly the certificates of `bundle_pem` connects to an
/// instance endpoint presenting `server`, by `name`.
fn connect(
    bundle_pem: &str,
    server: &ServerCertificate,
    name: ServerName<'static>,
) -> Result<(), rustls::Error> {
    let mut roots = RootCertStore::empty();
    for ca in certificates_from_pem(bundle_pem.as_bytes()).unwrap() {
        roots.add(ca).unwrap();
    }
    let mut client_config = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    client_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let server_config = https_server_config(server.chain.clone(), &server.private_key).unwrap();
    let mut client =
        Connection::Client(ClientConnection::new(Arc::new(client_config), name).unwrap());
    let mut server_conn =
        Connection::Server(ServerConnection::new(Arc::new(server_config)).unwrap());
    let outcome = handshake(&mut client, &mut server_conn);
    outcome.client?;
    assert!(outcome.server.is_ok());
    assert_eq!(client.alpn_protocol(), Some(&b"http/1.1"[..]));
    Ok(())
}

#[test]
fn chain_verifies_with_openssl_for_the_endpoint_names() {
    let pki = instance_ca::create(INSTANCE, &ServerNames::default()).unwrap();
    let scratch = Scratch::new();
    let (ca, server) = (&pki.ca, &pki.server);
    assert_eq!(server.chain.len(), 2);
    assert_eq!(server.chain[1], ca.issuing_certificate, "leaf + issuing CA");
    for extra in [
        &["-purpose", "sslserver"][..],
        &["-verify_hostname", &host()],
        &["-verify_hostname", "localhost"],
        &["-verify_ip", "127.0.0.1"],
    ] {
        let out = openssl_verify(
            &scratch,
            &ca.root_certificate,
            &ca.issuing_certificate,
            &server.chain[0],
            extra,
        )
        .unwrap_or_else(|e| panic!("{extra:?}: {e}"));
        assert!(out.contains(": OK"), "{out}");
    }
    openssl_verify(
        &scratch,
        &ca.root_certificate,
        &ca.issuing_certificate,
        &server.chain[0],
        &["-verify_hostname", "other.example.com"],
    )
    .unwrap_err();
    // Without the issuing CA the leaf does not chain to the root.
    let root = scratch.write(
        "root-only.pem",
        certificate_pem(&ca.root_certificate).as_bytes(),
    );
    let leaf = scratch.write("leaf.pem", certificate_pem(&server.chain[0]).as_bytes());
    run_fails(
        openssl()
            .args(["verify", "-CAfile", path_str(&root)])
            .arg(&leaf),
    );
}

#[test]
fn bundle_is_exactly_root_then_issuing() {
    let pki = instance_ca::create(INSTANCE, &ServerNames::default()).unwrap();
    let bundle = pki.ca.bundle_pem();
    assert_eq!(bundle.matches("-----BEGIN CERTIFICATE-----").count(), 2);
    let certs = certificates_from_pem(bundle.as_bytes()).unwrap();
    assert_eq!(
        certs,
        vec![
            pki.ca.root_certificate.clone(),
            pki.ca.issuing_certificate.clone()
        ]
    );
    let (_, root) = X509Certificate::from_der(&certs[0]).unwrap();
    let (_, issuing) = X509Certificate::from_der(&certs[1]).unwrap();
    assert_eq!(
        root.subject(),
        root.issuer(),
        "the first is the self-signed root"
    );
    assert_eq!(
        issuing.issuer(),
        root.subject(),
        "the second is issued by the first"
    );
    assert!(root.is_ca() && issuing.is_ca());
    assert_eq!(
        instance_ca::bundle_file_name(INSTANCE),
        format!("PrivateKmsCA_{INSTANCE}.pem")
    );
    // OpenSSL reads both certificates of the file.
    let scratch = Scratch::new();
    let path = scratch.write(&instance_ca::bundle_file_name(INSTANCE), bundle.as_bytes());
    let text = run_ok(
        openssl()
            .args(["crl2pkcs7", "-nocrl", "-certfile"])
            .arg(&path)
            .args(["-outform", "PEM"]),
    );
    assert!(text.contains("BEGIN PKCS7"));
}

#[test]
fn rustls_with_the_bundle_accepts_the_endpoint_names_only() {
    let pki = instance_ca::create(INSTANCE, &ServerNames::default()).unwrap();
    let bundle = pki.ca.bundle_pem();
    for name in [
        ServerName::try_from(host()).unwrap(),
        ServerName::try_from("localhost").unwrap(),
        ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into()),
    ] {
        connect(&bundle, &pki.server, name.clone()).unwrap_or_else(|e| panic!("{name:?}: {e}"));
    }
    for name in [
        ServerName::try_from("other.example.com").unwrap(),
        ServerName::IpAddress(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)).into()),
    ] {
        let err = connect(&bundle, &pki.server, name).unwrap_err();
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForName
                        | rustls::CertificateError::NotValidForNameContext { .. }
                )
            ),
            "{err:?}"
        );
    }
    // Java trusts only the second certificate of the bundle: that alone must do.
    let issuing_only = certificate_pem(&pki.ca.issuing_certificate);
    connect(
        &issuing_only,
        &pki.server,
        ServerName::try_from(host()).unwrap(),
    )
    .unwrap();
}

#[test]
fn server_certificate_is_reissued_from_the_stored_issuing_ca() {
    let pki = instance_ca::create(INSTANCE, &ServerNames::default()).unwrap();
    let names = ServerNames {
        dns_names: vec!["kms.internal".to_owned(), host()],
        ip_addresses: vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5))],
    };
    let again = instance_ca::issue_server_certificate(
        INSTANCE,
        &pki.ca.issuing_private_key,
        &pki.ca.issuing_certificate,
        &names,
    )
    .unwrap();
    assert_ne!(again.chain[0], pki.server.chain[0]);
    assert_eq!(again.chain[1], pki.ca.issuing_certificate);
    let scratch = Scratch::new();
    for extra in [
        &["-verify_hostname", "kms.internal"][..],
        &["-verify_hostname", &host()],
        &["-verify_ip", "10.0.0.5"],
    ] {
        openssl_verify(
            &scratch,
            &pki.ca.root_certificate,
            &pki.ca.issuing_certificate,
            &again.chain[0],
            extra,
        )
        .unwrap_or_else(|e| panic!("{extra:?}: {e}"));
    }
    // The defaults were not asked for this time.
    openssl_verify(
        &scratch,
        &pki.ca.root_certificate,
        &pki.ca.issuing_certificate,
        &again.chain[0],
        &["-verify_hostname", "localhost"],
    )
    .unwrap_err();
    // The endpoint host appears once, first.
    let (_, leaf) = X509Certificate::from_der(&again.chain[0]).unwrap();
    let san = leaf.subject_alternative_name().unwrap().unwrap();
    let dns: Vec<String> = san
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(d) => Some((*d).to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(dns, vec![host(), "kms.internal".to_owned()]);

    assert!(matches!(
        instance_ca::issue_server_certificate(
            INSTANCE,
            &pki.ca.root_private_key,
            &pki.ca.issuing_certificate,
            &names
        ),
        Err(CertsError::KeyCertificateMismatch)
    ));
    assert!(matches!(
        instance_ca::issue_server_certificate(
            INSTANCE,
            &pki.server.private_key,
            &pki.server.chain[0],
            &names
        ),
        Err(CertsError::MalformedCertificate { .. })
    ));
}

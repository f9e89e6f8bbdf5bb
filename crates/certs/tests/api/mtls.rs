//! The HSM link: our rustls mTLS server (blocking, `std::net` + `StreamOwned`, in a
//! thread) against `openssl s_client -tls1_2` with a good, a foreign, an unlisted and
//! no client certificate; rustls against rustls on TLS 1.2 only and 1.2 + 1.3; and
//! allow-list changes taking effect for new connections.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{
    CertificateError, ClientConnection, Connection, ProtocolVersion, ServerConfig,
    ServerConnection, StreamOwned,
};
use strongroom_certs::password::Password;
use strongroom_certs::pkcs12;
use strongroom_certs::pki::{
    CertificateAuthority, IssuedCertificate, KeyType, Validity, certificate_pem, private_key_pem,
};
use strongroom_certs::tls::{ClientAllowList, TlsVersions, mtls_client_config, mtls_server_config};
use strongroom_certs::tool::{self, GenerateOptions};
use strongroom_crypto::secret::SecretBytes;

use crate::support::{Scratch, finish, handshake, openssl, path_str, send};

const PASSWORD: &str = "12345678";

/// The tool's output, loaded the way an HSM and a KMS node would.
struct Link {
    scratch: Scratch,
    ca: CertificateDer<'static>,
    ca_key: SecretBytes,
    server: IssuedCertificate,
    client: IssuedCertificate,
}

impl Link {
    fn new(key_type: KeyType) -> Self {
        let scratch = Scratch::new();
        let mut options = GenerateOptions::new(scratch.path("certs"), Password::from(PASSWORD));
        options.key_type = key_type;
        let files = tool::generate(&options).unwrap();
        let password = Password::from(PASSWORD);
        let load = |path: &std::path::Path| {
            let contents = pkcs12::read(&std::fs::read(path).unwrap(), &password).unwrap();
            assert_eq!(
                contents.certificates[1], files.ca_certificate,
                "CA travels last"
            );
            IssuedCertificate {
                private_key: contents.private_key,
                certificate: contents.certificates[0].clone(),
                validity: Validity::days_from_now(1).unwrap(),
            }
        };
        let ca_key = PrivatePkcs8KeyDer::from_pem_file(&files.rootca_key).unwrap();
        Self {
            ca: files.ca_certificate.clone(),
            ca_key: SecretBytes::copy_from(ca_key.secret_pkcs8_der()),
            server: load(&files.server_p12),
            client: load(&files.client_p12),
            scratch,
        }
    }

    /// Another client certificate from the same CA (never imported into the HSM).
    fn unlisted_client(&self, key_type: KeyType) -> IssuedCertificate {
        CertificateAuthority::from_der(&self.ca_key, &self.ca)
            .unwrap()
            .issue_client("unlisted", key_type, Validity::days_from_now(5).unwrap())
            .unwrap()
    }

    fn server_config(
        &self,
        allow_list: &ClientAllowList,
        versions: TlsVersions,
    ) -> Arc<ServerConfig> {
        Arc::new(
            mtls_server_config(
                vec![self.server.certificate.clone(), self.ca.clone()],
                &self.server.private_key,
                std::slice::from_ref(&self.ca),
                allow_list.clone(),
                versions,
            )
            .unwrap(),
        )
    }

    /// Writes a client's certificate and key as PEM files for `s_client`.
    fn pem_files(&self, name: &str, client: &IssuedCertificate) -> (String, String) {
        let cert = self.scratch.write(
            &format!("{name}.pem"),
            certificate_pem(&client.certificate).as_bytes(),
        );
        let key = self.scratch.write(
            &format!("{name}.key"),
            private_key_pem(&client.private_key).expose_secret(),
        );
        (path_str(&cert).to_owned(), path_str(&key).to_owned())
    }
}

/// What the server thread saw.
#[derive(Debug)]
struct Served {
    handshake: Result<(), rustls::Error>,
    received: Vec<u8>,
    version: Option<ProtocolVersion>,
    peer: Option<CertificateDer<'static>>,
}

/// Accepts one connection on a fresh port: handshake, read a line, answer `pong`,
/// close with close_notify.
fn serve_once(config: Arc<ServerConfig>) -> (u16, JoinHandle<Served>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (socket, _) = listener.accept().unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        socket
            .set_write_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut tls = StreamOwned::new(ServerConnection::new(config).unwrap(), socket);
        while tls.conn.is_handshaking() {
            if let Err(e) = tls.conn.complete_io(&mut tls.sock) {
                let error = e
                    .into_inner()
                    .and_then(|inner| inner.downcast::<rustls::Error>().ok())
                    .map_or_else(|| rustls::Error::General("I/O error".into()), |b| *b);
                return Served {
                    handshake: Err(error),
                    received: Vec::new(),
                    version: None,
                    peer: None,
                };
            }
        }
        let mut received = Vec::new();
        let mut byte = [0u8; 1];
        while !received.ends_with(b"\n") && tls.read(&mut byte).unwrap_or(0) == 1 {
            received.push(byte[0]);
        }
        tls.write_all(b"pong\n").unwrap();
        tls.conn.send_close_notify();
        tls.flush().unwrap();
        Served {
            handshake: Ok(()),
            received,
            version: tls.conn.protocol_version(),
            peer: tls
                .conn
                .peer_certificates()
                .and_then(|c| c.first().cloned()),
        }
    });
    (port, handle)
}

/// `openssl s_client -tls1_2` to `port` with an optional client certificate, sending
/// `ping`. Returns (succeeded, stdout).
fn s_client(link: &Link, port: u16, client: Option<(&str, &str)>) -> (bool, String) {
    let ca = link
        .scratch
        .write("ca.pem", certificate_pem(&link.ca).as_bytes());
    let mut command = openssl();
    command
        .args(["s_client", "-tls1_2", "-quiet", "-verify_return_error"])
        .args(["-connect", &format!("127.0.0.1:{port}")])
        .args(["-verify_ip", "127.0.0.1", "-CAfile", path_str(&ca)]);
    if let Some((cert, key)) = client {
        command.args(["-cert", cert, "-key", key]);
    }
    let out = finish(&mut command, b"ping\n");
    (out.success, format!("{}{}", out.stdout, out.stderr))
}

#[test]
fn s_client_with_a_listed_certificate_gets_through() {
    for key_type in [KeyType::Rsa2048, KeyType::EcP256] {
        let link = Link::new(key_type);
        let allow = ClientAllowList::new();
        allow.allow(&link.client.certificate);
        let (port, server) = serve_once(link.server_config(&allow, TlsVersions::Tls12Only));
        let (cert, key) = link.pem_files("client", &link.client);
        let (ok, out) = s_client(&link, port, Some((&cert, &key)));
        let served = server.join().unwrap();
        served.handshake.as_ref().unwrap();
        assert!(ok, "{out}");
        assert!(out.contains("pong"), "{out}");
        assert_eq!(served.received, b"ping\n");
        assert_eq!(served.version, Some(ProtocolVersion::TLSv1_2));
        assert_eq!(served.peer.as_ref(), Some(&link.client.certificate));
    }
}

#[test]
fn s_client_with_a_certificate_from_another_ca_is_refused() {
    let link = Link::new(KeyType::Rsa2048);
    let other = Link::new(KeyType::Rsa2048);
    let allow = ClientAllowList::new();
    allow.allow(&link.client.certificate);
    // Even listed, a certificate that does not chain to the HSM's CA is refused.
    allow.allow(&other.client.certificate);
    let (port, server) = serve_once(link.server_config(&allow, TlsVersions::Tls12Only));
    let (cert, key) = link.pem_files("foreign", &other.client);
    let (ok, out) = s_client(&link, port, Some((&cert, &key)));
    let served = server.join().unwrap();
    assert!(!ok, "{out}");
    assert!(!out.contains("pong"), "{out}");
    let error = served.handshake.unwrap_err();
    assert!(
        matches!(
            error,
            rustls::Error::InvalidCertificate(
                CertificateError::BadSignature | CertificateError::UnknownIssuer
            )
        ),
        "{error:?}"
    );
}

#[test]
fn s_client_with_an_unlisted_certificate_from_the_right_ca_is_refused() {
    let link = Link::new(KeyType::Rsa2048);
    let allow = ClientAllowList::new();
    allow.allow(&link.client.certificate);
    let unlisted = link.unlisted_client(KeyType::Rsa2048);
    let (port, server) = serve_once(link.server_config(&allow, TlsVersions::Tls12Only));
    let (cert, key) = link.pem_files("unlisted", &unlisted);
    let (ok, out) = s_client(&link, port, Some((&cert, &key)));
    let served = server.join().unwrap();
    assert!(!ok, "{out}");
    assert!(!out.contains("pong"), "{out}");
    assert!(out.contains("access denied"), "{out}");
    assert_eq!(
        served.handshake.unwrap_err(),
        rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
    );
}

#[test]
fn s_client_without_a_certificate_is_refused() {
    let link = Link::new(KeyType::Rsa2048);
    let allow = ClientAllowList::new();
    allow.allow(&link.client.certificate);
    let (port, server) = serve_once(link.server_config(&allow, TlsVersions::Tls12Only));
    let (ok, out) = s_client(&link, port, None);
    let served = server.join().unwrap();
    assert!(!ok, "{out}");
    assert!(!out.contains("pong"), "{out}");
    assert_eq!(
        served.handshake.unwrap_err(),
        rustls::Error::NoCertificatesPresented
    );
}

/// A rustls client of the link (what a KMS node uses), in memory.
fn rustls_pair(
    link: &Link,
    server_config: &Arc<ServerConfig>,
    client: &IssuedCertificate,
    client_versions: TlsVersions,
) -> (Connection, Connection) {
    let client_config = mtls_client_config(
        vec![client.certificate.clone()],
        &client.private_key,
        std::slice::from_ref(&link.ca),
        client_versions,
    )
    .unwrap();
    let name = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into());
    (
        Connection::Client(ClientConnection::new(Arc::new(client_config), name).unwrap()),
        Connection::Server(ServerConnection::new(server_config.clone()).unwrap()),
    )
}

#[test]
fn rustls_client_and_server_negotiate_the_configured_versions() {
    let link = Link::new(KeyType::EcP256);
    let allow = ClientAllowList::new();
    allow.allow(&link.client.certificate);
    for (server_versions, client_versions, expected) in [
        (
            TlsVersions::Tls12Only,
            TlsVersions::Tls12Only,
            ProtocolVersion::TLSv1_2,
        ),
        (
            TlsVersions::Tls12Only,
            TlsVersions::Tls12And13,
            ProtocolVersion::TLSv1_2,
        ),
        (
            TlsVersions::Tls12And13,
            TlsVersions::Tls12Only,
            ProtocolVersion::TLSv1_2,
        ),
        (
            TlsVersions::Tls12And13,
            TlsVersions::Tls12And13,
            ProtocolVersion::TLSv1_3,
        ),
    ] {
        let config = link.server_config(&allow, server_versions);
        let (mut client, mut server) = rustls_pair(&link, &config, &link.client, client_versions);
        let outcome = handshake(&mut client, &mut server);
        outcome.client.unwrap();
        outcome.server.unwrap();
        assert_eq!(client.protocol_version(), Some(expected));
        assert_eq!(server.protocol_version(), Some(expected));
        assert_eq!(send(&mut client, &mut server, b"ping"), b"ping");
        assert_eq!(send(&mut server, &mut client, b"pong"), b"pong");
    }
}

#[test]
fn allow_list_changes_apply_to_new_connections_without_a_new_config() {
    let link = Link::new(KeyType::EcP256);
    let allow = ClientAllowList::new();
    let fingerprint = allow.allow(&link.client.certificate);
    for versions in [TlsVersions::Tls12Only, TlsVersions::Tls12And13] {
        let config = link.server_config(&allow, versions);
        let connect = || {
            let (mut client, mut server) = rustls_pair(&link, &config, &link.client, versions);
            handshake(&mut client, &mut server)
        };
        let first = connect();
        assert!(first.client.is_ok() && first.server.is_ok(), "{first:?}");

        assert!(allow.remove_fingerprint(&fingerprint));
        let refused = connect();
        assert_eq!(
            refused.server.unwrap_err(),
            rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
        );
        assert_eq!(
            refused.client.unwrap_err(),
            rustls::Error::AlertReceived(rustls::AlertDescription::AccessDenied)
        );

        allow.allow_fingerprint(fingerprint);
        let again = connect();
        assert!(again.client.is_ok() && again.server.is_ok(), "{again:?}");
    }
}

//! Fixtures: the guide's certificates, nodes started in process, an officer session,
//! and a raw host-port client that speaks frames directly (so tests can also send
//! what a well-behaved client never would).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use strongroom_certs::password::Password;
use strongroom_certs::tls::{TlsVersions, mtls_client_config};
use strongroom_certs::tool::{GenerateOptions, GeneratedFiles, generate};
use strongroom_crypto::passphrase::Argon2Params;
use strongroom_crypto::secret::SecretBytes;
use strongroom_hsm::admin::{self, OfficerClient, Trust};
use strongroom_hsm::node::{Node, NodeOptions};
use strongroom_hsm::officer::OfficerRequest;
use strongroom_proto::hsm::v1::{self as pb, request::Op, response};
use strongroom_proto::hsm::{self as frames, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use zeroize::Zeroizing;

pub const PASSWORD: &str = "officer-password-1";
pub const P12_PASSWORD: &str = "12345678";

/// A scratch directory with the guide's certificate files.
pub struct Scratch {
    pub dir: tempfile::TempDir,
    pub certs: GeneratedFiles,
}

impl Scratch {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let certs = generate(&GenerateOptions::new(
            dir.path().join("certs"),
            Password::new(P12_PASSWORD.to_owned()),
        ))
        .unwrap();
        Self { dir, certs }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

pub fn options(state: &Path, zone: &str) -> NodeOptions {
    NodeOptions {
        state_dir: state.to_owned(),
        host_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        officer_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        zone: zone.to_owned(),
        password: Some(SecretBytes::copy_from(PASSWORD.as_bytes())),
        unseal_key: None,
        kdf: Argon2Params::INSECURE_FOR_TESTS,
    }
}

pub async fn start(state: &Path, zone: &str) -> Node {
    Node::start(options(state, zone)).await.unwrap()
}

/// A logged-in officer session.
pub async fn officer(node: &Node) -> OfficerClient {
    let mut client = connect_officer(node).await;
    client
        .login(&Zeroizing::new(PASSWORD.to_owned()))
        .await
        .unwrap();
    client
}

pub async fn connect_officer(node: &Node) -> OfficerClient {
    let fingerprint =
        strongroom_hsm::identity::parse_fingerprint(&node.identity_fingerprint()).unwrap();
    OfficerClient::connect(
        &node.officer_addr().to_string(),
        &Trust::Fingerprint(fingerprint),
    )
    .await
    .unwrap()
}

/// The guide's step 2 on one node: client certificate, server certificate, restart,
/// properties, restart.
pub async fn configure(node: &Node, scratch: &Scratch) {
    let mut officer = officer(node).await;
    let pem = std::fs::read_to_string(&scratch.certs.client_pem).unwrap();
    officer
        .call(&OfficerRequest::ImportClientCert { pem })
        .await
        .unwrap();
    import_server(&mut officer, scratch).await;
    officer.call(&OfficerRequest::Restart).await.unwrap();
    officer
        .call(&OfficerRequest::SetProperties {
            keep_alive_secs: Some(60),
            header_len: Some(0),
            encoding: Some("ASCII".to_owned()),
            two_way: Some(true),
            protocol: Some("TLSv1.2".to_owned()),
        })
        .await
        .unwrap();
    officer.call(&OfficerRequest::Restart).await.unwrap();
}

pub async fn import_server(officer: &mut OfficerClient, scratch: &Scratch) {
    use base64::Engine as _;
    let der = std::fs::read(&scratch.certs.server_p12).unwrap();
    officer
        .call(&OfficerRequest::ImportServerCert {
            p12: base64::engine::general_purpose::STANDARD.encode(der),
            password: Zeroizing::new(P12_PASSWORD.to_owned()),
        })
        .await
        .unwrap();
}

/// A primary and a member in two zones, configured and synced.
pub async fn cluster(scratch: &Scratch) -> (Node, Node) {
    let primary = start(&scratch.path("primary"), "zone-a").await;
    let member = start(&scratch.path("member"), "zone-b").await;
    configure(&primary, scratch).await;
    let mut p = officer(&primary).await;
    let mut m = officer(&member).await;
    admin::add_member(&mut p, &mut m).await.unwrap();
    let results = p.call(&OfficerRequest::SyncCluster).await.unwrap();
    assert_eq!(results[0]["synced"], true, "{results}");
    (primary, member)
}

/// A host-port client that speaks raw frames.
pub struct RawHost {
    pub stream: TlsStream<TcpStream>,
    next_id: u64,
}

/// A TLS client configuration from the guide's `client.p12` and `rootca.pem`.
pub fn client_tls(scratch: &Scratch, versions: TlsVersions) -> rustls::ClientConfig {
    let p12 = std::fs::read(&scratch.certs.client_p12).unwrap();
    let contents =
        strongroom_certs::pkcs12::read(&p12, &Password::new(P12_PASSWORD.to_owned())).unwrap();
    mtls_client_config(
        vec![contents.certificates[0].clone()],
        &contents.private_key,
        std::slice::from_ref(&scratch.certs.ca_certificate),
        versions,
    )
    .unwrap()
}

impl RawHost {
    pub async fn connect(
        address: SocketAddr,
        config: rustls::ClientConfig,
    ) -> std::io::Result<Self> {
        let stream = TcpStream::connect(address).await?;
        let stream = TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), stream)
            .await?;
        Ok(Self { stream, next_id: 1 })
    }

    pub async fn guide(address: SocketAddr, scratch: &Scratch) -> Self {
        Self::connect(address, client_tls(scratch, TlsVersions::Tls12Only))
            .await
            .unwrap()
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
        self.stream.flush().await.unwrap();
    }

    /// Reads one response frame; `None` when the node closed the connection.
    pub async fn read(&mut self) -> Option<Response> {
        let mut header = [0u8; 4];
        self.stream.read_exact(&mut header).await.ok()?;
        let len = frames::body_len(header, frames::DEFAULT_MAX_FRAME_LEN).unwrap();
        let mut body = vec![0; len];
        self.stream.read_exact(&mut body).await.ok()?;
        Some(frames::decode_body(&body).unwrap())
    }

    pub async fn call(&mut self, op: Op) -> response::Result {
        let id = self.next_id;
        self.next_id += 1;
        let mut out = Vec::new();
        frames::encode_frame(&Request { id, op: Some(op) }, usize::MAX >> 1, &mut out).unwrap();
        self.send_raw(&out).await;
        let response = self.read().await.expect("the node closed the connection");
        assert_eq!(response.id, id);
        response.result.unwrap()
    }

    pub async fn ok(&mut self, op: Op) -> response::Result {
        let result = self.call(op).await;
        if let response::Result::Error(e) = &result {
            panic!("HSM error {:?}: {}", e.code(), e.message);
        }
        result
    }

    pub async fn error(&mut self, op: Op) -> pb::Error {
        match self.call(op).await {
            response::Result::Error(e) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    }
}

pub fn key_ref(id: &str, spec: &str, usage: &str, blob: &[u8]) -> pb::KeyRef {
    pb::KeyRef {
        key_id: id.to_owned(),
        version_id: "v1".to_owned(),
        key_spec: spec.to_owned(),
        key_usage: usage.to_owned(),
        blob: blob.to_vec(),
    }
}

pub async fn generate_key(
    host: &mut RawHost,
    id: &str,
    spec: &str,
    usage: &str,
) -> pb::KeyBlobReply {
    match host
        .ok(Op::GenerateKey(pb::GenerateKey {
            key_id: id.to_owned(),
            version_id: "v1".to_owned(),
            key_spec: spec.to_owned(),
            key_usage: usage.to_owned(),
        }))
        .await
    {
        response::Result::GenerateKey(reply) => reply,
        other => panic!("{other:?}"),
    }
}

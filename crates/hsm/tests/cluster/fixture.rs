//! An in-process HSM cluster: a CA, a server certificate for localhost/127.0.0.1, an
//! allowed client certificate, and host services on 127.0.0.1 sharing one domain key,
//! each with its own shutdown switch and a count of the operations it ran.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustls::{ClientConfig, ServerConfig};
use strongroom_certs::pki::{
    CertificateAuthority, IssuedCertificate, KeyType, ServerNames, Validity,
};
use strongroom_certs::tls::{ClientAllowList, TlsVersions, mtls_client_config, mtls_server_config};
use strongroom_crypto::blob::DomainKey;
use strongroom_hsm::backend::{Backend, Op, Reply};
use strongroom_hsm::client::{ClusterClient, ClusterConfig, NodeAddress};
use strongroom_hsm::error::{HsmError, Result};
use strongroom_hsm::host::{self, EngineSlot, HostOptions};
use strongroom_hsm::software::SoftwareBackend;
use strongroom_proto::hsm::v1 as pb;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The link's certificates.
pub struct Pki {
    ca: CertificateAuthority,
    server: IssuedCertificate,
    client: IssuedCertificate,
    allow: ClientAllowList,
}

impl Pki {
    pub fn new() -> Self {
        let validity = || Validity::days_from_now(2).unwrap();
        let ca = CertificateAuthority::new_root("test HSM CA", KeyType::EcP256, validity(), None)
            .unwrap();
        let server = ca
            .issue_server("hsm", &ServerNames::default(), KeyType::EcP256, validity())
            .unwrap();
        let client = ca.issue_client("kms", KeyType::EcP256, validity()).unwrap();
        let allow = ClientAllowList::new();
        allow.allow(&client.certificate);
        Self {
            ca,
            server,
            client,
            allow,
        }
    }

    pub fn server_config(&self) -> Arc<ServerConfig> {
        Arc::new(
            mtls_server_config(
                vec![
                    self.server.certificate.clone(),
                    self.ca.certificate().clone(),
                ],
                &self.server.private_key,
                std::slice::from_ref(self.ca.certificate()),
                self.allow.clone(),
                TlsVersions::Tls12Only,
            )
            .unwrap(),
        )
    }

    fn config_for(&self, client: &IssuedCertificate) -> Arc<ClientConfig> {
        Arc::new(
            mtls_client_config(
                vec![client.certificate.clone()],
                &client.private_key,
                std::slice::from_ref(self.ca.certificate()),
                TlsVersions::Tls12Only,
            )
            .unwrap(),
        )
    }

    /// The KMS side, with the allowed certificate.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.config_for(&self.client)
    }

    /// A client whose certificate chains to the CA but is not on the allow list.
    pub fn unlisted_client_config(&self) -> Arc<ClientConfig> {
        let unlisted = self
            .ca
            .issue_client(
                "stranger",
                KeyType::EcP256,
                Validity::days_from_now(2).unwrap(),
            )
            .unwrap();
        self.config_for(&unlisted)
    }
}

/// The software engine, counting the operations it runs (health probes excluded).
pub struct Counting {
    inner: SoftwareBackend,
    calls: AtomicU64,
}

impl Backend for Counting {
    fn execute(&self, op: Op) -> Result<Reply> {
        if !matches!(op, Op::Status(_)) {
            self.calls.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.execute(op)
    }

    fn status(&self) -> pb::StatusReply {
        self.inner.status()
    }
}

/// One running host service.
pub struct TestNode {
    pub address: SocketAddr,
    pub counter: Arc<Counting>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl TestNode {
    /// Operations this node ran.
    pub fn calls(&self) -> u64 {
        self.counter.calls.load(Ordering::Relaxed)
    }

    /// Stops the host service: the listener is dropped (reconnects are refused) and
    /// every connection closed.
    pub async fn kill(&mut self) {
        self.shutdown.send_replace(true);
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

/// Several nodes sharing one domain key.
pub struct Cluster {
    pub pki: Pki,
    domain: DomainKey,
    pub nodes: Vec<TestNode>,
}

impl Cluster {
    /// `count` healthy nodes.
    pub async fn start(count: usize) -> Self {
        init_logs();
        let mut cluster = Self {
            pki: Pki::new(),
            domain: DomainKey::generate().unwrap(),
            nodes: Vec::new(),
        };
        for _ in 0..count {
            let node = cluster.start_node(0, None).await;
            cluster.nodes.push(node);
        }
        cluster
    }

    /// A node on `port` (0: any free port) whose engine is ready, or refuses with
    /// `refusal`.
    pub async fn start_node(&self, port: u16, refusal: Option<HsmError>) -> TestNode {
        let domain = DomainKey::from_secret(self.domain.expose_secret().clone()).unwrap();
        let counter = Arc::new(Counting {
            inner: SoftwareBackend::new(domain, pb::StatusReply::default()).unwrap(),
            calls: AtomicU64::new(0),
        });
        let slot = match refusal {
            Some(reason) => EngineSlot::unavailable(reason),
            None => {
                let slot = EngineSlot::unavailable(HsmError::internal("starting"));
                slot.set(Ok(Arc::clone(&counter) as Arc<dyn Backend>));
                slot
            }
        };
        let listener = bind(port).await;
        let address = listener.local_addr().unwrap();
        let (shutdown, stop) = watch::channel(false);
        let task = tokio::spawn(host::serve(
            listener,
            self.pki.server_config(),
            Arc::new(slot),
            HostOptions::default(),
            stop,
        ));
        TestNode {
            address,
            counter,
            shutdown,
            task: Some(task),
        }
    }

    /// Replaces node `index` by a fresh host service on the same port.
    pub async fn restart(&mut self, index: usize) {
        let port = self.nodes[index].address.port();
        self.nodes[index].kill().await;
        self.nodes[index] = self.start_node(port, None).await;
    }

    /// A client configuration for all nodes, probing health every 100 ms.
    pub fn config(&self) -> ClusterConfig {
        config_for(
            self.nodes.iter().map(|n| n.address),
            self.pki.client_config(),
        )
    }

    /// A client of all nodes.
    pub fn client(&self) -> ClusterClient {
        ClusterClient::connect(self.config()).unwrap()
    }
}

/// A client configuration for `addresses`, with test-sized timings.
pub fn config_for(
    addresses: impl IntoIterator<Item = SocketAddr>,
    tls: Arc<ClientConfig>,
) -> ClusterConfig {
    let nodes = addresses
        .into_iter()
        .map(|a| NodeAddress::new(a.to_string()).unwrap())
        .collect();
    let mut config = ClusterConfig::new(nodes, tls);
    config.health_interval = Duration::from_millis(100);
    config.request_timeout = Duration::from_secs(5);
    config.connect_timeout = Duration::from_secs(2);
    config
}

/// Logs to the test's output, filtered by `RUST_LOG` (nothing by default).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Binds 127.0.0.1:`port`, retrying briefly while the old socket lets go of it.
async fn bind(port: u16) -> TcpListener {
    let mut last = None;
    for _ in 0..50 {
        match TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
            Ok(listener) => return listener,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("cannot bind port {port}: {last:?}");
}

/// Waits until `check` holds, up to `limit`.
pub async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

// ---- operations -------------------------------------------------------------------

pub const AES_KEY_ID: &str = "key-aes";
pub const VERSION_ID: &str = "v1";

/// A key the tests hold as a blob.
#[derive(Clone)]
pub struct TestKey {
    pub key_id: String,
    pub spec: &'static str,
    pub usage: &'static str,
    pub blob: Vec<u8>,
    pub public_key: Vec<u8>,
}

impl TestKey {
    pub fn key_ref(&self) -> pb::KeyRef {
        pb::KeyRef {
            key_id: self.key_id.clone(),
            version_id: VERSION_ID.to_owned(),
            key_spec: self.spec.to_owned(),
            key_usage: self.usage.to_owned(),
            blob: self.blob.clone(),
        }
    }
}

pub async fn generate_key(
    hsm: &impl strongroom_hsm::Hsm,
    key_id: &str,
    spec: &'static str,
    usage: &'static str,
) -> TestKey {
    let reply = hsm
        .call(Op::GenerateKey(pb::GenerateKey {
            key_id: key_id.to_owned(),
            version_id: VERSION_ID.to_owned(),
            key_spec: spec.to_owned(),
            key_usage: usage.to_owned(),
        }))
        .await
        .unwrap();
    let Reply::GenerateKey(reply) = reply else {
        panic!("unexpected reply {reply:?}");
    };
    TestKey {
        key_id: key_id.to_owned(),
        spec,
        usage,
        blob: reply.blob,
        public_key: reply.public_key,
    }
}

pub async fn encrypt(
    hsm: &impl strongroom_hsm::Hsm,
    key: &TestKey,
    plaintext: &[u8],
) -> Result<pb::EncryptReply> {
    match hsm
        .call(Op::Encrypt(pb::Encrypt {
            key: Some(key.key_ref()),
            plaintext: plaintext.to_vec(),
            ..Default::default()
        }))
        .await?
    {
        Reply::Encrypt(reply) => Ok(reply),
        other => panic!("unexpected reply {other:?}"),
    }
}

pub async fn decrypt(
    hsm: &impl strongroom_hsm::Hsm,
    key: &TestKey,
    sealed: &pb::EncryptReply,
) -> Result<Vec<u8>> {
    match hsm
        .call(Op::Decrypt(pb::Decrypt {
            key: Some(key.key_ref()),
            ciphertext: sealed.ciphertext.clone(),
            iv: sealed.iv.clone(),
            ..Default::default()
        }))
        .await?
    {
        Reply::Decrypt(reply) => Ok(reply.plaintext),
        other => panic!("unexpected reply {other:?}"),
    }
}

/// Encrypt then decrypt `plaintext`, checking the round trip.
pub async fn round_trip(
    hsm: &impl strongroom_hsm::Hsm,
    key: &TestKey,
    plaintext: &[u8],
) -> Result<()> {
    let sealed = encrypt(hsm, key, plaintext).await?;
    let opened = decrypt(hsm, key, &sealed).await?;
    assert_eq!(opened, plaintext);
    Ok(())
}

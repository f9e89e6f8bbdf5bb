//! One HSM node (`strongroom hsm serve`): the sealed state, the host port, the officer
//! port, and the node's part in cluster sync.
//!
//! Life of a node:
//! 1. First start: [`NodeStore::init`] with the officer's password (and optionally an
//!    unseal-key slot). The node is a primary with a fresh domain key.
//! 2. Later starts: unsealed by a credential given at start, or by the officer's login;
//!    until then it is sealed, its host port closes every connection, and the officer
//!    port answers only `hello` and `login`.
//! 3. The officer imports client certificates and the server certificate, sets the port
//!    properties and restarts the host port; changes are staged in the sealed state and
//!    take effect at `restart`, as on the guide's device.
//! 4. Cluster: `enroll` makes a node a member of a primary (it drops its own domain key
//!    and refuses crypto with `NOT_SYNCED`); `add-member` and `sync-cluster` on the
//!    primary push the domain key, certificates and properties to every member over the
//!    node-to-node channel, encrypted to each member's enrolment key.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use rustls::pki_types::{CertificateDer, ServerName};
use serde::{Deserialize, Serialize};
use strongroom_certs::password::Password;
use strongroom_certs::pki;
use strongroom_certs::tls::{ClientAllowList, mtls_server_config};
use strongroom_crypto::blob::DomainKey;
use strongroom_crypto::key::{DecryptParams, Key};
use strongroom_crypto::material::KeyMaterial;
use strongroom_crypto::passphrase::Argon2Params;
use strongroom_crypto::public::PublicKey;
use strongroom_crypto::random;
use strongroom_crypto::seal::SealingKey;
use strongroom_crypto::secret::SecretBytes;
use strongroom_crypto::spec::{Algorithm, KeySpec, KeyUsage};
use strongroom_proto::hsm::v1::{StatusReply, error::Code};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use zeroize::Zeroizing;

use crate::error::HsmError;
use crate::host::{self, EngineSlot, HostOptions, HostRun};
use crate::identity::{self, Identity};
use crate::officer::{
    self, CertificateInfo, Hello, HostStatus, IdentityInfo, MemberStatus, NodeStatus,
    OfficerRequest, OfficerResponse,
};
use crate::software::SoftwareBackend;
use crate::state::{
    Credential, InitOptions, NodeStore, Peer, PortProperties, Role, SecretState, ServerIdentity,
    StateError,
};

const SYNC_AAD: &[u8] = b"strongroom-hsm-sync/1";
/// How long a node-to-node sync may take per member.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);
/// Failed logins on one connection before it is closed.
const MAX_LOGIN_FAILURES: u32 = 5;

/// How to start a node.
#[derive(Debug)]
pub struct NodeOptions {
    /// The state directory.
    pub state_dir: PathBuf,
    /// The host port's address.
    pub host_listen: SocketAddr,
    /// The officer port's address.
    pub officer_listen: SocketAddr,
    /// The zone label, recorded at first start.
    pub zone: String,
    /// The officer's password: required at first start, optional later (it unseals).
    pub password: Option<SecretBytes>,
    /// An unseal key: at first start it becomes a second key slot; later it unseals.
    pub unseal_key: Option<SecretBytes>,
    /// argon2id cost for a first start.
    pub kdf: Argon2Params,
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The state directory.
    #[error(transparent)]
    State(#[from] StateError),
    /// A first start without a password.
    #[error(
        "{0} holds no HSM node yet; the first start needs the security officer's password (--officer-password-file, STRONGROOM_HSM_OFFICER_PASSWORD, or the prompt)"
    )]
    PasswordRequired(PathBuf),
    /// A port could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// TLS configuration failed.
    #[error("TLS: {0}")]
    Tls(String),
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    inner: Arc<Inner>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

struct Inner {
    store: Mutex<NodeStore>,
    secret: Mutex<Option<SecretState>>,
    engine: Arc<EngineSlot>,
    identity: Identity,
    host_control: watch::Sender<HostRun>,
    host_addr: SocketAddr,
    officer_addr: SocketAddr,
    host_reason: Mutex<Option<String>>,
    restart_pending: AtomicBool,
    failed_logins: AtomicU32,
    /// Serialises state changes (read, modify, save, apply).
    change: tokio::sync::Mutex<()>,
}

impl core::fmt::Debug for Inner {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Inner")
            .field("identity", &self.identity)
            .field("host_addr", &self.host_addr)
            .finish_non_exhaustive()
    }
}

/// When a state change reaches the host port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Apply {
    /// At once (start, unseal, enrolment, sync received).
    Now,
    /// At the officer's next `restart`, as on the guide's device.
    AtRestart,
    /// Never: the change does not concern the host port.
    StateOnly,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Node {
    /// Starts a node: opens (or initialises) its state, unseals it when given a
    /// credential, and listens on both ports.
    ///
    /// # Errors
    /// [`NodeError`]: a first start without password, a wrong credential, a locked or
    /// corrupt state directory, a port in use.
    pub async fn start(options: NodeOptions) -> Result<Self, NodeError> {
        let (host_listen, officer_listen) = (options.host_listen, options.officer_listen);
        let (store, secret) = tokio::task::spawn_blocking(move || open_store(&options))
            .await
            .map_err(|e| NodeError::Tls(format!("start task failed: {e}")))??;
        let identity = Identity::load_or_create(store.dir(), store.node_id())?;
        let host_listener = bind(host_listen).await?;
        let officer_listener = bind(officer_listen).await?;
        let host_addr = host_listener
            .local_addr()
            .map_err(|source| NodeError::Bind {
                address: host_listen,
                source,
            })?;
        let officer_addr = officer_listener
            .local_addr()
            .map_err(|source| NodeError::Bind {
                address: officer_listen,
                source,
            })?;
        let officer_tls = identity
            .officer_server_config()
            .map_err(|e| NodeError::Tls(e.to_string()))?;
        let (host_control, host_run) = watch::channel(HostRun {
            tls: None,
            options: HostOptions::default(),
            generation: 0,
        });
        let engine = Arc::new(EngineSlot::unavailable(sealed_error()));
        let inner = Arc::new(Inner {
            store: Mutex::new(store),
            secret: Mutex::new(None),
            engine: Arc::clone(&engine),
            identity,
            host_control,
            host_addr,
            officer_addr,
            host_reason: Mutex::new(Some("the node is sealed".to_owned())),
            restart_pending: AtomicBool::new(false),
            failed_logins: AtomicU32::new(0),
            change: tokio::sync::Mutex::new(()),
        });
        if let Some(secret) = secret {
            inner.install(secret, Apply::Now);
        }
        let (shutdown, shutdown_rx) = watch::channel(false);
        let host_task = tokio::spawn(host::serve_controlled(
            host_listener,
            host_run,
            engine,
            shutdown_rx.clone(),
        ));
        let officer_task = tokio::spawn(officer_loop(
            Arc::clone(&inner),
            officer_listener,
            Arc::new(officer_tls),
            shutdown_rx,
        ));
        Ok(Self {
            inner,
            shutdown,
            tasks: vec![host_task, officer_task],
        })
    }

    /// Where the host port listens.
    pub fn host_addr(&self) -> SocketAddr {
        self.inner.host_addr
    }

    /// Where the officer port listens.
    pub fn officer_addr(&self) -> SocketAddr {
        self.inner.officer_addr
    }

    /// The node id.
    pub fn node_id(&self) -> String {
        lock(&self.inner.store).node_id().to_owned()
    }

    /// The identity fingerprint (what the officer pins).
    pub fn identity_fingerprint(&self) -> String {
        self.inner.identity.fingerprint()
    }

    /// The node's status.
    pub fn status(&self) -> NodeStatus {
        self.inner.status()
    }

    /// Stops both ports and closes every connection.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

async fn bind(address: SocketAddr) -> Result<TcpListener, NodeError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| NodeError::Bind { address, source })
}

fn open_store(options: &NodeOptions) -> Result<(NodeStore, Option<SecretState>), NodeError> {
    let dir = &options.state_dir;
    if !NodeStore::is_initialised(dir) {
        let password = options
            .password
            .as_ref()
            .ok_or_else(|| NodeError::PasswordRequired(dir.clone()))?;
        let (store, secret) = NodeStore::init(
            dir,
            &InitOptions {
                zone: &options.zone,
                password,
                unseal_key: options.unseal_key.as_ref(),
                kdf: options.kdf,
            },
        )?;
        tracing::info!(
            node_id = store.node_id(),
            "initialised a new HSM node (primary, fresh domain key)"
        );
        return Ok((store, Some(secret)));
    }
    let mut store = NodeStore::open(dir)?;
    let credential = match (&options.unseal_key, &options.password) {
        (Some(key), _) => Some(Credential::UnsealKey(key.clone())),
        (None, Some(password)) => Some(Credential::Password(password.clone())),
        (None, None) => None,
    };
    let secret = match credential {
        Some(credential) => Some(store.unseal(&credential)?),
        None => {
            tracing::warn!(
                node_id = store.node_id(),
                "started SEALED: no credential given; log in with `strongroom hsm admin` to unseal. No crypto is served until then."
            );
            None
        }
    };
    Ok((store, secret))
}

fn sealed_error() -> HsmError {
    HsmError::new(
        Code::Sealed,
        "the HSM node is sealed: the security officer must unseal it",
    )
}

fn not_synced_error() -> HsmError {
    HsmError::new(
        Code::NotSynced,
        "this HSM node is a cluster member that has not been synced: run sync-cluster on the primary",
    )
}

impl Inner {
    /// Makes `secret` the node's state: the engine now, and the host port as `apply`
    /// says.
    fn install(&self, secret: SecretState, apply: Apply) {
        let (node_id, zone) = {
            let store = lock(&self.store);
            (store.node_id().to_owned(), store.zone().to_owned())
        };
        let engine = match &secret.domain_key {
            Some(hex_key) => build_engine(hex_key, &secret, &node_id, &zone),
            None => Err(not_synced_error()),
        };
        self.engine.set(engine);
        *lock(&self.secret) = Some(secret);
        match apply {
            Apply::Now => self.restart_host(),
            Apply::AtRestart => self.restart_pending.store(true, Ordering::SeqCst),
            Apply::StateOnly => {}
        }
    }

    /// Applies the staged certificates and properties to the host port.
    fn restart_host(&self) {
        let planned = lock(&self.secret).as_ref().map(host_config);
        let (tls, options, reason) = match planned {
            None => (
                None,
                HostOptions::default(),
                Some("the node is sealed".to_owned()),
            ),
            Some(Ok((tls, options))) => (Some(Arc::new(tls)), options, None),
            Some(Err((reason, options))) => (None, options, Some(reason)),
        };
        if let Some(reason) = &reason {
            tracing::warn!("host port not serving: {reason}");
        } else {
            tracing::info!(address = %self.host_addr, "host port serving");
        }
        *lock(&self.host_reason) = reason;
        self.host_control.send_modify(|run| {
            run.tls = tls;
            run.options = options;
            run.generation = run.generation.wrapping_add(1);
        });
        self.restart_pending.store(false, Ordering::SeqCst);
    }

    fn status(&self) -> NodeStatus {
        let (node_id, zone) = {
            let store = lock(&self.store);
            (store.node_id().to_owned(), store.zone().to_owned())
        };
        let secret = lock(&self.secret);
        let engine = self.engine.get();
        let fingerprint = engine
            .as_ref()
            .ok()
            .map(|e| e.status().domain_key_fingerprint);
        let host = HostStatus {
            address: self.host_addr.to_string(),
            serving: self.host_control.borrow().tls.is_some(),
            reason: lock(&self.host_reason).clone(),
            restart_pending: self.restart_pending.load(Ordering::SeqCst),
            properties: secret.as_ref().map(|s| s.properties.clone()),
        };
        let Some(secret) = secret.as_ref() else {
            return NodeStatus {
                node_id,
                zone,
                sealed: true,
                role: None,
                synced: false,
                domain_key_fingerprint: None,
                identity_fingerprint: self.identity.fingerprint(),
                host,
                members: Vec::new(),
                primary: None,
                client_certificates: Vec::new(),
                server_certificate: None,
            };
        };
        let members = secret
            .members
            .iter()
            .map(|m| MemberStatus {
                address: m.address.clone(),
                node_id: m.node_id.clone(),
                zone: m.zone.clone(),
                synced: fingerprint.as_deref() == Some(m.synced_fingerprint.as_str()),
            })
            .collect();
        NodeStatus {
            node_id,
            zone,
            sealed: false,
            role: Some(secret.role.as_str().to_owned()),
            synced: secret.domain_key.is_some(),
            domain_key_fingerprint: fingerprint.clone(),
            identity_fingerprint: self.identity.fingerprint(),
            host,
            members,
            primary: secret.primary.as_ref().map(|p| MemberStatus {
                address: p.address.clone(),
                node_id: p.node_id.clone(),
                zone: p.zone.clone(),
                synced: secret.domain_key.is_some(),
            }),
            client_certificates: client_certificates(secret)
                .iter()
                .map(|c| officer::describe(c))
                .collect(),
            server_certificate: server_chain(secret)
                .ok()
                .and_then(|chain| chain.first().map(|c| officer::describe(c))),
        }
    }

    /// Reads, changes and saves the secret state, then installs it.
    async fn change<T>(
        &self,
        apply: Apply,
        edit: impl FnOnce(&mut SecretState) -> Result<T, String>,
    ) -> Result<T, String> {
        let _serial = self.change.lock().await;
        let mut next = lock(&self.secret)
            .clone()
            .ok_or_else(|| "the node is sealed".to_owned())?;
        let out = edit(&mut next)?;
        lock(&self.store)
            .save(&next)
            .map_err(|e| format!("saving the node state: {e}"))?;
        self.install(next, apply);
        Ok(out)
    }
}

fn build_engine(
    hex_key: &str,
    secret: &SecretState,
    node_id: &str,
    zone: &str,
) -> Result<Arc<dyn crate::backend::Backend>, HsmError> {
    let bytes = Zeroizing::new(
        hex::decode(hex_key).map_err(|_| HsmError::internal("stored domain key is not hex"))?,
    );
    let domain = DomainKey::from_secret(SecretBytes::copy_from(&bytes))?;
    let backend = SoftwareBackend::new(
        domain,
        StatusReply {
            sealed: false,
            synced: true,
            role: secret.role.as_str().to_owned(),
            node_id: node_id.to_owned(),
            zone: zone.to_owned(),
            domain_key_fingerprint: String::new(),
        },
    )?;
    Ok(Arc::new(backend))
}

fn client_certificates(secret: &SecretState) -> Vec<CertificateDer<'static>> {
    secret
        .client_certificates
        .iter()
        .filter_map(|pem| pki::certificates_from_pem(pem.as_bytes()).ok())
        .flatten()
        .collect()
}

fn server_chain(secret: &SecretState) -> Result<Vec<CertificateDer<'static>>, String> {
    let server = secret
        .server
        .as_ref()
        .ok_or_else(|| "no server certificate imported".to_owned())?;
    server
        .chain
        .iter()
        .map(|h| {
            hex::decode(h)
                .map(CertificateDer::from)
                .map_err(|_| "stored certificate is not hex".to_owned())
        })
        .collect()
}

type HostPlan = Result<(rustls::ServerConfig, HostOptions), (String, HostOptions)>;

/// The host port's TLS configuration from the state, or why there is none.
fn host_config(secret: &SecretState) -> HostPlan {
    let options = HostOptions {
        keep_alive: (secret.properties.keep_alive_secs > 0)
            .then(|| Duration::from_secs(u64::from(secret.properties.keep_alive_secs))),
        ..HostOptions::default()
    };
    let fail = |reason: String| Err((reason, options.clone()));
    let chain = match server_chain(secret) {
        Ok(chain) => chain,
        Err(reason) => return fail(reason),
    };
    let Some(server) = &secret.server else {
        return fail("no server certificate imported".to_owned());
    };
    let clients = client_certificates(secret);
    if clients.is_empty() {
        return fail("no client certificate imported".to_owned());
    }
    let cas: Vec<CertificateDer<'static>> = chain.iter().skip(1).cloned().collect();
    let allow = ClientAllowList::new();
    for client in &clients {
        allow.allow(client);
    }
    let versions = match secret.properties.tls_versions() {
        Ok(v) => v,
        Err(reason) => return fail(reason),
    };
    let key = match hex::decode(&server.private_key) {
        Ok(k) => SecretBytes::new(k),
        Err(_) => return fail("stored server key is not hex".to_owned()),
    };
    match mtls_server_config(chain, &key, &cas, allow, versions) {
        Ok(tls) => Ok((tls, options)),
        Err(e) => fail(format!("server certificate unusable: {e}")),
    }
}

// --- the officer port ---------------------------------------------------------------

async fn officer_loop(
    inner: Arc<Inner>,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let Ok((stream, peer)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let inner = Arc::clone(&inner);
        let acceptor = acceptor.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                result = officer_connection(inner, acceptor, stream) => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "officer connection ended");
                    }
                }
                _ = shutdown.wait_for(|stop| *stop) => {}
            }
        });
    }
}

async fn officer_connection(
    inner: Arc<Inner>,
    acceptor: TlsAcceptor,
    stream: TcpStream,
) -> Result<(), officer::ChannelError> {
    let mut tls = match tokio::time::timeout(host::HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
    {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => return Ok(()),
    };
    let peer_fingerprint = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .map(pki::fingerprint);
    let mut logged_in = false;
    let mut failures = 0u32;
    while let Some(request) = officer::read_frame::<_, OfficerRequest>(&mut tls).await? {
        let name = request.name();
        let response = match request {
            OfficerRequest::Hello => OfficerResponse::ok(inner.hello()),
            OfficerRequest::Login { password } => {
                let result = inner.login(password).await;
                if result.ok {
                    logged_in = true;
                    inner.failed_logins.store(0, Ordering::SeqCst);
                } else {
                    failures = failures.saturating_add(1);
                    let global = inner.failed_logins.fetch_add(1, Ordering::SeqCst);
                    // Slow down guessing: one second per recent failure, at most ten.
                    let delay = u64::from(global.saturating_add(1).min(10));
                    tokio::time::sleep(Duration::from_secs(delay)).await;
                }
                result
            }
            OfficerRequest::SyncPush {
                node_id,
                wrapped_key,
                payload,
            } => inner
                .sync_push(peer_fingerprint, &node_id, &wrapped_key, &payload)
                .await
                .map_or_else(OfficerResponse::error, OfficerResponse::ok),
            _ if !logged_in => OfficerResponse::error("log in first"),
            request => inner.officer(request).await,
        };
        if response.ok {
            tracing::info!(op = name, "officer request done");
        } else {
            tracing::info!(
                op = name,
                error = response.error.as_deref().unwrap_or(""),
                "officer request refused"
            );
        }
        officer::write_frame(&mut tls, &response).await?;
        if failures >= MAX_LOGIN_FAILURES {
            return Ok(());
        }
    }
    Ok(())
}

/// What a primary sends a member at sync.
#[derive(Serialize, Deserialize)]
struct SyncPayload {
    primary_node_id: String,
    domain_key: Zeroizing<String>,
    client_certificates: Vec<String>,
    server: Option<ServerIdentity>,
    properties: PortProperties,
}

/// What a member answers to a sync.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SyncAck {
    node_id: String,
    domain_key_fingerprint: String,
}

/// One member's result of `sync-cluster`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncResult {
    /// The member's node id.
    pub node_id: String,
    /// Its address.
    pub address: String,
    /// Whether it now holds the primary's domain key.
    pub synced: bool,
    /// What went wrong, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Inner {
    fn hello(&self) -> Hello {
        let store = lock(&self.store);
        Hello {
            node_id: store.node_id().to_owned(),
            zone: store.zone().to_owned(),
            sealed: lock(&self.secret).is_none(),
            identity_fingerprint: self.identity.fingerprint(),
        }
    }

    async fn login(self: &Arc<Self>, password: Zeroizing<String>) -> OfficerResponse {
        let _serial = self.change.lock().await;
        let this = Arc::clone(self);
        let credential = Credential::Password(SecretBytes::copy_from(password.as_bytes()));
        drop(password);
        let opened =
            tokio::task::spawn_blocking(move || lock(&this.store).unseal(&credential)).await;
        match opened {
            Ok(Ok(secret)) => {
                if lock(&self.secret).is_none() {
                    tracing::info!("unsealed by the security officer");
                    self.install(secret, Apply::Now);
                }
                OfficerResponse::ok(self.hello())
            }
            Ok(Err(StateError::WrongCredential | StateError::NoSuchSlot(_))) => {
                OfficerResponse::error("login failed: wrong password")
            }
            Ok(Err(e)) => OfficerResponse::error(format!("login failed: {e}")),
            Err(e) => OfficerResponse::error(format!("login failed: {e}")),
        }
    }

    async fn officer(self: &Arc<Self>, request: OfficerRequest) -> OfficerResponse {
        let result: Result<serde_json::Value, String> = match request {
            OfficerRequest::Status => to_value(self.status()),
            OfficerRequest::Identity => self.identity_info().and_then(to_value),
            OfficerRequest::ImportClientCert { pem } => self
                .change(Apply::AtRestart, |s| import_client_certificates(s, &pem))
                .await
                .and_then(to_value),
            OfficerRequest::ListClientCerts => {
                let list: Vec<CertificateInfo> = lock(&self.secret)
                    .as_ref()
                    .map(|s| client_certificates(s).iter().map(|c| officer::describe(c)).collect())
                    .unwrap_or_default();
                to_value(list)
            }
            OfficerRequest::RemoveClientCert { fingerprint } => self
                .change(Apply::AtRestart, |s| remove_client_certificate(s, &fingerprint))
                .await
                .and_then(to_value),
            OfficerRequest::ImportServerCert { p12, password } => self
                .change(Apply::AtRestart, |s| import_server_certificate(s, &p12, password))
                .await
                .and_then(to_value),
            OfficerRequest::SetProperties {
                keep_alive_secs,
                header_len,
                encoding,
                two_way,
                protocol,
            } => self
                .change(Apply::AtRestart, |s| {
                    let mut next = s.properties.clone();
                    if let Some(v) = keep_alive_secs {
                        next.keep_alive_secs = v;
                    }
                    if let Some(v) = header_len {
                        next.header_len = v;
                    }
                    if let Some(v) = encoding {
                        next.encoding = v;
                    }
                    if let Some(v) = two_way {
                        next.two_way = v;
                    }
                    if let Some(v) = protocol {
                        next.protocol = v;
                    }
                    next.validate()?;
                    s.properties = next.clone();
                    Ok(next)
                })
                .await
                .and_then(to_value),
            OfficerRequest::Restart => {
                let _serial = self.change.lock().await;
                self.restart_host();
                to_value(self.status().host)
            }
            OfficerRequest::Enroll { primary } => self
                .change(Apply::Now, |s| {
                    if !s.members.is_empty() {
                        return Err("this node is the primary of a cluster with members; it cannot join another".to_owned());
                    }
                    if primary.identity_fingerprint == self.identity.fingerprint() {
                        return Err("a node cannot be its own primary".to_owned());
                    }
                    s.role = Role::Member;
                    s.domain_key = None;
                    s.primary = Some(primary);
                    Ok(())
                })
                .await
                .and_then(to_value),
            OfficerRequest::AddMember { member } => self
                .change(Apply::StateOnly, |s| {
                    if s.role != Role::Primary {
                        return Err("only the primary adds members".to_owned());
                    }
                    if member.identity_fingerprint == self.identity.fingerprint() {
                        return Err("a node cannot be its own member".to_owned());
                    }
                    s.members.retain(|m| m.node_id != member.node_id);
                    s.members.push(member);
                    Ok(())
                })
                .await
                .and_then(to_value),
            OfficerRequest::RemoveMember { node_id } => self
                .change(Apply::StateOnly, |s| {
                    let before = s.members.len();
                    s.members.retain(|m| m.node_id != node_id);
                    if s.members.len() == before {
                        return Err(format!("no member {node_id}"));
                    }
                    Ok(())
                })
                .await
                .and_then(to_value),
            OfficerRequest::SyncCluster => self.sync_cluster().await.and_then(to_value),
            OfficerRequest::Hello | OfficerRequest::Login { .. } | OfficerRequest::SyncPush { .. } => {
                Err("not handled here".to_owned())
            }
        };
        result.map_or_else(OfficerResponse::error, |value| OfficerResponse {
            ok: true,
            error: None,
            result: value,
        })
    }

    fn identity_info(&self) -> Result<IdentityInfo, String> {
        let secret = lock(&self.secret);
        let secret = secret.as_ref().ok_or("the node is sealed")?;
        let der = Zeroizing::new(
            hex::decode(&secret.enrollment_key).map_err(|_| "stored enrolment key is not hex")?,
        );
        let public = KeyMaterial::import(KeySpec::Rsa2048, &der)
            .and_then(|m| m.public_key())
            .map_err(|e| format!("enrolment key: {e}"))?;
        let store = lock(&self.store);
        Ok(IdentityInfo {
            node_id: store.node_id().to_owned(),
            zone: store.zone().to_owned(),
            identity_fingerprint: self.identity.fingerprint(),
            enrollment_public_key: hex::encode(public.to_der()),
        })
    }

    async fn sync_cluster(self: &Arc<Self>) -> Result<Vec<SyncResult>, String> {
        let (members, payload) = {
            let secret = lock(&self.secret);
            let secret = secret.as_ref().ok_or("the node is sealed")?;
            if secret.role != Role::Primary {
                return Err("only the primary syncs the cluster".to_owned());
            }
            let domain_key = secret
                .domain_key
                .clone()
                .ok_or("the primary holds no domain key")?;
            (
                secret.members.clone(),
                SyncPayload {
                    primary_node_id: lock(&self.store).node_id().to_owned(),
                    domain_key: Zeroizing::new(domain_key),
                    client_certificates: secret.client_certificates.clone(),
                    server: secret.server.clone(),
                    properties: secret.properties.clone(),
                },
            )
        };
        let mut results = Vec::with_capacity(members.len());
        for member in &members {
            let outcome = tokio::time::timeout(SYNC_TIMEOUT, self.push_to(member, &payload))
                .await
                .unwrap_or_else(|_| Err("timed out".to_owned()));
            results.push(match outcome {
                Ok(ack) => SyncResult {
                    node_id: ack.node_id,
                    address: member.address.clone(),
                    synced: true,
                    error: None,
                },
                Err(e) => SyncResult {
                    node_id: member.node_id.clone(),
                    address: member.address.clone(),
                    synced: false,
                    error: Some(e),
                },
            });
        }
        let fingerprint = self
            .engine
            .get()
            .map(|e| e.status().domain_key_fingerprint)
            .unwrap_or_default();
        let synced: Vec<String> = results
            .iter()
            .filter(|r| r.synced)
            .map(|r| r.node_id.clone())
            .collect();
        self.change(Apply::StateOnly, |s| {
            for m in &mut s.members {
                if synced.contains(&m.node_id) {
                    m.synced_fingerprint.clone_from(&fingerprint);
                }
            }
            Ok(())
        })
        .await?;
        Ok(results)
    }

    async fn push_to(&self, member: &Peer, payload: &SyncPayload) -> Result<SyncAck, String> {
        let pinned = identity::parse_fingerprint(&member.identity_fingerprint)
            .ok_or("member fingerprint is malformed")?;
        let public_der = hex::decode(&member.enrollment_public_key)
            .map_err(|_| "member enrolment key is malformed")?;
        let public = PublicKey::from_der(KeySpec::Rsa2048, &public_der)
            .map_err(|e| format!("member enrolment key: {e}"))?;
        let payload_key = random::secret_bytes(32).map_err(|e| e.to_string())?;
        let wrapped = public
            .encrypt(Algorithm::RsaesOaepSha256, payload_key.expose_secret())
            .map_err(|e| e.to_string())?;
        let json = Zeroizing::new(serde_json::to_vec(payload).map_err(|e| e.to_string())?);
        let sealed = SealingKey::from_bytes(&payload_key)
            .and_then(|k| k.seal(&json, &sync_aad(&member.node_id)))
            .map_err(|e| e.to_string())?;
        let config = self
            .identity
            .peer_client_config(pinned)
            .map_err(|e| e.to_string())?;
        let stream = TcpStream::connect(&member.address)
            .await
            .map_err(|e| format!("connecting to {}: {e}", member.address))?;
        let host = member
            .address
            .rsplit_once(':')
            .map_or(member.address.as_str(), |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let name = ServerName::try_from(host).map_err(|e| e.to_string())?;
        let mut tls = TlsConnector::from(Arc::new(config))
            .connect(name, stream)
            .await
            .map_err(|e| format!("TLS to {} (pinned identity): {e}", member.address))?;
        officer::write_frame(
            &mut tls,
            &OfficerRequest::SyncPush {
                node_id: member.node_id.clone(),
                wrapped_key: hex::encode(wrapped),
                payload: hex::encode(sealed),
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        let response: OfficerResponse = officer::read_frame(&mut tls)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the member closed the connection")?;
        if !response.ok {
            return Err(response.error.unwrap_or_else(|| "refused".to_owned()));
        }
        serde_json::from_value(response.result).map_err(|e| e.to_string())
    }

    async fn sync_push(
        &self,
        peer: Option<[u8; 32]>,
        node_id: &str,
        wrapped_key: &str,
        payload: &str,
    ) -> Result<SyncAck, String> {
        let _serial = self.change.lock().await;
        let mut next = lock(&self.secret)
            .clone()
            .ok_or("this member is sealed: unseal it, then sync again")?;
        let primary = next
            .primary
            .as_ref()
            .ok_or("this node is not enrolled as a cluster member")?;
        let expected = identity::parse_fingerprint(&primary.identity_fingerprint)
            .ok_or("stored primary fingerprint is malformed")?;
        if peer != Some(expected) {
            return Err("sync refused: the sender is not this node's enrolled primary".to_owned());
        }
        let own_id = lock(&self.store).node_id().to_owned();
        if node_id != own_id {
            return Err(format!("sync addressed to {node_id}, this is {own_id}"));
        }
        let enrollment = Zeroizing::new(
            hex::decode(&next.enrollment_key).map_err(|_| "enrolment key is not hex")?,
        );
        let key = KeyMaterial::import(KeySpec::Rsa2048, &enrollment)
            .and_then(|m| Key::new(m, KeyUsage::EncryptDecrypt))
            .map_err(|e| e.to_string())?;
        let wrapped = hex::decode(wrapped_key).map_err(|_| "wrapped key is not hex")?;
        let payload_key = key
            .decrypt(
                &wrapped,
                &DecryptParams {
                    algorithm: Some(Algorithm::RsaesOaepSha256),
                    ..DecryptParams::default()
                },
            )
            .map_err(|_| "sync payload is not for this node's enrolment key")?;
        let sealed = hex::decode(payload).map_err(|_| "payload is not hex")?;
        let json = SealingKey::from_bytes(&payload_key)
            .and_then(|k| k.open(&sealed, &sync_aad(&own_id)))
            .map_err(|_| "sync payload failed its integrity check")?;
        let incoming: SyncPayload =
            serde_json::from_slice(json.expose_secret()).map_err(|e| e.to_string())?;
        if incoming.primary_node_id != primary.node_id {
            return Err("sync payload names another primary".to_owned());
        }
        let fingerprint = DomainKey::from_secret(SecretBytes::new(
            hex::decode(incoming.domain_key.as_str()).map_err(|_| "domain key is not hex")?,
        ))
        .and_then(|d| d.fingerprint())
        .map_err(|e| e.to_string())?;
        next.domain_key = Some(incoming.domain_key.to_string());
        next.client_certificates
            .clone_from(&incoming.client_certificates);
        next.server.clone_from(&incoming.server);
        next.properties.clone_from(&incoming.properties);
        lock(&self.store)
            .save(&next)
            .map_err(|e| format!("saving the node state: {e}"))?;
        self.install(next, Apply::Now);
        tracing::info!(%fingerprint, "synced from the primary");
        Ok(SyncAck {
            node_id: own_id,
            domain_key_fingerprint: fingerprint,
        })
    }
}

fn sync_aad(node_id: &str) -> Vec<u8> {
    [SYNC_AAD, b"\0", node_id.as_bytes()].concat()
}

fn to_value<T: Serialize>(value: T) -> Result<serde_json::Value, String> {
    serde_json::to_value(value).map_err(|e| e.to_string())
}

fn import_client_certificates(
    s: &mut SecretState,
    pem: &str,
) -> Result<Vec<CertificateInfo>, String> {
    let certs = pki::certificates_from_pem(pem.as_bytes()).map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no certificate in the PEM text".to_owned());
    }
    let mut added = Vec::new();
    let known: Vec<[u8; 32]> = client_certificates(s)
        .iter()
        .map(|c| pki::fingerprint(c))
        .collect();
    for cert in certs {
        let info = officer::describe(&cert);
        if info.subject == "(unparsable certificate)" {
            return Err("a certificate in the PEM text does not parse".to_owned());
        }
        if !known.contains(&pki::fingerprint(&cert)) {
            s.client_certificates.push(pki::certificate_pem(&cert));
        }
        added.push(info);
    }
    Ok(added)
}

fn remove_client_certificate(s: &mut SecretState, fingerprint: &str) -> Result<(), String> {
    let target = identity::parse_fingerprint(fingerprint).ok_or("not a SHA-256 fingerprint")?;
    let before = s.client_certificates.len();
    s.client_certificates.retain(|pem| {
        pki::certificates_from_pem(pem.as_bytes())
            .ok()
            .and_then(|c| c.first().map(pki::fingerprint))
            != Some(target)
    });
    if s.client_certificates.len() == before {
        return Err(format!(
            "no imported client certificate has fingerprint {fingerprint}"
        ));
    }
    Ok(())
}

fn import_server_certificate(
    s: &mut SecretState,
    p12: &str,
    password: Zeroizing<String>,
) -> Result<CertificateInfo, String> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(p12.trim())
        .map_err(|_| "the PKCS#12 file is not base64")?;
    let contents = strongroom_certs::pkcs12::read(&der, &Password::new(password.to_string()))
        .map_err(|e| format!("server.p12: {e}"))?;
    let leaf = contents
        .certificates
        .first()
        .ok_or("server.p12 holds no certificate")?;
    if contents.certificates.len() < 2 {
        return Err("server.p12 holds no CA certificate: the host port needs the CA that issued the client certificates".to_owned());
    }
    let info = officer::describe(leaf);
    s.server = Some(ServerIdentity {
        chain: contents.certificates.iter().map(hex::encode).collect(),
        private_key: hex::encode(contents.private_key.expose_secret()),
    });
    Ok(info)
}

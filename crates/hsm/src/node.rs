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

use strongroom_crypto::blob::DomainKey;
use strongroom_crypto::passphrase::Argon2Params;
use strongroom_crypto::secret::SecretBytes;
use strongroom_proto::hsm::v1::{StatusReply, error::Code};
use tokio::net::TcpListener;
use tokio::sync::watch;
use zeroize::Zeroizing;

use crate::error::HsmError;
use crate::host::{self, EngineSlot, HostOptions, HostRun};
use crate::identity::Identity;
use crate::officer::{self, HostStatus, MemberStatus, NodeStatus};
use crate::software::SoftwareBackend;
use crate::state::{Credential, InitOptions, NodeStore, SecretState, StateError};
use certificates::{client_certificates, host_config, server_chain};
use officer_port::officer_loop;

/// Failed logins on one connection before it is closed.
const MAX_LOGIN_FAILURES: u32 = 5;

mod certificates;
mod officer_port;
mod sync;

pub use sync::SyncResult;

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

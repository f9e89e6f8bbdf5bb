//! Starting a KMS node (`strongroom server`) and initialising a deployment
//! (`strongroom init`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use strongroom_store::{Page, Store};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};
use zeroize::Zeroizing;

use crate::api::access_keys;
use crate::app::{App, now};
use crate::config::{Config, Database};
use crate::mgmt_tls;
use crate::node_key::NodeKey;
use crate::store::AnyStore;
use crate::{http, maintenance, node_key};

/// Why a node could not start or initialise.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Configuration.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The node key.
    #[error(transparent)]
    NodeKey(#[from] node_key::NodeKeyError),
    /// The store.
    #[error("store: {0}")]
    Store(#[from] strongroom_store::StoreError),
    /// The management TLS.
    #[error(transparent)]
    Tls(#[from] mgmt_tls::TlsSetupError),
    /// An API-level failure during setup.
    #[error(transparent)]
    Api(#[from] crate::error::ApiError),
    /// The data directory or listener.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The audit log cannot be opened.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    /// `init` on a deployment that already has access keys.
    #[error(
        "this deployment is already initialised ({0} access keys exist); make more with \
         `strongroom access-key create`"
    )]
    AlreadyInitialised(u64),
}

/// A running KMS node.
#[derive(Debug)]
pub struct RunningServer {
    /// Where the management API listens.
    pub local_addr: SocketAddr,
    /// `https` or `http`.
    pub scheme: &'static str,
    /// The management CA file clients trust (absent with plain HTTP).
    pub ca_file: Option<PathBuf>,
    /// Where `GET /metrics` is served, if it is.
    pub metrics_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningServer {
    /// Stops accepting connections and the background tasks, and waits for them.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Opens the store, the node key and the management CA: what `server` and `init` share.
async fn open(config: &Config) -> Result<(AnyStore, NodeKey), StartError> {
    create_private_dir(&config.data_dir)?;
    let store = match &config.database {
        Database::Sqlite(path) => AnyStore::sqlite(path).await?,
        Database::Postgres(url) => AnyStore::postgres(url).await?,
    };
    // A node key is made only for a store that has none yet; a second node over a
    // shared database must be given the first one's file.
    let fresh = store.get_setting(node_key::CHECK_SETTING).await?.is_none();
    let key = NodeKey::load(&config.node_key_file, fresh)?;
    key.check(&store, &config.node_key_file).await?;
    Ok((store, key))
}

/// Starts a KMS node: store, node key, management CA and listener, background tasks.
///
/// # Errors
/// [`StartError`] saying what is wrong.
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    let (store, key) = open(&config).await?;
    let tls = if config.insecure_http {
        None
    } else {
        let setup = mgmt_tls::setup(
            &store,
            &key,
            &config.server_names,
            &config.management_ca_file(),
        )
        .await?;
        Some(Arc::new(setup.server_config))
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Io {
            what: format!("listening on {}", config.listen),
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| StartError::Io {
        what: "reading the listener address".into(),
        source,
    })?;
    let ca_file = tls.as_ref().map(|_| config.management_ca_file());
    let scheme = if tls.is_some() { "https" } else { "http" };
    let audit = crate::audit::AuditLog::open(&config.audit_file)?;
    let app = App::new(store, key, config, audit).await?;
    let (shutdown, stop) = watch::channel(false);
    let mut metrics_addr = None;
    let mut tasks = Vec::new();
    if let Some(address) = app.config.metrics_listen {
        // A node that cannot take its metrics port still serves (the port may be another
        // node's on the same host); it says so.
        match TcpListener::bind(address).await {
            Ok(metrics) => {
                metrics_addr = metrics.local_addr().ok();
                tasks.push(tokio::spawn(crate::metrics::serve(
                    Arc::clone(&app),
                    metrics,
                    stop.clone(),
                )));
            }
            Err(e) => warn!(%address, error = %e, "metrics endpoint not started"),
        }
    }
    tasks.extend([
        tokio::spawn(http::serve(Arc::clone(&app), listener, tls, stop.clone())),
        tokio::spawn(purge_nonces(Arc::clone(&app), stop.clone())),
        tokio::spawn(maintenance::run(Arc::clone(&app), stop.clone())),
        tokio::spawn(crate::instance::endpoints::run(Arc::clone(&app), stop)),
    ]);
    info!(%local_addr, scheme, "management API listening");
    Ok(RunningServer {
        metrics_addr,
        local_addr,
        scheme,
        ca_file,
        shutdown,
        tasks,
    })
}

async fn purge_nonces(app: Arc<App<AnyStore>>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = app.store.purge_expired_nonces(now()).await {
            warn!(error = %e, "purging expired nonces failed");
        }
    }
}

/// What `init` made.
#[derive(Debug)]
pub struct Initialised {
    /// The first access key's id.
    pub access_key_id: String,
    /// Its secret: shown once, never stored in clear.
    pub access_key_secret: Zeroizing<String>,
    /// The management CA file (absent with plain HTTP).
    pub ca_file: Option<PathBuf>,
    /// The node key file.
    pub node_key_file: PathBuf,
}

/// Initialises a deployment: store, node key, management CA, and the first
/// administrator access key. Refused if an access key exists.
///
/// # Errors
/// [`StartError::AlreadyInitialised`], or as [`start`].
pub async fn init(config: &Config) -> Result<Initialised, StartError> {
    let (store, key) = open(config).await?;
    let existing = store
        .list_access_keys(Page { number: 1, size: 1 })
        .await?
        .total;
    if existing > 0 {
        return Err(StartError::AlreadyInitialised(existing));
    }
    let ca_file = if config.insecure_http {
        None
    } else {
        let file = config.management_ca_file();
        mgmt_tls::setup(&store, &key, &config.server_names, &file).await?;
        Some(file)
    };
    let (access_key, secret) =
        access_keys::mint(&store, &key, "created by strongroom init").await?;
    Ok(Initialised {
        access_key_id: access_key.id,
        access_key_secret: secret,
        ca_file,
        node_key_file: config.node_key_file.clone(),
    })
}

fn create_private_dir(dir: &Path) -> Result<(), StartError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| StartError::Io {
        what: format!("creating the data directory {}", dir.display()),
        source,
    })
}

//! The KMS node's links to the HSM clusters of its instances: one
//! `strongroom_hsm::client::ClusterClient` per connected instance, built on first use
//! from the instance's sealed credentials and kept (with its pooled mutual-TLS
//! connections) until the instance's cluster or credentials change.
//!
//! Every key operation goes through [`HsmPool::call`], which maps the link's errors to
//! the API's: a node that is down, sealed or not synced is retried on another by the
//! cluster client; when none answers the caller gets `503`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use strongroom_certs::password::Password;
use strongroom_certs::{pkcs12, pki};
use strongroom_hsm::client::{ClusterClient, ClusterConfig, NodeAddress};
use strongroom_hsm::{Hsm as _, HsmError, Op, Reply};
use strongroom_proto::hsm::v1::error::Code;
use strongroom_store::{Instance, Store};
use zeroize::Zeroizing;

use crate::api::instances::{HsmCredentials, credentials_purpose};
use crate::app::App;
use crate::enable;
use crate::error::ApiError;

/// One client per instance, with what it was built from.
#[derive(Debug, Default)]
pub struct HsmPool {
    clients: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug)]
struct Entry {
    /// The cluster id and the sealed credentials it was built from (compared on every
    /// call: cheaper than hashing them).
    cluster_id: String,
    sealed: Vec<u8>,
    client: Arc<ClusterClient>,
}

impl Entry {
    fn built_from(&self, cluster_id: &str, sealed: &[u8]) -> bool {
        self.cluster_id == cluster_id && self.sealed == sealed
    }
}

impl HsmPool {
    /// The client of `instance`'s cluster.
    ///
    /// # Errors
    /// [`ApiError::InstanceStateInvalid`] if the instance has no cluster or credentials;
    /// [`ApiError::Internal`] if the stored credentials do not open or build a client.
    pub async fn client<S: Store>(
        &self,
        app: &App<S>,
        instance: &Instance,
    ) -> Result<Arc<ClusterClient>, ApiError> {
        let (Some(cluster_id), Some(sealed)) = (
            instance.hsm_cluster_id.as_deref(),
            instance.hsm_credentials.as_deref(),
        ) else {
            return Err(ApiError::InstanceStateInvalid(format!(
                "The instance {} has no HSM cluster; connect it first (ConnectKmsInstance).",
                instance.id
            )));
        };
        if let Some(entry) = self.lock().get(&instance.id)
            && entry.built_from(cluster_id, sealed)
        {
            return Ok(Arc::clone(&entry.client));
        }
        let cluster = app.store.get_cluster(cluster_id).await?;
        let plain = app
            .node_key
            .open(sealed, &credentials_purpose(&instance.id))
            .map_err(|e| ApiError::Internal(format!("the HSM credentials do not open: {e}")))?;
        let credentials: HsmCredentials = serde_json::from_slice(plain.expose_secret())
            .map_err(|e| ApiError::Internal(format!("the HSM credentials are malformed: {e}")))?;
        let p12 = Zeroizing::new(
            STANDARD
                .decode(credentials.client_p12.as_bytes())
                .map_err(|e| ApiError::Internal(format!("stored client PKCS#12: {e}")))?,
        );
        let contents = pkcs12::read(&p12, &Password::new(credentials.password.clone()))
            .map_err(|e| ApiError::Internal(format!("stored client PKCS#12: {e}")))?;
        let cas = pki::certificates_from_pem(credentials.root_ca_pem.as_bytes())
            .map_err(|e| ApiError::Internal(format!("stored HSM root CA: {e}")))?;
        let tls = enable::client_tls(&contents, &cas).map_err(ApiError::Internal)?;
        let mut nodes = Vec::with_capacity(cluster.nodes.len());
        for node in &cluster.nodes {
            nodes.push(NodeAddress::new(node.address.clone()).map_err(internal)?);
        }
        let client =
            Arc::new(ClusterClient::connect(ClusterConfig::new(nodes, tls)).map_err(internal)?);
        let mut clients = self.lock();
        // Another request may have built one meanwhile; either is good, keep the first.
        if let Some(entry) = clients.get(&instance.id)
            && entry.built_from(cluster_id, sealed)
        {
            client.close();
            return Ok(Arc::clone(&entry.client));
        }
        if let Some(old) = clients.insert(
            instance.id.clone(),
            Entry {
                cluster_id: cluster_id.to_owned(),
                sealed: sealed.to_vec(),
                client: Arc::clone(&client),
            },
        ) {
            old.client.close();
        }
        Ok(client)
    }

    /// Sends one operation to `instance`'s cluster.
    ///
    /// # Errors
    /// The link's error mapped by [`hsm_error`], or those of [`HsmPool::client`].
    pub async fn call<S: Store>(
        &self,
        app: &App<S>,
        instance: &Instance,
        op: Op,
    ) -> Result<Reply, ApiError> {
        let client = self.client(app, instance).await?;
        client.call(op).await.map_err(hsm_error)
    }

    /// The health of each instance's HSM nodes, as its client sees them.
    pub fn health(&self) -> Vec<(String, Vec<strongroom_hsm::client::NodeHealth>)> {
        self.lock()
            .iter()
            .map(|(instance, entry)| (instance.clone(), entry.client.health()))
            .collect()
    }

    /// Closes every client (at shutdown).
    pub fn close_all(&self) {
        for (_, entry) in self.lock().drain() {
            entry.client.close();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // Inserts and removals are single calls: a poisoned map is still consistent.
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn internal(e: HsmError) -> ApiError {
    ApiError::Internal(e.message)
}

/// The API error for an HSM link error. Parameter errors say what the HSM refused;
/// a cluster with no healthy node is `503`; a blob that does not open is our fault.
pub fn hsm_error(e: HsmError) -> ApiError {
    match e.code {
        Code::InvalidParameter | Code::ImportFailed => ApiError::InvalidParameter {
            name: "request".to_owned(),
            reason: e.message,
        },
        Code::Unsupported => ApiError::UnsupportedOperation(format!(
            "The instance's HSM cluster cannot do this: {}",
            e.message
        )),
        Code::DecryptionFailed => ApiError::InvalidCiphertext(e.message),
        Code::Sealed | Code::NotSynced | Code::Unavailable => ApiError::Unavailable(format!(
            "no node of the instance's HSM cluster could serve the request: {}",
            e.message
        )),
        _ => ApiError::Internal(format!("HSM {:?}: {}", e.code, e.message)),
    }
}

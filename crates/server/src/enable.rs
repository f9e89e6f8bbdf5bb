//! Enabling an instance: after `ConnectKmsInstance` stored the credentials and set the
//! instance `Connecting`, this task reaches every HSM node of the cluster over mutual TLS
//! and asks each for its status. Every node must answer, be unsealed and synced, and
//! hold the same domain key; then the instance is `Connected`. Otherwise, when the enable
//! timeout passes, it goes to `Error` with the reason of each failing node.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use strongroom_certs::pkcs12::Pkcs12Contents;
use strongroom_certs::tls::{TlsVersions, mtls_client_config};
use strongroom_hsm::client::{ClusterClient, ClusterConfig, NodeAddress, NodeHealth};
use strongroom_store::{HsmCluster, InstanceStatus, Store, StoreError};
use tracing::{info, warn};

use crate::app::{App, now};

/// How often the task looks at the nodes' health while waiting.
const POLL: Duration = Duration::from_millis(250);

/// The KMS side of the HSM link from a client PKCS#12 and the HSM root CA (TLS 1.2 and
/// 1.3: the node's port property decides).
///
/// # Errors
/// A message if rustls cannot use the key, certificates or CA.
pub fn client_tls(
    contents: &Pkcs12Contents,
    cas: &[CertificateDer<'static>],
) -> Result<Arc<rustls::ClientConfig>, String> {
    mtls_client_config(
        contents.certificates.clone(),
        &contents.private_key,
        cas,
        TlsVersions::Tls12And13,
    )
    .map(Arc::new)
    .map_err(|e| e.to_string())
}

/// Runs the enabling of `instance_id` (stored at `version`, `Connecting`, bound to
/// `cluster`), and records the outcome.
pub async fn run<S: Store>(
    app: Arc<App<S>>,
    instance_id: String,
    version: i64,
    cluster: HsmCluster,
    tls: Arc<rustls::ClientConfig>,
) {
    let outcome = reach(&cluster, tls, app.config.enable_timeout).await;
    match &outcome {
        Ok(fingerprint) => info!(
            instance = %instance_id, cluster = %cluster.id, domain_key = %fingerprint,
            "instance enabled: every HSM node reached"
        ),
        Err(reason) => warn!(instance = %instance_id, cluster = %cluster.id, %reason,
            "instance not enabled"),
    }
    if let Err(e) = record(&app, &instance_id, version, &cluster.id, outcome).await {
        warn!(instance = %instance_id, error = %e, "could not record the enabling outcome");
    }
}

/// Waits until every node is healthy with one domain key; the fingerprint, or why not.
async fn reach(
    cluster: &HsmCluster,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Result<String, String> {
    let mut nodes = Vec::with_capacity(cluster.nodes.len());
    for node in &cluster.nodes {
        nodes.push(NodeAddress::new(node.address.clone()).map_err(|e| e.message)?);
    }
    let mut config = ClusterConfig::new(nodes, tls);
    config.health_interval = Duration::from_secs(1);
    config.connect_timeout = Duration::from_secs(5).min(timeout);
    config.connections_per_node = 1;
    let client = ClusterClient::connect(config).map_err(|e| e.message)?;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut verdict = Err("no HSM node has been probed yet".to_owned());
    while tokio::time::Instant::now() < deadline {
        verdict = judge(cluster, &client.health());
        if verdict.is_ok() {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    client.close();
    verdict
}

/// The cluster's verdict from its nodes' health.
fn judge(cluster: &HsmCluster, health: &[NodeHealth]) -> Result<String, String> {
    let mut problems = Vec::new();
    let mut fingerprints = BTreeSet::new();
    for (node, h) in cluster.nodes.iter().zip(health) {
        let zone = &node.zone;
        match &h.status {
            Some(status) if h.healthy => {
                if status.domain_key_fingerprint.is_empty() {
                    problems.push(format!("{} (zone {zone}): no domain key", h.address));
                } else {
                    fingerprints.insert(status.domain_key_fingerprint.clone());
                }
            }
            Some(status) if status.sealed => {
                problems.push(format!("{} (zone {zone}): the HSM is sealed", h.address));
            }
            Some(status) if !status.synced => problems.push(format!(
                "{} (zone {zone}): not synced with the cluster (run sync-cluster)",
                h.address
            )),
            _ => problems.push(format!("{} (zone {zone}): {}", h.address, h.reason)),
        }
    }
    if fingerprints.len() > 1 {
        problems.push(format!(
            "the nodes hold {} different domain keys; sync the cluster",
            fingerprints.len()
        ));
    }
    match (problems.is_empty(), fingerprints.into_iter().next()) {
        (true, Some(fingerprint)) => Ok(fingerprint),
        (true, None) => Err("the cluster has no nodes".to_owned()),
        (false, _) => Err(problems.join("; ")),
    }
}

/// Stores the outcome, unless the instance moved on meanwhile (released, reconnected).
async fn record<S: Store>(
    app: &App<S>,
    instance_id: &str,
    mut version: i64,
    cluster_id: &str,
    outcome: Result<String, String>,
) -> Result<(), StoreError> {
    loop {
        let instance = match app.store.get_instance(instance_id).await {
            Ok(i) => i,
            Err(StoreError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        // Our connect wrote `version`; later writes that are not another connect (an
        // auto-renewal, a VPC binding) keep the status Connecting with our cluster.
        if instance.status != InstanceStatus::Connecting
            || instance.hsm_cluster_id.as_deref() != Some(cluster_id)
            || instance.version < version
        {
            return Ok(());
        }
        let mut done = instance.clone();
        let at = now();
        match &outcome {
            Ok(fingerprint) => {
                done.status = InstanceStatus::Connected;
                done.start_time = Some(at);
                done.status_reason =
                    format!("every HSM node of {cluster_id} reached; domain key {fingerprint}");
            }
            Err(reason) => {
                done.status = InstanceStatus::Error;
                done.status_reason = format!("HSM cluster {cluster_id} not reachable: {reason}");
            }
        }
        done.updated_at = at;
        match app.store.update_instance(&done).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict(_)) => version = instance.version,
            Err(e) => return Err(e),
        }
    }
}

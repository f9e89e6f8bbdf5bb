//! HSM clusters registered with the KMS (`RegisterHsmCluster`, `GetHsmCluster`,
//! `ListHsmClusters`, `DeregisterHsmCluster`): a name and its nodes, each with a zone.
//! The access credentials are not part of the cluster; they are given when an instance
//! is enabled with it (`ConnectKmsInstance`).

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use strongroom_hsm::client::NodeAddress;
use strongroom_store::{HsmCluster, HsmNode, Page, Store, StoreError};

use super::{Answer, Params, answer, page_answer};
use crate::app::{App, iso, now, random_id};
use crate::error::ApiError;

/// Most nodes in one cluster.
pub const MAX_NODES: usize = 16;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeParam {
    #[serde(rename = "Address")]
    address: String,
    #[serde(rename = "ZoneId")]
    zone_id: String,
}

/// Reads a cluster named by a parameter.
pub(crate) async fn load<S: Store>(app: &App<S>, id: &str) -> Result<HsmCluster, ApiError> {
    app.store.get_cluster(id).await.map_err(|e| match e {
        StoreError::NotFound(_) => ApiError::HsmClusterNotFound(id.to_owned()),
        other => other.into(),
    })
}

/// The instance a cluster is bound to, if any.
pub(crate) async fn bound_instance<S: Store>(
    app: &App<S>,
    cluster_id: &str,
) -> Result<Option<String>, ApiError> {
    let mut number = 1;
    loop {
        let page = app.store.list_instances(Page { number, size: 100 }).await?;
        if let Some(found) = page
            .items
            .iter()
            .find(|i| i.hsm_cluster_id.as_deref() == Some(cluster_id))
        {
            return Ok(Some(found.id.clone()));
        }
        if page.items.len() < 100 {
            return Ok(None);
        }
        number += 1;
    }
}

fn view(cluster: &HsmCluster, instance: Option<String>) -> Value {
    let nodes: Vec<Value> = cluster
        .nodes
        .iter()
        .map(|n| json!({"Address": n.address, "ZoneId": n.zone}))
        .collect();
    json!({
        "HsmClusterId": cluster.id,
        "HsmClusterName": cluster.name,
        "CreateTime": iso(Some(cluster.created_at)),
        "Nodes": {"Node": nodes},
        "KmsInstanceId": instance.unwrap_or_default(),
    })
}

pub(crate) async fn register<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let name = p.name_or("HsmClusterName", "hsm-cluster", 128)?;
    let nodes: Vec<NodeParam> = p.json("Nodes")?;
    if nodes.len() < 2 || nodes.len() > MAX_NODES {
        return Err(ApiError::invalid(
            "Nodes",
            format!("a cluster has 2 to {MAX_NODES} nodes, not {}", nodes.len()),
        ));
    }
    let mut addresses = BTreeSet::new();
    let mut zones = BTreeSet::new();
    for node in &nodes {
        NodeAddress::new(node.address.clone())
            .map_err(|e| ApiError::invalid("Nodes", e.message))?;
        if !addresses.insert(node.address.to_ascii_lowercase()) {
            return Err(ApiError::invalid(
                "Nodes",
                format!("{} is listed twice", node.address),
            ));
        }
        let zone = node.zone_id.trim();
        if zone.is_empty() || zone.len() > 64 || zone.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                "Nodes",
                format!("the ZoneId of {} must be 1 to 64 characters", node.address),
            ));
        }
        zones.insert(zone.to_owned());
    }
    if zones.len() < 2 {
        return Err(ApiError::invalid(
            "Nodes",
            "the nodes must be in at least two distinct zones",
        ));
    }
    let cluster = HsmCluster {
        id: random_id("hsmc-", 16)?,
        name,
        nodes: nodes
            .into_iter()
            .map(|n| HsmNode {
                address: n.address,
                zone: n.zone_id.trim().to_owned(),
            })
            .collect(),
        created_at: now(),
    };
    app.store.create_cluster(&cluster).await?;
    Ok(answer([("HsmClusterId", Value::from(cluster.id))]))
}

pub(crate) async fn get<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let cluster = load(app, p.required("HsmClusterId")?).await?;
    let instance = bound_instance(app, &cluster.id).await?;
    Ok(answer([("HsmCluster", view(&cluster, instance))]))
}

pub(crate) async fn list<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let page = p.page()?;
    let clusters = app.store.list_clusters(page).await?;
    let mut items = Vec::with_capacity(clusters.items.len());
    for cluster in &clusters.items {
        items.push(view(cluster, bound_instance(app, &cluster.id).await?));
    }
    Ok(page_answer(
        page,
        clusters.total,
        "HsmClusters",
        "HsmCluster",
        items,
    ))
}

pub(crate) async fn deregister<S: Store>(
    app: &Arc<App<S>>,
    p: &Params,
) -> Result<Answer, ApiError> {
    let id = p.required("HsmClusterId")?;
    app.store.delete_cluster(id).await.map_err(|e| match e {
        StoreError::NotFound(_) => ApiError::HsmClusterNotFound(id.to_owned()),
        StoreError::Conflict(_) => ApiError::ResourceInUse(format!(
            "{id} is bound to an instance; release the instance first"
        )),
        other => other.into(),
    })?;
    Ok(answer([]))
}

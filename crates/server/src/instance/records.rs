//! What the instance API reads for a request, from the short-lived caches
//! ([`super::cache`]) or the store: the calling client key with everything its access
//! decision needs, the instance, and the key a request names with its versions.

use std::sync::Arc;

use strongroom_certs::pki;
use strongroom_proto::signature::ClientPublicKey;
use strongroom_store::{AccessSnapshot, Instance, Key, KeyVersion, Page, Store, StoreError};
use tracing::warn;

use crate::access::{self, Snapshot};
use crate::app::App;
use crate::network::Cidr;

/// A client key as the instance API uses it.
#[derive(Debug)]
pub struct Client {
    /// The records its access decision reads.
    pub snapshot: Snapshot,
    /// The key its requests are signed with.
    pub public_key: ClientPublicKey,
}

/// A key with every version (blob and public key), oldest first.
#[derive(Debug)]
pub struct ResolvedKey {
    /// The key.
    pub key: Key,
    /// Its versions, oldest first; the first is the one `Encrypt` uses.
    pub versions: Vec<KeyVersion>,
}

impl ResolvedKey {
    /// The version `Encrypt`, `GenerateDataKey` and their kin use when no version is
    /// named: the key's first (its ciphertexts carry no version).
    pub fn initial(&self) -> Option<&KeyVersion> {
        self.versions.first()
    }

    /// The primary version: the one the `Advance*` operations use.
    pub fn primary(&self) -> Option<&KeyVersion> {
        self.version(&self.key.primary_version)
    }

    /// A version by id.
    pub fn version(&self, id: &str) -> Option<&KeyVersion> {
        self.versions.iter().find(|v| v.version_id == id)
    }
}

/// A failure to read a record: the store did not answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the store did not answer: {0}")]
pub struct Unavailable(pub String);

fn unavailable(e: StoreError) -> Unavailable {
    Unavailable(e.to_string())
}

/// The client key `id`, or `None` if it does not exist (or its certificate is unusable,
/// which is logged).
///
/// # Errors
/// [`Unavailable`].
pub async fn client<S: Store>(app: &App<S>, id: &str) -> Result<Option<Arc<Client>>, Unavailable> {
    let cache = &app.instance_api.clients;
    if let Some(hit) = cache.get(id) {
        return Ok(hit);
    }
    let found = match app.store.access_snapshot(id).await.map_err(unavailable)? {
        Some(records) => client_from(&records).map(Arc::new),
        None => None,
    };
    cache.put(id.to_owned(), found.clone());
    Ok(found)
}

fn client_from(records: &AccessSnapshot) -> Option<Client> {
    let id = &records.client_key.id;
    let public_key = pki::certificates_from_pem(records.client_key.certificate_pem.as_bytes())
        .ok()
        .and_then(|certs| certs.into_iter().next())
        .and_then(|cert| pki::certificate_public_key(&cert).ok())
        .and_then(|spki| ClientPublicKey::from_spki_der(&spki).ok());
    let Some(public_key) = public_key else {
        warn!(client_key = %id, "the stored certificate of a client key is unusable");
        return None;
    };
    Some(Client {
        snapshot: snapshot_from(records),
        public_key,
    })
}

/// The access decision's view of the store's records.
pub fn snapshot_from(records: &AccessSnapshot) -> Snapshot {
    let rules = records
        .network_rules
        .iter()
        .map(|rule| access::NetworkRule {
            name: rule.name.clone(),
            // Checked when written; an entry that no longer parses grants nothing.
            sources: rule
                .source_private_ip
                .iter()
                .filter_map(|s| s.parse::<Cidr>().ok())
                .collect(),
        })
        .collect();
    let policies = records
        .policies
        .iter()
        .map(|policy| access::Policy {
            name: policy.name.clone(),
            instance_id: policy.kms_instance_id.clone(),
            permissions: policy
                .permissions
                .iter()
                .filter_map(|p| p.parse().ok())
                .collect(),
            resources: policy.resources.clone(),
            network_rules: policy.network_rules.clone(),
        })
        .collect();
    let point = access::AccessPoint {
        name: records.access_point.name.clone(),
        policies: records.access_point.policies.clone(),
    };
    let key = access::ClientKey {
        id: records.client_key.id.clone(),
        access_point: records.client_key.aap_name.clone(),
        not_before: records.client_key.not_before,
        not_after: records.client_key.not_after,
    };
    Snapshot::new(rules, policies, vec![point], vec![key])
}

/// An instance as its endpoint serves it.
#[derive(Debug)]
pub struct Served {
    /// The instance.
    pub instance: Instance,
    /// The CIDR blocks of the VPCs bound to it: a caller must be in one of them. Empty
    /// when no VPC is bound (no restriction beyond the network rules).
    pub networks: Vec<Cidr>,
}

impl Served {
    /// Whether `source` may reach the instance at all.
    pub fn admits(&self, source: std::net::IpAddr) -> bool {
        self.networks.is_empty() || self.networks.iter().any(|n| n.contains(source))
    }
}

/// The instance `id` with its bound networks, or `None` if it does not exist.
///
/// # Errors
/// [`Unavailable`].
pub async fn instance<S: Store>(
    app: &App<S>,
    id: &str,
) -> Result<Option<Arc<Served>>, Unavailable> {
    let cache = &app.instance_api.instances;
    if let Some(hit) = cache.get(id) {
        return Ok(hit);
    }
    let instance = match app.store.get_instance(id).await {
        Ok(instance) => instance,
        Err(StoreError::NotFound(_)) => {
            cache.put(id.to_owned(), None);
            return Ok(None);
        }
        Err(e) => return Err(unavailable(e)),
    };
    let mut networks = Vec::new();
    for vpc_id in app.store.instance_vpcs(id).await.map_err(unavailable)? {
        let vpc = match app.store.get_vpc(&vpc_id).await {
            Ok(vpc) => vpc,
            Err(StoreError::NotFound(_)) => continue,
            Err(e) => return Err(unavailable(e)),
        };
        // Checked when the VPC was made.
        networks.extend(
            vpc.cidr_blocks
                .iter()
                .filter_map(|b| b.parse::<Cidr>().ok()),
        );
    }
    let found = Some(Arc::new(Served { instance, networks }));
    cache.put(id.to_owned(), found.clone());
    Ok(found)
}

/// The key a request names (a key id or an alias), or `None` if there is none.
///
/// # Errors
/// [`Unavailable`].
pub async fn key<S: Store>(
    app: &App<S>,
    name: &str,
) -> Result<Option<Arc<ResolvedKey>>, Unavailable> {
    let cache = &app.instance_api.keys;
    if let Some(hit) = cache.get(name) {
        return Ok(hit);
    }
    let key_id = if name.starts_with("alias/") {
        match app.store.get_alias(name).await {
            Ok(alias) => Some(alias.key_id),
            Err(StoreError::NotFound(_)) => None,
            Err(e) => return Err(unavailable(e)),
        }
    } else {
        Some(name.to_owned())
    };
    let found = match key_id {
        Some(id) => load_key(app, &id).await?,
        None => None,
    };
    cache.put(name.to_owned(), found.clone());
    Ok(found)
}

/// The key that has the version `version_id` (ciphertexts of `AdvanceEncrypt` and the
/// `x-kms-migrationkeyversionid` header name only a version), or `None`.
///
/// # Errors
/// [`Unavailable`].
pub async fn key_of_version<S: Store>(
    app: &App<S>,
    version_id: &str,
) -> Result<Option<Arc<ResolvedKey>>, Unavailable> {
    let cache = &app.instance_api.version_keys;
    let key_id = match cache.get(version_id) {
        Some(hit) => hit,
        None => {
            let found = match app.store.find_key_version(version_id).await {
                Ok(version) => Some(version.key_id),
                Err(StoreError::NotFound(_)) => None,
                Err(e) => return Err(unavailable(e)),
            };
            cache.put(version_id.to_owned(), found.clone());
            found
        }
    };
    match key_id {
        Some(id) => key(app, &id).await,
        None => Ok(None),
    }
}

async fn load_key<S: Store>(
    app: &App<S>,
    id: &str,
) -> Result<Option<Arc<ResolvedKey>>, Unavailable> {
    let key = match app.store.get_key(id).await {
        Ok(key) => key,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(unavailable(e)),
    };
    let mut versions = Vec::new();
    let mut number = 1;
    loop {
        let page = app
            .store
            .list_key_versions(id, Page { number, size: 100 })
            .await
            .map_err(unavailable)?;
        let done = page.items.len() < 100;
        versions.extend(page.items);
        if done {
            break;
        }
        number += 1;
    }
    Ok(Some(Arc::new(ResolvedKey { key, versions })))
}

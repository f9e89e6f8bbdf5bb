//! Cluster sync: the primary pushes, the member checks and installs.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use serde::{Deserialize, Serialize};
use strongroom_crypto::blob::DomainKey;
use strongroom_crypto::key::{DecryptParams, Key};
use strongroom_crypto::material::KeyMaterial;
use strongroom_crypto::public::PublicKey;
use strongroom_crypto::random;
use strongroom_crypto::seal::SealingKey;
use strongroom_crypto::secret::SecretBytes;
use strongroom_crypto::spec::{Algorithm, KeySpec, KeyUsage};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use zeroize::Zeroizing;

use super::{Apply, Inner, lock};
use crate::identity;
use crate::officer::{self, OfficerRequest, OfficerResponse};
use crate::state::{Peer, PortProperties, Role, ServerIdentity};

const SYNC_AAD: &[u8] = b"strongroom-hsm-sync/1";
/// How long a node-to-node sync may take per member.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

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
pub(super) struct SyncAck {
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
    pub(super) async fn sync_cluster(self: &Arc<Self>) -> Result<Vec<SyncResult>, String> {
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

    pub(super) async fn sync_push(
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

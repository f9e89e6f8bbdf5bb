//! The officer port: connections, login, and the officer's requests.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;
use strongroom_certs::pki;
use strongroom_crypto::material::KeyMaterial;
use strongroom_crypto::secret::SecretBytes;
use strongroom_crypto::spec::KeySpec;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use zeroize::Zeroizing;

use super::certificates::{
    client_certificates, import_client_certificates, import_server_certificate,
    remove_client_certificate,
};
use super::{Apply, Inner, MAX_LOGIN_FAILURES, lock};
use crate::host;
use crate::officer::{self, CertificateInfo, Hello, IdentityInfo, OfficerRequest, OfficerResponse};
use crate::state::{Credential, Role, StateError};

// --- the officer port ---------------------------------------------------------------

/// Most connections the officer port serves at once (an officer runs one command at a
/// time; a primary pushes one sync per member).
pub(crate) const MAX_OFFICER_CONNECTIONS: usize = 64;
/// Most officer-port connections from one source address.
pub(crate) const MAX_OFFICER_CONNECTIONS_PER_SOURCE: usize = 16;
/// Time a connection that has not logged in has to send its next request (whole): the
/// port is open to anyone who can reach it, so a stranger cannot hold a connection.
pub(crate) const OFFICER_ANONYMOUS_TIMEOUT: Duration = Duration::from_secs(30);
/// Time a logged-in officer's connection has to send its next request (whole).
pub(crate) const OFFICER_SESSION_TIMEOUT: Duration = Duration::from_secs(300);

pub(super) async fn officer_loop(
    inner: Arc<Inner>,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_OFFICER_CONNECTIONS));
    let sources = Arc::new(host::Sources::default());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let Ok((stream, peer)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::info!(%peer, "officer port: connection limit reached; connection closed");
            continue;
        };
        let Some(slot) = sources.admit(peer.ip(), MAX_OFFICER_CONNECTIONS_PER_SOURCE) else {
            tracing::info!(%peer, "officer port: connection limit of the address reached; connection closed");
            continue;
        };
        let inner = Arc::clone(&inner);
        let acceptor = acceptor.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _held = (permit, slot);
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

pub(super) async fn officer_connection(
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
    loop {
        let wait = if logged_in {
            OFFICER_SESSION_TIMEOUT
        } else {
            OFFICER_ANONYMOUS_TIMEOUT
        };
        let Ok(read) =
            tokio::time::timeout(wait, officer::read_frame::<_, OfficerRequest>(&mut tls)).await
        else {
            tracing::info!("officer connection idle too long; closed");
            return Ok(());
        };
        let Some(request) = read? else {
            return Ok(());
        };
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
        // An officer (or a stranger) who sends requests and never reads the answers
        // does not hold the connection once its buffers are full.
        let write = officer::write_frame(&mut tls, &response);
        let Ok(written) = tokio::time::timeout(host::WRITE_TIMEOUT, write).await else {
            tracing::info!("officer connection did not read its answer in time; closed");
            return Ok(());
        };
        written?;
        if failures >= MAX_LOGIN_FAILURES {
            return Ok(());
        }
    }
}

/// What a primary sends a member at sync.
impl Inner {
    pub(super) fn hello(&self) -> Hello {
        let store = lock(&self.store);
        Hello {
            node_id: store.node_id().to_owned(),
            zone: store.zone().to_owned(),
            sealed: lock(&self.secret).is_none(),
            identity_fingerprint: self.identity.fingerprint(),
        }
    }

    pub(super) async fn login(self: &Arc<Self>, password: Zeroizing<String>) -> OfficerResponse {
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

    pub(super) async fn officer(self: &Arc<Self>, request: OfficerRequest) -> OfficerResponse {
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

    pub(super) fn identity_info(&self) -> Result<IdentityInfo, String> {
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
}

pub(super) fn to_value<T: Serialize>(value: T) -> Result<serde_json::Value, String> {
    serde_json::to_value(value).map_err(|e| e.to_string())
}

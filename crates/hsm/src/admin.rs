//! The security officer's side of the officer channel: what `strongroom hsm admin`
//! does, as a library (so tests and the quickstart drive nodes the same way).
//!
//! Trust in a node is its identity fingerprint: given explicitly, or looked up in a
//! known-nodes file (`address fingerprint` per line). A node not in the file is refused
//! unless the caller accepts new nodes, in which case its fingerprint is recorded — the
//! SSH model. A node whose fingerprint changed is always refused.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use zeroize::Zeroizing;

use crate::identity::{self, PinnedServer};
use crate::officer::{self, Hello, IdentityInfo, OfficerRequest, OfficerResponse};
use crate::state::Peer;

/// Why an officer command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The node could not be reached.
    #[error("cannot connect to {address}: {reason}")]
    Connect {
        /// The address.
        address: String,
        /// Why.
        reason: String,
    },
    /// The node is not trusted (yet).
    #[error(
        "{address} presented identity SHA256:{seen}, which is not in {file}. If that is the node's fingerprint (printed by `strongroom hsm serve` at start, and in its state directory's identity.pem), pass --fingerprint SHA256:{seen} or --accept-new"
    )]
    UnknownNode {
        /// The address.
        address: String,
        /// The fingerprint it presented.
        seen: String,
        /// The known-nodes file.
        file: String,
    },
    /// The node's identity changed.
    #[error(
        "{address} presented identity SHA256:{seen}, but SHA256:{expected} is expected: refusing (a different node, or an attack). Remove the line from {file} only if the node was re-created"
    )]
    ChangedNode {
        /// The address.
        address: String,
        /// What it presented.
        seen: String,
        /// What was recorded.
        expected: String,
        /// The known-nodes file.
        file: String,
    },
    /// The node refused the request.
    #[error("{0}")]
    Refused(String),
    /// The channel broke.
    #[error(transparent)]
    Channel(#[from] officer::ChannelError),
    /// The known-nodes file.
    #[error("known nodes file {path}: {reason}")]
    KnownNodes {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// How to trust a node.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Exactly this identity fingerprint.
    Fingerprint([u8; 32]),
    /// The known-nodes file; with `accept_new`, record a node seen for the first time.
    KnownNodes {
        /// The file.
        file: PathBuf,
        /// Record unknown nodes instead of refusing them.
        accept_new: bool,
    },
}

/// The default known-nodes file: `$STRONGROOM_KNOWN_HSMS`, else
/// `$HOME/.strongroom/known_hsms`.
pub fn default_known_nodes_file() -> PathBuf {
    if let Some(path) = std::env::var_os("STRONGROOM_KNOWN_HSMS") {
        return PathBuf::from(path);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".strongroom").join("known_hsms")
}

/// A logged-in (or not yet) officer session with one node.
#[derive(Debug)]
pub struct OfficerClient {
    address: String,
    stream: TlsStream<TcpStream>,
    fingerprint: String,
}

impl OfficerClient {
    /// Connects to `address` (`host:port`) and checks its identity.
    ///
    /// # Errors
    /// [`AdminError::Connect`], [`AdminError::UnknownNode`], [`AdminError::ChangedNode`].
    pub async fn connect(address: &str, trust: &Trust) -> Result<Self, AdminError> {
        let (expected, file) = match trust {
            Trust::Fingerprint(fp) => (Some(*fp), None),
            Trust::KnownNodes { file, accept_new } => (
                lookup_known(file, address)?,
                Some((file.clone(), *accept_new)),
            ),
        };
        let connect_error = |reason: String| AdminError::Connect {
            address: address.to_owned(),
            reason,
        };
        let (config, verifier): (rustls::ClientConfig, Arc<PinnedServer>) =
            identity::officer_client_config(expected).map_err(|e| connect_error(e.to_string()))?;
        let stream = TcpStream::connect(address)
            .await
            .map_err(|e| connect_error(e.to_string()))?;
        let name = server_name(address).map_err(connect_error)?;
        let tls = TlsConnector::from(Arc::new(config))
            .connect(name, stream)
            .await;
        let seen = verifier.seen().map(hex::encode).unwrap_or_default();
        let stream = match (tls, expected) {
            (Ok(stream), _) => stream,
            (Err(_), Some(expected)) if !seen.is_empty() && seen != hex::encode(expected) => {
                return Err(AdminError::ChangedNode {
                    address: address.to_owned(),
                    seen,
                    expected: hex::encode(expected),
                    file: file.map_or_else(
                        || "--fingerprint".to_owned(),
                        |(f, _)| f.display().to_string(),
                    ),
                });
            }
            (Err(e), _) => return Err(connect_error(format!("TLS: {e}"))),
        };
        if let (None, Some((file, accept_new))) = (expected, &file) {
            if !accept_new {
                return Err(AdminError::UnknownNode {
                    address: address.to_owned(),
                    seen,
                    file: file.display().to_string(),
                });
            }
            record_known(file, address, &seen)?;
        }
        Ok(Self {
            address: address.to_owned(),
            stream,
            fingerprint: seen,
        })
    }

    /// The address connected to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The identity fingerprint the node presented (hex).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Sends one request and returns its result.
    ///
    /// # Errors
    /// [`AdminError::Refused`] with the node's reason, or a channel failure.
    pub async fn call(
        &mut self,
        request: &OfficerRequest,
    ) -> Result<serde_json::Value, AdminError> {
        officer::write_frame(&mut self.stream, request).await?;
        let response: OfficerResponse = officer::read_frame(&mut self.stream)
            .await?
            .ok_or_else(|| AdminError::Refused("the node closed the connection".to_owned()))?;
        if response.ok {
            Ok(response.result)
        } else {
            Err(AdminError::Refused(
                response.error.unwrap_or_else(|| "refused".to_owned()),
            ))
        }
    }

    /// Sends a request and decodes its result as `T`.
    ///
    /// # Errors
    /// As [`OfficerClient::call`], or a result of another shape.
    pub async fn call_as<T: DeserializeOwned>(
        &mut self,
        request: &OfficerRequest,
    ) -> Result<T, AdminError> {
        let value = self.call(request).await?;
        serde_json::from_value(value)
            .map_err(|e| AdminError::Refused(format!("unexpected answer: {e}")))
    }

    /// Logs in (unsealing a sealed node).
    ///
    /// # Errors
    /// [`AdminError::Refused`] for a wrong password.
    pub async fn login(&mut self, password: &Zeroizing<String>) -> Result<Hello, AdminError> {
        self.call_as(&OfficerRequest::Login {
            password: password.clone(),
        })
        .await
    }
}

/// Enrols the node behind `member` in the cluster of `primary`: the member accepts
/// syncs from the primary only, and the primary will sync it. Both sessions must be
/// logged in. Returns the member's identity.
///
/// # Errors
/// Any refusal (the member is itself a primary with members, the addresses are the
/// same node, ...).
pub async fn add_member(
    primary: &mut OfficerClient,
    member: &mut OfficerClient,
) -> Result<IdentityInfo, AdminError> {
    let p: IdentityInfo = primary.call_as(&OfficerRequest::Identity).await?;
    let m: IdentityInfo = member.call_as(&OfficerRequest::Identity).await?;
    if m.identity_fingerprint != member.fingerprint()
        || p.identity_fingerprint != primary.fingerprint()
    {
        return Err(AdminError::Refused(
            "a node reported an identity other than the one its channel presented".to_owned(),
        ));
    }
    member
        .call(&OfficerRequest::Enroll {
            primary: peer(primary.address(), &p),
        })
        .await?;
    primary
        .call(&OfficerRequest::AddMember {
            member: peer(member.address(), &m),
        })
        .await?;
    Ok(m)
}

fn peer(address: &str, info: &IdentityInfo) -> Peer {
    Peer {
        address: address.to_owned(),
        node_id: info.node_id.clone(),
        zone: info.zone.clone(),
        identity_fingerprint: info.identity_fingerprint.clone(),
        enrollment_public_key: info.enrollment_public_key.clone(),
        synced_fingerprint: String::new(),
    }
}

fn server_name(address: &str) -> Result<ServerName<'static>, String> {
    let host = address
        .rsplit_once(':')
        .map_or(address, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    ServerName::try_from(host).map_err(|e| format!("{address}: {e}"))
}

fn lookup_known(file: &Path, address: &str) -> Result<Option<[u8; 32]>, AdminError> {
    let text = match fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(AdminError::KnownNodes {
                path: file.to_owned(),
                reason: e.to_string(),
            });
        }
    };
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if let (Some(a), Some(fp)) = (words.next(), words.next())
            && a == address
        {
            return identity::parse_fingerprint(fp).map(Some).ok_or_else(|| {
                AdminError::KnownNodes {
                    path: file.to_owned(),
                    reason: format!("malformed fingerprint for {address}"),
                }
            });
        }
    }
    Ok(None)
}

fn record_known(file: &Path, address: &str, fingerprint: &str) -> Result<(), AdminError> {
    let fail = |e: std::io::Error| AdminError::KnownNodes {
        path: file.to_owned(),
        reason: e.to_string(),
    };
    if let Some(parent) = file.parent()
        && !parent.as_os_str().is_empty()
    {
        fs::create_dir_all(parent).map_err(fail)?;
    }
    let mut out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .map_err(fail)?;
    writeln!(out, "{address} SHA256:{fingerprint}").map_err(fail)
}

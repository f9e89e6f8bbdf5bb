//! The officer channel: how the security officer's tool (`strongroom hsm admin`) and the
//! other nodes of the cluster talk to a node, on its own port (8021 by default).
//!
//! Transport: TLS 1.2/1.3 with the node's identity certificate, trusted by fingerprint
//! (see [`crate::identity`]). Frames: a 4-byte big-endian length, then one JSON
//! [`OfficerRequest`] or [`OfficerResponse`].
//!
//! Authentication: an officer logs in with the password (which also unseals a sealed
//! node); everything but `hello` needs a login. A peer node presents its identity
//! certificate as a TLS client certificate; `sync-push` is accepted only from the
//! primary this node was enrolled with.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use zeroize::Zeroizing;

use crate::state::{Peer, PortProperties};

/// The officer port's default.
pub const DEFAULT_OFFICER_PORT: u16 = 8021;
/// The host port's default.
pub const DEFAULT_HOST_PORT: u16 = 8020;
/// Largest officer frame (a server.p12 is a few KiB).
pub const MAX_OFFICER_FRAME: usize = 1 << 20;

/// A request on the officer channel.
#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum OfficerRequest {
    /// Who are you? (No login needed.)
    Hello,
    /// Log in as the security officer; unseals a sealed node.
    Login {
        /// The officer's password.
        password: Zeroizing<String>,
    },
    /// The node's status.
    Status,
    /// This node's identity, for enrolling it in a cluster.
    Identity,
    /// Imports client certificates (PEM; one or more) the host port will accept.
    ImportClientCert {
        /// PEM text.
        pem: String,
    },
    /// Lists imported client certificates.
    ListClientCerts,
    /// Removes an imported client certificate.
    RemoveClientCert {
        /// Its SHA-256 fingerprint, hex.
        fingerprint: String,
    },
    /// Imports the host port's server certificate and key.
    ImportServerCert {
        /// The PKCS#12 file, base64.
        p12: String,
        /// Its password.
        password: Zeroizing<String>,
    },
    /// Changes host-port properties (unset fields keep their value).
    SetProperties {
        /// TCP keep-alive seconds.
        #[serde(default)]
        keep_alive_secs: Option<u32>,
        /// Vendor header length (only 0).
        #[serde(default)]
        header_len: Option<u32>,
        /// Encoding (only ASCII).
        #[serde(default)]
        encoding: Option<String>,
        /// Two-way TLS (only true).
        #[serde(default)]
        two_way: Option<bool>,
        /// TLSv1.2 or TLSv1.3.
        #[serde(default)]
        protocol: Option<String>,
    },
    /// Applies the staged certificates and properties to the host port, closing its
    /// connections.
    Restart,
    /// On a node joining a cluster: accept syncs from this primary (discards the node's
    /// own domain key).
    Enroll {
        /// The primary.
        primary: Peer,
    },
    /// On the primary: add a member.
    AddMember {
        /// The member.
        member: Peer,
    },
    /// On the primary: remove a member.
    RemoveMember {
        /// Its node id.
        node_id: String,
    },
    /// On the primary: copy domain key, certificates and properties to every member.
    SyncCluster,
    /// Node-to-node: the primary's sync payload, encrypted to this node's enrolment key.
    SyncPush {
        /// The receiving node's id (bound into the encryption).
        node_id: String,
        /// RSA-OAEP-SHA-256 of the payload key, hex.
        wrapped_key: String,
        /// The payload sealed under the payload key, hex.
        payload: String,
    },
}

impl core::fmt::Debug for OfficerRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl OfficerRequest {
    /// The operation's name, for logs (never its arguments).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Hello => "hello",
            Self::Login { .. } => "login",
            Self::Status => "status",
            Self::Identity => "identity",
            Self::ImportClientCert { .. } => "import-client-cert",
            Self::ListClientCerts => "list-client-certs",
            Self::RemoveClientCert { .. } => "remove-client-cert",
            Self::ImportServerCert { .. } => "import-server-cert",
            Self::SetProperties { .. } => "set-properties",
            Self::Restart => "restart",
            Self::Enroll { .. } => "enroll",
            Self::AddMember { .. } => "add-member",
            Self::RemoveMember { .. } => "remove-member",
            Self::SyncCluster => "sync-cluster",
            Self::SyncPush { .. } => "sync-push",
        }
    }
}

/// The answer to one request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OfficerResponse {
    /// Whether the request succeeded.
    pub ok: bool,
    /// Why not, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The result, shaped by the request.
    #[serde(default)]
    pub result: serde_json::Value,
}

impl OfficerResponse {
    /// A success carrying `result`.
    pub fn ok(result: impl Serialize) -> Self {
        match serde_json::to_value(result) {
            Ok(result) => Self {
                ok: true,
                error: None,
                result,
            },
            Err(e) => Self::error(format!("encoding the result: {e}")),
        }
    }

    /// A failure.
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            ok: false,
            error: Some(message.into()),
            result: serde_json::Value::Null,
        }
    }
}

/// A certificate, described for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateInfo {
    /// SHA-256 of the DER, hex.
    pub fingerprint: String,
    /// The subject, RFC 4514.
    pub subject: String,
    /// The issuer, RFC 4514.
    pub issuer: String,
    /// Expiry, RFC 3339.
    pub not_after: String,
}

/// What `hello` answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    /// The node id.
    pub node_id: String,
    /// Its zone label.
    pub zone: String,
    /// Whether it is sealed.
    pub sealed: bool,
    /// Its identity fingerprint.
    pub identity_fingerprint: String,
}

/// What `identity` answers: what a primary needs to enrol this node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdentityInfo {
    /// The node id.
    pub node_id: String,
    /// Its zone label.
    pub zone: String,
    /// Its identity fingerprint.
    pub identity_fingerprint: String,
    /// Its enrolment public key, DER hex.
    pub enrollment_public_key: String,
}

/// The host port, as status reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostStatus {
    /// Where it listens.
    pub address: String,
    /// Whether it accepts TLS connections now.
    pub serving: bool,
    /// Why not, when it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Whether certificates or properties changed since the last restart.
    pub restart_pending: bool,
    /// The properties in force (or staged, when a restart is pending).
    pub properties: Option<PortProperties>,
}

/// A member, as the primary's status reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberStatus {
    /// Its officer address.
    pub address: String,
    /// Its node id.
    pub node_id: String,
    /// Its zone.
    pub zone: String,
    /// Whether its last sync delivered the current domain key.
    pub synced: bool,
}

/// What `status` answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node id.
    pub node_id: String,
    /// Its zone label.
    pub zone: String,
    /// Whether it is sealed.
    pub sealed: bool,
    /// `primary` or `member` (unknown while sealed).
    pub role: Option<String>,
    /// Whether it holds the cluster's domain key.
    pub synced: bool,
    /// The domain key's fingerprint, when it holds one.
    pub domain_key_fingerprint: Option<String>,
    /// The identity fingerprint.
    pub identity_fingerprint: String,
    /// The host port.
    pub host: HostStatus,
    /// On a primary: its members.
    pub members: Vec<MemberStatus>,
    /// On a member: its primary's node id and address.
    pub primary: Option<MemberStatus>,
    /// Imported client certificates.
    pub client_certificates: Vec<CertificateInfo>,
    /// The server certificate, once imported.
    pub server_certificate: Option<CertificateInfo>,
}

/// Why an officer frame could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// The stream failed.
    #[error("officer channel: {0}")]
    Io(#[from] std::io::Error),
    /// A frame over [`MAX_OFFICER_FRAME`].
    #[error("officer channel: frame of {0} bytes is over the limit")]
    TooLarge(usize),
    /// A frame that is not the expected JSON.
    #[error("officer channel: malformed message: {0}")]
    Malformed(String),
}

/// Writes one JSON frame.
///
/// # Errors
/// [`ChannelError`].
pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(
    writer: &mut W,
    message: &T,
) -> Result<(), ChannelError> {
    let body = Zeroizing::new(
        serde_json::to_vec(message).map_err(|e| ChannelError::Malformed(e.to_string()))?,
    );
    if body.len() > MAX_OFFICER_FRAME {
        return Err(ChannelError::TooLarge(body.len()));
    }
    let len = u32::try_from(body.len()).map_err(|_| ChannelError::TooLarge(body.len()))?;
    let mut frame = Zeroizing::new(Vec::with_capacity(body.len() + 4));
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    writer.write_all(&frame).await?;
    writer.flush().await?;
    Ok(())
}

/// Reads one JSON frame; `Ok(None)` at a clean end of stream.
///
/// # Errors
/// [`ChannelError`].
pub async fn read_frame<R: AsyncRead + Unpin, T: for<'de> Deserialize<'de>>(
    reader: &mut R,
) -> Result<Option<T>, ChannelError> {
    let mut header = [0u8; 4];
    match reader.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = usize::try_from(u32::from_be_bytes(header)).unwrap_or(usize::MAX);
    if len > MAX_OFFICER_FRAME {
        return Err(ChannelError::TooLarge(len));
    }
    let mut body = Zeroizing::new(vec![0u8; len]);
    reader.read_exact(&mut body).await?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| ChannelError::Malformed(e.to_string()))
}

/// Describes a DER certificate for status output.
pub fn describe(der: &[u8]) -> CertificateInfo {
    let fingerprint = hex::encode(strongroom_crypto::hash::sha256(der));
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => CertificateInfo {
            fingerprint,
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            not_after: cert
                .validity()
                .not_after
                .to_rfc2822()
                .unwrap_or_else(|_| cert.validity().not_after.to_string()),
        },
        Err(_) => CertificateInfo {
            fingerprint,
            subject: "(unparsable certificate)".to_owned(),
            issuer: String::new(),
            not_after: String::new(),
        },
    }
}

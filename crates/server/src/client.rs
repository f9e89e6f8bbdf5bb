//! The management API's client (`docs/management-api.md`): one signed RPC call per
//! [`ManagementClient::call`], over HTTPS that trusts only the deployment's management CA
//! file, or plain HTTP on loopback. This is what `strongroom instance …`, `hsm-cluster …`,
//! `vpc …` and `access-key …` use.
//!
//! Requests are what the official SDKs send: `POST /` with the parameters in an
//! `application/x-www-form-urlencoded` body, signed with ACS3-HMAC-SHA256 (the Tea SDK's
//! headers; the default) or v1 HMAC-SHA1 (every parameter in the body). A new connection
//! is made for each call.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::Request;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use serde_json::Value;
use strongroom_proto::openapi::{self, API_VERSION};
use time::OffsetDateTime;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use zeroize::Zeroizing;

/// Default time a whole call (connect, TLS, request, answer) may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer read.
const MAX_ANSWER: usize = 16 * 1024 * 1024;
const FORM: &str = "application/x-www-form-urlencoded";
const USER_AGENT: &str = concat!("strongroom/", env!("CARGO_PKG_VERSION"));

/// An administrator access key.
#[derive(Clone)]
pub struct Credentials {
    /// The AccessKey id.
    pub access_key_id: String,
    /// The AccessKey secret.
    pub access_key_secret: Zeroizing<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<redacted>")
            .finish()
    }
}

/// How to reach the management API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// HTTPS, trusting only the PEM certificates in `ca_file` (the deployment's
    /// `management-ca.pem`); the server's name is `server_name` or the endpoint's host.
    Https {
        /// The management CA file.
        ca_file: PathBuf,
        /// The name to check the server's certificate against.
        server_name: Option<String>,
    },
    /// Plain HTTP (the server allows it only on loopback).
    InsecureHttp,
}

/// Which signature the client sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SignatureScheme {
    /// ACS3-HMAC-SHA256 in the `Authorization` header (SDK 2.0's default).
    #[default]
    Acs3,
    /// v1 HMAC-SHA1 in the parameters (the classic SDKs, the cloud CLI).
    V1,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error.
    #[error("{code}: {message} (HTTP {status}, request {request_id})")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The cloud's error code, e.g. `Forbidden.DKMSInstanceNotFound`.
        code: String,
        /// The server's message.
        message: String,
        /// The request id, for the server's log.
        request_id: String,
    },
    /// The server could not be reached, or answered something that is not the API's.
    #[error("transport: {0}")]
    Transport(String),
    /// The client's own configuration (endpoint, CA file) is unusable.
    #[error("{0}")]
    Config(String),
}

/// A client of one KMS node's management API. Cheap to clone.
#[derive(Clone)]
pub struct ManagementClient {
    /// `host:port` as given, sent as the `Host` header.
    endpoint: String,
    host: String,
    port: u16,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    credentials: Arc<Credentials>,
    scheme: SignatureScheme,
    timeout: Duration,
}

impl fmt::Debug for ManagementClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagementClient")
            .field("endpoint", &self.endpoint)
            .field("https", &self.tls.is_some())
            .field(
                "server_name",
                &self.tls.as_ref().map(|(_, name)| name.to_str()),
            )
            .field("access_key_id", &self.credentials.access_key_id)
            .field("scheme", &self.scheme)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl ManagementClient {
    /// A client of the node at `endpoint` (`host:port`, `[v6]:port`).
    ///
    /// # Errors
    /// [`ClientError::Config`] for a malformed endpoint, an unreadable CA file or one
    /// without certificates, or a bad server name.
    pub fn new(
        endpoint: &str,
        transport: Transport,
        credentials: Credentials,
    ) -> Result<Self, ClientError> {
        let (host, port) = split_endpoint(endpoint)?;
        let tls = match transport {
            Transport::InsecureHttp => None,
            Transport::Https {
                ca_file,
                server_name,
            } => {
                let pem = std::fs::read(&ca_file).map_err(|e| {
                    ClientError::Config(format!("CA file {}: {e}", ca_file.display()))
                })?;
                let certificates =
                    strongroom_certs::pki::certificates_from_pem(&pem).map_err(|e| {
                        ClientError::Config(format!("CA file {}: {e}", ca_file.display()))
                    })?;
                if certificates.is_empty() {
                    return Err(ClientError::Config(format!(
                        "CA file {} holds no certificate",
                        ca_file.display()
                    )));
                }
                let mut roots = RootCertStore::empty();
                for certificate in certificates {
                    roots.add(certificate).map_err(|e| {
                        ClientError::Config(format!("CA file {}: {e}", ca_file.display()))
                    })?;
                }
                let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
                let mut config = ClientConfig::builder_with_provider(provider)
                    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
                    .map_err(|e| ClientError::Config(format!("TLS: {e}")))?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                let name = server_name.unwrap_or_else(|| host.clone());
                let name = ServerName::try_from(name.clone()).map_err(|_| {
                    ClientError::Config(format!("{name:?} is not a valid server name"))
                })?;
                Some((TlsConnector::from(Arc::new(config)), name))
            }
        };
        Ok(Self {
            endpoint: endpoint.to_owned(),
            host,
            port,
            tls,
            credentials: Arc::new(credentials),
            scheme: SignatureScheme::default(),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The same client signing with `scheme`.
    #[must_use]
    pub fn with_scheme(mut self, scheme: SignatureScheme) -> Self {
        self.scheme = scheme;
        self
    }

    /// The same client allowing `timeout` per call.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Calls `action` with `params` and returns the JSON object of a 2xx answer.
    ///
    /// # Errors
    /// [`ClientError::Api`] for an error answer; [`ClientError::Transport`] when the node
    /// cannot be reached in time or answers something that is not a JSON object.
    pub async fn call(&self, action: &str, params: &[(&str, &str)]) -> Result<Value, ClientError> {
        let request = self.request(action, params)?;
        let (status, body) = tokio::time::timeout(self.timeout, self.exchange(request))
            .await
            .map_err(|_| {
                ClientError::Transport(format!(
                    "{} did not answer within {} s",
                    self.endpoint,
                    self.timeout.as_secs()
                ))
            })??;
        interpret(status, &body)
    }

    /// The signed request.
    fn request(
        &self,
        action: &str,
        params: &[(&str, &str)],
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        let timestamp = iso8601(OffsetDateTime::now_utc());
        let nonce = nonce()?;
        let secret = self.credentials.access_key_secret.as_bytes();
        let id = self.credentials.access_key_id.as_str();
        let builder = Request::post("/")
            .header(HOST, &self.endpoint)
            .header(CONTENT_TYPE, FORM)
            .header("accept", "application/json")
            .header("user-agent", USER_AGENT);
        let (builder, body) = match self.scheme {
            SignatureScheme::Acs3 => {
                let body = openapi::form_encode(params.iter().map(|(n, v)| (*n, *v)));
                let hash = openapi::content_sha256(body.as_bytes());
                let signed: [(&str, &str); 7] = [
                    ("host", self.endpoint.as_str()),
                    ("x-acs-action", action),
                    ("x-acs-version", API_VERSION),
                    ("x-acs-date", timestamp.as_str()),
                    ("x-acs-signature-nonce", nonce.as_str()),
                    ("x-acs-content-sha256", hash.as_str()),
                    ("content-type", FORM),
                ];
                let authorization = openapi::sign_acs3("POST", "/", &[], &signed, id, secret);
                let mut builder = builder;
                for (name, value) in signed {
                    if name != "host" && name != "content-type" {
                        builder = builder.header(name, value);
                    }
                }
                (builder.header("authorization", authorization), body)
            }
            SignatureScheme::V1 => {
                let mut all: Vec<(String, String)> = params
                    .iter()
                    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                    .collect();
                for (name, value) in [
                    ("Action", action),
                    ("Version", API_VERSION),
                    ("Format", "JSON"),
                    ("AccessKeyId", id),
                    ("Timestamp", timestamp.as_str()),
                    ("SignatureMethod", "HMAC-SHA1"),
                    ("SignatureVersion", "1.0"),
                    ("SignatureNonce", nonce.as_str()),
                ] {
                    all.push((name.to_owned(), value.to_owned()));
                }
                let signature = openapi::sign_v1("POST", &all, secret);
                all.push(("Signature".to_owned(), signature));
                let body = openapi::form_encode(all.iter().map(|(n, v)| (n.as_str(), v.as_str())));
                (builder, body)
            }
        };
        builder
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Config(format!("building the request: {e}")))
    }

    /// Connects, sends `request`, and reads the answer's status and body.
    async fn exchange(&self, request: Request<Full<Bytes>>) -> Result<(u16, Bytes), ClientError> {
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| ClientError::Transport(format!("connecting to {}: {e}", self.endpoint)))?;
        let _ = stream.set_nodelay(true);
        match &self.tls {
            None => send(TokioIo::new(stream), request).await,
            Some((connector, name)) => {
                let tls = connector.connect(name.clone(), stream).await.map_err(|e| {
                    ClientError::Transport(format!("TLS with {}: {e}", self.endpoint))
                })?;
                send(TokioIo::new(tls), request).await
            }
        }
    }
}

/// One request on a fresh HTTP/1.1 connection.
async fn send<I>(io: I, request: Request<Full<Bytes>>) -> Result<(u16, Bytes), ClientError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let transport = |e: hyper::Error| ClientError::Transport(format!("HTTP: {e}"));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(transport)?;
    let driver = tokio::spawn(connection);
    let outcome = async {
        let response = sender.send_request(request).await.map_err(transport)?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| ClientError::Transport(format!("reading the answer: {e}")))?
            .to_bytes();
        Ok((status, body))
    }
    .await;
    driver.abort();
    outcome
}

/// A 2xx answer's JSON object, or the error it carries.
fn interpret(status: u16, body: &[u8]) -> Result<Value, ClientError> {
    let object = match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => value,
        _ => {
            return Err(ClientError::Transport(format!(
                "HTTP {status}: the answer is not a JSON object"
            )));
        }
    };
    if (200..300).contains(&status) {
        return Ok(object);
    }
    let text = |name: &str| {
        object
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let code = text("Code");
    Err(ClientError::Api {
        status,
        code: if code.is_empty() {
            format!("HTTP{status}")
        } else {
            code
        },
        message: text("Message"),
        request_id: text("RequestId"),
    })
}

/// `host:port` or `[v6]:port` into its parts.
fn split_endpoint(endpoint: &str) -> Result<(String, u16), ClientError> {
    let bad = || {
        ClientError::Config(format!(
            "endpoint {endpoint:?} is not HOST:PORT (for example 127.0.0.1:8443)"
        ))
    };
    let (host, port) = endpoint.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = match host.strip_prefix('[') {
        Some(inner) => {
            let inner = inner.strip_suffix(']').ok_or_else(bad)?;
            inner.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
            inner
        }
        None if host.contains(':') => return Err(bad()),
        None => host,
    };
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    // An IPv6 host is kept unbracketed: that is what connecting and the server name need.
    Ok((host.to_owned(), port))
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
fn iso8601(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A random signature nonce.
fn nonce() -> Result<String, ClientError> {
    let mut bytes = [0u8; 16];
    strongroom_crypto::random::fill(&mut bytes)
        .map_err(|e| ClientError::Transport(format!("random nonce: {e}")))?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests;

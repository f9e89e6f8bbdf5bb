//! The management listener: HTTP/1.1 over TLS (or plain HTTP on loopback when asked),
//! one hyper connection task per client, bounded bodies and header-read time, JSON in
//! the cloud's response and error shapes.
//!
//! Also the limits every listener of the node shares ([`Sources`] and the
//! constants below; `docs/kms-node.md`, "Limits"): what a slow or flooding client can
//! hold is bounded by the global and per-source connection caps, and each connection
//! by the handshake, header (which hyper restarts for every request, so it is also the
//! idle keep-alive timeout), body and write ([`crate::stall`]) timeouts.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::Value;
use strongroom_proto::openapi::{self, API_VERSION, RequestView, Scheme};
use strongroom_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, info, warn};

pub use strongroom_hsm::sources::{SourceSlot, Sources};

use crate::api::{self, Call, Params};
use crate::app::{App, request_id};
use crate::auth;
use crate::error::ApiError;
use crate::stall::WriteDeadline;

/// Largest request body of the management API (an instance endpoint's is
/// [`strongroom_proto::instance::MAX_BODY_LEN`], 3 MiB).
pub const MAX_BODY: usize = 1024 * 1024;
/// Default time a client has to send a request's headers (`[limits]
/// header_timeout_secs`). hyper starts the timer whenever it waits for a request head,
/// so it bounds the first request, every later one on a kept-alive connection, a head
/// sent a byte at a time, and a connection left idle between requests.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(15);
/// Default time a client has to finish the TLS handshake (`handshake_timeout_secs`):
/// a connection that opens TCP and never says hello is closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// Default time a client has to send its whole body, from the end of its headers
/// (`body_timeout_secs`): a body dripped a byte every few seconds is cut off, answered
/// with an error and the connection closed.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Most connections one listener serves at once; further ones are closed on accept.
pub const MAX_CONNECTIONS: usize = 1024;
/// Default most connections one source address may hold on one listener
/// (`connections_per_source`), so that one host cannot take all [`MAX_CONNECTIONS`]: a
/// quarter of them, room for an application server's connection pool.
pub const CONNECTIONS_PER_SOURCE: usize = 256;
/// Default time a write to a client may wait without progress (`write_timeout_secs`):
/// a client that sends requests and never reads the answers is cut off.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest buffer hyper keeps for a connection (request line and headers included).
pub const MAX_BUF: usize = 64 * 1024;

/// The HTTP/1.1 server side every listener uses: `header_timeout` for each request
/// head, bounded buffers.
pub fn http1(header_timeout: Duration) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(MAX_BUF);
    builder
}

/// Accepts connections until `shutdown` turns true.
pub async fn serve<S: Store + Clone>(
    app: Arc<App<S>>,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let sources = Arc::new(Sources::default());
    let limits = app.config.limits.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            debug!(%peer, "connection limit reached; closing");
            continue;
        };
        let Some(slot) = sources.admit(peer.ip(), limits.connections_per_source) else {
            debug!(%peer, "connection limit of the source address reached; closing");
            continue;
        };
        let app = Arc::clone(&app);
        let acceptor = acceptor.clone();
        let (handshake_timeout, write_timeout) = (limits.handshake_timeout, limits.write_timeout);
        tokio::spawn(async move {
            let _held = (permit, slot);
            let _ = stream.set_nodelay(true);
            let stream = WriteDeadline::new(stream, write_timeout);
            match acceptor {
                Some(acceptor) => {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => connection(app, TokioIo::new(tls), peer).await,
                        Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                }
                None => connection(app, TokioIo::new(stream), peer).await,
            }
        });
    }
}

async fn connection<S, I>(app: Arc<App<S>>, io: I, peer: SocketAddr)
where
    S: Store + Clone,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let header_timeout = app.config.limits.header_timeout;
    let service = hyper::service::service_fn(move |req| {
        let app = Arc::clone(&app);
        async move { Ok::<_, Infallible>(handle(&app, req, peer).await) }
    });
    if let Err(e) = http1(header_timeout).serve_connection(io, service).await {
        debug!(%peer, error = %e, "connection ended with an error");
    }
}

async fn handle<S: Store + Clone>(
    app: &Arc<App<S>>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let id = request_id();
    let (action, trail, outcome) = process(app, req).await;
    let elapsed_ms = started.elapsed().as_millis();
    app.metrics.observe(
        crate::metrics::Surface::Management,
        &action,
        outcome.as_ref().map_or_else(|e| e.code(), |_| "OK"),
        started.elapsed(),
    );
    app.audit.record(crate::audit::Event {
        request_id: id.clone(),
        caller: trail.caller,
        source: peer.ip().to_string(),
        action: action.clone(),
        resource: trail.resource,
        result: outcome
            .as_ref()
            .map_or_else(|e| e.code().to_owned(), |_| "OK".to_owned()),
    });
    let (status, mut body) = match outcome {
        Ok(answer) => {
            info!(request_id = %id, %peer, %action, elapsed_ms, "ok");
            (200, answer)
        }
        Err(e) => {
            let status = e.status();
            if status >= 500 {
                warn!(request_id = %id, %peer, %action, code = e.code(), error = %e, "failed");
            } else {
                info!(request_id = %id, %peer, %action, code = e.code(), "refused");
            }
            (status, error_body(&e, &app.host_id))
        }
    };
    body.insert("RequestId".into(), Value::from(id));
    json_response(status, &Value::Object(body))
}

fn error_body(e: &ApiError, host_id: &str) -> api::Answer {
    api::answer([
        ("HostId", Value::from(host_id)),
        ("Code", Value::from(e.code())),
        ("Message", Value::from(e.to_string())),
        ("Recommend", Value::from("")),
    ])
}

fn json_response(status: u16, body: &Value) -> Response<Full<Bytes>> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    response
}

/// Parameters that name what an action is about, in the order looked for (the audit
/// log's `resource`).
const RESOURCE_PARAMS: &[&str] = &[
    "KeyId",
    "AliasName",
    "ClientKeyId",
    "AapName",
    "Name",
    "KmsInstanceId",
    "DKMSInstanceId",
    "HsmClusterId",
    "VpcId",
    "AccessKeyId",
    "SecretName",
];

/// The first parameter of [`RESOURCE_PARAMS`] present.
fn resource_of(params: &[(String, String)]) -> String {
    RESOURCE_PARAMS
        .iter()
        .find_map(|name| {
            params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        })
        .unwrap_or_default()
}

/// Who asked, and about what (for the audit log).
#[derive(Debug, Default)]
struct Trail {
    caller: String,
    resource: String,
}

/// The action name (for the log), who asked about what, and the outcome.
async fn process<S: Store + Clone>(
    app: &Arc<App<S>>,
    req: Request<Incoming>,
) -> (String, Trail, Result<api::Answer, ApiError>) {
    let (parts, body) = req.into_parts();
    let mut action = String::new();
    let mut trail = Trail::default();
    let outcome = async {
        if parts.method != hyper::Method::POST && parts.method != hyper::Method::GET {
            return Err(ApiError::invalid(
                "method",
                format!("{} is not allowed; use POST or GET", parts.method),
            ));
        }
        let body_timeout = app.config.limits.body_timeout;
        let body = match tokio::time::timeout(body_timeout, Limited::new(body, MAX_BODY).collect())
            .await
        {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(ApiError::TooLarge(MAX_BODY));
            }
            Ok(Err(e)) => return Err(ApiError::invalid("body", e.to_string())),
            Err(_) => return Err(ApiError::invalid("body", "not received in time")),
        };
        let mut headers = Vec::with_capacity(parts.headers.len());
        for (name, value) in &parts.headers {
            let value = value.to_str().map_err(|_| {
                ApiError::invalid(name.as_str(), "header value is not visible ASCII")
            })?;
            headers.push((name.as_str(), value));
        }
        let view = RequestView {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            headers: &headers,
            body: &body,
        };
        let signed = openapi::parse(&view)?;
        action.clone_from(&signed.action);
        trail.caller.clone_from(&signed.access_key_id);
        trail.resource = resource_of(&signed.params);
        auth::authenticate(app, &signed).await?;
        if signed.version != API_VERSION {
            return Err(ApiError::InvalidVersion(signed.version.clone()));
        }
        let mut params = signed.params.clone();
        let form = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.trim_start()
                    .starts_with("application/x-www-form-urlencoded")
            });
        if signed.scheme == Scheme::Acs3HmacSha256 && form && !body.is_empty() {
            let text = std::str::from_utf8(&body)
                .map_err(|_| ApiError::invalid("body", "form body is not UTF-8"))?;
            params.extend(openapi::decode_form(text)?);
        }
        if signed.action.is_empty() {
            return Err(ApiError::MissingParameter("Action".into()));
        }
        trail.resource = resource_of(&params);
        let call = Call {
            action: signed.action.clone(),
            params: Params(params),
            access_key_id: signed.access_key_id.clone(),
        };
        api::dispatch(app, &call).await
    }
    .await;
    if action.is_empty() {
        action = "-".to_owned();
    }
    (action, trail, outcome)
}

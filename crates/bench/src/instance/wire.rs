//! The wire: signing requests as the SDKs do (§3–§4), the TLS client, keep-alive
//! HTTP/1.1 connections, and reading one answer.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::thread;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use prost::Message as _;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use strongroom_certs::client_key::LoadedClientKey;
use strongroom_proto::dkms;
use strongroom_proto::instance::{API_NAME_HEADER, API_VERSION_HEADER, SIGNATURE_METHOD_HEADER};
use strongroom_proto::signature::{
    ACCESS_KEY_ID_HEADER, API_VERSION, CONTENT_TYPE, RequestSigner, SIGNATURE_METHOD,
    content_sha256, string_to_sign,
};
use time::OffsetDateTime;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

use super::InstanceApi;

/// Largest answer read (the largest request is 3 MiB; answers are smaller).
const MAX_ANSWER: usize = 4 << 20;
/// The `user-agent` sent (informational only, as the SDKs' is).
const USER_AGENT: &str = concat!("strongroom-bench/", env!("CARGO_PKG_VERSION"));

/// What signs: the client key id, its private key, and the `host` value.
#[derive(Debug)]
pub(super) struct Signer {
    key_id: String,
    private_key: RequestSigner,
    host: HeaderValue,
}

impl Signer {
    pub(super) fn new(key: LoadedClientKey, endpoint: &str) -> Result<Self, String> {
        HeaderValue::from_str(&key.key_id)
            .map_err(|_| "the client key id cannot be sent as a header".to_owned())?;
        let host = HeaderValue::from_str(endpoint)
            .map_err(|_| format!("endpoint {endpoint:?} cannot be sent as a host header"))?;
        let private_key = RequestSigner::new(&key.private_key)
            .map_err(|e| format!("the client key cannot sign: {e}"))?;
        Ok(Self {
            key_id: key.key_id,
            private_key,
            host,
        })
    }

    /// Signs one request now (its `date` is this second).
    fn sign(&self, api: InstanceApi, body: Vec<u8>) -> Result<Prepared, String> {
        let date = rfc1123(OffsetDateTime::now_utc());
        let digest = content_sha256(&body);
        let signed: [(&str, &str); 7] = [
            ("date", &date),
            (API_VERSION_HEADER, API_VERSION),
            (API_NAME_HEADER, api.as_str()),
            (SIGNATURE_METHOD_HEADER, SIGNATURE_METHOD),
            (ACCESS_KEY_ID_HEADER, &self.key_id),
            ("content-type", CONTENT_TYPE),
            ("content-sha256", &digest),
        ];
        let text = string_to_sign("POST", signed).map_err(|e| e.to_string())?;
        let authorization = self
            .private_key
            .sign(&text)
            .map_err(|e| format!("signing with the client key: {e}"))?;
        let mut headers = HeaderMap::with_capacity(12);
        headers.insert(hyper::header::HOST, self.host.clone());
        headers.insert(
            hyper::header::ACCEPT,
            HeaderValue::from_static(CONTENT_TYPE),
        );
        headers.insert(
            hyper::header::USER_AGENT,
            HeaderValue::from_static(USER_AGENT),
        );
        for (name, value) in signed
            .into_iter()
            .chain([("authorization", authorization.as_str())])
        {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
            let value = HeaderValue::from_str(value).map_err(|e| e.to_string())?;
            headers.insert(name, value);
        }
        Ok(Prepared {
            headers,
            body: Bytes::from(body),
        })
    }
}

/// Signs every body on every core, keeping the order.
pub(super) fn sign_all(
    signer: &Signer,
    api: InstanceApi,
    bodies: Vec<Vec<u8>>,
) -> Result<Vec<Prepared>, String> {
    let threads = thread::available_parallelism().map_or(1, usize::from);
    let chunk = bodies.len().div_ceil(threads).max(1);
    let mut chunks: Vec<Vec<Vec<u8>>> = Vec::with_capacity(threads);
    let mut rest = bodies.into_iter();
    loop {
        let part: Vec<Vec<u8>> = rest.by_ref().take(chunk).collect();
        if part.is_empty() {
            break;
        }
        chunks.push(part);
    }
    let results: Vec<Result<Vec<Prepared>, String>> = thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|part| {
                scope.spawn(move || {
                    part.into_iter()
                        .map(|body| signer.sign(api, body))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err("a signing thread panicked".to_owned()))
            })
            .collect()
    });
    let mut out = Vec::new();
    for part in results {
        out.append(&mut part?);
    }
    Ok(out)
}

/// One signed request, to be sent any number of times.
#[derive(Debug)]
pub(super) struct Prepared {
    headers: HeaderMap,
    body: Bytes,
}

impl Prepared {
    /// The body as sent.
    pub(super) fn body(&self) -> &[u8] {
        &self.body
    }

    fn request(&self) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = Uri::from_static("/");
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// Where to connect and whom to trust.
pub(super) struct Endpoint {
    host: String,
    port: u16,
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Parses `endpoint` (`host`, `host:port`, `[v6]:port`), reads `ca_file` (every
    /// certificate a root) and checks `server_name` (default: the host).
    pub(super) fn new(
        endpoint: &str,
        ca_file: &Path,
        server_name: Option<&str>,
    ) -> Result<Self, String> {
        let (host, port) = split_endpoint(endpoint)?;
        let pem =
            std::fs::read(ca_file).map_err(|e| format!("CA file {}: {e}", ca_file.display()))?;
        let certificates = strongroom_certs::pki::certificates_from_pem(&pem)
            .map_err(|e| format!("CA file {}: {e}", ca_file.display()))?;
        if certificates.is_empty() {
            return Err(format!(
                "CA file {} holds no certificate",
                ca_file.display()
            ));
        }
        let mut roots = RootCertStore::empty();
        for certificate in certificates {
            roots
                .add(certificate)
                .map_err(|e| format!("CA file {}: {e}", ca_file.display()))?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("TLS: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let name = server_name.unwrap_or(&host).to_owned();
        let server_name = ServerName::try_from(name.clone())
            .map_err(|_| format!("{name:?} is not a valid server name"))?;
        Ok(Self {
            host,
            port,
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }

    /// Opens one TLS connection and starts HTTP/1.1 on it.
    pub(super) async fn connect(&self) -> Result<Connection, String> {
        let address = format!("{}:{}", self.host, self.port);
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("connecting to {address}: {e}"))?;
        // Latency matters more than packet count here.
        let _ = stream.set_nodelay(true);
        let tls = self
            .connector
            .connect(self.server_name.clone(), stream)
            .await
            .map_err(|e| format!("TLS with {address}: {e}"))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| format!("HTTP/1.1 with {address}: {e}"))?;
        let driver = tokio::spawn(async move {
            // The connection's end shows up as an error of the next request.
            let _ = connection.await;
        });
        Ok(Connection { sender, driver })
    }
}

/// One keep-alive connection; the task driving it ends when it is dropped.
#[derive(Debug)]
pub(super) struct Connection {
    sender: SendRequest<Full<Bytes>>,
    driver: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// How one request ended.
#[derive(Debug)]
pub(super) enum Outcome {
    /// A success answer (any status below 400, as the SDKs read it) and its body.
    Answered(Bytes),
    /// An error answer: its `ErrorCode` (or `HTTP <status>` when the body carries
    /// none) and `ErrorMessage`.
    Refused { code: String, message: String },
    /// No answer: the connection failed. The connection must be reopened.
    Failed(String),
}

impl Connection {
    /// Sends `request` and reads the whole answer.
    pub(super) async fn exchange(&mut self, request: &Prepared) -> Outcome {
        if let Err(e) = self.sender.ready().await {
            return Outcome::Failed(e.to_string());
        }
        let response = match self.sender.send_request(request.request()).await {
            Ok(response) => response,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let status = response.status();
        let body = match Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        if !(status.is_client_error() || status.is_server_error()) {
            return Outcome::Answered(body);
        }
        let error = dkms::Error::decode(body).unwrap_or_default();
        let code = if error.error_code.is_empty() {
            format!("HTTP {}", status.as_u16())
        } else {
            error.error_code
        };
        Outcome::Refused {
            code,
            message: error.error_message,
        }
    }
}

/// `host:port`, `[v6]:port` or a bare host (port 443) into host and port.
pub(super) fn split_endpoint(endpoint: &str) -> Result<(String, u16), String> {
    let bad = || format!("endpoint {endpoint:?} is not HOST or HOST:PORT");
    if let Some(rest) = endpoint.strip_prefix('[') {
        let (inner, after) = rest.split_once(']').ok_or_else(bad)?;
        inner.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        let port = match after {
            "" => 443,
            _ => after
                .strip_prefix(':')
                .and_then(|p| p.parse().ok())
                .ok_or_else(bad)?,
        };
        return (port != 0)
            .then(|| (inner.to_owned(), port))
            .ok_or_else(bad);
    }
    if endpoint.parse::<IpAddr>().is_ok() {
        // A bare IPv6 literal: no port.
        return Ok((endpoint.to_owned(), 443));
    }
    let (host, port) = match endpoint.rsplit_once(':') {
        Some((host, port)) => (host, port.parse::<u16>().map_err(|_| bad())?),
        None => (endpoint, 443),
    };
    if host.is_empty() || port == 0 || host.contains(['/', '@', ' ', ':']) {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

/// RFC 1123 in GMT with English names, as every SDK writes `date`:
/// `Sat, 28 Nov 2026 10:18:56 GMT`.
pub(super) fn rfc1123(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let weekday = match t.weekday() {
        time::Weekday::Monday => "Mon",
        time::Weekday::Tuesday => "Tue",
        time::Weekday::Wednesday => "Wed",
        time::Weekday::Thursday => "Thu",
        time::Weekday::Friday => "Fri",
        time::Weekday::Saturday => "Sat",
        time::Weekday::Sunday => "Sun",
    };
    let month = match t.month() {
        time::Month::January => "Jan",
        time::Month::February => "Feb",
        time::Month::March => "Mar",
        time::Month::April => "Apr",
        time::Month::May => "May",
        time::Month::June => "Jun",
        time::Month::July => "Jul",
        time::Month::August => "Aug",
        time::Month::September => "Sep",
        time::Month::October => "Oct",
        time::Month::November => "Nov",
        time::Month::December => "Dec",
    };
    format!(
        "{weekday}, {:02} {month} {:04} {:02}:{:02}:{:02} GMT",
        t.day(),
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_the_sdks() {
        let t = OffsetDateTime::from_unix_timestamp(1_795_861_164).unwrap();
        assert_eq!(rfc1123(t), "Sat, 28 Nov 2026 10:19:24 GMT");
        let t = OffsetDateTime::from_unix_timestamp(1_775_000_000).unwrap();
        assert_eq!(rfc1123(t), "Tue, 31 Mar 2026 23:33:20 GMT");
    }

    #[test]
    fn endpoints_split_like_the_sdks() {
        assert_eq!(
            split_endpoint("kst-abc.cryptoservice.kms.aliyuncs.com"),
            Ok(("kst-abc.cryptoservice.kms.aliyuncs.com".to_owned(), 443))
        );
        assert_eq!(
            split_endpoint("127.0.0.1:18443"),
            Ok(("127.0.0.1".to_owned(), 18443))
        );
        assert_eq!(split_endpoint("[::1]:8443"), Ok(("::1".to_owned(), 8443)));
        assert_eq!(split_endpoint("[::1]"), Ok(("::1".to_owned(), 443)));
        assert_eq!(split_endpoint("::1"), Ok(("::1".to_owned(), 443)));
        for bad in [
            "", ":443", "host:0", "host:x", "[::1", "[nope]:1", "a/b:1", "h:1:2",
        ] {
            assert!(split_endpoint(bad).is_err(), "{bad}");
        }
    }
}

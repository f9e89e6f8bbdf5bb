//! Abuse of the listeners (`docs/kms-node.md`, "Limits"): slow and flooding clients are
//! capped per source address and cut off by the handshake, header (every request, and
//! idle keep-alive), body and write timeouts while other clients are served; requests
//! that fail authentication spend no instance's quota, and a source that keeps failing is
//! refused unchecked. Malformed requests are in `malformed.rs`.
//!
//! The timeouts are shortened through `Config::limits`, so that nothing here sleeps for
//! the production values.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use strongroom_server::Config;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

use crate::instance_wire::{encrypt_body, set};
use crate::support::{self, Hsms};
use crate::support_instance::{
    self as wire, Access, connect, exchange, http_request, signed_headers,
};

/// Connections one source may hold in these tests.
const CAP: usize = 5;
/// The handshake, header, body and write timeouts of these tests.
const SHORT: Duration = Duration::from_secs(3);
/// How long a slow connection may live at most: its timeout plus slack for a busy machine.
const CUT_OFF_WITHIN: Duration = Duration::from_secs(8);
/// The address the slow clients use.
const SLOW: [u8; 4] = [127, 0, 0, 1];
/// Another loopback address (Linux routes all of 127/8 to `lo`): a different source.
const OTHER: [u8; 4] = [127, 0, 0, 2];

fn short_limits(config: &mut Config) {
    config.limits.connections_per_source = CAP;
    config.limits.handshake_timeout = SHORT;
    config.limits.header_timeout = SHORT;
    config.limits.body_timeout = SHORT;
    config.limits.write_timeout = SHORT;
}

/// TCP to `127.0.0.1:port` from `source`.
async fn tcp_from(source: [u8; 4], port: u16) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap()
}

/// TCP to `127.0.0.1:port` from `source` with a small receive buffer, so that a client
/// not reading fills it soon.
async fn tcp_small_window(source: [u8; 4], port: u16) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap()
}

/// Reads until the peer closes (end of stream or an error); what was read, or `None` if
/// it is still open after `limit`.
async fn closed_within<S: AsyncRead + Unpin>(stream: &mut S, limit: Duration) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(limit, read).await.ok()?;
    Some(seen)
}

/// Writes `head`, then one more byte of `drip` every 200 ms until the write fails.
fn drip<W: AsyncWrite + Unpin + Send + 'static>(
    mut writer: W,
    head: Vec<u8>,
    drip: u8,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if writer.write_all(&head).await.is_err() {
            return;
        }
        let _ = writer.flush().await;
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if writer.write_all(&[drip]).await.is_err() || writer.flush().await.is_err() {
                return;
            }
        }
    })
}

/// The reading half of a TLS client connection.
type TlsReader = tokio::io::ReadHalf<tokio_rustls::client::TlsStream<TcpStream>>;

/// A slow client, open and holding one of the source's places.
enum Loris {
    /// TCP, never a TLS hello.
    NoHandshake(TcpStream),
    /// TLS, then a request head dripped a byte at a time, forever.
    DrippedHead(TlsReader, tokio::task::JoinHandle<()>),
    /// TLS, one request answered, then nothing (idle keep-alive).
    Idle(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// TLS, one request answered, then the second request's head dripped.
    DrippedSecondHead(TlsReader, tokio::task::JoinHandle<()>),
    /// TLS, a whole head announcing 1000 bytes of body, the body dripped.
    DrippedBody(TlsReader, tokio::task::JoinHandle<()>),
}

impl Loris {
    fn name(&self) -> &'static str {
        match self {
            Self::NoHandshake(_) => "no TLS handshake",
            Self::DrippedHead(..) => "request head a byte at a time",
            Self::Idle(_) => "idle keep-alive connection",
            Self::DrippedSecondHead(..) => "second request's head a byte at a time",
            Self::DrippedBody(..) => "body a byte at a time",
        }
    }

    /// Waits for the server to close it; what it sent before closing.
    async fn closed(self) -> (&'static str, Option<Vec<u8>>) {
        let name = self.name();
        let seen = match self {
            Self::NoHandshake(mut s) => closed_within(&mut s, CUT_OFF_WITHIN).await,
            Self::Idle(mut s) => closed_within(&mut s, CUT_OFF_WITHIN).await,
            Self::DrippedHead(mut r, writer)
            | Self::DrippedSecondHead(mut r, writer)
            | Self::DrippedBody(mut r, writer) => {
                let seen = closed_within(&mut r, CUT_OFF_WITHIN).await;
                writer.abort();
                seen
            }
        };
        (name, seen)
    }
}

/// A request that gets some answer on either listener (an unsigned GET on the management
/// API, a signed `Encrypt` on an instance endpoint).
type Good<'a> = dyn Fn() -> Vec<u8> + 'a;

/// An unsigned `GET /` of the management API: answered at once, with an error.
fn management_get() -> Vec<u8> {
    b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 0\r\n\r\n".to_vec()
}

/// Opens one slow client of each kind from [`SLOW`] to `port` (TLS checked with `ca_pem`).
async fn open_slow(port: u16, ca_pem: &str, good: &Good<'_>) -> Vec<Loris> {
    let mut slow = vec![Loris::NoHandshake(tcp_from(SLOW, port).await)];
    let tls = wire::tls(tcp_from(SLOW, port).await, ca_pem).await.unwrap();
    let (reader, writer) = tokio::io::split(tls);
    slow.push(Loris::DrippedHead(
        reader,
        drip(writer, b"POST / HTTP/1.1\r\nx-slow: ".to_vec(), b'a'),
    ));
    let mut idle = wire::tls(tcp_from(SLOW, port).await, ca_pem).await.unwrap();
    exchange(&mut idle, &good()).await;
    slow.push(Loris::Idle(Box::new(idle)));
    let mut second = wire::tls(tcp_from(SLOW, port).await, ca_pem).await.unwrap();
    exchange(&mut second, &good()).await;
    let (reader, writer) = tokio::io::split(second);
    slow.push(Loris::DrippedSecondHead(
        reader,
        drip(writer, b"POST / HTTP/1.1\r\nx-slow: ".to_vec(), b'a'),
    ));
    let tls = wire::tls(tcp_from(SLOW, port).await, ca_pem).await.unwrap();
    let (reader, writer) = tokio::io::split(tls);
    let head = b"POST / HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 1000\r\n\r\n".to_vec();
    slow.push(Loris::DrippedBody(reader, drip(writer, head, b'0')));
    assert_eq!(slow.len(), CAP);
    slow
}

/// The cap refuses [`SLOW`] one more connection while [`OTHER`] is served; every slow
/// client is cut off within [`CUT_OFF_WITHIN`]; then [`SLOW`] is served again.
async fn slow_clients_are_capped_and_cut_off(
    port: u16,
    ca_pem: &str,
    good: &Good<'_>,
) -> Vec<(&'static str, Vec<u8>)> {
    let started = Instant::now();
    let slow = open_slow(port, ca_pem, good).await;

    // (a) One more from the same address: closed on accept, so no TLS.
    let refused = wire::tls(tcp_from(SLOW, port).await, ca_pem).await;
    assert!(
        refused.is_err(),
        "a connection over the per-source cap was served"
    );

    // (b) Another address is served meanwhile.
    let mut other = wire::tls(tcp_from(OTHER, port).await, ca_pem)
        .await
        .unwrap();
    let answer = exchange(&mut other, &good()).await;
    assert!(answer.status < 500, "status {}", answer.status);
    drop(other);

    // (c) Every slow client is closed by its timeout.
    let mut outcomes = Vec::new();
    for s in slow {
        let (name, seen) = s.closed().await;
        let seen = seen.unwrap_or_else(|| panic!("{name}: still open after {CUT_OFF_WITHIN:?}"));
        outcomes.push((name, seen));
    }
    assert!(
        started.elapsed() < CUT_OFF_WITHIN + Duration::from_secs(4),
        "the slow clients took {:?} to be cut off",
        started.elapsed()
    );

    served_again(port, ca_pem, good).await;
    outcomes
}

/// [`SLOW`]'s places are free again: it is served within two seconds.
async fn served_again(port: u16, ca_pem: &str, good: &Good<'_>) {
    for _ in 0..20 {
        if let Ok(mut tls) = wire::tls(tcp_from(SLOW, port).await, ca_pem).await {
            let answer = exchange(&mut tls, &good()).await;
            assert!(answer.status < 500, "status {}", answer.status);
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the slow clients' address is still refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_of_the_management_api_are_capped_and_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(&dir.path().join("kms"), None, None);
    short_limits(&mut config);
    let kms = support::kms_with(config).await;
    let ca_pem = std::fs::read_to_string(&kms.ca_file).unwrap();
    let good = management_get;
    let outcomes =
        slow_clients_are_capped_and_cut_off(kms.server.local_addr.port(), &ca_pem, &good).await;
    // The dripped body is answered (an error, in the API's JSON) before the close.
    let (_, body) = outcomes
        .iter()
        .find(|(name, _)| *name == "body a byte at a time")
        .unwrap();
    let text = String::from_utf8_lossy(body);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("not received in time"), "{text}");

    let c = support::client(&kms.server, &kms.access_key_id, &kms.access_key_secret);
    c.call("ListKmsInstances", &[]).await.unwrap();
    kms.server.shutdown().await;
}

/// A client that pipelines requests and never reads an answer holds its connection only
/// until a write to it has waited the write timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_answers_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::config(&dir.path().join("kms"), None, None);
    short_limits(&mut config);
    config.limits.connections_per_source = 1;
    let kms = support::kms_with(config).await;
    let port = kms.server.local_addr.port();
    let ca_pem = std::fs::read_to_string(&kms.ca_file).unwrap();
    let good = management_get;

    let started = Instant::now();
    let tls = wire::tls(tcp_small_window(SLOW, port).await, &ca_pem)
        .await
        .unwrap();
    let (mut reader, mut writer) = tokio::io::split(tls);
    let requests = good().repeat(64);
    let flood = tokio::spawn(async move {
        let mut sent = 0usize;
        while writer.write_all(&requests).await.is_ok() && writer.flush().await.is_ok() {
            sent += 64;
        }
        sent
    });
    // It holds its address's one place meanwhile.
    let refused = wire::tls(tcp_from(SLOW, port).await, &ca_pem).await;
    assert!(refused.is_err(), "a second connection was served");

    let sent = tokio::time::timeout(CUT_OFF_WITHIN * 2, flood)
        .await
        .expect("the server still reads a client that reads nothing")
        .unwrap();
    assert!(sent > 0);
    let seen = closed_within(&mut reader, CUT_OFF_WITHIN)
        .await
        .expect("the connection is still open");
    // What it was sent before the cut-off are answers.
    assert!(seen.starts_with(b"HTTP/1.1 "), "{:?}", seen.get(..40));
    assert!(
        started.elapsed() < CUT_OFF_WITHIN * 2,
        "cut off after {:?}",
        started.elapsed()
    );
    served_again(port, &ca_pem, &good).await;
    kms.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_of_an_instance_endpoint_are_capped_and_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let hsms = Hsms::start(&dir.path().join("hsm")).await;
    let mut config = support::config(&dir.path().join("kms"), None, None);
    short_limits(&mut config);
    let kms = support::kms_with(config).await;
    let c = support::client(&kms.server, &kms.access_key_id, &kms.access_key_secret);
    let a = wire::access(&c, &hsms, &[], "127.0.0.0/8").await;
    let body = encrypt_body(&a.aes);
    let good = || http_request(&signed_headers(&a, "Encrypt", &body), &body);
    let outcomes = slow_clients_are_capped_and_cut_off(a.port, &a.ca_pem, &good).await;
    // The dripped body is answered (the protobuf error the SDKs read) before the close.
    let (_, body) = outcomes
        .iter()
        .find(|(name, _)| *name == "body a byte at a time")
        .unwrap();
    let text = String::from_utf8_lossy(body);
    assert!(text.starts_with("HTTP/1.1 4"), "{text}");
    let mut conn = connect(&a).await;
    assert_eq!(exchange(&mut conn, &good()).await.status, 200);
    kms.server.shutdown().await;
    hsms.primary.shutdown().await;
    hsms.member.shutdown().await;
}

/// TLS to the endpoint from a trusted proxy on loopback, for `client`.
async fn via_proxy(
    a: &Access,
    client: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut tcp = TcpStream::connect(("127.0.0.1", a.port)).await?;
    let header = strongroom_server::instance::proxy::encode(
        client.parse().unwrap(),
        "127.0.0.1:443".parse().unwrap(),
    );
    tcp.write_all(&header).await?;
    wire::tls(tcp, &a.ca_pem).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_client_is_capped_not_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let hsms = Hsms::start(&dir.path().join("hsm")).await;
    let mut config = support::config(&dir.path().join("kms"), None, None);
    config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    config.limits.connections_per_source = 2;
    let kms = support::kms_with(config).await;
    let c = support::client(&kms.server, &kms.access_key_id, &kms.access_key_secret);
    let a = wire::access(&c, &hsms, &[], "10.0.0.0/8").await;

    // Two connections for one client fill its places; a third is closed.
    let _first = via_proxy(&a, "10.1.2.3:5000").await.unwrap();
    let _second = via_proxy(&a, "10.1.2.3:5001").await.unwrap();
    assert!(
        via_proxy(&a, "10.1.2.3:5002").await.is_err(),
        "a third connection of one client behind the proxy was served"
    );
    // The proxy itself (all of these come from 127.0.0.1) is not capped: another client
    // is served.
    let mut other = via_proxy(&a, "10.9.9.9:5000").await.unwrap();
    let body = encrypt_body(&a.aes);
    let answer = exchange(
        &mut other,
        &http_request(&signed_headers(&a, "Encrypt", &body), &body),
    )
    .await;
    assert_eq!(answer.status, 200);
    kms.server.shutdown().await;
    hsms.primary.shutdown().await;
    hsms.member.shutdown().await;
}

/// Sends `requests` (`count` of them, pipelined on one connection from `source`) to the
/// instance endpoint of `a`; each answer's status and error code (empty for 200).
async fn pipelined(
    source: [u8; 4],
    a: &Access,
    requests: Vec<u8>,
    count: usize,
) -> Vec<(u16, String)> {
    let tls = wire::tls(tcp_from(source, a.port).await, &a.ca_pem)
        .await
        .unwrap();
    let (mut reader, mut writer) = tokio::io::split(tls);
    let sending = tokio::spawn(async move {
        writer.write_all(&requests).await.unwrap();
        writer.flush().await.unwrap();
        writer
    });
    let mut answers = Vec::with_capacity(count);
    for _ in 0..count {
        let answer = wire::read_answer(&mut reader).await;
        let code = if answer.status == 200 {
            String::new()
        } else {
            answer.error_code()
        };
        answers.push((answer.status, code));
    }
    drop(sending.await.unwrap());
    answers
}

/// Requests that fail authentication spend none of the instance's quota: after a flood
/// of badly signed requests from one address, more than the instance's Spec, a client at
/// another address is served a second's worth; and past its budget of failed
/// authentications the flooding address is refused without a check, with the code the
/// SDKs retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentications_spend_no_quota() {
    const FORGED: usize = 500;
    // The instance's Spec: a whole second's worth, at once.
    const GOOD: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let hsms = Hsms::start(&dir.path().join("hsm")).await;
    let kms = support::kms(&dir.path().join("kms")).await;
    let c = support::client(&kms.server, &kms.access_key_id, &kms.access_key_secret);
    let a = wire::access(&c, &hsms, &[("Spec", "200")], "127.0.0.0/8").await;
    let body = encrypt_body(&a.aes);

    // Both floods are signed first, so that the second follows the first at once.
    let good: Vec<u8> = (0..GOOD)
        .flat_map(|_| http_request(&signed_headers(&a, "Encrypt", &body), &body))
        .collect();
    let mut forged = Vec::new();
    for _ in 0..FORGED {
        let mut h = signed_headers(&a, "Encrypt", &body);
        set(&mut h, "authorization", "Bearer AAAA");
        forged.extend(http_request(&h, &body));
    }
    let answers = pipelined(SLOW, &a, forged, FORGED).await;
    let count = |status: u16, code: &str| {
        answers
            .iter()
            .filter(|(s, c)| *s == status && c == code)
            .count()
    };
    let (checked, unchecked) = (
        count(401, "SignatureNotMatch"),
        count(429, "Rejected.Throttling"),
    );
    assert_eq!(checked + unchecked, FORGED, "{answers:?}");
    // The budget's burst is checked, then about its rate for as long as the flood lasts.
    assert!(
        checked >= 50 && unchecked > 0,
        "{checked} checked, {unchecked} refused unchecked"
    );

    let answers = pipelined(OTHER, &a, good, GOOD).await;
    let served = answers.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(served, GOOD, "{answers:?}");

    kms.server.shutdown().await;
    hsms.primary.shutdown().await;
    hsms.member.shutdown().await;
}

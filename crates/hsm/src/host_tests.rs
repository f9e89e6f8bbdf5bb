//! The host port against a peer that sends requests and never reads the answers: once
//! its buffers are full the node's write waits, and after `write_timeout` the node
//! closes the connection (before it, at most [`super::MAX_IN_FLIGHT_PER_CONNECTION`]
//! answers wait in the node, after which it stops reading the peer). Other connections
//! are served throughout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use strongroom_crypto::blob::DomainKey;
use strongroom_proto::hsm::v1::{self as pb, request::Op, response::Result as R};
use strongroom_proto::hsm::{self as frames, Request, Response};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpSocket;
use tokio::sync::watch;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::HostOptions;
use crate::test_host::Pki;

/// The node's write timeout in this test.
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the node may take to cut the peer off, with slack for a busy machine.
const CUT_OFF_WITHIN: Duration = Duration::from_secs(20);

/// A TLS connection to `address` whose receive buffer is small, so that a peer not
/// reading fills it soon.
async fn connect(pki: &Pki, address: &str) -> TlsStream<tokio::net::TcpStream> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(address.parse().unwrap()).await.unwrap();
    TlsConnector::from(Arc::clone(&pki.client))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

/// `count` `GenerateRandom` requests of 1 KiB, ids from `first`, as frames.
fn random_requests(first: u64, count: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for id in first..first + count {
        let op = Op::GenerateRandom(pb::GenerateRandom { length: 1024 });
        frames::encode_frame(&Request { id, op: Some(op) }, usize::MAX >> 1, &mut out).unwrap();
    }
    out
}

/// Reads one answer frame.
async fn read_answer(tls: &mut TlsStream<tokio::net::TcpStream>) -> Response {
    let mut header = [0u8; frames::FRAME_HEADER_LEN];
    tls.read_exact(&mut header).await.unwrap();
    let len = frames::body_len(header, frames::DEFAULT_MAX_FRAME_LEN).unwrap();
    let mut body = vec![0; len];
    tls.read_exact(&mut body).await.unwrap();
    frames::decode_body(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_its_answers_is_cut_off() {
    let pki = Pki::new();
    let domain = DomainKey::generate().unwrap();
    let (_stop, stop) = watch::channel(false);
    let options = HostOptions {
        write_timeout: WRITE_TIMEOUT,
        ..HostOptions::default()
    };
    let address = pki.serve(&domain, options, stop).await;

    let started = Instant::now();
    let (mut reader, mut writer) = tokio::io::split(connect(&pki, &address).await);
    // Requests, 64 at a time, until the node closes the connection; never a read.
    let flood = tokio::spawn(async move {
        let batch = random_requests(1, 64);
        let mut sent = 0u64;
        while writer.write_all(&batch).await.is_ok() && writer.flush().await.is_ok() {
            sent += 64;
        }
        sent
    });
    let sent = tokio::time::timeout(CUT_OFF_WITHIN, flood)
        .await
        .expect("the node still reads a peer that reads nothing")
        .unwrap();
    assert!(sent > 0);

    // What the node wrote before closing can be read, then the stream ends.
    let mut buf = vec![0u8; 64 * 1024];
    let ended = tokio::time::timeout(CUT_OFF_WITHIN, async {
        while matches!(reader.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
    assert!(ended.is_ok(), "the connection is still open");
    assert!(
        started.elapsed() < CUT_OFF_WITHIN,
        "cut off after {:?}",
        started.elapsed()
    );

    // Another connection is served.
    let mut other = connect(&pki, &address).await;
    other.write_all(&random_requests(7, 1)).await.unwrap();
    other.flush().await.unwrap();
    let answer = read_answer(&mut other).await;
    assert_eq!(answer.id, 7);
    match answer.result {
        Some(R::GenerateRandom(r)) => assert_eq!(r.random.len(), 1024),
        other => panic!("{other:?}"),
    }
}

//! The host service: the port KMS nodes call (8020 by default), mutual TLS, frames of
//! the HSM link, many requests in flight per connection.
//!
//! Per connection: a reader task decodes frames and spawns one task per request (at
//! most [`MAX_IN_FLIGHT_PER_CONNECTION`] at once, counting answers not yet written, so a
//! peer that does not read its answers stops being read); a writer task sends the
//! answers in the order they complete, coalescing whatever is ready into one TLS write.
//! A request that fails — undecodable, unknown operation, wrong blob — gets an error
//! frame and the connection carries on; only an oversized frame (whose body the node
//! refuses to read), a broken stream or a stalled write ends the connection.
//!
//! Limits: at most [`MAX_CONNECTIONS`] connections, [`MAX_CONNECTIONS_PER_SOURCE`] from
//! one address, the TLS handshake within [`HANDSHAKE_TIMEOUT`], and a frame, once its
//! first byte arrived, within [`FRAME_TIMEOUT`], and each write of answers within
//! [`HostOptions::write_timeout`] (else the connection is closed). Waiting for the next
//! frame has no limit: the peers are listed KMS nodes whose pools keep connections open
//! between requests (TCP keep-alive finds dead ones).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use strongroom_proto::hsm::v1::{self as pb, error::Code};
use strongroom_proto::hsm::{self as frames, FrameError, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::backend::{Backend, Op};
use crate::error::HsmError;
pub(crate) use crate::sources::Sources;

/// Requests one connection may have in flight before the node stops reading from it.
pub const MAX_IN_FLIGHT_PER_CONNECTION: usize = 1024;
/// How long a TLS handshake may take (host and officer ports): a peer that opens TCP
/// and never finishes the handshake is closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most connections the host port serves at once; further ones are closed on accept.
pub const MAX_CONNECTIONS: usize = 1024;
/// Most connections one source address may hold on the host port, so that one host
/// (before its certificate is even checked) cannot take all [`MAX_CONNECTIONS`]: twice
/// the most a KMS node's pool opens to one HSM node.
pub const MAX_CONNECTIONS_PER_SOURCE: usize = 128;
/// Time the rest of a frame (length prefix and body) may take once its first byte
/// arrived: a peer cannot hold a frame's buffer by sending it a byte at a time.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time one write of answers (at most a few hundred KiB) may take on the host
/// port, and one answer on the officer port: a peer that sends requests and never reads
/// the answers is cut off instead of holding the connection.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// One encoded answer and, for a request's answer, its place among the connection's
/// [`MAX_IN_FLIGHT_PER_CONNECTION`], freed once the answer is written.
type Answer = (Vec<u8>, Option<OwnedSemaphorePermit>);

/// Where the host service finds the engine: ready, or the reason it is not.
#[derive(Debug)]
pub struct EngineSlot(RwLock<core::result::Result<Arc<dyn Backend>, HsmError>>);

impl EngineSlot {
    /// A slot answering every crypto request with `reason`.
    pub fn unavailable(reason: HsmError) -> Self {
        Self(RwLock::new(Err(reason)))
    }

    /// Puts an engine (or a refusal) in the slot.
    pub fn set(&self, engine: core::result::Result<Arc<dyn Backend>, HsmError>) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = engine;
    }

    /// The current engine.
    ///
    /// # Errors
    /// Why there is none (sealed, not synced).
    pub fn get(&self) -> core::result::Result<Arc<dyn Backend>, HsmError> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl core::fmt::Debug for dyn Backend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Backend")
    }
}

/// How the host port runs.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// TCP keep-alive idle time; `None` for none.
    pub keep_alive: Option<Duration>,
    /// Largest request frame accepted.
    pub max_frame_len: usize,
    /// Time one write of answers may take before the connection is closed.
    pub write_timeout: Duration,
}

impl Default for HostOptions {
    fn default() -> Self {
        Self {
            keep_alive: Some(Duration::from_secs(60)),
            max_frame_len: frames::DEFAULT_MAX_FRAME_LEN,
            write_timeout: WRITE_TIMEOUT,
        }
    }
}

/// What the host port serves now. Changing it (a new `generation`) is a restart: the
/// connections accepted under the old configuration are closed, new ones get the new
/// one.
#[derive(Debug, Clone)]
pub struct HostRun {
    /// The TLS configuration; `None` while the port cannot serve (no server
    /// certificate or no client certificate yet), when connections are closed at once.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Socket options and limits.
    pub options: HostOptions,
    /// Bumped by every restart.
    pub generation: u64,
}

/// Accepts connections on `listener` with one fixed configuration until `shutdown`
/// turns true, then closes the listener and every connection it accepted.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    engine: Arc<EngineSlot>,
    options: HostOptions,
    shutdown: watch::Receiver<bool>,
) {
    let (_control, run) = watch::channel(HostRun {
        tls: Some(tls),
        options,
        generation: 0,
    });
    serve_controlled(listener, run, engine, shutdown).await;
}

/// Accepts connections on `listener` with whatever configuration `control` holds,
/// until `shutdown` turns true.
pub async fn serve_controlled(
    listener: TcpListener,
    control: watch::Receiver<HostRun>,
    engine: Arc<EngineSlot>,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let sources = Arc::new(Sources::default());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "host port: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let run = control.borrow().clone();
        let Some(tls) = run.tls else {
            tracing::info!(%peer, "host port: not serving yet (no server or client certificate); connection closed");
            drop(stream);
            continue;
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::info!(%peer, "host port: connection limit reached; connection closed");
            continue;
        };
        let Some(slot) = sources.admit(peer.ip(), MAX_CONNECTIONS_PER_SOURCE) else {
            tracing::info!(%peer, "host port: connection limit of the address reached; connection closed");
            continue;
        };
        let engine = Arc::clone(&engine);
        let control = control.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _held = (permit, slot);
            let closed = Closed {
                control,
                generation: run.generation,
                shutdown,
            };
            if let Err(e) = connection(
                stream,
                peer,
                TlsAcceptor::from(tls),
                engine,
                run.options,
                closed,
            )
            .await
            {
                tracing::debug!(%peer, error = %e, "host connection ended");
            }
        });
    }
}

/// What ends a connection from outside: a restart or the node's shutdown.
struct Closed {
    control: watch::Receiver<HostRun>,
    generation: u64,
    shutdown: watch::Receiver<bool>,
}

impl Closed {
    async fn wait(mut self) {
        let generation = self.generation;
        tokio::select! {
            _ = self.control.wait_for(|run| run.generation != generation) => {}
            _ = self.shutdown.wait_for(|stop| *stop) => {}
        }
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    engine: Arc<EngineSlot>,
    options: HostOptions,
    closed: Closed,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    if let Some(idle) = options.keep_alive {
        let keepalive = socket2::TcpKeepalive::new().with_time(idle);
        socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive)?;
    }
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::info!(%peer, error = %e, "host port: TLS handshake refused");
            return Ok(());
        }
        Err(_) => {
            tracing::info!(%peer, "host port: TLS handshake timed out");
            return Ok(());
        }
    };
    let (reader, writer) = tokio::io::split(tls);
    // Unbounded only in type: every answer but the last one before a close carries a
    // permit of the reader's semaphore.
    let (tx, rx) = mpsc::unbounded_channel::<Answer>();
    let pending = Arc::new(AtomicUsize::new(0));
    let mut writer_task = tokio::spawn(write_loop(
        writer,
        rx,
        Arc::clone(&pending),
        options.write_timeout,
    ));
    tokio::select! {
        result = read_loop(reader, tx, engine, options.max_frame_len, pending) => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "host connection read ended");
            }
        }
        written = &mut writer_task => {
            // The peer stopped reading (or the stream broke): drop the connection.
            if let Ok(Err(e)) = written {
                tracing::info!(%peer, error = %e, "host port: answers could not be written; connection closed");
            }
            return Ok(());
        }
        () = closed.wait() => {
            writer_task.abort();
            return Ok(());
        }
    }
    // The sender side is gone once every request task finished: the writer drains
    // what is queued and ends.
    let _ = writer_task.await;
    Ok(())
}

async fn read_loop(
    mut reader: ReadHalf<TlsStream<TcpStream>>,
    tx: mpsc::UnboundedSender<Answer>,
    engine: Arc<EngineSlot>,
    max_frame_len: usize,
    pending: Arc<AtomicUsize>,
) -> std::io::Result<()> {
    let limit = Arc::new(Semaphore::new(MAX_IN_FLIGHT_PER_CONNECTION));
    loop {
        let mut header = [0u8; frames::FRAME_HEADER_LEN];
        let Some((first, rest)) = header.split_first_mut() else {
            return Err(std::io::Error::other("empty frame header"));
        };
        // The next frame may be long in coming (pooled connections wait for requests);
        // once it starts, all of it must arrive within FRAME_TIMEOUT.
        match reader.read(std::slice::from_mut(first)).await {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let deadline = tokio::time::Instant::now() + FRAME_TIMEOUT;
        let timed_out =
            |_| std::io::Error::new(std::io::ErrorKind::TimedOut, "frame not received in time");
        tokio::time::timeout_at(deadline, reader.read_exact(rest))
            .await
            .map_err(timed_out)??;
        let len = match frames::body_len(header, max_frame_len) {
            Ok(len) => len,
            Err(e) => {
                // The body is never read, so the stream cannot be resynchronised:
                // answer, then close.
                send(
                    &tx,
                    &pb::Error::reply(0, Code::FrameTooLarge, e.to_string()),
                    None,
                );
                return Ok(());
            }
        };
        let mut body = vec![0u8; len];
        tokio::time::timeout_at(deadline, reader.read_exact(&mut body))
            .await
            .map_err(timed_out)??;
        let permit = Arc::clone(&limit)
            .acquire_owned()
            .await
            .map_err(|_| std::io::Error::other("request limit closed"))?;
        let tx = tx.clone();
        let engine = Arc::clone(&engine);
        let pending = Arc::clone(&pending);
        pending.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let response = handle(&body, &engine);
            pending.fetch_sub(1, Ordering::Relaxed);
            send(&tx, &response, Some(permit));
        });
    }
}

/// Decodes and runs one request; every failure becomes an error response.
fn handle(body: &[u8], engine: &EngineSlot) -> Response {
    let request: Request = match frames::decode_body(body) {
        Ok(request) => request,
        Err(FrameError::Malformed(reason)) => {
            return pb::Error::reply(
                0,
                Code::MalformedRequest,
                format!("malformed request: {reason}"),
            );
        }
        Err(e) => return pb::Error::reply(0, Code::MalformedRequest, e.to_string()),
    };
    let id = request.id;
    let Some(op) = request.op else {
        return pb::Error::reply(
            id,
            Code::UnknownOperation,
            "the request names no operation this node knows",
        );
    };
    let result = match engine.get() {
        Ok(backend) => backend.execute(op),
        // Status is answered even when the engine is not ready: it says why.
        Err(reason) => match op {
            Op::Status(_) => return status_refusal(id, &reason),
            _ => Err(reason),
        },
    };
    match result {
        Ok(result) => Response {
            id,
            result: Some(result),
        },
        Err(e) => pb::Error::reply(id, e.code, e.message),
    }
}

fn status_refusal(id: u64, reason: &HsmError) -> Response {
    Response {
        id,
        result: Some(pb::response::Result::Status(pb::StatusReply {
            sealed: reason.code == Code::Sealed,
            synced: false,
            ..pb::StatusReply::default()
        })),
    }
}

/// Queues `response` for the writer, with the permit it holds until written.
fn send(
    tx: &mpsc::UnboundedSender<Answer>,
    response: &Response,
    permit: Option<OwnedSemaphorePermit>,
) {
    let mut out = Vec::new();
    match frames::encode_frame(response, usize::MAX >> 1, &mut out) {
        Ok(()) => {
            // A closed writer means the connection is gone; nothing to tell.
            let _ = tx.send((out, permit));
        }
        Err(e) => {
            let mut out = Vec::new();
            if frames::encode_frame(
                &pb::Error::reply(response.id, Code::Internal, e.to_string()),
                usize::MAX >> 1,
                &mut out,
            )
            .is_ok()
            {
                let _ = tx.send((out, permit));
            }
        }
    }
}

async fn write_loop(
    mut writer: WriteHalf<TlsStream<TcpStream>>,
    mut rx: mpsc::UnboundedReceiver<Answer>,
    pending: Arc<AtomicUsize>,
    write_timeout: Duration,
) -> std::io::Result<()> {
    let mut batch = Vec::with_capacity(64 * 1024);
    let mut held = Vec::new();
    while let Some((first, permit)) = rx.recv().await {
        batch.clear();
        batch.extend_from_slice(&first);
        held.extend(permit);
        // Other requests of this connection are being computed: let them finish and
        // queue their answers, so one TLS write carries many (one write per answer
        // costs more than the AES it carries).
        if pending.load(Ordering::Relaxed) > 0 {
            tokio::task::yield_now().await;
        }
        while batch.len() < 256 * 1024 {
            match rx.try_recv() {
                Ok((more, permit)) => {
                    batch.extend_from_slice(&more);
                    held.extend(permit);
                }
                Err(_) => break,
            }
        }
        let write = async {
            writer.write_all(&batch).await?;
            writer.flush().await
        };
        tokio::time::timeout(write_timeout, write)
            .await
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "the peer did not take {} bytes of answers within {write_timeout:?}",
                        batch.len()
                    ),
                )
            })??;
        // Written: the reader may take as many more requests.
        held.clear();
    }
    writer.shutdown().await
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests: an unexpected error should fail the test loudly"
)]
#[path = "host_tests.rs"]
mod write_stall_tests;

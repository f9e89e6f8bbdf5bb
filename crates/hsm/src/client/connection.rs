//! One pipelined TLS connection to an HSM node.
//!
//! Callers take a request id from the connection (per connection, counting up from 1,
//! never 0), park a `oneshot` sender under it in the pending map, and hand the frame to
//! the writer task over an unbounded channel; the writer coalesces whatever is queued
//! into one TLS write. The reader task decodes responses and completes the pending
//! sender with the same id, in whatever order the node answers.
//!
//! When the connection dies (EOF, I/O error, an undecodable response, or a request
//! that timed out while nothing at all arrived), it is closed once: every pending
//! request fails with a retryable [`Code::Unavailable`] "connection lost" error, both
//! tasks stop, and later calls fail at once so the pool opens a new connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use strongroom_proto::hsm::v1::error::Code;
use strongroom_proto::hsm::{self as frames, Response};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, BufReader, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::NodeAddress;
use super::wire::{self, EncodedRequest};
use crate::backend::Reply;
use crate::error::{HsmError, Result};

/// Frames the writer takes from its queue at once.
const WRITE_BATCH_FRAMES: usize = 256;
/// Bytes the writer gathers before it writes, at most (a frame may exceed it alone).
const WRITE_BATCH_BYTES: usize = 256 * 1024;
/// Read buffer of the reader task.
const READ_BUFFER: usize = 64 * 1024;
/// TCP keep-alive idle time on the link.
const KEEP_ALIVE: Duration = Duration::from_secs(30);

type Pending = oneshot::Sender<Result<Reply>>;

/// A live (or closed) connection; see the module docs.
#[derive(Debug)]
pub(crate) struct Connection {
    shared: Arc<Shared>,
    frames: mpsc::UnboundedSender<Vec<u8>>,
}

#[derive(Debug)]
struct Shared {
    /// `host:port`, for messages.
    address: String,
    state: Mutex<State>,
    /// Set once, with `State::closed`; read without the lock.
    closed: AtomicBool,
    /// Wakes both tasks when the connection closes.
    closing: watch::Sender<bool>,
    in_flight: AtomicUsize,
    /// When the connection was opened; `last_read` counts from here.
    opened: Instant,
    /// Nanoseconds from `opened` to the last response read.
    last_read: AtomicU64,
}

#[derive(Debug)]
struct State {
    next_id: u64,
    pending: HashMap<u64, Pending>,
    closed: Option<HsmError>,
}

impl Connection {
    /// Connects, shakes hands and starts the reader and writer tasks.
    ///
    /// # Errors
    /// [`Code::Unavailable`] naming the step that failed (connect, TLS handshake).
    pub(crate) async fn open(
        node: &NodeAddress,
        tls: &Arc<rustls::ClientConfig>,
        connect_timeout: Duration,
        max_frame_len: usize,
    ) -> Result<Arc<Self>> {
        let address = node.address.as_str();
        let tcp = match tokio::time::timeout(connect_timeout, TcpStream::connect(address)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Err(unavailable(format!("connect failed: {e}"))),
            Err(_) => {
                return Err(unavailable(format!(
                    "connect timed out after {connect_timeout:?}"
                )));
            }
        };
        tcp.set_nodelay(true)
            .map_err(|e| unavailable(format!("cannot set TCP_NODELAY: {e}")))?;
        let keepalive = socket2::TcpKeepalive::new().with_time(KEEP_ALIVE);
        if let Err(e) = socket2::SockRef::from(&tcp).set_tcp_keepalive(&keepalive) {
            tracing::debug!(node = address, error = %e, "cannot set TCP keep-alive");
        }
        let handshake = TlsConnector::from(Arc::clone(tls)).connect(node.server_name.clone(), tcp);
        let tls = match tokio::time::timeout(connect_timeout, handshake).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => return Err(unavailable(format!("TLS handshake failed: {e}"))),
            Err(_) => {
                return Err(unavailable(format!(
                    "TLS handshake timed out after {connect_timeout:?}"
                )));
            }
        };
        let (reader, writer) = tokio::io::split(tls);
        let (closing, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            address: address.to_owned(),
            state: Mutex::new(State {
                next_id: 1,
                pending: HashMap::new(),
                closed: None,
            }),
            closed: AtomicBool::new(false),
            closing,
            in_flight: AtomicUsize::new(0),
            opened: Instant::now(),
            last_read: AtomicU64::new(0),
        });
        let (frames, queue) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(Arc::clone(&shared), writer, queue));
        tokio::spawn(read_loop(Arc::clone(&shared), reader, max_frame_len));
        tracing::debug!(node = address, "HSM connection open");
        Ok(Arc::new(Self { shared, frames }))
    }

    /// Whether the connection has closed (it never reopens).
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Whether nothing has been read on this connection since `instant` (a connection
    /// opened later has not been silent since then).
    pub(crate) fn silent_since(&self, instant: Instant) -> bool {
        instant >= self.shared.opened && self.shared.silent_since(instant)
    }

    /// Requests sent on this connection and not yet answered.
    pub(crate) fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Relaxed)
    }

    /// Closes the connection, failing whatever is pending with `reason`.
    pub(crate) fn close(&self, reason: &str) {
        self.shared
            .close(HsmError::new(Code::Unavailable, reason.to_owned()));
    }

    /// Sends `request` and waits up to `timeout` for its answer.
    ///
    /// # Errors
    /// The node's error, or [`Code::Unavailable`] when the connection is or becomes
    /// lost or the answer does not come in time.
    pub(crate) async fn call(&self, request: &EncodedRequest, timeout: Duration) -> Result<Reply> {
        let (sender, answer) = oneshot::channel();
        let id = self.shared.register(sender)?;
        let mut guard = PendingGuard {
            shared: &self.shared,
            id,
            answered: false,
        };
        let mut frame = Vec::new();
        request.write_frame(id, &mut frame)?;
        let sent = Instant::now();
        if self.frames.send(frame).is_err() {
            return Err(self.shared.lost_error());
        }
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(result)) => {
                guard.answered = true;
                result
            }
            // The sender went away unanswered: the connection closed under us.
            Ok(Err(_)) => Err(self.shared.lost_error()),
            Err(_) => {
                if self.shared.silent_since(sent) {
                    // Nothing at all arrived since the request left: the node or the
                    // path to it is gone, so is every other request on this connection.
                    self.shared.close(unavailable(format!(
                        "connection to {} lost: no response within {timeout:?}",
                        self.shared.address
                    )));
                }
                Err(unavailable(format!(
                    "no answer to {} from {} within {timeout:?}",
                    request.kind(),
                    self.shared.address
                )))
            }
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.close(unavailable(format!(
            "connection to {} closed by the client",
            self.shared.address
        )));
    }
}

/// Takes the request's entry out of the pending map if it was never answered (the
/// caller timed out or dropped the future), and keeps `in_flight` right.
struct PendingGuard<'a> {
    shared: &'a Shared,
    id: u64,
    answered: bool,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.shared.lock().pending.remove(&self.id);
        }
        self.shared.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section is a single map or counter update, so a poisoned
        // lock still guards a consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Allocates an id and parks `sender` under it.
    fn register(&self, sender: Pending) -> Result<u64> {
        let mut state = self.lock();
        if let Some(reason) = &state.closed {
            return Err(reason.clone());
        }
        let id = state.next_id;
        state.next_id = match id.wrapping_add(1) {
            0 => 1,
            next => next,
        };
        state.pending.insert(id, sender);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Ok(id)
    }

    /// Closes once: marks the state, wakes the tasks, fails every pending request.
    fn close(&self, reason: HsmError) {
        let pending = {
            let mut state = self.lock();
            if state.closed.is_some() {
                return;
            }
            state.closed = Some(reason.clone());
            std::mem::take(&mut state.pending)
        };
        self.closed.store(true, Ordering::Release);
        self.closing.send_replace(true);
        if !pending.is_empty() {
            tracing::debug!(
                node = self.address,
                pending = pending.len(),
                reason = %reason.message,
                "HSM connection closed with requests pending"
            );
        }
        for (_, sender) in pending {
            // A caller that stopped waiting needs no answer.
            let _ = sender.send(Err(reason.clone()));
        }
    }

    /// The error requests get once the connection is closed.
    fn lost_error(&self) -> HsmError {
        self.lock()
            .closed
            .clone()
            .unwrap_or_else(|| unavailable(format!("connection to {} lost", self.address)))
    }

    fn touch(&self) {
        let nanos = u64::try_from(self.opened.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last_read.store(nanos, Ordering::Relaxed);
    }

    /// Whether no response has been read since `instant`.
    fn silent_since(&self, instant: Instant) -> bool {
        let since = u64::try_from(instant.saturating_duration_since(self.opened).as_nanos())
            .unwrap_or(u64::MAX);
        self.last_read.load(Ordering::Relaxed) < since
    }

    /// Completes the pending request a response names.
    fn deliver(&self, response: Response) {
        let id = response.id;
        if id == 0 {
            // The node's answer to a frame it could not read: nothing to match it to.
            let error = wire::into_result(response).err();
            tracing::warn!(
                node = self.address,
                error = ?error,
                "the HSM node refused a frame it could not read"
            );
            return;
        }
        let sender = self.lock().pending.remove(&id);
        match sender {
            Some(sender) => {
                let _ = sender.send(wire::into_result(response));
            }
            // Its caller timed out or went away.
            None => tracing::debug!(node = self.address, id, "response to no pending request"),
        }
    }
}

async fn read_loop(
    shared: Arc<Shared>,
    reader: ReadHalf<TlsStream<TcpStream>>,
    max_frame_len: usize,
) {
    let mut closing = shared.closing.subscribe();
    let mut reader = BufReader::with_capacity(READ_BUFFER, reader);
    let reason = tokio::select! {
        reason = read_responses(&shared, &mut reader, max_frame_len) => reason,
        _ = closing.wait_for(|closed| *closed) => return,
    };
    shared.close(unavailable(format!(
        "connection to {} lost: {reason}",
        shared.address
    )));
}

/// Reads and delivers responses until the stream ends; returns why it ended.
async fn read_responses(
    shared: &Shared,
    reader: &mut BufReader<ReadHalf<TlsStream<TcpStream>>>,
    max_frame_len: usize,
) -> String {
    let mut body = Vec::new();
    loop {
        let mut header = [0u8; frames::FRAME_HEADER_LEN];
        match reader.read_exact(&mut header).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return "closed by the node".to_owned();
            }
            Err(e) => return e.to_string(),
        }
        let len = match frames::body_len(header, max_frame_len) {
            Ok(len) => len,
            Err(e) => return format!("response refused: {e}"),
        };
        body.clear();
        body.resize(len, 0);
        if let Err(e) = reader.read_exact(&mut body).await {
            return e.to_string();
        }
        shared.touch();
        match frames::decode_body::<Response>(&body) {
            Ok(response) => shared.deliver(response),
            Err(e) => return format!("undecodable response: {e}"),
        }
    }
}

async fn write_loop(
    shared: Arc<Shared>,
    mut writer: WriteHalf<TlsStream<TcpStream>>,
    mut queue: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let mut closing = shared.closing.subscribe();
    let mut frames = Vec::with_capacity(WRITE_BATCH_FRAMES);
    let mut batch = Vec::with_capacity(64 * 1024);
    loop {
        let received = tokio::select! {
            received = queue.recv_many(&mut frames, WRITE_BATCH_FRAMES) => received,
            _ = closing.wait_for(|closed| *closed) => return,
        };
        if received == 0 {
            // Every sender is gone: the connection was dropped. Say goodbye politely.
            let _ = writer.shutdown().await;
            return;
        }
        if received
            < shared
                .in_flight
                .load(Ordering::Relaxed)
                .min(WRITE_BATCH_FRAMES)
        {
            // Other requests are in flight, so other callers are likely about to queue
            // frames: the ones the reader woke with the same read, which tokio runs
            // only after us (it runs the task just woken first). Let them, and send
            // one TLS record with one syscall for all instead of one each. With one
            // request in flight there is nobody to wait for.
            tokio::task::yield_now().await;
        }
        batch.clear();
        for frame in frames.drain(..) {
            batch.extend_from_slice(&frame);
        }
        while batch.len() < WRITE_BATCH_BYTES {
            match queue.try_recv() {
                Ok(frame) => batch.extend_from_slice(&frame),
                Err(_) => break,
            }
        }
        let written = async {
            writer.write_all(&batch).await?;
            writer.flush().await
        };
        let result = tokio::select! {
            result = written => result,
            _ = closing.wait_for(|closed| *closed) => return,
        };
        if let Err(e) = result {
            shared.close(unavailable(format!(
                "connection to {} lost: write failed: {e}",
                shared.address
            )));
            return;
        }
    }
}

fn unavailable(message: String) -> HsmError {
    HsmError::new(Code::Unavailable, message)
}

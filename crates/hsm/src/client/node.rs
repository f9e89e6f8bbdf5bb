//! One HSM node as the client sees it: a small pool of connections, opened lazily with
//! backoff, and the node's health as the last probe or request found it.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use strongroom_proto::hsm::v1 as pb;
use tokio::sync::{Notify, watch};

use super::connection::Connection;
use super::wire::EncodedRequest;
use super::{NodeAddress, NodeHealth};
use crate::backend::{Op, Reply};
use crate::error::{HsmError, Result};

/// First pause after a failed connect; doubles per failure.
const BACKOFF_START: Duration = Duration::from_millis(50);
/// Longest pause between connects (the health probe connects regardless).
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Shortest spacing of health probes, however often a failure asks for one.
const MIN_PROBE_SPACING: Duration = Duration::from_millis(50);

/// How the node's health is known.
const UNKNOWN: u8 = 0;
const HEALTHY: u8 = 1;
const UNHEALTHY: u8 = 2;

/// Timings the node needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timings {
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) health_interval: Duration,
    pub(crate) probe_timeout: Duration,
    pub(crate) max_frame_len: usize,
}

#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) address: NodeAddress,
    tls: Arc<rustls::ClientConfig>,
    timings: Timings,
    slots: Vec<Slot>,
    /// `UNKNOWN`, `HEALTHY` or `UNHEALTHY`, read on every request without a lock.
    state: AtomicU8,
    health: Mutex<HealthRecord>,
    /// Requests on this node, connecting included.
    in_flight: AtomicUsize,
    next_slot: AtomicUsize,
    /// Wakes the health task for an early probe after a failure.
    probe_now: Notify,
}

#[derive(Debug, Default)]
struct HealthRecord {
    reason: String,
    status: Option<pb::StatusReply>,
}

#[derive(Debug, Default)]
struct Slot {
    current: Mutex<Option<Arc<Connection>>>,
    /// Held while connecting, so one task connects a slot and the others wait for it.
    connecting: tokio::sync::Mutex<Backoff>,
}

#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<HsmError>,
}

impl Slot {
    fn current(&self) -> MutexGuard<'_, Option<Arc<Connection>>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The slot's connection if it is still open; a closed one is let go.
    fn live(&self) -> Option<Arc<Connection>> {
        let mut current = self.current();
        match current.as_ref() {
            Some(connection) if !connection.is_closed() => Some(Arc::clone(connection)),
            Some(_) => {
                *current = None;
                None
            }
            None => None,
        }
    }
}

impl Node {
    pub(crate) fn new(
        address: NodeAddress,
        tls: Arc<rustls::ClientConfig>,
        timings: Timings,
        connections: usize,
    ) -> Self {
        Self {
            address,
            tls,
            timings,
            slots: (0..connections).map(|_| Slot::default()).collect(),
            state: AtomicU8::new(UNKNOWN),
            health: Mutex::new(HealthRecord {
                reason: "not checked yet".to_owned(),
                status: None,
            }),
            in_flight: AtomicUsize::new(0),
            next_slot: AtomicUsize::new(0),
            probe_now: Notify::new(),
        }
    }

    /// Whether new requests should come here: healthy, or not checked yet.
    pub(crate) fn is_usable(&self) -> bool {
        self.state.load(Ordering::Relaxed) != UNHEALTHY
    }

    /// Asks the health task for a probe now (spaced by `MIN_PROBE_SPACING`).
    pub(crate) fn probe_soon(&self) {
        self.probe_now.notify_one();
    }

    /// Whether the node has an open connection.
    pub(crate) fn has_live_connection(&self) -> bool {
        self.slots.iter().any(|slot| slot.live().is_some())
    }

    /// The error of a request not sent to this unhealthy node, with the reason on
    /// record.
    pub(crate) fn unhealthy_error(&self) -> HsmError {
        HsmError::new(
            pb::error::Code::Unavailable,
            format!(
                "unhealthy, skipped until a health probe reaches it: {}",
                self.record().reason
            ),
        )
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Runs one request on one of this node's connections.
    pub(crate) async fn call(&self, request: &EncodedRequest) -> Result<Reply> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let _in_flight = InFlight(&self.in_flight);
        let connection = self.connection(false).await?;
        connection.call(request, self.timings.request_timeout).await
    }

    /// A retryable failure of a request here: the node is skipped until a probe finds
    /// it well again (one is made soon).
    pub(crate) fn note_failure(&self, error: &HsmError) {
        self.set_unhealthy(error.to_string(), Keep::LastStatus);
        self.probe_now.notify_one();
    }

    /// The least busy open connection, or a new one.
    async fn connection(&self, force: bool) -> Result<Arc<Connection>> {
        let count = self.slots.len();
        let start = self.next_slot.fetch_add(1, Ordering::Relaxed);
        let mut best: Option<Arc<Connection>> = None;
        let mut empty = None;
        for offset in 0..count {
            let index = start.wrapping_add(offset) % count;
            let Some(slot) = self.slots.get(index) else {
                continue;
            };
            match slot.live() {
                Some(connection) => {
                    if connection.in_flight() == 0 {
                        return Ok(connection);
                    }
                    if best
                        .as_ref()
                        .is_none_or(|b| connection.in_flight() < b.in_flight())
                    {
                        best = Some(connection);
                    }
                }
                None => {
                    empty.get_or_insert(index);
                }
            }
        }
        if let Some(connection) = best {
            return Ok(connection);
        }
        let index = empty.unwrap_or(0);
        self.connect_slot(index, force).await
    }

    /// Opens slot `index`'s connection unless another task just did; while the slot
    /// is backing off after a failure, fails at once with that failure (unless `force`).
    async fn connect_slot(&self, index: usize, force: bool) -> Result<Arc<Connection>> {
        let Some(slot) = self.slots.get(index) else {
            return Err(HsmError::internal("no such connection slot"));
        };
        let mut backoff = slot.connecting.lock().await;
        if let Some(connection) = slot.live() {
            return Ok(connection);
        }
        if !force
            && let (Some(retry_at), Some(error)) = (backoff.retry_at, &backoff.last_error)
            && Instant::now() < retry_at
        {
            return Err(error.clone());
        }
        let opened = Connection::open(
            &self.address,
            &self.tls,
            self.timings.connect_timeout,
            self.timings.max_frame_len,
        )
        .await;
        match opened {
            Ok(connection) => {
                *backoff = Backoff::default();
                *slot.current() = Some(Arc::clone(&connection));
                Ok(connection)
            }
            Err(error) => {
                backoff.failures = backoff.failures.saturating_add(1);
                let delay = BACKOFF_START
                    .saturating_mul(1 << backoff.failures.saturating_sub(1).min(10))
                    .min(BACKOFF_MAX);
                backoff.retry_at = Some(Instant::now() + delay);
                backoff.last_error = Some(error.clone());
                tracing::debug!(
                    node = self.address.address,
                    error = %error.message,
                    retry_in = ?delay,
                    "cannot connect to HSM node"
                );
                Err(error)
            }
        }
    }

    /// One health probe: `Status` over a connection (opened if need be), waiting
    /// `probe_timeout` for the answer.
    ///
    /// A live node answers `Status` at once, even with slow operations running (it
    /// serves a connection's requests concurrently), so a probe without an answer means
    /// the node or the path to it is gone, possibly without a reset (a black hole).
    /// Then every connection to the node that has read nothing since the probe was sent
    /// is closed: the requests waiting on them fail with a retryable error and go to
    /// another node now, instead of waiting out `request_timeout`. A connection that
    /// is still delivering answers (a busy node) is left alone.
    async fn probe(&self) {
        let sent = Instant::now();
        let result = match self.connection(true).await {
            Ok(connection) => match EncodedRequest::new(Op::Status(pb::Status {}), usize::MAX) {
                Ok(request) => connection.call(&request, self.timings.probe_timeout).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            self.close_silent_since(sent, &format!("health probe failed: {e}"));
        }
        match result {
            Ok(Reply::Status(status)) => {
                if status.sealed {
                    self.set_unhealthy("the node is sealed".to_owned(), Some(status));
                } else if !status.synced {
                    self.set_unhealthy("the node is not synced".to_owned(), Some(status));
                } else {
                    self.set_healthy(status);
                }
            }
            Ok(_) => self.set_unhealthy("unexpected reply to Status".to_owned(), None),
            Err(e) => self.set_unhealthy(e.to_string(), None),
        }
    }

    /// Opens the connections of empty slots that are not backing off, so load spreads
    /// over the whole pool and a node that came back gets its pool back.
    async fn fill_pool(&self) {
        for index in 0..self.slots.len() {
            let Some(slot) = self.slots.get(index) else {
                continue;
            };
            if slot.live().is_none() && self.connect_slot(index, false).await.is_err() {
                return;
            }
        }
    }

    fn set_healthy(&self, status: pb::StatusReply) {
        let before = self.state.swap(HEALTHY, Ordering::Relaxed);
        let mut record = self.record();
        record.reason = "ok".to_owned();
        record.status = Some(status);
        drop(record);
        if before != HEALTHY {
            tracing::info!(node = self.address.address, "HSM node is healthy");
        }
    }

    fn set_unhealthy(&self, reason: String, status: impl Into<Keep>) {
        let before = self.state.swap(UNHEALTHY, Ordering::Relaxed);
        if before != UNHEALTHY {
            tracing::warn!(node = self.address.address, reason, "HSM node is unhealthy");
        }
        let mut record = self.record();
        record.reason = reason;
        match status.into() {
            Keep::LastStatus => {}
            Keep::Status(status) => record.status = status,
        }
    }

    fn record(&self) -> MutexGuard<'_, HealthRecord> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The node's health, as [`super::ClusterClient::health`] reports it.
    pub(crate) fn health(&self) -> NodeHealth {
        let record = self.record();
        NodeHealth {
            address: self.address.address.clone(),
            healthy: self.state.load(Ordering::Relaxed) == HEALTHY,
            reason: record.reason.clone(),
            in_flight: self.in_flight(),
            connections: self.slots.iter().filter(|s| s.live().is_some()).count(),
            status: record.status.clone(),
        }
    }

    /// Closes the connections that have read nothing since `instant`, failing their
    /// requests (retryably) with `reason`.
    fn close_silent_since(&self, instant: Instant, reason: &str) {
        for slot in &self.slots {
            let Some(connection) = slot.live() else {
                continue;
            };
            if connection.silent_since(instant) {
                if connection.in_flight() > 0 {
                    tracing::warn!(
                        node = self.address.address,
                        pending = connection.in_flight(),
                        reason,
                        "closing a silent HSM connection; its requests go to another node"
                    );
                }
                // Closed, it is let go by the next look at the slot (`Slot::live`).
                connection.close(&format!(
                    "connection to {} lost: {reason}",
                    self.address.address
                ));
            }
        }
    }

    /// Closes every connection (the client is shutting down).
    pub(crate) fn close(&self, reason: &str) {
        for slot in &self.slots {
            if let Some(connection) = slot.current().take() {
                connection.close(reason);
            }
        }
    }

    /// The health task: a probe now, then one every `health_interval`, or sooner
    /// when a request failed here; until `shutdown`.
    pub(crate) async fn health_loop(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            let probed = Instant::now();
            tokio::select! {
                () = self.probe() => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            if self.state.load(Ordering::Relaxed) == HEALTHY {
                tokio::select! {
                    () = self.fill_pool() => {}
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
            }
            let next = probed + self.timings.health_interval;
            let early = tokio::select! {
                () = tokio::time::sleep_until(next.into()) => false,
                () = self.probe_now.notified() => true,
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            if early {
                let earliest = probed + MIN_PROBE_SPACING;
                tokio::select! {
                    () = tokio::time::sleep_until(earliest.into()) => {}
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
            }
        }
    }
}

/// What an unhealthy verdict does to the last `Status` answer on record.
enum Keep {
    /// Keep it: a request failed, the node was not asked.
    LastStatus,
    /// Replace it with this answer (`None`: the probe got none).
    Status(Option<pb::StatusReply>),
}

impl From<Option<pb::StatusReply>> for Keep {
    fn from(status: Option<pb::StatusReply>) -> Self {
        Self::Status(status)
    }
}

/// Counts a request on the node while it lives.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

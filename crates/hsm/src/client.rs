//! The cluster client: how a KMS node reaches its HSM cluster over the HSM link.
//!
//! - **Pool**: a few mutual-TLS connections per node ([`ClusterConfig::connections_per_node`]),
//!   opened lazily and reopened with backoff after they die. Each connection carries many
//!   requests at once (pipelined): a writer task coalesces queued frames into one TLS
//!   write, a reader task hands each response to the request with the same id. Ids are
//!   per connection, count up from 1 and are never 0 (the node answers a frame it could
//!   not read with id 0; such an answer matches nothing and is logged).
//! - **Health**: a task per node sends `Status` every [`ClusterConfig::health_interval`]
//!   (and soon after a request failed there). A node is healthy when it answers and is
//!   unsealed and synced; an unhealthy node gets no new requests but keeps being probed,
//!   so it is used again once it is back. A probe waits [`ClusterConfig::probe_timeout`]
//!   for its answer; when it gets none, the node's connections that stayed silent since
//!   the probe was sent are closed, so the requests waiting on them are retried on
//!   another node at once instead of after the whole [`ClusterConfig::request_timeout`]:
//!   a node that is partitioned away without a reset (a black hole: packets dropped,
//!   connections held open) costs its requests at most about `health_interval +
//!   probe_timeout`, well inside an SDK's 10-second read timeout. A request never opens
//!   a connection to a node already found unhealthy (it would wait the whole connect
//!   timeout if the node drops packets): it asks for an early probe, which reconnects,
//!   and waits up to a second (at most `probe_timeout`) for one to find a node back. So
//!   with every node down requests fail after about a second, and succeed again as soon
//!   as a probe reaches a node that is back.
//! - **Spread**: each request goes to the healthy node with the fewest requests in
//!   flight (ties rotate), and there to the least busy connection.
//! - **Failover**: a retryable failure (connection lost or refused, TLS handshake,
//!   timeout, `Sealed`, `NotSynced`, `Unavailable`) is retried on another node, up to
//!   [`ClusterConfig::max_attempts`] in all; HSM operations are safe to repeat, since
//!   blobs never change. Other errors (`InvalidBlob`, `InvalidParameter`, …) return at
//!   once. When no node could serve a request, the error lists every node tried with its
//!   last failure: [`Code::Unavailable`], or the one code every node gave (a lone
//!   unsynced node gives `NotSynced`).
//!
//! Dropping the [`ClusterClient`] (or [`ClusterClient::close`]) stops the health tasks and
//! closes every connection.

mod connection;
mod node;
mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use strongroom_proto::hsm::DEFAULT_MAX_FRAME_LEN;
use strongroom_proto::hsm::v1::{StatusReply, error::Code};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::backend::{Hsm, Op, Reply};
use crate::error::{HsmError, Result};
use node::{Node, Timings};
use wire::EncodedRequest;

/// Default connections per node.
pub const DEFAULT_CONNECTIONS_PER_NODE: usize = 2;
/// Default time a request may wait for its answer.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a TCP connect plus TLS handshake may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time between health probes of a node.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(2);
/// Default time a health probe (`Status`, answered at once by a live node) may wait for
/// its answer.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Most connections per node a configuration may ask for.
pub const MAX_CONNECTIONS_PER_NODE: usize = 64;
/// Pause before a request visits a node it already tried, times the round.
const ROUND_PAUSE: Duration = Duration::from_millis(25);
/// Longest a request waits for a probe to find a node back when every node is
/// unhealthy and none has a connection (at most the probe timeout), before it fails.
const UNHEALTHY_WAIT: Duration = Duration::from_secs(1);

/// Where one HSM node listens, and the name its certificate must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddress {
    /// `host:port` (IPv6 as `[addr]:port`).
    pub address: String,
    /// The name the node's server certificate is checked against.
    pub server_name: ServerName<'static>,
}

impl NodeAddress {
    /// A node at `address` (`host:port`), its certificate checked against the host part
    /// (a DNS name or an IP address).
    ///
    /// # Errors
    /// [`Code::InvalidParameter`] when the address has no port or the host is not a
    /// valid DNS name or IP address.
    pub fn new(address: impl Into<String>) -> Result<Self> {
        let address = address.into();
        let invalid = |why: &str| HsmError::invalid(format!("HSM node address {address:?}: {why}"));
        let (host, port) = match address.strip_prefix('[') {
            Some(rest) => rest
                .split_once("]:")
                .ok_or_else(|| invalid("expected [ipv6]:port"))?,
            None => address
                .rsplit_once(':')
                .ok_or_else(|| invalid("expected host:port"))?,
        };
        port.parse::<u16>()
            .map_err(|_| invalid("the port is not a number from 0 to 65535"))?;
        let server_name = ServerName::try_from(host.to_owned())
            .map_err(|_| invalid("the host is neither a DNS name nor an IP address"))?;
        Ok(Self {
            address,
            server_name,
        })
    }

    /// A node at `address`, its certificate checked against `server_name` instead of
    /// the host part.
    pub fn with_server_name(address: impl Into<String>, server_name: ServerName<'static>) -> Self {
        Self {
            address: address.into(),
            server_name,
        }
    }
}

/// How to reach an HSM cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The cluster's nodes.
    pub nodes: Vec<NodeAddress>,
    /// The KMS side of the link: client certificate and the CA nodes must chain to
    /// (`strongroom_certs::tls::mtls_client_config`).
    pub tls: Arc<rustls::ClientConfig>,
    /// Connections kept open to each node.
    pub connections_per_node: usize,
    /// How long a request waits for its answer before it counts as failed (and is
    /// retried elsewhere).
    pub request_timeout: Duration,
    /// How long a TCP connect plus TLS handshake may take.
    pub connect_timeout: Duration,
    /// Time between health probes of each node.
    pub health_interval: Duration,
    /// How long a health probe waits for the node's `Status` answer. A probe without an
    /// answer marks the node unhealthy and closes its silent connections, failing their
    /// requests over to another node (see the module docs).
    pub probe_timeout: Duration,
    /// Attempts per request, the first included, across all nodes.
    pub max_attempts: u32,
}

impl ClusterConfig {
    /// The defaults: [`DEFAULT_CONNECTIONS_PER_NODE`], [`DEFAULT_REQUEST_TIMEOUT`],
    /// [`DEFAULT_CONNECT_TIMEOUT`], [`DEFAULT_HEALTH_INTERVAL`],
    /// [`DEFAULT_PROBE_TIMEOUT`], and two attempts per node (at least 3).
    pub fn new(nodes: Vec<NodeAddress>, tls: Arc<rustls::ClientConfig>) -> Self {
        let max_attempts = u32::try_from(nodes.len().saturating_mul(2))
            .unwrap_or(u32::MAX)
            .max(3);
        Self {
            nodes,
            tls,
            connections_per_node: DEFAULT_CONNECTIONS_PER_NODE,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            health_interval: DEFAULT_HEALTH_INTERVAL,
            probe_timeout: DEFAULT_PROBE_TIMEOUT,
            max_attempts,
        }
    }

    fn validate(&self) -> Result<()> {
        if self.nodes.is_empty() {
            return Err(HsmError::invalid("an HSM cluster needs at least one node"));
        }
        if !(1..=MAX_CONNECTIONS_PER_NODE).contains(&self.connections_per_node) {
            return Err(HsmError::invalid(format!(
                "connections per node must be between 1 and {MAX_CONNECTIONS_PER_NODE}"
            )));
        }
        for (name, value) in [
            ("request timeout", self.request_timeout),
            ("connect timeout", self.connect_timeout),
            ("health interval", self.health_interval),
            ("probe timeout", self.probe_timeout),
        ] {
            if value.is_zero() {
                return Err(HsmError::invalid(format!("the {name} must not be zero")));
            }
        }
        if self.max_attempts == 0 {
            return Err(HsmError::invalid("max attempts must be at least 1"));
        }
        Ok(())
    }
}

/// One node's health, as the last probe or request found it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeHealth {
    /// The node's `host:port`.
    pub address: String,
    /// Whether it gets new requests: it answered the last probe, unsealed and synced.
    pub healthy: bool,
    /// Why it is unhealthy (or `ok`, or `not checked yet`).
    pub reason: String,
    /// Requests on it now.
    pub in_flight: usize,
    /// Open connections to it.
    pub connections: usize,
    /// Its last answer to `Status`, if it gave one.
    pub status: Option<StatusReply>,
}

/// The client of an HSM cluster; see the module docs. Implements [`Hsm`].
#[derive(Debug)]
pub struct ClusterClient {
    inner: Arc<Inner>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

#[derive(Debug)]
struct Inner {
    nodes: Vec<Arc<Node>>,
    max_attempts: u32,
    probe_timeout: Duration,
    max_frame_len: usize,
    next: AtomicUsize,
    closed: AtomicBool,
}

impl ClusterClient {
    /// Starts a client: one health task per node, connections opened as needed. Nodes
    /// may be down; requests go to whichever answer.
    ///
    /// # Errors
    /// [`Code::InvalidParameter`] for an invalid configuration; [`Code::Internal`] when
    /// called outside a tokio runtime.
    pub fn connect(config: ClusterConfig) -> Result<Self> {
        config.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            HsmError::internal("the HSM cluster client must be started inside a tokio runtime")
        })?;
        let timings = Timings {
            connect_timeout: config.connect_timeout,
            request_timeout: config.request_timeout,
            health_interval: config.health_interval,
            probe_timeout: config.probe_timeout,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
        };
        let nodes: Vec<Arc<Node>> = config
            .nodes
            .into_iter()
            .map(|address| {
                Arc::new(Node::new(
                    address,
                    Arc::clone(&config.tls),
                    timings,
                    config.connections_per_node,
                ))
            })
            .collect();
        let (shutdown, stop) = watch::channel(false);
        let tasks = nodes
            .iter()
            .map(|node| runtime.spawn(Arc::clone(node).health_loop(stop.clone())))
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                nodes,
                max_attempts: config.max_attempts,
                probe_timeout: config.probe_timeout,
                max_frame_len: DEFAULT_MAX_FRAME_LEN,
                next: AtomicUsize::new(0),
                closed: AtomicBool::new(false),
            }),
            shutdown,
            tasks,
        })
    }

    /// Every node's health, in configuration order.
    pub fn health(&self) -> Vec<NodeHealth> {
        self.inner.nodes.iter().map(|node| node.health()).collect()
    }

    /// Stops the health tasks and closes every connection; requests still waiting fail
    /// with [`Code::Unavailable`], later ones at once. Dropping the client does the same.
    pub fn close(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.shutdown.send_replace(true);
        for node in &self.inner.nodes {
            node.close("the HSM cluster client was closed");
        }
    }
}

impl Drop for ClusterClient {
    fn drop(&mut self) {
        self.close();
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Hsm for ClusterClient {
    async fn call(&self, op: Op) -> Result<Reply> {
        self.inner.call(op).await
    }
}

impl Inner {
    async fn call(&self, op: Op) -> Result<Reply> {
        let request = EncodedRequest::new(op, self.max_frame_len)?;
        let mut tried: Vec<bool> = Vec::new();
        let mut failures: Vec<(usize, HsmError)> = Vec::new();
        let mut round: u32 = 0;
        let mut attempts: u32 = 0;
        let started = Instant::now();
        while attempts < self.max_attempts {
            if self.closed.load(Ordering::Acquire) {
                return Err(HsmError::new(
                    Code::Unavailable,
                    "the HSM cluster client is closed",
                ));
            }
            let index = match self.pick(&tried) {
                Some(index) => index,
                None => {
                    // Every node failed once in this round: pause, then go round again.
                    round = round.saturating_add(1);
                    tried.iter_mut().for_each(|t| *t = false);
                    tokio::time::sleep(ROUND_PAUSE.saturating_mul(round)).await;
                    match self.pick(&tried) {
                        Some(index) => index,
                        None => break,
                    }
                }
            };
            let Some(node) = self.nodes.get(index) else {
                break;
            };
            if tried.is_empty() {
                tried = vec![false; self.nodes.len()];
            }
            if let Some(slot) = tried.get_mut(index) {
                *slot = true;
            }
            if !node.is_usable() && !node.has_live_connection() {
                // Every node is unhealthy (or this one would not have been picked) and
                // this one has no connection. Connecting here would hold the request
                // for the whole connect timeout if the node drops packets, so the
                // request asks for a probe now and goes round the nodes again (the
                // rounds' pauses) for up to `UNHEALTHY_WAIT` (or `probe_timeout` if
                // shorter), in case a probe finds a node back (one that was only slow,
                // or has restarted); then it fails. Not an attempt: nothing was sent.
                node.probe_soon();
                failures.push((index, node.unhealthy_error()));
                if started.elapsed() >= self.probe_timeout.min(UNHEALTHY_WAIT) {
                    break;
                }
                continue;
            }
            attempts = attempts.saturating_add(1);
            match node.call(&request).await {
                Ok(reply) => return Ok(reply),
                Err(error) if error.is_retryable() => {
                    tracing::debug!(
                        node = node.address.address,
                        op = request.kind(),
                        error = %error,
                        "HSM request failed; trying another node"
                    );
                    node.note_failure(&error);
                    failures.push((index, error));
                }
                Err(error) => return Err(error),
            }
        }
        Err(self.exhausted(&request, &failures))
    }

    /// The node for the next attempt: among those not `tried` in this round, the
    /// usable one with the fewest requests in flight (ties rotate); failing that, any
    /// untried node, since an unhealthy one may be back.
    fn pick(&self, tried: &[bool]) -> Option<usize> {
        let count = self.nodes.len();
        if count == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut best: Option<(usize, usize)> = None;
        let mut fallback = None;
        for offset in 0..count {
            let index = start.wrapping_add(offset) % count;
            if tried.get(index).copied().unwrap_or(false) {
                continue;
            }
            let Some(node) = self.nodes.get(index) else {
                continue;
            };
            if node.is_usable() {
                let load = node.in_flight();
                if best.is_none_or(|(_, least)| load < least) {
                    best = Some((index, load));
                }
            } else {
                fallback.get_or_insert(index);
            }
        }
        best.map(|(index, _)| index).or(fallback)
    }

    /// The error for a request no node could serve.
    fn exhausted(&self, request: &EncodedRequest, failures: &[(usize, HsmError)]) -> HsmError {
        let Some((_, first)) = failures.first() else {
            return HsmError::new(Code::Unavailable, "no HSM node was tried");
        };
        let code = if failures.iter().all(|(_, e)| e.code == first.code) {
            first.code
        } else {
            Code::Unavailable
        };
        let mut nodes = Vec::new();
        for (index, node) in self.nodes.iter().enumerate() {
            if let Some((_, error)) = failures.iter().rev().find(|(i, _)| *i == index) {
                nodes.push(format!("{} ({error})", node.address.address));
            }
        }
        HsmError::new(
            code,
            format!(
                "no HSM node could serve {} after {} attempts: {}",
                request.kind(),
                failures.len(),
                nodes.join("; ")
            ),
        )
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests: an unexpected error should fail the test loudly"
)]
#[path = "client_tests.rs"]
mod black_hole_tests;

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn node_addresses_derive_the_server_name() {
        let node = NodeAddress::new("hsm-1.example.com:8020").unwrap();
        assert_eq!(
            node.server_name,
            ServerName::try_from("hsm-1.example.com").unwrap()
        );
        let ip = NodeAddress::new("127.0.0.1:8020").unwrap();
        assert!(matches!(ip.server_name, ServerName::IpAddress(_)));
        let v6 = NodeAddress::new("[::1]:8020").unwrap();
        assert!(matches!(v6.server_name, ServerName::IpAddress(_)));
        for bad in ["no-port", "host:99999", "[::1]8020", "bad host:1", ":8020"] {
            assert_eq!(
                NodeAddress::new(bad).unwrap_err().code,
                Code::InvalidParameter,
                "{bad}"
            );
        }
    }
}

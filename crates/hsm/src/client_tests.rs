//! The cluster client against nodes that drop packets: two in-process host services,
//! each behind a TCP proxy the test turns into a black hole (it forwards nothing and
//! answers nothing, but holds every connection open: no reset ever tells the client).
//! Requests caught on a black-holed node go elsewhere within a probe cycle, not after
//! the request timeout; with every node black-holed they fail at once; a node that
//! comes back is used again by itself.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use strongroom_crypto::blob::DomainKey;
use strongroom_proto::hsm::v1 as pb;
use tokio::sync::watch;

use super::{ClusterClient, ClusterConfig, NodeAddress};
use crate::backend::{Hsm as _, Op, Reply};
use crate::host::HostOptions;
use crate::test_host::Pki;

/// A blocking TCP proxy; see the module docs.
struct Proxy {
    address: String,
    black_hole: Arc<AtomicBool>,
    /// Bumped when a black hole starts: older connections stay dead after it heals.
    epoch: Arc<AtomicU64>,
}

impl Proxy {
    fn start(upstream: String) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let black_hole = Arc::new(AtomicBool::new(false));
        let epoch = Arc::new(AtomicU64::new(0));
        let (hole, epochs) = (Arc::clone(&black_hole), Arc::clone(&epoch));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if hole.load(Ordering::SeqCst) {
                    std::thread::spawn(move || drain(client));
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let mine = epochs.load(Ordering::SeqCst);
                for (from, to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let epochs = Arc::clone(&epochs);
                    std::thread::spawn(move || pump(from, to, &epochs, mine));
                }
            }
        });
        Self {
            address,
            black_hole,
            epoch,
        }
    }

    fn black_hole(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.black_hole.store(true, Ordering::SeqCst);
    }

    fn heal(&self) {
        self.black_hole.store(false, Ordering::SeqCst);
    }
}

/// Reads and drops everything until the peer closes.
fn drain(mut stream: TcpStream) {
    let mut buffer = [0u8; 8192];
    while matches!(stream.read(&mut buffer), Ok(n) if n > 0) {}
}

/// Forwards while the connection's epoch is current, drops everything afterwards.
fn pump(mut from: TcpStream, mut to: TcpStream, epochs: &AtomicU64, mine: u64) {
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if epochs.load(Ordering::SeqCst) == mine && to.write_all(&buffer[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// Two host services sharing a domain key, each behind a proxy, and a client of the
/// proxies with test-sized timings.
struct Setup {
    proxies: Vec<Proxy>,
    client: Arc<ClusterClient>,
    _stop: watch::Sender<bool>,
}

/// The client's timings here: a black hole costs a request at most about
/// `HEALTH_INTERVAL + PROBE_TIMEOUT`, far less than `REQUEST_TIMEOUT`.
const HEALTH_INTERVAL: Duration = Duration::from_millis(200);
const PROBE_TIMEOUT: Duration = Duration::from_millis(300);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

async fn setup() -> Setup {
    let pki = Pki::new();
    let domain = DomainKey::generate().unwrap();
    let (stop_sender, stop) = watch::channel(false);
    let mut proxies = Vec::new();
    for _ in 0..2 {
        let address = pki
            .serve(&domain, HostOptions::default(), stop.clone())
            .await;
        proxies.push(Proxy::start(address));
    }
    let tls = Arc::clone(&pki.client);
    let nodes = proxies
        .iter()
        .map(|p| NodeAddress::new(p.address.clone()).unwrap())
        .collect();
    let mut config = ClusterConfig::new(nodes, tls);
    config.health_interval = HEALTH_INTERVAL;
    config.probe_timeout = PROBE_TIMEOUT;
    config.request_timeout = REQUEST_TIMEOUT;
    config.connect_timeout = CONNECT_TIMEOUT;
    let client = Arc::new(ClusterClient::connect(config).unwrap());
    Setup {
        proxies,
        client,
        _stop: stop_sender,
    }
}

fn random() -> Op {
    Op::GenerateRandom(pb::GenerateRandom { length: 16 })
}

/// Waits up to `within` for `condition`.
async fn eventually(within: Duration, condition: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    condition()
}

/// `tasks` tasks each sending `each` requests one after the other; the slowest
/// request and the failures.
async fn load(client: &Arc<ClusterClient>, tasks: usize, each: usize) -> (Duration, Vec<String>) {
    let mut running = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let client = Arc::clone(client);
        running.spawn(async move {
            let mut slowest = Duration::ZERO;
            let mut failures = Vec::new();
            for _ in 0..each {
                let started = Instant::now();
                match client.call(random()).await {
                    Ok(Reply::GenerateRandom(_)) => {}
                    Ok(other) => failures.push(format!("{other:?}")),
                    Err(e) => failures.push(e.to_string()),
                }
                slowest = slowest.max(started.elapsed());
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (slowest, failures)
        });
    }
    let mut slowest = Duration::ZERO;
    let mut failures = Vec::new();
    while let Some(done) = running.join_next().await {
        let (slow, failed) = done.unwrap();
        slowest = slowest.max(slow);
        failures.extend(failed);
    }
    (slowest, failures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_on_a_black_holed_node_fail_over_within_a_probe_cycle() {
    let setup = setup().await;
    let client = &setup.client;
    // Both nodes in use, with open connections.
    let (_, failures) = load(client, 8, 20).await;
    assert!(failures.is_empty(), "{failures:?}");
    assert!(
        eventually(Duration::from_secs(2), || client
            .health()
            .iter()
            .all(|h| h.healthy && h.connections > 0))
        .await,
        "{:?}",
        client.health()
    );

    setup.proxies[0].black_hole();
    // Requests land on the black-holed node's open connections until its probe finds
    // it silent; then they are retried on the other node, long before the 10 s request
    // timeout.
    let (slowest, failures) = load(client, 8, 40).await;
    assert!(failures.is_empty(), "{failures:?}");
    // About HEALTH_INTERVAL + PROBE_TIMEOUT; generous for a loaded machine, and a
    // quarter of the request timeout such a request used to wait.
    let bound = REQUEST_TIMEOUT / 4;
    assert!(slowest < bound, "the slowest request took {slowest:?}");
    let health = client.health();
    assert!(!health[0].healthy, "{health:?}");
    assert!(health[1].healthy, "{health:?}");

    // Healed: the probe reconnects (after the connect it had started in the black hole
    // times out) and the node is used again.
    setup.proxies[0].heal();
    assert!(
        eventually(CONNECT_TIMEOUT + HEALTH_INTERVAL * 5, || client.health()[0]
            .healthy)
        .await,
        "{:?}",
        client.health()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_node_black_holed_requests_fail_at_once_and_recover_by_themselves() {
    let setup = setup().await;
    let client = &setup.client;
    let (_, failures) = load(client, 4, 10).await;
    assert!(failures.is_empty(), "{failures:?}");

    for proxy in &setup.proxies {
        proxy.black_hole();
    }
    // The first requests wait for the probes; once both nodes are known unhealthy,
    // a request is refused after waiting for a probe to find one back (the probe
    // timeout), instead of waiting for a connection that cannot be made (the connect
    // timeout) on each node in turn.
    let started = Instant::now();
    let first = client.call(random()).await.unwrap_err();
    let waited = started.elapsed();
    assert!(waited < REQUEST_TIMEOUT / 4, "{waited:?}");
    assert_eq!(first.code, pb::error::Code::Unavailable, "{first}");
    assert!(
        eventually(Duration::from_secs(2), || client
            .health()
            .iter()
            .all(|h| !h.healthy))
        .await
    );
    for _ in 0..20 {
        let started = Instant::now();
        let err = client.call(random()).await.unwrap_err();
        assert_eq!(err.code, pb::error::Code::Unavailable, "{err}");
        assert!(err.message.contains("unhealthy"), "{err}");
        for proxy in &setup.proxies {
            assert!(err.message.contains(&proxy.address), "{err}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }

    // One node back: requests succeed again without anything else being done.
    setup.proxies[1].heal();
    let healed = Instant::now();
    let mut recovered = false;
    while healed.elapsed() < CONNECT_TIMEOUT + HEALTH_INTERVAL * 5 {
        if client.call(random()).await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(recovered, "{:?}", client.health());
}

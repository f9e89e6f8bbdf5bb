//! HSM faults under load: a KMS node whose instance reaches two HSM node processes
//! through TCP proxies this test controls, an access point with a client key, an
//! AES key, and `strongroom bench instance` (Encrypt, 8 connections) run as a child
//! process for a few seconds per phase while the test:
//!
//! a. `kill -9`s one HSM node and starts it again (sealed, then unsealed by the
//!    officer): no request fails;
//! b. black-holes one node (its proxy stops forwarding and holds every connection open
//!    without answering, the hard case), then heals it: no request fails, none hangs;
//! c. black-holes both: every request is refused quickly with
//!    `ServiceUnavailableTemporary`, and once one node is back requests succeed again by
//!    themselves, without restarting the KMS node.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support_kms::{HsmCluster, Kms, strongroom};

/// A TCP proxy in front of one HSM node's host port. While it is a black hole it
/// forwards nothing in either direction and answers nothing, but accepts connections
/// and keeps them (and those it had) open; connections of a black hole stay dead after
/// it heals (their TLS streams lost data), new ones are forwarded again.
struct Proxy {
    address: String,
    shared: Arc<ProxyShared>,
}

struct ProxyShared {
    upstream: String,
    black_hole: AtomicBool,
    /// Bumped when a black hole starts: connections of an older epoch are dead.
    epoch: AtomicU64,
    /// Bytes forwarded from the node to the KMS.
    answered: AtomicU64,
}

impl Proxy {
    fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let shared = Arc::new(ProxyShared {
            upstream: upstream.to_owned(),
            black_hole: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            answered: AtomicU64::new(0),
        });
        let accepting = Arc::clone(&shared);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                accept(&accepting, client);
            }
        });
        Self { address, shared }
    }

    fn black_hole(&self) {
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
        self.shared.black_hole.store(true, Ordering::SeqCst);
    }

    fn heal(&self) {
        self.shared.black_hole.store(false, Ordering::SeqCst);
    }

    /// Bytes the node has answered through the proxy so far.
    fn answered(&self) -> u64 {
        self.shared.answered.load(Ordering::SeqCst)
    }
}

fn accept(shared: &Arc<ProxyShared>, client: TcpStream) {
    if shared.black_hole.load(Ordering::SeqCst) {
        // Accepted, never answered, held open until the client gives up.
        std::thread::spawn(move || {
            let mut client = client;
            let mut buffer = [0u8; 16 * 1024];
            while matches!(client.read(&mut buffer), Ok(n) if n > 0) {}
        });
        return;
    }
    let Ok(upstream) = TcpStream::connect(&shared.upstream) else {
        // The node is down: the connection is refused (closed at once).
        return;
    };
    let epoch = shared.epoch.load(Ordering::SeqCst);
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let pairs = [
        (
            client.try_clone().unwrap(),
            upstream.try_clone().unwrap(),
            false,
        ),
        (upstream, client, true),
    ];
    for (from, to, answers) in pairs {
        let shared = Arc::clone(shared);
        std::thread::spawn(move || pump(&shared, from, to, epoch, answers));
    }
}

/// Copies `from` to `to` while the connection's epoch is current; discards afterwards.
fn pump(shared: &ProxyShared, mut from: TcpStream, mut to: TcpStream, epoch: u64, answers: bool) {
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if shared.epoch.load(Ordering::SeqCst) != epoch {
            continue;
        }
        if to.write_all(&buffer[..n]).is_err() {
            break;
        }
        if answers {
            shared
                .answered
                .fetch_add(u64::try_from(n).unwrap(), Ordering::SeqCst);
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// Everything a bench run needs.
struct Target {
    endpoint: String,
    ca_file: PathBuf,
    key_file: PathBuf,
    password_file: PathBuf,
    key_id: String,
}

/// One `strongroom bench instance` child.
struct Bench {
    child: Child,
    seconds: f64,
}

/// What a run reported, and how long it took once its load had started.
struct Report {
    json: Value,
    seconds: f64,
    /// From the load's start (as the proxies saw it) to the bench's exit.
    load_to_exit: Duration,
}

impl Report {
    fn ok(&self) -> u64 {
        self.json["ok"].as_u64().unwrap()
    }

    fn errors(&self) -> u64 {
        self.json["errors"]
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_u64().unwrap())
            .sum()
    }

    fn max_latency_ms(&self) -> f64 {
        self.json["latency_ms"]["max"].as_f64().unwrap_or(0.0)
    }

    /// How long the bench ran past its window: requests that were still waiting.
    fn overrun(&self) -> Duration {
        self.load_to_exit
            .saturating_sub(Duration::from_secs_f64(self.seconds))
    }

    fn summary(&self) -> String {
        format!(
            "{} ok, errors {}, latency ms {}, exit {:.1?} after the load started (window {} s)",
            self.ok(),
            self.json["errors"],
            self.json["latency_ms"],
            self.load_to_exit,
            self.seconds
        )
    }
}

impl Bench {
    fn start(target: &Target, seconds: f64) -> Self {
        let child = strongroom()
            .args([
                "bench",
                "instance",
                "--endpoint",
                &target.endpoint,
                "--ca-file",
            ])
            .arg(&target.ca_file)
            .arg("--client-key-file")
            .arg(&target.key_file)
            .arg("--password-file")
            .arg(&target.password_file)
            .args([
                "--api",
                "Encrypt",
                "--key-id",
                &target.key_id,
                "--connections",
                "8",
                "--requests",
                "200",
                "--warmup-seconds",
                "0",
                "--seconds",
                &seconds.to_string(),
                "--json",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Self { child, seconds }
    }

    /// Waits until the proxies see answers flowing (the load has started); returns
    /// that moment.
    fn wait_for_load(&mut self, proxies: &[Proxy]) -> Instant {
        let total = || proxies.iter().map(Proxy::answered).sum::<u64>();
        let before = total();
        let deadline = Instant::now() + Duration::from_secs(20);
        while total() < before + 4096 {
            assert!(Instant::now() < deadline, "the bench's load never started");
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the bench exited ({status}) before its load started");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Instant::now()
    }

    fn finish(self, load_started: Instant) -> Report {
        let out = self.child.wait_with_output().unwrap();
        let load_to_exit = load_started.elapsed();
        assert!(
            out.status.success(),
            "bench: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Report {
            json: serde_json::from_slice(&out.stdout).unwrap(),
            seconds: self.seconds,
            load_to_exit,
        }
    }
}

/// Waits until `proxy`'s node answers under load (the KMS uses it again).
fn wait_until_serving(proxy: &Proxy, within: Duration) -> Duration {
    let start = Instant::now();
    let before = proxy.answered();
    while proxy.answered() < before + 2048 {
        assert!(
            start.elapsed() < within,
            "the node behind {} got no load within {within:?}",
            proxy.address
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    start.elapsed()
}

fn find_file(dir: &Path, wanted: impl Fn(&str) -> bool) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| wanted(p.file_name().unwrap().to_str().unwrap()))
        .unwrap_or_else(|| panic!("no such file in {}", dir.display()))
}

#[test]
fn hsm_nodes_stopped_or_black_holed_under_load() {
    let started = Instant::now();
    let scratch = tempfile::tempdir().unwrap();
    let mut cluster = HsmCluster::start(scratch.path());
    let proxies: Vec<Proxy> = cluster
        .nodes
        .iter()
        .map(|n| Proxy::start(&n.host))
        .collect();
    let kms = Kms::start(&[], None);
    let hosts: Vec<String> = proxies.iter().map(|p| p.address.clone()).collect();
    let instance = kms.connected_instance_via(&cluster, &hosts, &["--spec", "100000"]);
    let key_id = kms
        .ok(&[
            "key",
            "create",
            "--instance",
            &instance,
            "--spec",
            "Aliyun_AES_256",
        ])
        .lines()
        .next()
        .unwrap()
        .trim()
        .to_owned();
    let app = scratch.path().join("app");
    kms.ok(&[
        "aap",
        "create",
        "--instance",
        &instance,
        "--name",
        "faults",
        "--resources",
        "key/*",
        "--network",
        "127.0.0.1",
        "--dir",
        app.to_str().unwrap(),
    ]);
    let port = kms.json(&["instance", "get", &instance])["KmsInstance"]["InstanceApiPort"]
        .as_u64()
        .unwrap();
    let target = Target {
        endpoint: format!("127.0.0.1:{port}"),
        ca_file: app.join(format!("PrivateKmsCA_{instance}.pem")),
        key_file: find_file(&app, |n| {
            n.starts_with("clientKey_") && !n.contains("Password")
        }),
        password_file: find_file(&app, |n| n.ends_with("_Password.txt")),
        key_id,
    };
    let setup = started.elapsed();

    // a. kill -9 one node under load, start it again sealed, unseal it.
    let mut bench = Bench::start(&target, 4.0);
    let load = bench.wait_for_load(&proxies);
    std::thread::sleep(Duration::from_millis(500));
    let node = &mut cluster.nodes[0];
    node.kill9();
    let killed = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    node.restart_sealed();
    node.unseal();
    let down = killed.elapsed();
    let stopped = bench.finish(load);
    eprintln!(
        "a. node 0 killed, back and unsealed after {down:.1?}: {}",
        stopped.summary()
    );
    assert!(stopped.ok() > 0);
    assert_eq!(stopped.errors(), 0, "a: {}", stopped.summary());

    // b. black-hole node 0 while node 1 is healthy, then heal it.
    let mut bench = Bench::start(&target, 5.0);
    let load = bench.wait_for_load(&proxies);
    let back = wait_until_serving(&proxies[0], Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));
    proxies[0].black_hole();
    let holed = Instant::now();
    std::thread::sleep(Duration::from_millis(2500));
    proxies[0].heal();
    let partitioned = bench.finish(load);
    eprintln!(
        "b. node 0 served again {back:.1?} into the run; black hole for {:.1?}: {}",
        holed.elapsed().min(Duration::from_millis(2500)),
        partitioned.summary()
    );
    let mut bench = Bench::start(&target, 3.0);
    let load = bench.wait_for_load(&proxies);
    let back = wait_until_serving(&proxies[0], Duration::from_secs(5));
    let healed = bench.finish(load);
    eprintln!(
        "b. healed; node 0 served again {back:.1?} into the run: {}",
        healed.summary()
    );
    assert_eq!(partitioned.errors(), 0, "b: {}", partitioned.summary());
    assert!(
        partitioned.overrun() < Duration::from_secs(3),
        "b: requests hung past the window: {}",
        partitioned.summary()
    );
    assert!(
        partitioned.max_latency_ms() < 7000.0,
        "b: {}",
        partitioned.summary()
    );
    assert_eq!(healed.errors(), 0, "b healed: {}", healed.summary());

    // c. both black-holed: quick 503s; one back: success again by itself.
    proxies[0].black_hole();
    proxies[1].black_hole();
    let holed = Instant::now();
    // Requests already on a node's connections wait until its health probe finds it
    // silent (up to the probe interval plus the probe timeout, 2 s + 2 s), then every
    // request is refused at once: a window long enough to see both.
    let bench = Bench::start(&target, 6.0);
    // No answers flow now: time the run from its start (preparation included).
    let none = bench.finish(holed);
    eprintln!("c. both black-holed: {}", none.summary());
    let errors = none.json["errors"].as_object().unwrap();
    assert_eq!(none.ok(), 0, "c: {}", none.summary());
    assert!(
        errors
            .keys()
            .all(|code| code == "ServiceUnavailableTemporary"),
        "c: {}",
        none.summary()
    );
    assert!(none.errors() > 0, "c: {}", none.summary());
    // No request waits for the bench's (the SDK's) 10 s timeout; once both nodes are
    // known to be down, a request is refused after about a second, the time the
    // cluster client gives a probe to find a node back.
    assert!(none.max_latency_ms() < 7000.0, "c: {}", none.summary());
    let p50 = none.json["latency_ms"]["p50"].as_f64().unwrap();
    assert!(p50 < 2000.0, "c: {}", none.summary());
    proxies[1].heal();
    let healed_at = Instant::now();
    let mut recovered = None;
    while healed_at.elapsed() < Duration::from_secs(15) {
        let bench = Bench::start(&target, 1.0);
        let report = bench.finish(healed_at);
        if report.errors() == 0 && report.ok() > 0 {
            recovered = Some(healed_at.elapsed());
            break;
        }
    }
    let recovered = recovered.expect("c: no clean run within 15 s of node 1 coming back");
    eprintln!(
        "c. both black-holed for {:.1?}; node 1 healed: clean again within {recovered:.1?}",
        healed_at - holed
    );
    proxies[0].heal();
    eprintln!("setup {setup:.1?}, total {:.1?}", started.elapsed());
}

//! `strongroom bench hsm`: HSM operations through the cluster client, over the mutual-TLS
//! HSM link, against an in-process node (`--local`) or a real deployment (`--node`).
//!
//! Rows: AES-256-GCM Encrypt of 32 bytes, and Sign of a 32-byte DIGEST with RSA-2048
//! (RSA_PSS_SHA_256), EC_P256 and EC_P256K (ECDSA_SHA_256) and EC_SM2 (SM2DSA), each at
//! every requested number of requests in flight (default 1, 16, 64). A row generates its
//! key on the cluster (blobs are transient; nothing is stored), warms up, then runs
//! `rounds` timed rounds: `in_flight` tasks each send one request after another. It
//! reports the median round's ops/s and the p50/p99 latency over all rounds.
//!
//! Set against: the development machine's single-core figure of the same primitive
//! (`guides/limits.md` §1), as measured and scaled by [`Options::machine_scale`] (the
//! ratio of this machine to that one, as `strongroom bench crypto` shows it); the
//! issue's targets are ≥ 80 % of it for signatures and ≥ 100,000 ops/s for AES through
//! one node. In `--local` mode each row also shows the same operation called directly
//! on the engine, in process, on one thread: the link's cost is the difference.

mod target;
mod text;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use strongroom_hsm::backend::{Hsm as _, Op, Reply};
use strongroom_hsm::client::ClusterClient;
use strongroom_hsm::error::HsmError;
use strongroom_proto::hsm::v1 as pb;

use crate::error::BenchError;
use crate::load;
use crate::measure::count_to_f64;

pub use target::Target;
pub use text::TextTable;

/// Largest accepted `--seconds`.
pub const MAX_SECONDS: f64 = 3600.0;
/// Largest accepted requests in flight.
pub const MAX_IN_FLIGHT: u32 = 4096;
/// Largest accepted rounds.
pub const MAX_ROUNDS: u32 = 100;
/// The throughput target for AES-256-GCM Encrypt through one node.
pub const AES_TARGET_OPS: f64 = 100_000.0;
/// The target for signatures: this share of the single-core figure.
pub const SIGN_TARGET_SHARE: f64 = 0.8;

/// Key ids and versions the benchmark's keys are bound to.
const KEY_ID: &str = "key-bench-hsm";
const VERSION_ID: &str = "version-bench-hsm";
/// Bytes of the plaintext or digest each request carries.
const INPUT_LEN: usize = 32;

/// What to run and for how long.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Seconds per timed round.
    pub seconds: f64,
    /// Timed rounds per row; the median is reported.
    pub rounds: u32,
    /// Requests in flight; one row per level and operation.
    pub in_flight: Vec<u32>,
    /// Only rows whose name contains this, ignoring ASCII case.
    pub filter: Option<String>,
    /// This machine's speed relative to the development machine of `guides/limits.md`
    /// (about 0.5 for the CI VM), used for the second ratio.
    pub machine_scale: f64,
    /// Connections to each node.
    pub connections_per_node: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            seconds: 1.0,
            rounds: 3,
            in_flight: vec![1, 16, 64],
            filter: None,
            machine_scale: 0.5,
            connections_per_node: 2,
        }
    }
}

/// One operation of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Case {
    spec: &'static str,
    usage: &'static str,
    operation: &'static str,
    algorithm: &'static str,
    /// limits.md figure: (row, single-core ops/s).
    reference: (&'static str, f64),
}

const CASES: [Case; 5] = [
    Case {
        spec: "Aliyun_AES_256",
        usage: "ENCRYPT/DECRYPT",
        operation: "Encrypt",
        algorithm: "AES_GCM",
        reference: ("AES-256-GCM seal 32 B, aws-lc-rs", 12_712_615.0),
    },
    Case {
        spec: "RSA_2048",
        usage: "SIGN/VERIFY",
        operation: "Sign",
        algorithm: "RSA_PSS_SHA_256",
        reference: ("RSA-2048 sign PSS-SHA256, aws-lc-rs", 4_703.0),
    },
    Case {
        spec: "EC_P256",
        usage: "SIGN/VERIFY",
        operation: "Sign",
        algorithm: "ECDSA_SHA_256",
        reference: ("ECDSA P-256 sign SHA-256, aws-lc-rs", 83_719.0),
    },
    Case {
        spec: "EC_P256K",
        usage: "SIGN/VERIFY",
        operation: "Sign",
        algorithm: "ECDSA_SHA_256",
        reference: ("ECDSA secp256k1 sign SHA-256, RustCrypto k256", 41_431.0),
    },
    Case {
        spec: "EC_SM2",
        usage: "SIGN/VERIFY",
        operation: "Sign",
        algorithm: "SM2DSA",
        reference: ("SM2DSA sign SM3 w/ ID, RustCrypto sm2", 14_332.0),
    },
];

impl Case {
    fn name(&self) -> String {
        match self.operation {
            "Encrypt" => format!("{} Encrypt {} {INPUT_LEN} B", self.spec, self.algorithm),
            _ => format!("{} Sign {} {INPUT_LEN} B digest", self.spec, self.algorithm),
        }
    }

    fn generate(&self) -> Op {
        Op::GenerateKey(pb::GenerateKey {
            key_id: KEY_ID.to_owned(),
            version_id: VERSION_ID.to_owned(),
            key_spec: self.spec.to_owned(),
            key_usage: self.usage.to_owned(),
        })
    }

    /// The timed request, for the key `blob`.
    fn request(&self, blob: Vec<u8>) -> Op {
        let key = Some(pb::KeyRef {
            key_id: KEY_ID.to_owned(),
            version_id: VERSION_ID.to_owned(),
            key_spec: self.spec.to_owned(),
            key_usage: self.usage.to_owned(),
            blob,
        });
        let input = vec![0x5a; INPUT_LEN];
        match self.operation {
            "Encrypt" => Op::Encrypt(pb::Encrypt {
                key,
                plaintext: input,
                algorithm: self.algorithm.to_owned(),
                ..pb::Encrypt::default()
            }),
            _ => Op::Sign(pb::Sign {
                key,
                algorithm: self.algorithm.to_owned(),
                message: input,
                message_type: "DIGEST".to_owned(),
            }),
        }
    }

    /// Whether `reply` is the kind of answer the request asks for.
    fn answered(&self, reply: &Reply) -> bool {
        matches!(
            (self.operation, reply),
            ("Encrypt", Reply::Encrypt(_)) | ("Sign", Reply::Sign(_))
        )
    }

    /// The target for this row, in ops/s on this machine.
    fn target(&self, machine_scale: f64) -> (String, f64) {
        if self.operation == "Encrypt" {
            ("100,000 ops/s through one node".to_owned(), AES_TARGET_OPS)
        } else {
            (
                format!("80 % of {machine_scale} x the single-core figure"),
                SIGN_TARGET_SHARE * machine_scale * self.reference.1,
            )
        }
    }
}

/// A validated benchmark run.
#[derive(Debug)]
pub struct HsmBench {
    options: Options,
    round: Duration,
    rows: Vec<(String, Case, u32)>,
}

impl HsmBench {
    /// Validates `options` and selects the rows.
    ///
    /// # Errors
    /// [`BenchError::InvalidSeconds`], [`BenchError::InvalidInFlight`],
    /// [`BenchError::InvalidThreads`] (for rounds or connections), or
    /// [`BenchError::NoMatch`].
    pub fn new(options: Options) -> Result<Self, BenchError> {
        let invalid_seconds = || BenchError::InvalidSeconds {
            value: options.seconds,
            max: MAX_SECONDS,
        };
        if !(options.seconds > 0.0 && options.seconds <= MAX_SECONDS) {
            return Err(invalid_seconds());
        }
        let round = Duration::try_from_secs_f64(options.seconds).map_err(|_| invalid_seconds())?;
        if options.in_flight.is_empty() {
            return Err(BenchError::InvalidInFlight {
                value: 0,
                max: MAX_IN_FLIGHT,
            });
        }
        if let Some(&bad) = options
            .in_flight
            .iter()
            .find(|n| !(1..=MAX_IN_FLIGHT).contains(*n))
        {
            return Err(BenchError::InvalidInFlight {
                value: bad,
                max: MAX_IN_FLIGHT,
            });
        }
        if !(1..=MAX_ROUNDS).contains(&options.rounds) {
            return Err(BenchError::InvalidThreads {
                value: options.rounds,
                max: MAX_ROUNDS,
            });
        }
        if !(options.machine_scale > 0.0 && options.machine_scale.is_finite()) {
            return Err(BenchError::Target(format!(
                "the machine scale must be a positive number, not {}",
                options.machine_scale
            )));
        }
        let filter = options.filter.as_deref().map(str::to_ascii_lowercase);
        let mut rows = Vec::new();
        for case in CASES {
            let name = case.name();
            if filter
                .as_deref()
                .is_some_and(|f| !name.to_ascii_lowercase().contains(f))
            {
                continue;
            }
            for &level in &options.in_flight {
                rows.push((name.clone(), case, level));
            }
        }
        if rows.is_empty() {
            return Err(BenchError::NoMatch(options.filter.unwrap_or_default()));
        }
        Ok(Self {
            options,
            round,
            rows,
        })
    }

    /// The options this run was made with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The names of the selected rows (operation and in-flight level), in run order.
    pub fn names(&self) -> impl Iterator<Item = String> + '_ {
        self.rows
            .iter()
            .map(|(name, _, level)| row_name(name, *level))
    }

    /// Starts (or connects to) `target` and runs every selected row, calling `on_row`
    /// as each finishes.
    ///
    /// # Errors
    /// [`BenchError::Target`] when the target cannot be set up, [`BenchError::Hsm`] for
    /// the first failing request, [`BenchError::WrongResult`] for a wrong answer, or
    /// whatever `on_row` returns.
    pub fn run<F>(&self, target: &Target, mut on_row: F) -> Result<Report, BenchError>
    where
        F: FnMut(&Row) -> Result<(), BenchError>,
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| BenchError::Target(format!("cannot start the async runtime: {e}")))?;
        runtime.block_on(async {
            let load_before = load::load_average();
            let connected = target.connect(self.options.connections_per_node).await?;
            let mut rows = Vec::with_capacity(self.rows.len());
            let mut keys: Vec<(Case, Vec<u8>)> = Vec::new();
            for (name, case, level) in &self.rows {
                let row_name = row_name(name, *level);
                let blob = match keys.iter().find(|(c, _)| c == case) {
                    Some((_, blob)) => blob.clone(),
                    None => {
                        let blob = generate(&connected.client, case).await.map_err(|source| {
                            BenchError::Hsm {
                                case: row_name.clone(),
                                source,
                            }
                        })?;
                        keys.push((*case, blob.clone()));
                        blob
                    }
                };
                let request = case.request(blob);
                let direct = match &connected.engine {
                    Some(engine) if *level == self.first_level() => Some(direct_rate(
                        engine.as_ref(),
                        &request,
                        self.round.min(Duration::from_millis(500)),
                        case,
                        &row_name,
                    )?),
                    _ => rows
                        .iter()
                        .rev()
                        .find(|r: &&Row| r.operation_name == *name)
                        .and_then(|r| r.direct_ops_per_sec),
                };
                let measured = self
                    .measure(&connected.client, case, &request, *level, &row_name)
                    .await?;
                let row = Row::new(
                    name,
                    &row_name,
                    case,
                    *level,
                    &self.options,
                    measured,
                    direct,
                );
                on_row(&row)?;
                rows.push(row);
            }
            connected.client.close();
            Ok(Report {
                target: target.describe(),
                seconds: self.options.seconds,
                rounds: self.options.rounds,
                connections_per_node: self.options.connections_per_node,
                machine_scale: self.options.machine_scale,
                filter: self.options.filter.clone(),
                load_average_before: load_before,
                load_average_after: load::load_average(),
                reference_source: crate::crypto::REFERENCE_SOURCE,
                rows,
            })
        })
    }

    fn first_level(&self) -> u32 {
        self.options.in_flight.first().copied().unwrap_or(1)
    }

    /// Warm-up, then the timed rounds of one row.
    async fn measure(
        &self,
        client: &Arc<ClusterClient>,
        case: &Case,
        request: &Op,
        level: u32,
        name: &str,
    ) -> Result<Measured, BenchError> {
        let warmup = (self.round / 4).clamp(Duration::from_millis(50), Duration::from_millis(500));
        round(client, case, request, level, warmup, name).await?;
        let mut rates = Vec::new();
        let mut latencies = Vec::new();
        let mut other_load = None;
        for _ in 0..self.options.rounds {
            let before = load::CpuSample::now();
            let (count, elapsed, mut samples) =
                round(client, case, request, level, self.round, name).await?;
            other_load = other_load.or(load::CpuSample::other_load_percent(
                before,
                load::CpuSample::now(),
            ));
            rates.push(rate(count, elapsed));
            latencies.append(&mut samples);
        }
        latencies.sort_unstable();
        rates.sort_by(f64::total_cmp);
        Ok(Measured {
            median: rates.get(rates.len() / 2).copied().unwrap_or(0.0),
            rounds: rates,
            p50_us: percentile(&latencies, 50),
            p99_us: percentile(&latencies, 99),
            requests: u64::try_from(latencies.len()).unwrap_or(u64::MAX),
            other_load_percent: other_load,
        })
    }
}

fn row_name(name: &str, level: u32) -> String {
    format!("{name} x{level}")
}

/// What one row's rounds found.
#[derive(Debug)]
struct Measured {
    median: f64,
    rounds: Vec<f64>,
    p50_us: f64,
    p99_us: f64,
    requests: u64,
    other_load_percent: Option<f64>,
}

async fn generate(client: &ClusterClient, case: &Case) -> Result<Vec<u8>, HsmError> {
    match client.call(case.generate()).await? {
        Reply::GenerateKey(reply) => Ok(reply.blob),
        _ => Err(HsmError::internal("GenerateKey got another reply")),
    }
}

/// One round: `level` tasks send requests one after another for `duration`. Returns
/// the requests completed, the time taken and every latency in nanoseconds.
async fn round(
    client: &Arc<ClusterClient>,
    case: &Case,
    request: &Op,
    level: u32,
    duration: Duration,
    name: &str,
) -> Result<(u64, Duration, Vec<u64>), BenchError> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..level {
        let client = Arc::clone(client);
        let request = request.clone();
        let case = *case;
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(4096);
            loop {
                let sent = Instant::now();
                if sent >= deadline {
                    return Ok(latencies);
                }
                let reply = client.call(request.clone()).await?;
                latencies.push(u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX));
                if !case.answered(&reply) {
                    return Err(HsmError::internal("the reply does not answer the request"));
                }
            }
        });
    }
    let mut all = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let latencies = joined
            .map_err(|_| BenchError::ThreadPanicked {
                case: name.to_owned(),
            })?
            .map_err(|source| BenchError::Hsm {
                case: name.to_owned(),
                source,
            })?;
        all.extend(latencies);
    }
    let elapsed = start.elapsed();
    Ok((u64::try_from(all.len()).unwrap_or(u64::MAX), elapsed, all))
}

/// The same request called directly on the engine, on one thread, in ops/s.
fn direct_rate(
    engine: &dyn strongroom_hsm::backend::Backend,
    request: &Op,
    duration: Duration,
    case: &Case,
    name: &str,
) -> Result<f64, BenchError> {
    let start = Instant::now();
    let mut count: u64 = 0;
    while start.elapsed() < duration {
        let reply = engine
            .execute(request.clone())
            .map_err(|source| BenchError::Hsm {
                case: name.to_owned(),
                source,
            })?;
        if !case.answered(&reply) {
            return Err(BenchError::WrongResult {
                case: name.to_owned(),
                what: "the engine's reply does not answer the request",
            });
        }
        count = count.saturating_add(1);
    }
    Ok(rate(count, start.elapsed()))
}

fn rate(count: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        count_to_f64(count) / seconds
    } else {
        0.0
    }
}

/// The `p`th percentile of sorted nanoseconds, in microseconds.
fn percentile(sorted: &[u64], p: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = (sorted.len() - 1).saturating_mul(p) / 100;
    sorted
        .get(index)
        .map_or(0.0, |&ns| count_to_f64(ns) / 1000.0)
}

/// One measured row.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The row's name: operation and in-flight level, e.g.
    /// `EC_P256 Sign ECDSA_SHA_256 32 B digest x16`.
    pub name: String,
    /// The operation's name without the level.
    pub operation_name: String,
    /// The key spec's wire name.
    pub spec: &'static str,
    /// `Encrypt` or `Sign`.
    pub operation: &'static str,
    /// The algorithm's wire name.
    pub algorithm: &'static str,
    /// Requests in flight.
    pub in_flight: u32,
    /// Median over the rounds, requests per second.
    pub ops_per_sec: f64,
    /// Every round's requests per second, ascending.
    pub rounds_ops_per_sec: Vec<f64>,
    /// Median latency over all rounds, microseconds.
    pub p50_us: f64,
    /// 99th percentile latency, microseconds.
    pub p99_us: f64,
    /// Requests timed, all rounds together.
    pub requests: u64,
    /// CPU used by other processes during the first round, percent of all CPUs.
    pub other_load_percent: Option<f64>,
    /// `--local` only: the same request on the engine, in process, on one thread.
    pub direct_ops_per_sec: Option<f64>,
    /// The limits.md row of the primitive.
    pub reference_figure: &'static str,
    /// Its single-core ops/s on the development machine.
    pub reference_ops_per_sec: f64,
    /// `ops_per_sec / reference_ops_per_sec`.
    pub ratio: f64,
    /// `ops_per_sec / (machine_scale × reference_ops_per_sec)`.
    pub scaled_ratio: f64,
    /// The target, in words.
    pub target: String,
    /// The target in ops/s on this machine.
    pub target_ops_per_sec: f64,
    /// Whether this row meets it.
    pub meets_target: bool,
}

impl Row {
    fn new(
        operation_name: &str,
        name: &str,
        case: &Case,
        in_flight: u32,
        options: &Options,
        measured: Measured,
        direct: Option<f64>,
    ) -> Self {
        let (figure, reference) = case.reference;
        let (target, target_ops) = case.target(options.machine_scale);
        Self {
            name: name.to_owned(),
            operation_name: operation_name.to_owned(),
            spec: case.spec,
            operation: case.operation,
            algorithm: case.algorithm,
            in_flight,
            ops_per_sec: measured.median,
            rounds_ops_per_sec: measured.rounds,
            p50_us: measured.p50_us,
            p99_us: measured.p99_us,
            requests: measured.requests,
            other_load_percent: measured.other_load_percent,
            direct_ops_per_sec: direct,
            reference_figure: figure,
            reference_ops_per_sec: reference,
            ratio: measured.median / reference,
            scaled_ratio: measured.median / (options.machine_scale * reference),
            target,
            target_ops_per_sec: target_ops,
            meets_target: measured.median >= target_ops,
        }
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// What was measured: the local node or the nodes given.
    pub target: String,
    /// Seconds per round.
    pub seconds: f64,
    /// Rounds per row.
    pub rounds: u32,
    /// Connections to each node.
    pub connections_per_node: usize,
    /// This machine relative to the development machine.
    pub machine_scale: f64,
    /// The filter, if any.
    pub filter: Option<String>,
    /// `/proc/loadavg` before the run.
    pub load_average_before: Option<String>,
    /// `/proc/loadavg` after the run.
    pub load_average_after: Option<String>,
    /// Where the reference figures come from.
    pub reference_source: &'static str,
    /// The rows, in the order they ran.
    pub rows: Vec<Row>,
}

impl Report {
    /// The report as pretty-printed JSON.
    ///
    /// # Errors
    /// [`BenchError::Json`] if encoding fails (it should not).
    pub fn to_json(&self) -> Result<String, BenchError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Per operation, the best row (over the in-flight levels) and whether it meets
    /// the target.
    pub fn best(&self) -> Vec<&Row> {
        let mut best: Vec<&Row> = Vec::new();
        for row in &self.rows {
            match best
                .iter_mut()
                .find(|b| b.operation_name == row.operation_name)
            {
                Some(b) if row.ops_per_sec > b.ops_per_sec => *b = row,
                Some(_) => {}
                None => best.push(row),
            }
        }
        best
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn quick(filter: &str) -> Options {
        Options {
            seconds: 0.05,
            rounds: 2,
            in_flight: vec![1, 8],
            filter: Some(filter.to_owned()),
            ..Options::default()
        }
    }

    #[test]
    fn a_local_run_measures_every_selected_row() {
        let bench = HsmBench::new(quick("EC_P256 ")).unwrap();
        let names: Vec<String> = bench.names().collect();
        assert_eq!(
            names,
            [
                "EC_P256 Sign ECDSA_SHA_256 32 B digest x1",
                "EC_P256 Sign ECDSA_SHA_256 32 B digest x8"
            ]
        );
        let mut streamed = Vec::new();
        let report = bench
            .run(&Target::Local, |row| {
                streamed.push(row.name.clone());
                Ok(())
            })
            .unwrap();
        assert_eq!(streamed, names);
        for row in &report.rows {
            assert!(row.ops_per_sec > 0.0, "{row:?}");
            assert!(row.p99_us >= row.p50_us && row.p50_us > 0.0, "{row:?}");
            assert_eq!(row.rounds_ops_per_sec.len(), 2);
            assert!(row.direct_ops_per_sec.unwrap() > 0.0);
            assert!((row.scaled_ratio - 2.0 * row.ratio).abs() < 1e-9);
        }
        assert_eq!(report.best().len(), 1);
        let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
        assert_eq!(json["rows"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn every_operation_runs_through_the_link() {
        let report = HsmBench::new(Options {
            seconds: 0.02,
            rounds: 1,
            in_flight: vec![2],
            ..Options::default()
        })
        .unwrap()
        .run(&Target::Local, |_| Ok(()))
        .unwrap();
        let specs: Vec<&str> = report.rows.iter().map(|r| r.spec).collect();
        assert_eq!(
            specs,
            [
                "Aliyun_AES_256",
                "RSA_2048",
                "EC_P256",
                "EC_P256K",
                "EC_SM2"
            ]
        );
        assert!(report.rows.iter().all(|r| r.requests > 0));
    }

    #[test]
    fn bad_options_are_usage_errors() {
        for options in [
            Options {
                seconds: 0.0,
                ..Options::default()
            },
            Options {
                in_flight: vec![],
                ..Options::default()
            },
            Options {
                in_flight: vec![1, 0],
                ..Options::default()
            },
            Options {
                filter: Some("nothing like this".into()),
                ..Options::default()
            },
        ] {
            let err = HsmBench::new(options.clone()).unwrap_err();
            assert!(err.is_usage(), "{options:?}: {err}");
        }
    }

    #[test]
    fn percentiles_pick_from_sorted_samples() {
        let samples: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        assert!((percentile(&samples, 50) - 50.0).abs() < 1e-9);
        assert!((percentile(&samples, 99) - 99.0).abs() < 1e-9);
        assert!(percentile(&[], 50).abs() < f64::EPSILON);
    }
}

//! One run: set-up, preparation (material, signing), then the connections' loops.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use strongroom_certs::client_key;
use tokio::task::JoinSet;

use super::body::Plan;
use super::report::{InstanceReport, Latency};
use super::wire::{self, Connection, Endpoint, Outcome, Prepared, Signer};
use super::{MAX_DATE_AGE, Options, REQUEST_TIMEOUT};
use crate::error::BenchError;
use crate::load;
use crate::measure::count_to_f64;

/// Attempts per material request; between attempts, as the SDKs, a second's pause.
const MATERIAL_ATTEMPTS: u32 = 10;
/// Error codes after which a material request is tried again (the SDKs' retry set).
const RETRIED_CODES: [&str; 2] = ["Rejected.Throttling", "ServiceUnavailableTemporary"];
/// Pause before reopening a connection that could not be opened.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);

pub(super) async fn run(
    options: &Options,
    warmup: Duration,
    window: Duration,
) -> Result<InstanceReport, BenchError> {
    let (signer, endpoint, first) = set_up(options).await?;
    let prepared_at = Instant::now();
    let mut prepared = prepare(options, &signer, &endpoint, first).await?;
    // The pool's oldest dates are from the start of its signing.
    let age = prepared.pool_signed_at.elapsed() + warmup + window;
    if age > MAX_DATE_AGE {
        return Err(BenchError::Preparation(format!(
            "signing took {:.0} s: with the warm-up and the timed window, the first \
             requests' dates would be {:.0} s old when sent, past the {} s the server \
             allows (less a minute for clock skew); use fewer --requests or a shorter run",
            prepared.pool_signed_at.elapsed().as_secs_f64(),
            age.as_secs_f64(),
            MAX_DATE_AGE.as_secs() + 60,
        )));
    }
    open_connections(&endpoint, &mut prepared.connections, options.connections).await?;
    let preparation = prepared_at.elapsed();

    let load_before = load::load_average();
    let pool_len = prepared.pool.len();
    let distinct = prepared
        .pool
        .iter()
        .map(Prepared::body)
        .collect::<HashSet<_>>()
        .len();
    let (tally, other_load_percent) = apply_load(
        &endpoint,
        prepared.connections,
        prepared.pool,
        (warmup, window),
    )
    .await?;

    let completed = tally.ok + tally.errors.values().sum::<u64>();
    let window_seconds = window.as_secs_f64();
    Ok(InstanceReport {
        endpoint: options.endpoint.clone(),
        api: options.api.as_str(),
        key_id: options.key_id.clone(),
        algorithm: options.algorithm.clone(),
        payload_bytes: options.payload_bytes,
        connections: options.connections,
        pool_requests: pool_len,
        distinct_bodies: distinct,
        material_requests: prepared.material_requests,
        preparation_seconds: preparation.as_secs_f64(),
        signatures_per_second: rate(prepared.signed, prepared.signing),
        warmup_seconds: warmup.as_secs_f64(),
        seconds: window_seconds,
        requests: completed,
        ok: tally.ok,
        errors: tally.errors,
        requests_per_second: count_to_f64(completed) / window_seconds,
        ok_per_second: count_to_f64(tally.ok) / window_seconds,
        latency_ms: Latency::from_micros(tally.latencies),
        other_load_percent,
        load_average_before: load_before,
        load_average_after: load::load_average(),
    })
}

/// Reads the client key, builds the TLS client and opens a first connection.
async fn set_up(options: &Options) -> Result<(Arc<Signer>, Arc<Endpoint>, Connection), BenchError> {
    let password = client_key::read_password_file(&options.password_file).map_err(|e| {
        BenchError::Setup(format!(
            "password file {}: {e}",
            options.password_file.display()
        ))
    })?;
    let key = client_key::load_file(&options.client_key_file, &password).map_err(|e| {
        BenchError::Setup(format!(
            "client key {}: {e}",
            options.client_key_file.display()
        ))
    })?;
    let signer = Arc::new(Signer::new(key, &options.endpoint).map_err(BenchError::Setup)?);
    let endpoint = Arc::new(
        Endpoint::new(
            &options.endpoint,
            &options.ca_file,
            options.server_name.as_deref(),
        )
        .map_err(BenchError::Setup)?,
    );
    let first = endpoint.connect().await.map_err(BenchError::Setup)?;
    Ok((signer, endpoint, first))
}

/// The signed pool, and what making it took.
struct Preparation {
    pool: Vec<Prepared>,
    /// When the pool's signing started (its oldest `date`).
    pool_signed_at: Instant,
    /// Connections opened so far.
    connections: Vec<Connection>,
    material_requests: usize,
    /// Signatures made, and the time spent making them.
    signed: usize,
    signing: Duration,
}

/// Makes the material if the API needs some, then builds and signs the pool.
async fn prepare(
    options: &Options,
    signer: &Arc<Signer>,
    endpoint: &Arc<Endpoint>,
    first: Connection,
) -> Result<Preparation, BenchError> {
    let plan = Plan {
        api: options.api,
        key_id: options.key_id.clone().unwrap_or_default(),
        algorithm: options.algorithm.clone().unwrap_or_default(),
        payload_bytes: options.payload_bytes,
    };
    let count = options.requests;
    let mut connections = vec![first];
    let mut signed = 0usize;
    let mut signing = Duration::ZERO;
    let mut material_requests = 0;
    let bodies: Vec<Vec<u8>> = match options.api.material() {
        None => (0..count).filter_map(|i| plan.timed(i)).collect(),
        Some(material_api) => {
            let bodies = (0..count).filter_map(|i| plan.material(i)).collect();
            let started = Instant::now();
            let requests = sign(signer, material_api, bodies).await?;
            signing += started.elapsed();
            signed += requests.len();
            material_requests = requests.len();
            let answers =
                make_material(endpoint, requests, options.connections, &mut connections).await?;
            answers
                .iter()
                .enumerate()
                .map(|(i, answer)| plan.timed_from_material(i, answer))
                .collect::<Result<_, _>>()
                .map_err(BenchError::Preparation)?
        }
    };
    let pool_signed_at = Instant::now();
    let pool = sign(signer, options.api, bodies).await?;
    signing += pool_signed_at.elapsed();
    signed += pool.len();
    Ok(Preparation {
        pool,
        pool_signed_at,
        connections,
        material_requests,
        signed,
        signing,
    })
}

/// Warm-up and timed window over every connection; what they counted, and the other
/// load on the machine during the window.
async fn apply_load(
    endpoint: &Arc<Endpoint>,
    connections: Vec<Connection>,
    pool: Vec<Prepared>,
    (warmup, window): (Duration, Duration),
) -> Result<(Tally, Option<f64>), BenchError> {
    let pool = Arc::new(pool);
    let next = Arc::new(AtomicUsize::new(0));
    let window_start = Instant::now() + warmup;
    let window_end = window_start + window;
    let sampler = tokio::spawn(async move {
        tokio::time::sleep_until(window_start.into()).await;
        let before = load::CpuSample::now();
        tokio::time::sleep_until(window_end.into()).await;
        load::CpuSample::other_load_percent(before, load::CpuSample::now())
    });
    let mut workers = JoinSet::new();
    for connection in connections {
        workers.spawn(drive(
            Arc::clone(endpoint),
            connection,
            Arc::clone(&pool),
            Arc::clone(&next),
            (window_start, window_end),
        ));
    }
    let mut tally = Tally::default();
    while let Some(done) = workers.join_next().await {
        let part = done.map_err(|e| BenchError::Setup(format!("a connection task failed: {e}")))?;
        tally.merge(part);
    }
    Ok((tally, sampler.await.ok().flatten()))
}

/// Signs on every core, off the async threads.
async fn sign(
    signer: &Arc<Signer>,
    api: super::InstanceApi,
    bodies: Vec<Vec<u8>>,
) -> Result<Vec<Prepared>, BenchError> {
    let signer = Arc::clone(signer);
    tokio::task::spawn_blocking(move || wire::sign_all(&signer, api, bodies))
        .await
        .map_err(|e| BenchError::Preparation(format!("the signing task failed: {e}")))?
        .map_err(BenchError::Preparation)
}

/// Opens connections until there are `wanted`, all at once.
async fn open_connections(
    endpoint: &Arc<Endpoint>,
    connections: &mut Vec<Connection>,
    wanted: usize,
) -> Result<(), BenchError> {
    let mut opening = JoinSet::new();
    for _ in connections.len()..wanted {
        let endpoint = Arc::clone(endpoint);
        opening.spawn(async move { endpoint.connect().await });
    }
    while let Some(opened) = opening.join_next().await {
        let connection = opened
            .map_err(|e| BenchError::Setup(format!("a connection task failed: {e}")))?
            .map_err(BenchError::Setup)?;
        connections.push(connection);
    }
    Ok(())
}

/// Sends every material request once (retrying as the SDKs do) over up to
/// `parallel` connections, and returns the answers in order.
async fn make_material(
    endpoint: &Arc<Endpoint>,
    requests: Vec<Prepared>,
    parallel: usize,
    connections: &mut Vec<Connection>,
) -> Result<Vec<Bytes>, BenchError> {
    let wanted = parallel.min(requests.len()).max(1);
    open_connections(endpoint, connections, wanted).await?;
    let total = requests.len();
    let requests = Arc::new(requests);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = JoinSet::new();
    for connection in connections.drain(..) {
        let endpoint = Arc::clone(endpoint);
        let requests = Arc::clone(&requests);
        let next = Arc::clone(&next);
        tasks.spawn(async move {
            let mut connection = Some(connection);
            let mut answers = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(request) = requests.get(index) else {
                    break;
                };
                let answer = with_retries(&endpoint, &mut connection, request).await?;
                answers.push((index, answer));
            }
            Ok::<_, String>((connection, answers))
        });
    }
    let mut slots: Vec<Option<Bytes>> = vec![None; total];
    while let Some(done) = tasks.join_next().await {
        let (connection, answers) = done
            .map_err(|e| BenchError::Preparation(format!("a connection task failed: {e}")))?
            .map_err(BenchError::Preparation)?;
        connections.extend(connection);
        for (index, answer) in answers {
            if let Some(slot) = slots.get_mut(index) {
                *slot = Some(answer);
            }
        }
    }
    slots
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| BenchError::Preparation("a material request went unanswered".to_owned()))
}

/// One material request, tried again after a second on a retried error code or a
/// failed connection.
async fn with_retries(
    endpoint: &Endpoint,
    connection: &mut Option<Connection>,
    request: &Prepared,
) -> Result<Bytes, String> {
    let mut last = String::new();
    for attempt in 0..MATERIAL_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let mut open = match connection.take() {
            Some(open) => open,
            None => match endpoint.connect().await {
                Ok(open) => open,
                Err(e) => {
                    last = e;
                    continue;
                }
            },
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, open.exchange(request)).await {
            Ok(Outcome::Answered(body)) => {
                *connection = Some(open);
                return Ok(body);
            }
            Ok(Outcome::Refused { code, message }) => {
                *connection = Some(open);
                if !RETRIED_CODES.contains(&code.as_str()) {
                    return Err(format!(
                        "the server refused a material request: {code}: {message}"
                    ));
                }
                last = format!("{code}: {message}");
            }
            Ok(Outcome::Failed(e)) => last = e,
            Err(_) => last = "timed out".to_owned(),
        }
    }
    Err(format!(
        "a material request failed {MATERIAL_ATTEMPTS} times, last: {last}"
    ))
}

/// What one connection counted in the timed window.
#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    errors: BTreeMap<String, u64>,
    /// Microseconds from sending to the answer fully read, answered requests only.
    latencies: Vec<u64>,
}

impl Tally {
    fn merge(&mut self, mut other: Self) {
        self.ok += other.ok;
        for (code, n) in other.errors {
            *self.errors.entry(code).or_default() += n;
        }
        self.latencies.append(&mut other.latencies);
    }

    fn error(&mut self, code: &str) {
        match self.errors.get_mut(code) {
            Some(n) => *n += 1,
            None => {
                self.errors.insert(code.to_owned(), 1);
            }
        }
    }
}

/// One connection's loop: the next request of the pool as soon as the previous one is
/// answered, until the window ends. Counts what finishes inside the window.
async fn drive(
    endpoint: Arc<Endpoint>,
    connection: Connection,
    pool: Arc<Vec<Prepared>>,
    next: Arc<AtomicUsize>,
    (window_start, window_end): (Instant, Instant),
) -> Tally {
    let mut tally = Tally::default();
    let mut connection = Some(connection);
    let in_window = |t: Instant| t >= window_start && t < window_end;
    while Instant::now() < window_end {
        let mut open = match connection.take() {
            Some(open) => open,
            None => match endpoint.connect().await {
                Ok(open) => open,
                Err(_) => {
                    if in_window(Instant::now()) {
                        tally.error("connect");
                    }
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            },
        };
        let index = next.fetch_add(1, Ordering::Relaxed) % pool.len().max(1);
        let Some(request) = pool.get(index) else {
            break;
        };
        let sent = Instant::now();
        let outcome = tokio::time::timeout(REQUEST_TIMEOUT, open.exchange(request)).await;
        let done = Instant::now();
        let counted = in_window(done);
        let micros = u64::try_from(done.duration_since(sent).as_micros()).unwrap_or(u64::MAX);
        match outcome {
            Ok(Outcome::Answered(_)) => {
                connection = Some(open);
                if counted {
                    tally.ok += 1;
                    tally.latencies.push(micros);
                }
            }
            Ok(Outcome::Refused { code, .. }) => {
                connection = Some(open);
                if counted {
                    tally.error(&code);
                    tally.latencies.push(micros);
                }
            }
            Ok(Outcome::Failed(_)) => {
                if counted {
                    tally.error("io");
                }
            }
            Err(_) => {
                if counted {
                    tally.error("timeout");
                }
            }
        }
    }
    tally
}

/// Per second, 0 for no time.
fn rate(count: usize, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        count_to_f64(u64::try_from(count).unwrap_or(u64::MAX)) / seconds
    } else {
        0.0
    }
}

//! The fuzzing loop: seeds first, then mutated inputs, each run under
//! [`std::panic::catch_unwind`] on a worker thread that a watchdog on the calling thread
//! watches for inputs that take longer than a bound (a hang) and for the process's
//! resident memory growing past a limit.
//!
//! A hang cannot be stopped from outside the thread that runs it: the watchdog reports it
//! and returns, leaving the worker to run on; callers should end the process soon after.

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use crate::Target;
use crate::mutate::{Mutator, Rng};

/// How long and how hard to fuzz one target.
#[derive(Debug, Clone)]
pub struct Options {
    /// Stop after this long (seeds included).
    pub duration: Option<Duration>,
    /// Stop after this many executions (seeds included).
    pub max_execs: Option<u64>,
    /// The PRNG seed: the same seed replays the same inputs, given the same seeds.
    pub seed: u64,
    /// An input that runs longer than this is a hang.
    pub timeout: Duration,
    /// The longest input the mutator makes.
    pub max_len: usize,
    /// A resident set larger than this (bytes) is a finding; `None` does not watch.
    pub memory_limit: Option<u64>,
    /// Where findings are saved (`<dir>/<target>/<hash>`); `None` does not save.
    pub crash_dir: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            duration: Some(Duration::from_secs(60)),
            max_execs: None,
            seed: 0,
            timeout: Duration::from_secs(10),
            max_len: 64 << 10,
            memory_limit: Some(2 << 30),
            crash_dir: Some(PathBuf::from("fuzz-crashes")),
        }
    }
}

/// What went wrong with one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The target panicked.
    Panic {
        /// The panic's message and location.
        message: String,
        /// The input.
        input: Vec<u8>,
    },
    /// The target ran longer than the bound on one input.
    Hang {
        /// How long it had run when reported.
        elapsed: Duration,
        /// The input.
        input: Vec<u8>,
    },
    /// The process's resident memory passed the limit while the target ran this input.
    Memory {
        /// The resident set, in bytes.
        resident: u64,
        /// The input.
        input: Vec<u8>,
    },
}

impl Finding {
    /// The input that caused it.
    pub fn input(&self) -> &[u8] {
        match self {
            Finding::Panic { input, .. }
            | Finding::Hang { input, .. }
            | Finding::Memory { input, .. } => input,
        }
    }

    /// The kind, in a word.
    pub fn kind(&self) -> &'static str {
        match self {
            Finding::Panic { .. } => "panic",
            Finding::Hang { .. } => "hang",
            Finding::Memory { .. } => "memory",
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::Panic { message, input } => {
                write!(f, "panic on a {}-byte input: {message}", input.len())
            }
            Finding::Hang { elapsed, input } => write!(
                f,
                "hang: a {}-byte input still running after {:.1} s",
                input.len(),
                elapsed.as_secs_f64()
            ),
            Finding::Memory { resident, input } => write!(
                f,
                "memory: {} MiB resident while running a {}-byte input",
                resident >> 20,
                input.len()
            ),
        }
    }
}

/// The outcome of fuzzing one target.
#[derive(Debug)]
pub struct Report {
    /// The target's name.
    pub target: &'static str,
    /// How many seeds it started from.
    pub seeds: usize,
    /// Executions done (seeds included).
    pub execs: u64,
    /// How long the executions took.
    pub elapsed: Duration,
    /// What was found, if anything.
    pub finding: Option<Finding>,
    /// Where the finding's input was saved.
    pub saved: Option<PathBuf>,
}

impl Report {
    /// Executions per second.
    pub fn execs_per_second(&self) -> u64 {
        let millis = u64::try_from(self.elapsed.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        self.execs.saturating_mul(1000) / millis
    }
}

/// The message of the last panic, recorded by the runner's panic hook.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// State the worker shares with the watchdog.
struct Shared {
    /// The input running now (written before `started`).
    current: Mutex<Vec<u8>>,
    /// Nanoseconds from the run's start to the current input's start, plus one; zero
    /// between inputs.
    started: AtomicU64,
    execs: AtomicU64,
    stop: AtomicBool,
}

/// Fuzzes `target` with `options`, saving a finding's input if asked to.
///
/// # Errors
/// Only an I/O error while saving a finding, or a worker thread that cannot start.
pub fn run(target: &'static Target, options: &Options) -> io::Result<Report> {
    let seeds = (target.seeds)();
    let shared = Arc::new(Shared {
        current: Mutex::new(Vec::new()),
        started: AtomicU64::new(0),
        execs: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let base = Instant::now();
    let (sender, receiver) = mpsc::channel::<Finding>();

    let previous_hook = panic::take_hook();
    panic::set_hook(Box::new(|info| {
        *LAST_PANIC.lock().unwrap_or_else(PoisonError::into_inner) = Some(info.to_string());
    }));

    let worker = {
        let shared = Arc::clone(&shared);
        let options = options.clone();
        let seeds = seeds.clone();
        std::thread::Builder::new()
            .name(format!("fuzz-{}", target.name))
            .spawn(move || work(target, &seeds, &options, &shared, base, &sender))?
    };

    let mut finding = None;
    let mut abandoned = false;
    loop {
        match receiver.recv_timeout(Duration::from_millis(20)) {
            Ok(found) => {
                finding = Some(found);
                break;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if let Some(found) = watch(&shared, options, base) {
            shared.stop.store(true, Ordering::SeqCst);
            finding = Some(found);
            abandoned = true;
            break;
        }
    }
    let elapsed = base.elapsed();
    if !abandoned {
        let _ = worker.join();
    }
    panic::set_hook(previous_hook);

    let saved = match (&finding, &options.crash_dir) {
        (Some(found), Some(dir)) => Some(save(dir, target.name, found.input())?),
        _ => None,
    };
    Ok(Report {
        target: target.name,
        seeds: seeds.len(),
        execs: shared.execs.load(Ordering::SeqCst),
        elapsed,
        finding,
        saved,
    })
}

/// Runs one input the way the fuzzer does, reporting a panic as a finding.
pub fn run_one(target: &Target, input: &[u8]) -> Option<Finding> {
    let previous_hook = panic::take_hook();
    panic::set_hook(Box::new(|info| {
        *LAST_PANIC.lock().unwrap_or_else(PoisonError::into_inner) = Some(info.to_string());
    }));
    let result = panic::catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
    panic::set_hook(previous_hook);
    result.err().map(|payload| Finding::Panic {
        message: panic_message(payload.as_ref()),
        input: input.to_vec(),
    })
}

/// The fuzzing loop of the worker thread.
fn work(
    target: &Target,
    seeds: &[Vec<u8>],
    options: &Options,
    shared: &Shared,
    base: Instant,
    findings: &mpsc::Sender<Finding>,
) {
    let mut rng = Rng::new(options.seed);
    let mutator = Mutator::new(seeds, target.dictionary, target.shape, options.max_len);
    let deadline = options.duration.map(|d| base + d);
    let mut input = Vec::new();
    let mut count: u64 = 0;
    loop {
        if options.max_execs.is_some_and(|max| count >= max)
            || (count.is_multiple_of(16) && deadline.is_some_and(|d| Instant::now() >= d))
            || shared.stop.load(Ordering::Relaxed)
        {
            return;
        }
        match usize::try_from(count).ok().and_then(|i| seeds.get(i)) {
            Some(seed) => {
                input.clear();
                input.extend_from_slice(seed);
            }
            None => mutator.mutate(&mut rng, &mut input),
        }
        {
            let mut current = shared
                .current
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            current.clear();
            current.extend_from_slice(&input);
        }
        let since = u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
        shared.started.store(since + 1, Ordering::SeqCst);
        let result = panic::catch_unwind(AssertUnwindSafe(|| (target.run)(&input)));
        shared.started.store(0, Ordering::SeqCst);
        shared.execs.fetch_add(1, Ordering::Relaxed);
        count += 1;
        if let Err(payload) = result {
            let _ = findings.send(Finding::Panic {
                message: panic_message(payload.as_ref()),
                input: input.clone(),
            });
            return;
        }
    }
}

/// The watchdog's look at the worker: a hang or a memory finding, if any.
fn watch(shared: &Shared, options: &Options, base: Instant) -> Option<Finding> {
    let started = shared.started.load(Ordering::SeqCst);
    if started != 0 {
        let now = u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let elapsed = Duration::from_nanos(now.saturating_sub(started - 1));
        let over_time = elapsed > options.timeout;
        let resident = options
            .memory_limit
            .and_then(|limit| resident_bytes().filter(|r| *r > limit));
        if over_time || resident.is_some() {
            let current = shared
                .current
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // Still the same input (the worker writes `current` only between inputs).
            if shared.started.load(Ordering::SeqCst) == started {
                let input = current.clone();
                return Some(match resident {
                    Some(resident) => Finding::Memory { resident, input },
                    None => Finding::Hang { elapsed, input },
                });
            }
        }
    }
    None
}

/// The process's resident set in bytes (Linux), if known.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    pages.checked_mul(4096)
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = LAST_PANIC
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
    {
        return message;
    }
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with no message".to_owned())
}

/// Saves an input as `<dir>/<target>/<hash>`, the hash being the first 8 bytes of its
/// SHA-256 in hex.
///
/// # Errors
/// I/O errors.
pub fn save(dir: &Path, target: &str, input: &[u8]) -> io::Result<PathBuf> {
    let digest = strongroom_crypto::hash::sha256(input);
    let name = hex::encode(digest.get(..8).unwrap_or(&digest));
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(name);
    std::fs::write(&path, input)?;
    Ok(path)
}

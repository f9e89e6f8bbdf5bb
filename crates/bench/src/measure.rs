//! The timing loop: warm up, then call one operation until the time is up, on one or
//! several threads.
//!
//! The clock is read after every batch of calls, not after every call: batches grow
//! until one takes about 1/200 of the measurement (at most 5 ms), so reading
//! `Instant::now()` costs well under 1 % even for sub-microsecond operations, and the
//! run overshoots its time by at most one batch.

use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use crate::error::Failure;
use crate::load::CpuSample;

/// One prepared operation; each call runs it once.
pub(crate) type Op = Box<dyn FnMut() -> Result<(), Failure>>;

/// How long and how wide to measure.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) duration: Duration,
    pub(crate) warmup: u32,
    pub(crate) threads: u32,
}

/// What one measurement found.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measurement {
    /// Calls made in the timed phase, all threads together.
    pub(crate) iterations: u64,
    /// The longest timed phase of any thread.
    pub(crate) elapsed: Duration,
    /// Calls per second, summed over the threads.
    pub(crate) ops_per_sec: f64,
    /// CPU used by other processes during the timed phase, as a share of all CPUs.
    pub(crate) other_load_percent: Option<f64>,
}

/// Runs `prepare` once per thread (each thread gets its own key and buffers), warms
/// each operation up, then times all threads together.
pub(crate) fn measure<F>(settings: Settings, prepare: F) -> Result<Measurement, Failure>
where
    F: Fn() -> Result<Op, Failure> + Sync,
{
    if settings.threads <= 1 {
        let mut op = prepare()?;
        warm_up(&mut op, settings)?;
        let before = CpuSample::now();
        let (iterations, elapsed) = timed(&mut op, settings.duration)?;
        let other = CpuSample::other_load_percent(before, CpuSample::now());
        return Ok(Measurement {
            iterations,
            elapsed,
            ops_per_sec: rate(iterations, elapsed),
            other_load_percent: other,
        });
    }

    let barrier = Barrier::new(usize::try_from(settings.threads).unwrap_or(usize::MAX));
    let results = thread::scope(|scope| {
        let handles: Vec<_> = (0..settings.threads)
            .map(|index| {
                let barrier = &barrier;
                let prepare = &prepare;
                scope.spawn(move || {
                    let ready = prepare().and_then(|mut op| {
                        warm_up(&mut op, settings)?;
                        Ok(op)
                    });
                    // Every thread reaches the barrier, ready or not, so a failed
                    // preparation cannot leave the others waiting forever.
                    barrier.wait();
                    let mut op = ready?;
                    let before = (index == 0).then(CpuSample::now).flatten();
                    let (iterations, elapsed) = timed(&mut op, settings.duration)?;
                    let other = CpuSample::other_load_percent(before, CpuSample::now());
                    Ok((iterations, elapsed, other))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or(Err(Failure::Panicked)))
            .collect::<Vec<Result<_, Failure>>>()
    });

    let mut total = Measurement {
        iterations: 0,
        elapsed: Duration::ZERO,
        ops_per_sec: 0.0,
        other_load_percent: None,
    };
    for result in results {
        let (iterations, elapsed, other) = result?;
        total.iterations = total.iterations.saturating_add(iterations);
        total.elapsed = total.elapsed.max(elapsed);
        total.ops_per_sec += rate(iterations, elapsed);
        total.other_load_percent = total.other_load_percent.or(other);
    }
    Ok(total)
}

/// Up to `warmup` calls, stopping early once they have taken the measurement's time
/// (RSA-4096 key generation can take a second per call).
fn warm_up(op: &mut Op, settings: Settings) -> Result<(), Failure> {
    let start = Instant::now();
    for _ in 0..settings.warmup {
        op()?;
        if start.elapsed() >= settings.duration {
            break;
        }
    }
    Ok(())
}

/// Calls `op` until `duration` has passed (at least once); returns the calls made and
/// the time they took.
fn timed(op: &mut Op, duration: Duration) -> Result<(u64, Duration), Failure> {
    let target_batch_ns = (duration.as_nanos() / 200).clamp(1_000, 5_000_000);
    let start = Instant::now();
    let mut iterations: u64 = 0;
    let mut batch: u64 = 1;
    loop {
        for _ in 0..batch {
            op()?;
        }
        iterations = iterations.saturating_add(batch);
        let elapsed = start.elapsed();
        if elapsed >= duration {
            return Ok((iterations, elapsed));
        }
        let per_call_ns = (elapsed.as_nanos() / u128::from(iterations)).max(1);
        let remaining_ns = duration.saturating_sub(elapsed).as_nanos();
        let wanted = (target_batch_ns / per_call_ns).min(remaining_ns / per_call_ns + 1);
        batch = u64::try_from(wanted)
            .unwrap_or(u64::MAX)
            .clamp(1, batch.saturating_mul(2));
    }
}

/// Calls per second.
fn rate(iterations: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        count_to_f64(iterations) / seconds
    } else {
        0.0
    }
}

/// A count as a float, for rates and shares.
#[expect(
    clippy::as_conversions,
    reason = "counts (calls, CPU ticks) stay far below 2^53, where u64 to f64 is exact"
)]
pub(crate) fn count_to_f64(count: u64) -> f64 {
    count as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(f: impl FnMut() -> Result<(), Failure> + 'static) -> Op {
        Box::new(f)
    }

    fn settings(threads: u32) -> Settings {
        Settings {
            duration: Duration::from_millis(20),
            warmup: 2,
            threads,
        }
    }

    #[test]
    fn counts_calls_and_time() {
        let m = measure(settings(1), || {
            Ok(op(|| {
                std::hint::black_box(0u64);
                Ok(())
            }))
        })
        .unwrap();
        assert!(m.iterations > 100);
        assert!(m.elapsed >= Duration::from_millis(20));
        assert!(m.ops_per_sec > 0.0);
    }

    #[test]
    fn slow_operations_run_at_least_once() {
        let m = measure(
            Settings {
                duration: Duration::from_millis(1),
                warmup: 0,
                threads: 1,
            },
            || {
                Ok(op(|| {
                    thread::sleep(Duration::from_millis(5));
                    Ok(())
                }))
            },
        )
        .unwrap();
        assert_eq!(m.iterations, 1);
    }

    #[test]
    fn threads_add_up() {
        let m = measure(settings(2), || {
            Ok(op(|| {
                thread::sleep(Duration::from_millis(1));
                Ok(())
            }))
        })
        .unwrap();
        // Two sleeping threads: about 2 × 1000 calls per second.
        assert!(m.ops_per_sec > 1000.0, "{}", m.ops_per_sec);
    }

    #[test]
    fn a_failing_thread_fails_the_measurement_without_hanging() {
        let calls = std::sync::atomic::AtomicU32::new(0);
        let result = measure(settings(2), || {
            if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                Err(Failure::WrongResult("setup"))
            } else {
                Ok(op(|| Ok(())))
            }
        });
        assert!(matches!(result, Err(Failure::WrongResult("setup"))));
    }
}

//! What a run found, as text or JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::crypto::text::grouped;
use crate::error::BenchError;
use crate::measure::count_to_f64;

/// The result of one `strongroom bench instance` run.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct InstanceReport {
    /// The endpoint as given.
    pub endpoint: String,
    /// The API loaded (`x-kms-apiname`).
    pub api: &'static str,
    /// The key id or alias sent, if the API names a key.
    pub key_id: Option<String>,
    /// The `Algorithm` sent, if one was chosen.
    pub algorithm: Option<String>,
    /// Plaintext or message size, or the size asked for by the generating APIs.
    pub payload_bytes: usize,
    /// Keep-alive connections, each with one request in flight.
    pub connections: usize,
    /// Signed requests in the pool the run cycled through.
    pub pool_requests: usize,
    /// How many of them have a body of their own (1 for an API with nothing to vary).
    pub distinct_bodies: usize,
    /// Requests sent during preparation to make material (0 when none was needed).
    pub material_requests: usize,
    /// Seconds from the first signature to the start of the load (signing, material,
    /// opening the connections).
    pub preparation_seconds: f64,
    /// Request signatures per second made by this machine during preparation, on every
    /// core: a run cannot be faster than this without a pool.
    pub signatures_per_second: f64,
    /// Seconds of warm-up, whose results were discarded.
    pub warmup_seconds: f64,
    /// Seconds of the timed window.
    pub seconds: f64,
    /// Requests that finished inside the timed window: answered (successfully or with
    /// an error) or failed.
    pub requests: u64,
    /// Of those, the successful answers.
    pub ok: u64,
    /// Of those, the errors by `ErrorCode` (`HTTP <status>` for an error answer without
    /// a code), plus `io` (the connection failed), `timeout` (no answer within 10 s) and
    /// `connect` (a failed connection could not be reopened).
    pub errors: BTreeMap<String, u64>,
    /// `requests` per second of the timed window.
    pub requests_per_second: f64,
    /// `ok` per second of the timed window.
    pub ok_per_second: f64,
    /// Latency of the answered requests (successes and error answers), or `None` when
    /// none was answered.
    pub latency_ms: Option<Latency>,
    /// CPU used by other processes during the timed window, as a share of all CPUs
    /// (the server, when it runs on this machine); `None` where it cannot be read.
    pub other_load_percent: Option<f64>,
    /// The 1, 5 and 15 minute load averages before the load.
    pub load_average_before: Option<String>,
    /// The same, after it.
    pub load_average_after: Option<String>,
}

/// Exact latency figures over every answered request of the timed window, in
/// milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Latency {
    /// Requests measured.
    pub samples: u64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Median (nearest rank).
    pub p50: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

impl Latency {
    /// The figures of `micros` (any order), `None` when empty.
    pub(super) fn from_micros(mut micros: Vec<u64>) -> Option<Self> {
        micros.sort_unstable();
        let max = *micros.last()?;
        let samples = u64::try_from(micros.len()).unwrap_or(u64::MAX);
        let sum: u64 = micros.iter().fold(0u64, |sum, &m| sum.saturating_add(m));
        let ms = |us: u64| count_to_f64(us) / 1000.0;
        Some(Self {
            samples,
            mean: count_to_f64(sum) / count_to_f64(samples) / 1000.0,
            p50: ms(nearest_rank(&micros, 50)),
            p99: ms(nearest_rank(&micros, 99)),
            max: ms(max),
        })
    }
}

/// The `percent`th percentile of sorted values by the nearest-rank method.
fn nearest_rank(sorted: &[u64], percent: usize) -> u64 {
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    sorted.get(rank - 1).or(sorted.last()).copied().unwrap_or(0)
}

impl InstanceReport {
    /// The report as a few lines of text.
    pub fn text(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_text(&mut out);
        out
    }

    fn write_text(&self, out: &mut String) -> std::fmt::Result {
        writeln!(
            out,
            "strongroom bench instance: {} on {} (key {}, algorithm {}, {} payload bytes)",
            self.api,
            self.endpoint,
            self.key_id.as_deref().unwrap_or("none"),
            self.algorithm.as_deref().unwrap_or("default"),
            self.payload_bytes
        )?;
        let material = if self.material_requests > 0 {
            format!(", {} material requests", self.material_requests)
        } else {
            String::new()
        };
        writeln!(
            out,
            "preparation  {:.1} s: {} signed requests ({} distinct bodies{material}), signing at {} per second",
            self.preparation_seconds,
            self.pool_requests,
            self.distinct_bodies,
            grouped(self.signatures_per_second),
        )?;
        writeln!(
            out,
            "load         {} connections, warm-up {} s, timed {} s",
            self.connections, self.warmup_seconds, self.seconds
        )?;
        writeln!(
            out,
            "requests     {} in {} s: {} per second; {} ok: {} per second",
            grouped(count_to_f64(self.requests)),
            self.seconds,
            grouped(self.requests_per_second),
            grouped(count_to_f64(self.ok)),
            grouped(self.ok_per_second),
        )?;
        match &self.latency_ms {
            Some(l) => writeln!(
                out,
                "latency ms   mean {:.3}  p50 {:.3}  p99 {:.3}  max {:.3}  ({} answers)",
                l.mean, l.p50, l.p99, l.max, l.samples
            )?,
            None => writeln!(out, "latency ms   no answer in the window")?,
        }
        if self.errors.is_empty() {
            writeln!(out, "errors       none")?;
        } else {
            let list: Vec<String> = self
                .errors
                .iter()
                .map(|(code, n)| format!("{code} {n}"))
                .collect();
            writeln!(out, "errors       {}", list.join(", "))?;
        }
        let other = self
            .other_load_percent
            .map_or_else(|| "unknown".to_owned(), |p| format!("{p:.1} % of all CPUs"));
        writeln!(
            out,
            "other load   {other}; load average {} before, {} after",
            self.load_average_before.as_deref().unwrap_or("unknown"),
            self.load_average_after.as_deref().unwrap_or("unknown"),
        )
    }

    /// The report as pretty-printed JSON (the fields of this struct, by the same names).
    ///
    /// # Errors
    /// [`BenchError::Json`] if encoding fails.
    pub fn json(&self) -> Result<String, BenchError> {
        Ok(serde_json::to_string_pretty(self)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let l = Latency::from_micros((1..=100).rev().map(|ms| ms * 1000).collect()).unwrap();
        assert_eq!(l.samples, 100);
        assert_eq!(l.p50, 50.0);
        assert_eq!(l.p99, 99.0);
        assert_eq!(l.max, 100.0);
        assert!((l.mean - 50.5).abs() < 1e-9);
        let one = Latency::from_micros(vec![1500]).unwrap();
        assert_eq!((one.p50, one.p99, one.max), (1.5, 1.5, 1.5));
        assert_eq!(Latency::from_micros(Vec::new()), None);
    }
}

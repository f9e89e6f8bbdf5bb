//! `strongroom bench crypto`: the crypto core, in process, on this machine.
//!
//! Every key spec, and for each every operation and algorithm the policy table allows
//! (`strongroom_crypto::policy`): symmetric Encrypt/Decrypt at 32 B and 1 KiB, public-key
//! Encrypt/Decrypt at 32 B, Sign/Verify of a 32-byte RAW message, key generation, data
//! key pairs; then key blob seal/open, hashes, randomness and data keys. Calls go through
//! the public API (`Key`, `PublicKey`, `DomainKey`, …), so the figures include what the
//! HSM pays around each primitive: policy checks, random IVs, per-call key setup,
//! allocation.
//!
//! Each row: warm-up calls, then calls until the time is up (the clock is read every few
//! calls for cheap operations). With several threads each thread has its own key and
//! buffers and the row reports the total.

mod cases;
mod reference;
pub(crate) mod text;

use std::time::Duration;

use serde::Serialize;

use crate::error::BenchError;
use crate::load;
use crate::measure::{self, Settings};
use cases::{Case, Keys};

pub use text::TextTable;

/// Largest accepted `--seconds`.
pub const MAX_SECONDS: f64 = 3600.0;
/// Largest accepted `--threads`.
pub const MAX_THREADS: u32 = 256;

/// What to run and for how long.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Seconds per row, after warm-up.
    pub seconds: f64,
    /// Warm-up calls per row and thread (fewer if they take longer than `seconds`).
    pub warmup: u32,
    /// Only rows whose name contains this, ignoring ASCII case.
    pub filter: Option<String>,
    /// Threads running the same operation at once; rows report the total.
    pub threads: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            seconds: 1.0,
            warmup: 3,
            filter: None,
            threads: 1,
        }
    }
}

/// A validated benchmark run: the options and the rows they select.
#[derive(Debug)]
pub struct CryptoBench {
    options: Options,
    settings: Settings,
    cases: Vec<(String, Case)>,
}

impl CryptoBench {
    /// Validates `options` and selects the rows.
    ///
    /// # Errors
    /// [`BenchError::InvalidSeconds`], [`BenchError::InvalidThreads`], or
    /// [`BenchError::NoMatch`] when the filter selects nothing.
    pub fn new(options: Options) -> Result<Self, BenchError> {
        let invalid_seconds = || BenchError::InvalidSeconds {
            value: options.seconds,
            max: MAX_SECONDS,
        };
        if !(options.seconds > 0.0 && options.seconds <= MAX_SECONDS) {
            return Err(invalid_seconds());
        }
        let duration =
            Duration::try_from_secs_f64(options.seconds).map_err(|_| invalid_seconds())?;
        if !(1..=MAX_THREADS).contains(&options.threads) {
            return Err(BenchError::InvalidThreads {
                value: options.threads,
                max: MAX_THREADS,
            });
        }
        let filter = options.filter.as_deref().map(str::to_ascii_lowercase);
        let cases: Vec<(String, Case)> = cases::all()
            .into_iter()
            .map(|case| (case.name(), case))
            .filter(|(name, _)| {
                filter
                    .as_deref()
                    .is_none_or(|f| name.to_ascii_lowercase().contains(f))
            })
            .collect();
        if cases.is_empty() {
            return Err(BenchError::NoMatch(options.filter.unwrap_or_default()));
        }
        let settings = Settings {
            duration,
            warmup: options.warmup,
            threads: options.threads,
        };
        Ok(Self {
            options,
            settings,
            cases,
        })
    }

    /// The options this run was made with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The names of the selected rows, in the order they run.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.cases.iter().map(|(name, _)| name.as_str())
    }

    /// Runs every selected row, calling `on_row` as each finishes (to print progress),
    /// and returns the whole report.
    ///
    /// # Errors
    /// The first failing row's [`BenchError::Crypto`] or [`BenchError::WrongResult`], or
    /// whatever `on_row` returns.
    pub fn run<F>(&self, mut on_row: F) -> Result<Report, BenchError>
    where
        F: FnMut(&Row) -> Result<(), BenchError>,
    {
        let load_before = load::load_average();
        let mut keys = Keys::default();
        let mut rows = Vec::with_capacity(self.cases.len());
        for (name, case) in &self.cases {
            keys.ensure(case)?;
            let keys = &keys;
            let measured = measure::measure(self.settings, || case.prepare(keys))
                .map_err(|failure| failure.named(name))?;
            let row = Row::new(name, case, self.options.threads, measured);
            on_row(&row)?;
            rows.push(row);
        }
        Ok(Report {
            seconds: self.options.seconds,
            warmup: self.options.warmup,
            threads: self.options.threads,
            filter: self.options.filter.clone(),
            load_average_before: load_before,
            load_average_after: load::load_average(),
            reference_source: REFERENCE_SOURCE,
            rows,
        })
    }
}

/// Where the reference figures come from, as printed with the report.
pub const REFERENCE_SOURCE: &str = "guides/limits.md section 1, measured on the development \
    machine (AMD EPYC Zen 5 KVM guest, 2 vCPUs) calling each library directly; elsewhere \
    read it as a scale, not a target";

/// One measured row.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The row's name, e.g. `Aliyun_AES_256 Encrypt AES_GCM 32 B`.
    pub name: String,
    /// The key spec's wire name, where the row uses a key.
    pub spec: Option<&'static str>,
    /// The operation, e.g. `Encrypt`, `Verify (PublicKey)`, `GenerateKey`.
    pub operation: &'static str,
    /// The algorithm's wire name, where one applies.
    pub algorithm: Option<&'static str>,
    /// Input bytes per call (plaintext, message, hash input), where a size applies.
    pub bytes: Option<usize>,
    /// Threads that ran the operation at once.
    pub threads: u32,
    /// Calls made in the timed phase, all threads together.
    pub iterations: u64,
    /// Length of the timed phase (the longest thread's).
    pub seconds: f64,
    /// Calls per second, all threads together.
    pub ops_per_sec: f64,
    /// Microseconds per call on one thread (`threads / ops_per_sec`).
    pub us_per_op: f64,
    /// Input bytes per second, all threads together, for bulk operations (symmetric
    /// ciphers and hashes).
    pub bytes_per_sec: Option<f64>,
    /// CPU used by other processes during the timed phase, percent of all CPUs
    /// (Linux only).
    pub other_load_percent: Option<f64>,
    /// The development machine's figure for the same primitive, where measured.
    pub reference: Option<ReferenceFigure>,
}

/// A figure from `guides/limits.md` §1 and how this row compares with it.
#[derive(Debug, Clone, Serialize)]
pub struct ReferenceFigure {
    /// The limits.md row, with its implementation.
    pub figure: &'static str,
    /// Its calls per second.
    pub ops_per_sec: f64,
    /// Which of its columns: `1 thread`, `2 threads`, or an estimate.
    pub basis: &'static str,
    /// This row's calls per second divided by the reference's.
    pub ratio: f64,
}

impl Row {
    fn new(name: &str, case: &Case, threads: u32, measured: measure::Measurement) -> Self {
        let ops_per_sec = measured.ops_per_sec;
        let us_per_op = if ops_per_sec > 0.0 {
            1e6 * f64::from(threads) / ops_per_sec
        } else {
            0.0
        };
        let bytes = case.bytes();
        let bytes_per_sec = bytes
            .filter(|_| case.has_throughput())
            .and_then(|b| u32::try_from(b).ok())
            .map(|b| f64::from(b) * ops_per_sec);
        let reference = reference::find(name).map(|r| {
            let (figure_ops, basis) = r.for_threads(threads);
            ReferenceFigure {
                figure: r.figure,
                ops_per_sec: figure_ops,
                basis,
                ratio: ops_per_sec / figure_ops,
            }
        });
        Self {
            name: name.to_owned(),
            spec: case.spec().map(|s| s.as_str()),
            operation: case.operation(),
            algorithm: case.algorithm(),
            bytes,
            threads,
            iterations: measured.iterations,
            seconds: measured.elapsed.as_secs_f64(),
            ops_per_sec,
            us_per_op,
            bytes_per_sec,
            other_load_percent: measured.other_load_percent,
            reference,
        }
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Seconds per row.
    pub seconds: f64,
    /// Warm-up calls per row and thread.
    pub warmup: u32,
    /// Threads per row.
    pub threads: u32,
    /// The filter, if any.
    pub filter: Option<String>,
    /// `/proc/loadavg` (1, 5, 15 min) before the run, where available.
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick(filter: &str) -> Options {
        Options {
            seconds: 0.01,
            warmup: 1,
            filter: Some(filter.to_owned()),
            threads: 1,
        }
    }

    fn check_sane(report: &Report, filter: &str) {
        assert!(!report.rows.is_empty());
        for row in &report.rows {
            assert!(
                row.name
                    .to_ascii_lowercase()
                    .contains(&filter.to_ascii_lowercase()),
                "{}",
                row.name
            );
            assert!(row.iterations >= 1, "{}", row.name);
            assert!(row.ops_per_sec > 0.0, "{}", row.name);
            assert!(row.us_per_op > 0.0, "{}", row.name);
            assert!(row.seconds >= 0.01, "{}", row.name);
        }
    }

    #[test]
    fn symmetric_rows_for_one_spec() {
        let bench = CryptoBench::new(quick("aliyun_aes_128")).unwrap();
        let report = bench.run(|_| Ok(())).unwrap();
        check_sane(&report, "Aliyun_AES_128");
        // GCM and CBC, Encrypt and Decrypt, 32 B and 1 KiB, plus key generation.
        assert_eq!(report.rows.len(), 2 * 2 * 2 + 1);
        let gcm = report
            .rows
            .iter()
            .find(|r| r.name == "Aliyun_AES_128 Encrypt AES_GCM 1024 B")
            .unwrap();
        assert_eq!(gcm.bytes, Some(1024));
        assert!(gcm.bytes_per_sec.unwrap() > 1024.0);
        let reference = gcm.reference.as_ref().unwrap();
        assert_eq!(reference.basis, "1 thread");
        assert!(reference.ratio > 0.0);
        assert!(report.rows.iter().any(|r| r.algorithm == Some("AES_CBC")));
    }

    #[test]
    fn sm2_rows_cover_every_operation() {
        let report = CryptoBench::new(quick("EC_SM2"))
            .unwrap()
            .run(|_| Ok(()))
            .unwrap();
        check_sane(&report, "EC_SM2");
        let operations: Vec<&str> = report.rows.iter().map(|r| r.operation).collect();
        for operation in [
            "Encrypt",
            "Encrypt (PublicKey)",
            "Decrypt",
            "Sign",
            "Verify",
            "Verify (PublicKey)",
            "GenerateKey",
            "GenerateDataKeyPair",
        ] {
            assert!(operations.contains(&operation), "{operation}");
        }
        assert!(report.rows.iter().all(|r| r.spec == Some("EC_SM2")));
    }

    #[test]
    fn secp256k1_and_hashes_and_blob() {
        for filter in [
            "EC_P256K",
            "hash",
            "Aliyun_AES_256 seal",
            "random",
            "data key 32",
        ] {
            let report = CryptoBench::new(quick(filter))
                .unwrap()
                .run(|_| Ok(()))
                .unwrap();
            check_sane(&report, filter);
        }
    }

    #[test]
    fn threads_report_the_total() {
        let options = Options {
            threads: 2,
            ..quick("SHA_256 hash")
        };
        let report = CryptoBench::new(options).unwrap().run(|_| Ok(())).unwrap();
        check_sane(&report, "SHA_256 hash");
        let row = report.rows.first().unwrap();
        assert_eq!(row.threads, 2);
        assert_eq!(
            row.reference.as_ref().unwrap().basis,
            "2 x 1 thread (estimate)"
        );
    }

    #[test]
    fn rows_stream_in_order_and_json_has_them() {
        let bench = CryptoBench::new(quick("Aliyun_SM4 Encrypt SM4_GCM")).unwrap();
        let names: Vec<String> = bench.names().map(str::to_owned).collect();
        let mut streamed = Vec::new();
        let report = bench
            .run(|row| {
                streamed.push(row.name.clone());
                Ok(())
            })
            .unwrap();
        assert_eq!(streamed, names);
        let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
        let rows = json["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows[0]["ops_per_sec"].as_f64().unwrap() > 0.0);
        assert_eq!(rows[0]["spec"], "Aliyun_SM4");
    }

    #[test]
    fn bad_options_are_usage_errors() {
        let bad = [
            Options {
                seconds: 0.0,
                ..Options::default()
            },
            Options {
                seconds: f64::NAN,
                ..Options::default()
            },
            Options {
                seconds: 1e9,
                ..Options::default()
            },
            Options {
                threads: 0,
                ..Options::default()
            },
            Options {
                filter: Some("no such benchmark".into()),
                ..Options::default()
            },
        ];
        for options in bad {
            let err = CryptoBench::new(options.clone()).unwrap_err();
            assert!(err.is_usage(), "{options:?}: {err}");
        }
    }

    #[test]
    fn unfiltered_selects_every_spec() {
        let bench = CryptoBench::new(Options::default()).unwrap();
        let names: Vec<&str> = bench.names().collect();
        for spec in strongroom_crypto::spec::KeySpec::ALL {
            let prefix = format!("{spec} ");
            assert!(names.iter().any(|n| n.starts_with(&prefix)), "{spec}");
        }
    }
}

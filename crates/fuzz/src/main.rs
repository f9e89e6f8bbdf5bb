//! `strongroom-fuzz`: runs the fuzz targets of `strongroom-fuzz` on the stable
//! toolchain.
//!
//! ```text
//! strongroom-fuzz list
//! strongroom-fuzz run TARGET [--seconds N] [--seed S] [--timeout-ms MS] [--max-len N]
//! strongroom-fuzz all [--seconds N] [--seed S] ...
//! strongroom-fuzz repro TARGET FILE
//! strongroom-fuzz seeds TARGET DIR
//! ```
//!
//! Exit status: 0 when nothing was found, 1 on a finding (its input saved under
//! `fuzz-crashes/<target>/<hash>`), 2 on a usage or I/O error.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use strongroom_fuzz::runner::{self, Finding, Options, Report};
use strongroom_fuzz::{TARGETS, Target};

/// Fuzzes Strongroom's network-facing decoders (stable toolchain, coverage-blind,
/// structure-aware).
#[derive(Debug, Parser)]
#[command(name = "strongroom-fuzz", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Lists the targets.
    List,
    /// Fuzzes one target.
    Run {
        /// The target's name (see `list`).
        target: String,
        #[command(flatten)]
        settings: Settings,
    },
    /// Fuzzes every target in turn, each for `--seconds`.
    All {
        #[command(flatten)]
        settings: Settings,
    },
    /// Runs a target once on a saved input; exits non-zero if it panics.
    Repro {
        /// The target's name.
        target: String,
        /// The input file.
        file: PathBuf,
    },
    /// Writes a target's seeds into a directory (one file each), to read or to feed to
    /// another fuzzer.
    Seeds {
        /// The target's name.
        target: String,
        /// The directory.
        dir: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct Settings {
    /// How long to fuzz each target.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// PRNG seed (default: from the clock; printed, to replay a run).
    #[arg(long)]
    seed: Option<u64>,
    /// An input that runs longer than this (milliseconds) is a hang.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// The longest input the mutator makes (bytes).
    #[arg(long, default_value_t = 64 << 10)]
    max_len: usize,
    /// A resident set larger than this (MiB) is a finding.
    #[arg(long, default_value_t = 2048)]
    memory_mib: u64,
    /// Where findings are saved.
    #[arg(long, default_value = "fuzz-crashes")]
    crash_dir: PathBuf,
}

impl Settings {
    fn options(&self) -> Options {
        Options {
            duration: Some(Duration::from_secs(self.seconds)),
            max_execs: None,
            seed: self.seed.unwrap_or_else(clock_seed),
            timeout: Duration::from_millis(self.timeout_ms),
            max_len: self.max_len,
            memory_limit: Some(self.memory_mib.saturating_mul(1 << 20)),
            crash_dir: Some(self.crash_dir.clone()),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::List => {
            for target in TARGETS {
                println!("{:<20} {}", target.name, target.about);
            }
            ExitCode::SUCCESS
        }
        Command::Run { target, settings } => match find(&target) {
            Some(target) => fuzz(&[target], &settings),
            None => ExitCode::from(2),
        },
        Command::All { settings } => {
            let all: Vec<&'static Target> = TARGETS.iter().collect();
            fuzz(&all, &settings)
        }
        Command::Repro { target, file } => {
            let Some(target) = find(&target) else {
                return ExitCode::from(2);
            };
            let input = match std::fs::read(&file) {
                Ok(input) => input,
                Err(e) => {
                    eprintln!("cannot read {}: {e}", file.display());
                    return ExitCode::from(2);
                }
            };
            let start = Instant::now();
            // Run in the open: the panic prints as usual (set RUST_BACKTRACE=1).
            (target.run)(&input);
            println!(
                "{}: no panic on {} ({} bytes, {:.3} s)",
                target.name,
                file.display(),
                input.len(),
                start.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Command::Seeds { target, dir } => {
            let Some(target) = find(&target) else {
                return ExitCode::from(2);
            };
            let seeds = (target.seeds)();
            for seed in &seeds {
                if let Err(e) = runner::save(&dir, target.name, seed) {
                    eprintln!("cannot write a seed under {}: {e}", dir.display());
                    return ExitCode::from(2);
                }
            }
            println!(
                "{} seeds written to {}",
                seeds.len(),
                dir.join(target.name).display()
            );
            ExitCode::SUCCESS
        }
    }
}

fn find(name: &str) -> Option<&'static Target> {
    let found = strongroom_fuzz::target(name);
    if found.is_none() {
        let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
        eprintln!("unknown target {name:?}; targets: {}", names.join(", "));
    }
    found
}

fn fuzz(targets: &[&'static Target], settings: &Settings) -> ExitCode {
    let options = settings.options();
    println!(
        "fuzzing {} target(s), {} s each, seed {} (replay with --seed {})",
        targets.len(),
        settings.seconds,
        options.seed,
        options.seed
    );
    let mut found = false;
    for target in targets {
        let report = match runner::run(target, &options) {
            Ok(report) => report,
            Err(e) => {
                eprintln!("{}: {e}", target.name);
                return ExitCode::from(2);
            }
        };
        print_report(&report);
        if let Some(finding) = &report.finding {
            found = true;
            if matches!(finding, Finding::Hang { .. } | Finding::Memory { .. }) {
                // The worker still runs that input: stop here.
                println!("stopping: the {} target is still running", target.name);
                return ExitCode::from(1);
            }
        }
    }
    if found {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn print_report(report: &Report) {
    println!(
        "{:<20} {:>10} execs in {:>5.1} s  {:>8} execs/s  ({} seeds)  {}",
        report.target,
        report.execs,
        report.elapsed.as_secs_f64(),
        report.execs_per_second(),
        report.seeds,
        if report.finding.is_some() {
            "FOUND"
        } else {
            "ok"
        }
    );
    if let Some(finding) = &report.finding {
        println!("  {}: {finding}", finding.kind());
        if let Some(path) = &report.saved {
            println!("  input saved to {}", path.display());
            println!(
                "  reproduce: cargo run --release -p strongroom-fuzz -- repro {} {}",
                report.target,
                path.display()
            );
        }
    }
}

fn clock_seed() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
        u64::try_from(d.as_nanos() & u128::from(u64::MAX)).unwrap_or(0)
    })
}

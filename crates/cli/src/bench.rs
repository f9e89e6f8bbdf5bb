//! `strongroom bench`: benchmarks users run against their own machine or deployment.
//! Argument parsing only; the work is in `strongroom-bench`.

use std::error::Error as _;
use std::io::{self, Write as _};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use strongroom_bench::crypto::{CryptoBench, Options, TextTable};
use strongroom_bench::error::BenchError;

/// Benchmarks to run on this machine.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to benchmark.
    #[command(subcommand)]
    pub command: BenchCommand,
}

/// What to benchmark. The instance-API load generator (a deployment under HTTP load)
/// will be added as another variant.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The crypto core in process: every key spec and every operation its policy allows,
    /// compared with the development machine's measured limits.
    Crypto(CryptoBenchArgs),
}

/// Options of `strongroom bench crypto`.
#[derive(Debug, Args)]
pub struct CryptoBenchArgs {
    /// Seconds per measurement, after warm-up.
    #[arg(long, value_name = "F", default_value_t = 1.0)]
    pub seconds: f64,
    /// Warm-up calls before each measurement (fewer if they take longer than --seconds).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub warmup: u32,
    /// Only rows whose name contains SUBSTRING (ignoring case), e.g. `SM4` or `RSA_2048 Sign`.
    #[arg(long, value_name = "SUBSTRING")]
    pub filter: Option<String>,
    /// Run each operation on N threads at once (each with its own key) and report the total.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threads: u32,
    /// Print the report as JSON instead of a text table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `strongroom bench …`; prints the report on stdout and errors on stderr.
/// Exit code 0 on success, 2 for bad options, 1 for a failure while running.
pub fn run(args: BenchArgs) -> ExitCode {
    let result = match args.command {
        BenchCommand::Crypto(args) => run_crypto(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let mut message = format!("strongroom bench: {err}");
            let mut source = err.source();
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            // Nothing more can be done if stderr itself is gone.
            let _ = writeln!(io::stderr(), "{message}");
            if err.is_usage() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run_crypto(args: CryptoBenchArgs) -> Result<(), BenchError> {
    let bench = CryptoBench::new(Options {
        seconds: args.seconds,
        warmup: args.warmup,
        filter: args.filter,
        threads: args.threads,
    })?;
    let stdout = io::stdout();
    if args.json {
        let report = bench.run(|_| Ok(()))?;
        let mut out = stdout.lock();
        writeln!(out, "{}", report.to_json()?)?;
        out.flush()?;
    } else {
        let mut table = TextTable::new(&bench, stdout.lock());
        table.header(&bench)?;
        let report = bench.run(|row| Ok(table.row(row)?))?;
        table.footer(&report)?;
    }
    Ok(())
}

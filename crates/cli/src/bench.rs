//! `strongroom bench`: benchmarks users run against their own machine or deployment.
//! Argument parsing only; the work is in `strongroom-bench`.

use std::error::Error as _;
use std::io::{self, Write as _};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use strongroom_bench::crypto::{CryptoBench, Options, TextTable};
use strongroom_bench::error::BenchError;
use strongroom_bench::hsm::{self, HsmBench, Target};

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
    /// HSM operations through the cluster client over the mutual-TLS HSM link: an
    /// in-process node (`--local`) or a deployment (`--node`), at several numbers of
    /// requests in flight.
    Hsm(HsmBenchArgs),
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

/// Options of `strongroom bench hsm`.
#[derive(Debug, Args)]
pub struct HsmBenchArgs {
    /// Start an HSM node in this process (software engine, fresh certificates) and
    /// measure through it.
    #[arg(long, conflicts_with_all = ["node", "ca", "client_p12", "password_file"])]
    pub local: bool,
    /// An HSM node's host port, `host:port` (repeat for each node of the cluster).
    #[arg(long, value_name = "HOST:PORT", required_unless_present = "local")]
    pub node: Vec<String>,
    /// The HSM CA certificate (PEM), e.g. `rootca.pem`.
    #[arg(
        long,
        value_name = "FILE",
        requires = "node",
        required_unless_present = "local"
    )]
    pub ca: Option<std::path::PathBuf>,
    /// The KMS client certificate and key (PKCS#12), e.g. `client.p12`.
    #[arg(
        long,
        value_name = "FILE",
        requires = "node",
        required_unless_present = "local"
    )]
    pub client_p12: Option<std::path::PathBuf>,
    /// A file holding the PKCS#12 password.
    #[arg(
        long,
        value_name = "FILE",
        requires = "node",
        required_unless_present = "local"
    )]
    pub password_file: Option<std::path::PathBuf>,
    /// Seconds per timed round.
    #[arg(long, value_name = "F", default_value_t = 1.0)]
    pub seconds: f64,
    /// Timed rounds per row; the median is reported.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub rounds: u32,
    /// Requests in flight, comma-separated; one row per level.
    #[arg(
        long,
        value_name = "N,N,...",
        value_delimiter = ',',
        default_value = "1,16,64"
    )]
    pub in_flight: Vec<u32>,
    /// Connections to each node.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub connections: usize,
    /// This machine's speed relative to the reference machine of guides/limits.md.
    #[arg(long, value_name = "F", default_value_t = 0.5)]
    pub machine_scale: f64,
    /// Only rows whose name contains SUBSTRING (ignoring case), e.g. `AES` or `SM2`.
    #[arg(long, value_name = "SUBSTRING")]
    pub filter: Option<String>,
    /// Print the report as JSON instead of a text table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `strongroom bench …`; prints the report on stdout and errors on stderr.
/// Exit code 0 on success, 2 for bad options, 1 for a failure while running.
pub fn run(args: BenchArgs) -> ExitCode {
    let result = match args.command {
        BenchCommand::Crypto(args) => run_crypto(args),
        BenchCommand::Hsm(args) => run_hsm(args),
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

fn run_hsm(args: HsmBenchArgs) -> Result<(), BenchError> {
    let bench = HsmBench::new(hsm::Options {
        seconds: args.seconds,
        rounds: args.rounds,
        in_flight: args.in_flight,
        filter: args.filter,
        machine_scale: args.machine_scale,
        connections_per_node: args.connections,
    })?;
    let target = match (args.local, args.ca, args.client_p12, args.password_file) {
        (false, Some(ca_pem), Some(client_p12), Some(password_file)) => Target::Nodes {
            nodes: args.node,
            ca_pem,
            client_p12,
            password_file,
        },
        _ => Target::Local,
    };
    let stdout = io::stdout();
    if args.json {
        let report = bench.run(&target, |_| Ok(()))?;
        let mut out = stdout.lock();
        writeln!(out, "{}", report.to_json()?)?;
        out.flush()?;
    } else {
        let mut table = hsm::TextTable::new(&bench, stdout.lock());
        table.header(&bench, &target)?;
        let report = bench.run(&target, |row| Ok(table.row(row)?))?;
        table.footer(&report)?;
    }
    Ok(())
}

//! `strongroom bench`: benchmarks users run against their own machine or deployment.
//! Argument parsing only; the work is in `strongroom-bench`.

use std::error::Error as _;
use std::io::{self, Write as _};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use strongroom_bench::crypto::{CryptoBench, Options, TextTable};
use strongroom_bench::error::BenchError;
use strongroom_bench::hsm::{self, HsmBench, Target};
use strongroom_bench::instance::{self, InstanceApi, InstanceBench};

/// Benchmarks to run on this machine.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to benchmark.
    #[command(subcommand)]
    pub command: BenchCommand,
}

/// What to benchmark.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The crypto core in process: every key spec and every operation its policy allows,
    /// compared with the development machine's measured limits.
    Crypto(CryptoBenchArgs),
    /// HSM operations through the cluster client over the mutual-TLS HSM link: an
    /// in-process node (`--local`) or a deployment (`--node`), at several numbers of
    /// requests in flight.
    Hsm(HsmBenchArgs),
    /// Load on a deployment's instance API, as the official SDKs speak it: requests of
    /// one API signed in advance with a client key, sent over keep-alive HTTPS
    /// connections; reports throughput, latency and errors by code.
    Instance(InstanceBenchArgs),
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

/// Options of `strongroom bench instance`.
#[derive(Debug, Args)]
pub struct InstanceBenchArgs {
    /// The instance endpoint as the SDKs take it: `host` or `host:port` (port 443 when
    /// absent), e.g. `kst-….cryptoservice.kms.aliyuncs.com` or `127.0.0.1:18443`.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub endpoint: String,
    /// The instance CA file (PEM), e.g. `PrivateKmsCA_kst-….pem`; every certificate in
    /// it is trusted as a root.
    #[arg(long, value_name = "FILE")]
    pub ca_file: std::path::PathBuf,
    /// The name the server certificate must carry (default: the endpoint's host; an IP
    /// address is checked against the certificate's IP addresses).
    #[arg(long, value_name = "NAME")]
    pub server_name: Option<String>,
    /// The client key file, `clientKey_<KeyId>.json`.
    #[arg(long, value_name = "FILE")]
    pub client_key_file: std::path::PathBuf,
    /// The client key's password file, `clientKey_<KeyId>_Password.txt`.
    #[arg(long, value_name = "FILE")]
    pub password_file: std::path::PathBuf,
    /// The API to load: Encrypt, Decrypt, Sign, Verify, GenerateRandom, GenerateDataKey,
    /// GetPublicKey, AdvanceEncrypt, AdvanceDecrypt, AdvanceGenerateDataKey, Hash or
    /// GetSecretValue.
    #[arg(long, value_name = "API", value_parser = parse_api)]
    pub api: InstanceApi,
    /// Key id or alias (every API but GenerateRandom, Hash and GetSecretValue).
    #[arg(long, value_name = "KEY", conflicts_with = "secret_name")]
    pub key_id: Option<String>,
    /// The secret GetSecretValue reads.
    #[arg(long, value_name = "NAME")]
    pub secret_name: Option<String>,
    /// The `Algorithm` to send (default: none, the key's default).
    #[arg(long, value_name = "NAME")]
    pub algorithm: Option<String>,
    /// Plaintext or message bytes; the size asked for by GenerateRandom,
    /// GenerateDataKey and AdvanceGenerateDataKey.
    #[arg(long, value_name = "N", default_value_t = instance::DEFAULT_PAYLOAD_BYTES)]
    pub payload_bytes: usize,
    /// Requests signed before the load and cycled through (Decrypt, Verify and
    /// AdvanceDecrypt first make as many ciphertexts or signatures through the endpoint).
    #[arg(long, value_name = "N", default_value_t = instance::DEFAULT_REQUESTS)]
    pub requests: usize,
    /// Keep-alive connections, each with one request in flight.
    #[arg(long, value_name = "N", default_value_t = instance::DEFAULT_CONNECTIONS)]
    pub connections: usize,
    /// Seconds of load before the timed window (results discarded).
    #[arg(long, value_name = "F", default_value_t = instance::DEFAULT_WARMUP_SECONDS)]
    pub warmup_seconds: f64,
    /// Seconds of the timed window.
    #[arg(long, value_name = "F", default_value_t = instance::DEFAULT_SECONDS)]
    pub seconds: f64,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

fn parse_api(name: &str) -> Result<InstanceApi, String> {
    InstanceApi::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = InstanceApi::ALL.iter().map(|api| api.as_str()).collect();
        format!("one of {} (as spelt here)", names.join(", "))
    })
}

/// Runs `strongroom bench …`; prints the report on stdout and errors on stderr.
/// Exit code 0 on success, 2 for bad options, 1 for a failure while running.
pub fn run(args: BenchArgs) -> ExitCode {
    let result = match args.command {
        BenchCommand::Crypto(args) => run_crypto(args),
        BenchCommand::Hsm(args) => run_hsm(args),
        BenchCommand::Instance(args) => run_instance(args),
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

fn run_instance(args: InstanceBenchArgs) -> Result<(), BenchError> {
    let bench = InstanceBench::new(instance::Options {
        endpoint: args.endpoint,
        ca_file: args.ca_file,
        server_name: args.server_name,
        client_key_file: args.client_key_file,
        password_file: args.password_file,
        api: args.api,
        key_id: args.key_id.or(args.secret_name),
        algorithm: args.algorithm,
        payload_bytes: args.payload_bytes,
        requests: args.requests,
        connections: args.connections,
        warmup_seconds: args.warmup_seconds,
        seconds: args.seconds,
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| BenchError::Setup(format!("cannot start the async runtime: {e}")))?;
    let report = runtime.block_on(bench.run())?;
    let mut out = io::stdout().lock();
    if args.json {
        writeln!(out, "{}", report.json()?)?;
    } else {
        write!(out, "{}", report.text())?;
    }
    out.flush()?;
    Ok(())
}

//! The command line of Strongroom: `strongroom` (every role of a self-hosted dedicated
//! KMS) and `hsm_certificate_generate` (the guide's certificate tool under its own
//! name). Argument parsing only: each role is handed to the crate that owns it.

mod audit;
mod bench;
mod certs;
mod hsm;
mod logging;
mod mgmt;
mod quickstart;
mod roles;
mod server;
mod signal;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Makes a closed standard output (`strongroom key list | head -1`) end the process the
/// way it ends other command-line tools: quietly, with status 141 (128 + SIGPIPE), instead
/// of a panic message and a backtrace. Rust ignores SIGPIPE, so the write fails and the
/// standard library's print macros panic; this hook recognises that one panic and leaves
/// every other to the default hook.
pub fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

/// Strongroom: a dedicated key management service in front of your own HSM cluster,
/// wire-compatible with the official dedicated-KMS SDKs.
#[derive(Debug, Parser)]
#[command(name = "strongroom", version)]
#[command(after_help = roles::AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// One HSM node (`hsm serve`) and the HSM management tool (`hsm admin`).
    Hsm(hsm::HsmArgs),
    /// One KMS node: the management API and the instance endpoints.
    Server(server::ServerArgs),
    /// The certificate tool: `certs generate -dir ./certs -pswd 12345678`.
    Certs(certs::CertsArgs),
    /// Everything on one machine, in one command.
    Quickstart(quickstart::QuickstartArgs),
    /// Create the first administrator AccessKey of a KMS node.
    Init(server::InitArgs),
    /// Dedicated KMS instances: create, list, get, connect, bind-vpc, renew, release.
    Instance(mgmt::instance::InstanceArgs),
    /// HSM clusters known to the KMS: register, list, get, deregister.
    #[command(name = "hsm-cluster")]
    HsmCluster(mgmt::cluster::ClusterArgs),
    /// VPCs (named sets of CIDR blocks) that instances bind: create, list, get, delete.
    Vpc(mgmt::vpc::VpcArgs),
    /// Administrator AccessKeys of the management API: create, list, disable, enable, delete.
    #[command(name = "access-key")]
    AccessKey(mgmt::access_key::AccessKeyArgs),
    /// Keys: create, list, describe, enable, disable, rotate, import, …
    Key(mgmt::key::KeyArgs),
    /// Key aliases: create, update, delete, list.
    Alias(mgmt::alias::AliasArgs),
    /// Application access points (and the one-step quick create).
    Aap(mgmt::aap::AapArgs),
    /// Access policies of application access points.
    Policy(mgmt::access::PolicyArgs),
    /// Network rules (allowed source addresses) of policies.
    #[command(name = "network-rule")]
    NetworkRule(mgmt::access::NetworkRuleArgs),
    /// Client keys of application access points.
    #[command(name = "client-key")]
    ClientKey(mgmt::aap::ClientKeyArgs),
    /// Secrets of an instance: create, put, get, list, describe, versions, delete, …
    Secret(mgmt::secret::SecretArgs),
    /// Benchmarks to run on your own machine or deployment.
    Bench(bench::BenchArgs),
    /// The audit log: `strongroom audit verify FILE`.
    Audit(audit::AuditArgs),
}

/// Runs `strongroom` with the process arguments.
pub fn strongroom() -> ExitCode {
    let cli = Cli::parse_from(certs::normalize_single_dash(std::env::args_os()));
    match cli.command {
        Command::Bench(args) => bench::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Hsm(args) => hsm::run(args),
        Command::Server(args) => server::run_server(args),
        Command::Certs(args) => certs::run(args),
        Command::Quickstart(args) => quickstart::run(args),
        Command::Init(args) => server::run_init(args),
        Command::Instance(args) => mgmt::instance::run(args),
        Command::HsmCluster(args) => mgmt::cluster::run(args),
        Command::Vpc(args) => mgmt::vpc::run(args),
        Command::AccessKey(args) => mgmt::access_key::run(args),
        Command::Key(args) => mgmt::key::run(args),
        Command::Alias(args) => mgmt::alias::run(args),
        Command::Aap(args) => mgmt::aap::run_aap(args),
        Command::Policy(args) => mgmt::access::run_policy(args),
        Command::NetworkRule(args) => mgmt::access::run_network_rule(args),
        Command::ClientKey(args) => mgmt::aap::run_client_key(args),
        Command::Secret(args) => mgmt::secret::run(args),
    }
}

/// Runs `hsm_certificate_generate` with the process arguments: the same tool as
/// `strongroom certs generate`, with the guide's exact flags
/// (`hsm_certificate_generate -dir ./certs -pswd 12345678`).
pub fn hsm_certificate_generate() -> ExitCode {
    certs::run_generate(
        certs::StandaloneGenerate::parse_from(certs::normalize_single_dash(std::env::args_os()))
            .args,
    )
}

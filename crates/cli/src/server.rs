//! `strongroom server` (one KMS node) and `strongroom init` (the first administrator
//! AccessKey of a deployment). Argument parsing and printing only; the work is in
//! `strongroom-server`.

use std::io::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use strongroom_server::{Config, Overrides};

/// The node's configuration: a file plus these overrides.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// A TOML configuration file (see docs/kms-node.md); flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The data directory: node key, SQLite file, management CA file
    /// (default strongroom-data).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The store: `sqlite` (default, in the data directory), `sqlite:///path/kms.db`, or a
    /// `postgres://user:password@host:5432/db` URL shared by several nodes.
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// The node key file (default <data dir>/node.key); every node over one database needs
    /// the same one.
    #[arg(long, value_name = "FILE")]
    node_key_file: Option<PathBuf>,
    /// The region id given to new instances (default cn-hangzhou).
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    /// The management API's listener (default 127.0.0.1:8443).
    #[arg(long, value_name = "IP:PORT")]
    listen: Option<String>,
    /// Serve plain HTTP instead of HTTPS (only on a loopback address).
    #[arg(long)]
    insecure_http: bool,
    /// A name or address the management certificate carries (repeatable; default
    /// localhost and 127.0.0.1, plus the listen address).
    #[arg(long, value_name = "NAME")]
    server_name: Vec<String>,
    /// Seconds an instance may take to reach its HSM cluster when connected (default 60).
    #[arg(long, value_name = "SECONDS")]
    enable_timeout_secs: Option<u64>,
    /// Seconds between two runs of the key maintenance task: deletion windows that
    /// ended, automatic rotation, expiry of imported material (default 30).
    #[arg(long, value_name = "SECONDS")]
    maintenance_interval_secs: Option<u64>,
    /// The address instance endpoints listen on (default 127.0.0.1; 0.0.0.0 for all).
    #[arg(long, value_name = "IP")]
    instance_api_ip: Option<String>,
    /// The ports instances are given, one each, the same on every node
    /// (FIRST-LAST; default 18443-18542).
    #[arg(long, value_name = "RANGE")]
    instance_ports: Option<String>,
    /// A load balancer (address or CIDR block) whose PROXY protocol v2 header gives the
    /// caller's address to the instance endpoints (repeatable).
    #[arg(long, value_name = "CIDR")]
    trusted_proxy: Vec<String>,
    /// This node's audit log (default <data dir>/audit.log).
    #[arg(long, value_name = "FILE")]
    audit_file: Option<PathBuf>,
    /// Where Prometheus scrapes `GET /metrics` (plain HTTP; default 127.0.0.1:9464; `off`
    /// for none).
    #[arg(long, value_name = "IP:PORT")]
    metrics_listen: Option<String>,
}

impl ConfigArgs {
    fn load(self) -> Result<Config, String> {
        Config::load(
            self.config.as_deref(),
            Overrides {
                data_dir: self.data_dir,
                database: self.database,
                node_key_file: self.node_key_file,
                region: self.region,
                listen: self.listen,
                insecure_http: self.insecure_http,
                server_names: self.server_name,
                enable_timeout_secs: self.enable_timeout_secs,
                maintenance_interval_secs: self.maintenance_interval_secs,
                instance_api_ip: self.instance_api_ip,
                instance_ports: self.instance_ports,
                trusted_proxies: self.trusted_proxy,
                audit_file: self.audit_file,
                metrics_listen: self.metrics_listen,
            },
        )
        .map_err(|e| e.to_string())
    }
}

/// `strongroom server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Log level: error, warn, info (default), debug, trace, or a filter such as
    /// `strongroom_server=debug` (default: RUST_LOG, else info).
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
}

/// `strongroom init`.
#[derive(Debug, Args)]
#[command(after_help = "\
The secret is printed once and never again. With --write-profile FILE the CLI profile
is written too (mode 0600; an existing file is not overwritten):

  [profile.default]
  endpoint = \"127.0.0.1:8443\"
  ca_file = \"/abs/path/strongroom-data/management-ca.pem\"
  access_key_id = \"…\"
  access_key_secret = \"…\"

Keep it at ~/.strongroom/profile.toml (or point STRONGROOM_PROFILE_FILE at it) and the
client commands (instance, hsm-cluster, vpc, access-key) find it.")]
pub struct InitArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Also write a CLI profile with the new AccessKey to FILE (refuses to overwrite).
    #[arg(long, value_name = "FILE")]
    write_profile: Option<PathBuf>,
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

/// Runs `strongroom server`: serves until Ctrl-C or SIGTERM.
pub fn run_server(args: ServerArgs) -> ExitCode {
    crate::logging::init(args.log_level.as_deref());
    let config = match args.config.load() {
        Ok(config) => config,
        Err(e) => return fail(&e),
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(e) => return fail(&e),
    };
    runtime.block_on(async {
        let server = match strongroom_server::start(config).await {
            Ok(server) => server,
            Err(e) => return fail(&e.to_string()),
        };
        let ca = server.ca_file.as_ref().map_or_else(
            || "plain HTTP, loopback only".to_owned(),
            |file| format!("CA file {}", file.display()),
        );
        println!(
            "strongroom server: management API on {}://{} ({ca})",
            server.scheme, server.local_addr
        );
        let _ = io::stdout().flush();
        crate::signal::wait_for_shutdown().await;
        eprintln!("shutting down");
        server.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// Runs `strongroom init`.
pub fn run_init(args: InitArgs) -> ExitCode {
    let config = match args.config.load() {
        Ok(config) => config,
        Err(e) => return fail(&e),
    };
    // Refuse an existing profile before anything is created.
    if let Some(file) = &args.write_profile
        && file.exists()
    {
        return fail(&format!(
            "{} exists; it is not overwritten (move it away or pick another file)",
            file.display()
        ));
    }
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(e) => return fail(&e),
    };
    let made = match runtime.block_on(strongroom_server::init(&config)) {
        Ok(made) => made,
        Err(e) => return fail(&e.to_string()),
    };
    println!("Administrator AccessKey created.");
    println!("  AccessKeyId      {}", made.access_key_id);
    println!("  AccessKeySecret  {}", made.access_key_secret.as_str());
    println!("WARNING: the secret is shown only now and never again; store it safely.");
    match &made.ca_file {
        Some(file) => println!("  management CA    {}", file.display()),
        None => println!("  management CA    none (plain HTTP)"),
    }
    println!("  node key file    {}", made.node_key_file.display());
    let _ = io::stdout().flush();
    if let Some(file) = &args.write_profile {
        let ca_file = made.ca_file.as_deref().map(std::path::absolute).transpose();
        let ca_file = match ca_file {
            Ok(ca_file) => ca_file,
            Err(e) => return fail(&format!("the CA file's absolute path: {e}")),
        };
        let text = profile_text(
            &client_endpoint(config.listen),
            ca_file.as_deref(),
            config.insecure_http,
            &made.access_key_id,
            &made.access_key_secret,
        );
        if let Err(e) = write_private_new(file, text.as_bytes()) {
            return fail(&format!(
                "writing the profile {}: {e} (the AccessKey above was created anyway)",
                file.display()
            ));
        }
        println!("  profile written  {}", file.display());
    }
    ExitCode::SUCCESS
}

/// The address clients use for a listener: an unspecified address becomes loopback.
fn client_endpoint(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port()).to_string()
}

fn profile_text(
    endpoint: &str,
    ca_file: Option<&Path>,
    insecure_http: bool,
    access_key_id: &str,
    access_key_secret: &str,
) -> zeroize::Zeroizing<String> {
    let quote = |s: &str| toml_string(s);
    let mut text = String::from("# Written by `strongroom init`. Keep it private (mode 0600).\n");
    text.push_str("[profile.default]\n");
    text.push_str(&format!("endpoint = {}\n", quote(endpoint)));
    if let Some(ca) = ca_file {
        text.push_str(&format!("ca_file = {}\n", quote(&ca.display().to_string())));
    }
    if insecure_http {
        text.push_str("insecure_http = true\n");
    }
    text.push_str(&format!("access_key_id = {}\n", quote(access_key_id)));
    let mut out = zeroize::Zeroizing::new(text);
    out.push_str(&format!(
        "access_key_secret = {}\n",
        quote(access_key_secret)
    ));
    out
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len().saturating_add(2));
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Creates `path` (which must not exist) readable by its owner only, and writes `data`.
fn write_private_new(path: &Path, data: &[u8]) -> io::Result<()> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(data)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_listeners_become_loopback_endpoints() {
        let v4: SocketAddr = SocketAddr::from(([0, 0, 0, 0], 8443));
        assert_eq!(client_endpoint(v4), "127.0.0.1:8443");
        let v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 9);
        assert_eq!(client_endpoint(v6), "[::1]:9");
        let fixed = SocketAddr::from(([10, 1, 2, 3], 1));
        assert_eq!(client_endpoint(fixed), "10.1.2.3:1");
    }

    #[test]
    fn profile_strings_are_quoted() {
        assert_eq!(toml_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000A\"");
    }
}

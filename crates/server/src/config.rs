//! The KMS node's configuration: a TOML file plus command-line overrides.
//!
//! ```toml
//! data_dir = "strongroom-data"          # node key, SQLite file, management CA file
//! database = "sqlite"                   # or "postgres://user:password@host:5432/db"
//! # node_key_file = "strongroom-data/node.key"
//! region = "cn-hangzhou"
//!
//! [management]
//! listen = "127.0.0.1:8443"
//! insecure_http = false                 # plain HTTP; refused unless listen is loopback
//! server_names = ["localhost", "127.0.0.1"]
//!
//! [instances]
//! enable_timeout_secs = 60
//! api_ip = "127.0.0.1"                  # where instance endpoints listen ("0.0.0.0": all)
//! api_ports = "18443-18542"             # one port per instance, the same on every node
//! api_server_names = ["localhost", "127.0.0.1"]   # also in each instance certificate,
//!                                       # beside <instance id>.cryptoservice.kms.aliyuncs.com
//! trusted_proxies = []                  # CIDRs whose PROXY protocol v2 header is believed
//!
//! [keys]
//! maintenance_interval_secs = 30         # deletion windows, rotation, material expiry
//!
//! [audit]
//! file = "strongroom-data/audit.log"    # this node's hash-chained audit log
//!
//! [metrics]
//! listen = "127.0.0.1:9464"             # Prometheus GET /metrics, plain HTTP; "off": none
//!
//! [limits]                              # every listener (docs/kms-node.md, "Limits")
//! connections_per_source = 256          # per listener and source address; 0: no cap
//! cap_trusted_proxies = false           # also cap a trusted proxy's own connections
//! handshake_timeout_secs = 15
//! header_timeout_secs = 15              # also how long an idle keep-alive connection lives
//! body_timeout_secs = 30                # time to send a request body, every listener
//! write_timeout_secs = 30               # a write to a client that reads nothing
//! ```

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Default management listener.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";
/// Default region id.
pub const DEFAULT_REGION: &str = "cn-hangzhou";
/// Default time an instance may take to reach its HSM cluster when enabled.
pub const DEFAULT_ENABLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default time between two runs of the key maintenance task.
pub const DEFAULT_MAINTENANCE_INTERVAL: Duration = Duration::from_secs(30);
/// Default address the instance endpoints listen on.
pub const DEFAULT_INSTANCE_API_IP: &str = "127.0.0.1";
/// Default ports of the instance endpoints (one per instance).
pub const DEFAULT_INSTANCE_PORTS: RangeInclusive<u16> = 18443..=18542;
/// The SQLite file inside the data directory.
pub const SQLITE_FILE: &str = "kms.db";
/// Default metrics listener.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";
/// The audit log inside the data directory.
pub const AUDIT_FILE: &str = "audit.log";
/// The node key file inside the data directory.
pub const NODE_KEY_FILE: &str = "node.key";
/// The management CA file written into the data directory.
pub const MANAGEMENT_CA_FILE: &str = "management-ca.pem";

/// A configuration problem, said so that the operator can fix it.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// Where the node keeps its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// The embedded default: `<data_dir>/kms.db`.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (shared by several nodes).
    Postgres(String),
}

/// The node's configuration, file and flags merged and checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The store.
    pub database: Database,
    /// The node key file.
    pub node_key_file: PathBuf,
    /// Region id given to new instances and shown in ARNs.
    pub region: String,
    /// Management listener.
    pub listen: SocketAddr,
    /// Plain HTTP on the management listener (loopback only).
    pub insecure_http: bool,
    /// Names and addresses the management certificate carries.
    pub server_names: Vec<String>,
    /// Time an instance may take to reach its HSM cluster.
    pub enable_timeout: Duration,
    /// Time between two runs of the key maintenance task (destroying keys whose
    /// deletion window ended, automatic rotation, expiry of imported material).
    pub maintenance_interval: Duration,
    /// Where the instance endpoints listen.
    pub instance_api_ip: IpAddr,
    /// The ports instances are given, one each, deployment-wide.
    pub instance_ports: RangeInclusive<u16>,
    /// Names and addresses every instance certificate carries besides
    /// `<instance id>.cryptoservice.kms.aliyuncs.com`.
    pub instance_server_names: Vec<String>,
    /// Peers whose PROXY protocol v2 header gives the caller's address.
    pub trusted_proxies: Vec<crate::network::Cidr>,
    /// This node's audit log (`docs/audit.md`).
    pub audit_file: PathBuf,
    /// The metrics listener (`docs/metrics.md`); `None`: no metrics endpoint.
    pub metrics_listen: Option<SocketAddr>,
    /// Connection caps and timeouts of every listener.
    pub limits: Limits,
}

/// What one client may hold of a listener (`docs/kms-node.md`, "Limits"). The global
/// connection cap and body sizes are constants in [`crate::http`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Connections one source address may have open at once on one listener, so that one
    /// host cannot take all [`crate::http::MAX_CONNECTIONS`]; 0: no cap. On an instance
    /// endpoint behind a trusted proxy it counts the client address the PROXY header
    /// gives.
    pub connections_per_source: usize,
    /// Whether a trusted proxy's own TCP connections count against
    /// [`Self::connections_per_source`] too (off: a proxy carries many clients).
    pub cap_trusted_proxies: bool,
    /// Time a client has to finish the TLS handshake.
    pub handshake_timeout: Duration,
    /// Time a client has to send a request's headers, counted from when the server
    /// starts waiting for them: on a kept-alive connection that is the end of the
    /// previous answer, so this is also the idle timeout.
    pub header_timeout: Duration,
    /// Time a client has to send a request's whole body, counted from the end of its
    /// headers (management listener and instance endpoints).
    pub body_timeout: Duration,
    /// Time a write to a client may wait without the client reading anything (every
    /// listener, [`crate::stall`]): one that sends requests and never reads the answers
    /// is cut off.
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connections_per_source: crate::http::CONNECTIONS_PER_SOURCE,
            cap_trusted_proxies: false,
            handshake_timeout: crate::http::HANDSHAKE_TIMEOUT,
            header_timeout: crate::http::HEADER_TIMEOUT,
            body_timeout: crate::http::BODY_TIMEOUT,
            write_timeout: crate::http::WRITE_TIMEOUT,
        }
    }
}

/// What the command line may set; `None` keeps the file's value or the default.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--database`.
    pub database: Option<String>,
    /// `--node-key-file`.
    pub node_key_file: Option<PathBuf>,
    /// `--region`.
    pub region: Option<String>,
    /// `--listen`.
    pub listen: Option<String>,
    /// `--insecure-http`.
    pub insecure_http: bool,
    /// `--server-name` (repeatable); replaces the file's list when given.
    pub server_names: Vec<String>,
    /// `--enable-timeout-secs`.
    pub enable_timeout_secs: Option<u64>,
    /// `--maintenance-interval-secs`.
    pub maintenance_interval_secs: Option<u64>,
    /// `--instance-api-ip`.
    pub instance_api_ip: Option<String>,
    /// `--instance-ports` (`FIRST-LAST`, or one port).
    pub instance_ports: Option<String>,
    /// `--trusted-proxy` (repeatable); replaces the file's list when given.
    pub trusted_proxies: Vec<String>,
    /// `--audit-file`.
    pub audit_file: Option<PathBuf>,
    /// `--metrics-listen` (`IP:PORT` or `off`).
    pub metrics_listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    data_dir: Option<PathBuf>,
    database: Option<String>,
    node_key_file: Option<PathBuf>,
    region: Option<String>,
    #[serde(default)]
    management: ManagementFile,
    #[serde(default)]
    instances: InstancesFile,
    #[serde(default)]
    keys: KeysFile,
    #[serde(default)]
    audit: AuditFile,
    #[serde(default)]
    metrics: MetricsFile,
    #[serde(default)]
    limits: LimitsFile,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    connections_per_source: Option<usize>,
    cap_trusted_proxies: Option<bool>,
    handshake_timeout_secs: Option<u64>,
    header_timeout_secs: Option<u64>,
    body_timeout_secs: Option<u64>,
    write_timeout_secs: Option<u64>,
}

impl LimitsFile {
    /// The limits, defaults filled; a timeout of 0 is refused.
    fn resolve(self) -> Result<Limits, ConfigError> {
        let defaults = Limits::default();
        let secs = |name: &str, value: Option<u64>, default: Duration| match value {
            Some(0) => Err(ConfigError(format!("limits.{name} must be at least 1"))),
            Some(n) => Ok(Duration::from_secs(n)),
            None => Ok(default),
        };
        Ok(Limits {
            connections_per_source: self
                .connections_per_source
                .unwrap_or(defaults.connections_per_source),
            cap_trusted_proxies: self
                .cap_trusted_proxies
                .unwrap_or(defaults.cap_trusted_proxies),
            handshake_timeout: secs(
                "handshake_timeout_secs",
                self.handshake_timeout_secs,
                defaults.handshake_timeout,
            )?,
            header_timeout: secs(
                "header_timeout_secs",
                self.header_timeout_secs,
                defaults.header_timeout,
            )?,
            body_timeout: secs(
                "body_timeout_secs",
                self.body_timeout_secs,
                defaults.body_timeout,
            )?,
            write_timeout: secs(
                "write_timeout_secs",
                self.write_timeout_secs,
                defaults.write_timeout,
            )?,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsFile {
    listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditFile {
    file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManagementFile {
    listen: Option<String>,
    insecure_http: Option<bool>,
    server_names: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct InstancesFile {
    enable_timeout_secs: Option<u64>,
    api_ip: Option<String>,
    api_ports: Option<String>,
    api_server_names: Option<Vec<String>>,
    trusted_proxies: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    maintenance_interval_secs: Option<u64>,
}

impl Config {
    /// Reads `file` (if any), applies `overrides`, fills defaults and checks the result.
    ///
    /// # Errors
    /// [`ConfigError`] for an unreadable or invalid file, or an invalid combination (plain
    /// HTTP on a non-loopback address, say).
    pub fn load(file: Option<&Path>, overrides: Overrides) -> Result<Self, ConfigError> {
        let parsed = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
                toml::from_str::<File>(&text)
                    .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?
            }
            None => File::default(),
        };
        let data_dir = overrides
            .data_dir
            .or(parsed.data_dir)
            .unwrap_or_else(|| PathBuf::from("strongroom-data"));
        let database = match overrides
            .database
            .or(parsed.database)
            .unwrap_or_else(|| "sqlite".to_owned())
        {
            url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Database::Postgres(url)
            }
            s if s == "sqlite" => Database::Sqlite(data_dir.join(SQLITE_FILE)),
            s if s.starts_with("sqlite://") => {
                Database::Sqlite(PathBuf::from(s.trim_start_matches("sqlite://")))
            }
            other => {
                return Err(ConfigError(format!(
                    "database {other:?}: expected \"sqlite\", \"sqlite:///path/kms.db\" or a \
                     postgres:// URL"
                )));
            }
        };
        let node_key_file = overrides
            .node_key_file
            .or(parsed.node_key_file)
            .unwrap_or_else(|| data_dir.join(NODE_KEY_FILE));
        let region = overrides
            .region
            .or(parsed.region)
            .unwrap_or_else(|| DEFAULT_REGION.to_owned());
        if region.is_empty()
            || region.len() > 64
            || !region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(ConfigError(format!(
                "region {region:?}: 1 to 64 letters, digits and '-'"
            )));
        }
        let listen_text = overrides
            .listen
            .or(parsed.management.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            ConfigError(format!(
                "listen address {listen_text:?} is not IP:PORT (for example 0.0.0.0:8443)"
            ))
        })?;
        let insecure_http =
            overrides.insecure_http || parsed.management.insecure_http.unwrap_or(false);
        if insecure_http && !listen.ip().is_loopback() {
            return Err(ConfigError(format!(
                "plain HTTP is allowed only on a loopback address, not {listen}; drop \
                 insecure_http to serve HTTPS"
            )));
        }
        let server_names = if overrides.server_names.is_empty() {
            parsed
                .management
                .server_names
                .unwrap_or_else(|| default_server_names(listen.ip()))
        } else {
            overrides.server_names
        };
        let enable_timeout = Duration::from_secs(
            overrides
                .enable_timeout_secs
                .or(parsed.instances.enable_timeout_secs)
                .unwrap_or(DEFAULT_ENABLE_TIMEOUT.as_secs()),
        );
        if enable_timeout.is_zero() {
            return Err(ConfigError("enable_timeout_secs must be at least 1".into()));
        }
        let maintenance_interval = Duration::from_secs(
            overrides
                .maintenance_interval_secs
                .or(parsed.keys.maintenance_interval_secs)
                .unwrap_or(DEFAULT_MAINTENANCE_INTERVAL.as_secs()),
        );
        if maintenance_interval.is_zero() {
            return Err(ConfigError(
                "maintenance_interval_secs must be at least 1".into(),
            ));
        }
        let api_ip_text = overrides
            .instance_api_ip
            .or(parsed.instances.api_ip)
            .unwrap_or_else(|| DEFAULT_INSTANCE_API_IP.to_owned());
        let instance_api_ip: IpAddr = api_ip_text.parse().map_err(|_| {
            ConfigError(format!(
                "instance API address {api_ip_text:?} is not an IP address (for example 0.0.0.0)"
            ))
        })?;
        let instance_ports = match overrides.instance_ports.or(parsed.instances.api_ports) {
            Some(text) => port_range(&text)?,
            None => DEFAULT_INSTANCE_PORTS,
        };
        let instance_server_names = parsed
            .instances
            .api_server_names
            .unwrap_or_else(|| default_server_names(instance_api_ip));
        let proxies = if overrides.trusted_proxies.is_empty() {
            parsed.instances.trusted_proxies.unwrap_or_default()
        } else {
            overrides.trusted_proxies
        };
        let trusted_proxies = proxies
            .iter()
            .map(|p| {
                p.parse::<crate::network::Cidr>()
                    .map_err(|e| ConfigError(format!("trusted_proxies: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let audit_file = overrides
            .audit_file
            .or(parsed.audit.file)
            .unwrap_or_else(|| data_dir.join(AUDIT_FILE));
        let metrics_listen = match overrides
            .metrics_listen
            .or(parsed.metrics.listen)
            .unwrap_or_else(|| DEFAULT_METRICS_LISTEN.to_owned())
        {
            off if off == "off" => None,
            text => Some(text.parse::<SocketAddr>().map_err(|_| {
                ConfigError(format!(
                    "metrics listen address {text:?} is not IP:PORT (or \"off\")"
                ))
            })?),
        };
        let limits = parsed.limits.resolve()?;
        Ok(Self {
            limits,
            metrics_listen,
            audit_file,
            data_dir,
            database,
            node_key_file,
            region,
            listen,
            insecure_http,
            server_names,
            enable_timeout,
            maintenance_interval,
            instance_api_ip,
            instance_ports,
            instance_server_names,
            trusted_proxies,
        })
    }

    /// Where the management CA file is written.
    pub fn management_ca_file(&self) -> PathBuf {
        self.data_dir.join(MANAGEMENT_CA_FILE)
    }
}

/// `FIRST-LAST` or `PORT`: a non-empty range of ports above 0.
fn port_range(text: &str) -> Result<RangeInclusive<u16>, ConfigError> {
    let bad = || {
        ConfigError(format!(
            "instance ports {text:?}: expected FIRST-LAST (for example 18443-18542) or one port"
        ))
    };
    let (first, last) = match text.split_once('-') {
        Some((a, b)) => (a.trim(), b.trim()),
        None => (text.trim(), text.trim()),
    };
    let first: u16 = first.parse().map_err(|_| bad())?;
    let last: u16 = last.parse().map_err(|_| bad())?;
    if first == 0 || first > last {
        return Err(bad());
    }
    Ok(first..=last)
}

fn default_server_names(listen: IpAddr) -> Vec<String> {
    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    if !listen.is_unspecified() && !listen.is_loopback() {
        names.push(listen.to_string());
    }
    names
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = Config::load(None, Overrides::default()).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(
            c.database,
            Database::Sqlite(PathBuf::from("strongroom-data/kms.db"))
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(
            &file,
            "data_dir = \"/d\"\ndatabase = \"postgres://u@h/db\"\n[management]\nlisten = \"0.0.0.0:9443\"\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&file),
            Overrides {
                region: Some("eu-1".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(c.database, Database::Postgres("postgres://u@h/db".into()));
        assert_eq!(c.node_key_file, PathBuf::from("/d/node.key"));
        assert_eq!(c.region, "eu-1");
        assert_eq!(c.listen.port(), 9443);
    }

    #[test]
    fn instance_api_settings() {
        let c = Config::load(None, Overrides::default()).unwrap();
        assert_eq!(c.instance_ports, DEFAULT_INSTANCE_PORTS);
        assert!(c.trusted_proxies.is_empty());
        let c = Config::load(
            None,
            Overrides {
                instance_api_ip: Some("0.0.0.0".into()),
                instance_ports: Some("20000-20009".into()),
                trusted_proxies: vec!["10.0.0.0/8".into()],
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(c.instance_ports, 20_000..=20_009);
        assert_eq!(c.trusted_proxies.len(), 1);
        assert_eq!(port_range("18443").unwrap(), 18_443..=18_443);
        for bad in ["0-5", "10-5", "x", "1-70000"] {
            assert!(port_range(bad).is_err(), "{bad}");
        }
        let refused = Config::load(
            None,
            Overrides {
                trusted_proxies: vec!["10.0.0.1/8".into()],
                ..Overrides::default()
            },
        );
        assert!(refused.is_err());
    }

    #[test]
    fn plain_http_only_on_loopback_and_unknown_keys_refused() {
        let refused = Config::load(
            None,
            Overrides {
                listen: Some("0.0.0.0:8080".into()),
                insecure_http: true,
                ..Overrides::default()
            },
        );
        assert!(refused.unwrap_err().0.contains("loopback"));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(&file, "listne = \"x\"\n").unwrap();
        assert!(Config::load(Some(&file), Overrides::default()).is_err());
    }

    #[test]
    fn limits_from_the_file() {
        let c = Config::load(None, Overrides::default()).unwrap();
        assert_eq!(c.limits, Limits::default());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(
            &file,
            "[limits]\nconnections_per_source = 0\ncap_trusted_proxies = true\n\
             header_timeout_secs = 5\nwrite_timeout_secs = 7\n",
        )
        .unwrap();
        let c = Config::load(Some(&file), Overrides::default()).unwrap();
        assert_eq!(c.limits.connections_per_source, 0);
        assert!(c.limits.cap_trusted_proxies);
        assert_eq!(c.limits.header_timeout, Duration::from_secs(5));
        assert_eq!(c.limits.body_timeout, crate::http::BODY_TIMEOUT);
        assert_eq!(c.limits.write_timeout, Duration::from_secs(7));
        for zero in ["body_timeout_secs", "write_timeout_secs"] {
            std::fs::write(&file, format!("[limits]\n{zero} = 0\n")).unwrap();
            let e = Config::load(Some(&file), Overrides::default()).unwrap_err();
            assert!(e.to_string().contains(zero), "{e}");
        }
    }
}

//! `strongroom hsm serve` (one HSM node) and `strongroom hsm admin` (the security
//! officer's management tool). Argument parsing and printing only; the work is in
//! `strongroom-hsm`.

use std::io::{self, IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine as _;
use clap::{Args, Subcommand};
use strongroom_crypto::passphrase::Argon2Params;
use strongroom_crypto::secret::SecretBytes;
use strongroom_hsm::admin::{self, AdminError, OfficerClient, Trust};
use strongroom_hsm::identity;
use strongroom_hsm::node::{Node, NodeOptions, SyncResult};
use strongroom_hsm::officer::{
    CertificateInfo, DEFAULT_HOST_PORT, DEFAULT_OFFICER_PORT, NodeStatus, OfficerRequest,
};
use strongroom_hsm::state::{self, Credential, NodeStore};
use zeroize::Zeroizing;

/// The environment variable holding the officer's password.
const PASSWORD_ENV: &str = "STRONGROOM_HSM_OFFICER_PASSWORD";

/// `strongroom hsm …`.
#[derive(Debug, Args)]
pub struct HsmArgs {
    #[command(subcommand)]
    command: HsmCommand,
}

#[derive(Debug, Subcommand)]
enum HsmCommand {
    /// Run one HSM node.
    Serve(ServeArgs),
    /// The HSM management tool: log in to a node and configure it.
    Admin(AdminArgs),
}

/// `strongroom hsm serve`.
#[derive(Debug, Args)]
struct ServeArgs {
    /// The node's state directory (created and initialised on first start).
    #[arg(long, value_name = "DIR")]
    state: PathBuf,
    /// The host port, which KMS nodes call (mutual TLS).
    #[arg(long, value_name = "ADDR", default_value_t = SocketAddr::from(([0, 0, 0, 0], DEFAULT_HOST_PORT)))]
    listen: SocketAddr,
    /// The officer port, which the management tool and the other cluster nodes use.
    #[arg(long, value_name = "ADDR", default_value_t = SocketAddr::from(([0, 0, 0, 0], DEFAULT_OFFICER_PORT)))]
    officer_listen: SocketAddr,
    /// A zone label for this node (recorded at first start), e.g. `cn-hangzhou-h`.
    #[arg(long, value_name = "LABEL", default_value = "default")]
    zone: String,
    /// A file holding the security officer's password (first start: sets it; later:
    /// unseals). Also read from STRONGROOM_HSM_OFFICER_PASSWORD; prompted for at first
    /// start on a terminal.
    #[arg(long, value_name = "FILE")]
    officer_password_file: Option<PathBuf>,
    /// An unseal-key file: at first start it is created (if missing) and becomes a
    /// second way to unseal; later starts unseal with it, non-interactively.
    #[arg(long, value_name = "FILE")]
    unseal_key_file: Option<PathBuf>,
    /// Log level: error, warn, info (default), debug, trace (default: RUST_LOG, else
    /// info).
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
}

/// `strongroom hsm admin`.
#[derive(Debug, Args)]
struct AdminArgs {
    /// The node's officer port, `HOST:PORT`.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8021")]
    connect: String,
    /// A file holding the officer's password (else STRONGROOM_HSM_OFFICER_PASSWORD,
    /// else a prompt).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Trust exactly this node identity (`SHA256:<hex>`, printed by `hsm serve`).
    #[arg(long, value_name = "FINGERPRINT")]
    fingerprint: Option<String>,
    /// The known-nodes file (default $STRONGROOM_KNOWN_HSMS or ~/.strongroom/known_hsms).
    #[arg(long, value_name = "FILE")]
    known_hsms: Option<PathBuf>,
    /// Trust a node seen for the first time and record it in the known-nodes file.
    #[arg(long)]
    accept_new: bool,
    /// Print results as JSON.
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Log in (this unseals a sealed node) and print who the node is.
    Login,
    /// The node's status: sealed, role, members, sync, domain-key fingerprint, certificates.
    Status,
    /// This node's identity and enrolment key.
    Identity,
    /// Import client certificates (e.g. `client.pem`) the host port will accept.
    ImportClientCert {
        /// PEM file with one or more certificates.
        file: PathBuf,
    },
    /// List the imported client certificates.
    ListClientCerts,
    /// Remove an imported client certificate.
    RemoveClientCert {
        /// Its SHA-256 fingerprint.
        fingerprint: String,
    },
    /// Import the host port's server certificate and key (`server.p12`).
    ImportServerCert {
        /// The PKCS#12 file.
        file: PathBuf,
        /// Its password.
        #[arg(long, value_name = "PASSWORD", conflicts_with = "p12_password_file")]
        p12_password: Option<String>,
        /// A file holding its password.
        #[arg(long, value_name = "FILE")]
        p12_password_file: Option<PathBuf>,
    },
    /// Set host-port properties (the guide: keep-alive 60, header length 0, ASCII,
    /// two-way, TLSv1.2).
    SetProperties {
        /// Socket keep-alive in seconds (0: off).
        #[arg(long, value_name = "SECONDS")]
        keep_alive: Option<u32>,
        /// Message header length (only 0: frames carry their own length).
        #[arg(long, value_name = "N")]
        header_len: Option<u32>,
        /// Encoding (only ASCII).
        #[arg(long, value_name = "ENCODING")]
        encoding: Option<String>,
        /// Two-way (mutual TLS) communication.
        #[arg(long)]
        two_way: bool,
        /// TLSv1.2 or TLSv1.3.
        #[arg(long, value_name = "PROTOCOL")]
        protocol: Option<String>,
    },
    /// Apply the staged certificates and properties to the host port.
    Restart,
    /// Add the node at HOST:PORT (its officer port) to this primary's cluster.
    AddMember {
        /// The member's officer port.
        address: String,
        /// The member's officer password file (default: the same password).
        #[arg(long, value_name = "FILE")]
        member_password_file: Option<PathBuf>,
        /// Trust exactly this member identity.
        #[arg(long, value_name = "FINGERPRINT")]
        member_fingerprint: Option<String>,
    },
    /// Remove a member from this primary's cluster.
    RemoveMember {
        /// The member's node id.
        node_id: String,
    },
    /// Copy the domain key, certificates and properties to every member.
    SyncCluster,
}

/// Runs `strongroom hsm …`.
pub fn run(args: HsmArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    match args.command {
        HsmCommand::Serve(args) => runtime.block_on(serve(args)),
        HsmCommand::Admin(args) => runtime.block_on(admin(args)),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

async fn serve(args: ServeArgs) -> ExitCode {
    crate::logging::init(args.log_level.as_deref());
    let first_start = !NodeStore::is_initialised(&args.state);
    let password = match read_password(args.officer_password_file.as_deref(), first_start, true) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let unseal_key = match &args.unseal_key_file {
        None => None,
        Some(path) if first_start && !path.exists() => match state::create_unseal_key_file(path) {
            Ok(Credential::UnsealKey(key)) => {
                eprintln!(
                    "created unseal key file {} (keep it secret and backed up)",
                    path.display()
                );
                Some(key)
            }
            Ok(Credential::Password(_)) => None,
            Err(e) => return fail(&e.to_string()),
        },
        Some(path) => match Credential::from_unseal_key_file(path) {
            Ok(Credential::UnsealKey(key)) => Some(key),
            Ok(Credential::Password(_)) => None,
            Err(e) => return fail(&e.to_string()),
        },
    };
    let node = match Node::start(NodeOptions {
        state_dir: args.state.clone(),
        host_listen: args.listen,
        officer_listen: args.officer_listen,
        zone: args.zone,
        password,
        unseal_key,
        kdf: Argon2Params::DEFAULT,
    })
    .await
    {
        Ok(node) => node,
        Err(e) => return fail(&e.to_string()),
    };
    let status = node.status();
    println!(
        "HSM node {} (zone {}) {}",
        status.node_id,
        status.zone,
        if status.sealed {
            "is SEALED: no crypto is served until the security officer logs in".to_owned()
        } else {
            format!(
                "is unsealed, role {}",
                status.role.as_deref().unwrap_or("unknown")
            )
        }
    );
    println!("  host port     {}", node.host_addr());
    println!("  officer port  {}", node.officer_addr());
    println!("  identity      SHA256:{}", node.identity_fingerprint());
    if let Some(reason) = &status.host.reason {
        println!("  host port not serving yet: {reason}");
    }
    let _ = io::stdout().flush();
    crate::signal::wait_for_shutdown().await;
    eprintln!("shutting down");
    node.shutdown().await;
    ExitCode::SUCCESS
}

/// The officer password: from `file`, else the environment, else a prompt on a
/// terminal when `prompt`; `None` when none is available and not `required`.
fn read_password(
    file: Option<&Path>,
    required: bool,
    prompt_confirm: bool,
) -> Result<Option<SecretBytes>, String> {
    if let Some(file) = file {
        let text = Zeroizing::new(
            std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?,
        );
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            return Err(format!("{} is empty", file.display()));
        }
        return Ok(Some(SecretBytes::copy_from(text.as_bytes())));
    }
    if let Some(value) = std::env::var_os(PASSWORD_ENV) {
        let value = Zeroizing::new(
            value
                .into_string()
                .map_err(|_| format!("{PASSWORD_ENV} is not UTF-8"))?,
        );
        if value.is_empty() {
            return Err(format!("{PASSWORD_ENV} is empty"));
        }
        return Ok(Some(SecretBytes::copy_from(value.as_bytes())));
    }
    if !required {
        return Ok(None);
    }
    if !io::stdin().is_terminal() {
        return Err(format!(
            "the security officer's password is needed: pass --officer-password-file/--password-file, or set {PASSWORD_ENV}"
        ));
    }
    let first = Zeroizing::new(
        rpassword::prompt_password("Security officer password: ").map_err(|e| e.to_string())?,
    );
    if first.chars().count() < 8 {
        return Err("the password must have at least 8 characters".to_owned());
    }
    if prompt_confirm {
        let again = Zeroizing::new(
            rpassword::prompt_password("Repeat the password: ").map_err(|e| e.to_string())?,
        );
        if *first != *again {
            return Err("the passwords differ".to_owned());
        }
    }
    Ok(Some(SecretBytes::copy_from(first.as_bytes())))
}

fn officer_password(file: Option<&Path>) -> Result<Zeroizing<String>, String> {
    let secret = read_password(file, true, false)?
        .ok_or_else(|| "the security officer's password is needed".to_owned())?;
    String::from_utf8(secret.expose_secret().to_vec())
        .map(Zeroizing::new)
        .map_err(|_| "the password is not UTF-8".to_owned())
}

fn trust(
    fingerprint: Option<&str>,
    known: Option<&Path>,
    accept_new: bool,
) -> Result<Trust, String> {
    match fingerprint {
        Some(text) => identity::parse_fingerprint(text)
            .map(Trust::Fingerprint)
            .ok_or_else(|| format!("{text:?} is not a SHA-256 fingerprint")),
        None => Ok(Trust::KnownNodes {
            file: known.map_or_else(admin::default_known_nodes_file, Path::to_path_buf),
            accept_new,
        }),
    }
}

async fn admin(args: AdminArgs) -> ExitCode {
    match admin_inner(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

async fn session(
    address: &str,
    trust: &Trust,
    password: &Zeroizing<String>,
) -> Result<OfficerClient, String> {
    let mut client = OfficerClient::connect(address, trust)
        .await
        .map_err(|e| e.to_string())?;
    let hello = client
        .call(&OfficerRequest::Hello)
        .await
        .map_err(|e| e.to_string())?;
    if hello.get("sealed") == Some(&serde_json::Value::Bool(true)) {
        eprintln!("note: {address} is sealed; logging in unseals it");
    }
    client.login(password).await.map_err(|e| match e {
        AdminError::Refused(reason) => format!("{address}: {reason}"),
        other => other.to_string(),
    })?;
    Ok(client)
}

async fn admin_inner(args: &AdminArgs) -> Result<(), String> {
    let trust_main = trust(
        args.fingerprint.as_deref(),
        args.known_hsms.as_deref(),
        args.accept_new,
    )?;
    let password = officer_password(args.password_file.as_deref())?;
    let mut client = session(&args.connect, &trust_main, &password).await?;
    let refused = |e: AdminError| e.to_string();
    let value = match &args.command {
        AdminCommand::Login => client.call(&OfficerRequest::Hello).await.map_err(refused)?,
        AdminCommand::Status => {
            let status: NodeStatus = client
                .call_as(&OfficerRequest::Status)
                .await
                .map_err(refused)?;
            if !args.json {
                print_status(&status);
                return Ok(());
            }
            serde_json::to_value(status).map_err(|e| e.to_string())?
        }
        AdminCommand::Identity => client
            .call(&OfficerRequest::Identity)
            .await
            .map_err(refused)?,
        AdminCommand::ImportClientCert { file } => {
            let pem =
                std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
            let added: Vec<CertificateInfo> = client
                .call_as(&OfficerRequest::ImportClientCert { pem })
                .await
                .map_err(refused)?;
            if !args.json {
                for cert in &added {
                    println!(
                        "imported client certificate {} (SHA256:{})",
                        cert.subject, cert.fingerprint
                    );
                }
                println!("takes effect at the next `restart`");
                return Ok(());
            }
            serde_json::to_value(added).map_err(|e| e.to_string())?
        }
        AdminCommand::ListClientCerts => {
            let list: Vec<CertificateInfo> = client
                .call_as(&OfficerRequest::ListClientCerts)
                .await
                .map_err(refused)?;
            if !args.json {
                for cert in &list {
                    println!(
                        "SHA256:{}  {}  (expires {})",
                        cert.fingerprint, cert.subject, cert.not_after
                    );
                }
                return Ok(());
            }
            serde_json::to_value(list).map_err(|e| e.to_string())?
        }
        AdminCommand::RemoveClientCert { fingerprint } => client
            .call(&OfficerRequest::RemoveClientCert {
                fingerprint: fingerprint.clone(),
            })
            .await
            .map_err(refused)?,
        AdminCommand::ImportServerCert {
            file,
            p12_password,
            p12_password_file,
        } => {
            let der = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
            let p12_password = match (p12_password, p12_password_file) {
                (Some(p), _) => Zeroizing::new(p.clone()),
                (None, Some(f)) => Zeroizing::new(
                    std::fs::read_to_string(f)
                        .map_err(|e| format!("{}: {e}", f.display()))?
                        .trim_end_matches(['\r', '\n'])
                        .to_owned(),
                ),
                (None, None) => {
                    return Err(
                        "give the PKCS#12 password: --p12-password or --p12-password-file"
                            .to_owned(),
                    );
                }
            };
            client
                .call(&OfficerRequest::ImportServerCert {
                    p12: base64::engine::general_purpose::STANDARD.encode(der),
                    password: p12_password,
                })
                .await
                .map_err(refused)?
        }
        AdminCommand::SetProperties {
            keep_alive,
            header_len,
            encoding,
            two_way,
            protocol,
        } => client
            .call(&OfficerRequest::SetProperties {
                keep_alive_secs: *keep_alive,
                header_len: *header_len,
                encoding: encoding.clone(),
                two_way: two_way.then_some(true),
                protocol: protocol.clone(),
            })
            .await
            .map_err(refused)?,
        AdminCommand::Restart => client
            .call(&OfficerRequest::Restart)
            .await
            .map_err(refused)?,
        AdminCommand::AddMember {
            address,
            member_password_file,
            member_fingerprint,
        } => {
            let member_trust = trust(
                member_fingerprint.as_deref(),
                args.known_hsms.as_deref(),
                args.accept_new,
            )?;
            let member_password = match member_password_file {
                Some(file) => officer_password(Some(file))?,
                None => password.clone(),
            };
            let mut member = session(address, &member_trust, &member_password).await?;
            let info = admin::add_member(&mut client, &mut member)
                .await
                .map_err(refused)?;
            if !args.json {
                println!(
                    "added member {} (zone {}) at {address}; run `sync-cluster` to give it the domain key",
                    info.node_id, info.zone
                );
                return Ok(());
            }
            serde_json::to_value(info).map_err(|e| e.to_string())?
        }
        AdminCommand::RemoveMember { node_id } => client
            .call(&OfficerRequest::RemoveMember {
                node_id: node_id.clone(),
            })
            .await
            .map_err(refused)?,
        AdminCommand::SyncCluster => {
            let results: Vec<SyncResult> = client
                .call_as(&OfficerRequest::SyncCluster)
                .await
                .map_err(refused)?;
            let failed = results.iter().filter(|r| !r.synced).count();
            if !args.json {
                if results.is_empty() {
                    println!("the cluster has no members to sync");
                }
                for r in &results {
                    match &r.error {
                        None => println!("synced {} at {}", r.node_id, r.address),
                        Some(e) => println!("FAILED {} at {}: {e}", r.node_id, r.address),
                    }
                }
            } else {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?
                );
            }
            if failed > 0 {
                return Err(format!("{failed} member(s) not synced"));
            }
            return Ok(());
        }
    };
    if args.json || !value.is_null() {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?
        );
    } else {
        println!("ok");
    }
    Ok(())
}

fn print_status(s: &NodeStatus) {
    println!("node            {} (zone {})", s.node_id, s.zone);
    println!("sealed          {}", if s.sealed { "yes" } else { "no" });
    println!("role            {}", s.role.as_deref().unwrap_or("-"));
    println!("synced          {}", if s.synced { "yes" } else { "no" });
    println!(
        "domain key      {}",
        s.domain_key_fingerprint
            .as_deref()
            .map_or_else(|| "-".to_owned(), |f| format!("SHA256:{f}"))
    );
    println!("identity        SHA256:{}", s.identity_fingerprint);
    println!(
        "host port       {} {}{}",
        s.host.address,
        if s.host.serving {
            "serving"
        } else {
            "not serving"
        },
        s.host
            .reason
            .as_deref()
            .map_or_else(String::new, |r| format!(" ({r})"))
    );
    if s.host.restart_pending {
        println!("                changes staged: run `restart` to apply them");
    }
    if let Some(p) = &s.host.properties {
        println!(
            "properties      keep-alive {} s, header length {}, {}, {}, {}",
            p.keep_alive_secs,
            p.header_len,
            p.encoding,
            if p.two_way { "two-way" } else { "one-way" },
            p.protocol
        );
    }
    if let Some(p) = &s.primary {
        println!(
            "primary         {} at {} (zone {})",
            p.node_id, p.address, p.zone
        );
    }
    for m in &s.members {
        println!(
            "member          {} at {} (zone {}) {}",
            m.node_id,
            m.address,
            m.zone,
            if m.synced { "synced" } else { "NOT synced" }
        );
    }
    match &s.server_certificate {
        Some(c) => println!(
            "server cert     {} (SHA256:{}, expires {})",
            c.subject, c.fingerprint, c.not_after
        ),
        None => println!("server cert     -"),
    }
    for c in &s.client_certificates {
        println!("client cert     {} (SHA256:{})", c.subject, c.fingerprint);
    }
}

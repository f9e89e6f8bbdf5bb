//! `strongroom instance …`: dedicated KMS instances.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use base64::Engine as _;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::{ConnectArgs, Failure, PageArgs, Session, field, list, print_paging, text};

/// `strongroom instance …`.
#[derive(Debug, Args)]
#[command(after_help = super::CONNECTION_HELP)]
pub struct InstanceArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    command: InstanceCommand,
}

#[derive(Debug, Subcommand)]
enum InstanceCommand {
    /// Provision instances (each with its own CA); prints every instance id.
    Create(CreateArgs),
    /// List instances.
    List(PageArgs),
    /// Show one instance.
    Get {
        /// The instance id, `kst-…`.
        id: String,
        /// Also write its CA chain to DIR/PrivateKmsCA_<id>.pem.
        #[arg(long, value_name = "DIR")]
        write_ca: Option<PathBuf>,
    },
    /// Bind an HSM cluster to the instance and enable it.
    Connect(ConnectInstanceArgs),
    /// Replace the set of VPCs bound to the instance.
    #[command(name = "bind-vpc")]
    BindVpc {
        /// The instance id.
        id: String,
        /// VPC ids (from `vpc create`).
        #[arg(value_name = "VPCID", required_unless_present = "none")]
        vpcs: Vec<String>,
        /// Unbind every VPC.
        #[arg(long, conflicts_with = "vpcs")]
        none: bool,
    },
    /// Extend the instance's term, or set auto-renew.
    Renew {
        /// The instance id.
        id: String,
        /// Months to add: 1, 2, 3, 6, 12, 24 or 36.
        #[arg(long, value_name = "MONTHS")]
        period: Option<u32>,
        /// Renew automatically when the term ends.
        #[arg(long, value_name = "BOOL")]
        auto_renew: Option<bool>,
    },
    /// Delete the instance and its bindings.
    Release {
        /// The instance id.
        id: String,
        /// Required for a connected instance, which may hold keys: deleted without backup.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// The instance name (default kms-instance).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// The region id (default: the node's).
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    /// VPCs the instance may bind, 0–10000 (default 1).
    #[arg(long, value_name = "N")]
    vpc_num: Option<u32>,
    /// Keys, 100–100000 (default 1000).
    #[arg(long, value_name = "N")]
    key_num: Option<u32>,
    /// Secrets, 0–100000 (default 0).
    #[arg(long, value_name = "N")]
    secret_num: Option<u32>,
    /// Requests per second: 200, 1000, 2000, 4000, 10000, 20000, 50000 or 100000 (default 1000).
    #[arg(long, value_name = "N")]
    spec: Option<u32>,
    /// Term in months: 1, 2, 3, 6, 12, 24 or 36 (default 12).
    #[arg(long, value_name = "MONTHS")]
    period: Option<u32>,
    /// Renew automatically when the term ends.
    #[arg(long)]
    auto_renew: bool,
    /// How many instances, 1–20 (default 1).
    #[arg(long, value_name = "N")]
    quantity: Option<u32>,
}

#[derive(Debug, Args)]
struct ConnectInstanceArgs {
    /// The instance id.
    id: String,
    /// The HSM cluster id (`hsmc-…`, from `hsm-cluster register`).
    #[arg(long, value_name = "HSMC")]
    cluster: String,
    /// The client PKCS#12 the KMS presents to the HSMs (`client.p12`).
    #[arg(long, value_name = "FILE")]
    client_p12: PathBuf,
    /// A file holding the PKCS#12 password.
    #[arg(long, value_name = "FILE", conflicts_with = "p12_password")]
    p12_password_file: Option<PathBuf>,
    /// The PKCS#12 password.
    #[arg(long, value_name = "PASSWORD")]
    p12_password: Option<String>,
    /// The CA that signed the HSMs' server certificates (`rootca.pem`).
    #[arg(long, value_name = "FILE")]
    root_ca: PathBuf,
    /// The cluster's zones, comma-separated (checked against the cluster).
    #[arg(long, value_name = "ZONES", value_delimiter = ',')]
    zones: Vec<String>,
    /// A VPC to bind at the same time.
    #[arg(long, value_name = "VPCID")]
    vpc: Option<String>,
    /// Wait until the instance is Connected (or failed), polling every second.
    #[arg(long)]
    wait: bool,
}

/// Runs `strongroom instance …`.
pub fn run(args: InstanceArgs) -> ExitCode {
    super::run(&args.connect, |s| match args.command {
        InstanceCommand::Create(create) => self::create(s, &create),
        InstanceCommand::List(page) => self::list_instances(s, &page),
        InstanceCommand::Get { id, write_ca } => get(s, &id, write_ca.as_deref()),
        InstanceCommand::Connect(connect) => self::connect(s, &connect),
        InstanceCommand::BindVpc { id, vpcs, none: _ } => bind_vpc(s, &id, &vpcs),
        InstanceCommand::Renew {
            id,
            period,
            auto_renew,
        } => renew(s, &id, period, auto_renew),
        InstanceCommand::Release { id, force } => release(s, &id, force),
    })
}

fn create(s: &Session, args: &CreateArgs) -> Result<(), Failure> {
    let mut params: Vec<(&str, String)> = Vec::new();
    let mut put = |name: &'static str, value: Option<String>| {
        if let Some(value) = value {
            params.push((name, value));
        }
    };
    put("InstanceName", args.name.clone());
    put("RegionId", args.region.clone());
    put("VpcNum", args.vpc_num.map(|n| n.to_string()));
    put("KeyNum", args.key_num.map(|n| n.to_string()));
    put("SecretNum", args.secret_num.map(|n| n.to_string()));
    put("Spec", args.spec.map(|n| n.to_string()));
    put("Period", args.period.map(|n| n.to_string()));
    put("AutoRenew", args.auto_renew.then(|| "true".to_owned()));
    put("Quantity", args.quantity.map(|n| n.to_string()));
    let answer = s.call_owned("CreateKmsInstance", &params)?;
    if s.printed_json(&answer) {
        return Ok(());
    }
    for instance in list(&answer, &["KmsInstances", "KmsInstance"]) {
        println!(
            "{}  {}",
            text(instance, &["KmsInstanceId"]),
            text(instance, &["KmsInstanceArn"])
        );
    }
    Ok(())
}

fn list_instances(s: &Session, page: &PageArgs) -> Result<(), Failure> {
    let answer = s.call_owned("ListKmsInstances", &page.params())?;
    if s.printed_json(&answer) {
        return Ok(());
    }
    let instances = list(&answer, &["KmsInstances", "KmsInstance"]);
    for instance in instances {
        println!(
            "{}  {}",
            text(instance, &["KmsInstanceId"]),
            text(instance, &["KmsInstanceArn"])
        );
    }
    print_paging(&answer, instances.len());
    Ok(())
}

fn get(s: &Session, id: &str, write_ca: Option<&Path>) -> Result<(), Failure> {
    let answer = s.call("GetKmsInstance", &[("KmsInstanceId", id)])?;
    let instance = answer.get("KmsInstance").unwrap_or(&Value::Null);
    if let Some(dir) = write_ca {
        let pem = instance
            .get("CaCertificateChainPem")
            .and_then(Value::as_str)
            .filter(|pem| !pem.is_empty())
            .ok_or_else(|| format!("{id} has no CA certificate chain"))?;
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let file = dir.join(format!("PrivateKmsCA_{id}.pem"));
        std::fs::write(&file, pem).map_err(|e| format!("{}: {e}", file.display()))?;
        // Said on stderr so that `--json` output stays one JSON document.
        eprintln!("wrote the instance CA chain to {}", file.display());
    }
    if s.printed_json(&answer) {
        return Ok(());
    }
    for (label, key) in [
        ("InstanceId", "InstanceId"),
        ("InstanceName", "InstanceName"),
        ("Status", "Status"),
        ("StatusReason", "StatusReason"),
        ("RegionId", "RegionId"),
        ("HsmClusterId", "HsmClusterId"),
        ("ZoneIds", "ZoneIds"),
        ("VpcId", "VpcId"),
        ("CreateTime", "CreateTime"),
        ("StartDate", "StartDate"),
        ("EndDate", "EndDate"),
        ("SaleStatus", "SaleStatus"),
        ("AutoRenew", "AutoRenew"),
        ("Period (months)", "Period"),
        ("Spec", "Spec"),
        ("KeyNum", "KeyNum"),
        ("SecretNum", "SecretNum"),
        ("VpcNum", "VpcNum"),
        ("ChargeType", "ChargeType"),
        ("ProductVersion", "ProductVersion"),
        ("InstanceApiHost", "InstanceApiHost"),
        ("InstanceApiPort", "InstanceApiPort"),
    ] {
        field(instance, label, &[key]);
    }
    let bound: Vec<String> = list(instance, &["BindVpcs", "BindVpc"])
        .iter()
        .map(|vpc| text(vpc, &["VpcId"]))
        .collect();
    println!(
        "{:<22}{}",
        "BindVpcs",
        if bound.is_empty() {
            "-".to_owned()
        } else {
            bound.join(",")
        }
    );
    let certificates = instance
        .get("CaCertificateChainPem")
        .and_then(Value::as_str)
        .map_or(0, |pem| pem.matches("-----BEGIN CERTIFICATE-----").count());
    println!(
        "{:<22}{certificates} certificate(s){}",
        "CaCertificateChain",
        if write_ca.is_none() && certificates > 0 {
            " (save with --write-ca DIR)"
        } else {
            ""
        }
    );
    Ok(())
}

fn connect(s: &Session, args: &ConnectInstanceArgs) -> Result<(), Failure> {
    let p12 = Zeroizing::new(
        std::fs::read(&args.client_p12)
            .map_err(|e| format!("{}: {e}", args.client_p12.display()))?,
    );
    let password = match (&args.p12_password, &args.p12_password_file) {
        (Some(password), _) => Zeroizing::new(password.clone()),
        (None, Some(file)) => Zeroizing::new(
            Zeroizing::new(
                std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?,
            )
            .trim_end_matches(['\r', '\n'])
            .to_owned(),
        ),
        (None, None) => {
            return Err(Failure::Other(
                "give the PKCS#12 password: --p12-password-file or --p12-password".to_owned(),
            ));
        }
    };
    let root_ca = std::fs::read_to_string(&args.root_ca)
        .map_err(|e| format!("{}: {e}", args.root_ca.display()))?;
    let p12 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(p12.as_slice()));
    let mut params: Vec<(&str, &str)> = vec![
        ("KmsInstanceId", &args.id),
        ("HsmClusterId", &args.cluster),
        ("ClientCertificate", &p12),
        ("ClientCertificatePassword", &password),
        ("HsmRootCaPem", &root_ca),
        ("KMProvider", "Strongroom"),
    ];
    let zones = json!(args.zones).to_string();
    if !args.zones.is_empty() {
        params.push(("ZoneIds", &zones));
    }
    if let Some(vpc) = &args.vpc {
        params.push(("VpcId", vpc));
    }
    let answer = s.call("ConnectKmsInstance", &params)?;
    if !args.wait {
        if !s.printed_json(&answer) {
            println!(
                "{} is connecting; see `strongroom instance get {}` (or use --wait)",
                args.id, args.id
            );
        }
        return Ok(());
    }
    if !s.json {
        println!("{} is connecting…", args.id);
    }
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let answer = s.call("GetKmsInstance", &[("KmsInstanceId", &args.id)])?;
        let status = text(&answer, &["KmsInstance", "Status"]);
        if status == "Connecting" {
            continue;
        }
        let reason = text(&answer, &["KmsInstance", "StatusReason"]);
        if !s.printed_json(&answer) {
            println!("{}: {status} ({reason})", args.id);
        }
        return if status == "Connected" {
            Ok(())
        } else {
            Err(Failure::Other(format!(
                "{} did not connect: {status}: {reason}",
                args.id
            )))
        };
    }
}

fn bind_vpc(s: &Session, id: &str, vpcs: &[String]) -> Result<(), Failure> {
    let bind: Vec<Value> = vpcs.iter().map(|vpc| json!({"VpcId": vpc})).collect();
    let bind = Value::Array(bind).to_string();
    let answer = s.call(
        "UpdateKmsInstanceBindVpc",
        &[("KmsInstanceId", id), ("BindVpcs", &bind)],
    )?;
    if !s.printed_json(&answer) {
        if vpcs.is_empty() {
            println!("{id}: every VPC unbound");
        } else {
            println!("{id}: bound to {}", vpcs.join(","));
        }
    }
    Ok(())
}

fn renew(
    s: &Session,
    id: &str,
    period: Option<u32>,
    auto_renew: Option<bool>,
) -> Result<(), Failure> {
    let mut params = vec![("KmsInstanceId", id.to_owned())];
    if let Some(period) = period {
        params.push(("Period", period.to_string()));
    }
    if let Some(auto_renew) = auto_renew {
        params.push(("AutoRenew", auto_renew.to_string()));
    }
    let answer = s.call_owned("RenewKmsInstance", &params)?;
    if !s.printed_json(&answer) {
        println!(
            "{}: ends {}, auto-renew {}",
            text(&answer, &["KmsInstanceId"]),
            text(&answer, &["EndDate"]),
            text(&answer, &["AutoRenew"])
        );
    }
    Ok(())
}

fn release(s: &Session, id: &str, force: bool) -> Result<(), Failure> {
    let mut params = vec![("KmsInstanceId", id)];
    if force {
        params.push(("ForceDeleteWithoutBackup", "true"));
    }
    let answer = s.call("ReleaseKmsInstance", &params)?;
    if !s.printed_json(&answer) {
        println!("{id} released");
    }
    Ok(())
}

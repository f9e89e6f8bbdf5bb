//! `strongroom quickstart`: the whole guide on one machine, in one process — the
//! certificates, two HSM nodes in zones `a` and `b` with the officer's steps and a
//! cluster sync, a KMS node on SQLite with an administrator AccessKey, an instance
//! connected to the cluster, three keys, and an access point with its client key — then
//! serves until Ctrl-C. Run again on the same directory, it starts the same setup with
//! its data and creates nothing twice. `DIR/quickstart.json` says where everything is.

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::Args;
use serde_json::{Value, json};
use strongroom_certs::client_key;
use strongroom_certs::password::Password;
use strongroom_certs::tool::{GenerateOptions, generate};
use strongroom_crypto::passphrase::Argon2Params;
use strongroom_crypto::secret::SecretBytes;
use strongroom_hsm::admin::{self, OfficerClient, Trust};
use strongroom_hsm::node::{Node, NodeOptions};
use strongroom_hsm::officer::OfficerRequest;
use strongroom_server::client::{Credentials, ManagementClient, Transport};
use strongroom_server::{Config, Overrides, RunningServer};
use zeroize::Zeroizing;

/// The file other programs read.
pub const QUICKSTART_FILE: &str = "quickstart.json";
/// Where the secrets of the setup itself are kept (mode 0600).
const SECRETS_FILE: &str = "quickstart-secrets.json";
/// The region of the instance.
const REGION: &str = "cn-hangzhou";

/// `strongroom quickstart`.
#[derive(Debug, Args)]
pub struct QuickstartArgs {
    /// The directory that holds everything (created if missing).
    #[arg(long, value_name = "DIR", default_value = "strongroom-data")]
    dir: PathBuf,
    /// First of the ports used, all on 127.0.0.1: the management API on PORT, metrics on
    /// PORT+9, the HSM nodes on PORT+20 to PORT+23, instance endpoints from PORT+443.
    /// Keep it the same when running again on the same directory.
    #[arg(long, value_name = "PORT", default_value_t = 18000)]
    ports: u16,
    /// Log level of the nodes (stderr): error, warn, info (default), debug, trace
    /// (default: RUST_LOG, else info).
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
}

/// What was set up, and what a run needs to start it again.
struct Setup {
    dir: PathBuf,
    ports: u16,
}

impl Setup {
    fn management(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.ports))
    }

    fn metrics(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.ports.saturating_add(9)))
    }

    fn hsm_ports(&self, zone: usize) -> (u16, u16) {
        let base = self
            .ports
            .saturating_add(20)
            .saturating_add(u16::try_from(zone * 2).unwrap_or(0));
        (base, base.saturating_add(1))
    }

    fn instance_ports(&self) -> String {
        format!(
            "{}-{}",
            self.ports.saturating_add(443),
            self.ports.saturating_add(542)
        )
    }
}

/// Runs `strongroom quickstart`.
pub fn run(args: QuickstartArgs) -> ExitCode {
    crate::logging::init(args.log_level.as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let setup = Setup {
        dir: args.dir,
        ports: args.ports,
    };
    runtime.block_on(async {
        match serve(&setup).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

fn step(text: &str) {
    println!("==> {text}");
    let _ = std::io::stdout().flush();
}

fn random_password(len: usize) -> Result<String, String> {
    let mut bytes = vec![0u8; len];
    strongroom_crypto::random::fill(&mut bytes).map_err(|e| e.to_string())?;
    // Hex holds digits and letters: two classes, as client keys need.
    let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("Qs-{text}"))
}

fn write_private(path: &Path, text: &str) -> Result<(), String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn text_of<'a>(value: &'a Value, path: &[&str]) -> Result<&'a str, String> {
    path.iter()
        .try_fold(value, |v, k| v.get(k))
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{} is missing from an answer or a file", path.join(".")))
}

/// The setup's own secrets: the certificates' PKCS#12 password and the HSM officer's.
fn secrets(setup: &Setup) -> Result<Value, String> {
    let path = setup.dir.join(SECRETS_FILE);
    if path.exists() {
        return read_json(&path);
    }
    let made = json!({
        "p12_password": random_password(12)?,
        "officer_password": random_password(16)?,
    });
    write_private(&path, &made.to_string())?;
    Ok(made)
}

async fn serve(setup: &Setup) -> Result<(), String> {
    std::fs::create_dir_all(&setup.dir).map_err(|e| format!("{}: {e}", setup.dir.display()))?;
    let secrets = secrets(setup)?;
    let p12_password = text_of(&secrets, &["p12_password"])?.to_owned();
    let officer_password = text_of(&secrets, &["officer_password"])?.to_owned();
    let existing = setup.dir.join(QUICKSTART_FILE).exists();

    let certs = setup.dir.join("certs");
    if certs.join("client.p12").exists() {
        step("certificates: already in certs/");
    } else {
        step(
            "certificates: hsm_certificate_generate -dir certs (root CA, HSM server and KMS client)",
        );
        generate(&GenerateOptions::new(
            certs.clone(),
            Password::new(p12_password.clone()),
        ))
        .map_err(|e| format!("certificates: {e}"))?;
    }

    let mut nodes = Vec::new();
    for (index, zone) in ["a", "b"].into_iter().enumerate() {
        let (host, officer) = setup.hsm_ports(index);
        step(&format!(
            "HSM node in zone {zone}: host port 127.0.0.1:{host}, officer port 127.0.0.1:{officer}"
        ));
        let node = Node::start(NodeOptions {
            state_dir: setup.dir.join(format!("hsm-{zone}")),
            host_listen: SocketAddr::from((Ipv4Addr::LOCALHOST, host)),
            officer_listen: SocketAddr::from((Ipv4Addr::LOCALHOST, officer)),
            zone: zone.to_owned(),
            password: Some(SecretBytes::copy_from(officer_password.as_bytes())),
            unseal_key: None,
            kdf: Argon2Params::DEFAULT,
        })
        .await
        .map_err(|e| format!("HSM node {zone}: {e}"))?;
        nodes.push(node);
    }
    let outcome = async {
        if !existing {
            officer_steps(&nodes, &certs, &p12_password, &officer_password).await?;
        }
        let server = kms(setup, existing).await?;
        let result = match configure(setup, &server, &certs, &p12_password, existing).await {
            Ok(()) => {
                step(&format!(
                    "ready: {} describes everything; Ctrl-C stops",
                    setup.dir.join(QUICKSTART_FILE).display()
                ));
                crate::signal::wait_for_shutdown().await;
                step("shutting down");
                Ok(())
            }
            Err(e) => Err(e),
        };
        server.shutdown().await;
        result
    }
    .await;
    for node in nodes {
        node.shutdown().await;
    }
    outcome
}

async fn officer(node: &Node, password: &str) -> Result<OfficerClient, String> {
    let fingerprint = strongroom_hsm::identity::parse_fingerprint(&node.identity_fingerprint())
        .ok_or("the HSM node's identity fingerprint does not parse")?;
    let mut client = OfficerClient::connect(
        &node.officer_addr().to_string(),
        &Trust::Fingerprint(fingerprint),
    )
    .await
    .map_err(|e| format!("officer port: {e}"))?;
    client
        .login(&Zeroizing::new(password.to_owned()))
        .await
        .map_err(|e| format!("officer login: {e}"))?;
    Ok(client)
}

/// The guide's step 2 on both nodes, then the member joins and the cluster syncs.
async fn officer_steps(
    nodes: &[Node],
    certs: &Path,
    p12_password: &str,
    officer_password: &str,
) -> Result<(), String> {
    let client_pem =
        std::fs::read_to_string(certs.join("client.pem")).map_err(|e| e.to_string())?;
    let server_p12 = std::fs::read(certs.join("server.p12")).map_err(|e| e.to_string())?;
    for node in nodes {
        step(&format!(
            "officer on {}: import the client and server certificates, set properties, restart",
            node.officer_addr()
        ));
        let mut o = officer(node, officer_password).await?;
        let calls = [
            OfficerRequest::ImportClientCert {
                pem: client_pem.clone(),
            },
            OfficerRequest::ImportServerCert {
                p12: STANDARD.encode(&server_p12),
                password: Zeroizing::new(p12_password.to_owned()),
            },
            OfficerRequest::SetProperties {
                keep_alive_secs: Some(60),
                header_len: Some(0),
                encoding: Some("ASCII".to_owned()),
                two_way: Some(true),
                protocol: Some("TLSv1.2".to_owned()),
            },
            OfficerRequest::Restart,
        ];
        for call in &calls {
            o.call(call).await.map_err(|e| format!("officer: {e}"))?;
        }
    }
    let (Some(primary), Some(member)) = (nodes.first(), nodes.get(1)) else {
        return Err("two HSM nodes are needed".into());
    };
    step("officer: add the zone-b node to the cluster and sync it");
    let mut p = officer(primary, officer_password).await?;
    let mut m = officer(member, officer_password).await?;
    admin::add_member(&mut p, &mut m)
        .await
        .map_err(|e| format!("add-member: {e}"))?;
    p.call(&OfficerRequest::SyncCluster)
        .await
        .map_err(|e| format!("sync-cluster: {e}"))?;
    Ok(())
}

/// The KMS node: `init` on the first run (the AccessKey goes into quickstart.json),
/// then `start`.
async fn kms(setup: &Setup, existing: bool) -> Result<RunningServer, String> {
    let config = Config::load(
        None,
        Overrides {
            data_dir: Some(setup.dir.join("kms")),
            listen: Some(setup.management().to_string()),
            region: Some(REGION.to_owned()),
            instance_ports: Some(setup.instance_ports()),
            metrics_listen: Some(setup.metrics().to_string()),
            ..Overrides::default()
        },
    )
    .map_err(|e| e.to_string())?;
    if !existing {
        step(&format!(
            "KMS node on SQLite, management API https://{}",
            setup.management()
        ));
        let made = strongroom_server::init(&config)
            .await
            .map_err(|e| format!("KMS init: {e}"))?;
        write_private(
            &setup.dir.join("quickstart-admin.json"),
            &json!({"access_key_id": made.access_key_id,
                    "access_key_secret": made.access_key_secret.as_str()})
            .to_string(),
        )?;
    } else {
        step(&format!(
            "KMS node, management API https://{}",
            setup.management()
        ));
    }
    strongroom_server::start(config)
        .await
        .map_err(|e| format!("KMS node: {e}"))
}

fn client(setup: &Setup, server: &RunningServer) -> Result<ManagementClient, String> {
    let admin = read_json(&setup.dir.join("quickstart-admin.json"))?;
    ManagementClient::new(
        &server.local_addr.to_string(),
        Transport::Https {
            ca_file: setup.dir.join("kms").join("management-ca.pem"),
            server_name: None,
        },
        Credentials {
            access_key_id: text_of(&admin, &["access_key_id"])?.to_owned(),
            access_key_secret: Zeroizing::new(text_of(&admin, &["access_key_secret"])?.to_owned()),
        },
    )
    .map_err(|e| e.to_string())
}

async fn call(
    c: &ManagementClient,
    action: &str,
    params: &[(&str, &str)],
) -> Result<Value, String> {
    c.call(action, params)
        .await
        .map_err(|e| format!("{action}: {e}"))
}

/// Steps 1 and 3–5 on the first run; on later runs, a check that the instance is
/// Connected again.
async fn configure(
    setup: &Setup,
    server: &RunningServer,
    certs: &Path,
    p12_password: &str,
    existing: bool,
) -> Result<(), String> {
    let c = client(setup, server)?;
    if existing {
        let recorded = read_json(&setup.dir.join(QUICKSTART_FILE))?;
        let instance = text_of(&recorded, &["instance", "instance_id"])?;
        let status = call(&c, "GetKmsInstance", &[("KmsInstanceId", instance)]).await?;
        step(&format!(
            "instance {instance}: {} (nothing created: the setup is in {})",
            text_of(&status, &["KmsInstance", "Status"])?,
            setup.dir.display()
        ));
        return wait_endpoint(text_of(&recorded, &["instance", "endpoint"])?).await;
    }
    step("instance: CreateKmsInstance");
    let created = call(
        &c,
        "CreateKmsInstance",
        &[("InstanceName", "quickstart"), ("SecretNum", "100")],
    )
    .await?;
    let instance = created
        .pointer("/KmsInstances/KmsInstance/0/KmsInstanceId")
        .and_then(Value::as_str)
        .ok_or("CreateKmsInstance gave no id")?
        .to_owned();
    let (a, _) = setup.hsm_ports(0);
    let (b, _) = setup.hsm_ports(1);
    let nodes = json!([
        {"Address": format!("127.0.0.1:{a}"), "ZoneId": "a"},
        {"Address": format!("127.0.0.1:{b}"), "ZoneId": "b"},
    ])
    .to_string();
    step("HSM cluster: RegisterHsmCluster (zones a and b), ConnectKmsInstance");
    let cluster = call(
        &c,
        "RegisterHsmCluster",
        &[("HsmClusterName", "quickstart"), ("Nodes", &nodes)],
    )
    .await?;
    let cluster = text_of(&cluster, &["HsmClusterId"])?.to_owned();
    let p12 = STANDARD.encode(std::fs::read(certs.join("client.p12")).map_err(|e| e.to_string())?);
    let root = std::fs::read_to_string(certs.join("rootca.pem")).map_err(|e| e.to_string())?;
    call(
        &c,
        "ConnectKmsInstance",
        &[
            ("KmsInstanceId", &instance),
            ("HsmClusterId", &cluster),
            ("ClientCertificate", &p12),
            ("ClientCertificatePassword", p12_password),
            ("HsmRootCaPem", &root),
        ],
    )
    .await?;
    let got = wait_connected(&c, &instance).await?;

    step("keys: Aliyun_AES_256 (alias/quickstart), EC_P256 and EC_SM2 for signing");
    let mut keys = Vec::new();
    for (spec, usage, alias) in [
        (
            "Aliyun_AES_256",
            "ENCRYPT/DECRYPT",
            Some("alias/quickstart"),
        ),
        ("EC_P256", "SIGN/VERIFY", None),
        ("EC_SM2", "SIGN/VERIFY", None),
    ] {
        let made = call(
            &c,
            "CreateKey",
            &[
                ("DKMSInstanceId", &instance),
                ("KeySpec", spec),
                ("KeyUsage", usage),
            ],
        )
        .await?;
        let id = text_of(&made, &["KeyMetadata", "KeyId"])?.to_owned();
        if let Some(alias) = alias {
            call(&c, "CreateAlias", &[("AliasName", alias), ("KeyId", &id)]).await?;
        }
        keys.push(json!({"key_id": id, "alias": alias, "key_spec": spec, "key_usage": usage}));
    }

    step(
        "access: network rule (loopback and private networks), policy key/* and secret/*, access point, client key",
    );
    call(
        &c,
        "CreateNetworkRule",
        &[
            ("Name", "quickstart-network"),
            ("Type", "Private"),
            (
                "SourcePrivateIp",
                r#"["127.0.0.1","::1","10.0.0.0/8","172.16.0.0/12","192.168.0.0/16"]"#,
            ),
        ],
    )
    .await?;
    call(
        &c,
        "CreatePolicy",
        &[
            ("Name", "quickstart-policy"),
            ("KmsInstance", &instance),
            (
                "Permissions",
                r#"["RbacPermission/Template/CryptoServiceKeyUser","RbacPermission/Template/CryptoServiceSecretUser"]"#,
            ),
            ("Resources", r#"["key/*","secret/*"]"#),
            (
                "AccessControlRules",
                r#"{"NetworkRules":["quickstart-network"]}"#,
            ),
        ],
    )
    .await?;
    call(
        &c,
        "CreateApplicationAccessPoint",
        &[
            ("Name", "quickstart"),
            ("Policies", r#"["quickstart-policy"]"#),
        ],
    )
    .await?;
    let password = random_password(16)?;
    let made = call(
        &c,
        "CreateClientKey",
        &[("AapName", "quickstart"), ("Password", &password)],
    )
    .await?;
    let key_id = text_of(&made, &["ClientKeyId"])?.to_owned();
    let files = client_key::write_answer_files(
        &setup.dir,
        &key_id,
        text_of(&made, &["PrivateKeyData"])?,
        &Password::new(password),
    )
    .map_err(|e| format!("client key files: {e}"))?;
    let ca_name = format!("PrivateKmsCA_{instance}.pem");
    std::fs::write(
        setup.dir.join(&ca_name),
        text_of(&got, &["KmsInstance", "CaCertificateChainPem"])?,
    )
    .map_err(|e| e.to_string())?;
    let port = got
        .pointer("/KmsInstance/InstanceApiPort")
        .and_then(Value::as_u64)
        .ok_or("GetKmsInstance gave no InstanceApiPort")?;
    wait_endpoint(&format!("127.0.0.1:{port}")).await?;
    let admin = read_json(&setup.dir.join("quickstart-admin.json"))?;
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let summary = json!({
        "management": {
            "endpoint": setup.management().to_string(),
            "protocol": "https",
            "ca_file": "kms/management-ca.pem",
            "access_key_id": text_of(&admin, &["access_key_id"])?,
            "access_key_secret": text_of(&admin, &["access_key_secret"])?,
            "region_id": REGION,
        },
        "instance": {
            "instance_id": instance,
            "endpoint": format!("127.0.0.1:{port}"),
            "ca_file": ca_name,
        },
        "client_key": {
            "key_id": key_id,
            "file": name(&files.key_file),
            "password_file": name(&files.password_file),
        },
        "keys": keys,
    });
    let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
    write_private(&setup.dir.join(QUICKSTART_FILE), &text)?;
    step(&format!(
        "instance {instance} serves the instance API on 127.0.0.1:{port}; client key {key_id}"
    ));
    Ok(())
}

/// Waits until the instance endpoint accepts connections (a node starts it within a
/// second of the instance being Connected).
async fn wait_endpoint(endpoint: &str) -> Result<(), String> {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(endpoint).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("the instance endpoint {endpoint} did not start"))
}

async fn wait_connected(c: &ManagementClient, instance: &str) -> Result<Value, String> {
    for _ in 0..240 {
        let got = call(c, "GetKmsInstance", &[("KmsInstanceId", instance)]).await?;
        match got.pointer("/KmsInstance/Status").and_then(Value::as_str) {
            Some("Connected") => return Ok(got),
            Some("Error") => {
                return Err(format!(
                    "the instance could not reach its HSM cluster: {}",
                    got.pointer("/KmsInstance/StatusReason")
                        .unwrap_or(&Value::Null)
                ));
            }
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    Err("the instance did not connect within a minute".into())
}

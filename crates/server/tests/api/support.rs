//! Fixtures: a KMS node in process (initialised, HTTPS), and two HSM nodes in two zones
//! set up as the guide's step 2 does (client and server certificates, properties, sync).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use strongroom_certs::password::Password;
use strongroom_certs::tool::{GenerateOptions, GeneratedFiles, generate};
use strongroom_crypto::passphrase::Argon2Params;
use strongroom_crypto::secret::SecretBytes;
use strongroom_hsm::admin::{self, OfficerClient, Trust};
use strongroom_hsm::node::{Node, NodeOptions};
use strongroom_hsm::officer::OfficerRequest;
use strongroom_server::client::{Credentials, ManagementClient, Transport};
use strongroom_server::{Config, Overrides, RunningServer};
use zeroize::Zeroizing;

pub const OFFICER_PASSWORD: &str = "officer-password-1";
pub const P12_PASSWORD: &str = "12345678";

/// A KMS node and what a client needs to reach it.
pub struct Kms {
    pub server: RunningServer,
    pub endpoint: String,
    pub ca_file: PathBuf,
    pub access_key_id: String,
    pub access_key_secret: String,
}

/// Our management client for `server`, over HTTPS with its CA file.
pub fn client(server: &RunningServer, id: &str, secret: &str) -> ManagementClient {
    ManagementClient::new(
        &server.local_addr.to_string(),
        Transport::Https {
            ca_file: server.ca_file.clone().unwrap(),
            server_name: None,
        },
        Credentials {
            access_key_id: id.to_owned(),
            access_key_secret: Zeroizing::new(secret.to_owned()),
        },
    )
    .unwrap()
}

/// Polls `done` every 250 ms for up to 20 s.
pub async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..80 {
        if done().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    panic!("{what} did not happen within 20 s");
}

/// An instance (`CreateKmsInstance` with `extra` parameters) connected to `hsms`; its id.
pub async fn connected_instance(
    c: &ManagementClient,
    hsms: &Hsms,
    extra: &[(&str, &str)],
) -> String {
    let instance = c.call("CreateKmsInstance", extra).await.unwrap()["KmsInstances"]["KmsInstance"]
        [0]["KmsInstanceId"]
        .as_str()
        .unwrap()
        .to_owned();
    let cluster = c
        .call(
            "RegisterHsmCluster",
            &[
                ("HsmClusterName", &format!("for-{instance}")),
                ("Nodes", &hsms.nodes_json()),
            ],
        )
        .await
        .unwrap()["HsmClusterId"]
        .as_str()
        .unwrap()
        .to_owned();
    c.call(
        "ConnectKmsInstance",
        &[
            ("KmsInstanceId", &instance),
            ("HsmClusterId", &cluster),
            ("ClientCertificate", &hsms.client_p12_base64()),
            ("ClientCertificatePassword", P12_PASSWORD),
            ("HsmRootCaPem", &hsms.root_ca_pem()),
        ],
    )
    .await
    .unwrap();
    eventually("enabling", || async {
        c.call("GetKmsInstance", &[("KmsInstanceId", &instance)])
            .await
            .unwrap()["KmsInstance"]["Status"]
            == "Connected"
    })
    .await;
    instance
}

/// An access point `app` with policy `pol` (the key permission on `key/*` of `instance`)
/// and network rule `net` (10.0.0.0/8).
pub async fn key_access_point(c: &ManagementClient, instance: &str) {
    c.call(
        "CreateNetworkRule",
        &[
            ("Name", "net"),
            ("Type", "Private"),
            ("SourcePrivateIp", "10.0.0.0/8"),
        ],
    )
    .await
    .unwrap();
    c.call(
        "CreatePolicy",
        &[
            ("Name", "pol"),
            ("KmsInstance", instance),
            (
                "Permissions",
                r#"["RbacPermission/Template/CryptoServiceKeyUser"]"#,
            ),
            ("Resources", r#"["key/*"]"#),
            ("AccessControlRules", r#"{"NetworkRules":["net"]}"#),
        ],
    )
    .await
    .unwrap();
    c.call(
        "CreateApplicationAccessPoint",
        &[("Name", "app"), ("Policies", r#"["pol"]"#)],
    )
    .await
    .unwrap();
}

/// `n` consecutive free loopback ports, as `FIRST-LAST` (instance endpoints of nodes in
/// tests that run at the same time must not meet).
pub fn free_port_range(n: u16) -> String {
    for _ in 0..50 {
        let mut seed = [0u8; 2];
        strongroom_crypto::random::fill(&mut seed).unwrap();
        // Below Linux's ephemeral range (32768 and up), so that no connection the OS
        // numbers itself takes the port between this check and the node's bind.
        let first = 20_000 + u16::from_be_bytes(seed) % 12_000;
        let Some(last) = first.checked_add(n - 1) else {
            continue;
        };
        let free =
            (first..=last).all(|port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
        if free {
            return format!("{first}-{last}");
        }
    }
    panic!("no {n} free consecutive ports");
}

/// Configuration of a node in `data_dir` on a free loopback port.
pub fn config(data_dir: &Path, database: Option<&str>, node_key: Option<&Path>) -> Config {
    Config::load(
        None,
        Overrides {
            data_dir: Some(data_dir.to_owned()),
            database: database.map(str::to_owned),
            node_key_file: node_key.map(Path::to_owned),
            listen: Some("127.0.0.1:0".into()),
            enable_timeout_secs: Some(20),
            // Deletion windows, rotation and expiry are tested by moving dates into
            // the past: the task should notice soon.
            maintenance_interval_secs: Some(1),
            instance_ports: Some(free_port_range(4)),
            metrics_listen: Some("127.0.0.1:0".into()),
            ..Overrides::default()
        },
    )
    .unwrap()
}

/// `init` then `start` in `data_dir`.
pub async fn kms(data_dir: &Path) -> Kms {
    kms_with(config(data_dir, None, None)).await
}

/// `init` then `start` with `config`.
pub async fn kms_with(config: Config) -> Kms {
    let init = strongroom_server::init(&config).await.unwrap();
    let server = strongroom_server::start(config).await.unwrap();
    Kms {
        endpoint: server.local_addr.to_string(),
        ca_file: server.ca_file.clone().unwrap(),
        server,
        access_key_id: init.access_key_id,
        access_key_secret: init.access_key_secret.to_string(),
    }
}

/// `init` (unless `node_key` is given: a second node) then `start`, over PostgreSQL.
pub async fn kms_on(data_dir: &Path, url: &str, node_key: Option<&Path>) -> Kms {
    let config = config(data_dir, Some(url), node_key);
    let (access_key_id, access_key_secret) = match node_key {
        None => {
            let init = strongroom_server::init(&config).await.unwrap();
            (init.access_key_id, init.access_key_secret.to_string())
        }
        Some(_) => (String::new(), String::new()),
    };
    let server = strongroom_server::start(config).await.unwrap();
    Kms {
        endpoint: server.local_addr.to_string(),
        ca_file: server.ca_file.clone().unwrap(),
        server,
        access_key_id,
        access_key_secret,
    }
}

/// Two nodes over one PostgreSQL database (`url`), in `dir/a` (made with `init`) and
/// `dir/b` (started with `a`'s node key); both carry `a`'s credentials.
pub async fn two_kms_on(dir: &Path, url: &str) -> (Kms, Kms) {
    let a = kms_on(&dir.join("a"), url, None).await;
    let mut b = kms_on(&dir.join("b"), url, Some(&dir.join("a").join("node.key"))).await;
    b.access_key_id.clone_from(&a.access_key_id);
    b.access_key_secret.clone_from(&a.access_key_secret);
    (a, b)
}

/// A fresh database on the test server (`STRONGROOM_TEST_POSTGRES`); its URL.
pub async fn fresh_database() -> String {
    let base = std::env::var("STRONGROOM_TEST_POSTGRES").unwrap_or_else(|_| {
        panic!(
            "STRONGROOM_TEST_POSTGRES is not set: run scripts/test.sh, which starts a \
             loopback PostgreSQL for the tests"
        )
    });
    let (client, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut suffix = [0u8; 8];
    strongroom_crypto::random::fill(&mut suffix).unwrap();
    let name = format!("sr_kms_{}", hex::encode(suffix));
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    match base.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("{base} has no database part"),
    }
}

/// Two HSM nodes in zones `zone-a` and `zone-b`, configured and synced.
pub struct Hsms {
    pub certs: GeneratedFiles,
    pub primary: Node,
    pub member: Node,
}

impl Hsms {
    pub async fn start(dir: &Path) -> Self {
        let certs = generate(&GenerateOptions::new(
            dir.join("certs"),
            Password::new(P12_PASSWORD.to_owned()),
        ))
        .unwrap();
        let primary = hsm(&dir.join("primary"), "zone-a").await;
        let member = hsm(&dir.join("member"), "zone-b").await;
        for node in [&primary, &member] {
            configure(node, &certs).await;
        }
        let mut p = officer(&primary).await;
        let mut m = officer(&member).await;
        admin::add_member(&mut p, &mut m).await.unwrap();
        let results = p.call(&OfficerRequest::SyncCluster).await.unwrap();
        assert_eq!(results[0]["synced"], true, "{results}");
        Self {
            certs,
            primary,
            member,
        }
    }

    /// `RegisterHsmCluster`'s `Nodes`.
    pub fn nodes_json(&self) -> String {
        serde_json::json!([
            {"Address": self.primary.host_addr().to_string(), "ZoneId": "zone-a"},
            {"Address": self.member.host_addr().to_string(), "ZoneId": "zone-b"},
        ])
        .to_string()
    }

    pub fn client_p12_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD
            .encode(std::fs::read(&self.certs.client_p12).unwrap())
    }

    pub fn root_ca_pem(&self) -> String {
        std::fs::read_to_string(&self.certs.rootca_pem).unwrap()
    }
}

async fn hsm(state: &Path, zone: &str) -> Node {
    Node::start(NodeOptions {
        state_dir: state.to_owned(),
        host_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        officer_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        zone: zone.to_owned(),
        password: Some(SecretBytes::copy_from(OFFICER_PASSWORD.as_bytes())),
        unseal_key: None,
        kdf: Argon2Params::INSECURE_FOR_TESTS,
    })
    .await
    .unwrap()
}

async fn officer(node: &Node) -> OfficerClient {
    let fingerprint =
        strongroom_hsm::identity::parse_fingerprint(&node.identity_fingerprint()).unwrap();
    let mut client = OfficerClient::connect(
        &node.officer_addr().to_string(),
        &Trust::Fingerprint(fingerprint),
    )
    .await
    .unwrap();
    client
        .login(&Zeroizing::new(OFFICER_PASSWORD.to_owned()))
        .await
        .unwrap();
    client
}

/// The guide's step 2 on one node.
async fn configure(node: &Node, certs: &GeneratedFiles) {
    let mut officer = officer(node).await;
    let pem = std::fs::read_to_string(&certs.client_pem).unwrap();
    officer
        .call(&OfficerRequest::ImportClientCert { pem })
        .await
        .unwrap();
    let der = std::fs::read(&certs.server_p12).unwrap();
    officer
        .call(&OfficerRequest::ImportServerCert {
            p12: base64::engine::general_purpose::STANDARD.encode(der),
            password: Zeroizing::new(P12_PASSWORD.to_owned()),
        })
        .await
        .unwrap();
    officer
        .call(&OfficerRequest::SetProperties {
            keep_alive_secs: Some(60),
            header_len: Some(0),
            encoding: Some("ASCII".to_owned()),
            two_way: Some(true),
            protocol: Some("TLSv1.2".to_owned()),
        })
        .await
        .unwrap();
    officer.call(&OfficerRequest::Restart).await.unwrap();
}

/// The interpreter of the venv with the official management SDK.
pub fn mgmt_python() -> String {
    std::env::var("STRONGROOM_KMS_MGMT_PYTHON").unwrap_or_else(|_| {
        panic!(
            "STRONGROOM_KMS_MGMT_PYTHON is not set: run scripts/test.sh, which makes \
             .venv-kms-mgmt with the official management SDK"
        )
    })
}

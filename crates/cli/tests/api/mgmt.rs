//! `strongroom init`, `strongroom server` and the management API's client commands
//! (`access-key`, `vpc`, `hsm-cluster`, `instance`) as processes: a node over HTTPS with
//! its management CA, driven the way an operator would.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Output, Stdio};

use tempfile::TempDir;

use crate::support_kms::{free_port, line_value, strongroom};

/// One initialised KMS node serving HTTPS in a child process.
struct Node {
    dir: TempDir,
    server: Child,
    endpoint: String,
    ca_file: PathBuf,
    profile: PathBuf,
}

impl Node {
    fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a node with extra `strongroom server` flags.
    fn start_with(server_args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let profile = dir.path().join("profile.toml");
        let init_port = free_port();
        let init = strongroom()
            .args(["init", "--data-dir"])
            .arg(&data)
            .args(["--insecure-http", "--listen"])
            .arg(format!("127.0.0.1:{init_port}"))
            .arg("--write-profile")
            .arg(&profile)
            .output()
            .unwrap();
        let init_out = String::from_utf8_lossy(&init.stdout).into_owned();
        assert!(
            init.status.success(),
            "init failed: {init_out}{}",
            String::from_utf8_lossy(&init.stderr)
        );
        assert!(init_out.contains("AccessKeySecret"), "{init_out}");
        assert!(init_out.contains("never again"), "{init_out}");
        let written = std::fs::read_to_string(&profile).unwrap();
        assert!(written.contains("[profile.default]"), "{written}");
        assert!(
            written.contains(&format!("endpoint = \"127.0.0.1:{init_port}\"")),
            "{written}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&profile).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let mut server = strongroom()
            .args(["server", "--data-dir"])
            .arg(&data)
            .args(["--listen", "127.0.0.1:0"])
            .args(server_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
        let Some(Ok(banner)) = lines.next() else {
            let status = server.wait().unwrap();
            panic!("strongroom server exited ({status}) before it was ready");
        };
        std::thread::spawn(move || for _ in lines {});
        // "strongroom server: management API on https://127.0.0.1:PORT (CA file …)"
        let endpoint = banner
            .split_whitespace()
            .find_map(|word| word.strip_prefix("https://"))
            .unwrap_or_else(|| panic!("no https address in {banner:?}"))
            .to_owned();
        let ca_file = data.join("management-ca.pem");
        assert!(banner.contains("management-ca.pem"), "{banner}");
        assert!(ca_file.exists());
        Self {
            dir,
            server,
            endpoint,
            ca_file,
            profile,
        }
    }

    /// A client command with the endpoint and CA file from the environment and the
    /// AccessKey from the profile `init` wrote.
    fn cli(&self, args: &[&str]) -> Output {
        strongroom()
            .args(args)
            .env("HOME", self.dir.path())
            .env("STRONGROOM_PROFILE_FILE", &self.profile)
            .env("STRONGROOM_ENDPOINT", &self.endpoint)
            .env("STRONGROOM_CA_FILE", &self.ca_file)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut with_json = args.to_vec();
        with_json.push("--json");
        serde_json::from_str(&self.ok(&with_json)).unwrap()
    }

    /// Runs a command that must fail with status 1; returns its stderr.
    fn refused(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn ids(text: &str, prefix: &str) -> Vec<String> {
    text.split_whitespace()
        .filter(|word| word.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

#[test]
fn access_keys_and_vpcs_and_clusters_over_https() {
    let node = Node::start();

    // Access keys: the one `init` made, and a second one used through flags.
    let created = node.ok(&["access-key", "create", "--description", "second admin"]);
    assert!(created.contains("never again"), "{created}");
    let id = line_value(&created, "AccessKeyId");
    let secret = line_value(&created, "AccessKeySecret");
    let listed = node.ok(&["access-key", "list"]);
    assert!(
        listed.contains(&id) && listed.contains("second admin"),
        "{listed}"
    );
    assert_eq!(
        node.json(&["access-key", "list"])["TotalCount"],
        serde_json::json!(2)
    );
    let secret_file = node.dir.path().join("second.secret");
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let as_second = |extra: &[&str]| {
        let mut args = vec![
            "vpc",
            "list",
            "--access-key-id",
            &id,
            "--access-key-secret-file",
        ];
        let file = secret_file.to_str().unwrap();
        args.push(file);
        args.extend_from_slice(extra);
        node.cli(&args)
    };
    assert!(as_second(&[]).status.success());
    assert!(as_second(&["--v1-signature"]).status.success());
    node.ok(&["access-key", "disable", &id]);
    assert!(node.ok(&["access-key", "list"]).contains("Inactive"));
    let disabled = as_second(&[]);
    assert_eq!(disabled.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&disabled.stderr).contains("InvalidAccessKeyId.Inactive"),
        "{}",
        String::from_utf8_lossy(&disabled.stderr)
    );
    node.ok(&["access-key", "enable", &id]);
    assert!(as_second(&[]).status.success());
    node.ok(&["access-key", "delete", &id]);
    assert!(!node.ok(&["access-key", "list"]).contains(&id));

    // VPCs.
    let vpc = node
        .ok(&["vpc", "create", "--name", "office", "--cidr", "10.0.0.0/8"])
        .trim()
        .to_owned();
    assert!(vpc.starts_with("vpc-"), "{vpc}");
    assert!(node.ok(&["vpc", "list"]).contains(&vpc));
    let shown = node.ok(&["vpc", "get", &vpc]);
    assert!(
        shown.contains("10.0.0.0/8") && shown.contains("office"),
        "{shown}"
    );
    let bad_cidr = node.refused(&["vpc", "create", "--name", "x", "--cidr", "10.0.0.0/99"]);
    assert!(bad_cidr.starts_with("InvalidParameter: "), "{bad_cidr}");
    node.ok(&["vpc", "delete", &vpc]);
    assert!(
        node.refused(&["vpc", "get", &vpc])
            .contains("Forbidden.VpcNotFound")
    );

    // HSM clusters (the addresses need not be reachable to register).
    let cluster = node
        .ok(&[
            "hsm-cluster",
            "register",
            "--name",
            "pair",
            "--node",
            "127.0.0.1:1=a",
            "--node",
            "127.0.0.1:2=b",
        ])
        .trim()
        .to_owned();
    assert!(cluster.starts_with("hsmc-"), "{cluster}");
    let shown = node.ok(&["hsm-cluster", "get", &cluster]);
    assert!(
        shown.contains("127.0.0.1:1 (zone a)") && shown.contains("127.0.0.1:2 (zone b)"),
        "{shown}"
    );
    let listed = node.json(&["hsm-cluster", "list"]);
    assert_eq!(
        listed["HsmClusters"]["HsmCluster"][0]["HsmClusterId"],
        serde_json::json!(cluster)
    );
    let one_zone = node.refused(&[
        "hsm-cluster",
        "register",
        "--name",
        "single",
        "--node",
        "127.0.0.1:3=a",
        "--node",
        "127.0.0.1:4=a",
    ]);
    assert!(one_zone.starts_with("InvalidParameter: "), "{one_zone}");
    assert!(one_zone.contains("(request "), "{one_zone}");
    node.ok(&["hsm-cluster", "deregister", &cluster]);
    assert!(
        node.refused(&["hsm-cluster", "get", &cluster])
            .contains("Forbidden.HsmClusterNotFound")
    );
}

#[test]
fn instances_over_https() {
    let node = Node::start();
    let created = node.ok(&["instance", "create", "--quantity", "2", "--name", "pair"]);
    let instances = ids(&created, "kst-");
    assert_eq!(instances.len(), 2, "{created}");
    let listed = node.ok(&["instance", "list"]);
    for id in &instances {
        assert!(listed.contains(id.as_str()), "{listed}");
    }
    assert!(listed.contains("2 in total"), "{listed}");
    let first = instances[0].as_str();

    let ca_dir = node.dir.path().join("ca");
    let shown = node.ok(&[
        "instance",
        "get",
        first,
        "--write-ca",
        ca_dir.to_str().unwrap(),
    ]);
    assert!(shown.contains("Uninitialized"), "{shown}");
    assert!(shown.contains("pair"), "{shown}");
    let pem = std::fs::read_to_string(ca_dir.join(format!("PrivateKmsCA_{first}.pem"))).unwrap();
    assert_eq!(
        pem.matches("-----BEGIN CERTIFICATE-----").count(),
        2,
        "{pem}"
    );

    let vpc = node
        .ok(&["vpc", "create", "--name", "net", "--cidr", "192.168.0.0/16"])
        .trim()
        .to_owned();
    node.ok(&["instance", "bind-vpc", first, &vpc]);
    let got = node.json(&["instance", "get", first]);
    assert_eq!(got["KmsInstance"]["VpcId"], serde_json::json!(vpc));
    assert!(
        node.refused(&["vpc", "delete", &vpc])
            .contains("Rejected.ResourceInUse")
    );
    node.ok(&["instance", "bind-vpc", first, "--none"]);
    let got = node.json(&["instance", "get", first]);
    assert_eq!(got["KmsInstance"]["VpcId"], serde_json::json!(""));

    let end_before = got["KmsInstance"]["EndDate"].as_str().unwrap().to_owned();
    let renewed = node.json(&[
        "instance",
        "renew",
        first,
        "--period",
        "1",
        "--auto-renew",
        "true",
    ]);
    assert_eq!(renewed["AutoRenew"], serde_json::json!(true));
    assert!(renewed["EndDate"].as_str().unwrap() > end_before.as_str());

    let missing = node.refused(&["instance", "get", "kst-doesnotexist"]);
    assert!(
        missing.starts_with("Forbidden.DKMSInstanceNotFound: "),
        "{missing}"
    );
    node.ok(&["instance", "release", first]);
    let listed = node.ok(&["instance", "list", "--v1-signature"]);
    assert!(!listed.contains(first), "{listed}");
    assert!(listed.contains(instances[1].as_str()), "{listed}");
}

#[test]
fn connect_sends_the_credentials_and_waits_for_the_outcome() {
    // The HSM addresses are unreachable, so the instance ends in Error after 2 s.
    let node = Node::start_with(&["--enable-timeout-secs", "2"]);
    let certs = node.dir.path().join("certs");
    let generated = strongroom()
        .args(["certs", "generate", "-dir"])
        .arg(&certs)
        .args(["-pswd", "12345678"])
        .output()
        .unwrap();
    assert!(generated.status.success());
    let cluster = node
        .ok(&[
            "hsm-cluster",
            "register",
            "--name",
            "pair",
            "--node",
            "127.0.0.1:1=a",
            "--node",
            "127.0.0.1:2=b",
        ])
        .trim()
        .to_owned();
    let instance = ids(&node.ok(&["instance", "create"]), "kst-").remove(0);
    let p12 = certs.join("client.p12");
    let root = certs.join("rootca.pem");
    let connect = |password: &str, wait: bool| {
        let mut args = vec![
            "instance",
            "connect",
            &instance,
            "--cluster",
            &cluster,
            "--client-p12",
            p12.to_str().unwrap(),
            "--p12-password",
            password,
            "--root-ca",
            root.to_str().unwrap(),
            "--zones",
            "a,b",
        ];
        if wait {
            args.push("--wait");
        }
        node.cli(&args)
    };
    let wrong = connect("not-the-password", false);
    assert_eq!(wrong.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(stderr.starts_with("InvalidParameter: "), "{stderr}");
    // The instance was left as it was.
    let got = node.json(&["instance", "get", &instance]);
    assert_eq!(
        got["KmsInstance"]["Status"],
        serde_json::json!("Uninitialized")
    );
    // The right password is accepted; --wait follows the instance until it fails to
    // reach the (absent) HSM nodes, prints why, and exits 1.
    let waited = connect("12345678", true);
    let stdout = String::from_utf8_lossy(&waited.stdout);
    assert_eq!(
        waited.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&waited.stderr)
    );
    assert!(stdout.contains("is connecting"), "{stdout}");
    assert!(stdout.contains(": Error ("), "{stdout}");
    let got = node.json(&["instance", "get", &instance]);
    assert_eq!(got["KmsInstance"]["Status"], serde_json::json!("Error"));
    assert_eq!(
        got["KmsInstance"]["HsmClusterId"],
        serde_json::json!(cluster)
    );
    assert!(
        !got["KmsInstance"]["StatusReason"]
            .as_str()
            .unwrap()
            .is_empty(),
        "{got}"
    );
}

#[test]
fn configuration_errors_are_said_plainly() {
    let node = Node::start();
    // A profile that does not exist in the file.
    let missing = node.refused(&["vpc", "list", "--profile", "other"]);
    assert!(missing.contains("[profile.other]"), "{missing}");
    // No credentials anywhere.
    let none = strongroom()
        .args(["vpc", "list", "--endpoint", &node.endpoint, "--ca-file"])
        .arg(&node.ca_file)
        .env("HOME", node.dir.path().join("nowhere"))
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no AccessKey id"));
    // The wrong CA: the TLS handshake fails.
    let other_ca = node.dir.path().join("other-ca.pem");
    let certs = node.dir.path().join("certs");
    assert!(
        strongroom()
            .args(["certs", "generate", "-dir"])
            .arg(&certs)
            .args(["-pswd", "12345678"])
            .output()
            .unwrap()
            .status
            .success()
    );
    std::fs::copy(certs.join("rootca.pem"), &other_ca).unwrap();
    let wrong_ca = node.refused(&["vpc", "list", "--ca-file", other_ca.to_str().unwrap()]);
    assert!(wrong_ca.contains("TLS"), "{wrong_ca}");
    // `init` never overwrites a profile.
    let again = strongroom()
        .args(["init", "--data-dir"])
        .arg(node.dir.path().join("data2"))
        .arg("--write-profile")
        .arg(&node.profile)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not overwritten"));
    assert!(!node.dir.path().join("data2").exists());
}

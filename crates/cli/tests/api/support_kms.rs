//! A KMS node with a Connected instance on a real HSM cluster, all as processes: two
//! `strongroom hsm serve` nodes set up the guide's way (`hsm admin`), `strongroom init`
//! and `strongroom server`, then `hsm-cluster register` and `instance connect --wait`.
//! Used by the key and secret tests (`keys.rs`, `secrets.rs`).

use std::fs::File;
use std::io::{BufRead, BufReader, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use tempfile::TempDir;

const OFFICER_PASSWORD: &str = "officer-password-1";
const P12_PASSWORD: &str = "12345678";

/// `strongroom` with no connection settings inherited from the environment.
pub fn strongroom() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_strongroom"));
    for name in [
        "STRONGROOM_ENDPOINT",
        "STRONGROOM_CA_FILE",
        "STRONGROOM_INSECURE_HTTP",
        "STRONGROOM_ACCESS_KEY_ID",
        "STRONGROOM_ACCESS_KEY_SECRET",
        "STRONGROOM_PROFILE_FILE",
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    ] {
        command.env_remove(name);
    }
    command.env("RUST_LOG", "warn");
    command
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn succeeded(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// One `strongroom hsm serve` process.
pub struct HsmNode {
    child: Child,
    pub host: String,
    officer: String,
    fingerprint: String,
    pub zone: String,
}

impl HsmNode {
    fn spawn(state: &Path, zone: &str) -> Self {
        let mut child = strongroom()
            .args(["hsm", "serve", "--state"])
            .arg(state)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--officer-listen",
                "127.0.0.1:0",
                "--zone",
                zone,
            ])
            .env("STRONGROOM_HSM_OFFICER_PASSWORD", OFFICER_PASSWORD)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut host, mut officer, mut fingerprint) = (None, None, None);
        while fingerprint.is_none() {
            let Some(Ok(line)) = lines.next() else {
                let status = child.wait().unwrap();
                panic!("hsm serve exited ({status}) before it was ready");
            };
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["host", "port", address] => host = Some((*address).to_owned()),
                ["officer", "port", address] => officer = Some((*address).to_owned()),
                ["identity", fp] => fingerprint = Some((*fp).to_owned()),
                _ => {}
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            host: host.unwrap(),
            officer: officer.unwrap(),
            fingerprint: fingerprint.unwrap(),
            zone: zone.to_owned(),
        }
    }

    fn admin_ok(&self, args: &[&str]) -> String {
        let out = strongroom()
            .args([
                "hsm",
                "admin",
                "--connect",
                &self.officer,
                "--fingerprint",
                &self.fingerprint,
            ])
            .args(args)
            .env("STRONGROOM_HSM_OFFICER_PASSWORD", OFFICER_PASSWORD)
            .output()
            .unwrap();
        succeeded(&format!("hsm admin {args:?}"), &out)
    }
}

impl Drop for HsmNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two HSM nodes in two zones, set up as the guide's step 2 says, and the guide's
/// certificates.
pub struct HsmCluster {
    pub certs: PathBuf,
    pub state_dirs: [PathBuf; 2],
    pub nodes: [HsmNode; 2],
}

impl HsmCluster {
    pub fn start(scratch: &Path) -> Self {
        let generated = Command::new(env!("CARGO_BIN_EXE_hsm_certificate_generate"))
            .current_dir(scratch)
            .args(["-dir", "./certs", "-pswd", P12_PASSWORD])
            .output()
            .unwrap();
        succeeded("hsm_certificate_generate", &generated);
        let certs = scratch.join("certs");
        let state_dirs = [scratch.join("hsm-primary"), scratch.join("hsm-member")];
        let primary = HsmNode::spawn(&state_dirs[0], "cn-hangzhou-h");
        let member = HsmNode::spawn(&state_dirs[1], "cn-hangzhou-i");
        primary.admin_ok(&["login"]);
        primary.admin_ok(&[
            "import-client-cert",
            certs.join("client.pem").to_str().unwrap(),
        ]);
        primary.admin_ok(&[
            "import-server-cert",
            certs.join("server.p12").to_str().unwrap(),
            "--p12-password",
            P12_PASSWORD,
        ]);
        primary.admin_ok(&["restart"]);
        primary.admin_ok(&[
            "set-properties",
            "--keep-alive",
            "60",
            "--header-len",
            "0",
            "--encoding",
            "ASCII",
            "--two-way",
            "--protocol",
            "TLSv1.2",
        ]);
        primary.admin_ok(&["restart"]);
        primary.admin_ok(&[
            "add-member",
            &member.officer,
            "--member-fingerprint",
            &member.fingerprint,
        ]);
        primary.admin_ok(&["sync-cluster"]);
        Self {
            certs,
            state_dirs,
            nodes: [primary, member],
        }
    }
}

/// One initialised KMS node serving HTTPS in a child process.
pub struct Kms {
    pub dir: TempDir,
    pub data: PathBuf,
    server: Child,
    endpoint: String,
    ca_file: PathBuf,
    profile: PathBuf,
}

impl Kms {
    /// `strongroom init` and `strongroom server` with `server_args`. With `log`, the
    /// server runs with `RUST_LOG=debug` and everything it writes (stdout and stderr)
    /// goes to that file.
    pub fn start(server_args: &[&str], log: Option<&Path>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let profile = dir.path().join("profile.toml");
        let init = strongroom()
            .args(["init", "--data-dir"])
            .arg(&data)
            .args(["--insecure-http", "--listen"])
            .arg(format!("127.0.0.1:{}", free_port()))
            .arg("--write-profile")
            .arg(&profile)
            .output()
            .unwrap();
        succeeded("strongroom init", &init);
        let mut command = strongroom();
        command
            .args(["server", "--data-dir"])
            .arg(&data)
            .args(["--listen", "127.0.0.1:0"])
            // Tests run side by side: no fixed instance or metrics ports.
            .args(["--instance-ports", &format!("{0}-{0}", free_port())])
            .args(["--metrics-listen", "off"])
            .args(server_args)
            .stdout(Stdio::piped());
        let mut log_file = None;
        match log {
            Some(path) => {
                let file = File::create(path).unwrap();
                command
                    .env("RUST_LOG", "debug")
                    .stderr(Stdio::from(file.try_clone().unwrap()));
                log_file = Some(file);
            }
            None => {
                command.stderr(Stdio::null());
            }
        }
        let mut server = command.spawn().unwrap();
        let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
        let Some(Ok(banner)) = lines.next() else {
            let status = server.wait().unwrap();
            panic!("strongroom server exited ({status}) before it was ready");
        };
        if let Some(file) = &mut log_file {
            writeln!(file, "{banner}").unwrap();
        }
        // Keep draining stdout (into the log when there is one).
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Some(file) = &mut log_file {
                    let _ = writeln!(file, "{line}");
                }
            }
        });
        let endpoint = banner
            .split_whitespace()
            .find_map(|word| word.strip_prefix("https://"))
            .unwrap_or_else(|| panic!("no https address in {banner:?}"))
            .to_owned();
        let ca_file = data.join("management-ca.pem");
        Self {
            dir,
            data,
            server,
            endpoint,
            ca_file,
            profile,
        }
    }

    /// A client command, connected through the environment and `init`'s profile.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = strongroom();
        command
            .args(args)
            .env("HOME", self.dir.path())
            .env("STRONGROOM_PROFILE_FILE", &self.profile)
            .env("STRONGROOM_ENDPOINT", &self.endpoint)
            .env("STRONGROOM_CA_FILE", &self.ca_file);
        command
    }

    /// Runs a client command ([`Kms::command`]); returns what it printed.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        succeeded(&format!("{args:?}"), &self.cli(args))
    }

    /// Runs a command with `--json`; returns the parsed answer.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut with_json = args.to_vec();
        with_json.push("--json");
        serde_json::from_str(&self.ok(&with_json)).unwrap()
    }

    /// Runs a command that must fail with status 1; returns its stderr.
    pub fn refused(&self, args: &[&str]) -> String {
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

    /// Registers `cluster`, makes an instance and connects it; returns the instance id.
    pub fn connected_instance(&self, cluster: &HsmCluster) -> String {
        self.connected_instance_with(cluster, &[])
    }

    /// As [`Kms::connected_instance`], with `create_args` added to `instance create`.
    pub fn connected_instance_with(&self, cluster: &HsmCluster, create_args: &[&str]) -> String {
        let nodes: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| format!("{}={}", n.host, n.zone))
            .collect();
        let registered = self.ok(&[
            "hsm-cluster",
            "register",
            "--name",
            "pair",
            "--node",
            &nodes[0],
            "--node",
            &nodes[1],
        ]);
        let cluster_id = registered.trim().to_owned();
        let mut create = vec!["instance", "create", "--key-num", "200"];
        create.extend_from_slice(create_args);
        let created = self.ok(&create);
        let instance = created
            .split_whitespace()
            .find(|word| word.starts_with("kst-"))
            .unwrap()
            .to_owned();
        let connected = self.ok(&[
            "instance",
            "connect",
            &instance,
            "--cluster",
            &cluster_id,
            "--client-p12",
            cluster.certs.join("client.p12").to_str().unwrap(),
            "--p12-password",
            P12_PASSWORD,
            "--root-ca",
            cluster.certs.join("rootca.pem").to_str().unwrap(),
            "--wait",
        ]);
        assert!(connected.contains(": Connected"), "{connected}");
        instance
    }

    /// Stops the server (SIGKILL: nothing it holds in memory is written afterwards).
    pub fn stop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

impl Drop for Kms {
    fn drop(&mut self) {
        self.stop();
    }
}

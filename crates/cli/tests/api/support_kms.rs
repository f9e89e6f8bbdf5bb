//! A KMS node with a Connected instance on a real HSM cluster, all as processes: two
//! `strongroom hsm serve` nodes set up the guide's way (`hsm admin`), `strongroom init`
//! and `strongroom server`, then `hsm-cluster register` and `instance connect --wait`.
//! Used by the key and secret tests (`keys.rs`, `secrets.rs`) and the crash and fault
//! tests (`crash.rs`, `hsm_faults.rs`), which kill and restart the processes.

use std::io::{BufRead, BufReader, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use strongroom_server::client::{Credentials, ManagementClient, Transport};
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

/// One `strongroom hsm serve` process. Its ports are chosen before the first start and
/// kept across restarts ([`HsmNode::restart_sealed`]), so the address a KMS node was
/// given stays valid.
pub struct HsmNode {
    child: Child,
    pub host: String,
    officer: String,
    fingerprint: String,
    pub zone: String,
    state: PathBuf,
}

/// What `hsm serve` printed at start.
struct Banner {
    first_line: String,
    host: String,
    officer: String,
    fingerprint: String,
}

impl HsmNode {
    fn spawn(state: &Path, zone: &str) -> Self {
        let host = format!("127.0.0.1:{}", free_port());
        let officer = format!("127.0.0.1:{}", free_port());
        let (child, banner) = Self::serve(state, zone, &host, &officer, true);
        Self {
            child,
            host: banner.host,
            officer: banner.officer,
            fingerprint: banner.fingerprint,
            zone: zone.to_owned(),
            state: state.to_owned(),
        }
    }

    /// Starts `hsm serve` on `state`, with the officer password in its environment
    /// (it unseals itself) or without any credential (it starts sealed).
    fn serve(
        state: &Path,
        zone: &str,
        host: &str,
        officer: &str,
        with_password: bool,
    ) -> (Child, Banner) {
        let mut command = strongroom();
        command
            .args(["hsm", "serve", "--state"])
            .arg(state)
            .args([
                "--listen",
                host,
                "--officer-listen",
                officer,
                "--zone",
                zone,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if with_password {
            command.env("STRONGROOM_HSM_OFFICER_PASSWORD", OFFICER_PASSWORD);
        } else {
            command.env_remove("STRONGROOM_HSM_OFFICER_PASSWORD");
        }
        let mut child = command.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut first_line, mut host, mut officer, mut fingerprint) = (None, None, None, None);
        while fingerprint.is_none() {
            let Some(Ok(line)) = lines.next() else {
                let status = child.wait().unwrap();
                panic!("hsm serve exited ({status}) before it was ready");
            };
            if first_line.is_none() {
                first_line = Some(line.clone());
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["host", "port", address] => host = Some((*address).to_owned()),
                ["officer", "port", address] => officer = Some((*address).to_owned()),
                ["identity", fp] => fingerprint = Some((*fp).to_owned()),
                _ => {}
            }
        }
        std::thread::spawn(move || for _ in lines {});
        let banner = Banner {
            first_line: first_line.unwrap(),
            host: host.unwrap(),
            officer: officer.unwrap(),
            fingerprint: fingerprint.unwrap(),
        };
        (child, banner)
    }

    /// `kill -9` of the node process (nothing it holds in memory survives).
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the node again on its state directory and ports, the way a machine
    /// restarts it: without any credential, so it comes up **sealed** (asserted). Call
    /// [`HsmNode::unseal`] to serve again. Kill it first ([`HsmNode::kill9`]).
    pub fn restart_sealed(&mut self) {
        let (child, banner) =
            Self::serve(&self.state, &self.zone, &self.host, &self.officer, false);
        self.child = child;
        assert!(
            banner.first_line.contains("SEALED"),
            "a node started without a credential is sealed: {}",
            banner.first_line
        );
        assert_eq!(banner.host, self.host);
        assert_eq!(
            banner.fingerprint, self.fingerprint,
            "the identity survived"
        );
    }

    /// The security officer logs in, which unseals the node (docs/hsm.md); asserts
    /// that it is then unsealed.
    pub fn unseal(&self) {
        self.admin_ok(&["login"]);
        let status: serde_json::Value =
            serde_json::from_str(&self.admin_ok(&["--json", "status"])).unwrap();
        assert_eq!(status["sealed"], false, "{status}");
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
    /// Everything after `server`, as the first start had it (restarts reuse it).
    server_args: Vec<String>,
    log: Option<PathBuf>,
}

impl Kms {
    /// `strongroom init` and `strongroom server` with `server_args`. With `log`, the
    /// server runs with `RUST_LOG=debug` and everything it writes (stdout and stderr)
    /// goes to that file. The management port is chosen here and kept across
    /// [`Kms::restart`], so the profile `init` wrote stays valid.
    pub fn start(server_args: &[&str], log: Option<&Path>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let profile = dir.path().join("profile.toml");
        let listen = format!("127.0.0.1:{}", free_port());
        let init = strongroom()
            .args(["init", "--data-dir"])
            .arg(&data)
            .args(["--insecure-http", "--listen", &listen])
            .arg("--write-profile")
            .arg(&profile)
            .output()
            .unwrap();
        succeeded("strongroom init", &init);
        let mut args: Vec<String> = vec![
            "--listen".to_owned(),
            listen,
            // Tests run side by side: no fixed instance or metrics ports.
            "--instance-ports".to_owned(),
            format!("{0}-{0}", free_port()),
            "--metrics-listen".to_owned(),
            "off".to_owned(),
        ];
        args.extend(server_args.iter().map(|a| (*a).to_owned()));
        let ca_file = data.join("management-ca.pem");
        let (server, endpoint) = Self::serve(&data, &args, log, false);
        Self {
            dir,
            data,
            server,
            endpoint,
            ca_file,
            profile,
            server_args: args,
            log: log.map(Path::to_owned),
        }
    }

    /// `kill -9` of the server, then `strongroom server` again on the same data
    /// directory with the same arguments and ports (a log file is appended to).
    pub fn restart(&mut self) {
        self.stop();
        let (server, endpoint) =
            Self::serve(&self.data, &self.server_args, self.log.as_deref(), true);
        assert_eq!(endpoint, self.endpoint, "the same management address");
        self.server = server;
    }

    /// The management endpoint, `host:port`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The management CA file.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The profile file `init` wrote (the AccessKey is in it).
    pub fn profile(&self) -> &Path {
        &self.profile
    }

    /// Starts `strongroom server`; returns it and the address of its banner.
    fn serve(data: &Path, args: &[String], log: Option<&Path>, append: bool) -> (Child, String) {
        let mut command = strongroom();
        command
            .args(["server", "--data-dir"])
            .arg(data)
            .args(args)
            .stdout(Stdio::piped());
        let mut log_file = None;
        match log {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .write(true)
                    .append(append)
                    .truncate(!append)
                    .open(path)
                    .unwrap();
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
        (server, endpoint)
    }

    /// A management API client (`strongroom_server::client`) with `init`'s AccessKey,
    /// for calls the CLI has no command for (Encrypt, Decrypt). Needs a tokio runtime
    /// to call.
    pub fn management_client(&self) -> ManagementClient {
        let profile: toml::Table =
            toml::from_str(&std::fs::read_to_string(&self.profile).unwrap()).unwrap();
        let field = |name: &str| -> String {
            profile["profile"]["default"][name]
                .as_str()
                .unwrap_or_else(|| panic!("no {name} in the profile"))
                .to_owned()
        };
        ManagementClient::new(
            &self.endpoint,
            Transport::Https {
                ca_file: self.ca_file.clone(),
                server_name: None,
            },
            Credentials {
                access_key_id: field("access_key_id"),
                access_key_secret: field("access_key_secret").into(),
            },
        )
        .unwrap()
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
        let hosts: Vec<String> = cluster.nodes.iter().map(|n| n.host.clone()).collect();
        self.connected_instance_via(cluster, &hosts, create_args)
    }

    /// As [`Kms::connected_instance_with`], registering the cluster's nodes at `hosts`
    /// (one `host:port` per node, in order: e.g. proxies in front of them) instead of
    /// their own addresses.
    pub fn connected_instance_via(
        &self,
        cluster: &HsmCluster,
        hosts: &[String],
        create_args: &[&str],
    ) -> String {
        assert_eq!(hosts.len(), cluster.nodes.len());
        let nodes: Vec<String> = cluster
            .nodes
            .iter()
            .zip(hosts)
            .map(|(n, host)| format!("{host}={}", n.zone))
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

/// The first line of a command's output, trimmed.
pub fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().trim().to_owned()
}

/// What follows `label` on the output line that starts with it, trimmed.
pub fn line_value(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|line| line.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label} in {text}"))
        .trim()
        .to_owned()
}

//! `strongroom hsm serve` and `strongroom hsm admin` as processes: the guide's step 2
//! replayed on two nodes in two zones, sealing across restarts, and `kill -9` at any
//! moment leaving a node that starts and holds what it acknowledged.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use strongroom_certs::password::Password;
use strongroom_certs::pkcs12;
use strongroom_certs::pki::certificates_from_pem;
use strongroom_certs::tls::{TlsVersions, mtls_client_config};
use strongroom_hsm::Hsm as _;
use strongroom_hsm::client::{ClusterClient, ClusterConfig, NodeAddress};
use strongroom_proto::hsm::v1::{self as pb, request::Op, response::Result as R};

const PASSWORD: &str = "officer-password-1";

struct NodeProcess {
    child: Child,
    host: String,
    officer: String,
    fingerprint: String,
    banner: String,
}

impl NodeProcess {
    fn spawn(state: &Path, zone: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_strongroom"))
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
            .args(extra)
            .env("STRONGROOM_HSM_OFFICER_PASSWORD", PASSWORD)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut banner = String::new();
        let (mut host, mut officer, mut fingerprint) = (None, None, None);
        while fingerprint.is_none() {
            let Some(Ok(line)) = lines.next() else {
                let status = child.wait().unwrap();
                panic!("hsm serve exited ({status}) before it was ready:\n{banner}");
            };
            banner.push_str(&line);
            banner.push('\n');
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["host", "port", address] => host = Some((*address).to_owned()),
                ["officer", "port", address] => officer = Some((*address).to_owned()),
                ["identity", fp] => fingerprint = Some((*fp).to_owned()),
                _ => {}
            }
        }
        // Keep draining stdout so the node never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            host: host.unwrap(),
            officer: officer.unwrap(),
            fingerprint: fingerprint.unwrap(),
            banner,
        }
    }

    fn admin(&self, args: &[&str]) -> Output {
        admin(&self.officer, &self.fingerprint, args)
    }

    fn admin_ok(&self, args: &[&str]) -> String {
        let out = self.admin(args);
        assert!(
            out.status.success(),
            "hsm admin {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.admin_ok(&["--json", "status"])).unwrap()
    }

    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn admin(officer: &str, fingerprint: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strongroom"))
        .args([
            "hsm",
            "admin",
            "--connect",
            officer,
            "--fingerprint",
            fingerprint,
        ])
        .args(args)
        .env("STRONGROOM_HSM_OFFICER_PASSWORD", PASSWORD)
        .output()
        .unwrap()
}

fn certificates(dir: &Path) -> PathBuf {
    let out = Command::new(env!("CARGO_BIN_EXE_hsm_certificate_generate"))
        .current_dir(dir)
        .args(["-dir", "./certs", "-pswd", "12345678"])
        .output()
        .unwrap();
    assert!(out.status.success());
    dir.join("certs")
}

/// The guide's step 2 with our tools, in its order, on two node processes.
fn guide_cluster(scratch: &Path) -> (PathBuf, NodeProcess, NodeProcess) {
    let certs = certificates(scratch);
    let primary = NodeProcess::spawn(&scratch.join("primary"), "cn-hangzhou-h", &[]);
    let member = NodeProcess::spawn(&scratch.join("member"), "cn-hangzhou-i", &[]);
    assert!(
        primary.banner.contains("role primary"),
        "{}",
        primary.banner
    );
    let pem = certs.join("client.pem");
    let p12 = certs.join("server.p12");
    // The guide's order: log in, client certificate, server certificate, restart,
    // port properties, restart, sync cluster.
    primary.admin_ok(&["login"]);
    primary.admin_ok(&["import-client-cert", pem.to_str().unwrap()]);
    primary.admin_ok(&[
        "import-server-cert",
        p12.to_str().unwrap(),
        "--p12-password",
        "12345678",
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
    let added = primary.admin_ok(&[
        "add-member",
        &member.officer,
        "--member-fingerprint",
        &member.fingerprint,
    ]);
    assert!(added.contains("added member"), "{added}");
    let synced = primary.admin_ok(&["sync-cluster"]);
    assert!(synced.contains("synced"), "{synced}");
    (certs, primary, member)
}

#[test]
fn the_guides_step_2_on_two_nodes_in_two_zones() {
    let scratch = tempfile::tempdir().unwrap();
    let (_certs, primary, member) = guide_cluster(scratch.path());

    let p = primary.status();
    let m = member.status();
    assert_eq!(p["zone"], "cn-hangzhou-h");
    assert_eq!(m["zone"], "cn-hangzhou-i");
    assert_eq!(m["role"], "member");
    assert_eq!(p["domain_key_fingerprint"], m["domain_key_fingerprint"]);
    assert_eq!(p["members"][0]["synced"], true);
    assert_eq!(p["host"]["serving"], true);
    assert_eq!(m["host"]["serving"], true);
    assert_eq!(m["host"]["address"], member.host.as_str());
    assert_eq!(m["client_certificates"], p["client_certificates"]);
    let human = primary.admin_ok(&["status"]);
    assert!(human.contains("synced"), "{human}");

    // A wrong password is refused, and says so.
    let out = Command::new(env!("CARGO_BIN_EXE_strongroom"))
        .args([
            "hsm",
            "admin",
            "--connect",
            &primary.officer,
            "--fingerprint",
            &primary.fingerprint,
            "status",
        ])
        .env("STRONGROOM_HSM_OFFICER_PASSWORD", "not-the-password")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong password"));
}

#[test]
fn a_restarted_node_is_sealed_without_its_credential_and_unseals_with_its_key_file() {
    let scratch = tempfile::tempdir().unwrap();
    let state = scratch.path().join("node");
    let key = scratch.path().join("unseal.key");
    let node = NodeProcess::spawn(&state, "z", &["--unseal-key-file", key.to_str().unwrap()]);
    assert!(key.is_file(), "the first start creates the unseal key file");
    node.kill9();

    let sealed = Command::new(env!("CARGO_BIN_EXE_strongroom"))
        .args(["hsm", "serve", "--state"])
        .arg(&state)
        .args(["--listen", "127.0.0.1:0", "--officer-listen", "127.0.0.1:0"])
        .env_remove("STRONGROOM_HSM_OFFICER_PASSWORD")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = sealed;
    let mut first = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(first.contains("SEALED"), "{first}");

    let node = Command::new(env!("CARGO_BIN_EXE_strongroom"))
        .args(["hsm", "serve", "--state"])
        .arg(&state)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--officer-listen",
            "127.0.0.1:0",
            "--unseal-key-file",
        ])
        .arg(&key)
        .env_remove("STRONGROOM_HSM_OFFICER_PASSWORD")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = node;
    let mut first = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(first.contains("is unsealed"), "{first}");
}

#[test]
fn kill_9_at_any_moment_keeps_what_was_acknowledged() {
    let scratch = tempfile::tempdir().unwrap();
    let state = scratch.path().join("node");
    let key = scratch.path().join("unseal.key");
    let key_arg = ["--unseal-key-file", key.to_str().unwrap()];
    // Distinct client certificates to import, one per round.
    let mut pems = Vec::new();
    for round in 0..6 {
        let dir = scratch.path().join(format!("round{round}"));
        std::fs::create_dir_all(&dir).unwrap();
        pems.push(certificates(&dir).join("client.pem"));
    }
    let mut acknowledged: Vec<String> = Vec::new();
    let mut node = NodeProcess::spawn(&state, "z", &key_arg);
    let domain = node.status()["domain_key_fingerprint"].clone();
    for (round, pem) in pems.iter().enumerate() {
        // Start an import and kill the node a little later: before, during or after the
        // write, depending on timing.
        let import = Command::new(env!("CARGO_BIN_EXE_strongroom"))
            .args([
                "hsm",
                "admin",
                "--connect",
                &node.officer,
                "--fingerprint",
                &node.fingerprint,
            ])
            .args(["--json", "import-client-cert", pem.to_str().unwrap()])
            .env("STRONGROOM_HSM_OFFICER_PASSWORD", PASSWORD)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(150 * u64::try_from(round).unwrap()));
        node.kill9();
        let out = import.wait_with_output().unwrap();
        if out.status.success() {
            let added: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            acknowledged.push(added[0]["fingerprint"].as_str().unwrap().to_owned());
        }
        node = NodeProcess::spawn(&state, "z", &key_arg);
        let status = node.status();
        assert_eq!(status["sealed"], false);
        assert_eq!(
            status["domain_key_fingerprint"], domain,
            "the domain key survived"
        );
        let held: Vec<String> = status["client_certificates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["fingerprint"].as_str().unwrap().to_owned())
            .collect();
        for fp in &acknowledged {
            assert!(
                held.contains(fp),
                "acknowledged import {fp} lost after kill -9"
            );
        }
        assert!(held.len() <= round + 1);
    }
    // The last round always completes: the node was given time to finish.
    node.admin_ok(&["import-client-cert", pems[0].to_str().unwrap()]);
}

/// The KMS side: a cluster client with the guide's `client.p12` and `rootca.pem`.
fn cluster_client(certs: &Path, nodes: &[&NodeProcess]) -> ClusterClient {
    let p12 = std::fs::read(certs.join("client.p12")).unwrap();
    let contents = pkcs12::read(&p12, &Password::new("12345678".to_owned())).unwrap();
    let ca = certificates_from_pem(&std::fs::read(certs.join("rootca.pem")).unwrap()).unwrap();
    let tls = mtls_client_config(
        vec![contents.certificates[0].clone()],
        &contents.private_key,
        &ca,
        TlsVersions::Tls12Only,
    )
    .unwrap();
    let addresses = nodes
        .iter()
        .map(|n| NodeAddress::new(n.host.clone()).unwrap())
        .collect();
    let mut config = ClusterConfig::new(addresses, Arc::new(tls));
    config.health_interval = Duration::from_millis(200);
    ClusterClient::connect(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_two_node_processes_fails_no_request() {
    let scratch = tempfile::tempdir().unwrap();
    let (certs, primary, member) = guide_cluster(scratch.path());
    let client = Arc::new(cluster_client(&certs, &[&primary, &member]));
    let R::GenerateKey(generated) = client
        .call(Op::GenerateKey(pb::GenerateKey {
            key_id: "key-1".to_owned(),
            version_id: "v1".to_owned(),
            key_spec: "Aliyun_AES_256".to_owned(),
            key_usage: "ENCRYPT/DECRYPT".to_owned(),
        }))
        .await
        .unwrap()
    else {
        panic!("not a key")
    };
    let key = pb::KeyRef {
        key_id: "key-1".to_owned(),
        version_id: "v1".to_owned(),
        key_spec: "Aliyun_AES_256".to_owned(),
        key_usage: "ENCRYPT/DECRYPT".to_owned(),
        blob: generated.blob,
    };
    let done = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for worker in 0..16u32 {
        let client = Arc::clone(&client);
        let key = key.clone();
        let done = Arc::clone(&done);
        workers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            for i in 0..250u32 {
                let plaintext = format!("worker {worker} request {i}").into_bytes();
                let encrypted = client
                    .call(Op::Encrypt(pb::Encrypt {
                        key: Some(key.clone()),
                        plaintext: plaintext.clone(),
                        ..Default::default()
                    }))
                    .await;
                let encrypted = match encrypted {
                    Ok(R::Encrypt(reply)) => reply,
                    Ok(other) => panic!("{other:?}"),
                    Err(e) => {
                        failures.push(e.to_string());
                        continue;
                    }
                };
                match client
                    .call(Op::Decrypt(pb::Decrypt {
                        key: Some(key.clone()),
                        ciphertext: encrypted.ciphertext,
                        algorithm: encrypted.algorithm,
                        iv: encrypted.iv,
                        ..Default::default()
                    }))
                    .await
                {
                    Ok(R::Decrypt(d)) => assert_eq!(d.plaintext, plaintext),
                    Ok(other) => panic!("{other:?}"),
                    Err(e) => failures.push(e.to_string()),
                }
                done.fetch_add(2, Ordering::Relaxed);
            }
            failures
        }));
    }
    // Let the load run on both nodes, then kill -9 the primary mid-flight.
    while done.load(Ordering::Relaxed) < 1500 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let at_kill = done.load(Ordering::Relaxed);
    primary.kill9();
    let mut failures = Vec::new();
    for worker in workers {
        failures.extend(worker.await.unwrap());
    }
    let total = done.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "{} failed requests: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(total, 16 * 250 * 2);
    assert!(
        at_kill < total,
        "the kill happened while requests were running"
    );
    let health = client.health();
    assert!(health.iter().any(|h| !h.healthy), "{health:?}");
}

//! `strongroom quickstart` as a newcomer runs it: the whole guide in one process, the
//! `quickstart.json` of issue #9's exact shape, the README's Python example run verbatim
//! with the official SDK against it, Ctrl-C, and a second run on the same directory
//! that starts the same setup and creates nothing.

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::support_kms::strongroom;

/// A base port whose management, HSM and first instance ports are all free.
fn free_base() -> u16 {
    for _ in 0..100 {
        let mut seed = [0u8; 2];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut seed))
            .unwrap();
        // Below Linux's ephemeral range (32768 and up) with all the offsets.
        let base = 20_000 + u16::from_be_bytes(seed) % 12_000;
        let ports = [0, 9, 20, 21, 22, 23, 443].map(|o| base + o);
        if ports
            .iter()
            .all(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        {
            return base;
        }
    }
    panic!("no free ports");
}

/// Starts the quickstart and reads its steps until it says it is ready.
fn start(dir: &Path, base: u16, log: &Path) -> (Child, Vec<String>) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut child = strongroom()
        .args(["quickstart", "--dir"])
        .arg(dir)
        .args(["--ports", &base.to_string()])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut said = Vec::new();
    loop {
        let Some(Ok(line)) = lines.next() else {
            let status = child.wait().unwrap();
            panic!("quickstart exited ({status}) before it was ready: {said:#?}");
        };
        let ready = line.contains("ready:");
        said.push(line);
        if ready {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    (child, said)
}

/// Ctrl-C, and a clean exit.
fn interrupt(mut child: Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "quickstart exited with {exit}");
}

/// The README's Python example, exactly as written there.
fn readme_example() -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let after = readme
        .split("<!-- quickstart-example -->")
        .nth(1)
        .expect("the README marks its example");
    let block = after
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("a python block after the marker");
    block.to_owned()
}

fn run_example(dir: &Path) {
    let python = std::env::var("STRONGROOM_DKMS_PYTHON")
        .expect("STRONGROOM_DKMS_PYTHON: run scripts/test.sh, which makes the SDK venv");
    let out = Command::new(python)
        .arg("-c")
        .arg(readme_example())
        .env("STRONGROOM_DIR", dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the README's example failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "decrypted: hello strongroom"
    );
}

/// `GET /metrics` from the metrics listener.
fn scrape(port: u16) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    answer
}

fn keys_of(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

#[test]
fn quickstart_then_the_readme_example_then_again() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("strongroom-data");
    let base = free_base();

    let log = scratch.path().join("quickstart.log");
    let (child, said) = start(&dir, base, &log);
    for step in [
        "certificates",
        "HSM node in zone a",
        "HSM node in zone b",
        "officer",
        "KMS node",
        "instance",
        "keys",
        "access",
    ] {
        assert!(
            said.iter().any(|l| l.contains(step)),
            "no step {step:?} in {said:#?}"
        );
    }
    let text = std::fs::read_to_string(dir.join("quickstart.json")).unwrap();
    let qs: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        keys_of(&qs),
        ["client_key", "instance", "keys", "management"]
    );
    assert_eq!(
        keys_of(&qs["management"]),
        [
            "access_key_id",
            "access_key_secret",
            "ca_file",
            "endpoint",
            "protocol",
            "region_id"
        ]
    );
    assert_eq!(
        keys_of(&qs["instance"]),
        ["ca_file", "endpoint", "instance_id"]
    );
    assert_eq!(
        keys_of(&qs["client_key"]),
        ["file", "key_id", "password_file"]
    );
    assert_eq!(qs["management"]["endpoint"], format!("127.0.0.1:{base}"));
    assert_eq!(qs["management"]["protocol"], "https");
    let keys = qs["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3);
    assert_eq!(keys[0]["alias"], "alias/quickstart");
    assert_eq!(keys[0]["key_spec"], "Aliyun_AES_256");
    assert_eq!(keys[0]["key_usage"], "ENCRYPT/DECRYPT");
    for key in keys {
        assert_eq!(keys_of(key), ["alias", "key_id", "key_spec", "key_usage"]);
    }
    // Paths are relative to the directory; the secret files are private.
    for path in [
        &qs["management"]["ca_file"],
        &qs["instance"]["ca_file"],
        &qs["client_key"]["file"],
        &qs["client_key"]["password_file"],
    ] {
        assert!(dir.join(path.as_str().unwrap()).is_file(), "{path}");
    }
    for private in [
        "quickstart.json",
        qs["client_key"]["file"].as_str().unwrap(),
        qs["client_key"]["password_file"].as_str().unwrap(),
    ] {
        let mode = std::fs::metadata(dir.join(private))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{private} is readable by others");
    }
    run_example(&dir);
    let metrics = scrape(base + 9);
    let instance = qs["instance"]["instance_id"].as_str().unwrap();
    for expected in [
        "strongroom_requests_total{surface=\"instance\",api=\"Encrypt\",code=\"OK\"} 1".to_owned(),
        "strongroom_requests_total{surface=\"instance\",api=\"Decrypt\",code=\"OK\"} 1".to_owned(),
        "strongroom_request_duration_seconds_count{surface=\"instance\",api=\"Encrypt\"} 1"
            .to_owned(),
        format!("strongroom_keys{{instance=\"{instance}\"}} 3"),
        format!("strongroom_instance_connected{{instance=\"{instance}\"}} 1"),
        format!(
            "strongroom_hsm_node_healthy{{instance=\"{instance}\",node=\"127.0.0.1:{}\"}} 1",
            base + 20
        ),
        format!(
            "strongroom_hsm_node_healthy{{instance=\"{instance}\",node=\"127.0.0.1:{}\"}} 1",
            base + 22
        ),
    ] {
        assert!(metrics.contains(&expected), "no {expected:?} in\n{metrics}");
    }
    assert!(metrics.contains(
        "strongroom_requests_total{surface=\"management\",api=\"CreateKey\",code=\"OK\"} 3"
    ));
    interrupt(child);

    // Again: the same setup, nothing created.
    let (child, said) = start(&dir, base, &log);
    assert!(
        said.iter().any(|l| l.contains("nothing created")),
        "{said:#?}"
    );
    assert!(
        !said.iter().any(|l| l.contains("CreateKmsInstance")),
        "{said:#?}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("quickstart.json")).unwrap(),
        text
    );
    run_example(&dir);
    interrupt(child);

    // The audit log: every call, chained, and no secret in it or in the debug log.
    let audit = dir.join("kms").join("audit.log");
    let lines: Vec<Value> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let client_key = qs["client_key"]["key_id"].as_str().unwrap();
    let instance = qs["instance"]["instance_id"].as_str().unwrap();
    for action in [
        "CreateKmsInstance",
        "ConnectKmsInstance",
        "CreateKey",
        "CreateClientKey",
    ] {
        let line = lines.iter().find(|l| l["action"] == action).unwrap();
        assert_eq!(line["result"], "OK", "{line}");
        assert_eq!(line["caller"], qs["management"]["access_key_id"], "{line}");
    }
    let encrypts: Vec<&Value> = lines.iter().filter(|l| l["action"] == "Encrypt").collect();
    assert_eq!(encrypts.len(), 2, "one Encrypt per run of the example");
    for line in encrypts {
        assert_eq!(line["caller"], client_key);
        assert_eq!(line["source"], "127.0.0.1");
        assert_eq!(line["resource"], format!("{instance}/alias/quickstart"));
        assert_eq!(line["result"], "OK");
    }
    let verify = |file: &Path| {
        strongroom()
            .args(["audit", "verify"])
            .arg(file)
            .output()
            .unwrap()
    };
    let intact = verify(&audit);
    assert!(
        intact.status.success(),
        "{}",
        String::from_utf8_lossy(&intact.stdout)
    );
    let text = std::fs::read_to_string(&audit).unwrap();
    let mut tampered: Vec<&str> = text.lines().collect();
    tampered.remove(3);
    let copy = scratch.path().join("tampered.log");
    std::fs::write(&copy, tampered.join("\n") + "\n").unwrap();
    let broken = verify(&copy);
    assert_eq!(broken.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&broken.stdout).contains("broken at line 4"));

    let password =
        std::fs::read_to_string(dir.join(qs["client_key"]["password_file"].as_str().unwrap()))
            .unwrap();
    let secrets: [(&str, &str); 3] = [
        ("the client key's password", password.trim()),
        (
            "the AccessKey secret",
            qs["management"]["access_key_secret"].as_str().unwrap(),
        ),
        ("the example's plaintext", "hello strongroom"),
    ];
    for file in [&audit, &log] {
        let content = std::fs::read_to_string(file).unwrap();
        assert!(content.len() > 1000, "{} is nearly empty", file.display());
        for (what, secret) in secrets {
            assert!(!content.contains(secret), "{what} is in {}", file.display());
        }
    }
}

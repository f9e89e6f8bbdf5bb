//! Shared test helpers: the external tools (OpenSSL 3, Python `cryptography`), child
//! processes with a deadline, scratch directories, and an in-memory TLS handshake.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rustls::Connection;

const INSTALL_HINT: &str = "run scripts/test.sh, which installs the OpenSSL 3 command-line \
     tool and a Python venv (.venv-test) with the `cryptography` package, and points \
     STRONGROOM_TEST_PYTHON at it";

/// How long any external tool may run.
const TOOL_DEADLINE: Duration = Duration::from_secs(60);

/// The `openssl` command, after checking once that it runs and is OpenSSL 3.
pub fn openssl() -> Command {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let out = Command::new("openssl")
            .arg("version")
            .output()
            .unwrap_or_else(|e| panic!("cannot run `openssl` ({e}): {INSTALL_HINT}"));
        let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert!(
            out.status.success() && version.starts_with("OpenSSL 3."),
            "`openssl version` gave {version:?} ({}); these tests need OpenSSL 3: {INSTALL_HINT}",
            out.status
        );
        version
    });
    Command::new("openssl")
}

/// The Python interpreter (`$STRONGROOM_TEST_PYTHON`, else `python3`), after checking
/// once that it imports `cryptography`.
pub fn python() -> Command {
    static INTERPRETER: OnceLock<String> = OnceLock::new();
    let interpreter = INTERPRETER.get_or_init(|| {
        let interpreter =
            std::env::var("STRONGROOM_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let out = Command::new(&interpreter)
            .args(["-c", "import cryptography; print(cryptography.__version__)"])
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run the Python interpreter {interpreter:?} ({e}): {INSTALL_HINT}")
            });
        assert!(
            out.status.success() && !out.stdout.trim_ascii().is_empty(),
            "{interpreter:?} cannot import the `cryptography` package ({}): {}\n{INSTALL_HINT}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        interpreter
    });
    Command::new(interpreter)
}

/// What a finished child process did.
#[derive(Debug)]
pub struct Finished {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` with `stdin`, killing it (and failing the test) after the deadline.
pub fn finish(command: &mut Command, stdin: &[u8]) -> Finished {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let mut child_stdin = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // A child that exits early closes its stdin; that is not an error here.
        let _ = child_stdin.write_all(&input);
    });
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + TOOL_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not finish within {TOOL_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    writer.join().unwrap();
    Finished {
        success: status.success(),
        stdout: String::from_utf8_lossy(&out_reader.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&err_reader.join().unwrap()).into_owned(),
    }
}

/// Runs `command`, which must succeed; returns its stdout.
pub fn run_ok(command: &mut Command) -> String {
    let out = finish(command, b"");
    assert!(
        out.success,
        "{command:?} failed:\nstdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    out.stdout
}

/// Runs `command`, which must fail; returns its stdout and stderr together.
pub fn run_fails(command: &mut Command) -> String {
    let out = finish(command, b"");
    assert!(
        !out.success,
        "{command:?} succeeded but should have failed:\nstdout: {}",
        out.stdout
    );
    format!("{}{}", out.stdout, out.stderr)
}

/// A scratch directory, removed at the end of the test.
pub struct Scratch(tempfile::TempDir);

impl Scratch {
    pub fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("scratch paths are UTF-8")
}

/// What each side of an in-memory handshake ended with.
#[derive(Debug)]
pub struct Outcome {
    pub client: Result<(), rustls::Error>,
    pub server: Result<(), rustls::Error>,
}

/// Moves every pending TLS record from `from` to `to`; returns how many bytes moved.
fn transfer(from: &mut Connection, to: &mut Connection) -> usize {
    let mut buf = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut buf).unwrap();
    }
    let mut rest = &buf[..];
    while !rest.is_empty() {
        to.read_tls(&mut rest).unwrap();
    }
    buf.len()
}

/// Drives a handshake between two in-memory connections until both finish or one
/// fails (then delivers the alert to the other side, as a socket would).
pub fn handshake(client: &mut Connection, server: &mut Connection) -> Outcome {
    let mut outcome = Outcome {
        client: Ok(()),
        server: Ok(()),
    };
    for _ in 0..16 {
        if transfer(client, server) > 0 && outcome.server.is_ok() {
            outcome.server = server.process_new_packets().map(|_| ());
        }
        if transfer(server, client) > 0 && outcome.client.is_ok() {
            outcome.client = client.process_new_packets().map(|_| ());
        }
        let failed = outcome.client.is_err() || outcome.server.is_err();
        let done = !client.is_handshaking() && !server.is_handshaking();
        if (failed || done) && !client.wants_write() && !server.wants_write() {
            break;
        }
    }
    outcome
}

/// Sends `data` from one established connection to the other; returns what the
/// receiver read.
pub fn send(from: &mut Connection, to: &mut Connection, data: &[u8]) -> Vec<u8> {
    from.writer().write_all(data).unwrap();
    transfer(from, to);
    to.process_new_packets().unwrap();
    let mut got = vec![0u8; data.len()];
    to.reader().read_exact(&mut got).unwrap();
    got
}

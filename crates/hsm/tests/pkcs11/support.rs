//! A SoftHSM2 token for the tests, and small helpers around the backend.
//!
//! SoftHSM2 reads its configuration (`SOFTHSM2_CONF`) once, when the module is
//! initialised, and the variable is process-global; this crate forbids `unsafe`, so
//! `std::env::set_var` is out. Instead each test re-runs itself in a child process of
//! this test binary with `SOFTHSM2_CONF` pointing at a scratch token directory that the
//! parent set up once (one token, initialised with `softhsm2-util`). Tests isolate
//! themselves from each other with distinct domain key labels.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use cryptoki::types::AuthPin;
use strongroom_hsm::backend::{Backend, Op, Reply};
use strongroom_hsm::error::HsmError;
use strongroom_hsm::pkcs11::{Pkcs11Backend, Pkcs11Config};
use strongroom_proto::hsm::v1::{self as pb, error::Code};

/// The token every test uses.
pub const TOKEN_LABEL: &str = "strongroom-test";
/// Its user PIN.
pub const USER_PIN: &str = "4711-pin";
const SO_PIN: &str = "12345678";

/// Set in the child process: the tests really run there.
const CHILD_MARKER: &str = "STRONGROOM_PKCS11_TEST_CHILD";
/// The module, found by the parent and handed to the child.
const MODULE_VAR: &str = "STRONGROOM_SOFTHSM2_MODULE";

/// Where SoftHSM2's module lives on Debian and Ubuntu.
const KNOWN_MODULES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
];

/// The token as the child sees it.
#[derive(Debug)]
pub struct Token {
    pub module: PathBuf,
}

impl Token {
    /// A configuration for this token with its own domain key label.
    pub fn config(&self, domain_key_label: &str) -> Pkcs11Config {
        let mut config = Pkcs11Config::new(&self.module, TOKEN_LABEL, AuthPin::from(USER_PIN));
        config.domain_key_label = domain_key_label.to_owned();
        config
    }

    /// A backend with its own domain key label.
    pub fn open(&self, domain_key_label: &str) -> Pkcs11Backend {
        Pkcs11Backend::open(&self.config(domain_key_label)).unwrap()
    }
}

/// The scratch token directory, set up once per test binary by the parent.
struct Fixture {
    _dir: tempfile::TempDir,
    conf: PathBuf,
    module: PathBuf,
}

fn find_module() -> PathBuf {
    if let Some(path) = std::env::var_os(MODULE_VAR) {
        let path = PathBuf::from(path);
        assert!(
            path.exists(),
            "{MODULE_VAR}={} does not exist; run scripts/test.sh, which installs SoftHSM2 \
             and sets it",
            path.display()
        );
        return path;
    }
    KNOWN_MODULES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "SoftHSM2 is not installed (no {MODULE_VAR}, none of {KNOWN_MODULES:?}): \
                 run scripts/test.sh, which installs it (apt-get install softhsm2)"
            )
        })
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let module = find_module();
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).unwrap();
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &conf)
            .args([
                "--init-token",
                "--free",
                "--label",
                TOKEN_LABEL,
                "--so-pin",
                SO_PIN,
                "--pin",
                USER_PIN,
            ])
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "softhsm2-util cannot run ({e}): run scripts/test.sh, which installs \
                     SoftHSM2"
                )
            });
        assert!(
            out.status.success(),
            "softhsm2-util --init-token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Fixture {
            _dir: dir,
            conf,
            module,
        }
    })
}

/// Runs `body` against the SoftHSM2 token, in a child process that has
/// `SOFTHSM2_CONF` set (see the module docs). `name` is the test's name.
pub fn in_softhsm(name: &str, body: impl FnOnce(&Token)) {
    if std::env::var_os(CHILD_MARKER).is_some() {
        let module = PathBuf::from(std::env::var_os(MODULE_VAR).unwrap());
        body(&Token { module });
        return;
    }
    let fixture = fixture();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_MARKER, "1")
        .env("SOFTHSM2_CONF", &fixture.conf)
        .env(MODULE_VAR, &fixture.module)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "test {name} failed against SoftHSM2 ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
}

/// The module a parent found (used by tests that load it themselves).
pub fn module_path(token: &Token) -> &Path {
    &token.module
}

/// Runs an operation.
pub fn call(backend: &Pkcs11Backend, op: Op) -> Result<Reply, HsmError> {
    backend.execute(op)
}

/// Asserts an error code.
#[track_caller]
pub fn assert_code<T: std::fmt::Debug>(result: Result<T, HsmError>, code: Code) -> HsmError {
    match result {
        Ok(v) => panic!("expected {code:?}, got Ok({v:?})"),
        Err(e) => {
            assert_eq!(e.code, code, "{e}");
            e
        }
    }
}

/// A fresh key of `spec` and `usage`.
pub fn generate(backend: &Pkcs11Backend, id: &str, spec: &str, usage: &str) -> pb::KeyBlobReply {
    match call(
        backend,
        Op::GenerateKey(pb::GenerateKey {
            key_id: id.into(),
            version_id: "v1".into(),
            key_spec: spec.into(),
            key_usage: usage.into(),
        }),
    ) {
        Ok(Reply::GenerateKey(reply)) => reply,
        other => panic!("GenerateKey {spec}: {other:?}"),
    }
}

/// The reference to a key generated by [`generate`].
pub fn key_ref(id: &str, spec: &str, usage: &str, blob: &pb::KeyBlobReply) -> pb::KeyRef {
    pb::KeyRef {
        key_id: id.into(),
        version_id: "v1".into(),
        key_spec: spec.into(),
        key_usage: usage.into(),
        blob: blob.blob.clone(),
    }
}

/// Extracts one reply variant or panics with what came instead.
macro_rules! reply {
    ($result:expr, $variant:ident) => {
        match $result {
            Ok(strongroom_hsm::backend::Reply::$variant(reply)) => reply,
            other => panic!("expected {}, got {other:?}", stringify!($variant)),
        }
    };
}

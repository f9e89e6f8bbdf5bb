//! Crash consistency: key creation, BYOK imports, rotations and encryptions run in a
//! loop while the KMS node process is `kill -9`ed at random moments and started again on
//! the same data directory, and then while one HSM node process at a time is `kill -9`ed
//! and restarted (sealed, then unsealed by the officer, as a real restart is). Afterwards,
//! with everything running, whatever a client was told succeeded is there and works,
//! nothing half-made is visible, and the audit log verifies.
//!
//! A request in flight at a kill gets a connection error: it is not acknowledged and
//! counts neither way, except that a key it made must, if it exists, be whole.
//!
//! The moments of the kills and the operations are drawn from a seeded generator; the
//! seed is printed, and `STRONGROOM_CRASH_SEED=<seed>` replays the same draws (thread
//! timing still varies).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use strongroom_server::client::{ClientError, ManagementClient};

use crate::support_kms::{HsmCluster, Kms, strongroom};

/// KMS node kills, then HSM node kills.
const KMS_KILLS: usize = 6;
const HSM_KILLS: usize = 4;
/// Concurrent clients.
const WORKERS: u64 = 3;
/// Keys and versions the workers may try to make (the instance allows 200).
const VERSION_BUDGET: usize = 150;

/// SplitMix64: small, seedable, good enough to draw moments and choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).unwrap()).unwrap()
    }

    fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(low + self.next() % (high - low))
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next().to_le_bytes()[0]).collect()
    }
}

fn seed() -> u64 {
    match std::env::var("STRONGROOM_CRASH_SEED") {
        Ok(text) => text.trim().parse().expect("STRONGROOM_CRASH_SEED is a u64"),
        Err(_) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            u64::try_from(now.as_nanos() % u128::from(u64::MAX)).unwrap()
        }
    }
}

/// What a call came to.
enum Outcome {
    /// A success answer: acknowledged.
    Ok(Value),
    /// No answer (the node was killed, or down): not acknowledged.
    Lost,
    /// An error answer.
    Refused(String),
}

/// A blocking management client (one per thread).
struct Api {
    runtime: tokio::runtime::Runtime,
    client: ManagementClient,
}

impl Api {
    fn new(kms: &Kms) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = kms
            .management_client()
            .with_timeout(Duration::from_secs(15));
        Self { runtime, client }
    }

    fn call(&self, action: &str, params: &[(&str, &str)]) -> Outcome {
        match self.runtime.block_on(self.client.call(action, params)) {
            Ok(value) => Outcome::Ok(value),
            Err(ClientError::Transport(_)) => Outcome::Lost,
            Err(ClientError::Api { code, status, .. }) => {
                Outcome::Refused(format!("{action} {status} {code}"))
            }
            Err(e @ ClientError::Config(_)) => panic!("{e}"),
        }
    }

    /// A call that must succeed (everything is running).
    fn ok(&self, action: &str, params: &[(&str, &str)]) -> Value {
        match self.runtime.block_on(self.client.call(action, params)) {
            Ok(value) => value,
            Err(e) => panic!("{action} {params:?}: {e}"),
        }
    }
}

/// How to run a client command without holding the [`Kms`] (which the main thread
/// restarts).
#[derive(Clone)]
struct Cli {
    home: PathBuf,
    profile: PathBuf,
    endpoint: String,
    ca_file: PathBuf,
}

impl Cli {
    fn new(kms: &Kms) -> Self {
        Self {
            home: kms.dir.path().to_owned(),
            profile: kms.profile().to_owned(),
            endpoint: kms.endpoint().to_owned(),
            ca_file: kms.ca_file().to_owned(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        strongroom()
            .args(args)
            .env("HOME", &self.home)
            .env("STRONGROOM_PROFILE_FILE", &self.profile)
            .env("STRONGROOM_ENDPOINT", &self.endpoint)
            .env("STRONGROOM_CA_FILE", &self.ca_file)
            .output()
            .unwrap()
    }

    /// `key import KEY --material FILE`, classified like a call.
    fn import(&self, key: &str, material: &Path) -> Outcome {
        let out = self.run(&[
            "key",
            "import",
            key,
            "--material",
            material.to_str().unwrap(),
        ]);
        if out.status.success() {
            return Outcome::Ok(Value::Null);
        }
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        // An API error prints `Code: message (request …)`; anything else is transport.
        if stderr.contains("(request ") {
            let code = stderr.split(':').next().unwrap_or_default().trim();
            Outcome::Refused(format!("import {code}"))
        } else {
            Outcome::Lost
        }
    }
}

/// One key as the acknowledged answers left it.
#[derive(Debug, Default, Clone)]
struct KeyModel {
    external: bool,
    /// An import of this key was acknowledged.
    imported: bool,
    /// The material file of the last import tried, acknowledged or not.
    material: Option<PathBuf>,
    /// Versions made by acknowledged rotations.
    rotations: Vec<String>,
    /// A worker is importing into it (one at a time: two different materials would
    /// rightly refuse each other).
    importing: bool,
}

impl KeyModel {
    fn usable(&self) -> bool {
        !self.external || self.imported
    }
}

#[derive(Debug, Default)]
struct Model {
    keys: BTreeMap<String, KeyModel>,
    /// (key, plaintext, CiphertextBlob) of every acknowledged Encrypt.
    ciphertexts: Vec<(String, String, String)>,
    /// Request ids of the acknowledged calls.
    request_ids: Vec<String>,
    /// Acknowledged operations by name.
    acknowledged: BTreeMap<String, usize>,
    /// Calls without an answer, by phase.
    lost: BTreeMap<&'static str, usize>,
    /// Error answers, by phase and `action status code`.
    refused: BTreeMap<(&'static str, String), usize>,
}

const PHASES: [&str; 3] = ["kms kills", "hsm kills", "settled"];

struct Shared {
    model: Mutex<Model>,
    stop: AtomicBool,
    phase: AtomicUsize,
    budget: AtomicUsize,
    instance: String,
    scratch: PathBuf,
}

impl Shared {
    fn phase(&self) -> &'static str {
        PHASES[self.phase.load(Ordering::Relaxed)]
    }

    /// Records a call's outcome; the answer when acknowledged.
    fn note(&self, name: &str, outcome: Outcome) -> Option<Value> {
        let mut model = self.model.lock().unwrap();
        match outcome {
            Outcome::Ok(value) => {
                *model.acknowledged.entry(name.to_owned()).or_default() += 1;
                if let Some(id) = value["RequestId"].as_str() {
                    model.request_ids.push(id.to_owned());
                }
                Some(value)
            }
            Outcome::Lost => {
                *model.lost.entry(self.phase()).or_default() += 1;
                None
            }
            Outcome::Refused(what) => {
                *model.refused.entry((self.phase(), what)).or_default() += 1;
                None
            }
        }
    }

    fn take_budget(&self) -> bool {
        self.budget.fetch_add(1, Ordering::Relaxed) < VERSION_BUDGET
    }
}

/// CreateKey (an HSM-made AES key, or an EXTERNAL one waiting for its material).
fn create_key(shared: &Shared, api: &Api, external: bool) {
    let mut params = vec![
        ("DKMSInstanceId", shared.instance.as_str()),
        ("KeySpec", "Aliyun_AES_256"),
    ];
    if external {
        params.push(("Origin", "EXTERNAL"));
    }
    let outcome = api.call("CreateKey", &params);
    let name = if external {
        "CreateKey EXTERNAL"
    } else {
        "CreateKey"
    };
    if let Some(answer) = shared.note(name, outcome) {
        let id = answer["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
        let state = if external { "PendingImport" } else { "Enabled" };
        assert_eq!(answer["KeyMetadata"]["KeyState"], state, "{answer}");
        let key = KeyModel {
            external,
            ..KeyModel::default()
        };
        shared.model.lock().unwrap().keys.insert(id, key);
    }
}

/// One client: random operations until told to stop.
fn worker(shared: &Shared, api: &Api, cli: &Cli, mut rng: Rng, index: u64) {
    let mut n = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        n += 1;
        let (usable, rotatable, pending, ciphertext) = {
            let model = shared.model.lock().unwrap();
            let pick = |keys: Vec<&String>, rng: &mut Rng| -> Option<String> {
                (!keys.is_empty()).then(|| keys[rng.below(keys.len())].clone())
            };
            let usable = pick(
                model
                    .keys
                    .iter()
                    .filter(|(_, k)| k.usable())
                    .map(|(id, _)| id)
                    .collect(),
                &mut rng,
            );
            let rotatable = pick(
                model
                    .keys
                    .iter()
                    .filter(|(_, k)| !k.external)
                    .map(|(id, _)| id)
                    .collect(),
                &mut rng,
            );
            let pending = pick(
                model
                    .keys
                    .iter()
                    .filter(|(_, k)| !k.usable() && !k.importing)
                    .map(|(id, _)| id)
                    .collect(),
                &mut rng,
            );
            let ciphertext = (!model.ciphertexts.is_empty())
                .then(|| model.ciphertexts[rng.below(model.ciphertexts.len())].clone());
            (usable, rotatable, pending, ciphertext)
        };
        let choice = rng.below(100);
        match choice {
            0..15 if shared.take_budget() => create_key(shared, api, false),
            15..25 if shared.take_budget() => create_key(shared, api, true),
            25..35 => {
                // Import into a key still waiting for its material.
                let Some(key) = pending else { continue };
                let mut file = shared.scratch.join(format!("material-{index}-{n}.bin"));
                std::fs::write(&file, rng.bytes(32)).unwrap();
                {
                    let mut model = shared.model.lock().unwrap();
                    let known = model.keys.get_mut(&key).unwrap();
                    if known.importing {
                        continue;
                    }
                    known.importing = true;
                    // An unacknowledged import may have happened: later imports into
                    // this key use the same material.
                    file = known.material.clone().unwrap_or(file);
                    known.material = Some(file.clone());
                }
                let outcome = cli.import(&key, &file);
                let acknowledged = shared.note("ImportKeyMaterial", outcome).is_some();
                let mut model = shared.model.lock().unwrap();
                let known = model.keys.get_mut(&key).unwrap();
                known.imported |= acknowledged;
                known.importing = false;
            }
            35..47 => {
                let Some(key) = rotatable else { continue };
                if !shared.take_budget() {
                    continue;
                }
                let outcome = api.call("CreateKeyVersion", &[("KeyId", &key)]);
                if let Some(answer) = shared.note("CreateKeyVersion", outcome) {
                    let version = answer["KeyVersion"]["KeyVersionId"].as_str().unwrap();
                    let mut model = shared.model.lock().unwrap();
                    model
                        .keys
                        .get_mut(&key)
                        .unwrap()
                        .rotations
                        .push(version.to_owned());
                }
            }
            47..80 => {
                let Some(key) = usable else { continue };
                let plaintext = format!("worker {index} call {n} {}", rng.next());
                let outcome = api.call("Encrypt", &[("KeyId", &key), ("Plaintext", &plaintext)]);
                if let Some(answer) = shared.note("Encrypt", outcome) {
                    let blob = answer["CiphertextBlob"].as_str().unwrap().to_owned();
                    let mut model = shared.model.lock().unwrap();
                    model.ciphertexts.push((key, plaintext, blob));
                }
            }
            80..100 => {
                let Some((key, plaintext, blob)) = ciphertext else {
                    continue;
                };
                let outcome = api.call("Decrypt", &[("CiphertextBlob", &blob)]);
                if let Some(answer) = shared.note("Decrypt", outcome) {
                    assert_eq!(answer["Plaintext"], plaintext.as_str(), "{answer}");
                    assert_eq!(answer["KeyId"], key.as_str(), "{answer}");
                }
            }
            _ => continue,
        }
        std::thread::sleep(rng.millis(5, 40));
    }
}

/// Encrypts and decrypts one message with `key`.
fn round_trip(api: &Api, key: &str) {
    let plaintext = format!("after the crashes, {key}");
    let encrypted = api.ok("Encrypt", &[("KeyId", key), ("Plaintext", &plaintext)]);
    let blob = encrypted["CiphertextBlob"].as_str().unwrap();
    let decrypted = api.ok("Decrypt", &[("CiphertextBlob", blob)]);
    assert_eq!(decrypted["Plaintext"], plaintext.as_str(), "{key}");
}

/// Every key of the instance.
fn listed_keys(api: &Api, instance: &str) -> Vec<String> {
    let filters = format!(r#"[{{"Key":"DKMSInstanceId","Values":["{instance}"]}}]"#);
    let mut keys = Vec::new();
    for page in 1.. {
        let page_number = page.to_string();
        let answer = api.ok(
            "ListKeys",
            &[
                ("Filters", &filters),
                ("PageSize", "100"),
                ("PageNumber", &page_number),
            ],
        );
        let listed = answer["Keys"]["Key"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        keys.extend(
            listed
                .iter()
                .map(|k| k["KeyId"].as_str().unwrap().to_owned()),
        );
        let total = usize::try_from(answer["TotalCount"].as_u64().unwrap()).unwrap();
        if listed.is_empty() || keys.len() >= total {
            break;
        }
    }
    keys
}

#[test]
fn kill_9_of_the_kms_node_and_of_hsm_nodes_loses_nothing_acknowledged() {
    let seed = seed();
    eprintln!("crash test seed {seed} (STRONGROOM_CRASH_SEED={seed} to replay the draws)");
    let started = Instant::now();
    let mut rng = Rng(seed);
    let scratch = tempfile::tempdir().unwrap();
    let mut cluster = HsmCluster::start(scratch.path());
    let mut kms = Kms::start(&[], None);
    let instance = kms.connected_instance(&cluster);
    let setup = started.elapsed();

    let shared = Arc::new(Shared {
        model: Mutex::new(Model::default()),
        stop: AtomicBool::new(false),
        phase: AtomicUsize::new(0),
        budget: AtomicUsize::new(0),
        instance: instance.clone(),
        scratch: scratch.path().to_owned(),
    });
    let cli = Cli::new(&kms);
    let mut workers = Vec::new();
    for index in 0..WORKERS {
        let shared = Arc::clone(&shared);
        let api = Api::new(&kms);
        let cli = cli.clone();
        let rng = Rng(seed ^ (index + 1).wrapping_mul(0xA076_1D64_78BD_642F));
        workers.push(std::thread::spawn(move || {
            worker(&shared, &api, &cli, rng, index);
        }));
    }

    // The KMS node, killed at random moments and started again on its data directory.
    // Every other kill lands a few milliseconds after a CreateKey of its own was sent,
    // so that some creations are cut at every stage (before, during or after the HSM
    // call and the store's transaction).
    let mut kms_downtime = Vec::new();
    for round in 0..KMS_KILLS {
        std::thread::sleep(rng.millis(300, 1300));
        let racing = (round % 2 == 1).then(|| {
            let shared = Arc::clone(&shared);
            let api = Api::new(&kms);
            let external = rng.below(2) == 0;
            let racing = std::thread::spawn(move || create_key(&shared, &api, external));
            std::thread::sleep(rng.millis(1, 30));
            racing
        });
        let down = Instant::now();
        kms.restart();
        kms_downtime.push(down.elapsed());
        if let Some(racing) = racing {
            racing.join().unwrap();
        }
    }
    // One HSM node at a time, killed, restarted sealed after a while, then unsealed.
    std::thread::sleep(Duration::from_millis(500));
    shared.phase.store(1, Ordering::Relaxed);
    let mut hsm_kills = Vec::new();
    for _ in 0..HSM_KILLS {
        std::thread::sleep(rng.millis(300, 1200));
        let index = rng.below(2);
        let node = &mut cluster.nodes[index];
        let down = Instant::now();
        node.kill9();
        std::thread::sleep(rng.millis(50, 500));
        node.restart_sealed();
        std::thread::sleep(rng.millis(50, 400));
        node.unseal();
        hsm_kills.push((index, down.elapsed()));
    }
    shared.phase.store(2, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(500));
    shared.stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().unwrap();
    }
    let load_done = started.elapsed();

    let model = std::mem::take(&mut *shared.model.lock().unwrap());
    eprintln!(
        "setup {setup:.1?}; KMS restarts took {kms_downtime:.2?}; HSM kills (node, down) \
         {hsm_kills:.2?}"
    );
    eprintln!(
        "acknowledged {:?}; lost (no answer) {:?}; refused {:?}",
        model.acknowledged, model.lost, model.refused
    );
    assert!(
        model.acknowledged.get("CreateKey").copied().unwrap_or(0) > 0
            && model.acknowledged.get("Encrypt").copied().unwrap_or(0) > 0,
        "the load ran: {:?}",
        model.acknowledged
    );

    // With everything running: what was acknowledged is there and works.
    let api = Api::new(&kms);
    let listed = listed_keys(&api, &instance);
    let listed_set: BTreeSet<&String> = listed.iter().collect();
    for key in model.keys.keys() {
        assert!(
            listed_set.contains(key),
            "acknowledged key {key} is not listed"
        );
    }
    let mut unacknowledged_keys = 0;
    let mut imported_at_the_end = 0;
    for key in &listed {
        let known = model.keys.get(key);
        if known.is_none() {
            unacknowledged_keys += 1;
        }
        let described = api.ok("DescribeKey", &[("KeyId", key)]);
        let metadata = &described["KeyMetadata"];
        let state = metadata["KeyState"].as_str().unwrap();
        let external = metadata["Origin"] == "EXTERNAL";
        let versions: Vec<String> = api.ok("ListKeyVersions", &[("KeyId", key), ("PageSize", "100")])
            ["KeyVersions"]["KeyVersion"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["KeyVersionId"].as_str().unwrap().to_owned())
            .collect();
        assert!(!versions.is_empty(), "{key} has no version: {described}");
        let primary = metadata["PrimaryKeyVersion"].as_str().unwrap_or_default();
        assert!(
            versions.iter().any(|v| v == primary),
            "{key}: the primary version {primary} is not among {versions:?}"
        );
        if let Some(known) = known {
            assert_eq!(known.external, external, "{key}: {described}");
            for version in &known.rotations {
                assert!(
                    versions.contains(version),
                    "{key}: the acknowledged rotation {version} is lost ({versions:?})"
                );
            }
            if known.usable() {
                assert_eq!(state, "Enabled", "{key}: {described}");
            }
        }
        match state {
            "Enabled" => round_trip(&api, key),
            "PendingImport" => {
                // Only an EXTERNAL key may lack material; it must take material and work.
                assert!(
                    external,
                    "{key} is PendingImport but not EXTERNAL: {described}"
                );
                assert!(known.is_none_or(|k| !k.imported), "{key}: {described}");
                let material = known.and_then(|k| k.material.clone()).unwrap_or_else(|| {
                    let file = scratch.path().join(format!("material-final-{key}.bin"));
                    std::fs::write(&file, rng.bytes(32)).unwrap();
                    file
                });
                let out = cli.run(&[
                    "key",
                    "import",
                    key,
                    "--material",
                    material.to_str().unwrap(),
                ]);
                assert!(
                    out.status.success(),
                    "{key}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                imported_at_the_end += 1;
                round_trip(&api, key);
            }
            other => panic!("{key} is {other}: {described}"),
        }
    }
    for (key, plaintext, blob) in &model.ciphertexts {
        let decrypted = api.ok("Decrypt", &[("CiphertextBlob", blob)]);
        assert_eq!(decrypted["Plaintext"], plaintext.as_str(), "{key}");
        assert_eq!(decrypted["KeyId"], key.as_str());
    }

    // The audit log verifies, cut lines and all (give the writer a moment to flush).
    std::thread::sleep(Duration::from_millis(300));
    let audit_file = kms.data.join("audit.log");
    let verified = strongroom()
        .args(["audit", "verify"])
        .arg(&audit_file)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verified.stdout).into_owned();
    assert!(
        verified.status.success(),
        "audit verify: {said}{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let audit = std::fs::read_to_string(&audit_file).unwrap();
    let audited: BTreeSet<String> = audit
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|line| line["request_id"].as_str().map(str::to_owned))
        .collect();
    let unaudited = model
        .request_ids
        .iter()
        .filter(|id| !audited.contains(*id))
        .count();
    eprintln!(
        "{} keys listed ({} acknowledged, {unacknowledged_keys} from unacknowledged \
         calls, {imported_at_the_end} imported at the end), {} ciphertexts checked; {}; \
         {unaudited} of {} acknowledged calls have no audit line (written after the \
         answer, lost with the process); load {load_done:.1?}, total {:.1?}",
        listed.len(),
        model.keys.len(),
        model.ciphertexts.len(),
        said.trim(),
        model.request_ids.len(),
        started.elapsed()
    );
    // Every call either succeeded or got no answer: an HSM node going away is failed
    // over, and a KMS node that restarts answers again. (Two workers rotating one key
    // at once may be told `Rejected.ResourceInUse`: contention, not a crash.)
    let refused: Vec<_> = model
        .refused
        .iter()
        .filter(|((_, what), _)| !what.ends_with("Rejected.ResourceInUse"))
        .collect();
    assert!(refused.is_empty(), "error answers: {refused:?}");
}

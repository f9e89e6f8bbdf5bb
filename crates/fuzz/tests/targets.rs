//! Every fuzz target: its seeds exist, are valid inputs that reach the decoders' success
//! paths, do not panic, and a short bounded fuzzing run finds nothing. `scripts/fuzz.sh`
//! runs the same targets for longer.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: an unexpected error should fail the test loudly"
)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use strongroom_certs::client_key;
use strongroom_certs::password::Password;
use strongroom_certs::pkcs12;
use strongroom_certs::pki;
use strongroom_fuzz::runner::{self, Options};
use strongroom_fuzz::{TARGETS, target};
use strongroom_proto::hsm::{self, DEFAULT_MAX_FRAME_LEN, Request, Response};
use strongroom_proto::instance;
use strongroom_proto::openapi::{self, RequestView};
use strongroom_proto::signature::ClientPublicKey;

/// The fixture's password (the captured client key's).
const PASSWORD: &str = "364189137fa72dcdb06b44205cd99baa";

fn seeds(name: &str) -> Vec<Vec<u8>> {
    let seeds = (target(name).unwrap().seeds)();
    assert!(!seeds.is_empty(), "{name} has no seeds");
    seeds
}

/// Header lines and body of a request seed.
fn split(seed: &[u8]) -> (Vec<(String, String)>, Vec<u8>) {
    let at = seed.windows(2).position(|w| w == b"\n\n").unwrap();
    let head = std::str::from_utf8(&seed[..at]).unwrap();
    let headers = head
        .lines()
        .map(|line| {
            let (n, v) = line.split_once(':').unwrap();
            (n.to_owned(), v.strip_prefix(' ').unwrap_or(v).to_owned())
        })
        .collect();
    (headers, seed[at + 2..].to_vec())
}

#[test]
fn every_target_accepts_its_seeds() {
    assert_eq!(TARGETS.len(), 6);
    for target in TARGETS {
        let seeds = (target.seeds)();
        assert!(!seeds.is_empty(), "{} has no seeds", target.name);
        for seed in &seeds {
            if let Some(finding) = runner::run_one(target, seed) {
                panic!("{}: a seed fails: {finding}", target.name);
            }
        }
    }
}

/// The captured client key's verifying key, when the vectors are present.
fn vector_client_key() -> Option<ClientPublicKey> {
    let dir = std::env::var_os("STRONGROOM_FUZZ_VECTORS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/dkms-sdk"),
        PathBuf::from,
    );
    let pem = std::fs::read(dir.join("pki/client.cert.pem")).ok()?;
    let certificate = pki::certificates_from_pem(&pem).unwrap().remove(0);
    let spki = pki::certificate_public_key(&certificate).unwrap();
    Some(ClientPublicKey::from_spki_der(&spki).unwrap())
}

#[test]
fn instance_seeds_pass_the_front_door() {
    let key = vector_client_key();
    for seed in seeds("instance_request") {
        let (headers, body) = split(&seed);
        let parsed = instance::parse_headers(
            headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())),
            &body,
            None,
        )
        .unwrap();
        instance::decode_body(parsed.api(), &body).unwrap();
        assert!(parsed.authorization().starts_with("Bearer "));
        if let Some(key) = &key {
            key.verify(parsed.string_to_sign(), parsed.authorization())
                .unwrap();
        }
    }
}

#[test]
fn management_seeds_parse() {
    for seed in seeds("management_request") {
        let at = seed.iter().position(|b| *b == b'\n').unwrap();
        let line = std::str::from_utf8(&seed[..at]).unwrap();
        let (method, target) = line.split_once(' ').unwrap();
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let (headers, body) = split(&seed[at + 1..]);
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let view = RequestView {
            method,
            path,
            query,
            headers: &headers,
            body: &body,
        };
        openapi::parse(&view).unwrap();
    }
}

#[test]
fn hsm_seeds_are_frames() {
    for seed in seeds("hsm_frame") {
        let mut rest = &seed[..];
        while !rest.is_empty() {
            let len = hsm::body_len(rest[..4].try_into().unwrap(), DEFAULT_MAX_FRAME_LEN).unwrap();
            let body = &rest[4..4 + len];
            assert!(
                hsm::decode_body::<Request>(body).is_ok()
                    || hsm::decode_body::<Response>(body).is_ok()
            );
            rest = &rest[4 + len..];
        }
    }
}

#[test]
fn certificate_seeds_open() {
    let password = Password::new(PASSWORD.to_owned());
    let p12s = seeds("pkcs12");
    // With and without a MAC, from the vectors (when present) and made in code.
    assert!(p12s.len() >= 4);
    for p12 in &p12s {
        pkcs12::read(p12, &password).unwrap();
    }
    for file in seeds("client_key_file") {
        client_key::load(std::str::from_utf8(&file).unwrap(), &password).unwrap();
    }
    let pems = seeds("pem");
    assert!(
        pems.iter()
            .any(|pem| !pki::certificates_from_pem(pem).unwrap().is_empty())
    );
}

#[test]
fn a_short_fuzzing_run_of_every_target_finds_nothing() {
    for target in TARGETS {
        let options = Options {
            duration: Some(Duration::from_secs(1)),
            max_execs: Some(400),
            seed: 0x5eed,
            crash_dir: None,
            ..Options::default()
        };
        let report = runner::run(target, &options).unwrap();
        assert!(report.execs > 0, "{} ran nothing", target.name);
        if let Some(finding) = &report.finding {
            panic!("{}: {finding}", target.name);
        }
    }
}

#[test]
fn a_panic_is_caught_and_its_input_saved() {
    fn explode(data: &[u8]) {
        assert!(!data.starts_with(b"boom"), "boom");
    }
    fn boom_seeds() -> Vec<Vec<u8>> {
        vec![b"quiet".to_vec(), b"boom".to_vec()]
    }
    static EXPLODING: strongroom_fuzz::Target = strongroom_fuzz::Target {
        name: "exploding",
        about: "panics on inputs starting with boom",
        run: explode,
        seeds: boom_seeds,
        dictionary: &[],
        shape: strongroom_fuzz::Shape::Binary,
    };
    let dir = std::env::temp_dir().join(format!("strongroom-fuzz-test-{}", std::process::id()));
    let options = Options {
        duration: Some(Duration::from_secs(5)),
        max_execs: Some(10),
        crash_dir: Some(dir.clone()),
        ..Options::default()
    };
    let report = runner::run(&EXPLODING, &options).unwrap();
    let finding = report.finding.unwrap();
    assert_eq!(finding.kind(), "panic");
    assert_eq!(finding.input(), b"boom");
    let saved = report.saved.unwrap();
    assert_eq!(std::fs::read(&saved).unwrap(), b"boom");
    assert!(saved.starts_with(dir.join("exploding")));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_slow_input_is_reported_as_a_hang() {
    fn slow(data: &[u8]) {
        if data == b"slow" {
            std::thread::sleep(Duration::from_millis(600));
        }
    }
    fn slow_seeds() -> Vec<Vec<u8>> {
        vec![b"slow".to_vec()]
    }
    static SLOW: strongroom_fuzz::Target = strongroom_fuzz::Target {
        name: "slow",
        about: "sleeps on one input",
        run: slow,
        seeds: slow_seeds,
        dictionary: &[],
        shape: strongroom_fuzz::Shape::Binary,
    };
    let options = Options {
        duration: Some(Duration::from_secs(5)),
        max_execs: Some(1),
        timeout: Duration::from_millis(100),
        crash_dir: None,
        ..Options::default()
    };
    let report = runner::run(&SLOW, &options).unwrap();
    let finding = report.finding.unwrap();
    assert_eq!(finding.kind(), "hang");
    assert_eq!(finding.input(), b"slow");
}

//! `strongroom bench instance` against an in-process HTTPS server that checks every
//! request as a real instance endpoint does: the headers and body digest
//! (`parse_headers`, with the clock), the client key's signature, and the body.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::as_conversions,
    missing_docs,
    reason = "tests"
)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use strongroom_bench::error::BenchError;
use strongroom_bench::instance::{InstanceApi, InstanceBench, InstanceReport, Options};
use strongroom_certs::client_key;
use strongroom_certs::instance_ca;
use strongroom_certs::password::Password;
use strongroom_certs::pki::{self, ServerNames};
use strongroom_certs::tls;
use strongroom_proto::dkms;
use strongroom_proto::instance::{
    ApiName, Body, InstanceError, decode_body, encode, parse_headers,
};
use strongroom_proto::signature::ClientPublicKey;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const INSTANCE: &str = "kst-bench-test";
const POOL: usize = 300;

/// How the server answers valid requests.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    Happy,
    /// Every third request gets `429 Rejected.Throttling`.
    ThrottleEveryThird,
}

/// What the server saw.
#[derive(Default)]
struct Seen {
    requests: AtomicU64,
    /// Why requests were refused as invalid (must stay empty).
    invalid: Mutex<Vec<String>>,
    /// Every body, by API, with how often it came.
    bodies: Mutex<HashMap<ApiName, HashMap<Vec<u8>, u64>>>,
}

impl Seen {
    fn invalid(&self) -> Vec<String> {
        self.invalid.lock().unwrap().clone()
    }

    /// (requests, distinct bodies) of `api`.
    fn counts(&self, api: ApiName) -> (u64, usize) {
        let bodies = self.bodies.lock().unwrap();
        bodies
            .get(&api)
            .map_or((0, 0), |b| (b.values().sum(), b.len()))
    }
}

struct State {
    public_key: ClientPublicKey,
    key_id: String,
    host: String,
    behaviour: Behaviour,
    seen: Arc<Seen>,
}

struct Fixture {
    _dir: tempfile::TempDir,
    endpoint: String,
    ca_file: PathBuf,
    key_file: PathBuf,
    password_file: PathBuf,
    seen: Arc<Seen>,
}

impl Fixture {
    async fn start(behaviour: Behaviour) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let password = Password::generate().unwrap();
        let (not_before, not_after) = client_key::default_validity();
        let key = client_key::generate(INSTANCE, &password, not_before, not_after).unwrap();
        let files = client_key::write_files(dir.path(), &key, &password).unwrap();
        let spki = pki::certificate_public_key(&key.certificate).unwrap();
        let public_key = ClientPublicKey::from_spki_der(&spki).unwrap();

        let instance = instance_ca::create(INSTANCE, &ServerNames::default()).unwrap();
        let ca_file = dir.path().join("PrivateKmsCA.pem");
        std::fs::write(&ca_file, instance.ca.bundle_pem()).unwrap();
        let config =
            tls::https_server_config(instance.server.chain.clone(), &instance.server.private_key)
                .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());

        let seen = Arc::new(Seen::default());
        let state = Arc::new(State {
            public_key,
            key_id: key.key_id.clone(),
            host: endpoint.clone(),
            behaviour,
            seen: Arc::clone(&seen),
        });
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let state = Arc::clone(&state);
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = service_fn(move |request| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(answer(&state, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Self {
            _dir: dir,
            endpoint,
            ca_file,
            key_file: files.key_file,
            password_file: files.password_file,
            seen,
        }
    }

    fn options(&self, api: InstanceApi) -> Options {
        let mut options = Options::new(
            &self.endpoint,
            &self.ca_file,
            &self.key_file,
            &self.password_file,
            api,
        );
        options.key_id = (!matches!(api, InstanceApi::GenerateRandom | InstanceApi::Hash))
            .then(|| "alias/bench".to_owned());
        options.requests = POOL;
        options.connections = 4;
        options.warmup_seconds = 0.2;
        options.seconds = 1.0;
        options
    }
}

/// Checks one request as an instance endpoint does, then answers it.
async fn answer(state: &State, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let seen = &state.seen;
    let number = seen.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return refuse(
                state,
                format!("body: {e}"),
                InstanceError::invalid_parameter(),
            );
        }
    };
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()));
    let parsed = match parse_headers(headers, &body, Some(OffsetDateTime::now_utc())) {
        Ok(parsed) => parsed,
        Err(e) => return refuse(state, format!("headers: {}", e.code()), e),
    };
    if parts.uri != "/" || parts.method != hyper::Method::POST {
        return refuse(
            state,
            "not POST /".to_owned(),
            InstanceError::invalid_parameter(),
        );
    }
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    if header("host") != Some(state.host.as_str())
        || header("accept") != Some("application/x-protobuf")
    {
        return refuse(
            state,
            "host or accept".to_owned(),
            InstanceError::invalid_parameter(),
        );
    }
    if parsed.access_key_id() != state.key_id {
        return refuse(
            state,
            "client key id".to_owned(),
            InstanceError::unauthorized(parsed.access_key_id()),
        );
    }
    if let Err(e) = state
        .public_key
        .verify(parsed.string_to_sign(), parsed.authorization())
    {
        return refuse(
            state,
            format!("signature: {e}"),
            InstanceError::signature_not_match(),
        );
    }
    let decoded = match decode_body(parsed.api(), &body) {
        Ok(decoded) => decoded,
        Err(e) => return refuse(state, "body does not decode".to_owned(), e),
    };
    *seen
        .bodies
        .lock()
        .unwrap()
        .entry(parsed.api())
        .or_default()
        .entry(body.to_vec())
        .or_default() += 1;

    if matches!(state.behaviour, Behaviour::ThrottleEveryThird) && number.is_multiple_of(3) {
        return error(&InstanceError::throttling());
    }
    let answer = match decoded {
        Body::Encrypt(r) => encode(&dkms::EncryptResponse {
            key_id: "key-bench".to_owned(),
            ciphertext_blob: [b"ct:".as_slice(), &r.plaintext].concat(),
            iv: vec![0; 12],
            algorithm: "AES_GCM".to_owned(),
            ..dkms::EncryptResponse::default()
        }),
        Body::Decrypt(r) => match r.ciphertext_blob.strip_prefix(b"ct:") {
            Some(plaintext) if r.iv == [0; 12] && r.algorithm == "AES_GCM" => {
                encode(&dkms::DecryptResponse {
                    key_id: "key-bench".to_owned(),
                    plaintext: plaintext.to_vec(),
                    ..dkms::DecryptResponse::default()
                })
            }
            _ => {
                return refuse(
                    state,
                    "a ciphertext this server did not make".to_owned(),
                    InstanceError::invalid_parameter(),
                );
            }
        },
        Body::GenerateRandom(r) => encode(&dkms::GenerateRandomResponse {
            random: vec![7; usize::try_from(r.length).unwrap()],
            ..dkms::GenerateRandomResponse::default()
        }),
        _ => return error(&InstanceError::unsupported_operation()),
    };
    Response::new(Full::new(Bytes::from(answer)))
}

fn refuse(state: &State, why: String, error_answer: InstanceError) -> Response<Full<Bytes>> {
    state.seen.invalid.lock().unwrap().push(why);
    error(&error_answer)
}

fn error(error: &InstanceError) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(error.encode_error("request-id"))));
    *response.status_mut() = StatusCode::from_u16(error.status()).unwrap();
    response
}

fn assert_sane(report: &InstanceReport) {
    assert!(report.requests > 0, "{report:?}");
    assert_eq!(
        report.requests,
        report.ok + report.errors.values().sum::<u64>()
    );
    let latency = report.latency_ms.unwrap();
    assert!(
        latency.p50 <= latency.p99 && latency.p99 <= latency.max,
        "{latency:?}"
    );
    assert!(latency.mean > 0.0 && latency.mean <= latency.max);
    assert!(report.requests_per_second > 0.0);
    assert_eq!(report.pool_requests, POOL);
    assert!(report.signatures_per_second > 0.0);

    let json: serde_json::Value = serde_json::from_str(&report.json().unwrap()).unwrap();
    for field in [
        "endpoint",
        "api",
        "connections",
        "pool_requests",
        "distinct_bodies",
        "seconds",
        "requests",
        "ok",
        "errors",
        "requests_per_second",
        "ok_per_second",
        "other_load_percent",
    ] {
        assert!(json.get(field).is_some(), "JSON lacks {field}: {json}");
    }
    for field in ["samples", "mean", "p50", "p99", "max"] {
        assert!(
            json["latency_ms"].get(field).is_some(),
            "latency lacks {field}"
        );
    }
    assert_eq!(json["requests"], report.requests);
    let text = report.text();
    assert!(text.contains(report.api) && text.contains("p99"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypt_load_is_signed_distinct_and_error_free() {
    let fixture = Fixture::start(Behaviour::Happy).await;
    let bench = InstanceBench::new(fixture.options(InstanceApi::Encrypt)).unwrap();
    let report = bench.run().await.unwrap();
    println!("{}", report.text());

    assert_eq!(fixture.seen.invalid(), Vec::<String>::new());
    assert_sane(&report);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.ok, report.requests);
    assert_eq!(report.distinct_bodies, POOL);
    assert_eq!(report.material_requests, 0);
    // The pool is sent in order from its start, so the server saw every body of it
    // once before any came again.
    let (seen, distinct) = fixture.seen.counts(ApiName::Encrypt);
    assert!(seen >= report.requests);
    assert_eq!(distinct, usize::try_from(seen).unwrap().min(POOL));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decrypt_load_uses_material_made_through_the_endpoint() {
    let fixture = Fixture::start(Behaviour::Happy).await;
    let mut options = fixture.options(InstanceApi::Decrypt);
    // The certificate's DNS name, while connecting to 127.0.0.1.
    options.server_name = Some("localhost".to_owned());
    let report = InstanceBench::new(options).unwrap().run().await.unwrap();

    assert_eq!(fixture.seen.invalid(), Vec::<String>::new());
    assert_sane(&report);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.material_requests, POOL);
    assert_eq!(report.distinct_bodies, POOL);
    assert_eq!(fixture.seen.counts(ApiName::Encrypt), (POOL as u64, POOL));
    let (seen, distinct) = fixture.seen.counts(ApiName::Decrypt);
    assert!(seen >= report.requests);
    assert_eq!(distinct, usize::try_from(seen).unwrap().min(POOL));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_are_counted_by_code() {
    let fixture = Fixture::start(Behaviour::ThrottleEveryThird).await;
    let report = InstanceBench::new(fixture.options(InstanceApi::GenerateRandom))
        .unwrap()
        .run()
        .await
        .unwrap();
    println!("{}", report.text());

    assert_eq!(fixture.seen.invalid(), Vec::<String>::new());
    assert_sane(&report);
    let throttled = report
        .errors
        .get("Rejected.Throttling")
        .copied()
        .unwrap_or(0);
    assert!(throttled > 0, "{:?}", report.errors);
    assert!(report.ok > 0);
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    // GenerateRandom has nothing to vary but its length: the pool repeats one body.
    assert_eq!(report.distinct_bodies, 1);
    let json: serde_json::Value = serde_json::from_str(&report.json().unwrap()).unwrap();
    assert_eq!(json["errors"]["Rejected.Throttling"], throttled);
    assert!(report.text().contains("Rejected.Throttling"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_cannot_start_is_a_setup_error() {
    let fixture = Fixture::start(Behaviour::Happy).await;

    // A wrong password.
    let wrong = fixture._dir.path().join("wrong-password.txt");
    std::fs::write(&wrong, "0123456789abcdef0123456789abcdef\n").unwrap();
    let mut options = fixture.options(InstanceApi::Encrypt);
    options.password_file = wrong;
    let err = InstanceBench::new(options)
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert!(matches!(err, BenchError::Setup(_)), "{err:?}");
    assert!(!err.is_usage());

    // A CA that did not issue the server's certificate.
    let other = instance_ca::create("kst-other", &ServerNames::default()).unwrap();
    let other_ca = fixture._dir.path().join("other.pem");
    std::fs::write(&other_ca, other.ca.bundle_pem()).unwrap();
    let mut options = fixture.options(InstanceApi::Encrypt);
    options.ca_file = other_ca;
    let err = InstanceBench::new(options)
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, BenchError::Setup(m) if m.contains("TLS")),
        "{err:?}"
    );

    // A name the certificate does not carry.
    let mut options = fixture.options(InstanceApi::Encrypt);
    options.server_name = Some("elsewhere.example".to_owned());
    let err = InstanceBench::new(options)
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert!(matches!(err, BenchError::Setup(_)), "{err:?}");

    // Nothing listening.
    let mut options = fixture.options(InstanceApi::Encrypt);
    options.endpoint = "127.0.0.1:1".to_owned();
    let err = InstanceBench::new(options)
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert!(matches!(err, BenchError::Setup(_)), "{err:?}");

    // A material request the server refuses stops the preparation.
    let mut options = fixture.options(InstanceApi::Verify);
    options.seconds = 0.5;
    let err = InstanceBench::new(options)
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, BenchError::Preparation(m) if m.contains("UnsupportedOperation")),
        "{err:?}"
    );
    assert!(fixture.seen.invalid().is_empty());
}

//! `strongroom bench instance`: load on a deployment's instance API, spoken exactly as
//! the official SDKs speak it (`spec/instance-api.md` §2–§4): HTTPS `POST /` with a
//! protobuf body, the SDKs' headers, and an RSA-PKCS1-SHA256 signature by a client key.
//!
//! How a run goes:
//!
//! 1. **Set-up** (untimed): read the client key and its password, build the TLS client
//!    (every certificate of `--ca-file` is a root, as in the Python SDK; the host name is
//!    checked against `--server-name` or the endpoint's host), and open one connection
//!    so that a wrong endpoint or CA fails before anything else.
//! 2. **Preparation** (untimed): build `--requests` distinct request bodies and sign
//!    them on every core, so that client-side RSA signing is not what is measured.
//!    Decrypt, Verify and AdvanceDecrypt first need material from the server itself: one
//!    Encrypt, Sign or AdvanceEncrypt per pool entry is signed and sent through the same
//!    endpoint (refused ones are retried like the SDKs do for `Rejected.Throttling`,
//!    `ServiceUnavailableTemporary` and transport errors; any other error stops the run).
//!    The `date` of a request is the moment it was signed, and the server accepts it for
//!    15 minutes: a run whose pool signing, warm-up and timed window together would take
//!    longer than [`MAX_DATE_AGE`] is refused (before the load, after the signing).
//! 3. **Warm-up and timed window**: `--connections` keep-alive HTTP/1.1 connections, each
//!    sending the next request of the pool (cycling through it) as soon as the previous
//!    one is answered. Requests that finish during the warm-up are discarded; those that
//!    finish inside the timed window are counted, with their latency (send to answer
//!    fully read, microseconds, exact percentiles over all of them). A connection that
//!    fails is reopened.
//!
//! What the bodies vary (so that a server cannot answer from a cache): Encrypt,
//! AdvanceEncrypt, Sign, Hash carry a counter in the first bytes of the plaintext or
//! message (distinct for `--payload-bytes` of 3 or more); GenerateDataKey and
//! AdvanceGenerateDataKey carry it as `Aad`; Decrypt, Verify and AdvanceDecrypt carry
//! distinct ciphertexts or signatures. GenerateRandom (only `Length`) and GetPublicKey
//! (only `KeyId`) and GetSecretValue (only `SecretName`) have nothing to vary: their
//! pool repeats one body. The report says how
//! many distinct bodies the pool has.
//!
//! What it deliberately does not do: check the content of successful answers in the
//! timed window (only whether they are errors), retry in the timed window (every error is
//! counted), HTTP/2, or rate limiting (it sends as fast as the server answers).

mod body;
mod report;
mod run;
mod wire;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use strongroom_proto::instance::ApiName;

use crate::error::BenchError;

pub use report::{InstanceReport, Latency};

/// Default `--requests`: signed requests in the pool.
pub const DEFAULT_REQUESTS: usize = 20_000;
/// Default `--connections`.
pub const DEFAULT_CONNECTIONS: usize = 64;
/// Default `--payload-bytes`.
pub const DEFAULT_PAYLOAD_BYTES: usize = 32;
/// Default `--warmup-seconds`.
pub const DEFAULT_WARMUP_SECONDS: f64 = 2.0;
/// Default `--seconds`.
pub const DEFAULT_SECONDS: f64 = 10.0;
/// Largest `--requests`.
pub const MAX_REQUESTS: usize = 1_000_000;
/// Largest `--connections` (an endpoint of ours takes 1,024 per node).
pub const MAX_CONNECTIONS: usize = 4096;
/// Largest `--payload-bytes`: 1 MiB, well inside the 3 MiB body limit.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;
/// How old a signed `date` may be when its request is sent: the server allows 15
/// minutes of difference; one is kept for clock skew.
pub const MAX_DATE_AGE: Duration = Duration::from_secs(14 * 60);
/// How long one request may take before it counts as a `timeout` error (the Python
/// SDK's default read timeout).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// An instance-API operation the load generator can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InstanceApi {
    /// `Encrypt` of `--payload-bytes` of plaintext.
    Encrypt,
    /// `Decrypt` of ciphertexts made by `Encrypt` during preparation.
    Decrypt,
    /// `Sign` of a `--payload-bytes` message (`MessageType` `RAW`).
    Sign,
    /// `Verify` of signatures made by `Sign` during preparation.
    Verify,
    /// `GenerateRandom` of `--payload-bytes` bytes.
    GenerateRandom,
    /// `GenerateDataKey` of `--payload-bytes` bytes.
    GenerateDataKey,
    /// `GetPublicKey`.
    GetPublicKey,
    /// `AdvanceEncrypt` of `--payload-bytes` of plaintext.
    AdvanceEncrypt,
    /// `AdvanceDecrypt` of blobs made by `AdvanceEncrypt` during preparation.
    AdvanceDecrypt,
    /// `AdvanceGenerateDataKey` of `--payload-bytes` bytes.
    AdvanceGenerateDataKey,
    /// `Hash` of a `--payload-bytes` message.
    Hash,
    /// `GetSecretValue` of the secret named by `--secret-name` (its current version).
    GetSecretValue,
}

impl InstanceApi {
    /// Every API the load generator drives, in the order of the spec's table.
    pub const ALL: [Self; 12] = [
        Self::Encrypt,
        Self::Decrypt,
        Self::Sign,
        Self::Verify,
        Self::GenerateRandom,
        Self::GenerateDataKey,
        Self::GetPublicKey,
        Self::AdvanceEncrypt,
        Self::AdvanceDecrypt,
        Self::AdvanceGenerateDataKey,
        Self::Hash,
        Self::GetSecretValue,
    ];

    /// The API named `name` (the exact `x-kms-apiname` value), if it is one of
    /// [`ALL`](Self::ALL).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|api| api.as_str() == name)
    }

    /// The `x-kms-apiname` value.
    pub fn as_str(self) -> &'static str {
        self.api_name().as_str()
    }

    fn api_name(self) -> ApiName {
        match self {
            Self::Encrypt => ApiName::Encrypt,
            Self::Decrypt => ApiName::Decrypt,
            Self::Sign => ApiName::Sign,
            Self::Verify => ApiName::Verify,
            Self::GenerateRandom => ApiName::GenerateRandom,
            Self::GenerateDataKey => ApiName::GenerateDataKey,
            Self::GetPublicKey => ApiName::GetPublicKey,
            Self::AdvanceEncrypt => ApiName::AdvanceEncrypt,
            Self::AdvanceDecrypt => ApiName::AdvanceDecrypt,
            Self::AdvanceGenerateDataKey => ApiName::AdvanceGenerateDataKey,
            Self::Hash => ApiName::Hash,
            Self::GetSecretValue => ApiName::GetSecretValue,
        }
    }

    /// Whether the request names a key or, for `GetSecretValue`, a secret (`--key-id`
    /// or `--secret-name` required).
    fn needs_key(self) -> bool {
        !matches!(self, Self::GenerateRandom | Self::Hash)
    }

    /// Whether the request has an `Algorithm` field (`--algorithm` allowed).
    fn takes_algorithm(self) -> bool {
        !matches!(
            self,
            Self::GenerateRandom
                | Self::GetPublicKey
                | Self::AdvanceDecrypt
                | Self::AdvanceGenerateDataKey
                | Self::GetSecretValue
        )
    }

    /// The API whose answers are this one's material, if it needs any.
    fn material(self) -> Option<Self> {
        match self {
            Self::Decrypt => Some(Self::Encrypt),
            Self::Verify => Some(Self::Sign),
            Self::AdvanceDecrypt => Some(Self::AdvanceEncrypt),
            _ => None,
        }
    }
}

impl fmt::Display for InstanceApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to run against which endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The endpoint as the SDKs take it: `host` or `host:port` (443 when absent),
    /// `[v6]:port` for an IPv6 literal. Sent verbatim as the `host` header.
    pub endpoint: String,
    /// The instance CA file (PEM); every certificate in it is trusted as a root.
    pub ca_file: PathBuf,
    /// The name the server certificate must carry (default: the endpoint's host); an IP
    /// literal is checked against the certificate's IP addresses.
    pub server_name: Option<String>,
    /// The client key file (`clientKey_<KeyId>.json`).
    pub client_key_file: PathBuf,
    /// The client key's password file (`clientKey_<KeyId>_Password.txt`).
    pub password_file: PathBuf,
    /// The API to load.
    pub api: InstanceApi,
    /// Key id or alias (required except for GenerateRandom and Hash); for
    /// `GetSecretValue`, the secret's name.
    pub key_id: Option<String>,
    /// `Algorithm` to send (default: none, the server's default for the key).
    pub algorithm: Option<String>,
    /// Plaintext or message size; `Length` / `NumberOfBytes` for the generating APIs.
    pub payload_bytes: usize,
    /// Signed requests in the pool (each with its own body where the API allows).
    pub requests: usize,
    /// Keep-alive connections, each with one request in flight.
    pub connections: usize,
    /// Seconds of load before the timed window (results discarded).
    pub warmup_seconds: f64,
    /// Seconds of the timed window.
    pub seconds: f64,
}

impl Options {
    /// Options with every default, for `api` against `endpoint`.
    pub fn new(
        endpoint: impl Into<String>,
        ca_file: impl Into<PathBuf>,
        client_key_file: impl Into<PathBuf>,
        password_file: impl Into<PathBuf>,
        api: InstanceApi,
    ) -> Self {
        Self {
            endpoint: endpoint.into(),
            ca_file: ca_file.into(),
            server_name: None,
            client_key_file: client_key_file.into(),
            password_file: password_file.into(),
            api,
            key_id: None,
            algorithm: None,
            payload_bytes: DEFAULT_PAYLOAD_BYTES,
            requests: DEFAULT_REQUESTS,
            connections: DEFAULT_CONNECTIONS,
            warmup_seconds: DEFAULT_WARMUP_SECONDS,
            seconds: DEFAULT_SECONDS,
        }
    }
}

/// A validated load run.
#[derive(Debug)]
pub struct InstanceBench {
    options: Options,
    warmup: Duration,
    window: Duration,
}

impl InstanceBench {
    /// Validates `options`.
    ///
    /// # Errors
    /// [`BenchError::InvalidSeconds`] for `--seconds`, [`BenchError::InvalidOption`] for
    /// any other option out of range or not fitting the API (a missing `--key-id`, an
    /// `--algorithm` the request has no field for), or a warm-up and timed window longer
    /// than [`MAX_DATE_AGE`] together.
    pub fn new(options: Options) -> Result<Self, BenchError> {
        let max_seconds = MAX_DATE_AGE.as_secs_f64();
        let window = seconds(options.seconds)
            .filter(|window| *window <= MAX_DATE_AGE)
            .ok_or(BenchError::InvalidSeconds {
                value: options.seconds,
                max: max_seconds,
            })?;
        let warmup = match seconds(options.warmup_seconds) {
            Some(warmup) => warmup,
            None if options.warmup_seconds == 0.0 => Duration::ZERO,
            None => return Err(invalid("warmup-seconds", "must be 0 or more seconds")),
        };
        if warmup.saturating_add(window) > MAX_DATE_AGE {
            return Err(invalid(
                "seconds",
                format!(
                    "warm-up and timed window together must stay within {max_seconds} s: \
                     the signed dates would be too old for the server"
                ),
            ));
        }
        if !(1..=MAX_REQUESTS).contains(&options.requests) {
            return Err(invalid(
                "requests",
                format!("must be between 1 and {MAX_REQUESTS}"),
            ));
        }
        if !(1..=MAX_CONNECTIONS).contains(&options.connections) {
            return Err(invalid(
                "connections",
                format!("must be between 1 and {MAX_CONNECTIONS}"),
            ));
        }
        if !(1..=MAX_PAYLOAD_BYTES).contains(&options.payload_bytes) {
            return Err(invalid(
                "payload-bytes",
                format!("must be between 1 and {MAX_PAYLOAD_BYTES}"),
            ));
        }
        let api = options.api;
        match (&options.key_id, api.needs_key()) {
            (None, true) if api == InstanceApi::GetSecretValue => {
                return Err(invalid("secret-name", format!("{api} needs a secret")));
            }
            (None, true) => return Err(invalid("key-id", format!("{api} needs a key"))),
            (Some(id), true) if id.trim().is_empty() => {
                return Err(invalid("key-id", "must not be empty"));
            }
            (Some(_), false) => return Err(invalid("key-id", format!("{api} names no key"))),
            _ => {}
        }
        if options.algorithm.is_some() && !api.takes_algorithm() {
            return Err(invalid(
                "algorithm",
                format!("a {api} request has no Algorithm"),
            ));
        }
        if options.endpoint.contains("://") {
            return Err(invalid(
                "endpoint",
                "give a bare host or host:port, as in the SDKs' endpoint setting",
            ));
        }
        Ok(Self {
            options,
            warmup,
            window,
        })
    }

    /// The options this run was made with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Sets up, prepares and runs the load, then reports. Needs a Tokio runtime with
    /// the time and I/O drivers (a multi-threaded one, so that answers are read while
    /// other connections send).
    ///
    /// # Errors
    /// [`BenchError::Setup`] when the client key, the CA file or the endpoint cannot be
    /// used or the first connection fails; [`BenchError::Preparation`] when signing or
    /// making the material fails or takes too long. Errors answered during the timed
    /// window are not errors of the run: they are counted in the report.
    pub async fn run(&self) -> Result<InstanceReport, BenchError> {
        run::run(&self.options, self.warmup, self.window).await
    }
}

/// A positive, finite number of seconds as a duration.
fn seconds(value: f64) -> Option<Duration> {
    (value > 0.0)
        .then(|| Duration::try_from_secs_f64(value).ok())
        .flatten()
}

fn invalid(option: &'static str, reason: impl Into<String>) -> BenchError {
    BenchError::InvalidOption {
        option,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(api: InstanceApi) -> Options {
        let mut options = Options::new("127.0.0.1:18443", "ca.pem", "key.json", "pw.txt", api);
        options.key_id = api.needs_key().then(|| "alias/bench".to_owned());
        options
    }

    #[test]
    fn api_names_are_the_wire_names() {
        for api in InstanceApi::ALL {
            assert_eq!(InstanceApi::from_name(api.as_str()), Some(api));
            assert_eq!(api.to_string(), api.as_str());
        }
        assert_eq!(InstanceApi::from_name("encrypt"), None);
        assert_eq!(InstanceApi::from_name("Hmac"), None);
    }

    #[test]
    fn defaults_are_accepted_for_every_api() {
        for api in InstanceApi::ALL {
            let bench = InstanceBench::new(options(api)).unwrap();
            assert_eq!(bench.window, Duration::from_secs(10));
            assert_eq!(bench.warmup, Duration::from_secs(2));
        }
    }

    #[test]
    fn bad_options_are_usage_errors() {
        let cases: Vec<(Options, &str)> = vec![
            (
                Options {
                    key_id: None,
                    ..options(InstanceApi::Encrypt)
                },
                "key-id",
            ),
            (
                Options {
                    key_id: Some("k".into()),
                    ..options(InstanceApi::GenerateRandom)
                },
                "key-id",
            ),
            (
                Options {
                    algorithm: Some("AES_GCM".into()),
                    ..options(InstanceApi::GetPublicKey)
                },
                "algorithm",
            ),
            (
                Options {
                    requests: 0,
                    ..options(InstanceApi::Encrypt)
                },
                "requests",
            ),
            (
                Options {
                    connections: 0,
                    ..options(InstanceApi::Encrypt)
                },
                "connections",
            ),
            (
                Options {
                    payload_bytes: 0,
                    ..options(InstanceApi::Encrypt)
                },
                "payload-bytes",
            ),
            (
                Options {
                    warmup_seconds: -1.0,
                    ..options(InstanceApi::Encrypt)
                },
                "warmup-seconds",
            ),
            (
                Options {
                    seconds: 800.0,
                    warmup_seconds: 60.0,
                    ..options(InstanceApi::Encrypt)
                },
                "seconds",
            ),
            (
                Options {
                    endpoint: "https://localhost".into(),
                    ..options(InstanceApi::Encrypt)
                },
                "endpoint",
            ),
        ];
        for (options, expected) in cases {
            match InstanceBench::new(options) {
                Err(err @ BenchError::InvalidOption { option, .. }) => {
                    assert_eq!(option, expected);
                    assert!(err.is_usage());
                }
                other => panic!("{expected}: {other:?}"),
            }
        }
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 900.0] {
            let err = InstanceBench::new(Options {
                seconds: bad,
                ..options(InstanceApi::Encrypt)
            })
            .unwrap_err();
            assert!(matches!(err, BenchError::InvalidSeconds { .. }), "{bad}");
        }
        let no_warmup = InstanceBench::new(Options {
            warmup_seconds: 0.0,
            ..options(InstanceApi::Hash)
        })
        .unwrap();
        assert_eq!(no_warmup.warmup, Duration::ZERO);
    }
}

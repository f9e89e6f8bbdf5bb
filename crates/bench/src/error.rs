//! The one error type of the benchmarks.

use strongroom_crypto::error::CryptoError;

/// Why a benchmark could not run or could not be reported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// `--seconds` is not a positive, finite number of seconds within the limit.
    #[error("--seconds must be more than 0 and at most {max}, not {value}")]
    InvalidSeconds {
        /// What was given.
        value: f64,
        /// The largest accepted value.
        max: f64,
    },
    /// `--threads` is out of range.
    #[error("--threads must be between 1 and {max}, not {value}")]
    InvalidThreads {
        /// What was given.
        value: u32,
        /// The largest accepted value.
        max: u32,
    },
    /// `--in-flight` is empty or has a level out of range.
    #[error("--in-flight levels must be between 1 and {max}, not {value}")]
    InvalidInFlight {
        /// The offending level (0 when none was given).
        value: u32,
        /// The largest accepted level.
        max: u32,
    },
    /// An option of `strongroom bench instance` is out of range or does not fit the
    /// chosen API.
    #[error("--{option}: {reason}")]
    InvalidOption {
        /// The option's name, without the leading `--`.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The instance-API run cannot start: a client key, password or CA file that cannot
    /// be read or used, a bad endpoint, no connection or TLS handshake, no runtime.
    #[error("cannot set up the instance-API run: {0}")]
    Setup(String),
    /// The untimed preparation of the instance-API run failed: signing, or a request
    /// that makes the timed requests' material (Encrypt for Decrypt, Sign for Verify,
    /// AdvanceEncrypt for AdvanceDecrypt) was refused.
    #[error("preparation failed: {0}")]
    Preparation(String),
    /// The HSM target cannot be set up: a certificate, key or password file that
    /// cannot be read or used, a bad node address, no runtime.
    #[error("cannot set up the HSM target: {0}")]
    Target(String),
    /// An HSM operation failed while preparing or running a benchmark.
    #[error("benchmark {case:?} failed")]
    Hsm {
        /// The benchmark's name.
        case: String,
        /// What the HSM (or the link to it) said.
        #[source]
        source: strongroom_hsm::error::HsmError,
    },
    /// The filter selects no benchmark.
    #[error("no benchmark name contains {0:?}")]
    NoMatch(String),
    /// A crypto-core call failed while preparing or running a benchmark.
    #[error("benchmark {case:?} failed")]
    Crypto {
        /// The benchmark's name.
        case: String,
        /// What the crypto core said.
        #[source]
        source: CryptoError,
    },
    /// An operation returned a wrong result (a round trip that did not round-trip, a
    /// signature that did not verify), so its timing would mean nothing.
    #[error("benchmark {case:?} gave a wrong result: {what}")]
    WrongResult {
        /// The benchmark's name.
        case: String,
        /// What was wrong.
        what: &'static str,
    },
    /// A benchmark thread panicked.
    #[error("benchmark {case:?}: a benchmark thread panicked")]
    ThreadPanicked {
        /// The benchmark's name.
        case: String,
    },
    /// The report could not be encoded as JSON.
    #[error("could not encode the report as JSON")]
    Json(#[from] serde_json::Error),
    /// The report could not be written.
    #[error("could not write the report")]
    Output(#[from] std::io::Error),
}

impl BenchError {
    /// Whether the error is the caller's choice of options (a usage error) rather than a
    /// failure while running.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Self::InvalidSeconds { .. }
                | Self::InvalidThreads { .. }
                | Self::InvalidInFlight { .. }
                | Self::InvalidOption { .. }
                | Self::NoMatch(_)
        )
    }
}

/// How one operation failed, before the benchmark's name is attached.
#[derive(Debug)]
pub(crate) enum Failure {
    Crypto(CryptoError),
    WrongResult(&'static str),
    Panicked,
}

impl Failure {
    pub(crate) fn named(self, case: &str) -> BenchError {
        let case = case.to_owned();
        match self {
            Self::Crypto(source) => BenchError::Crypto { case, source },
            Self::WrongResult(what) => BenchError::WrongResult { case, what },
            Self::Panicked => BenchError::ThreadPanicked { case },
        }
    }
}

impl From<CryptoError> for Failure {
    fn from(value: CryptoError) -> Self {
        Self::Crypto(value)
    }
}

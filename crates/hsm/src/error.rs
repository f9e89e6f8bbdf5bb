//! The one error type of HSM operations, and its mapping to the link's error codes.

use strongroom_crypto::error::CryptoError;
use strongroom_proto::hsm::v1::error::Code;

/// Why an HSM operation failed: a wire code plus a message safe to show the caller
/// (it never carries key material or says which integrity check failed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct HsmError {
    /// The link's error code.
    pub code: Code,
    /// What went wrong, in words.
    pub message: String,
}

impl HsmError {
    /// An error with this code and message.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A bad parameter.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidParameter, message)
    }

    /// Something the backend cannot do.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(Code::Unsupported, message)
    }

    /// A fault of ours, not the caller's.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Code::Internal, message)
    }

    /// Whether the same request may succeed on another node (the node was sealed,
    /// unsynced, going away, or the connection to it failed).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.code,
            Code::Sealed | Code::NotSynced | Code::Unavailable
        )
    }
}

impl From<CryptoError> for HsmError {
    fn from(e: CryptoError) -> Self {
        let code = match &e {
            CryptoError::DecryptionFailed => Code::DecryptionFailed,
            CryptoError::UnsealFailed | CryptoError::MalformedSealedData(_) => Code::InvalidBlob,
            CryptoError::ImportUnwrapFailed => Code::ImportFailed,
            CryptoError::Internal(_) => Code::Internal,
            _ => Code::InvalidParameter,
        };
        Self::new(code, e.to_string())
    }
}

/// Results of HSM operations.
pub type Result<T> = core::result::Result<T, HsmError>;

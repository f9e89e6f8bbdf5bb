//! The management API's one error type and its one mapping to the cloud's wire codes
//! and HTTP statuses (`docs/management-api.md`, "Responses and errors").

use strongroom_proto::openapi::SignatureError;
use strongroom_store::StoreError;

/// Why a management request failed. Every variant maps to exactly one wire code and
/// HTTP status in [`ApiError::code`] and [`ApiError::status`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// A required parameter is absent.
    #[error(
        "The input parameter \"{0}\" that is mandatory for processing this request is not supplied."
    )]
    MissingParameter(String),
    /// A parameter has a value we do not accept.
    #[error("The parameter {name} is invalid: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `Version` is not `2016-01-20`.
    #[error("Specified parameter Version is not valid: {0:?}; this API is version 2016-01-20.")]
    InvalidVersion(String),
    /// Unknown action.
    #[error("Specified api is not found, please check your url and method: {0:?}.")]
    UnknownAction(String),
    /// The signature fields could not be read or checked.
    #[error("{0}")]
    Signature(SignatureError),
    /// The nonce was used before.
    #[error("Specified signature nonce was used already.")]
    NonceUsed,
    /// Unknown access key.
    #[error("Specified access key is not found.")]
    AccessKeyIdNotFound,
    /// Disabled access key.
    #[error("Specified access key is disabled.")]
    AccessKeyInactive,
    /// Unknown instance.
    #[error("The specified KMS instance {0} is not found.")]
    InstanceNotFound(String),
    /// The instance's status does not allow the action.
    #[error("{0}")]
    InstanceStateInvalid(String),
    /// Unknown HSM cluster.
    #[error("The specified HSM cluster {0} is not found.")]
    HsmClusterNotFound(String),
    /// Unknown VPC.
    #[error("The specified VPC {0} is not found.")]
    VpcNotFound(String),
    /// Unknown access key named as a parameter.
    #[error("The specified access key {0} is not found.")]
    AccessKeyNotFound(String),
    /// The resource is bound or otherwise in use.
    #[error("{0}")]
    ResourceInUse(String),
    /// A quota would be exceeded.
    #[error("{0}")]
    LimitExceeded(String),
    /// Unknown key (or a destroyed one).
    #[error("The specified Key is not found.")]
    KeyNotFound(String),
    /// Unknown alias.
    #[error("The specified Alias {0} is not found.")]
    AliasNotFound(String),
    /// Unknown version of a known key.
    #[error("The specified key version {0} is not found.")]
    KeyVersionNotFound(String),
    /// The key's state does not allow the action: `Rejected.<State>`.
    #[error("The key is {state}: {message}")]
    KeyState {
        /// The key's state, wire name.
        state: &'static str,
        /// What was refused.
        message: String,
    },
    /// EnableKey / DisableKey on a pending key.
    #[error("{0}")]
    StateModifiedFailed(String),
    /// An alias name in use.
    #[error("The alias {0} already exists.")]
    AliasExists(String),
    /// Unknown network rule, policy, access point or client key (`docs/access.md`), or
    /// unknown secret, secret version or stage (`docs/secrets.md`).
    #[error("The specified {kind} {name} is not found.")]
    AccessNotFound {
        /// What kind of record: `network rule`, `policy`, `application access point`,
        /// `client key`, `secret`, `secret version`, `secret stage`.
        kind: &'static str,
        /// The name or id asked for.
        name: String,
    },
    /// A network rule, policy, access point or secret name in use, or a secret version
    /// id put again with other data.
    #[error("The {kind} {name} already exists.")]
    AccessExists {
        /// What kind of record.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// A secret scheduled for deletion (`docs/secrets.md`): only describing, listing,
    /// restoring and deleting it are allowed.
    #[error("The secret {0} is scheduled for deletion; restore it first (RestoreSecret).")]
    SecretPendingDeletion(String),
    /// Deletion of a protected key.
    #[error("The key {0} is protected from deletion; turn its deletion protection off first.")]
    DeletionProtection(String),
    /// The key cannot do this at all.
    #[error("{0}")]
    UnsupportedOperation(String),
    /// The import token has expired.
    #[error("The import token expired at {0}; get new import parameters.")]
    ImportTokenExpired(String),
    /// A ciphertext that does not decrypt (tampered, wrong context, wrong key).
    #[error("The ciphertext is invalid: {0}")]
    InvalidCiphertext(String),
    /// The body is too large.
    #[error("The request body is larger than {0} bytes.")]
    TooLarge(usize),
    /// The store cannot be reached.
    #[error("The service is temporarily unavailable: {0}")]
    Unavailable(String),
    /// A fault of ours.
    #[error("An internal error occurred: {0}")]
    Internal(String),
}

impl ApiError {
    /// A bad parameter.
    pub fn invalid(name: &str, reason: impl Into<String>) -> Self {
        Self::InvalidParameter {
            name: name.to_owned(),
            reason: reason.into(),
        }
    }

    /// The cloud's error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingParameter(_) => "MissingParameter",
            Self::InvalidParameter { .. } => "InvalidParameter",
            Self::InvalidVersion(_) => "InvalidVersion",
            Self::UnknownAction(_) => "InvalidAction.NotFound",
            Self::Signature(e) => signature_code(e),
            Self::NonceUsed => "SignatureNonceUsed",
            Self::AccessKeyIdNotFound => "InvalidAccessKeyId.NotFound",
            Self::AccessKeyInactive => "InvalidAccessKeyId.Inactive",
            Self::InstanceNotFound(_) => "Forbidden.DKMSInstanceNotFound",
            Self::InstanceStateInvalid(_) => "Forbidden.DKMSInstanceStateInvalid",
            Self::HsmClusterNotFound(_) => "Forbidden.HsmClusterNotFound",
            Self::VpcNotFound(_) => "Forbidden.VpcNotFound",
            Self::AccessKeyNotFound(_) => "Forbidden.AccessKeyNotFound",
            Self::ResourceInUse(_) => "Rejected.ResourceInUse",
            Self::LimitExceeded(_) => "Rejected.LimitExceeded",
            Self::KeyNotFound(_) => "Forbidden.KeyNotFound",
            Self::AliasNotFound(_) => "Forbidden.AliasNotFound",
            Self::KeyVersionNotFound(_) => "Forbidden.KeyVersionNotFound",
            Self::KeyState { state, .. } => rejected_code(state),
            Self::StateModifiedFailed(_) => "Rejected.StateModifiedFailed",
            Self::AliasExists(_) => "Rejected.AliasExist",
            Self::AccessNotFound { .. } => "Forbidden.ResourceNotFound",
            Self::AccessExists { .. } => "Rejected.ResourceExist",
            Self::SecretPendingDeletion(_) => "Rejected.PendingDeletion",
            Self::DeletionProtection(_) => "Forbidden.DeletionProtection",
            Self::UnsupportedOperation(_) => "UnsupportedOperation",
            Self::ImportTokenExpired(_) => "Rejected.ImportTokenExpired",
            Self::InvalidCiphertext(_) => "InvalidCiphertext",
            Self::TooLarge(_) => "RequestEntityTooLarge",
            // The cloud's spelling, kept for clients that match on it.
            Self::Unavailable(_) => "SerivceUnvailableTemporary",
            Self::Internal(_) => "InternalFailure",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Self::UnknownAction(_)
            | Self::AccessKeyIdNotFound
            | Self::HsmClusterNotFound(_)
            | Self::VpcNotFound(_)
            | Self::AccessKeyNotFound(_)
            | Self::KeyNotFound(_)
            | Self::AliasNotFound(_)
            | Self::KeyVersionNotFound(_)
            | Self::AccessNotFound { .. } => 404,
            Self::InstanceNotFound(_)
            | Self::InstanceStateInvalid(_)
            | Self::DeletionProtection(_) => 403,
            Self::ResourceInUse(_)
            | Self::KeyState { .. }
            | Self::StateModifiedFailed(_)
            | Self::AliasExists(_)
            | Self::AccessExists { .. }
            | Self::SecretPendingDeletion(_) => 409,
            Self::TooLarge(_) => 413,
            Self::Unavailable(_) => 503,
            Self::Internal(_) => 500,
            _ => 400,
        }
    }
}

/// `Rejected.<State>` for a key state's wire name.
fn rejected_code(state: &str) -> &'static str {
    match state {
        "Enabled" => "Rejected.Enabled",
        "Disabled" => "Rejected.Disabled",
        "PendingDeletion" => "Rejected.PendingDeletion",
        "PendingImport" => "Rejected.PendingImport",
        _ => "Rejected.StateModifiedFailed",
    }
}

fn signature_code(e: &SignatureError) -> &'static str {
    match e {
        SignatureError::MissingParameter(_) => "MissingParameter",
        SignatureError::IncompleteSignature(_) => "IncompleteSignature",
        SignatureError::InvalidParameter("SignatureMethod") => "UnsupportedSignatureMethod",
        SignatureError::InvalidParameter("SignatureVersion") => "UnsupportedSignatureVersion",
        SignatureError::InvalidParameter(_) => "InvalidParameter",
        SignatureError::InvalidTimestampFormat => "InvalidTimeStamp.Format",
        SignatureError::TimestampExpired => "InvalidTimeStamp.Expired",
        SignatureError::ContentHashMismatch => "ContentSHA256NotMatched",
        SignatureError::SignatureDoesNotMatch => "SignatureDoesNotMatch",
        _ => "InvalidParameter",
    }
}

impl From<SignatureError> for ApiError {
    fn from(e: SignatureError) -> Self {
        Self::Signature(e)
    }
}

/// Store errors the handlers did not map themselves: a missing record named by a
/// parameter is mapped where the parameter is known, so what reaches here is a conflict
/// (someone else changed the record), a back-end failure or corrupt data.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Self::ResourceInUse(format!(
                "The request conflicts with the current state ({what}); read it again and retry."
            )),
            StoreError::Backend(what) => Self::Unavailable(what),
            StoreError::QuotaExceeded(what) => Self::LimitExceeded(what),
            other => Self::Internal(other.to_string()),
        }
    }
}

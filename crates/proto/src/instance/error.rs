//! The instance API's error answers (`spec/instance-api.md` §4.6 and §5.2): an HTTP
//! status, an error code the SDKs raise as the exception's `code`, and a message.

use prost::Message as _;

use crate::dkms;

/// An error answer of the instance API: HTTP status, `ErrorCode` and `ErrorMessage`.
///
/// Every documented error has its own constructor carrying the documented status, code
/// and message text, so the server never spells them itself. Codes and messages marked
/// "ours" in the constructor docs are not documented by Alibaba; the SDKs only pass them
/// through (and retry on `Rejected.Throttling`, and in Go also on `InternalFailure` and
/// `ServiceUnavailableTemporary`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct InstanceError {
    status: u16,
    code: &'static str,
    message: String,
}

impl InstanceError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// The HTTP status of the answer.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The `ErrorCode`, e.g. `Forbidden.KeyNotFound`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The `ErrorMessage`.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error with `detail` after the documented message, to tell the caller
    /// what was wrong (`The specified parameter is not valid. (Length must be 1 to
    /// 1024)`). The code and status stay; `detail` must never hold a secret.
    #[must_use]
    pub fn with_detail(mut self, detail: &str) -> Self {
        self.message = format!("{} ({detail})", self.message);
        self
    }

    /// The protobuf `Error` body of the answer, with `StatusCode` set to the HTTP status.
    pub fn encode_error(&self, request_id: &str) -> Vec<u8> {
        dkms::Error {
            status_code: i32::from(self.status),
            error_code: self.code.to_owned(),
            error_message: self.message.clone(),
            request_id: request_id.to_owned(),
        }
        .encode_to_vec()
    }

    /// 415 `InvalidContentType`: `Content-Type "<type>" is unsupported.`
    pub fn invalid_content_type(content_type: &str) -> Self {
        Self::new(
            415,
            "InvalidContentType",
            format!("Content-Type \"{content_type}\" is unsupported."),
        )
    }

    /// 400 `InvalidApiVersion`: `The ApiVersion "<version>" is invalid.`
    pub fn invalid_api_version(version: &str) -> Self {
        Self::new(
            400,
            "InvalidApiVersion",
            format!("The ApiVersion \"{version}\" is invalid."),
        )
    }

    /// 400 `InvalidApiName`: `The ApiName "<name>" is invalid.`
    pub fn invalid_api_name(name: &str) -> Self {
        Self::new(
            400,
            "InvalidApiName",
            format!("The ApiName \"{name}\" is invalid."),
        )
    }

    /// 400 `InvalidParam`: `The Param <name> is invalid.` The documented names are
    /// `x-kms-signaturemethod` (absent), `Date` and `Content-SHA256`; this crate also uses
    /// it, with the header's name, for a signed header sent twice or not in UTF-8.
    pub fn invalid_param(name: &str) -> Self {
        Self::new(400, "InvalidParam", format!("The Param {name} is invalid."))
    }

    /// 400 `InvalidParam`: `The Param x-kms-signaturemethod is invalid.` (the header is
    /// absent).
    pub fn missing_signature_method() -> Self {
        Self::invalid_param("x-kms-signaturemethod")
    }

    /// 400 `InvalidParam`: `The Param x-kms-signaturemethod is invalid.
    /// message:"<value>".` (the header names a method other than `RSA_PKCS1_SHA_256`).
    pub fn invalid_signature_method(value: &str) -> Self {
        Self::new(
            400,
            "InvalidParam",
            format!("The Param x-kms-signaturemethod is invalid. message:\"{value}\"."),
        )
    }

    /// 400 `InvalidParam`: `The Param Date is invalid.` (absent or not RFC 1123).
    pub fn invalid_date() -> Self {
        Self::invalid_param("Date")
    }

    /// 400 `InvalidParam`: `The Param Content-SHA256 is invalid.` The Java SDK retries on
    /// this message.
    pub fn invalid_content_sha256() -> Self {
        Self::invalid_param("Content-SHA256")
    }

    /// 400 `MissingParameter`: `Parameter x-kms-acccesskeyid does not exist in http header
    /// or body.`
    pub fn missing_access_key_id() -> Self {
        Self::new(
            400,
            "MissingParameter",
            "Parameter x-kms-acccesskeyid does not exist in http header or body.",
        )
    }

    /// 404 `Unauthorized`: `The AccessKey ID "<id>" does not exist in our records.`
    pub fn unauthorized(access_key_id: &str) -> Self {
        Self::new(
            404,
            "Unauthorized",
            format!("The AccessKey ID \"{access_key_id}\" does not exist in our records."),
        )
    }

    /// 400 `RequestTimeTooSkewed`: `Request time exceeds server time more than 15
    /// minutes.`
    pub fn request_time_too_skewed() -> Self {
        Self::new(
            400,
            "RequestTimeTooSkewed",
            "Request time exceeds server time more than 15 minutes.",
        )
    }

    /// 401 `SignatureNotMatch`: `Signature is not matched.`
    pub fn signature_not_match() -> Self {
        Self::new(401, "SignatureNotMatch", "Signature is not matched.")
    }

    /// 403 `Forbidden.NoPermission`: `This operation for "<resource>" is forbidden by
    /// permission system.`
    pub fn no_permission(resource: &str) -> Self {
        Self::new(
            403,
            "Forbidden.NoPermission",
            format!("This operation for \"{resource}\" is forbidden by permission system."),
        )
    }

    /// 400 `InvalidParameter`: `The specified parameter is not valid.` (a body that does
    /// not decode, or a value that is not acceptable).
    pub fn invalid_parameter() -> Self {
        Self::new(
            400,
            "InvalidParameter",
            "The specified parameter is not valid.",
        )
    }

    /// 400 `UnsupportedOperation`: `Rejected.UnsupportedOperation`.
    pub fn unsupported_operation() -> Self {
        Self::new(400, "UnsupportedOperation", "Rejected.UnsupportedOperation")
    }

    /// 404 `Forbidden.KeyNotFound`: `The specified key does not exist.`
    pub fn key_not_found() -> Self {
        Self::new(
            404,
            "Forbidden.KeyNotFound",
            "The specified key does not exist.",
        )
    }

    /// 409 `Rejected.Disabled`: `The request was rejected because the key state is
    /// Disabled.`
    pub fn disabled() -> Self {
        Self::key_state("Rejected.Disabled", "Disabled")
    }

    /// 409 `Rejected.PendingDeletion`: `The request was rejected because the key state is
    /// PendingDeletion.`
    pub fn pending_deletion() -> Self {
        Self::key_state("Rejected.PendingDeletion", "PendingDeletion")
    }

    /// 409 `Rejected.PendingImport`: `The request was rejected because the key state is
    /// PendingImport.`
    pub fn pending_import() -> Self {
        Self::key_state("Rejected.PendingImport", "PendingImport")
    }

    /// 409 `Rejected.PendingDeletion`: `The request was rejected because the secret is
    /// scheduled for deletion.` (ours: the code of a key in that state, for a secret).
    pub fn secret_pending_deletion() -> Self {
        Self::new(
            409,
            "Rejected.PendingDeletion",
            "The request was rejected because the secret is scheduled for deletion.",
        )
    }

    fn key_state(code: &'static str, state: &str) -> Self {
        Self::new(
            409,
            code,
            format!("The request was rejected because the key state is {state}."),
        )
    }

    /// 500 `InternalFailure`: `Internal Failure.`
    pub fn internal_failure() -> Self {
        Self::new(500, "InternalFailure", "Internal Failure.")
    }

    /// 503 `ServiceUnavailableTemporary`: `Service Unavailable Temporary.`
    pub fn service_unavailable_temporary() -> Self {
        Self::new(
            503,
            "ServiceUnavailableTemporary",
            "Service Unavailable Temporary.",
        )
    }

    /// 429 `Rejected.Throttling`: `Request was denied due to request throttling.` (status
    /// and message ours; every SDK retries on this code).
    pub fn throttling() -> Self {
        Self::new(
            429,
            "Rejected.Throttling",
            "Request was denied due to request throttling.",
        )
    }

    /// 404 `Forbidden.ResourceNotFound`: `The specified resource does not exist.` (ours,
    /// for a secret that does not exist).
    pub fn resource_not_found() -> Self {
        Self::new(
            404,
            "Forbidden.ResourceNotFound",
            "The specified resource does not exist.",
        )
    }

    /// 403 `Forbidden.DKMSInstanceStateInvalid`: `The DKMS instance state is invalid.`
    /// (message ours; the instance is not serving, e.g. disconnected from its HSMs).
    pub fn instance_state_invalid() -> Self {
        Self::new(
            403,
            "Forbidden.DKMSInstanceStateInvalid",
            "The DKMS instance state is invalid.",
        )
    }

    /// 413 `RequestEntityTooLarge`: `The request body exceeds 3 MB.` (code and message
    /// ours; the docs give only the status) for a body over
    /// [`MAX_BODY_LEN`](super::MAX_BODY_LEN).
    pub fn request_entity_too_large() -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            "The request body exceeds 3 MB.",
        )
    }
}

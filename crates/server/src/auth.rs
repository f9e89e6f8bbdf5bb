//! Who signed a management request: the signature against the access key's secret, then
//! the clock, then the nonce (in that order, so that an unauthenticated caller can burn
//! no nonce and learn nothing about the clock).

use strongroom_proto::openapi::{DEFAULT_SKEW, SignedRequest};
use strongroom_store::{AccessKeyStatus, Store, StoreError};
use time::OffsetDateTime;

use crate::api::access_keys::secret_purpose;
use crate::app::App;
use crate::error::ApiError;

/// How long a nonce is remembered: twice the allowed skew, so a request replayed at the
/// far edge of the window still finds its nonce.
pub const NONCE_TTL_SECS: i64 = 30 * 60;

/// Checks the signature, timestamp and nonce of `signed`.
///
/// # Errors
/// `InvalidAccessKeyId.NotFound` / `.Inactive`, `SignatureDoesNotMatch`,
/// `InvalidTimeStamp.Expired`, `SignatureNonceUsed`, `MissingParameter` for an empty
/// nonce, or a store failure.
pub async fn authenticate<S: Store>(app: &App<S>, signed: &SignedRequest) -> Result<(), ApiError> {
    let key = app
        .store
        .get_access_key(&signed.access_key_id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => ApiError::AccessKeyIdNotFound,
            other => other.into(),
        })?;
    let secret = app
        .node_key
        .open(&key.secret_ciphertext, &secret_purpose(&key.id))
        .map_err(|e| ApiError::Internal(format!("access key secret: {e}")))?;
    signed.verify(secret.expose_secret())?;
    if key.status != AccessKeyStatus::Active {
        return Err(ApiError::AccessKeyInactive);
    }
    let now = OffsetDateTime::now_utc();
    signed.check_time(now, DEFAULT_SKEW)?;
    if signed.nonce.is_empty() {
        return Err(ApiError::MissingParameter("SignatureNonce".into()));
    }
    if signed.nonce.len() > 128 {
        return Err(ApiError::invalid(
            "SignatureNonce",
            "at most 128 characters",
        ));
    }
    let fresh = app
        .store
        .insert_nonce(
            &key.id,
            &signed.nonce,
            now.unix_timestamp().saturating_add(NONCE_TTL_SECS),
        )
        .await?;
    if fresh {
        Ok(())
    } else {
        Err(ApiError::NonceUsed)
    }
}

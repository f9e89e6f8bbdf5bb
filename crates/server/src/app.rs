//! The state every request handler shares, and the small helpers they have in common:
//! identifiers, clock and date arithmetic.

use std::sync::Arc;

use strongroom_crypto::random;
use strongroom_store::Store;
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime};

use crate::config::Config;
use crate::error::ApiError;
use crate::node_key::NodeKey;

const ACCOUNT_SETTING: &str = "account-id";

/// One KMS node's shared state.
#[derive(Debug)]
pub struct App<S> {
    /// The store.
    pub store: S,
    /// The node key.
    pub node_key: NodeKey,
    /// The configuration.
    pub config: Config,
    /// The deployment's account id (shown in ARNs), the same on every node.
    pub account_id: String,
    /// This node's `HostId` in error responses.
    pub host_id: String,
    /// The links to the instances' HSM clusters.
    pub hsm: crate::hsm_pool::HsmPool,
    /// The instance API's caches and quotas.
    pub instance_api: crate::instance::Shared,
    /// This node's audit log.
    pub audit: crate::audit::AuditLog,
    /// This node's request metrics.
    pub metrics: crate::metrics::Metrics,
}

impl<S: Store> App<S> {
    /// Builds the shared state, reading (or on the first node, choosing) the account id.
    ///
    /// # Errors
    /// [`ApiError`] if the store fails.
    pub async fn new(
        store: S,
        node_key: NodeKey,
        config: Config,
        audit: crate::audit::AuditLog,
    ) -> Result<Arc<Self>, ApiError> {
        if store.get_setting(ACCOUNT_SETTING).await?.is_none() {
            let id = random_digits(16)?;
            store.insert_setting(ACCOUNT_SETTING, id.as_bytes()).await?;
        }
        let account_id = store
            .get_setting(ACCOUNT_SETTING)
            .await?
            .and_then(|v| String::from_utf8(v).ok())
            .ok_or_else(|| ApiError::Internal("the account id setting is malformed".into()))?;
        let host_id = format!("strongroom.{}", config.listen);
        Ok(Arc::new(Self {
            store,
            node_key,
            config,
            account_id,
            host_id,
            hsm: crate::hsm_pool::HsmPool::default(),
            instance_api: crate::instance::Shared::default(),
            audit,
            metrics: crate::metrics::Metrics::default(),
        }))
    }

    /// An instance's ARN.
    pub fn instance_arn(&self, region: &str, instance_id: &str) -> String {
        format!(
            "acs:kms:{region}:{}:keystore/{instance_id}",
            self.account_id
        )
    }
}

/// Now, Unix seconds.
pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Unix seconds as `2026-11-28T23:05:34Z` (empty for `None`).
pub fn iso(time: Option<i64>) -> String {
    time.and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Now, as `2026-11-28T23:05:34.123456789Z`.
pub fn iso_now_millis() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// `time` plus `months` calendar months, the day clamped to the target month's length
/// (January 31 plus one month is the last day of February).
pub fn add_months(time: i64, months: u32) -> i64 {
    let Ok(at) = OffsetDateTime::from_unix_timestamp(time) else {
        return time;
    };
    let total = i64::from(at.year()) * 12 + i64::from(u8::from(at.month())) - 1 + i64::from(months);
    let (Ok(year), Ok(month_index)) = (i32::try_from(total / 12), u8::try_from(total % 12 + 1))
    else {
        return time;
    };
    let Ok(month) = Month::try_from(month_index) else {
        return time;
    };
    let day = at.day().min(month.length(year));
    match Date::from_calendar_date(year, month, day) {
        Ok(date) => at.replace_date(date).unix_timestamp(),
        Err(_) => time,
    }
}

/// `prefix` followed by `len` random lower-case letters and digits.
///
/// # Errors
/// [`ApiError::Internal`] if the random generator fails.
pub fn random_id(prefix: &str, len: usize) -> Result<String, ApiError> {
    Ok(format!(
        "{prefix}{}",
        random_text(len, b"abcdefghijklmnopqrstuvwxyz0123456789")?
    ))
}

/// `len` random characters from `alphabet` (without modulo bias).
///
/// # Errors
/// [`ApiError::Internal`] if the random generator fails.
pub fn random_text(len: usize, alphabet: &[u8]) -> Result<String, ApiError> {
    let n = alphabet.len();
    if n == 0 || n > 256 {
        return Err(ApiError::Internal("bad alphabet".into()));
    }
    let limit = 256 - 256 % n;
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        random::fill(&mut buf).map_err(|e| ApiError::Internal(e.to_string()))?;
        for byte in buf {
            let b = usize::from(byte);
            if b < limit
                && out.len() < len
                && let Some(c) = alphabet.get(b % n)
            {
                out.push(char::from(*c));
            }
        }
    }
    Ok(out)
}

fn random_digits(len: usize) -> Result<String, ApiError> {
    let first = random_text(1, b"123456789")?;
    Ok(first + &random_text(len.saturating_sub(1), b"0123456789")?)
}

/// A random UUID (version 4), lower-case, as the cloud's key version ids.
///
/// # Errors
/// [`ApiError::Internal`] if the random generator fails.
pub fn random_uuid() -> Result<String, ApiError> {
    let mut bytes = [0u8; 16];
    random::fill(&mut bytes).map_err(|e| ApiError::Internal(e.to_string()))?;
    if let Some(b) = bytes.get_mut(6) {
        *b = (*b & 0x0f) | 0x40;
    }
    if let Some(b) = bytes.get_mut(8) {
        *b = (*b & 0x3f) | 0x80;
    }
    let hex = hex::encode(bytes);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        hex.get(0..8).unwrap_or_default(),
        hex.get(8..12).unwrap_or_default(),
        hex.get(12..16).unwrap_or_default(),
        hex.get(16..20).unwrap_or_default(),
        hex.get(20..32).unwrap_or_default()
    ))
}

/// A request id in the cloud's shape (`8-4-4-4-12` upper-case hex).
pub fn request_id() -> String {
    let mut bytes = [0u8; 16];
    if random::fill(&mut bytes).is_err() {
        // The id only correlates logs; a constant is better than failing the request.
        return "00000000-0000-0000-0000-000000000000".to_owned();
    }
    let hex = hex::encode_upper(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        hex.get(0..8).unwrap_or_default(),
        hex.get(8..12).unwrap_or_default(),
        hex.get(12..16).unwrap_or_default(),
        hex.get(16..20).unwrap_or_default(),
        hex.get(20..32).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn months_clamp_days_and_cross_years() {
        // 2024-01-31T12:00:00Z + 1 month = 2024-02-29T12:00:00Z (leap year).
        assert_eq!(
            iso(Some(add_months(1_706_702_400, 1))),
            "2024-02-29T12:00:00Z"
        );
        // + 12 months = 2025-01-31.
        assert_eq!(
            iso(Some(add_months(1_706_702_400, 12))),
            "2025-01-31T12:00:00Z"
        );
        assert_eq!(
            iso(Some(add_months(1_706_702_400, 13))),
            "2025-02-28T12:00:00Z"
        );
        assert_eq!(iso(None), "");
    }

    #[test]
    fn ids_have_the_right_shape() {
        let id = random_id("kst-", 20).unwrap();
        assert_eq!(id.len(), 24);
        assert!(strongroom_certs::instance_ca::validate_instance_id(&id).is_ok());
        let rid = request_id();
        assert_eq!(rid.len(), 36);
        assert_eq!(rid.matches('-').count(), 4);
        let uuid = random_uuid().unwrap();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
        assert!(matches!(&uuid[19..20], "8" | "9" | "a" | "b"), "{uuid}");
        assert_ne!(uuid, random_uuid().unwrap());
    }
}

//! Key versions and rotation (`docs/keys.md`, "Versions and rotation"): CreateKeyVersion,
//! DescribeKeyVersion, ListKeyVersions, UpdateRotationPolicy, and [`rotate`], which the
//! maintenance task calls for keys whose rotation is due.

use std::sync::Arc;

use serde_json::{Value, json};
use strongroom_hsm::{Op, Reply};
use strongroom_proto::hsm::v1::GenerateKey;
use strongroom_store::{Key, KeyState, KeyVersion, Page, Store, StoreError};

use super::keys::{
    KEY_PAGE_SIZE, ORIGIN_KMS, modify, quota_exceeded, resolve, spec_of, usable_instance,
    wrong_state,
};
use super::params::Params;
use super::{Answer, answer, page_answer};
use crate::app::{App, iso, now, random_uuid};
use crate::error::ApiError;

/// Most versions one key has.
pub const MAX_VERSIONS_PER_KEY: u64 = 50;
/// Shortest automatic rotation interval, seconds (7 days).
pub const MIN_ROTATION_SECS: i64 = 7 * 86_400;
/// Longest automatic rotation interval, seconds (730 days).
pub const MAX_ROTATION_SECS: i64 = 730 * 86_400;
/// The interval when rotation is enabled without one (365 days).
pub const DEFAULT_ROTATION_SECS: i64 = 365 * 86_400;

/// `EnableAutomaticRotation` and `RotationInterval` of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationRequest {
    /// Rotation asked for.
    pub enable: bool,
    /// The interval given, seconds.
    pub interval: Option<i64>,
}

impl RotationRequest {
    /// Reads and checks both parameters.
    ///
    /// # Errors
    /// [`ApiError::InvalidParameter`].
    pub fn from_params(p: &Params) -> Result<Self, ApiError> {
        let enable = p.bool_or("EnableAutomaticRotation", false)?;
        let interval = p
            .optional("RotationInterval")
            .map(parse_interval)
            .transpose()?;
        Ok(Self { enable, interval })
    }

    /// The interval, or the default.
    pub fn interval_or_default(self) -> i64 {
        self.interval.unwrap_or(DEFAULT_ROTATION_SECS)
    }
}

/// `<n>d`, `<n>h`, `<n>m` or `<n>s` in seconds, between 7 and 730 days.
///
/// # Errors
/// [`ApiError::InvalidParameter`] naming `RotationInterval`.
pub fn parse_interval(text: &str) -> Result<i64, ApiError> {
    let bad = |why: &str| ApiError::invalid("RotationInterval", format!("{text:?}: {why}"));
    let text = text.trim();
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let scale: i64 = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return Err(bad("expected a number followed by d, h, m or s")),
    };
    let n: i64 = number
        .parse()
        .map_err(|_| bad("expected a number followed by d, h, m or s"))?;
    let secs = n.checked_mul(scale).ok_or_else(|| bad("is out of range"))?;
    if !(MIN_ROTATION_SECS..=MAX_ROTATION_SECS).contains(&secs) {
        return Err(bad("must be between 7 and 730 days"));
    }
    Ok(secs)
}

fn version_json(v: &KeyVersion) -> Value {
    json!({
        "KeyId": v.key_id,
        "KeyVersionId": v.version_id,
        "CreationDate": iso(Some(v.created_at)),
    })
}

/// Adds a version made by the HSM to `key` and makes it primary. Used by
/// CreateKeyVersion and by automatic rotation; compare-and-set on the key, so of two
/// nodes rotating one key at once, one succeeds and the other's blob is dropped.
///
/// # Errors
/// The key's state, the quota, the per-key limit, the HSM, or
/// [`StoreError::Conflict`] as an error when the key changed meanwhile.
pub async fn rotate<S: Store>(app: &App<S>, key: &Key) -> Result<(Key, KeyVersion), ApiError> {
    if key.origin != ORIGIN_KMS {
        return Err(ApiError::UnsupportedOperation(format!(
            "The key {} holds imported material; its versions cannot be made in the HSM.",
            key.id
        )));
    }
    if key.state != KeyState::Enabled {
        return Err(wrong_state(key, "CreateKeyVersion"));
    }
    let count = app
        .store
        .list_key_versions(&key.id, Page { number: 1, size: 1 })
        .await?
        .total;
    if count >= MAX_VERSIONS_PER_KEY {
        return Err(ApiError::LimitExceeded(format!(
            "The key {} has {MAX_VERSIONS_PER_KEY} versions, the most a key may have.",
            key.id
        )));
    }
    let instance = usable_instance(app, &key.instance_id).await?;
    let spec = spec_of(key)?;
    let version_id = random_uuid()?;
    let reply = app
        .hsm
        .call(
            app,
            &instance,
            Op::GenerateKey(GenerateKey {
                key_id: key.id.clone(),
                version_id: version_id.clone(),
                key_spec: spec.as_str().to_owned(),
                key_usage: key.usage.clone(),
            }),
        )
        .await?;
    let Reply::GenerateKey(made) = reply else {
        return Err(ApiError::Internal(
            "the HSM answered GenerateKey with another reply".into(),
        ));
    };
    let at = now();
    let version = KeyVersion {
        key_id: key.id.clone(),
        version_id,
        created_at: at,
        blob: Some(made.blob),
        public_key: (!made.public_key.is_empty()).then_some(made.public_key),
    };
    let mut next = key.clone();
    next.primary_version.clone_from(&version.version_id);
    next.last_rotation = at;
    next.next_rotation = next
        .automatic_rotation
        .then(|| at.saturating_add(next.rotation_interval_secs.max(MIN_ROTATION_SECS)));
    next.updated_at = at;
    let stored = app
        .store
        .add_key_version(&next, &version, u64::from(instance.key_quota))
        .await
        .map_err(|e| match e {
            StoreError::QuotaExceeded(_) => quota_exceeded(&instance),
            other => other.into(),
        })?;
    tracing::info!(key = %stored.id, version = %version.version_id, "key version created");
    Ok((stored, version))
}

pub(crate) async fn create<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let key = resolve(app, p.required("KeyId")?).await?;
    let (_, version) = rotate(app, &key).await?;
    Ok(answer([("KeyVersion", version_json(&version))]))
}

pub(crate) async fn describe<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let key = resolve(app, p.required("KeyId")?).await?;
    let v = super::keys::version(app, &key, p.required("KeyVersionId")?).await?;
    Ok(answer([("KeyVersion", version_json(&v))]))
}

pub(crate) async fn list<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let key = resolve(app, p.required("KeyId")?).await?;
    let page = p.page_of(KEY_PAGE_SIZE)?;
    let found = app.store.list_key_versions(&key.id, page).await?;
    let items = found.items.iter().map(version_json).collect();
    Ok(page_answer(
        page,
        found.total,
        "KeyVersions",
        "KeyVersion",
        items,
    ))
}

pub(crate) async fn update_rotation_policy<S: Store>(
    app: &Arc<App<S>>,
    p: &Params,
) -> Result<Answer, ApiError> {
    let key = resolve(app, p.required("KeyId")?).await?;
    p.required("EnableAutomaticRotation")?;
    let request = RotationRequest::from_params(p)?;
    if !spec_of(&key)?.is_symmetric() || key.origin != ORIGIN_KMS {
        return Err(ApiError::UnsupportedOperation(format!(
            "Automatic rotation is only for symmetric keys made in the HSM; the key {} is a \
             {} key of origin {}.",
            key.id, key.spec, key.origin
        )));
    }
    modify(app, &key.id, |k| {
        if k.state != KeyState::Enabled {
            return Err(wrong_state(k, "UpdateRotationPolicy"));
        }
        k.automatic_rotation = request.enable;
        if let Some(interval) = request.interval {
            k.rotation_interval_secs = interval;
        } else if request.enable && k.rotation_interval_secs == 0 {
            k.rotation_interval_secs = DEFAULT_ROTATION_SECS;
        }
        k.next_rotation = request
            .enable
            .then(|| k.last_rotation.saturating_add(k.rotation_interval_secs));
        Ok(())
    })
    .await?;
    Ok(answer([]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn intervals_take_the_clouds_units_and_bounds() {
        assert_eq!(parse_interval("7d").unwrap(), 604_800);
        assert_eq!(parse_interval("604800s").unwrap(), 604_800);
        assert_eq!(parse_interval("168h").unwrap(), 604_800);
        assert_eq!(parse_interval("730d").unwrap(), 730 * 86_400);
        for bad in [
            "6d",
            "731d",
            "1d",
            "d",
            "7",
            "7w",
            "-7d",
            "99999999999999999999d",
            "",
        ] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }
}

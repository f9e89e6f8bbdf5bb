//! Secrets of an instance (`docs/secrets.md`): CreateSecret, DescribeSecret, ListSecrets,
//! UpdateSecret, DeleteSecret, RestoreSecret here; the values and their stages in
//! [`values`]; GetRandomPassword in [`password`]. Values are sealed by the HSM cluster
//! ([`crate::secrets`]); the store never sees one in the clear.

pub mod password;
pub mod stages;
pub mod values;

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value, json};
use strongroom_crypto::secret::SecretBytes;
use strongroom_store::{Secret, SecretFilter, SecretVersion, Store, StoreError, Tag};

use super::access::arn;
use super::keys::{MAX_DESCRIPTION, resolve};
use super::params::Params;
use super::{Answer, answer, page_answer};
use crate::app::{App, iso, now};
use crate::error::ApiError;
use crate::secrets::{BINARY, MAX_VALUE, TEXT, check_encryption_key, seal};

/// The only `SecretType` served: secrets whose values the caller manages.
pub const GENERIC: &str = "Generic";
/// Types that need the cloud's managed rotation, refused here.
const MANAGED_TYPES: &[&str] = &["Rds", "Redis", "RAMCredentials", "ECS", "PolarDB"];
/// Longest secret name.
pub const MAX_NAME: usize = 192;
/// Longest version id and stage name.
pub const MAX_VERSION_ID: usize = 64;
/// Versions a secret keeps; beyond, the oldest without a stage are deleted.
pub const MAX_VERSIONS: u32 = 10;
/// Default page size of `ListSecrets` (the cloud's).
pub const SECRET_PAGE_SIZE: u32 = 10;
/// Recovery windows of `DeleteSecret`, in days.
pub const RECOVERY_DAYS: std::ops::RangeInclusive<u32> = 7..=30;
const DAY: i64 = 86_400;

/// Checks a secret name: 1–192 of `[A-Za-z0-9_/+=.@-]`, not starting with `acs/`.
///
/// # Errors
/// [`ApiError::InvalidParameter`] naming `SecretName`.
pub fn secret_name(name: &str) -> Result<&str, ApiError> {
    let ok = (1..=MAX_NAME).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_/+=.@-".contains(c));
    if !ok {
        return Err(ApiError::invalid(
            "SecretName",
            format!("must be 1 to {MAX_NAME} letters, digits or _/+=.@-"),
        ));
    }
    if name.starts_with("acs/") {
        return Err(ApiError::invalid(
            "SecretName",
            "names starting with acs/ are reserved",
        ));
    }
    Ok(name)
}

/// Checks a version id or stage named by parameter `param`: 1–64 of `[A-Za-z0-9_.-]`.
///
/// # Errors
/// [`ApiError::InvalidParameter`] naming `param`.
pub fn label<'a>(param: &str, value: &'a str) -> Result<&'a str, ApiError> {
    let ok = (1..=MAX_VERSION_ID).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(value)
    } else {
        Err(ApiError::invalid(
            param,
            format!("must be 1 to {MAX_VERSION_ID} letters, digits, _, . or -"),
        ))
    }
}

/// `SecretData` as bytes and its `SecretDataType`.
///
/// # Errors
/// [`ApiError::InvalidParameter`] for an unknown type, a value over 30,720 bytes, or
/// binary data that is not base64.
pub fn secret_data(p: &Params) -> Result<(SecretBytes, String), ApiError> {
    let data = p.required("SecretData")?;
    if data.len() > MAX_VALUE {
        return Err(ApiError::invalid(
            "SecretData",
            format!("is longer than {MAX_VALUE} bytes"),
        ));
    }
    let data_type = p.optional("SecretDataType").unwrap_or(TEXT);
    let bytes = match data_type {
        TEXT => SecretBytes::copy_from(data.as_bytes()),
        BINARY => SecretBytes::new(
            STANDARD
                .decode(data.trim())
                .map_err(|_| ApiError::invalid("SecretData", "binary data must be base64"))?,
        ),
        other => {
            return Err(ApiError::invalid(
                "SecretDataType",
                format!("{other:?} is not text or binary"),
            ));
        }
    };
    Ok((bytes, data_type.to_owned()))
}

fn not_found(name: &str) -> ApiError {
    ApiError::AccessNotFound {
        kind: "secret",
        name: name.to_owned(),
    }
}

/// A secret by name, in any state.
///
/// # Errors
/// [`ApiError::AccessNotFound`] (`Forbidden.ResourceNotFound`).
pub async fn load<S: Store>(app: &App<S>, name: &str) -> Result<Secret, ApiError> {
    app.store.get_secret(name).await.map_err(|e| match e {
        StoreError::NotFound(_) => not_found(name),
        other => other.into(),
    })
}

/// A secret that is not scheduled for deletion.
///
/// # Errors
/// As [`load`], and [`ApiError::SecretPendingDeletion`].
pub async fn live<S: Store>(app: &App<S>, name: &str) -> Result<Secret, ApiError> {
    let secret = load(app, name).await?;
    if secret.planned_delete_at.is_some() {
        return Err(ApiError::SecretPendingDeletion(secret.name));
    }
    Ok(secret)
}

/// Reads a secret, applies `change` and stores it with compare-and-set, retrying with a
/// fresh read when another request changed it meanwhile.
async fn modify<S, F>(app: &App<S>, name: &str, mut change: F) -> Result<Secret, ApiError>
where
    S: Store,
    F: FnMut(&mut Secret) -> Result<(), ApiError>,
{
    let mut retry = super::contention::Retry::new();
    loop {
        let mut secret = load(app, name).await?;
        change(&mut secret)?;
        secret.updated_at = now();
        match app.store.update_secret(&secret).await {
            Ok(stored) => return Ok(stored),
            Err(StoreError::Conflict(_)) => {}
            Err(StoreError::NotFound(_)) => return Err(not_found(name)),
            Err(e) => return Err(e.into()),
        }
        if !retry.again().await {
            break;
        }
    }
    Err(ApiError::ResourceInUse(format!(
        "The secret {name} is being changed by other requests; retry."
    )))
}

/// `ExtendedConfig` sent flattened, as the SDK sends a model in the query
/// (`ExtendedConfig.CustomData.Host=db1`): the JSON object it stands for.
fn flattened_config(p: &Params) -> Result<Option<String>, ApiError> {
    let mut root = serde_json::Map::new();
    for (name, value) in &p.0 {
        let Some(path) = name.strip_prefix("ExtendedConfig.") else {
            continue;
        };
        let mut parts: Vec<&str> = path.split('.').collect();
        let last = parts.pop().filter(|s| !s.is_empty());
        let Some(last) = last else {
            return Err(ApiError::invalid(name, "is not a field path"));
        };
        let mut node = &mut root;
        for part in parts {
            let child = node
                .entry(part.to_owned())
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
            node = child
                .as_object_mut()
                .ok_or_else(|| ApiError::invalid(name, "names a field inside a value"))?;
        }
        node.insert(last.to_owned(), Value::String(value.clone()));
    }
    if root.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(&root)
        .map(Some)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

fn extended_config(p: &Params) -> Result<Option<String>, ApiError> {
    let Some(text) = p.optional("ExtendedConfig") else {
        return flattened_config(p);
    };
    if text.is_empty() {
        return Ok(Some(String::new()));
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ApiError::invalid("ExtendedConfig", format!("is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::invalid("ExtendedConfig", "must be a JSON object"));
    }
    Ok(Some(text.to_owned()))
}

/// `ExtendedConfig` after `UpdateSecret`: the keys given replace those stored, the others
/// stay (the SDK sends `{"CustomData": {…}}` alone); an empty text clears it.
fn merge_config(stored: &str, given: &str) -> Result<String, ApiError> {
    if given.is_empty() || stored.is_empty() {
        return Ok(given.to_owned());
    }
    let parse = |text: &str| serde_json::from_str::<serde_json::Map<String, Value>>(text);
    let given = parse(given).map_err(|e| ApiError::invalid("ExtendedConfig", e.to_string()))?;
    let mut merged = parse(stored).map_err(|e| {
        ApiError::Internal(format!("a stored ExtendedConfig is not a JSON object: {e}"))
    })?;
    merged.extend(given);
    serde_json::to_string(&merged).map_err(|e| ApiError::Internal(e.to_string()))
}

fn description(p: &Params) -> Result<Option<String>, ApiError> {
    match p.optional("Description") {
        Some(d) if d.chars().count() > MAX_DESCRIPTION => Err(ApiError::invalid(
            "Description",
            format!("is longer than {MAX_DESCRIPTION} characters"),
        )),
        other => Ok(other.map(str::to_owned)),
    }
}

/// Refuses what only the cloud's managed secrets do.
fn generic_only(p: &Params) -> Result<(), ApiError> {
    let secret_type = p.optional("SecretType").unwrap_or(GENERIC);
    if MANAGED_TYPES.contains(&secret_type) {
        return Err(ApiError::UnsupportedOperation(format!(
            "{secret_type} secrets need the cloud's managed rotation; only Generic secrets are kept here."
        )));
    }
    if secret_type != GENERIC {
        return Err(ApiError::invalid(
            "SecretType",
            format!("{secret_type:?} is not a secret type"),
        ));
    }
    if p.bool_or("EnableAutomaticRotation", false)? {
        return Err(ApiError::UnsupportedOperation(
            "Generic secrets do not rotate automatically; put new versions with PutSecretValue."
                .into(),
        ));
    }
    if p.optional("Policy").is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::UnsupportedOperation(
            "Secret policies are not supported; grant access with application access points."
                .into(),
        ));
    }
    Ok(())
}

pub(crate) async fn create<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let name = secret_name(p.required("SecretName")?)?.to_owned();
    generic_only(p)?;
    let version_id = label("VersionId", p.required("VersionId")?)?.to_owned();
    let (value, data_type) = secret_data(p)?;
    let key = resolve(app, p.required("EncryptionKeyId")?).await?;
    check_encryption_key(&key)?;
    if let Some(instance) = p.optional("DKMSInstanceId")
        && instance != key.instance_id
    {
        return Err(ApiError::invalid(
            "EncryptionKeyId",
            format!(
                "the key {} is in instance {}, not {instance}",
                key.id, key.instance_id
            ),
        ));
    }
    let tags = match p.optional("Tags") {
        Some(_) => super::tags::parse(p, "Tags")?,
        None => Vec::new(),
    };
    let at = now();
    let secret = Secret {
        name: name.clone(),
        instance_id: key.instance_id.clone(),
        secret_type: GENERIC.to_owned(),
        encryption_key_id: key.id.clone(),
        description: description(p)?.unwrap_or_default(),
        extended_config: extended_config(p)?.unwrap_or_default(),
        tags,
        created_at: at,
        updated_at: at,
        planned_delete_at: None,
        version: 1,
    };
    // The quota is checked again, atomically, by the store; this early look only spares
    // the HSM a seal that could not be kept.
    let instance = super::instances::load(app, &key.instance_id).await?;
    let ciphertext = seal(app, &key, &name, &version_id, &value, "CreateSecret").await?;
    let first = SecretVersion {
        secret_name: name.clone(),
        version_id: version_id.clone(),
        data_type,
        ciphertext,
        stages: vec![stages::ACS_CURRENT.to_owned()],
        created_at: at,
    };
    match app
        .store
        .create_secret(&secret, &first, u64::from(instance.secret_quota))
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::AccessExists {
                kind: "secret",
                name,
            });
        }
        Err(StoreError::NotFound(what)) => {
            return Err(ApiError::ResourceInUse(format!(
                "The instance or key changed while the secret was made ({what}); retry."
            )));
        }
        Err(StoreError::QuotaExceeded(_)) => {
            return Err(ApiError::LimitExceeded(format!(
                "The instance {} holds its quota of {} secrets (SecretNum).",
                instance.id, instance.secret_quota
            )));
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(secret = %name, key = %key.id, "secret created");
    Ok(answer([
        ("Arn", json!(arn(app, "secret", &name))),
        ("SecretName", json!(name)),
        ("SecretType", json!(GENERIC)),
        ("VersionId", json!(version_id)),
        ("DKMSInstanceId", json!(key.instance_id)),
        ("AutomaticRotation", json!("Disabled")),
    ]))
}

fn tags_value(tags: &[Tag]) -> Value {
    let list: Vec<Value> = tags
        .iter()
        .map(|t| json!({"TagKey": t.key, "TagValue": t.value}))
        .collect();
    json!({ "Tag": list })
}

pub(crate) async fn describe<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let secret = load(app, p.required("SecretName")?).await?;
    let mut out = answer([
        ("Arn", json!(arn(app, "secret", &secret.name))),
        ("SecretName", json!(secret.name)),
        ("SecretType", json!(secret.secret_type)),
        ("Description", json!(secret.description)),
        ("EncryptionKeyId", json!(secret.encryption_key_id)),
        ("DKMSInstanceId", json!(secret.instance_id)),
        ("CreateTime", json!(iso(Some(secret.created_at)))),
        ("UpdateTime", json!(iso(Some(secret.updated_at)))),
        ("AutomaticRotation", json!("Disabled")),
        ("ExtendedConfig", json!(secret.extended_config)),
    ]);
    if let Some(at) = secret.planned_delete_at {
        out.insert("PlannedDeleteTime".into(), json!(iso(Some(at))));
    }
    if p.bool_or("FetchTags", false)? {
        out.insert("Tags".into(), tags_value(&secret.tags));
    }
    Ok(out)
}

#[derive(Deserialize)]
struct WireFilter {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Values")]
    values: Vec<String>,
}

fn filter_of(p: &Params) -> Result<SecretFilter, ApiError> {
    let mut filter = SecretFilter::default();
    if p.optional("Filters").is_none_or(str::is_empty) {
        return Ok(filter);
    }
    let wire: Vec<WireFilter> = p.json("Filters")?;
    for WireFilter { key, values } in wire {
        let target = match key.as_str() {
            "SecretName" => &mut filter.name_contains,
            "Description" => &mut filter.description_contains,
            "TagKey" => &mut filter.tag_keys,
            "TagValue" => &mut filter.tag_values,
            "DKMSInstanceId" => {
                let [one] = values.as_slice() else {
                    return Err(ApiError::invalid(
                        "Filters",
                        "DKMSInstanceId takes exactly one value",
                    ));
                };
                filter.instance_id = Some(one.clone());
                continue;
            }
            other => {
                return Err(ApiError::invalid(
                    "Filters",
                    format!(
                        "{other:?} is not one of SecretName, Description, TagKey, TagValue, DKMSInstanceId"
                    ),
                ));
            }
        };
        target.extend(values);
    }
    Ok(filter)
}

pub(crate) async fn list<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let page = p.page_of(SECRET_PAGE_SIZE)?;
    let filter = filter_of(p)?;
    let fetch_tags = p.bool_or("FetchTags", false)?;
    let found = app.store.list_secrets(&filter, page).await?;
    let items = found
        .items
        .iter()
        .map(|s| {
            let mut item = answer([
                ("SecretName", json!(s.name)),
                ("SecretType", json!(s.secret_type)),
                ("CreateTime", json!(iso(Some(s.created_at)))),
                ("UpdateTime", json!(iso(Some(s.updated_at)))),
            ]);
            if let Some(at) = s.planned_delete_at {
                item.insert("PlannedDeleteTime".into(), json!(iso(Some(at))));
            }
            if fetch_tags {
                item.insert("Tags".into(), tags_value(&s.tags));
            }
            Value::Object(item)
        })
        .collect();
    Ok(page_answer(
        page,
        found.total,
        "SecretList",
        "Secret",
        items,
    ))
}

pub(crate) async fn update<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let name = p.required("SecretName")?;
    let new_description = description(p)?;
    let new_config = extended_config(p)?;
    if p.optional("CustomData").is_some() {
        return Err(ApiError::UnsupportedOperation(
            "CustomData belongs to managed secrets; only Generic secrets are kept here.".into(),
        ));
    }
    let stored = modify(app, name, |s| {
        if s.planned_delete_at.is_some() {
            return Err(ApiError::SecretPendingDeletion(s.name.clone()));
        }
        if let Some(d) = &new_description {
            s.description.clone_from(d);
        }
        if let Some(c) = &new_config {
            s.extended_config = merge_config(&s.extended_config, c)?;
        }
        Ok(())
    })
    .await?;
    Ok(answer([("SecretName", json!(stored.name))]))
}

pub(crate) async fn delete<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let name = p.required("SecretName")?;
    let force = p.bool_or("ForceDeleteWithoutRecovery", false)?;
    if force && p.optional("RecoveryWindowInDays").is_some() {
        return Err(ApiError::invalid(
            "RecoveryWindowInDays",
            "cannot be given with ForceDeleteWithoutRecovery=true",
        ));
    }
    let days = p.u32_in("RecoveryWindowInDays", 30, RECOVERY_DAYS)?;
    let at = now();
    if force {
        load(app, name).await?;
        match app.store.delete_secret(name).await {
            Ok(()) | Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        tracing::info!(secret = %name, "secret destroyed at once (ForceDeleteWithoutRecovery)");
        return Ok(answer([
            ("SecretName", json!(name)),
            ("PlannedDeleteTime", json!(iso(Some(at)))),
        ]));
    }
    // Deleting a secret already scheduled keeps its date (the call is idempotent).
    let stored = modify(app, name, |s| {
        if s.planned_delete_at.is_none() {
            s.planned_delete_at = Some(at.saturating_add(i64::from(days).saturating_mul(DAY)));
        }
        Ok(())
    })
    .await?;
    tracing::info!(secret = %name, days, "secret deletion scheduled");
    Ok(answer([
        ("SecretName", json!(stored.name)),
        ("PlannedDeleteTime", json!(iso(stored.planned_delete_at))),
    ]))
}

pub(crate) async fn restore<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let name = p.required("SecretName")?;
    let stored = modify(app, name, |s| {
        s.planned_delete_at = None;
        Ok(())
    })
    .await?;
    tracing::info!(secret = %name, "secret restored");
    Ok(answer([("SecretName", json!(stored.name))]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params(
            pairs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn names_and_labels() {
        assert!(secret_name("db/prod+main=1.x@y_z-w").is_ok());
        assert!(secret_name(&"a".repeat(192)).is_ok());
        for bad in ["", "acs/x", "a b", "é", &"a".repeat(193)] {
            assert!(secret_name(bad).is_err(), "{bad:?}");
        }
        assert!(label("VersionId", "v1.2-x_y").is_ok());
        for bad in ["", "a/b", &"v".repeat(65)] {
            assert!(label("VersionId", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn data_types() {
        let (text, t) = secret_data(&params(&[("SecretData", "pässword")])).unwrap();
        assert_eq!(
            (text.expose_secret(), t.as_str()),
            ("pässword".as_bytes(), TEXT)
        );
        let (bin, t) = secret_data(&params(&[
            ("SecretData", "AP8B"),
            ("SecretDataType", "binary"),
        ]))
        .unwrap();
        assert_eq!(
            (bin.expose_secret(), t.as_str()),
            (&[0u8, 255, 1][..], BINARY)
        );
        let big = "x".repeat(MAX_VALUE + 1);
        for bad in [
            params(&[("SecretData", "x"), ("SecretDataType", "json")]),
            params(&[("SecretData", "not base64!"), ("SecretDataType", "binary")]),
            params(&[("SecretData", &big)]),
        ] {
            assert_eq!(secret_data(&bad).unwrap_err().code(), "InvalidParameter");
        }
    }

    #[test]
    fn filters() {
        let f = filter_of(&params(&[(
            "Filters",
            r#"[{"Key":"SecretName","Values":["db","api"]},{"Key":"TagKey","Values":["env"]},{"Key":"DKMSInstanceId","Values":["kst-1"]}]"#,
        )]))
        .unwrap();
        assert_eq!(f.name_contains, ["db", "api"]);
        assert_eq!(f.tag_keys, ["env"]);
        assert_eq!(f.instance_id.as_deref(), Some("kst-1"));
        assert!(
            filter_of(&params(&[(
                "Filters",
                r#"[{"Key":"Color","Values":["x"]}]"#
            )]))
            .is_err()
        );
        assert!(filter_of(&params(&[("Filters", "nope")])).is_err());
    }

    #[test]
    fn flattened_extended_config() {
        let p = params(&[
            ("ExtendedConfig.CustomData.Host", "db1"),
            ("ExtendedConfig.CustomData.Port", "5432"),
            ("ExtendedConfig.Owner", "ops"),
        ]);
        let text = extended_config(&p).unwrap().unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            json!({"CustomData": {"Host": "db1", "Port": "5432"}, "Owner": "ops"})
        );
        assert!(extended_config(&params(&[])).unwrap().is_none());
        let clash = params(&[("ExtendedConfig.A", "x"), ("ExtendedConfig.A.B", "y")]);
        assert!(extended_config(&clash).is_err());
        assert_eq!(
            merge_config(r#"{"A":1,"B":2}"#, r#"{"B":3}"#).unwrap(),
            r#"{"A":1,"B":3}"#
        );
    }

    #[test]
    fn managed_types_are_refused() {
        assert_eq!(
            generic_only(&params(&[("SecretType", "Rds")]))
                .unwrap_err()
                .code(),
            "UnsupportedOperation"
        );
        assert_eq!(
            generic_only(&params(&[("EnableAutomaticRotation", "true")]))
                .unwrap_err()
                .code(),
            "UnsupportedOperation"
        );
        assert!(generic_only(&params(&[("SecretType", "Generic")])).is_ok());
    }
}

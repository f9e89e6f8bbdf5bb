//! Keys (`docs/keys.md`): CreateKey, DescribeKey, ListKeys, GetPublicKey, and what every
//! key action shares — resolving a key id, alias or ARN, the instance a key may be used
//! in, compare-and-set updates, and the `KeyMetadata` answer.

use std::str::FromStr;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use strongroom_crypto::policy;
use strongroom_crypto::spec::{KeySpec, KeyUsage};
use strongroom_hsm::Reply;
use strongroom_proto::hsm::v1::{GenerateKey, KeyRef};
use strongroom_store::{
    Instance, InstanceStatus, Key, KeyFilter, KeyState, KeyVersion, Store, StoreError,
};

use super::params::Params;
use super::{Answer, answer, page_answer};
use crate::app::{App, iso, now, random_id, random_uuid};
use crate::error::ApiError;

/// `Origin` of keys made in the HSM.
pub const ORIGIN_KMS: &str = "Aliyun_KMS";
/// `Origin` of keys whose material is imported.
pub const ORIGIN_EXTERNAL: &str = "EXTERNAL";
/// The only protection level: every key is in the HSM cluster's custody.
pub const PROTECTION_HSM: &str = "HSM";
/// Longest `Description`.
pub const MAX_DESCRIPTION: usize = 8192;
/// Default page size of the key and alias lists (the cloud's).
pub const KEY_PAGE_SIZE: u32 = 10;

/// A key named by `KeyId`: a key id, an alias (`alias/…`) or an ARN of either.
///
/// # Errors
/// [`ApiError::KeyNotFound`] / [`ApiError::AliasNotFound`].
pub async fn resolve<S: Store>(app: &App<S>, name: &str) -> Result<Key, ApiError> {
    let name = name.trim();
    let short = match name.strip_prefix("acs:kms:") {
        Some(arn) => arn_resource(arn).ok_or_else(|| ApiError::KeyNotFound(name.to_owned()))?,
        None => name.to_owned(),
    };
    let key_id = if short.starts_with("alias/") {
        match app.store.get_alias(&short).await {
            Ok(alias) => alias.key_id,
            Err(StoreError::NotFound(_)) => return Err(ApiError::AliasNotFound(short)),
            Err(e) => return Err(e.into()),
        }
    } else {
        short
    };
    load(app, &key_id).await
}

/// `key/<id>` or `alias/<name>` of an ARN without its `acs:kms:` prefix
/// (`<region>:<account>:key/<id>`).
fn arn_resource(rest: &str) -> Option<String> {
    let resource = rest.splitn(3, ':').nth(2)?;
    if let Some(id) = resource.strip_prefix("key/") {
        Some(id.to_owned())
    } else if resource.starts_with("alias/") {
        Some(resource.to_owned())
    } else {
        None
    }
}

/// A key by id.
///
/// # Errors
/// [`ApiError::KeyNotFound`].
pub async fn load<S: Store>(app: &App<S>, id: &str) -> Result<Key, ApiError> {
    app.store.get_key(id).await.map_err(|e| match e {
        StoreError::NotFound(_) => ApiError::KeyNotFound(id.to_owned()),
        other => other.into(),
    })
}

/// The instance a key operation runs in: it must exist, be `Connected` and within its
/// term.
///
/// # Errors
/// [`ApiError::InstanceNotFound`] / [`ApiError::InstanceStateInvalid`].
pub async fn usable_instance<S: Store>(app: &App<S>, id: &str) -> Result<Instance, ApiError> {
    let instance = super::instances::load(app, id).await?;
    if instance.status != InstanceStatus::Connected {
        return Err(ApiError::InstanceStateInvalid(format!(
            "The instance {id} is {}; keys are used only in a Connected instance.",
            instance.status.as_str()
        )));
    }
    if super::instances::is_expired(&instance, now()) {
        return Err(super::instances::expired(&instance));
    }
    Ok(instance)
}

/// Reads a key, applies `change` and stores it with compare-and-set, retrying with a
/// fresh read when another request changed the key meanwhile.
///
/// # Errors
/// `change`'s error, [`ApiError::KeyNotFound`], or a conflict after repeated races.
pub async fn modify<S, F>(app: &App<S>, id: &str, mut change: F) -> Result<Key, ApiError>
where
    S: Store,
    F: FnMut(&mut Key) -> Result<(), ApiError>,
{
    let mut retry = super::contention::Retry::new();
    loop {
        let mut key = load(app, id).await?;
        change(&mut key)?;
        key.updated_at = now();
        match app.store.update_key(&key).await {
            Ok(stored) => return Ok(stored),
            Err(StoreError::Conflict(_)) => {}
            Err(StoreError::NotFound(_)) => return Err(ApiError::KeyNotFound(id.to_owned())),
            Err(e) => return Err(e.into()),
        }
        if !retry.again().await {
            break;
        }
    }
    Err(StoreError::Conflict(format!(
        "key {id} changed {} times meanwhile",
        retry.attempts()
    ))
    .into())
}

/// `Rejected.<State>` for an action the key's state does not allow.
pub fn wrong_state(key: &Key, action: &str) -> ApiError {
    ApiError::KeyState {
        state: key.state.as_str(),
        message: format!(
            "{action} is not allowed on the key {} in this state.",
            key.id
        ),
    }
}

/// The key's spec, parsed.
///
/// # Errors
/// [`ApiError::Internal`] for a stored spec this version does not know.
pub fn spec_of(key: &Key) -> Result<KeySpec, ApiError> {
    KeySpec::from_str(&key.spec)
        .map_err(|_| ApiError::Internal(format!("key {} has an unknown spec", key.id)))
}

/// Whether `key` may be used for `usage` (its usage or its additional usage).
pub fn allows(key: &Key, usage: KeyUsage) -> bool {
    key.usage == usage.as_str() || key.additional_usage == usage.as_str()
}

/// The link's reference to one version of `key`, for an operation of `usage`.
pub fn key_ref(key: &Key, version: &KeyVersion, usage: KeyUsage) -> Result<KeyRef, ApiError> {
    let blob = version.blob.clone().ok_or_else(|| ApiError::KeyState {
        state: KeyState::PendingImport.as_str(),
        message: format!("the key {} has no material", key.id),
    })?;
    Ok(KeyRef {
        key_id: key.id.clone(),
        version_id: version.version_id.clone(),
        key_spec: key.spec.clone(),
        key_usage: usage.as_str().to_owned(),
        blob,
    })
}

/// A version of a key by id.
///
/// # Errors
/// [`ApiError::KeyVersionNotFound`].
pub async fn version<S: Store>(
    app: &App<S>,
    key: &Key,
    version_id: &str,
) -> Result<KeyVersion, ApiError> {
    app.store
        .get_key_version(&key.id, version_id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => ApiError::KeyVersionNotFound(version_id.to_owned()),
            other => other.into(),
        })
}

/// A key's ARN.
pub fn key_arn<S>(app: &App<S>, instance_region: &str, key_id: &str) -> String {
    format!("acs:kms:{instance_region}:{}:key/{key_id}", app.account_id)
}

/// The region of the deployment (every instance's region is the node's by default).
pub fn region<S>(app: &App<S>) -> &str {
    &app.config.region
}

/// `AutomaticRotation` as the cloud shows it.
pub fn rotation_status(key: &Key) -> &'static str {
    match (key.automatic_rotation, key.state) {
        (false, _) => "Disabled",
        (true, KeyState::Enabled) => "Enabled",
        (true, _) => "Suspended",
    }
}

/// `KeyMetadata`.
pub fn metadata<S>(app: &App<S>, key: &Key) -> Value {
    let mut m = json!({
        "KeyId": key.id,
        "Arn": key_arn(app, region(app), &key.id),
        "KeySpec": key.spec,
        "KeyUsage": key.usage,
        "KeyState": key.state.as_str(),
        "Origin": key.origin,
        "ProtectionLevel": key.protection_level,
        "Description": key.description,
        "Creator": key.creator,
        "CreationDate": iso(Some(key.created_at)),
        "DeletionProtection": if key.deletion_protection { "Enabled" } else { "Disabled" },
        "DeletionProtectionDescription": key.deletion_protection_description,
        "AutomaticRotation": rotation_status(key),
        "LastRotationDate": iso(Some(key.last_rotation)),
        "PrimaryKeyVersion": key.primary_version,
        "MaterialExpireTime": key.material_expires_at.map(|t| iso(Some(t))).unwrap_or_default(),
        "DKMSInstanceId": key.instance_id,
    });
    if let Some(obj) = m.as_object_mut() {
        if !key.additional_usage.is_empty() {
            obj.insert("AdditionalKeyUsage".into(), json!(key.additional_usage));
        }
        if let Some(date) = key
            .delete_date
            .filter(|_| key.state == KeyState::PendingDeletion)
        {
            obj.insert("DeleteDate".into(), json!(iso(Some(date))));
        }
        if key.rotation_interval_secs > 0 {
            obj.insert(
                "RotationInterval".into(),
                json!(format!("{}s", key.rotation_interval_secs)),
            );
        }
        if let Some(next) = key.next_rotation.filter(|_| key.automatic_rotation) {
            obj.insert("NextRotationDate".into(), json!(iso(Some(next))));
        }
    }
    m
}

/// A wire name (spec, usage, algorithm) parsed, or `InvalidParameter` naming `name`.
///
/// # Errors
/// [`ApiError::InvalidParameter`].
pub fn parse_wire<T: FromStr>(name: &str, value: &str) -> Result<T, ApiError> {
    T::from_str(value).map_err(|_| ApiError::invalid(name, format!("{value:?} is not supported")))
}

/// A `Description` within the limit.
///
/// # Errors
/// [`ApiError::InvalidParameter`].
pub fn description(p: &Params) -> Result<String, ApiError> {
    let text = p.optional("Description").unwrap_or_default();
    if text.chars().count() > MAX_DESCRIPTION {
        return Err(ApiError::invalid(
            "Description",
            format!("is longer than {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(text.to_owned())
}

pub(crate) async fn create<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let instance_id = p.required("DKMSInstanceId")?;
    let spec: KeySpec = parse_wire("KeySpec", p.optional("KeySpec").unwrap_or("Aliyun_AES_256"))?;
    let usage: KeyUsage = match p.optional("KeyUsage") {
        Some(text) => parse_wire("KeyUsage", text)?,
        None => policy::default_usage(spec),
    };
    if !policy::usage_allowed(spec, usage) {
        return Err(ApiError::invalid(
            "KeyUsage",
            format!(
                "a {} key cannot have the usage {}",
                spec.as_str(),
                usage.as_str()
            ),
        ));
    }
    let additional = match p.optional("AdditionalKeyUsage") {
        None => String::new(),
        Some(text) => {
            let extra: KeyUsage = parse_wire("AdditionalKeyUsage", text)?;
            if !spec.is_asymmetric() || extra == usage || !policy::usage_allowed(spec, extra) {
                return Err(ApiError::invalid(
                    "AdditionalKeyUsage",
                    format!(
                        "a {} key with the usage {} cannot also have the usage {}",
                        spec.as_str(),
                        usage.as_str(),
                        extra.as_str()
                    ),
                ));
            }
            extra.as_str().to_owned()
        }
    };
    let origin = match p.optional("Origin").unwrap_or(ORIGIN_KMS) {
        ORIGIN_KMS => ORIGIN_KMS,
        ORIGIN_EXTERNAL => ORIGIN_EXTERNAL,
        other => {
            return Err(ApiError::invalid(
                "Origin",
                format!("{other:?} is not Aliyun_KMS or EXTERNAL"),
            ));
        }
    };
    match p.optional("ProtectionLevel") {
        None | Some(PROTECTION_HSM) => {}
        Some(other) => {
            return Err(ApiError::invalid(
                "ProtectionLevel",
                format!("{other:?}: every key of an instance here is HSM-protected"),
            ));
        }
    }
    match p.optional("KeyStorageMechanism") {
        None | Some("HsmEncryptedDatabase") => {}
        Some(other) => {
            return Err(ApiError::invalid(
                "KeyStorageMechanism",
                format!(
                    "{other:?}: keys here are HSM-encrypted blobs in the database \
                     (HsmEncryptedDatabase)"
                ),
            ));
        }
    }
    let description = description(p)?;
    let tags = match p.optional("Tags") {
        Some(_) => super::tags::parse(p, "Tags")?,
        None => Vec::new(),
    };
    let rotation = super::key_versions::RotationRequest::from_params(p)?;
    if rotation.enable && (!spec.is_symmetric() || origin != ORIGIN_KMS) {
        return Err(ApiError::UnsupportedOperation(format!(
            "Automatic rotation is only for symmetric keys made in the HSM, not a {} key of \
             origin {origin}.",
            spec.as_str()
        )));
    }
    let instance = usable_instance(app, instance_id).await?;
    let key_id = random_id("key-", 24)?;
    let version_id = random_uuid()?;
    let at = now();
    let (blob, public_key) = if origin == ORIGIN_KMS {
        let reply = app
            .hsm
            .call(
                app,
                &instance,
                strongroom_hsm::Op::GenerateKey(GenerateKey {
                    key_id: key_id.clone(),
                    version_id: version_id.clone(),
                    key_spec: spec.as_str().to_owned(),
                    key_usage: usage.as_str().to_owned(),
                }),
            )
            .await?;
        let Reply::GenerateKey(made) = reply else {
            return Err(ApiError::Internal(
                "the HSM answered GenerateKey with another reply".into(),
            ));
        };
        let public = (!made.public_key.is_empty()).then_some(made.public_key);
        (Some(made.blob), public)
    } else {
        (None, None)
    };
    let interval = rotation.interval_or_default();
    let key = Key {
        id: key_id,
        instance_id: instance.id.clone(),
        spec: spec.as_str().to_owned(),
        usage: usage.as_str().to_owned(),
        additional_usage: additional,
        origin: origin.to_owned(),
        protection_level: PROTECTION_HSM.to_owned(),
        description,
        creator: app.account_id.clone(),
        state: if origin == ORIGIN_KMS {
            KeyState::Enabled
        } else {
            KeyState::PendingImport
        },
        created_at: at,
        delete_date: None,
        deletion_protection: false,
        deletion_protection_description: String::new(),
        automatic_rotation: rotation.enable,
        rotation_interval_secs: if rotation.enable {
            interval
        } else {
            rotation.interval.unwrap_or(0)
        },
        last_rotation: at,
        next_rotation: rotation.enable.then(|| at.saturating_add(interval)),
        primary_version: version_id.clone(),
        material_expires_at: None,
        tags,
        updated_at: at,
        version: 1,
    };
    let first = KeyVersion {
        key_id: key.id.clone(),
        version_id,
        created_at: at,
        blob,
        public_key,
    };
    app.store
        .create_key(&key, &first, u64::from(instance.key_quota))
        .await
        .map_err(|e| match e {
            StoreError::QuotaExceeded(_) => quota_exceeded(&instance),
            StoreError::NotFound(_) => ApiError::InstanceNotFound(instance.id.clone()),
            other => other.into(),
        })?;
    tracing::info!(key = %key.id, instance = %key.instance_id, spec = %key.spec, origin = %key.origin, "key created");
    Ok(answer([("KeyMetadata", metadata(app, &key))]))
}

/// `Rejected.LimitExceeded` for an instance whose key quota is used up.
pub fn quota_exceeded(instance: &Instance) -> ApiError {
    ApiError::LimitExceeded(format!(
        "The instance {} holds its quota of {} key versions (KeyNum); every key version \
         counts.",
        instance.id, instance.key_quota
    ))
}

pub(crate) async fn describe<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let key = resolve(app, p.required("KeyId")?).await?;
    Ok(answer([("KeyMetadata", metadata(app, &key))]))
}

#[derive(Deserialize)]
struct Filter {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Values", default)]
    values: Vec<String>,
}

fn filter(p: &Params) -> Result<Option<KeyFilter>, ApiError> {
    let mut f = KeyFilter::default();
    if p.optional("Filters").is_none() {
        return Ok(Some(f));
    }
    let filters: Vec<Filter> = p.json("Filters")?;
    if filters.len() > 10 {
        return Err(ApiError::invalid("Filters", "has more than 10 entries"));
    }
    for Filter { key, values } in filters {
        if values.len() > 10 {
            return Err(ApiError::invalid(
                "Filters",
                format!("{key} has more than 10 values"),
            ));
        }
        match key.as_str() {
            "KeyState" => {
                for v in &values {
                    f.states.push(KeyState::parse(v).map_err(|_| {
                        ApiError::invalid("Filters", format!("{v:?} is not a key state"))
                    })?);
                }
            }
            "KeySpec" => f.specs.extend(values),
            "KeyUsage" => f.usages.extend(values),
            "ProtectionLevel" => f.protection_levels.extend(values),
            "DKMSInstanceId" => {
                // One instance per filter entry; several values: none can match all.
                match values.as_slice() {
                    [one] => f.instance_id = Some(one.clone()),
                    [] => {}
                    _ => {
                        return Err(ApiError::invalid(
                            "Filters",
                            "DKMSInstanceId takes one value",
                        ));
                    }
                }
            }
            "KeyId" | "keyId" => f.key_ids.extend(values),
            "AliasName" => f.alias_names.extend(values),
            "Creator" => f.creators.extend(values),
            "TagKey" => f.tag_keys.extend(values),
            "TagValue" => f.tag_values.extend(values),
            // Every key here is made by a user; asking only for service keys finds none.
            "CreatorType" => {
                if !values.is_empty() && !values.iter().any(|v| v == "User") {
                    return Ok(None);
                }
            }
            other => {
                return Err(ApiError::invalid(
                    "Filters",
                    format!("{other:?} is not a key property one can filter on"),
                ));
            }
        }
    }
    Ok(Some(f))
}

pub(crate) async fn list<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let page = p.page_of(KEY_PAGE_SIZE)?;
    let (items, total) = match filter(p)? {
        Some(f) => {
            let found = app.store.list_keys(&f, page).await?;
            (found.items, found.total)
        }
        None => (Vec::new(), 0),
    };
    let items = items
        .iter()
        .map(|k| json!({"KeyId": k.id, "KeyArn": key_arn(app, region(app), &k.id)}))
        .collect();
    Ok(page_answer(page, total, "Keys", "Key", items))
}

pub(crate) async fn get_public_key<S: Store>(
    app: &Arc<App<S>>,
    p: &Params,
) -> Result<Answer, ApiError> {
    let key = resolve(app, p.required("KeyId")?).await?;
    if !spec_of(&key)?.is_asymmetric() {
        return Err(ApiError::UnsupportedOperation(format!(
            "The key {} is symmetric ({}); it has no public key.",
            key.id, key.spec
        )));
    }
    if key.state != KeyState::Enabled {
        return Err(wrong_state(&key, "GetPublicKey"));
    }
    let version_id = p.optional("KeyVersionId").unwrap_or(&key.primary_version);
    let v = version(app, &key, version_id).await?;
    let der = v
        .public_key
        .ok_or_else(|| wrong_state(&key, "GetPublicKey"))?;
    let pem = strongroom_crypto::pem::encode("PUBLIC KEY", &der)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(answer([
        ("KeyId", json!(key.id)),
        ("KeyVersionId", json!(v.version_id)),
        ("PublicKey", json!(pem)),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_name_keys_and_aliases() {
        assert_eq!(
            arn_resource("cn-hangzhou:123:key/key-abc").as_deref(),
            Some("key-abc")
        );
        assert_eq!(
            arn_resource("cn-hangzhou:123:alias/app/one").as_deref(),
            Some("alias/app/one")
        );
        assert_eq!(arn_resource("cn-hangzhou:123:keystore/kst-1"), None);
        assert_eq!(arn_resource("garbage"), None);
    }
}

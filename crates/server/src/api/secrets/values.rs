//! A secret's values (`docs/secrets.md`, "Versions and stages"): PutSecretValue,
//! ListSecretVersionIds, UpdateSecretVersionStage and GetSecretValue, and [`read`], what
//! the management API's and the instance API's `GetSecretValue` share.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use strongroom_crypto::secret::SecretBytes;
use strongroom_store::{Secret, SecretVersion, Store, StoreError};
use subtle::ConstantTimeEq as _;

use super::stages::{self, ACS_CURRENT, StageChange, StageMap};
use super::{MAX_VERSIONS, label, live, secret_data};
use crate::api::keys::load as load_key;
use crate::api::params::Params;
use crate::api::{Answer, answer, page_answer};
use crate::app::{App, iso, now};
use crate::error::ApiError;
use crate::secrets::{BINARY, open, seal};

fn version_not_found(id: &str) -> ApiError {
    ApiError::AccessNotFound {
        kind: "secret version",
        name: id.to_owned(),
    }
}

fn stages_value(stages: &[String]) -> Value {
    json!({ "VersionStage": stages })
}

/// A version's value as `SecretData` says it: the text, or base64 of binary data.
///
/// # Errors
/// [`ApiError::Internal`] for a text version that is not UTF-8 (it was stored as text).
pub fn wire_data(version: &SecretVersion, value: &SecretBytes) -> Result<String, ApiError> {
    if version.data_type == BINARY {
        Ok(STANDARD.encode(value.expose_secret()))
    } else {
        String::from_utf8(value.expose_secret().to_vec())
            .map_err(|_| ApiError::Internal("a text secret version is not UTF-8".into()))
    }
}

/// The version of `secret` a read names — `version_id`, else `stage`, else `ACSCurrent`;
/// both given must agree — and its value.
///
/// # Errors
/// [`ApiError::AccessNotFound`] for an unknown version or stage, or a version without
/// the stage asked for; the errors of [`open`].
pub async fn read<S: Store>(
    app: &App<S>,
    secret: &Secret,
    version_id: Option<&str>,
    stage: Option<&str>,
    action: &str,
) -> Result<(SecretVersion, SecretBytes), ApiError> {
    let found = match version_id {
        Some(id) => app.store.get_secret_version(&secret.name, id).await,
        None => {
            let stage = stage.unwrap_or(ACS_CURRENT);
            app.store
                .get_secret_version_by_stage(&secret.name, stage)
                .await
        }
    };
    let version = match found {
        Ok(v) => v,
        Err(StoreError::NotFound(_)) => {
            return Err(version_not_found(
                version_id.or(stage).unwrap_or(ACS_CURRENT),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if let (Some(_), Some(stage)) = (version_id, stage)
        && !version.stages.iter().any(|s| s == stage)
    {
        return Err(ApiError::AccessNotFound {
            kind: "secret stage",
            name: format!("{stage} on version {}", version.version_id),
        });
    }
    let value = open(app, secret, &version, action).await?;
    Ok((version, value))
}

async fn versions<S: Store>(app: &App<S>, name: &str) -> Result<Vec<SecretVersion>, ApiError> {
    app.store
        .list_secret_versions(name)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => ApiError::AccessNotFound {
                kind: "secret",
                name: name.to_owned(),
            },
            other => other.into(),
        })
}

/// Stores the stage map `next` computes from the current versions, with `new_version`
/// if given, retrying on a concurrent change. Returns the secret's versions after.
async fn write<S, F>(
    app: &App<S>,
    name: &str,
    new_version: Option<&SecretVersion>,
    mut next: F,
) -> Result<Vec<SecretVersion>, ApiError>
where
    S: Store,
    F: FnMut(&StageMap, &[SecretVersion]) -> Result<StageMap, ApiError>,
{
    let mut retry = crate::api::contention::Retry::new();
    loop {
        let mut secret = live(app, name).await?;
        let current = versions(app, name).await?;
        if let Some(new) = new_version
            && current.iter().any(|v| v.version_id == new.version_id)
        {
            return Err(ApiError::ResourceInUse(format!(
                "The version {} of secret {name} was put by another request meanwhile.",
                new.version_id
            )));
        }
        let map = next(&stages::map_of(&current), &current)?;
        secret.updated_at = now();
        match app
            .store
            .write_secret_versions(&secret, new_version, &stages::to_store(&map), MAX_VERSIONS)
            .await
        {
            Ok(_) => return versions(app, name).await,
            Err(StoreError::Conflict(_)) => {}
            Err(StoreError::NotFound(what)) => {
                return Err(ApiError::ResourceInUse(format!(
                    "The secret {name} changed meanwhile ({what}); retry."
                )));
            }
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

fn stages_of(versions: &[SecretVersion], id: &str) -> Vec<String> {
    versions
        .iter()
        .find(|v| v.version_id == id)
        .map(|v| v.stages.clone())
        .unwrap_or_default()
}

pub(crate) async fn put<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let name = p.required("SecretName")?;
    let version_id = label("VersionId", p.required("VersionId")?)?.to_owned();
    let (value, data_type) = secret_data(p)?;
    let mut wanted = p.list("VersionStages")?;
    if wanted.is_empty() {
        wanted.push(ACS_CURRENT.to_owned());
    }
    for stage in &wanted {
        label("VersionStages", stage)?;
    }
    let secret = live(app, name).await?;
    // The same version id again: the same value is the same call; another is refused.
    match app.store.get_secret_version(name, &version_id).await {
        Ok(existing) => {
            let (_, stored) = read(app, &secret, Some(&version_id), None, "PutSecretValue").await?;
            let same = existing.data_type == data_type
                && bool::from(stored.expose_secret().ct_eq(value.expose_secret()));
            if !same {
                return Err(ApiError::AccessExists {
                    kind: "secret version",
                    name: format!("{version_id} of secret {name} (with other data)"),
                });
            }
            return Ok(put_answer(name, &version_id, &existing.stages));
        }
        Err(StoreError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let key = load_key(app, &secret.encryption_key_id).await?;
    let ciphertext = seal(app, &key, name, &version_id, &value, "PutSecretValue").await?;
    let version = SecretVersion {
        secret_name: name.to_owned(),
        version_id: version_id.clone(),
        data_type,
        ciphertext,
        stages: Vec::new(),
        created_at: now(),
    };
    let after = write(app, name, Some(&version), |map, _| {
        stages::after_put(map, &version_id, &wanted)
    })
    .await?;
    tracing::info!(secret = %name, version = %version_id, "secret version put");
    Ok(put_answer(
        name,
        &version_id,
        &stages_of(&after, &version_id),
    ))
}

fn put_answer(name: &str, version_id: &str, stages: &[String]) -> Answer {
    answer([
        ("SecretName", json!(name)),
        ("VersionId", json!(version_id)),
        ("VersionStages", stages_value(stages)),
    ])
}

pub(crate) async fn update_stage<S: Store>(
    app: &Arc<App<S>>,
    p: &Params,
) -> Result<Answer, ApiError> {
    let name = p.required("SecretName")?;
    let stage = label("VersionStage", p.required("VersionStage")?)?;
    let remove_from = p.optional("RemoveFromVersion").filter(|s| !s.is_empty());
    let move_to = p.optional("MoveToVersion").filter(|s| !s.is_empty());
    write(app, name, None, |map, current| {
        let ids: Vec<&str> = current.iter().map(|v| v.version_id.as_str()).collect();
        stages::after_update(
            map,
            &ids,
            StageChange {
                stage,
                remove_from,
                move_to,
            },
        )
    })
    .await?;
    tracing::info!(secret = %name, stage, "secret stage moved");
    Ok(answer([("SecretName", json!(name))]))
}

pub(crate) async fn list_version_ids<S: Store>(
    app: &Arc<App<S>>,
    p: &Params,
) -> Result<Answer, ApiError> {
    let name = p.required("SecretName")?;
    let page = p.page()?;
    let include_deprecated = p.bool_or("IncludeDeprecated", false)?;
    live(app, name).await?;
    let all: Vec<SecretVersion> = versions(app, name)
        .await?
        .into_iter()
        .filter(|v| include_deprecated || !v.stages.is_empty())
        .collect();
    let total = u64::try_from(all.len()).unwrap_or(u64::MAX);
    let skip = usize::try_from(u64::from(page.number.saturating_sub(1)) * u64::from(page.size))
        .unwrap_or(usize::MAX);
    let take = usize::try_from(page.size).unwrap_or(usize::MAX);
    let items = all
        .iter()
        .skip(skip)
        .take(take)
        .map(|v| {
            json!({
                "VersionId": v.version_id,
                "CreateTime": iso(Some(v.created_at)),
                "VersionStages": stages_value(&v.stages),
            })
        })
        .collect();
    let mut out = page_answer(page, total, "VersionIds", "VersionId", items);
    out.insert("SecretName".into(), json!(name));
    Ok(out)
}

pub(crate) async fn get<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let secret = live(app, p.required("SecretName")?).await?;
    let version_id = p.optional("VersionId").filter(|s| !s.is_empty());
    let stage = p.optional("VersionStage").filter(|s| !s.is_empty());
    let (version, value) = read(app, &secret, version_id, stage, "GetSecretValue").await?;
    let mut out = answer([
        ("SecretName", json!(secret.name)),
        ("SecretType", json!(secret.secret_type)),
        ("SecretData", json!(wire_data(&version, &value)?)),
        ("SecretDataType", json!(version.data_type)),
        ("VersionId", json!(version.version_id)),
        ("VersionStages", stages_value(&version.stages)),
        ("CreateTime", json!(iso(Some(version.created_at)))),
        ("AutomaticRotation", json!("Disabled")),
    ]);
    if p.bool_or("FetchExtendedConfig", false)? {
        out.insert("ExtendedConfig".into(), json!(secret.extended_config));
    }
    Ok(out)
}

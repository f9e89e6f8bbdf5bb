//! Importing key material (`docs/keys.md`, "Import"): GetParametersForImport,
//! ImportKeyMaterial, DeleteKeyMaterial, and [`drop_material`] for the maintenance
//! task. The wrapping key pair is made by the HSM and kept only as a blob; the HSM
//! unwraps the material and seals it as the key's version blob, so the material never
//! exists in this process.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use strongroom_crypto::import;
use strongroom_crypto::spec::{WrappingAlgorithm, WrappingKeySpec};
use strongroom_hsm::{Op, Reply};
use strongroom_proto::hsm::v1::{GenerateWrappingKey, KeyRef, UnwrapKeyMaterial};
use strongroom_store::{ImportParams, Key, KeyState, Page, Store, StoreError, VersionMaterial};

use super::keys::{ORIGIN_EXTERNAL, parse_wire, resolve, spec_of, usable_instance, wrong_state};
use super::params::Params;
use super::{Answer, answer};
use crate::app::{App, iso, now, random_text};
use crate::error::ApiError;

/// How long import parameters stay valid (24 hours, the cloud's).
pub const TOKEN_LIFETIME_SECS: i64 = 86_400;
/// Longest base64 `EncryptedKeyMaterial` accepted.
const MAX_MATERIAL_B64: usize = 16 * 1024;

fn external_only(key: &Key, action: &str) -> Result<(), ApiError> {
    if key.origin != ORIGIN_EXTERNAL {
        return Err(ApiError::UnsupportedOperation(format!(
            "{action} is only for keys created with Origin EXTERNAL; the key {} was made in \
             the HSM.",
            key.id
        )));
    }
    if key.state == KeyState::PendingDeletion {
        return Err(wrong_state(key, action));
    }
    Ok(())
}

pub(crate) async fn get_parameters<S: Store>(
    app: &Arc<App<S>>,
    p: &Params,
) -> Result<Answer, ApiError> {
    let key = resolve(app, p.required("KeyId")?).await?;
    let spec: WrappingKeySpec = parse_wire("WrappingKeySpec", p.required("WrappingKeySpec")?)?;
    let algorithm: WrappingAlgorithm =
        parse_wire("WrappingAlgorithm", p.required("WrappingAlgorithm")?)?;
    external_only(&key, "GetParametersForImport")?;
    import::check_wrapping(spec, algorithm)
        .map_err(|e| ApiError::invalid("WrappingAlgorithm", e.to_string()))?;
    import::check_import_target(algorithm, spec_of(&key)?)
        .map_err(|e| ApiError::invalid("WrappingAlgorithm", e.to_string()))?;
    let instance = usable_instance(app, &key.instance_id).await?;
    let token = random_text(
        64,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
    )?;
    let reply = app
        .hsm
        .call(
            app,
            &instance,
            Op::GenerateWrappingKey(GenerateWrappingKey {
                key_id: key.id.clone(),
                version_id: token.clone(),
                wrapping_key_spec: spec.as_str().to_owned(),
            }),
        )
        .await?;
    let Reply::GenerateWrappingKey(made) = reply else {
        return Err(ApiError::Internal(
            "the HSM answered GenerateWrappingKey with another reply".into(),
        ));
    };
    let at = now();
    let params = ImportParams {
        token,
        key_id: key.id.clone(),
        wrapping_key_spec: spec.as_str().to_owned(),
        wrapping_algorithm: algorithm.as_str().to_owned(),
        wrapping_blob: made.blob,
        public_key: made.public_key,
        created_at: at,
        expires_at: at.saturating_add(TOKEN_LIFETIME_SECS),
    };
    app.store
        .create_import_params(&params)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => ApiError::KeyNotFound(key.id.clone()),
            other => other.into(),
        })?;
    Ok(answer([
        ("KeyId", json!(key.id)),
        ("ImportToken", json!(params.token)),
        ("PublicKey", json!(STANDARD.encode(&params.public_key))),
        ("TokenExpireTime", json!(iso(Some(params.expires_at)))),
    ]))
}

pub(crate) async fn import_material<S: Store>(
    app: &Arc<App<S>>,
    p: &Params,
) -> Result<Answer, ApiError> {
    let key = resolve(app, p.required("KeyId")?).await?;
    let token = p.required("ImportToken")?;
    let material_b64 = p.required("EncryptedKeyMaterial")?;
    let at = now();
    let expires = match p.optional("KeyMaterialExpireUnix") {
        None => None,
        Some(text) => {
            let t: i64 = text.trim().parse().map_err(|_| {
                ApiError::invalid("KeyMaterialExpireUnix", "is not a Unix time in seconds")
            })?;
            match t {
                0 => None,
                t if t > at => Some(t),
                _ => {
                    return Err(ApiError::invalid(
                        "KeyMaterialExpireUnix",
                        "is in the past (0 means the material never expires)",
                    ));
                }
            }
        }
    };
    external_only(&key, "ImportKeyMaterial")?;
    if material_b64.len() > MAX_MATERIAL_B64 {
        return Err(ApiError::invalid("EncryptedKeyMaterial", "is too long"));
    }
    let encrypted = STANDARD
        .decode(material_b64.trim())
        .map_err(|_| ApiError::invalid("EncryptedKeyMaterial", "is not base64"))?;
    let params = match app.store.get_import_params(token).await {
        Ok(params) if params.key_id == key.id => params,
        Ok(_) | Err(StoreError::NotFound(_)) => {
            return Err(ApiError::invalid(
                "ImportToken",
                format!(
                    "is not a token GetParametersForImport made for the key {}",
                    key.id
                ),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if params.expires_at <= at {
        return Err(ApiError::ImportTokenExpired(iso(Some(params.expires_at))));
    }
    let instance = usable_instance(app, &key.instance_id).await?;
    let version = super::keys::version(app, &key, &key.primary_version).await?;
    // Re-import: the HSM compares the new material with the material the version holds.
    let bound = version.blob.clone().map(|blob| KeyRef {
        key_id: key.id.clone(),
        version_id: version.version_id.clone(),
        key_spec: key.spec.clone(),
        key_usage: key.usage.clone(),
        blob,
    });
    let reimport = bound.is_some();
    let reply = app
        .hsm
        .call(
            app,
            &instance,
            Op::UnwrapKeyMaterial(UnwrapKeyMaterial {
                wrapping_key: Some(KeyRef {
                    key_id: key.id.clone(),
                    version_id: params.token.clone(),
                    key_spec: params.wrapping_key_spec.clone(),
                    key_usage: "ENCRYPT/DECRYPT".to_owned(),
                    blob: params.wrapping_blob.clone(),
                }),
                wrapping_algorithm: params.wrapping_algorithm.clone(),
                encrypted_key_material: encrypted,
                key_id: key.id.clone(),
                version_id: version.version_id.clone(),
                key_spec: key.spec.clone(),
                key_usage: key.usage.clone(),
                bound,
            }),
        )
        .await
        .map_err(|e| match e {
            ApiError::InvalidParameter { reason, .. } => ApiError::InvalidParameter {
                name: "EncryptedKeyMaterial".into(),
                reason,
            },
            other => other,
        })?;
    let Reply::UnwrapKeyMaterial(made) = reply else {
        return Err(ApiError::Internal(
            "the HSM answered UnwrapKeyMaterial with another reply".into(),
        ));
    };
    // After DeleteKeyMaterial an asymmetric key still knows its public key: the material
    // that comes back must be the same key pair (the cloud binds a key to the material
    // first imported into it).
    if !reimport
        && let Some(expected) = &version.public_key
        && *expected != made.public_key
    {
        return Err(ApiError::invalid(
            "EncryptedKeyMaterial",
            "the material differs from the material first imported into this key",
        ));
    }
    let material = VersionMaterial {
        version_id: version.version_id.clone(),
        blob: Some((
            made.blob,
            (!made.public_key.is_empty()).then_some(made.public_key),
        )),
    };
    set_material(app, &key.id, material, |k| {
        if k.state == KeyState::PendingDeletion {
            return Err(wrong_state(k, "ImportKeyMaterial"));
        }
        if k.state == KeyState::PendingImport {
            k.state = KeyState::Enabled;
        }
        k.material_expires_at = expires;
        Ok(())
    })
    .await?;
    tracing::info!(key = %key.id, reimport, "key material imported");
    Ok(answer([]))
}

/// Compare-and-set of a key together with one version's material, retried on races.
async fn set_material<S, F>(
    app: &App<S>,
    key_id: &str,
    material: VersionMaterial,
    mut change: F,
) -> Result<Key, ApiError>
where
    S: Store,
    F: FnMut(&mut Key) -> Result<(), ApiError>,
{
    let mut retry = super::contention::Retry::new();
    loop {
        let mut key = super::keys::load(app, key_id).await?;
        change(&mut key)?;
        key.updated_at = now();
        match app
            .store
            .set_key_material(&key, std::slice::from_ref(&material))
            .await
        {
            Ok(stored) => return Ok(stored),
            Err(StoreError::Conflict(_)) => {}
            Err(StoreError::NotFound(_)) => return Err(ApiError::KeyNotFound(key_id.to_owned())),
            Err(e) => return Err(e.into()),
        }
        if !retry.again().await {
            break;
        }
    }
    Err(StoreError::Conflict(format!("key {key_id} kept changing")).into())
}

/// Deletes the material of every version of `key` and moves it to `PendingImport`
/// (a key pending deletion keeps its state). Used by DeleteKeyMaterial and expiry.
///
/// # Errors
/// Store errors; [`ApiError::KeyNotFound`].
pub async fn drop_material<S: Store>(app: &App<S>, key: &Key) -> Result<Key, ApiError> {
    let versions = app
        .store
        .list_key_versions(
            &key.id,
            Page {
                number: 1,
                size: 100,
            },
        )
        .await?;
    let cleared: Vec<VersionMaterial> = versions
        .items
        .iter()
        .map(|v| VersionMaterial {
            version_id: v.version_id.clone(),
            blob: None,
        })
        .collect();
    let mut next = key.clone();
    if next.state != KeyState::PendingDeletion {
        next.state = KeyState::PendingImport;
    }
    next.material_expires_at = None;
    next.updated_at = now();
    let stored = app.store.set_key_material(&next, &cleared).await?;
    Ok(stored)
}

pub(crate) async fn delete_material<S: Store>(
    app: &Arc<App<S>>,
    p: &Params,
) -> Result<Answer, ApiError> {
    let key = resolve(app, p.required("KeyId")?).await?;
    external_only(&key, "DeleteKeyMaterial")?;
    let mut retry = super::contention::Retry::new();
    loop {
        let current = super::keys::load(app, &key.id).await?;
        external_only(&current, "DeleteKeyMaterial")?;
        match drop_material(app, &current).await {
            Ok(_) => {
                tracing::info!(key = %key.id, "key material deleted");
                return Ok(answer([]));
            }
            Err(ApiError::ResourceInUse(_)) => {}
            Err(e) => return Err(e),
        }
        if !retry.again().await {
            break;
        }
    }
    Err(StoreError::Conflict(format!("key {} kept changing", key.id)).into())
}

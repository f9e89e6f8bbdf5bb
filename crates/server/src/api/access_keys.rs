//! Administrator access keys, in the style of RAM: `CreateAccessKey`, `ListAccessKeys`,
//! `UpdateAccessKey`, `DeleteAccessKey`. A secret is shown once, when made; the store
//! keeps it sealed under the node key (HMAC signatures need the secret itself, so a
//! one-way verifier cannot serve).

use std::sync::Arc;

use serde_json::{Value, json};
use strongroom_store::{AccessKey, AccessKeyStatus, Page, Store, StoreError};
use zeroize::Zeroizing;

use super::{Answer, Params, answer, page_answer};
use crate::app::{App, iso, now, random_text};
use crate::error::ApiError;
use crate::node_key::NodeKey;

const BASE62: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The AAD of an access key's sealed secret.
pub fn secret_purpose(access_key_id: &str) -> String {
    format!("access-key:{access_key_id}")
}

/// Makes and stores a new active access key; returns it and its secret (shown once).
///
/// # Errors
/// [`ApiError`] if the store or the cipher fails.
pub async fn mint<S: Store>(
    store: &S,
    node_key: &NodeKey,
    description: &str,
) -> Result<(AccessKey, Zeroizing<String>), ApiError> {
    let id = format!("LTAI{}", random_text(20, BASE62)?);
    let secret = Zeroizing::new(random_text(30, BASE62)?);
    let key = AccessKey {
        secret_ciphertext: node_key
            .seal(secret.as_bytes(), &secret_purpose(&id))
            .map_err(|e| ApiError::Internal(e.to_string()))?,
        id,
        status: AccessKeyStatus::Active,
        description: description.to_owned(),
        created_at: now(),
    };
    store.create_access_key(&key).await?;
    Ok((key, secret))
}

fn view(key: &AccessKey) -> Value {
    json!({
        "AccessKeyId": key.id,
        "Status": key.status.as_str(),
        "CreateDate": iso(Some(key.created_at)),
        "Description": key.description,
    })
}

pub(crate) async fn create<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let description = p.optional("Description").unwrap_or("");
    if description.chars().count() > 256 {
        return Err(ApiError::invalid("Description", "at most 256 characters"));
    }
    let (key, secret) = mint(&app.store, &app.node_key, description).await?;
    let mut shown = view(&key);
    if let Some(object) = shown.as_object_mut() {
        object.insert("AccessKeySecret".into(), Value::from(secret.as_str()));
    }
    Ok(answer([("AccessKey", shown)]))
}

pub(crate) async fn list<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let page = p.page()?;
    let keys = app.store.list_access_keys(page).await?;
    Ok(page_answer(
        page,
        keys.total,
        "AccessKeys",
        "AccessKey",
        keys.items.iter().map(view).collect(),
    ))
}

async fn load<S: Store>(app: &App<S>, id: &str) -> Result<AccessKey, ApiError> {
    app.store.get_access_key(id).await.map_err(|e| match e {
        StoreError::NotFound(_) => ApiError::AccessKeyNotFound(id.to_owned()),
        other => other.into(),
    })
}

/// Active keys other than `except`.
async fn other_active<S: Store>(app: &App<S>, except: &str) -> Result<usize, ApiError> {
    let mut count = 0;
    let mut number = 1;
    loop {
        let page = app
            .store
            .list_access_keys(Page { number, size: 100 })
            .await?;
        count += page
            .items
            .iter()
            .filter(|k| k.id != except && k.status == AccessKeyStatus::Active)
            .count();
        if page.items.len() < 100 {
            return Ok(count);
        }
        number += 1;
    }
}

pub(crate) async fn update<S: Store>(
    app: &Arc<App<S>>,
    p: &Params,
    _caller: &str,
) -> Result<Answer, ApiError> {
    let id = p.required("UserAccessKeyId")?;
    let status = match p.required("Status")? {
        "Active" => AccessKeyStatus::Active,
        "Inactive" => AccessKeyStatus::Inactive,
        other => {
            return Err(ApiError::invalid(
                "Status",
                format!("{other:?} is neither Active nor Inactive"),
            ));
        }
    };
    let key = load(app, id).await?;
    if status == AccessKeyStatus::Inactive
        && key.status == AccessKeyStatus::Active
        && other_active(app, id).await? == 0
    {
        return Err(ApiError::ResourceInUse(format!(
            "{id} is the last active access key; create another before disabling it"
        )));
    }
    app.store.set_access_key_status(id, status).await?;
    Ok(answer([]))
}

pub(crate) async fn delete<S: Store>(
    app: &Arc<App<S>>,
    p: &Params,
    _caller: &str,
) -> Result<Answer, ApiError> {
    let id = p.required("UserAccessKeyId")?;
    let key = load(app, id).await?;
    if key.status == AccessKeyStatus::Active && other_active(app, id).await? == 0 {
        return Err(ApiError::ResourceInUse(format!(
            "{id} is the last active access key; create another before deleting it"
        )));
    }
    app.store.delete_access_key(id).await.map_err(|e| match e {
        StoreError::NotFound(_) => ApiError::AccessKeyNotFound(id.to_owned()),
        other => other.into(),
    })?;
    Ok(answer([]))
}

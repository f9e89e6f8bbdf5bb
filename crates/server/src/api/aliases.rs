//! Aliases (`docs/keys.md`, "Aliases"): CreateAlias, UpdateAlias, DeleteAlias,
//! ListAliases, ListAliasesByKeyId.

use std::sync::Arc;

use serde_json::{Value, json};
use strongroom_store::{Alias, Store, StoreError};

use super::keys::{KEY_PAGE_SIZE, region, resolve};
use super::params::Params;
use super::{Answer, answer, page_answer};
use crate::app::{App, now};
use crate::error::ApiError;

/// Longest alias name after `alias/`.
pub const MAX_ALIAS_LEN: usize = 255;

/// Checks an alias name: `alias/` then 1–255 letters, digits, `_`, `-` or `/`, not
/// `alias/acs…`.
///
/// # Errors
/// [`ApiError::InvalidParameter`] naming `AliasName`.
pub fn check_name(name: &str) -> Result<(), ApiError> {
    let bad = |why: &str| ApiError::invalid("AliasName", format!("{name:?}: {why}"));
    let Some(rest) = name.strip_prefix("alias/") else {
        return Err(bad("an alias starts with alias/"));
    };
    if rest.is_empty() || rest.len() > MAX_ALIAS_LEN {
        return Err(bad("1 to 255 characters after alias/"));
    }
    if !rest
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/'))
    {
        return Err(bad("only letters, digits, _, - and / after alias/"));
    }
    if rest.starts_with("acs") {
        return Err(bad("alias/acs is reserved"));
    }
    Ok(())
}

fn alias_json<S>(app: &App<S>, a: &Alias) -> Value {
    let short = a.name.strip_prefix("alias/").unwrap_or(&a.name);
    json!({
        "AliasName": a.name,
        "AliasArn": format!("acs:kms:{}:{}:alias/{short}", region(app), app.account_id),
        "KeyId": a.key_id,
    })
}

async fn load<S: Store>(app: &App<S>, name: &str) -> Result<Alias, ApiError> {
    app.store.get_alias(name).await.map_err(|e| match e {
        StoreError::NotFound(_) => ApiError::AliasNotFound(name.to_owned()),
        other => other.into(),
    })
}

pub(crate) async fn create<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let name = p.required("AliasName")?;
    check_name(name)?;
    let key = resolve(app, p.required("KeyId")?).await?;
    let at = now();
    let alias = Alias {
        name: name.to_owned(),
        key_id: key.id.clone(),
        created_at: at,
        updated_at: at,
    };
    app.store.create_alias(&alias).await.map_err(|e| match e {
        StoreError::Conflict(_) => ApiError::AliasExists(name.to_owned()),
        StoreError::NotFound(_) => ApiError::KeyNotFound(key.id.clone()),
        other => other.into(),
    })?;
    Ok(answer([]))
}

pub(crate) async fn update<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let name = p.required("AliasName")?;
    let alias = load(app, name).await?;
    let key = resolve(app, p.required("KeyId")?).await?;
    let current = super::keys::load(app, &alias.key_id).await?;
    if current.instance_id != key.instance_id {
        return Err(ApiError::invalid(
            "KeyId",
            format!(
                "the alias {name} names a key of the instance {}; it can only move to a key of \
                 the same instance",
                current.instance_id
            ),
        ));
    }
    app.store
        .update_alias(name, &key.id, now())
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => ApiError::AliasNotFound(name.to_owned()),
            other => other.into(),
        })?;
    Ok(answer([]))
}

pub(crate) async fn delete<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let name = p.required("AliasName")?;
    app.store.delete_alias(name).await.map_err(|e| match e {
        StoreError::NotFound(_) => ApiError::AliasNotFound(name.to_owned()),
        other => other.into(),
    })?;
    Ok(answer([]))
}

pub(crate) async fn list<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let page = p.page_of(KEY_PAGE_SIZE)?;
    let found = app.store.list_aliases(page).await?;
    let items = found.items.iter().map(|a| alias_json(app, a)).collect();
    Ok(page_answer(page, found.total, "Aliases", "Alias", items))
}

pub(crate) async fn list_by_key<S: Store>(
    app: &Arc<App<S>>,
    p: &Params,
) -> Result<Answer, ApiError> {
    let key = resolve(app, p.required("KeyId")?).await?;
    let page = p.page_of(KEY_PAGE_SIZE)?;
    let found = app.store.list_aliases_by_key(&key.id, page).await?;
    let items = found.items.iter().map(|a| alias_json(app, a)).collect();
    Ok(page_answer(page, found.total, "Aliases", "Alias", items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_names_follow_the_cloud_rules() {
        for good in [
            "alias/a",
            "alias/app-1/prod_key",
            &format!("alias/{}", "x".repeat(255)),
        ] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "a",
            "alias/",
            "alias/acs-thing",
            "alias/has space",
            "alias/ümlaut",
            "Alias/x",
            &format!("alias/{}", "x".repeat(256)),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}

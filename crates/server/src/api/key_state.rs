//! A key's lifecycle (`docs/keys.md`, "States"): UpdateKeyDescription, EnableKey,
//! DisableKey, ScheduleKeyDeletion, CancelKeyDeletion, SetDeletionProtection. Only the
//! cloud's transitions; a call the state does not allow is `409 Rejected.<State>`.

use std::sync::Arc;

use strongroom_store::{Key, KeyState, Store};

use super::keys::{self, ORIGIN_EXTERNAL, description, modify, resolve, wrong_state};
use super::params::Params;
use super::{Answer, answer};
use crate::app::{App, now};
use crate::error::ApiError;

/// Shortest and longest deletion window, days.
pub const DELETION_WINDOW_DAYS: std::ops::RangeInclusive<u32> = 7..=366;
const DAY: i64 = 86_400;

pub(crate) async fn update_description<S: Store>(
    app: &Arc<App<S>>,
    p: &Params,
) -> Result<Answer, ApiError> {
    let key = resolve(app, p.required("KeyId")?).await?;
    let text = description(p)?;
    modify(app, &key.id, |k| {
        if k.state == KeyState::PendingDeletion {
            return Err(wrong_state(k, "UpdateKeyDescription"));
        }
        k.description.clone_from(&text);
        Ok(())
    })
    .await?;
    Ok(answer([]))
}

fn toggle(k: &mut Key, to: KeyState, action: &str) -> Result<(), ApiError> {
    match k.state {
        KeyState::Enabled | KeyState::Disabled => {
            k.state = to;
            Ok(())
        }
        KeyState::PendingDeletion | KeyState::PendingImport => {
            Err(ApiError::StateModifiedFailed(format!(
                "{action} is not allowed on the key {}: it is {}.",
                k.id,
                k.state.as_str()
            )))
        }
    }
}

pub(crate) async fn enable<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let key = resolve(app, p.required("KeyId")?).await?;
    let stored = modify(app, &key.id, |k| toggle(k, KeyState::Enabled, "EnableKey")).await?;
    tracing::info!(key = %stored.id, "key enabled");
    Ok(answer([]))
}

pub(crate) async fn disable<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let key = resolve(app, p.required("KeyId")?).await?;
    let stored = modify(app, &key.id, |k| {
        toggle(k, KeyState::Disabled, "DisableKey")
    })
    .await?;
    tracing::info!(key = %stored.id, "key disabled");
    Ok(answer([]))
}

pub(crate) async fn schedule_deletion<S: Store>(
    app: &Arc<App<S>>,
    p: &Params,
) -> Result<Answer, ApiError> {
    let key = resolve(app, p.required("KeyId")?).await?;
    p.required("PendingWindowInDays")?;
    let days = p.u32_in("PendingWindowInDays", 30, DELETION_WINDOW_DAYS)?;
    // Destroying a key destroys every secret sealed under it: refused while one is
    // (the store also never destroys such a key).
    let secrets = app.store.count_key_secrets(&key.id).await?;
    if secrets > 0 {
        return Err(ApiError::ResourceInUse(format!(
            "The key {} encrypts {secrets} secret(s); delete them first.",
            key.id
        )));
    }
    let at = now();
    let stored = modify(app, &key.id, |k| {
        if k.state == KeyState::PendingDeletion {
            return Err(wrong_state(k, "ScheduleKeyDeletion"));
        }
        if k.deletion_protection {
            return Err(ApiError::DeletionProtection(k.id.clone()));
        }
        k.state = KeyState::PendingDeletion;
        k.delete_date = Some(at.saturating_add(i64::from(days).saturating_mul(DAY)));
        Ok(())
    })
    .await?;
    tracing::info!(key = %stored.id, days, "key deletion scheduled");
    Ok(answer([]))
}

pub(crate) async fn cancel_deletion<S: Store>(
    app: &Arc<App<S>>,
    p: &Params,
) -> Result<Answer, ApiError> {
    let key = resolve(app, p.required("KeyId")?).await?;
    // An imported key whose material is gone goes back to waiting for it.
    let has_material = if key.origin == ORIGIN_EXTERNAL {
        keys::version(app, &key, &key.primary_version)
            .await?
            .blob
            .is_some()
    } else {
        true
    };
    let stored = modify(app, &key.id, |k| {
        if k.state != KeyState::PendingDeletion {
            return Err(wrong_state(k, "CancelKeyDeletion"));
        }
        k.state = if has_material {
            KeyState::Enabled
        } else {
            KeyState::PendingImport
        };
        k.delete_date = None;
        Ok(())
    })
    .await?;
    tracing::info!(key = %stored.id, "key deletion cancelled");
    Ok(answer([]))
}

pub(crate) async fn set_deletion_protection<S: Store>(
    app: &Arc<App<S>>,
    p: &Params,
) -> Result<Answer, ApiError> {
    let name = match (p.optional("ProtectedResourceArn"), p.optional("KeyId")) {
        (Some(arn), _) => arn,
        (None, Some(id)) => id,
        (None, None) => return Err(ApiError::MissingParameter("ProtectedResourceArn".into())),
    };
    p.required("EnableDeletionProtection")?;
    let on = p.bool_or("EnableDeletionProtection", false)?;
    let text = p
        .optional("DeletionProtectionDescription")
        .unwrap_or_default()
        .to_owned();
    if text.chars().count() > keys::MAX_DESCRIPTION {
        return Err(ApiError::invalid(
            "DeletionProtectionDescription",
            format!("is longer than {} characters", keys::MAX_DESCRIPTION),
        ));
    }
    let key = resolve(app, name).await?;
    modify(app, &key.id, |k| {
        if k.state == KeyState::PendingDeletion {
            return Err(wrong_state(k, "SetDeletionProtection"));
        }
        k.deletion_protection = on;
        k.deletion_protection_description = if on { text.clone() } else { String::new() };
        Ok(())
    })
    .await?;
    Ok(answer([]))
}

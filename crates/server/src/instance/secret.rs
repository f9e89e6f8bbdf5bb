//! `GetSecretValue` on the instance API (`spec/instance-api.md` §6.8, `docs/secrets.md`):
//! the secret must be in the instance whose endpoint was called; its value is opened by
//! the instance's HSM cluster ([`crate::secrets`]), exactly as the management API's
//! `GetSecretValue` does.

use strongroom_proto::dkms;
use strongroom_proto::instance::{self as wire, InstanceError};
use strongroom_store::Store;
use tracing::warn;

use super::ops::{Ctx, Done};
use crate::api::secrets::{self, values};
use crate::error::ApiError;

/// The instance API's error for what reading a secret refused.
fn refusal(e: &ApiError) -> InstanceError {
    match e {
        ApiError::AccessNotFound { .. } => InstanceError::resource_not_found(),
        ApiError::SecretPendingDeletion(_) => InstanceError::secret_pending_deletion(),
        ApiError::KeyState { state, .. } => match *state {
            "Disabled" => InstanceError::disabled(),
            "PendingDeletion" => InstanceError::pending_deletion(),
            "PendingImport" => InstanceError::pending_import(),
            _ => InstanceError::internal_failure(),
        },
        ApiError::InstanceNotFound(_) | ApiError::InstanceStateInvalid(_) => {
            InstanceError::instance_state_invalid()
        }
        ApiError::Unavailable(_) => InstanceError::service_unavailable_temporary(),
        other => {
            warn!(code = other.code(), error = %other, "reading a secret failed");
            InstanceError::internal_failure()
        }
    }
}

/// Answers `GetSecretValue` for a caller the access decision has already allowed.
///
/// # Errors
/// `Forbidden.ResourceNotFound` for a secret (or version, or stage) that does not exist
/// in this instance; `Rejected.Disabled` and the other key states when the secret's
/// encryption key is not usable; `Rejected.PendingDeletion` for a secret scheduled for
/// deletion.
pub async fn get_secret_value<S: Store>(
    ctx: Ctx<'_, S>,
    req: dkms::GetSecretValueRequest,
) -> Result<Done, InstanceError> {
    let secret = secrets::live(ctx.app, &req.secret_name)
        .await
        .map_err(|e| refusal(&e))?;
    // A secret of another instance does not exist as far as this endpoint is concerned.
    if secret.instance_id != ctx.instance.id {
        return Err(InstanceError::resource_not_found());
    }
    let version_id = Some(req.version_id.as_str()).filter(|s| !s.is_empty());
    let stage = Some(req.version_stage.as_str()).filter(|s| !s.is_empty());
    let (version, value) = values::read(ctx.app, &secret, version_id, stage, "GetSecretValue")
        .await
        .map_err(|e| refusal(&e))?;
    let data = values::wire_data(&version, &value).map_err(|e| refusal(&e))?;
    let response = dkms::GetSecretValueResponse {
        secret_name: secret.name.clone(),
        secret_type: secret.secret_type.clone(),
        secret_data: data,
        secret_data_type: version.data_type.clone(),
        version_stages: version.stages.clone(),
        version_id: version.version_id.clone(),
        create_time: crate::app::iso(Some(version.created_at)),
        request_id: ctx.request_id.to_owned(),
        last_rotation_date: String::new(),
        next_rotation_date: String::new(),
        extended_config: if req.fetch_extended_config {
            secret.extended_config.clone()
        } else {
            String::new()
        },
        automatic_rotation: "Disabled".to_owned(),
        rotation_interval: String::new(),
    };
    Ok(Done {
        body: wire::encode(&response),
        version_id: None,
    })
}

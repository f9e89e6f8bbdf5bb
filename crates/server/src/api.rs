//! The management API's actions (`docs/management-api.md`): one dispatcher from the
//! `Action` name to its handler. Handlers take the decoded parameters and answer a JSON
//! object without `RequestId` (the HTTP layer adds it).

pub mod access;
pub mod access_keys;
pub mod aliases;
pub mod clusters;
pub mod contention;
pub mod crypto;
pub mod import;
pub mod instances;
pub mod key_state;
pub mod key_versions;
pub mod keys;
pub mod params;
pub mod secrets;
pub mod tags;
pub mod vpcs;

use std::sync::Arc;

use serde_json::{Map, Value};
use strongroom_store::Store;

use crate::app::App;
use crate::error::ApiError;
pub use params::Params;

/// An authenticated request.
#[derive(Debug, Clone)]
pub struct Call {
    /// The action.
    pub action: String,
    /// Every parameter.
    pub params: Params,
    /// Who signed it.
    pub access_key_id: String,
}

/// A JSON object answer.
pub type Answer = Map<String, Value>;

/// Every action this node serves, in the order of the docs.
pub const ACTIONS: &[&str] = &[
    "CreateKmsInstance",
    "GetKmsInstance",
    "ListKmsInstances",
    "ConnectKmsInstance",
    "UpdateKmsInstanceBindVpc",
    "GetKmsInstanceQuotaInfos",
    "RenewKmsInstance",
    "ReleaseKmsInstance",
    "RegisterHsmCluster",
    "GetHsmCluster",
    "ListHsmClusters",
    "DeregisterHsmCluster",
    "CreateVpc",
    "DescribeVpc",
    "ListVpcs",
    "DeleteVpc",
    "CreateAccessKey",
    "ListAccessKeys",
    "UpdateAccessKey",
    "DeleteAccessKey",
    "CreateKey",
    "DescribeKey",
    "ListKeys",
    "UpdateKeyDescription",
    "EnableKey",
    "DisableKey",
    "ScheduleKeyDeletion",
    "CancelKeyDeletion",
    "SetDeletionProtection",
    "TagResource",
    "UntagResource",
    "ListResourceTags",
    "CreateAlias",
    "UpdateAlias",
    "DeleteAlias",
    "ListAliases",
    "ListAliasesByKeyId",
    "CreateKeyVersion",
    "DescribeKeyVersion",
    "ListKeyVersions",
    "UpdateRotationPolicy",
    "GetPublicKey",
    "GetParametersForImport",
    "ImportKeyMaterial",
    "DeleteKeyMaterial",
    "Encrypt",
    "Decrypt",
    "AsymmetricEncrypt",
    "AsymmetricDecrypt",
    "AsymmetricSign",
    "AsymmetricVerify",
    "CreateNetworkRule",
    "UpdateNetworkRule",
    "DescribeNetworkRule",
    "ListNetworkRules",
    "DeleteNetworkRule",
    "CreatePolicy",
    "UpdatePolicy",
    "DescribePolicy",
    "ListPolicies",
    "DeletePolicy",
    "CreateApplicationAccessPoint",
    "UpdateApplicationAccessPoint",
    "DescribeApplicationAccessPoint",
    "ListApplicationAccessPoints",
    "DeleteApplicationAccessPoint",
    "CreateClientKey",
    "GetClientKey",
    "ListClientKeys",
    "DeleteClientKey",
    "CreateSecret",
    "DescribeSecret",
    "ListSecrets",
    "UpdateSecret",
    "PutSecretValue",
    "ListSecretVersionIds",
    "UpdateSecretVersionStage",
    "GetSecretValue",
    "DeleteSecret",
    "RestoreSecret",
    "GetRandomPassword",
];

/// Runs one action.
///
/// # Errors
/// The action's [`ApiError`]; [`ApiError::UnknownAction`] for a name not in [`ACTIONS`].
pub async fn dispatch<S: Store + Clone>(
    app: &Arc<App<S>>,
    call: &Call,
) -> Result<Answer, ApiError> {
    let p = &call.params;
    match call.action.as_str() {
        "CreateKmsInstance" => instances::create(app, p).await,
        "GetKmsInstance" => instances::get(app, p).await,
        "ListKmsInstances" => instances::list(app, p).await,
        "ConnectKmsInstance" => instances::connect(app, p).await,
        "UpdateKmsInstanceBindVpc" => instances::bind_vpcs(app, p).await,
        "GetKmsInstanceQuotaInfos" => instances::quota_infos(app, p).await,
        "RenewKmsInstance" => instances::renew(app, p).await,
        "ReleaseKmsInstance" => instances::release(app, p).await,
        "RegisterHsmCluster" => clusters::register(app, p).await,
        "GetHsmCluster" => clusters::get(app, p).await,
        "ListHsmClusters" => clusters::list(app, p).await,
        "DeregisterHsmCluster" => clusters::deregister(app, p).await,
        "CreateVpc" => vpcs::create(app, p).await,
        "DescribeVpc" => vpcs::describe(app, p).await,
        "ListVpcs" => vpcs::list(app, p).await,
        "DeleteVpc" => vpcs::delete(app, p).await,
        "CreateAccessKey" => access_keys::create(app, p).await,
        "ListAccessKeys" => access_keys::list(app, p).await,
        "UpdateAccessKey" => access_keys::update(app, p, &call.access_key_id).await,
        "DeleteAccessKey" => access_keys::delete(app, p, &call.access_key_id).await,
        "CreateKey" => keys::create(app, p).await,
        "DescribeKey" => keys::describe(app, p).await,
        "ListKeys" => keys::list(app, p).await,
        "UpdateKeyDescription" => key_state::update_description(app, p).await,
        "EnableKey" => key_state::enable(app, p).await,
        "DisableKey" => key_state::disable(app, p).await,
        "ScheduleKeyDeletion" => key_state::schedule_deletion(app, p).await,
        "CancelKeyDeletion" => key_state::cancel_deletion(app, p).await,
        "SetDeletionProtection" => key_state::set_deletion_protection(app, p).await,
        "TagResource" => tags::tag(app, p).await,
        "UntagResource" => tags::untag(app, p).await,
        "ListResourceTags" => tags::list(app, p).await,
        "CreateAlias" => aliases::create(app, p).await,
        "UpdateAlias" => aliases::update(app, p).await,
        "DeleteAlias" => aliases::delete(app, p).await,
        "ListAliases" => aliases::list(app, p).await,
        "ListAliasesByKeyId" => aliases::list_by_key(app, p).await,
        "CreateKeyVersion" => key_versions::create(app, p).await,
        "DescribeKeyVersion" => key_versions::describe(app, p).await,
        "ListKeyVersions" => key_versions::list(app, p).await,
        "UpdateRotationPolicy" => key_versions::update_rotation_policy(app, p).await,
        "GetPublicKey" => keys::get_public_key(app, p).await,
        "GetParametersForImport" => import::get_parameters(app, p).await,
        "ImportKeyMaterial" => import::import_material(app, p).await,
        "DeleteKeyMaterial" => import::delete_material(app, p).await,
        "Encrypt" => crypto::encrypt(app, p).await,
        "Decrypt" => crypto::decrypt(app, p).await,
        "AsymmetricEncrypt" => crypto::asymmetric_encrypt(app, p).await,
        "AsymmetricDecrypt" => crypto::asymmetric_decrypt(app, p).await,
        "AsymmetricSign" => crypto::asymmetric_sign(app, p).await,
        "AsymmetricVerify" => crypto::asymmetric_verify(app, p).await,
        "CreateNetworkRule" => access::network_rules::create(app, p).await,
        "UpdateNetworkRule" => access::network_rules::update(app, p).await,
        "DescribeNetworkRule" => access::network_rules::describe(app, p).await,
        "ListNetworkRules" => access::network_rules::list(app, p).await,
        "DeleteNetworkRule" => access::network_rules::delete(app, p).await,
        "CreatePolicy" => access::policies::create(app, p).await,
        "UpdatePolicy" => access::policies::update(app, p).await,
        "DescribePolicy" => access::policies::describe(app, p).await,
        "ListPolicies" => access::policies::list(app, p).await,
        "DeletePolicy" => access::policies::delete(app, p).await,
        "CreateApplicationAccessPoint" => access::points::create(app, p).await,
        "UpdateApplicationAccessPoint" => access::points::update(app, p).await,
        "DescribeApplicationAccessPoint" => access::points::describe(app, p).await,
        "ListApplicationAccessPoints" => access::points::list(app, p).await,
        "DeleteApplicationAccessPoint" => access::points::delete(app, p).await,
        "CreateClientKey" => access::client_keys::create(app, p).await,
        "GetClientKey" => access::client_keys::get(app, p).await,
        "ListClientKeys" => access::client_keys::list(app, p).await,
        "DeleteClientKey" => access::client_keys::delete(app, p).await,
        "CreateSecret" => secrets::create(app, p).await,
        "DescribeSecret" => secrets::describe(app, p).await,
        "ListSecrets" => secrets::list(app, p).await,
        "UpdateSecret" => secrets::update(app, p).await,
        "PutSecretValue" => secrets::values::put(app, p).await,
        "ListSecretVersionIds" => secrets::values::list_version_ids(app, p).await,
        "UpdateSecretVersionStage" => secrets::values::update_stage(app, p).await,
        "GetSecretValue" => secrets::values::get(app, p).await,
        "DeleteSecret" => secrets::delete(app, p).await,
        "RestoreSecret" => secrets::restore(app, p).await,
        "GetRandomPassword" => secrets::password::get_random_password(p),
        other => Err(ApiError::UnknownAction(other.to_owned())),
    }
}

/// Builds an answer from `(name, value)` pairs.
pub fn answer<const N: usize>(fields: [(&str, Value); N]) -> Answer {
    fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// The paging fields of a list answer plus `wrapper: {item: [...]}`.
pub fn page_answer(
    page: strongroom_store::Page,
    total: u64,
    wrapper: &str,
    item: &str,
    items: Vec<Value>,
) -> Answer {
    let mut inner = Map::new();
    inner.insert(item.to_owned(), Value::Array(items));
    answer([
        ("PageNumber", Value::from(page.number)),
        ("PageSize", Value::from(page.size)),
        ("TotalCount", Value::from(total)),
        (wrapper, Value::Object(inner)),
    ])
}

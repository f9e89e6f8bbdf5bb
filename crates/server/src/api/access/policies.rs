//! `CreatePolicy`, `UpdatePolicy`, `DescribePolicy`, `ListPolicies`, `DeletePolicy`.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use strongroom_store::{Policy, Store, StoreError};

use super::{POLICY, arn, check_name, dedup, exists, json_text, missing, network_rules};
use crate::access::Permission;
use crate::api::keys::description;
use crate::api::{Answer, Params, answer, instances, page_answer};
use crate::app::{App, now};
use crate::error::ApiError;

/// Most resource patterns in one policy.
pub const MAX_RESOURCES: usize = 100;
/// Most network rules one policy names.
pub const MAX_NETWORK_RULES: usize = 20;
/// Longest resource pattern.
pub const MAX_RESOURCE_LEN: usize = 512;

/// `AccessControlRules` as the cloud writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessControlRules {
    #[serde(rename = "NetworkRules", default)]
    network_rules: Vec<String>,
}

/// Reads and checks `Permissions`: a JSON array (or a comma-separated list) of
/// permission templates, at least one.
///
/// # Errors
/// [`ApiError::MissingParameter`] or [`ApiError::InvalidParameter`].
pub fn permissions(p: &Params) -> Result<Vec<String>, ApiError> {
    const NAME: &str = "Permissions";
    let list = dedup(p.list(NAME)?);
    if list.is_empty() {
        return Err(ApiError::MissingParameter(NAME.into()));
    }
    for entry in &list {
        entry.parse::<Permission>().map_err(|e| {
            ApiError::invalid(
                NAME,
                format!(
                    "{e}; use {} or {}",
                    Permission::CryptoServiceKeyUser,
                    Permission::CryptoServiceSecretUser
                ),
            )
        })?;
    }
    Ok(list)
}

/// Checks one resource pattern: `key/<key id>` or `secret/<name>`, where a trailing `*`
/// makes the rest a prefix (`key/*`, `secret/app1-*`).
///
/// # Errors
/// A reason, for [`ApiError::InvalidParameter`].
pub fn check_resource(pattern: &str) -> Result<(), String> {
    let rest = pattern
        .strip_prefix("key/")
        .or_else(|| pattern.strip_prefix("secret/"))
        .ok_or_else(|| {
            format!(
                "{pattern:?}: a resource is key/<key id>, key/*, secret/<secret name> or secret/*"
            )
        })?;
    if rest.is_empty() {
        return Err(format!("{pattern:?}: nothing after the /"));
    }
    if pattern.len() > MAX_RESOURCE_LEN {
        return Err(format!("longer than {MAX_RESOURCE_LEN} characters"));
    }
    if pattern.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!("{pattern:?}: no spaces or control characters"));
    }
    Ok(())
}

/// Reads and checks `Resources`: a JSON array (or a comma-separated list) of 1 to
/// [`MAX_RESOURCES`] patterns ([`check_resource`]).
///
/// # Errors
/// [`ApiError::MissingParameter`] or [`ApiError::InvalidParameter`].
pub fn resources(p: &Params) -> Result<Vec<String>, ApiError> {
    const NAME: &str = "Resources";
    let list = dedup(p.list(NAME)?);
    if list.is_empty() {
        return Err(ApiError::MissingParameter(NAME.into()));
    }
    if list.len() > MAX_RESOURCES {
        return Err(ApiError::invalid(
            NAME,
            format!("at most {MAX_RESOURCES} resources"),
        ));
    }
    for entry in &list {
        check_resource(entry).map_err(|why| ApiError::invalid(NAME, why))?;
    }
    Ok(list)
}

/// Reads `AccessControlRules` (`{"NetworkRules":["name", …]}`) and checks that every
/// rule it names exists. Absent means no network rule: such a policy admits no source.
async fn network_rule_names<S: Store>(app: &App<S>, p: &Params) -> Result<Vec<String>, ApiError> {
    const NAME: &str = "AccessControlRules";
    if p.optional(NAME).is_none() {
        return Ok(Vec::new());
    }
    let rules: AccessControlRules = p.json(NAME)?;
    let names = dedup(rules.network_rules);
    if names.len() > MAX_NETWORK_RULES {
        return Err(ApiError::invalid(
            NAME,
            format!("at most {MAX_NETWORK_RULES} network rules"),
        ));
    }
    for name in &names {
        network_rules::load(app, name).await?;
    }
    Ok(names)
}

fn control_rules_text(names: &[String]) -> Value {
    Value::String(json!({ "NetworkRules": names }).to_string())
}

fn view<S>(app: &App<S>, policy: &Policy) -> Answer {
    answer([
        ("Arn", Value::from(arn(app, "policy", &policy.name))),
        ("Name", Value::from(policy.name.clone())),
        ("KmsInstance", Value::from(policy.kms_instance_id.clone())),
        ("Permissions", json_text(&policy.permissions)),
        ("Resources", json_text(&policy.resources)),
        (
            "AccessControlRules",
            control_rules_text(&policy.network_rules),
        ),
        ("Description", Value::from(policy.description.clone())),
    ])
}

/// Reads a policy named by a parameter.
pub(crate) async fn load<S: Store>(app: &App<S>, name: &str) -> Result<Policy, ApiError> {
    app.store
        .get_policy(name)
        .await
        .map_err(missing(POLICY, name))
}

/// A store `NotFound` after the references were checked: something was deleted in
/// between.
fn raced(name: &str) -> ApiError {
    ApiError::ResourceInUse(format!(
        "A network rule or instance that the policy {name} names was deleted while it was \
         being saved; check them and retry."
    ))
}

pub(crate) async fn create<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let name = p.required("Name")?;
    check_name("Name", name)?;
    let instance = instances::load(app, p.required("KmsInstance")?).await?;
    let at = now();
    let policy = Policy {
        name: name.to_owned(),
        kms_instance_id: instance.id,
        permissions: permissions(p)?,
        resources: resources(p)?,
        network_rules: network_rule_names(app, p).await?,
        description: description(p)?,
        created_at: at,
        updated_at: at,
    };
    app.store
        .create_policy(&policy)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => raced(name),
            other => exists(POLICY, name)(other),
        })?;
    Ok(view(app, &policy))
}

pub(crate) async fn update<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let name = p.required("Name")?;
    let mut policy = load(app, name).await?;
    if p.optional("Permissions").is_some() {
        policy.permissions = permissions(p)?;
    }
    if p.optional("Resources").is_some() {
        policy.resources = resources(p)?;
    }
    if p.optional("AccessControlRules").is_some() {
        policy.network_rules = network_rule_names(app, p).await?;
    }
    if p.optional("Description").is_some() {
        policy.description = description(p)?;
    }
    policy.updated_at = now();
    app.store
        .update_policy(&policy)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => raced(name),
            other => other.into(),
        })?;
    Ok(answer([]))
}

pub(crate) async fn describe<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let policy = load(app, p.required("Name")?).await?;
    Ok(view(app, &policy))
}

pub(crate) async fn list<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let page = p.page()?;
    let found = app.store.list_policies(page).await?;
    let items = found
        .items
        .iter()
        .map(|policy| json!({"Name": policy.name}))
        .collect();
    Ok(page_answer(page, found.total, "Policies", "Policy", items))
}

pub(crate) async fn delete<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let name = p.required("Name")?;
    app.store.delete_policy(name).await.map_err(|e| match e {
        StoreError::Conflict(_) => ApiError::ResourceInUse(format!(
            "The policy {name} is named by an application access point; remove it from the \
             access point first."
        )),
        other => missing(POLICY, name)(other),
    })?;
    Ok(answer([]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn resources_are_keys_or_secrets() {
        for good in [
            "key/*",
            "key/key-abc",
            "key/key-hz*",
            "secret/*",
            "secret/db-pass",
        ] {
            assert!(check_resource(good).is_ok(), "{good}");
        }
        for bad in [
            "*",
            "key/",
            "alias/app",
            "Key/x",
            "key/a b",
            "keys/*",
            &format!("key/{}", "k".repeat(MAX_RESOURCE_LEN)),
        ] {
            assert!(check_resource(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn permissions_are_the_two_templates() {
        let p = |v: &str| Params(vec![("Permissions".into(), v.into())]);
        assert_eq!(
            permissions(&p(r#"["RbacPermission/Template/CryptoServiceKeyUser","RbacPermission/Template/CryptoServiceKeyUser"]"#)).unwrap(),
            ["RbacPermission/Template/CryptoServiceKeyUser"]
        );
        assert_eq!(
            permissions(&p(r#"["KeyUser"]"#)).unwrap_err().code(),
            "InvalidParameter"
        );
        assert_eq!(
            permissions(&p("[]")).unwrap_err().code(),
            "MissingParameter"
        );
    }

    #[test]
    fn control_rules_are_answered_as_the_cloud_writes_them() {
        assert_eq!(
            control_rules_text(&["r1".into()]),
            Value::String(r#"{"NetworkRules":["r1"]}"#.into())
        );
        let parsed: AccessControlRules =
            serde_json::from_str(r#"{"NetworkRules":["a","b"]}"#).unwrap();
        assert_eq!(parsed.network_rules, ["a", "b"]);
        assert!(serde_json::from_str::<AccessControlRules>(r#"{"Rules":["a"]}"#).is_err());
    }
}

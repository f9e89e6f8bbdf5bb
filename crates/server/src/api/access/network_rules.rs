//! `CreateNetworkRule`, `UpdateNetworkRule`, `DescribeNetworkRule`, `ListNetworkRules`,
//! `DeleteNetworkRule`.

use std::sync::Arc;

use serde_json::{Value, json};
use strongroom_store::{NetworkRule, Store, StoreError};

use super::{NETWORK_RULE, arn, check_name, dedup, exists, json_text, missing};
use crate::api::keys::description;
use crate::api::{Answer, Params, answer, page_answer};
use crate::app::{App, now};
use crate::error::ApiError;
use crate::network::Cidr;

/// The only `Type` the cloud's API accepts.
pub const PRIVATE: &str = "Private";
/// Most entries in one rule's `SourcePrivateIp`.
pub const MAX_SOURCES: usize = 100;

/// Reads and checks `SourcePrivateIp`: a JSON array or a comma-separated list of IPv4
/// or IPv6 addresses and CIDR blocks, 1 to [`MAX_SOURCES`]. Every entry must parse: a
/// malformed one is refused, never skipped. Repeated entries are kept once.
///
/// # Errors
/// [`ApiError::MissingParameter`] or [`ApiError::InvalidParameter`].
pub fn sources(p: &Params) -> Result<Vec<String>, ApiError> {
    const NAME: &str = "SourcePrivateIp";
    let list = p.list(NAME)?;
    if list.is_empty() {
        return Err(ApiError::MissingParameter(NAME.into()));
    }
    let list = dedup(list.into_iter().map(|s| s.trim().to_owned()).collect());
    if list.len() > MAX_SOURCES {
        return Err(ApiError::invalid(
            NAME,
            format!("at most {MAX_SOURCES} addresses and blocks"),
        ));
    }
    for entry in &list {
        entry
            .parse::<Cidr>()
            .map_err(|e| ApiError::invalid(NAME, e.to_string()))?;
    }
    Ok(list)
}

fn view<S>(app: &App<S>, rule: &NetworkRule) -> Answer {
    answer([
        ("Arn", Value::from(arn(app, "network", &rule.name))),
        ("Name", Value::from(rule.name.clone())),
        ("Type", Value::from(rule.rule_type.clone())),
        ("SourcePrivateIp", json_text(&rule.source_private_ip)),
        ("Description", Value::from(rule.description.clone())),
    ])
}

pub(crate) async fn create<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let name = p.required("Name")?;
    check_name("Name", name)?;
    let rule_type = p.required("Type")?;
    if rule_type != PRIVATE {
        return Err(ApiError::invalid(
            "Type",
            format!("{rule_type:?}: the only network type is {PRIVATE}"),
        ));
    }
    let at = now();
    let rule = NetworkRule {
        name: name.to_owned(),
        rule_type: PRIVATE.to_owned(),
        source_private_ip: sources(p)?,
        description: description(p)?,
        created_at: at,
        updated_at: at,
    };
    app.store
        .create_network_rule(&rule)
        .await
        .map_err(exists(NETWORK_RULE, name))?;
    Ok(view(app, &rule))
}

/// Reads a network rule named by a parameter.
pub(crate) async fn load<S: Store>(app: &App<S>, name: &str) -> Result<NetworkRule, ApiError> {
    app.store
        .get_network_rule(name)
        .await
        .map_err(missing(NETWORK_RULE, name))
}

pub(crate) async fn update<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let name = p.required("Name")?;
    let mut rule = load(app, name).await?;
    if p.optional("SourcePrivateIp").is_some() {
        rule.source_private_ip = sources(p)?;
    }
    if p.optional("Description").is_some() {
        rule.description = description(p)?;
    }
    rule.updated_at = now();
    app.store
        .update_network_rule(&rule)
        .await
        .map_err(missing(NETWORK_RULE, name))?;
    Ok(answer([]))
}

pub(crate) async fn describe<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let rule = load(app, p.required("Name")?).await?;
    Ok(view(app, &rule))
}

pub(crate) async fn list<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let page = p.page()?;
    let found = app.store.list_network_rules(page).await?;
    let items = found
        .items
        .iter()
        .map(|r| json!({"Name": r.name, "Type": r.rule_type}))
        .collect();
    Ok(page_answer(
        page,
        found.total,
        "NetworkRules",
        "NetworkRule",
        items,
    ))
}

pub(crate) async fn delete<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let name = p.required("Name")?;
    app.store
        .delete_network_rule(name)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::ResourceInUse(format!(
                "The network rule {name} is named by a policy; remove it from the policy first."
            )),
            other => missing(NETWORK_RULE, name)(other),
        })?;
    Ok(answer([]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn params(value: &str) -> Params {
        Params(vec![("SourcePrivateIp".into(), value.into())])
    }

    #[test]
    fn sources_accept_json_and_commas_and_refuse_garbage() {
        assert_eq!(
            sources(&params(r#"["10.0.0.0/8","192.168.1.10","fd00::/8"]"#)).unwrap(),
            ["10.0.0.0/8", "192.168.1.10", "fd00::/8"]
        );
        assert_eq!(
            sources(&params("10.0.0.0/8, 10.0.0.0/8 ,127.0.0.1")).unwrap(),
            ["10.0.0.0/8", "127.0.0.1"]
        );
        for bad in [
            "10.0.0.0/33",
            "10.0.0.1/8",
            "not-an-ip",
            r#"["10.0.0.0/8", "x"]"#,
            "[1]",
        ] {
            assert_eq!(
                sources(&params(bad)).unwrap_err().code(),
                "InvalidParameter",
                "{bad}"
            );
        }
        assert_eq!(
            sources(&params("[]")).unwrap_err().code(),
            "MissingParameter"
        );
        let many = (0..=MAX_SOURCES)
            .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(
            sources(&params(&many)).unwrap_err().code(),
            "InvalidParameter"
        );
    }
}

//! Key tags (`docs/keys.md`, "Tags"): the `Tags` parameter of CreateKey and
//! TagResource, UntagResource, ListResourceTags.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use strongroom_store::{KeyState, Store, Tag};

use super::keys::{modify, resolve, wrong_state};
use super::params::Params;
use super::{Answer, answer};
use crate::app::App;
use crate::error::ApiError;

/// Most tags one key carries.
pub const MAX_TAGS: usize = 20;
/// Longest tag key or value.
pub const MAX_TAG_LEN: usize = 128;

#[derive(Deserialize)]
struct WireTag {
    #[serde(rename = "TagKey")]
    key: String,
    #[serde(rename = "TagValue", default)]
    value: String,
}

fn valid_text(text: &str) -> bool {
    let n = text.chars().count();
    (1..=MAX_TAG_LEN).contains(&n)
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " /\\_-.+=:@".contains(c))
}

/// The tags of parameter `name` (JSON `[{"TagKey":…,"TagValue":…}]`), checked.
///
/// # Errors
/// [`ApiError::InvalidParameter`] naming `name`.
pub fn parse(p: &Params, name: &str) -> Result<Vec<Tag>, ApiError> {
    let wire: Vec<WireTag> = p.json(name)?;
    let mut tags: Vec<Tag> = Vec::with_capacity(wire.len());
    for WireTag { key, value } in wire {
        if !valid_text(&key) || !valid_text(&value) {
            return Err(ApiError::invalid(
                name,
                format!(
                    "tag keys and values are 1 to {MAX_TAG_LEN} letters, digits, spaces or \
                     /\\_-.+=:@ (got {key:?} = {value:?})"
                ),
            ));
        }
        let lower = key.to_ascii_lowercase();
        if lower.starts_with("aliyun") || lower.starts_with("acs:") {
            return Err(ApiError::invalid(
                name,
                format!("the tag key {key:?} starts with a reserved prefix (aliyun, acs:)"),
            ));
        }
        merge(&mut tags, Tag { key, value });
    }
    if tags.len() > MAX_TAGS {
        return Err(ApiError::invalid(
            name,
            format!("a key has at most {MAX_TAGS} tags"),
        ));
    }
    Ok(tags)
}

/// Adds `tag`, replacing the value of a tag with the same key.
fn merge(tags: &mut Vec<Tag>, tag: Tag) {
    match tags.iter_mut().find(|t| t.key == tag.key) {
        Some(existing) => existing.value = tag.value,
        None => tags.push(tag),
    }
}

fn not_pending_deletion(key: &strongroom_store::Key, action: &str) -> Result<(), ApiError> {
    if key.state == KeyState::PendingDeletion {
        return Err(wrong_state(key, action));
    }
    Ok(())
}

pub(crate) async fn tag<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let key = resolve(app, p.required("KeyId")?).await?;
    let new = parse(p, "Tags")?;
    modify(app, &key.id, |k| {
        not_pending_deletion(k, "TagResource")?;
        for t in &new {
            merge(&mut k.tags, t.clone());
        }
        if k.tags.len() > MAX_TAGS {
            return Err(ApiError::invalid(
                "Tags",
                format!("a key has at most {MAX_TAGS} tags"),
            ));
        }
        Ok(())
    })
    .await?;
    Ok(answer([]))
}

pub(crate) async fn untag<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let key = resolve(app, p.required("KeyId")?).await?;
    let names = p.list("TagKeys")?;
    if names.is_empty() {
        return Err(ApiError::MissingParameter("TagKeys".into()));
    }
    modify(app, &key.id, |k| {
        not_pending_deletion(k, "UntagResource")?;
        k.tags.retain(|t| !names.contains(&t.key));
        Ok(())
    })
    .await?;
    Ok(answer([]))
}

pub(crate) async fn list<S: Store>(app: &Arc<App<S>>, p: &Params) -> Result<Answer, ApiError> {
    let key = resolve(app, p.required("KeyId")?).await?;
    let tags: Vec<Value> = key
        .tags
        .iter()
        .map(|t| json!({"KeyId": key.id, "TagKey": t.key, "TagValue": t.value}))
        .collect();
    Ok(answer([("Tags", json!({ "Tag": tags }))]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn params(tags: &str) -> Params {
        Params(vec![("Tags".into(), tags.into())])
    }

    #[test]
    fn tags_follow_the_cloud_rules() {
        let t = parse(
            &params(r#"[{"TagKey":"env","TagValue":"prod"},{"TagKey":"env","TagValue":"dev"}]"#),
            "Tags",
        )
        .unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].value, "dev");
        for bad in [
            r#"[{"TagKey":"acs:x","TagValue":"v"}]"#,
            r#"[{"TagKey":"Aliyun-x","TagValue":"v"}]"#,
            r#"[{"TagKey":"","TagValue":"v"}]"#,
            r#"[{"TagKey":"a<b","TagValue":"v"}]"#,
            r#"{"TagKey":"a"}"#,
        ] {
            assert!(parse(&params(bad), "Tags").is_err(), "{bad}");
        }
        let many: Vec<String> = (0..21)
            .map(|i| format!(r#"{{"TagKey":"k{i}","TagValue":"v"}}"#))
            .collect();
        assert!(parse(&params(&format!("[{}]", many.join(","))), "Tags").is_err());
    }
}

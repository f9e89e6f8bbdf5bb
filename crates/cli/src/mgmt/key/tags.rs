//! `strongroom key tag|untag|tags`, and the `Tags` JSON of `key create --tag`.

use serde_json::{Value, json};

use crate::mgmt::{Failure, Session, list, text};

/// `[{"TagKey": …, "TagValue": …}]` from `K=V` arguments.
pub fn to_json(tags: &[String]) -> Result<String, Failure> {
    let mut out = Vec::with_capacity(tags.len());
    for tag in tags {
        let (key, value) = tag
            .split_once('=')
            .filter(|(key, _)| !key.is_empty())
            .ok_or_else(|| format!("{tag:?} is not a tag: write KEY=VALUE"))?;
        out.push(json!({"TagKey": key, "TagValue": value}));
    }
    Ok(Value::Array(out).to_string())
}

pub fn tag(s: &Session, key: &str, tags: &[String]) -> Result<(), Failure> {
    let tags = to_json(tags)?;
    let answer = s.call("TagResource", &[("KeyId", key), ("Tags", &tags)])?;
    if !s.printed_json(&answer) {
        println!("{key}: tagged");
    }
    Ok(())
}

pub fn untag(s: &Session, key: &str, tag_keys: &[String]) -> Result<(), Failure> {
    let tag_keys = json!(tag_keys).to_string();
    let answer = s.call("UntagResource", &[("KeyId", key), ("TagKeys", &tag_keys)])?;
    if !s.printed_json(&answer) {
        println!("{key}: untagged");
    }
    Ok(())
}

pub fn list_tags(s: &Session, key: &str) -> Result<(), Failure> {
    let answer = s.call("ListResourceTags", &[("KeyId", key)])?;
    if s.printed_json(&answer) {
        return Ok(());
    }
    for tag in list(&answer, &["Tags", "Tag"]) {
        println!("{}={}", text(tag, &["TagKey"]), text(tag, &["TagValue"]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_become_the_apis_json() {
        let tags = to_json(&["env=prod".to_owned(), "note=a=b".to_owned()]).ok();
        assert_eq!(
            tags.as_deref(),
            Some(r#"[{"TagKey":"env","TagValue":"prod"},{"TagKey":"note","TagValue":"a=b"}]"#)
        );
        assert!(to_json(&["novalue".to_owned()]).is_err());
        assert!(to_json(&["=v".to_owned()]).is_err());
    }
}

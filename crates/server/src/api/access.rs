//! Application access (`docs/access.md`): network rules, policies, application access
//! points and client keys, with the cloud's action names and fields. The decision that
//! uses these records is [`crate::access`].
//!
//! List-valued fields (`SourcePrivateIp`, `Permissions`, `Resources`, `Policies`,
//! `AccessControlRules`) are answered as JSON **text**, as the cloud does and as the
//! official SDKs' models (typed `str`) expect.

pub(crate) mod client_keys;
pub(crate) mod network_rules;
pub(crate) mod points;
pub(crate) mod policies;

use serde_json::Value;
use strongroom_store::StoreError;

use super::keys::region;
use crate::app::App;
use crate::error::ApiError;

/// Longest name of a network rule, policy or access point.
pub const MAX_NAME_LEN: usize = 64;

/// What kind of record an error names.
pub(crate) const NETWORK_RULE: &str = "network rule";
pub(crate) const POLICY: &str = "policy";
pub(crate) const ACCESS_POINT: &str = "application access point";
pub(crate) const CLIENT_KEY: &str = "client key";

/// Checks the name of a network rule, policy or access point: 1–64 letters, digits,
/// `_`, `-` or `.`.
///
/// # Errors
/// [`ApiError::InvalidParameter`] naming `param`.
pub fn check_name(param: &str, name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(ApiError::invalid(
            param,
            format!("{name:?}: 1 to {MAX_NAME_LEN} characters"),
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(ApiError::invalid(
            param,
            format!("{name:?}: only letters, digits, _, - and ."),
        ));
    }
    Ok(())
}

/// `acs:kms:<region>:<account>:<kind>/<name>`.
pub(crate) fn arn<S>(app: &App<S>, kind: &str, name: &str) -> String {
    format!("acs:kms:{}:{}:{kind}/{name}", region(app), app.account_id)
}

/// A list as the JSON text the cloud answers.
pub(crate) fn json_text(list: &[String]) -> Value {
    Value::String(serde_json::to_string(list).unwrap_or_else(|_| "[]".to_owned()))
}

/// Maps a store `NotFound` to the record's not-found error, anything else as usual.
pub(crate) fn missing(kind: &'static str, name: &str) -> impl FnOnce(StoreError) -> ApiError {
    let name = name.to_owned();
    move |e| match e {
        StoreError::NotFound(_) => ApiError::AccessNotFound { kind, name },
        other => other.into(),
    }
}

/// Maps a store `Conflict` on create to the record's already-exists error.
pub(crate) fn exists(kind: &'static str, name: &str) -> impl FnOnce(StoreError) -> ApiError {
    let name = name.to_owned();
    move |e| match e {
        StoreError::Conflict(_) => ApiError::AccessExists { kind, name },
        other => other.into(),
    }
}

/// Removes repeated entries, keeping the first of each.
pub(crate) fn dedup(list: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for item in list {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn names_follow_our_rules() {
        for good in ["a", "app-1.prod_x", &"n".repeat(64)] {
            assert!(check_name("Name", good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "a/b", "ü", &"n".repeat(65)] {
            let e = check_name("Name", bad).unwrap_err();
            assert_eq!(e.code(), "InvalidParameter", "{bad}");
        }
    }

    #[test]
    fn lists_are_answered_as_json_text() {
        assert_eq!(
            json_text(&["10.0.0.0/8".into(), "::1/128".into()]),
            Value::String(r#"["10.0.0.0/8","::1/128"]"#.into())
        );
        assert_eq!(
            dedup(vec!["b".into(), "a".into(), "b".into()]),
            vec!["b".to_owned(), "a".to_owned()]
        );
    }
}

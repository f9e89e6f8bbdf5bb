//! How stages move between a secret's versions (`docs/secrets.md`, "Versions and
//! stages"): pure functions from the current stage map to the next, which the store then
//! writes in one transaction.

use std::collections::BTreeMap;

use strongroom_store::{SecretVersion, StageOn};

use crate::error::ApiError;

/// The stage of the version applications read by default.
pub const ACS_CURRENT: &str = "ACSCurrent";
/// The stage the version that was current gets when `ACSCurrent` moves on.
pub const ACS_PREVIOUS: &str = "ACSPrevious";
/// Most distinct stages a secret may have.
pub const MAX_STAGES: usize = 8;

/// Stage → version id.
pub type StageMap = BTreeMap<String, String>;

/// The stage map of a secret's versions.
pub fn map_of(versions: &[SecretVersion]) -> StageMap {
    versions
        .iter()
        .flat_map(|v| {
            v.stages
                .iter()
                .map(move |s| (s.clone(), v.version_id.clone()))
        })
        .collect()
}

/// The map as the store takes it.
pub fn to_store(map: &StageMap) -> Vec<StageOn> {
    map.iter()
        .map(|(stage, version_id)| StageOn {
            stage: stage.clone(),
            version_id: version_id.clone(),
        })
        .collect()
}

/// Puts `stage` on `to`; moving `ACSCurrent` to another version gives the version that
/// had it `ACSPrevious`.
fn move_stage(map: &mut StageMap, stage: &str, to: &str) {
    if stage == ACS_CURRENT
        && let Some(old) = map.get(ACS_CURRENT)
        && old != to
    {
        let old = old.clone();
        map.insert(ACS_PREVIOUS.to_owned(), old);
    }
    map.insert(stage.to_owned(), to.to_owned());
}

fn check_count(map: &StageMap) -> Result<(), ApiError> {
    if map.len() > MAX_STAGES {
        return Err(ApiError::LimitExceeded(format!(
            "A secret has at most {MAX_STAGES} stages."
        )));
    }
    Ok(())
}

/// The map after `PutSecretValue` added `new_version` with `stages` (`ACSCurrent` first,
/// then the others in the order given).
///
/// # Errors
/// [`ApiError::LimitExceeded`] beyond [`MAX_STAGES`].
pub fn after_put(
    map: &StageMap,
    new_version: &str,
    stages: &[String],
) -> Result<StageMap, ApiError> {
    let mut next = map.clone();
    let current_first = stages
        .iter()
        .filter(|s| *s == ACS_CURRENT)
        .chain(stages.iter().filter(|s| *s != ACS_CURRENT));
    for stage in current_first {
        move_stage(&mut next, stage, new_version);
    }
    check_count(&next)?;
    Ok(next)
}

/// What `UpdateSecretVersionStage` asks.
#[derive(Debug, Clone, Copy)]
pub struct StageChange<'a> {
    /// `VersionStage`.
    pub stage: &'a str,
    /// `RemoveFromVersion`.
    pub remove_from: Option<&'a str>,
    /// `MoveToVersion`.
    pub move_to: Option<&'a str>,
}

/// The map after `change`, given the secret's version ids.
///
/// # Errors
/// [`ApiError::MissingParameter`] when neither version is named;
/// [`ApiError::InvalidParameter`] when `RemoveFromVersion` does not hold the stage, when
/// the stage is on a version the request does not name, or when `ACSCurrent` /
/// `ACSPrevious` would be removed; [`ApiError::AccessNotFound`] for an unknown
/// `MoveToVersion`; [`ApiError::LimitExceeded`] beyond [`MAX_STAGES`].
pub fn after_update(
    map: &StageMap,
    versions: &[&str],
    change: StageChange<'_>,
) -> Result<StageMap, ApiError> {
    let StageChange {
        stage,
        remove_from,
        move_to,
    } = change;
    if remove_from.is_none() && move_to.is_none() {
        return Err(ApiError::MissingParameter("MoveToVersion".into()));
    }
    let holder = map.get(stage).map(String::as_str);
    if let Some(from) = remove_from
        && holder != Some(from)
    {
        return Err(ApiError::invalid(
            "RemoveFromVersion",
            format!("the version {from} does not have the stage {stage}"),
        ));
    }
    let mut next = map.clone();
    match move_to {
        Some(to) => {
            if !versions.contains(&to) {
                return Err(ApiError::AccessNotFound {
                    kind: "secret version",
                    name: to.to_owned(),
                });
            }
            if let Some(on) = holder
                && on != to
                && remove_from.is_none()
            {
                return Err(ApiError::invalid(
                    "RemoveFromVersion",
                    format!("the stage {stage} is on version {on}; name it in RemoveFromVersion"),
                ));
            }
            move_stage(&mut next, stage, to);
        }
        None => {
            if stage == ACS_CURRENT || stage == ACS_PREVIOUS {
                return Err(ApiError::invalid(
                    "VersionStage",
                    format!("{stage} can be moved to another version (MoveToVersion), not removed"),
                ));
            }
            next.remove(stage);
        }
    }
    check_count(&next)?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn map(pairs: &[(&str, &str)]) -> StageMap {
        pairs
            .iter()
            .map(|(s, v)| ((*s).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn stages(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn put_moves_current_and_previous_as_the_cloud() {
        let first = map(&[(ACS_CURRENT, "v1")]);
        let second = after_put(&first, "v2", &stages(&[ACS_CURRENT])).unwrap();
        assert_eq!(second, map(&[(ACS_CURRENT, "v2"), (ACS_PREVIOUS, "v1")]));
        let third = after_put(&second, "v3", &stages(&[ACS_CURRENT])).unwrap();
        assert_eq!(third, map(&[(ACS_CURRENT, "v3"), (ACS_PREVIOUS, "v2")]));
        // A custom stage moves alone; current and previous stay.
        let custom = after_put(&third, "v4", &stages(&["canary"])).unwrap();
        assert_eq!(
            custom,
            map(&[(ACS_CURRENT, "v3"), (ACS_PREVIOUS, "v2"), ("canary", "v4")])
        );
        // ACSCurrent is applied first whatever the order given.
        let both = after_put(&custom, "v5", &stages(&["canary", ACS_CURRENT])).unwrap();
        assert_eq!(
            both,
            map(&[(ACS_CURRENT, "v5"), (ACS_PREVIOUS, "v3"), ("canary", "v5")])
        );
    }

    #[test]
    fn at_most_eight_stages() {
        let mut m = map(&[(ACS_CURRENT, "v1")]);
        for i in 0..7 {
            m = after_put(&m, "v1", &stages(&[&format!("s{i}")])).unwrap();
        }
        assert_eq!(m.len(), 8);
        let e = after_put(&m, "v2", &stages(&["one-more"])).unwrap_err();
        assert_eq!(e.code(), "Rejected.LimitExceeded");
    }

    #[test]
    fn update_moves_removes_and_refuses() {
        let m = map(&[(ACS_CURRENT, "v2"), (ACS_PREVIOUS, "v1"), ("canary", "v2")]);
        let versions = ["v1", "v2", "v3"];
        let change = |stage, remove_from, move_to| StageChange {
            stage,
            remove_from,
            move_to,
        };
        // Rolling back: ACSCurrent to v1 makes v2 previous.
        let back =
            after_update(&m, &versions, change(ACS_CURRENT, Some("v2"), Some("v1"))).unwrap();
        assert_eq!(back.get(ACS_CURRENT).unwrap(), "v1");
        assert_eq!(back.get(ACS_PREVIOUS).unwrap(), "v2");
        // A custom stage comes off.
        let off = after_update(&m, &versions, change("canary", Some("v2"), None)).unwrap();
        assert!(!off.contains_key("canary"));
        // A new custom stage goes on without RemoveFromVersion.
        let on = after_update(&m, &versions, change("beta", None, Some("v3"))).unwrap();
        assert_eq!(on.get("beta").unwrap(), "v3");
        // Refusals.
        let codes: Vec<&str> = [
            change(ACS_CURRENT, None, None),
            change(ACS_CURRENT, Some("v2"), None),
            change(ACS_PREVIOUS, Some("v1"), None),
            change("canary", Some("v1"), None),
            change("canary", None, Some("v1")),
            change("canary", Some("v2"), Some("v9")),
        ]
        .into_iter()
        .map(|c| after_update(&m, &versions, c).unwrap_err().code())
        .collect();
        assert_eq!(
            codes,
            [
                "MissingParameter",
                "InvalidParameter",
                "InvalidParameter",
                "InvalidParameter",
                "InvalidParameter",
                "Forbidden.ResourceNotFound"
            ]
        );
    }
}

//! `GetRandomPassword` (`docs/secrets.md`): a password from the operating system's CSPRNG.

use serde_json::json;

use super::super::params::Params;
use super::super::{Answer, answer};
use crate::app::random_text;
use crate::error::ApiError;

const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &str = "0123456789";
const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// `PasswordLength` when absent.
pub const DEFAULT_LENGTH: u32 = 32;
/// Shortest and longest `PasswordLength`.
pub const LENGTHS: std::ops::RangeInclusive<u32> = 8..=128;

/// Attempts at drawing a password that has a character of every included kind.
const DRAWS: usize = 64;

pub(crate) fn get_random_password(p: &Params) -> Result<Answer, ApiError> {
    let length = p.u32_in("PasswordLength", DEFAULT_LENGTH, LENGTHS)?;
    let excluded = p.optional("ExcludeCharacters").unwrap_or("");
    let mut classes: Vec<Vec<u8>> = Vec::new();
    for (name, set) in [
        ("ExcludeLowercase", LOWER),
        ("ExcludeUppercase", UPPER),
        ("ExcludeNumbers", DIGITS),
        ("ExcludePunctuation", PUNCTUATION),
    ] {
        if p.bool_or(name, false)? {
            continue;
        }
        let kept: Vec<u8> = set
            .bytes()
            .filter(|b| !excluded.contains(char::from(*b)))
            .collect();
        if !kept.is_empty() {
            classes.push(kept);
        }
    }
    if classes.is_empty() {
        return Err(ApiError::invalid(
            "ExcludeCharacters",
            "every character is excluded",
        ));
    }
    let require_each = p.bool_or("RequireEachIncludedType", true)?;
    let alphabet: Vec<u8> = classes.concat();
    let length =
        usize::try_from(length).map_err(|_| ApiError::invalid("PasswordLength", "too long"))?;
    for _ in 0..DRAWS {
        let password = random_text(length, &alphabet)?;
        let has_each = classes
            .iter()
            .all(|class| password.bytes().any(|b| class.contains(&b)));
        if !require_each || has_each {
            return Ok(answer([("RandomPassword", json!(password))]));
        }
    }
    // With at least 8 characters and at most 4 kinds this happens with negligible
    // probability; answering an error beats answering a password that breaks the rule.
    Err(ApiError::Internal(
        "no password with every included kind of character was drawn".into(),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn run(pairs: &[(&str, &str)]) -> Result<String, ApiError> {
        let params = Params(
            pairs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
        );
        get_random_password(&params).map(|a| a["RandomPassword"].as_str().unwrap().to_owned())
    }

    #[test]
    fn length_kinds_and_exclusions_hold() {
        let default = run(&[]).unwrap();
        assert_eq!(default.len(), 32);
        for kind in [LOWER, UPPER, DIGITS, PUNCTUATION] {
            assert!(default.chars().any(|c| kind.contains(c)), "{default}");
        }
        let digits = run(&[
            ("PasswordLength", "128"),
            ("ExcludeLowercase", "true"),
            ("ExcludeUppercase", "true"),
            ("ExcludePunctuation", "true"),
            ("ExcludeCharacters", "019"),
        ])
        .unwrap();
        assert_eq!(digits.len(), 128);
        assert!(digits.chars().all(|c| "2345678".contains(c)), "{digits}");
        assert_ne!(run(&[]).unwrap(), run(&[]).unwrap());
        for bad in ["7", "129", "x"] {
            assert_eq!(
                run(&[("PasswordLength", bad)]).unwrap_err().code(),
                "InvalidParameter"
            );
        }
        let none = run(&[
            ("ExcludeLowercase", "true"),
            ("ExcludeUppercase", "true"),
            ("ExcludeNumbers", "true"),
            ("ExcludePunctuation", "true"),
        ]);
        assert_eq!(none.unwrap_err().code(), "InvalidParameter");
    }
}

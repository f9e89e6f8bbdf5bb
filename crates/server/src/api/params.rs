//! Reading a request's parameters with the cloud's rules (`docs/management-api.md`,
//! "Formats"): every failure names the parameter.

use std::ops::RangeInclusive;

use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Default and largest page size.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// Largest page size.
pub const MAX_PAGE_SIZE: u32 = 100;

/// The decoded parameters of one request (query, then form body).
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// The first value of `name`, if present and not empty.
    pub fn optional(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// The value of `name`, which must be present and not empty.
    ///
    /// # Errors
    /// [`ApiError::MissingParameter`].
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.optional(name)
            .ok_or_else(|| ApiError::MissingParameter(name.to_owned()))
    }

    /// An integer in `range`, `default` when absent.
    ///
    /// # Errors
    /// [`ApiError::InvalidParameter`] for a non-number or a value out of range.
    pub fn u32_in(
        &self,
        name: &str,
        default: u32,
        range: RangeInclusive<u32>,
    ) -> Result<u32, ApiError> {
        let Some(text) = self.optional(name) else {
            return Ok(default);
        };
        let value: u32 = text.trim().parse().map_err(|_| {
            ApiError::invalid(name, format!("{text:?} is not a non-negative integer"))
        })?;
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(ApiError::invalid(
                name,
                format!(
                    "{value} is not between {} and {}",
                    range.start(),
                    range.end()
                ),
            ))
        }
    }

    /// An integer from `allowed`, `default` when absent.
    ///
    /// # Errors
    /// [`ApiError::InvalidParameter`].
    pub fn u32_of(&self, name: &str, default: u32, allowed: &[u32]) -> Result<u32, ApiError> {
        let value = self.u32_in(name, default, 0..=u32::MAX)?;
        if allowed.contains(&value) {
            Ok(value)
        } else {
            let list: Vec<String> = allowed.iter().map(u32::to_string).collect();
            Err(ApiError::invalid(
                name,
                format!("{value} is not one of {}", list.join(", ")),
            ))
        }
    }

    /// `true` / `false` (any case), `default` when absent.
    ///
    /// # Errors
    /// [`ApiError::InvalidParameter`].
    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.optional(name).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(ApiError::invalid(
                name,
                format!("{other:?} is neither true nor false"),
            )),
        }
    }

    /// A JSON value.
    ///
    /// # Errors
    /// [`ApiError::MissingParameter`] or [`ApiError::InvalidParameter`] with the JSON
    /// error.
    pub fn json<T: DeserializeOwned>(&self, name: &str) -> Result<T, ApiError> {
        let text = self.required(name)?;
        serde_json::from_str(text)
            .map_err(|e| ApiError::invalid(name, format!("not the expected JSON: {e}")))
    }

    /// A list of strings: a JSON array, or a comma-separated string. Empty when absent.
    ///
    /// # Errors
    /// [`ApiError::InvalidParameter`] for a JSON value that is not an array of strings.
    pub fn list(&self, name: &str) -> Result<Vec<String>, ApiError> {
        let Some(text) = self.optional(name) else {
            return Ok(Vec::new());
        };
        if text.trim_start().starts_with('[') {
            return self.json(name);
        }
        Ok(text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect())
    }

    /// A text of 1 to `max` characters, `default` when absent.
    ///
    /// # Errors
    /// [`ApiError::InvalidParameter`].
    pub fn name_or(&self, name: &str, default: &str, max: usize) -> Result<String, ApiError> {
        let value = self.optional(name).unwrap_or(default);
        let count = value.chars().count();
        if count == 0 || count > max || value.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                name,
                format!("must be 1 to {max} characters without control characters"),
            ));
        }
        Ok(value.to_owned())
    }

    /// `PageNumber` (from 1) and `PageSize` (1–100, default 20).
    ///
    /// # Errors
    /// [`ApiError::InvalidParameter`].
    pub fn page(&self) -> Result<strongroom_store::Page, ApiError> {
        self.page_of(DEFAULT_PAGE_SIZE)
    }

    /// `PageNumber` (from 1) and `PageSize` (1–100, default `default_size`).
    ///
    /// # Errors
    /// [`ApiError::InvalidParameter`].
    pub fn page_of(&self, default_size: u32) -> Result<strongroom_store::Page, ApiError> {
        Ok(strongroom_store::Page {
            number: self.u32_in("PageNumber", 1, 1..=u32::MAX)?,
            size: self.u32_in("PageSize", default_size, 1..=MAX_PAGE_SIZE)?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        Params(
            pairs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn rules_name_the_parameter() {
        let params = p(&[
            ("Spec", "300"),
            ("A", "x, y"),
            ("B", r#"["p","q"]"#),
            ("C", "TRUE"),
        ]);
        let e = params.u32_of("Spec", 1000, &[200, 1000]).unwrap_err();
        assert!(e.to_string().contains("Spec"), "{e}");
        assert_eq!(params.list("A").unwrap(), ["x", "y"]);
        assert_eq!(params.list("B").unwrap(), ["p", "q"]);
        assert!(params.bool_or("C", false).unwrap());
        assert_eq!(
            params.required("Missing").unwrap_err(),
            ApiError::MissingParameter("Missing".into())
        );
        assert!(p(&[("PageSize", "101")]).page().is_err());
        assert_eq!(p(&[]).page().unwrap().size, 20);
    }
}

//! Instance endpoints: the port each instance's API is served on
//! ([`crate::Store::instance_port`]). The choice of a port is shared by the back ends.

use std::ops::RangeInclusive;

use crate::StoreError;

/// The lowest port of `range` not in `taken`.
///
/// # Errors
/// [`StoreError::QuotaExceeded`] if every port of `range` is taken.
pub(crate) fn lowest_free(taken: &[i64], range: &RangeInclusive<u16>) -> Result<u16, StoreError> {
    range
        .clone()
        .find(|port| !taken.contains(&i64::from(*port)))
        .ok_or_else(|| {
            StoreError::QuotaExceeded(format!(
                "every instance port from {} to {} is taken",
                range.start(),
                range.end()
            ))
        })
}

/// A port read back from the store.
pub(crate) fn port_from(value: i64) -> Result<u16, StoreError> {
    u16::try_from(value).map_err(|_| StoreError::Corrupt(format!("instance port {value}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn the_lowest_free_port_is_chosen() {
        assert_eq!(lowest_free(&[], &(18000..=18002)).unwrap(), 18000);
        assert_eq!(
            lowest_free(&[18000, 18002], &(18000..=18002)).unwrap(),
            18001
        );
        assert!(matches!(
            lowest_free(&[18000, 18001], &(18000..=18001)),
            Err(StoreError::QuotaExceeded(_))
        ));
        assert!(port_from(70_000).is_err());
    }
}

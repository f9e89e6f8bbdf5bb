//! Token buckets kept in memory on each node: a second's worth of requests may come at
//! once, then `rate` per second. Two uses:
//! - the instance's performance quota (`Spec`, requests per second), spent by requests
//!   that passed authentication; past it the answer is `Rejected.Throttling`, which the
//!   official SDKs retry;
//! - each source address's budget of failed authentications
//!   ([`AUTH_FAILURES_PER_SECOND`]): a source that spent it is refused with
//!   `Rejected.Throttling` before its signature is checked, so that bad requests cost
//!   the node little and spend no instance's quota.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// Failed authentications (unknown client key, signature not matching) one source
/// address may have per second, and at once, before it is refused unchecked.
pub const AUTH_FAILURES_PER_SECOND: u32 = 50;

/// Most buckets one [`Throttle`] keeps. Past it, buckets that have refilled (the same as
/// none) are dropped; if every one is still in use, all are (so an attacker with more
/// addresses than this gets some checks done, never the node's memory).
const MAX_BUCKETS: usize = 65_536;

/// One bucket per key: an instance id, or a source address ([`AuthFailures`]).
#[derive(Debug)]
pub struct Throttle<K = String> {
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K> Default for Throttle<K> {
    fn default() -> Self {
        Self {
            buckets: Mutex::new(HashMap::new()),
        }
    }
}

/// The failed-authentication budgets, by source address (IPv6 by its /64, as the
/// connection caps count them).
pub type AuthFailures = Throttle<IpAddr>;

#[derive(Debug)]
struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Brings the bucket to `now` at `rate` (a changed rate applies from now on).
    fn refill(&mut self, rate: f64, now: Instant) {
        self.rate = rate;
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        self.at = now;
    }

    /// Whether the bucket would be full at `now`: the same as having none.
    fn full_at(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens + elapsed * self.rate >= self.rate
    }
}

impl<K: Hash + Eq> Throttle<K> {
    /// Takes one token from `key`'s bucket of `rate` per second; `false` if there is
    /// none left.
    pub fn admit<Q>(&self, key: &Q, rate: u32) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.admit_at(key, rate, Instant::now())
    }

    /// Whether `key`'s bucket of `rate` per second has a token, without taking it.
    pub fn has_token<Q>(&self, key: &Q, rate: u32) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.has_token_at(key, rate, Instant::now())
    }

    fn admit_at<Q>(&self, key: &Q, rate: u32, now: Instant) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let rate = f64::from(rate.max(1));
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if !buckets.contains_key(key) && buckets.len() >= MAX_BUCKETS {
            buckets.retain(|_, bucket| !bucket.full_at(now));
            if buckets.len() >= MAX_BUCKETS {
                buckets.clear();
            }
        }
        let bucket = match buckets.get_mut(key) {
            Some(bucket) => bucket,
            None => buckets.entry(key.to_owned()).or_insert(Bucket {
                rate,
                tokens: rate,
                at: now,
            }),
        };
        bucket.refill(rate, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn has_token_at<Q>(&self, key: &Q, rate: u32, now: Instant) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let rate = f64::from(rate.max(1));
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        buckets.get_mut(key).is_none_or(|bucket| {
            bucket.refill(rate, now);
            bucket.tokens >= 1.0
        })
    }

    /// Buckets kept now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_second_of_burst_then_the_rate() {
        let throttle = Throttle::default();
        let start = Instant::now();
        let admitted = (0..250)
            .filter(|_| throttle.admit_at("kst-a", 200, start))
            .count();
        assert_eq!(admitted, 200);
        // Another instance has its own bucket.
        assert!(throttle.admit_at("kst-b", 200, start));
        // 100 ms later: 20 more.
        let later = start + Duration::from_millis(100);
        let admitted = (0..50)
            .filter(|_| throttle.admit_at("kst-a", 200, later))
            .count();
        assert_eq!(admitted, 20);
    }

    #[test]
    fn looking_takes_no_token() {
        let failures = AuthFailures::default();
        let source: IpAddr = [192, 0, 2, 1].into();
        let start = Instant::now();
        assert!(failures.has_token_at(&source, 2, start));
        assert!(failures.has_token_at(&source, 2, start));
        assert!(failures.admit_at(&source, 2, start));
        assert!(failures.has_token_at(&source, 2, start));
        assert!(failures.admit_at(&source, 2, start));
        assert!(!failures.has_token_at(&source, 2, start));
        // Half a second refills one at 2 per second.
        assert!(failures.has_token_at(&source, 2, start + Duration::from_millis(500)));
    }

    #[test]
    fn buckets_are_bounded() {
        let failures = AuthFailures::default();
        let start = Instant::now();
        let address = |n: usize| IpAddr::from(u32::try_from(n).unwrap().to_be_bytes());
        for n in 0..MAX_BUCKETS {
            assert!(failures.admit_at(&address(n), 10, start));
        }
        assert_eq!(failures.len(), MAX_BUCKETS);
        // One more while all are in use: all go, the new one stays.
        assert!(failures.admit_at(&address(MAX_BUCKETS), 10, start));
        assert_eq!(failures.len(), 1);
        // Once refilled, old buckets make room for new ones.
        for n in 0..MAX_BUCKETS - 1 {
            assert!(failures.admit_at(&address(n), 10, start));
        }
        let later = start + Duration::from_secs(1);
        assert!(failures.admit_at(&address(MAX_BUCKETS + 1), 10, later));
        assert_eq!(failures.len(), 1);
    }
}

//! The instance's performance quota (`Spec`, requests per second), enforced on each node
//! as a token bucket: a second's worth of requests may come at once, then `Spec` per
//! second. Past it the answer is `Rejected.Throttling`, which the official SDKs retry.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// One bucket per instance.
#[derive(Debug, Default)]
pub struct Throttle {
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Throttle {
    /// Takes one request's token from `instance`'s bucket of `rate` per second; `false`
    /// if there is none left.
    pub fn admit(&self, instance: &str, rate: u32) -> bool {
        self.admit_at(instance, rate, Instant::now())
    }

    fn admit_at(&self, instance: &str, rate: u32, now: Instant) -> bool {
        let rate = f64::from(rate.max(1));
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = buckets.entry(instance.to_owned()).or_insert(Bucket {
            rate,
            tokens: rate,
            at: now,
        });
        // A changed Spec applies from now on.
        bucket.rate = rate;
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
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
}

//! Retrying a compare-and-set update that lost a race (a key, a secret). Every writer
//! reads, changes and writes back with compare-and-set; when another request (on this
//! node or another) wrote in between, the store answers a conflict and the writer tries
//! again after a short random wait, growing with each attempt, so that writers racing on
//! one record all get through instead of colliding again in step. A request gives up
//! with `Rejected.ResourceInUse` only after [`MAX_ATTEMPTS`] attempts or [`BUDGET`].

use std::time::{Duration, Instant};

/// Most attempts of one update.
pub const MAX_ATTEMPTS: u32 = 64;
/// Longest time one update keeps trying.
pub const BUDGET: Duration = Duration::from_secs(3);
/// Longest wait between two attempts.
const MAX_WAIT_MS: u64 = 50;

/// The attempts of one update.
#[derive(Debug)]
pub struct Retry {
    attempt: u32,
    deadline: Instant,
}

impl Default for Retry {
    fn default() -> Self {
        Self::new()
    }
}

impl Retry {
    /// The first attempt, now.
    pub fn new() -> Self {
        Self {
            attempt: 0,
            deadline: Instant::now() + BUDGET,
        }
    }

    /// Attempts made so far.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// After a lost race: waits a random time up to 2^attempt ms (at most 50 ms) and
    /// answers `true` to try again, or `false` when the attempts or the time are spent.
    pub async fn again(&mut self) -> bool {
        self.attempt = self.attempt.saturating_add(1);
        if self.attempt >= MAX_ATTEMPTS || Instant::now() >= self.deadline {
            return false;
        }
        let cap = 1u64
            .checked_shl(self.attempt.min(16))
            .unwrap_or(MAX_WAIT_MS)
            .min(MAX_WAIT_MS);
        let mut seed = [0u8; 8];
        // Without randomness the wait is the cap: still correct, only less spread.
        let wait = match strongroom_crypto::random::fill(&mut seed) {
            Ok(()) => u64::from_le_bytes(seed) % (cap + 1),
            Err(_) => cap,
        };
        tokio::time::sleep(Duration::from_millis(wait)).await;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn gives_up_after_the_attempts() {
        let mut retry = Retry::new();
        let mut n = 1;
        while retry.again().await {
            n += 1;
        }
        assert_eq!(n, MAX_ATTEMPTS);
        assert_eq!(retry.attempts(), MAX_ATTEMPTS);
    }
}

//! Size limits (Segment's) and per-key / per-address rate limits (token buckets kept in
//! memory on each node: a cluster of N nodes allows up to N times the rate, which is fine
//! for abuse protection and needs no shared state).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::config::Rate;

/// Largest `/v1/batch` body, after gzip decoding (Segment: 500 KB).
pub const MAX_BATCH_BYTES: usize = 500 * 1024;
/// Largest single message, in a batch or as a single call (Segment: 32 KB).
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;

/// Buckets kept before idle ones are dropped.
const PRUNE_AT: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key (a write key or a client address).
#[derive(Debug)]
pub struct RateLimiter {
    rate: Rate,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// A limiter for `rate`; `rate.per_second == 0` allows everything.
    pub fn new(rate: Rate) -> RateLimiter {
        RateLimiter { rate, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token for `key` at `now`. `Err(seconds)` says how long until one is
    /// available again (at least 1, for `Retry-After`).
    pub fn check(&self, key: &str, now: Instant) -> Result<(), u64> {
        let Rate { per_second, burst } = self.rate;
        if per_second <= 0.0 {
            return Ok(());
        }
        let burst = burst.max(1.0);
        // A poisoned lock only means another request panicked mid-update; the map is
        // still a valid map of buckets.
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= PRUNE_AT && !buckets.contains_key(key) {
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * per_second < burst);
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket { tokens: burst, at: now });
        let refilled = bucket.tokens + now.saturating_duration_since(bucket.at).as_secs_f64() * per_second;
        bucket.tokens = refilled.min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / per_second;
            Err((wait.ceil() as u64).max(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_burst_then_refills() {
        let limiter = RateLimiter::new(Rate { per_second: 2.0, burst: 3.0 });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check("k", t0), Ok(()));
        }
        assert_eq!(limiter.check("k", t0), Err(1));
        assert_eq!(limiter.check("other", t0), Ok(()));
        assert_eq!(limiter.check("k", t0 + Duration::from_millis(500)), Ok(()));
        assert_eq!(limiter.check("k", t0 + Duration::from_millis(500)), Err(1));
    }

    #[test]
    fn slow_rate_gives_long_retry_after() {
        let limiter = RateLimiter::new(Rate { per_second: 0.1, burst: 1.0 });
        let t0 = Instant::now();
        assert_eq!(limiter.check("k", t0), Ok(()));
        assert_eq!(limiter.check("k", t0), Err(10));
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let limiter = RateLimiter::new(Rate::UNLIMITED);
        for _ in 0..100 {
            assert_eq!(limiter.check("k", Instant::now()), Ok(()));
        }
    }
}

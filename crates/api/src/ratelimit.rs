//! Per-account rate limits: a token bucket per key, refilled continuously.
//!
//! Buckets are kept only for authenticated accounts (and the one operator key), so their number
//! is bounded by the accounts that exist; a request with bad credentials is answered 401 before
//! it reaches a bucket. Limits are per process: on several nodes an account's total is the sum
//! of what each node allows (ARCHITECTURE.md, "Rate limits").

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One limit: `rate` requests per second on average, up to `burst` at once. A rate of 0 is no
/// limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

impl Rate {
    pub const OFF: Rate = Rate {
        per_second: 0.0,
        burst: 0.0,
    };

    fn is_off(self) -> bool {
        self.per_second <= 0.0
    }
}

/// The three limits of the API (PRODUCT.md §2: 429).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    /// Every authenticated account request.
    pub api: Rate,
    /// `POST …/calls` (make call), on top of `api`.
    pub calls: Rate,
    /// The operator's routes (`/api/v1/switch`, `/api/v1/admin`): one bucket for the operator.
    pub operator: Rate,
}

/// A token bucket. Pure: the caller passes the time.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            tokens: rate.burst,
            updated: now,
        }
    }

    /// Takes one token, or tells how long until one is there.
    fn take(&mut self, rate: Rate, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_second).min(rate.burst);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            // Saturating: a very small rate would overflow `Duration`.
            Err(Duration::try_from_secs_f64((1.0 - self.tokens) / rate.per_second).unwrap_or(Duration::MAX))
        }
    }
}

/// Buckets by key for one [`Rate`].
#[derive(Debug)]
pub struct Limiter {
    rate: Rate,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Limiter {
    pub fn new(rate: Rate) -> Limiter {
        Limiter {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The rate this limiter enforces.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Counts one request of `key` at `now`; `Err` holds how long until the next one may pass.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        if self.rate.is_off() {
            return Ok(());
        }
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match buckets.get_mut(key) {
            Some(bucket) => bucket.take(self.rate, now),
            None => {
                let mut bucket = Bucket::full(self.rate, now);
                let taken = bucket.take(self.rate, now);
                buckets.insert(key.to_owned(), bucket);
                taken
            }
        }
    }
}

/// The limiters of one process.
#[derive(Debug)]
pub struct Limiters {
    pub api: Limiter,
    pub calls: Limiter,
    pub operator: Limiter,
}

impl Limiters {
    pub fn new(limits: RateLimits) -> Limiters {
        Limiters {
            api: Limiter::new(limits.api),
            calls: Limiter::new(limits.calls),
            operator: Limiter::new(limits.operator),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_PER_SECOND: Rate = Rate {
        per_second: 2.0,
        burst: 3.0,
    };

    #[test]
    fn a_burst_passes_then_the_next_request_waits_for_one_token() {
        let limiter = Limiter::new(TWO_PER_SECOND);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check("MA_A", start), Ok(()));
        }
        let wait = limiter.check("MA_A", start).expect_err("the burst is spent");
        assert_eq!(wait, Duration::from_millis(500));
        assert!(limiter.check("MA_A", start + Duration::from_millis(499)).is_err());
        assert_eq!(limiter.check("MA_A", start + Duration::from_millis(500)), Ok(()));
    }

    #[test]
    fn tokens_refill_at_the_rate_up_to_the_burst() {
        let limiter = Limiter::new(TWO_PER_SECOND);
        let start = Instant::now();
        for _ in 0..3 {
            limiter.check("MA_A", start).expect("burst");
        }
        // An hour idle refills the bucket to the burst, not to 7 200.
        let later = start + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(limiter.check("MA_A", later), Ok(()));
        }
        assert!(limiter.check("MA_A", later).is_err());
    }

    #[test]
    fn each_key_has_its_own_bucket() {
        let limiter = Limiter::new(TWO_PER_SECOND);
        let now = Instant::now();
        for _ in 0..3 {
            limiter.check("MA_A", now).expect("burst");
        }
        assert!(limiter.check("MA_A", now).is_err());
        assert_eq!(limiter.check("MA_B", now), Ok(()));
    }

    #[test]
    fn a_rate_of_zero_is_no_limit() {
        let limiter = Limiter::new(Rate::OFF);
        let now = Instant::now();
        for _ in 0..10_000 {
            assert_eq!(limiter.check("MA_A", now), Ok(()));
        }
    }
}

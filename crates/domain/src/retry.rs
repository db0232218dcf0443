//! The retry policy (PRODUCT.md §4.2) as one pure function: given how an attempt went and how
//! many were made on the current URL, what happens next.
//!
//! Each URL gets one attempt plus `max_retries` retries, spaced `base · 2^(n−1)` (2 s, 4 s,
//! 8 s by default) with ±`jitter`; a `Retry-After` on 429/503 replaces the backoff (capped) but
//! still spends a retry. When the primary is exhausted the fallback, if any, starts at once
//! with the same budget; then the delivery is `failed`. A blocked address is never retried.

use std::time::Duration;

/// The policy's numbers (all configurable).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base: Duration,
    /// ± fraction applied to each backoff, in [0, 1).
    pub jitter: f64,
    pub retry_after_cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base: Duration::from_secs(2),
            jitter: 0.2,
            retry_after_cap: Duration::from_secs(60),
        }
    }
}

/// How one attempt went, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Success,
    /// Any failure worth retrying; `retry_after` when a 429/503 asked for a delay.
    Failure {
        retry_after: Option<Duration>,
    },
    /// The address is not allowed: retrying cannot help.
    Blocked,
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    Delivered,
    /// Try the same URL again after this delay.
    Retry(Duration),
    /// The primary is exhausted: move to the fallback URL now.
    Fallback,
    Failed,
}

/// Decides the next step. `attempts_on_url` counts the attempts made on the current URL,
/// including this one; `fallback_available` is true while on the primary with a fallback set.
/// `jitter_sample` is a random number in [−1, 1] supplied by the caller.
pub fn decide(
    policy: &RetryPolicy,
    outcome: AttemptOutcome,
    attempts_on_url: u32,
    fallback_available: bool,
    jitter_sample: f64,
) -> Decision {
    let exhausted = || {
        if fallback_available {
            Decision::Fallback
        } else {
            Decision::Failed
        }
    };
    match outcome {
        AttemptOutcome::Success => Decision::Delivered,
        AttemptOutcome::Blocked => exhausted(),
        AttemptOutcome::Failure { .. } if attempts_on_url > policy.max_retries => exhausted(),
        AttemptOutcome::Failure {
            retry_after: Some(asked),
        } => Decision::Retry(asked.min(policy.retry_after_cap)),
        AttemptOutcome::Failure { retry_after: None } => {
            Decision::Retry(backoff(policy, attempts_on_url, jitter_sample))
        }
    }
}

/// The delay before retry number `retry` (1-based), jittered by `sample` ∈ [−1, 1].
pub fn backoff(policy: &RetryPolicy, retry: u32, sample: f64) -> Duration {
    let exponent = retry.saturating_sub(1).min(30);
    let nominal = policy.base.saturating_mul(1u32 << exponent);
    let factor = 1.0 + policy.jitter * sample.clamp(-1.0, 1.0);
    // Saturating: `mul_f64` panics past `Duration::MAX`, which an absurd base reaches.
    Duration::try_from_secs_f64(nominal.as_secs_f64() * factor.max(0.0)).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        max_retries: 3,
        base: Duration::from_secs(2),
        jitter: 0.2,
        retry_after_cap: Duration::from_secs(60),
    };

    #[test]
    fn an_absurd_base_saturates_instead_of_panicking() {
        let policy = RetryPolicy {
            base: Duration::from_millis(u64::MAX / 1000),
            ..POLICY
        };
        assert_eq!(backoff(&policy, 31, 1.0), Duration::MAX);
    }

    fn failure() -> AttemptOutcome {
        AttemptOutcome::Failure { retry_after: None }
    }

    #[test]
    fn failures_back_off_two_four_eight_seconds_then_give_up() {
        let delays: Vec<Decision> = (1..=4)
            .map(|n| decide(&POLICY, failure(), n, false, 0.0))
            .collect();
        assert_eq!(
            delays,
            [
                Decision::Retry(Duration::from_secs(2)),
                Decision::Retry(Duration::from_secs(4)),
                Decision::Retry(Duration::from_secs(8)),
                Decision::Failed
            ]
        );
    }

    #[test]
    fn an_exhausted_primary_moves_to_the_fallback() {
        assert_eq!(decide(&POLICY, failure(), 4, true, 0.0), Decision::Fallback);
        assert_eq!(
            decide(&POLICY, failure(), 3, true, 0.0),
            Decision::Retry(Duration::from_secs(8))
        );
    }

    #[test]
    fn success_is_delivered_whatever_came_before() {
        assert_eq!(
            decide(&POLICY, AttemptOutcome::Success, 4, true, 1.0),
            Decision::Delivered
        );
    }

    #[test]
    fn blocked_is_never_retried() {
        assert_eq!(
            decide(&POLICY, AttemptOutcome::Blocked, 1, false, 0.0),
            Decision::Failed
        );
        assert_eq!(
            decide(&POLICY, AttemptOutcome::Blocked, 1, true, 0.0),
            Decision::Fallback
        );
    }

    #[test]
    fn retry_after_replaces_the_backoff_up_to_the_cap_and_spends_a_retry() {
        let asked = |secs| AttemptOutcome::Failure {
            retry_after: Some(Duration::from_secs(secs)),
        };
        assert_eq!(
            decide(&POLICY, asked(30), 1, false, 0.0),
            Decision::Retry(Duration::from_secs(30))
        );
        assert_eq!(
            decide(&POLICY, asked(3600), 1, false, 0.0),
            Decision::Retry(Duration::from_secs(60))
        );
        assert_eq!(decide(&POLICY, asked(1), 4, false, 0.0), Decision::Failed);
    }

    #[test]
    fn jitter_stays_within_its_band_and_delays_grow_before_jitter() {
        for retry in 1..=10 {
            let nominal = backoff(&POLICY, retry, 0.0);
            assert!(nominal >= backoff(&POLICY, retry.saturating_sub(1).max(1), 0.0));
            for step in -10..=10 {
                let sample = f64::from(step) / 10.0;
                let delay = backoff(&POLICY, retry, sample);
                assert!(
                    delay >= nominal.mul_f64(0.8) && delay <= nominal.mul_f64(1.2),
                    "{retry} {sample}"
                );
            }
        }
        assert_eq!(backoff(&POLICY, 1, 1.0), Duration::from_millis(2400));
        assert_eq!(backoff(&POLICY, 1, -1.0), Duration::from_millis(1600));
    }

    #[test]
    fn zero_retries_means_one_attempt_per_url() {
        let policy = RetryPolicy {
            max_retries: 0,
            ..POLICY
        };
        assert_eq!(decide(&policy, failure(), 1, true, 0.0), Decision::Fallback);
        assert_eq!(decide(&policy, failure(), 1, false, 0.0), Decision::Failed);
    }
}

/// Reads a `Retry-After` value: delay-seconds or an HTTP date (relative to `now`, unix
/// seconds). `None` when it is neither.
pub fn parse_retry_after(value: &str, now_unix: i64) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?.timestamp();
    Some(Duration::from_secs(u64::try_from(when - now_unix).unwrap_or(0)))
}

#[cfg(test)]
mod retry_after_tests {
    use super::parse_retry_after;
    use std::time::Duration;

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("120", 0), Some(Duration::from_secs(120)));
        // Wed, 21 Oct 2015 07:28:00 GMT = 1445412480
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1_445_412_470),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1_445_412_490),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", 0), None);
        assert_eq!(parse_retry_after("-5", 0), None);
    }
}

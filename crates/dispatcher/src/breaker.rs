//! The circuit breaker of one target (an endpoint or a host, see `targets`): after `threshold`
//! failures in a row the target is paused; when the pause ends one probe goes through (half-open), and its
//! outcome closes the breaker or pauses the target again. Pure: time comes in as an argument.
//! A paused delivery is not an attempt: it is released with a later due time, never dropped.

use chrono::{DateTime, TimeDelta, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    pub threshold: u32,
    pub pause: TimeDelta,
}

/// What the breaker says about sending to its target now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Go,
    /// The pause is over: this attempt is the probe.
    Probe,
    /// Paused: try again at this time.
    Wait(DateTime<Utc>),
}

/// A breaker's state as the dashboard shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// No failure counted since the last success.
    Closed,
    /// This many failures in a row, below the threshold: still sending.
    Failing(u32),
    /// Paused until this time.
    Open(DateTime<Utc>),
    /// The pause is over: the next attempt (or the one in flight) is the probe.
    HalfOpen,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Breaker {
    failures: u32,
    open_until: Option<DateTime<Utc>>,
    probing: bool,
}

impl Breaker {
    pub fn admit(&mut self, now: DateTime<Utc>, config: BreakerConfig) -> Admission {
        match self.open_until {
            None => Admission::Go,
            Some(until) if now < until => Admission::Wait(until),
            Some(_) if self.probing => Admission::Wait(now + config.pause),
            Some(_) => {
                self.probing = true;
                Admission::Probe
            }
        }
    }

    /// Failures were counted since the last success: the target is paused, probing, or may be
    /// failing.
    pub fn is_suspect(&self) -> bool {
        self.failures > 0 || self.open_until.is_some()
    }

    /// Until when the target is paused, if it was and no probe has closed the breaker since.
    pub fn paused_until(&self) -> Option<DateTime<Utc>> {
        self.open_until
    }

    /// What the breaker would say now, without admitting anything.
    pub fn state(&self, now: DateTime<Utc>) -> BreakerState {
        match self.open_until {
            Some(until) if now < until => BreakerState::Open(until),
            Some(_) => BreakerState::HalfOpen,
            None if self.failures > 0 => BreakerState::Failing(self.failures),
            None => BreakerState::Closed,
        }
    }

    /// The probe was not sent after all: let the next attempt probe instead.
    pub fn abandon_probe(&mut self) {
        self.probing = false;
    }

    /// Records an attempt's outcome; `failed` means the target looks unhealthy.
    pub fn record(&mut self, failed: bool, now: DateTime<Utc>, config: BreakerConfig) {
        if !failed {
            *self = Breaker::default();
            return;
        }
        self.failures = self.failures.saturating_add(1);
        if self.probing || self.failures >= config.threshold {
            self.open_until = Some(now + config.pause);
            self.probing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: BreakerConfig = BreakerConfig {
        threshold: 3,
        pause: TimeDelta::seconds(5),
    };

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).expect("valid")
    }

    #[test]
    fn the_state_follows_failures_the_pause_and_a_success() {
        let start = at(0);
        let mut breaker = Breaker::default();
        assert_eq!(breaker.state(start), BreakerState::Closed);
        breaker.record(true, start, CONFIG);
        assert_eq!(breaker.state(start), BreakerState::Failing(1));
        breaker.record(true, start, CONFIG);
        breaker.record(true, start, CONFIG);
        assert_eq!(breaker.state(start), BreakerState::Open(start + CONFIG.pause));
        assert_eq!(breaker.state(start + CONFIG.pause), BreakerState::HalfOpen);
        breaker.record(false, start + CONFIG.pause, CONFIG);
        assert_eq!(breaker.state(start), BreakerState::Closed);
    }

    #[test]
    fn failures_below_the_threshold_keep_the_host_open() {
        let mut breaker = Breaker::default();
        breaker.record(true, at(0), CONFIG);
        breaker.record(true, at(0), CONFIG);
        assert_eq!(breaker.admit(at(0), CONFIG), Admission::Go);
        breaker.record(false, at(0), CONFIG);
        breaker.record(true, at(0), CONFIG);
        breaker.record(true, at(0), CONFIG);
        assert_eq!(
            breaker.admit(at(0), CONFIG),
            Admission::Go,
            "a success resets the count"
        );
    }

    #[test]
    fn the_threshold_pauses_then_one_probe_decides() {
        let mut breaker = Breaker::default();
        for _ in 0..3 {
            breaker.record(true, at(0), CONFIG);
        }
        assert_eq!(breaker.admit(at(1), CONFIG), Admission::Wait(at(5)));
        assert_eq!(breaker.admit(at(5), CONFIG), Admission::Probe);
        assert_eq!(
            breaker.admit(at(5), CONFIG),
            Admission::Wait(at(10)),
            "one probe at a time"
        );
        breaker.record(true, at(6), CONFIG);
        assert_eq!(
            breaker.admit(at(7), CONFIG),
            Admission::Wait(at(11)),
            "a failed probe pauses again"
        );
        assert_eq!(breaker.admit(at(11), CONFIG), Admission::Probe);
        breaker.record(false, at(11), CONFIG);
        assert_eq!(
            breaker.admit(at(11), CONFIG),
            Admission::Go,
            "a good probe closes it"
        );
        assert_eq!(breaker, Breaker::default());
    }
}

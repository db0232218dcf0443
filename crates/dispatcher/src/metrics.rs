//! Prometheus metrics of the process (PRODUCT.md §5): events recorded, attempts by outcome,
//! attempt latency, queue depth and the age of the oldest pending delivery.
//!
//! Counters and the histogram are updated where things happen; the two queue gauges are read
//! from the store at scrape time, since other processes may share the queue.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use sender::Outcome;

type Labels = Vec<(&'static str, &'static str)>;

/// The process's metrics registry.
pub struct Metrics {
    registry: Registry,
    events: Counter,
    attempts: Family<Labels, Counter>,
    latency: Histogram,
    queue_depth: Gauge,
    oldest_pending: Gauge<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("hookline");
        let events = Counter::default();
        registry.register("events", "Call events recorded by this process", events.clone());
        let attempts = Family::<Labels, Counter>::default();
        registry.register(
            "attempts",
            "Delivery attempts by outcome (success, timeout, connect, tls, dns, blocked, status)",
            attempts.clone(),
        );
        // 1 ms … ~16 s, doubling.
        let latency = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register(
            "attempt_latency_seconds",
            "Time from sending an attempt to its response headers (or failure)",
            latency.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Deliveries pending (due or scheduled)",
            queue_depth.clone(),
        );
        let oldest_pending = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "oldest_pending_age_seconds",
            "Age of the oldest pending delivery",
            oldest_pending.clone(),
        );
        Metrics {
            registry,
            events,
            attempts,
            latency,
            queue_depth,
            oldest_pending,
        }
    }
}

impl Metrics {
    pub fn events_recorded(&self, count: u64) {
        self.events.inc_by(count);
    }

    pub(crate) fn attempt(&self, outcome: &Outcome) {
        let label = outcome.error.map_or("success", sender::ErrorKind::as_str);
        self.attempts.get_or_create(&vec![("outcome", label)]).inc();
        self.latency.observe(outcome.latency.as_secs_f64());
    }

    /// Renders the text exposition format, with the queue gauges set to the given values.
    pub fn render(&self, queue_depth: u64, oldest_pending_age_s: f64) -> String {
        self.queue_depth
            .set(i64::try_from(queue_depth).unwrap_or(i64::MAX));
        self.oldest_pending.set(oldest_pending_age_s);
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn attempts_events_and_gauges_appear_in_the_exposition() {
        let metrics = Metrics::default();
        metrics.events_recorded(3);
        metrics.attempt(&Outcome {
            status_code: Some(200),
            error: None,
            latency: Duration::from_millis(5),
            retry_after: None,
        });
        metrics.attempt(&Outcome {
            status_code: None,
            error: Some(sender::ErrorKind::Timeout),
            latency: Duration::from_secs(3),
            retry_after: None,
        });
        let text = metrics.render(7, 1.5);
        for expected in [
            "hookline_events_total 3",
            "hookline_attempts_total{outcome=\"success\"} 1",
            "hookline_attempts_total{outcome=\"timeout\"} 1",
            "hookline_attempt_latency_seconds_count 2",
            "hookline_queue_depth 7",
            "hookline_oldest_pending_age_seconds 1.5",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }
}

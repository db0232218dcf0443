//! The Endpoint health page: per target host of the account's callbacks, the last hour's
//! attempts — success rate, p50/p99 latency, a small chart in five-minute bars — and the state
//! of the delivery engine's circuit breaker for that host; and the account's queue (pending
//! callbacks, the oldest one's age).
//!
//! Computed from the delivery log (`Store::list_deliveries` bounded to callbacks created in
//! the last hour, newest first, at most [`MAX_SCANNED`] of them), so it needs no store method
//! of its own and shows only this account's traffic. The breaker state is the answering
//! process's (`Breakers`): with several nodes each keeps its own. A retry of an older callback
//! is not counted (its callback was created before the hour).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, TimeDelta, Utc};
use domain::DeliveryStatus;
use maud::{html, Markup};
use store::{CallbackFilter, Page};

use crate::clock;
use crate::ui::page::{answer, badge, shell, PageError, Section};
use crate::ui::Session;
use crate::{AppState, BreakerState, HostBreaker};

/// The most callbacks read for one page view (pages of 100).
const MAX_SCANNED: u64 = 2_000;
const WINDOW: TimeDelta = TimeDelta::hours(1);
const BUCKETS: usize = 12;
const BUCKET_MINUTES: i64 = 5;

/// One host's attempts in the window.
#[derive(Default)]
struct HostStats {
    latencies_ms: Vec<u64>,
    successes: usize,
    /// `(successes, failures)` per five-minute bucket, oldest first.
    buckets: [(u32, u32); BUCKETS],
}

/// `GET /ui/health`.
pub async fn page(State(state): State<AppState>, session: Session) -> Result<Response, PageError> {
    let now = clock::now();
    let since = now - WINDOW;
    let auth_id = &session.account.auth_id;
    let filter = CallbackFilter {
        status: None,
        since: Some(since),
    };
    let mut hosts: BTreeMap<String, HostStats> = BTreeMap::new();
    let mut scanned = 0u64;
    let mut total = 0u64;
    while scanned < MAX_SCANNED {
        let page = Page {
            limit: 100,
            offset: scanned,
        };
        let listing = state.store.list_deliveries(auth_id, &filter, page).await?;
        total = listing.total;
        if listing.items.is_empty() {
            break;
        }
        scanned += listing.items.len() as u64;
        for record in listing.items {
            for attempt in record.attempts.iter().filter(|a| a.started_at >= since) {
                let stats = hosts.entry(origin(&attempt.url)).or_default();
                stats.latencies_ms.push(attempt.latency_ms);
                let ok = attempt.error.is_none();
                stats.successes += usize::from(ok);
                let bucket = bucket_of(attempt.started_at, now);
                if ok {
                    stats.buckets[bucket].0 += 1;
                } else {
                    stats.buckets[bucket].1 += 1;
                }
            }
        }
        if scanned >= total {
            break;
        }
    }
    let breakers: BTreeMap<String, HostBreaker> = state
        .breakers
        .hosts()
        .into_iter()
        .map(|b| (b.origin.clone(), b))
        .collect();
    let (depth, oldest) = pending(&state, &session).await?;
    let body = html! {
        section aria-labelledby="queue" {
            h2 id="queue" { "Queue" }
            dl.record {
                dt { "Pending callbacks" } dd #queue-depth { (depth) }
                dt { "Oldest pending" } dd { @match oldest {
                    Some(created) => { (age(now - created)) " old" },
                    None => "—",
                } }
            }
        }
        section aria-labelledby="hosts" {
            h2 id="hosts" { "Target hosts, last hour" }
            p.hint {
                "Attempts of the callbacks created in the last hour"
                @if scanned < total { " (the newest " (scanned) " of " (total) ")" }
                ". Breaker state is this server process's view."
            }
            @if hosts.is_empty() { p.empty { "No attempts in the last hour." } }
            @else {
                table #hosts-table {
                    thead { tr { th scope="col" { "Host" } th scope="col" { "Attempts" } th scope="col" { "Success rate" }
                        th scope="col" { "p50" } th scope="col" { "p99" } th scope="col" { "Breaker" } th scope="col" { "Last hour (5 min bars)" } } }
                    tbody {
                        @for (host, stats) in &hosts { (host_row(host, stats, breakers.get(host), now)) }
                    }
                }
            }
        }
    };
    Ok(answer(
        StatusCode::OK,
        shell("Endpoint health", Some(&session), Section::Health, body),
    ))
}

/// The account's pending callbacks and when the oldest was created (the list is newest first).
async fn pending(state: &AppState, session: &Session) -> Result<(u64, Option<DateTime<Utc>>), PageError> {
    let filter = CallbackFilter {
        status: Some(DeliveryStatus::Pending),
        since: None,
    };
    let auth_id = &session.account.auth_id;
    let first = Page { limit: 1, offset: 0 };
    let depth = state.store.list_deliveries(auth_id, &filter, first).await?.total;
    if depth == 0 {
        return Ok((0, None));
    }
    let last = Page {
        limit: 1,
        offset: depth - 1,
    };
    let oldest = state.store.list_deliveries(auth_id, &filter, last).await?;
    Ok((depth, oldest.items.first().map(|r| r.created_at)))
}

/// `scheme://host:port`, the key of the delivery engine's host breaker.
fn origin(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => format!(
            "{}://{}:{}",
            parsed.scheme(),
            parsed.host_str().unwrap_or(""),
            parsed.port_or_known_default().unwrap_or(0)
        ),
        Err(_) => url.to_owned(),
    }
}

fn bucket_of(at: DateTime<Utc>, now: DateTime<Utc>) -> usize {
    let minutes_ago = (now - at).num_minutes().max(0);
    let back = usize::try_from(minutes_ago / BUCKET_MINUTES).unwrap_or(usize::MAX);
    BUCKETS - 1 - back.min(BUCKETS - 1)
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn age(delta: TimeDelta) -> String {
    let seconds = delta.num_seconds().max(0);
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min {} s", seconds / 60, seconds % 60),
        _ => format!("{} h {} min", seconds / 3600, (seconds % 3600) / 60),
    }
}

fn breaker_text(breaker: Option<&HostBreaker>, now: DateTime<Utc>) -> (String, &'static str) {
    let Some(breaker) = breaker else {
        return (String::new(), "closed");
    };
    let paused = match breaker.paused_endpoints {
        0 => String::new(),
        1 => " · 1 path paused".to_owned(),
        n => format!(" · {n} paths paused"),
    };
    match breaker.state {
        BreakerState::Closed => (paused, "closed"),
        BreakerState::Failing(1) => (format!("1 failure{paused}"), "failing"),
        BreakerState::Failing(n) => (format!("{n} failures in a row{paused}"), "failing"),
        BreakerState::Open(until) => (format!("for {} more{paused}", age(until - now)), "open"),
        BreakerState::HalfOpen => (format!("one probe decides{paused}"), "half-open"),
    }
}

fn host_row(host: &str, stats: &HostStats, breaker: Option<&HostBreaker>, now: DateTime<Utc>) -> Markup {
    let mut sorted = stats.latencies_ms.clone();
    sorted.sort_unstable();
    let attempts = sorted.len();
    let rate = 100.0 * stats.successes as f64 / attempts.max(1) as f64;
    let (breaker, word) = breaker_text(breaker, now);
    html! {
        tr data-host=(host) {
            td { code { (host) } }
            td { (attempts) }
            td { (format!("{rate:.1} %")) }
            td { (percentile(&sorted, 0.50)) " ms" }
            td { (percentile(&sorted, 0.99)) " ms" }
            td { (badge(word)) " " (breaker) }
            td { (chart(host, &stats.buckets)) }
        }
    }
}

/// Five-minute bars, oldest on the left: successes (green, bottom) under failures (red).
fn chart(host: &str, buckets: &[(u32, u32); BUCKETS]) -> Markup {
    const BAR: u32 = 14;
    const GAP: u32 = 4;
    const HEIGHT: u32 = 40;
    let max = buckets.iter().map(|(s, f)| s + f).max().unwrap_or(0).max(1);
    let width = BUCKETS as u32 * (BAR + GAP);
    let (ok, failed) = buckets.iter().fold((0, 0), |(s, f), (bs, bf)| (s + bs, f + bf));
    let label =
        format!("{host}: {ok} successful and {failed} failed attempts in the last hour, in five-minute bars");
    html! {
        svg.chart role="img" aria-label=(label) width=(width) height=(HEIGHT + 12) viewBox={"0 0 " (width) " " (HEIGHT + 12)} {
            title { (label) }
            @for (i, (good, bad)) in buckets.iter().enumerate() {
                @let x = i as u32 * (BAR + GAP);
                @let good_h = good * HEIGHT / max;
                @let bad_h = bad * HEIGHT / max;
                rect.good x=(x) y=(HEIGHT - good_h) width=(BAR) height=(good_h) {}
                rect.fail x=(x) y=(HEIGHT - good_h - bad_h) width=(BAR) height=(bad_h) {}
            }
            line.axis x1="0" y1=(HEIGHT) x2=(width) y2=(HEIGHT) {}
            text x="0" y=(HEIGHT + 11) { "−60 min" }
            text x=(width - 22) y=(HEIGHT + 11) { "now" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.50), 50);
        assert_eq!(percentile(&values, 0.99), 99);
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn the_origin_is_the_engines_host_key() {
        assert_eq!(
            origin("https://hooks.example.com/a?b=1"),
            "https://hooks.example.com:443"
        );
        assert_eq!(origin("http://127.0.0.1:9000/cb"), "http://127.0.0.1:9000");
    }

    #[test]
    fn attempts_fall_into_five_minute_buckets_oldest_first() {
        let now = DateTime::from_timestamp(10_000, 0).expect("a time");
        assert_eq!(bucket_of(now, now), BUCKETS - 1);
        assert_eq!(bucket_of(now - TimeDelta::minutes(7), now), BUCKETS - 2);
        assert_eq!(bucket_of(now - TimeDelta::minutes(59), now), 0);
    }
}

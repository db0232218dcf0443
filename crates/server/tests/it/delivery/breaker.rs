//! The circuit breaker (PRODUCT.md §4.2, §6): after `--breaker-threshold` failures in a row a
//! host is paused for `--breaker-pause-ms`; paused deliveries are not attempts, show their
//! `next_attempt_at`, and are all delivered once the host recovers.

use std::time::Duration;

use serde_json::{json, Value};

use super::{register_call, status_delivery, wait_until_settled, WAIT};
use crate::fixture::{Account, Server};
use crate::receiver::{Receiver, Reply, Script};

/// Calls, each with one `CallInitiated` for the failing host.
const N_CALLS: usize = 10;

/// The breaker's pause; the measuring window is shorter, so it holds no probe.
const PAUSE_MS: u64 = 500;
const WINDOW: Duration = Duration::from_millis(400);

/// One run against an always-failing host: the server, its account, its calls, and how many
/// attempts arrived within [`WINDOW`] of the first.
struct Run {
    receiver: Receiver,
    server: Server,
    account: Account,
    calls: Vec<String>,
    in_window: usize,
}

async fn failing_host(breaker_threshold: &str) -> Run {
    let receiver = Receiver::start().await;
    receiver.on("/down", Script::always(Reply::status(500)));
    let pause = PAUSE_MS.to_string();
    let server = super::start_server(&[
        ("--breaker-threshold", breaker_threshold),
        ("--breaker-pause-ms", &pause),
        ("--per-host-concurrency", "1"),
        ("--retry-max", "20"),
    ])
    .await;
    let account = server.admin_create_account("breaker").await;
    let mut calls = Vec::new();
    for _ in 0..N_CALLS {
        calls.push(register_call(&server, &account, &json!({ "status_url": receiver.url("/down") })).await);
    }
    let first = receiver.wait_for("/down", 1, WAIT).await[0].at;
    // Counting what arrives in a fixed window is the measurement itself, not a synchronisation.
    tokio::time::sleep_until((first + WINDOW).into()).await;
    let in_window = receiver
        .arrivals_to("/down")
        .iter()
        .filter(|a| a.at <= first + WINDOW)
        .count();
    Run {
        receiver,
        server,
        account,
        calls,
        in_window,
    }
}

#[tokio::test]
async fn a_failing_host_is_paused_and_every_paused_delivery_arrives_after_it_recovers() {
    let (with_breaker, without_breaker) = tokio::join!(failing_host("2"), failing_host("1000"));
    assert!(
        with_breaker.in_window <= 2,
        "after two failures the host is paused for {PAUSE_MS} ms, but {} attempts arrived in {WINDOW:?}",
        with_breaker.in_window
    );
    assert!(
        without_breaker.in_window >= 6 && without_breaker.in_window > with_breaker.in_window,
        "without a breaker the same host gets {} attempts in {WINDOW:?}, with one {}",
        without_breaker.in_window,
        with_breaker.in_window
    );
    drop(without_breaker);

    let Run {
        receiver,
        server,
        account,
        calls,
        ..
    } = with_breaker;
    // Paused deliveries are pending, with no attempt, and say when they are due.
    let mut paused = Vec::new();
    for call_uuid in &calls {
        let objects = super::callbacks(&server, &account, call_uuid).await;
        let delivery = status_delivery(&objects, 1).clone();
        assert_eq!(delivery["status"], "pending", "nothing is given up: {delivery}");
        if super::attempts(&delivery).is_empty() {
            paused.push(delivery);
        }
    }
    assert!(
        !paused.is_empty(),
        "some deliveries never got an attempt while paused"
    );
    let postponed: Vec<chrono::TimeDelta> = paused
        .iter()
        .map(|delivery| time(&delivery["next_attempt_at"]) - time(&delivery["created_at"]))
        .collect();
    assert!(
        postponed.iter().all(|by| *by > chrono::TimeDelta::zero())
            && postponed
                .iter()
                .any(|by| *by >= chrono::TimeDelta::milliseconds(200)),
        "paused deliveries are due after the pause, not when created: {postponed:?} {paused:#?}"
    );

    // The host recovers: the next probe succeeds and everything is delivered.
    receiver.on("/down", Script::always(Reply::ok()));
    let (mut n_attempts, mut n_answered) = (0, 0);
    for call_uuid in &calls {
        let objects = wait_until_settled(&server, &account, call_uuid).await;
        let delivery = status_delivery(&objects, 1);
        assert_eq!(delivery["status"], "delivered", "{delivery}");
        let attempts = super::attempts(delivery);
        n_attempts += attempts.len();
        n_answered += attempts.iter().filter(|a| a["status_code"].is_u64()).count();
    }
    // Every answered attempt arrived, and nothing arrived that is not a logged attempt (a pause
    // is not one). On a loaded machine an attempt can time out before the receiver sees it,
    // so the two counts bracket the arrivals rather than equal them.
    let arrived = receiver.arrivals_to("/down");
    assert!(
        n_answered <= arrived.len() && arrived.len() <= n_attempts,
        "answered {n_answered} ≤ arrived {} ≤ logged {n_attempts}",
        arrived.len()
    );
    let delivered: std::collections::HashSet<String> = arrived
        .iter()
        .rev()
        .take(N_CALLS)
        .map(|a| a.expect_field("CallUUID"))
        .collect();
    assert_eq!(
        delivered.len(),
        N_CALLS,
        "the last {N_CALLS} arrivals are one per call"
    );
}

#[track_caller]
fn time(value: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    let text = value.as_str().unwrap_or_else(|| panic!("not a time: {value}"));
    chrono::DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

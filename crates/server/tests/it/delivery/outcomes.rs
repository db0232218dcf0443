//! What counts as delivered and when a failed attempt is made again (PRODUCT.md §4.2): 200
//! only (204 and 302 are retried, redirects never followed) unless `--accept-any-2xx`; an
//! attempt that outlasts its budget is a `timeout`; retries back off exponentially under one
//! stable event id with fresh nonces; `Retry-After` on 429/503 sets the delay, up to its cap.
//!
//! Fallback and redelivery are in `fallback.rs`; the circuit breaker in `breaker.rs`.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};

use super::{attempts, register_call, status_delivery, wait_until_settled, WAIT};
use crate::receiver::{Arrival, Receiver, Reply, Script};

/// The gaps between consecutive arrivals.
fn gaps(arrivals: &[Arrival]) -> Vec<Duration> {
    arrivals.windows(2).map(|w| w[1].at - w[0].at).collect()
}

/// Timing tolerance for lower bounds: clocks are read at slightly different points.
const SLACK: Duration = Duration::from_millis(15);

#[tokio::test]
async fn only_200_is_success_so_204_and_302_are_retried_and_the_redirect_is_not_followed() {
    let receiver = Receiver::start().await;
    receiver.on("/no-content", Script::always(Reply::status(204)));
    receiver.on(
        "/moved",
        Script::always(Reply::status(302).with_header("Location", &receiver.url("/elsewhere"))),
    );
    let server = super::start_server(&[("--retry-max", "2")]).await;
    let account = server.admin_create_account("outcomes").await;
    let no_content = register_call(
        &server,
        &account,
        &json!({ "status_url": receiver.url("/no-content") }),
    )
    .await;
    let moved = register_call(
        &server,
        &account,
        &json!({ "status_url": receiver.url("/moved") }),
    )
    .await;

    for (call_uuid, code) in [(&no_content, 204), (&moved, 302)] {
        let objects = wait_until_settled(&server, &account, call_uuid).await;
        let delivery = status_delivery(&objects, 1);
        assert_eq!(delivery["status"], "failed", "{delivery}");
        let tried = attempts(delivery);
        assert_eq!(tried.len(), 3, "one attempt and two retries: {delivery}");
        for attempt in tried {
            assert_eq!(attempt["status_code"], code, "{attempt}");
            assert_eq!(attempt["error"], "status", "{attempt}");
        }
    }
    assert_eq!(receiver.arrivals_to("/no-content").len(), 3);
    assert_eq!(receiver.arrivals_to("/moved").len(), 3);
    assert!(
        receiver.arrivals_to("/elsewhere").is_empty(),
        "a redirect was followed"
    );
}

#[tokio::test]
async fn with_accept_any_2xx_a_204_is_delivered_at_once() {
    let receiver = Receiver::start().await;
    receiver.on("/no-content", Script::always(Reply::status(204)));
    let server = super::start_server(&[("--accept-any-2xx", "true")]).await;
    let account = server.admin_create_account("any-2xx").await;
    let call_uuid = register_call(
        &server,
        &account,
        &json!({ "status_url": receiver.url("/no-content") }),
    )
    .await;
    let objects = wait_until_settled(&server, &account, &call_uuid).await;
    let delivery = status_delivery(&objects, 1);
    assert_eq!(delivery["status"], "delivered", "{delivery}");
    assert_eq!(attempts(delivery).len(), 1);
    assert_eq!(attempts(delivery)[0]["status_code"], 204);
    assert_eq!(attempts(delivery)[0]["error"], Value::Null);
    assert_eq!(receiver.arrivals_to("/no-content").len(), 1);
}

#[tokio::test]
async fn an_answer_later_than_the_budget_is_a_timeout_and_is_retried() {
    let receiver = Receiver::start().await;
    // Far past the 300 ms budget the first time, then at once.
    receiver.on(
        "/slow",
        Script::sequence(vec![Reply::ok().after(Duration::from_secs(2))], Reply::ok()),
    );
    let server = super::start_server(&[]).await;
    let account = server.admin_create_account("timeout").await;
    let call_uuid = register_call(&server, &account, &json!({ "status_url": receiver.url("/slow") })).await;
    let arrived = receiver.wait_for("/slow", 2, WAIT).await;
    assert_eq!(arrived[0].event_id(), arrived[1].event_id());

    let objects = wait_until_settled(&server, &account, &call_uuid).await;
    let delivery = status_delivery(&objects, 1);
    assert_eq!(delivery["status"], "delivered", "{delivery}");
    let tried = attempts(delivery);
    assert_eq!(tried.len(), 2, "{delivery}");
    assert_eq!(tried[0]["error"], "timeout", "{delivery}");
    assert_eq!(tried[0]["status_code"], Value::Null, "{delivery}");
    let latency = tried[0]["latency_ms"].as_u64().expect("latency_ms");
    assert!(
        (250..2000).contains(&latency),
        "the timed-out attempt ended at the 300 ms budget, not the 2 s answer: {latency} ms"
    );
    assert_eq!(tried[1]["status_code"], 200);
    assert_eq!(tried[1]["error"], Value::Null);
    assert!(
        arrived[1].at - arrived[0].at < Duration::from_millis(1900),
        "the retry did not wait for the slow answer"
    );
}

#[tokio::test]
async fn retries_back_off_exponentially_under_one_event_id_with_fresh_signatures() {
    let receiver = Receiver::start().await;
    receiver.on("/flaky", Script::fail_first(3, Reply::status(500)));
    let server = super::start_server(&[("--retry-base-ms", "100")]).await;
    let account = server.admin_create_account("retries").await;
    let call_uuid = register_call(
        &server,
        &account,
        &json!({ "status_url": receiver.url("/flaky") }),
    )
    .await;
    let arrived = receiver.wait_for("/flaky", 4, WAIT).await;

    let event_id = arrived[0].event_id();
    for (number, arrival) in (1..).zip(&arrived) {
        assert_eq!(
            arrival.event_id(),
            event_id,
            "the event id is stable across retries"
        );
        assert_eq!(arrival.expect_header("webhook-id"), event_id);
        assert_eq!(arrival.attempt(), number);
        assert_eq!(arrival.sequence(), 1);
        assert_eq!(arrival.expect_header("x-hookline-target"), "primary");
    }
    for header in [
        "x-vobiz-signature-v2-nonce",
        "x-vobiz-signature-v3-nonce",
        "x-vobiz-signature-v2",
        "x-vobiz-signature-v3",
    ] {
        let distinct: HashSet<&str> = arrived.iter().map(|a| a.expect_header(header)).collect();
        assert_eq!(distinct.len(), 4, "{header} is fresh for every attempt");
    }

    let gaps = gaps(&arrived);
    for (gap, nominal_ms) in gaps.iter().zip([100u64, 200, 400]) {
        assert!(
            *gap + SLACK >= Duration::from_millis(nominal_ms),
            "a retry came before its backoff of {nominal_ms} ms: gaps {gaps:?}"
        );
    }
    assert!(gaps[2] > gaps[0], "the backoff grows: {gaps:?}");

    let objects = wait_until_settled(&server, &account, &call_uuid).await;
    let delivery = status_delivery(&objects, 1);
    assert_eq!(delivery["status"], "delivered");
    assert_eq!(delivery["delivered_to"], "primary");
    let codes: Vec<&Value> = attempts(delivery).iter().map(|a| &a["status_code"]).collect();
    assert_eq!(codes, [500, 500, 500, 200]);
    let numbers: Vec<&Value> = attempts(delivery).iter().map(|a| &a["attempt"]).collect();
    assert_eq!(numbers, [1, 2, 3, 4]);
    assert_eq!(receiver.arrivals_to("/flaky").len(), 4, "nothing after the 200");
}

#[tokio::test]
async fn retry_after_on_503_delays_the_next_attempt_and_is_logged() {
    let receiver = Receiver::start().await;
    receiver.on(
        "/busy",
        Script::fail_first(1, Reply::status(503).with_header("Retry-After", "1")),
    );
    let server = super::start_server(&[]).await;
    let account = server.admin_create_account("retry-after").await;
    let call_uuid = register_call(&server, &account, &json!({ "status_url": receiver.url("/busy") })).await;
    let arrived = receiver.wait_for("/busy", 2, WAIT).await;
    let gap = arrived[1].at - arrived[0].at;
    assert!(
        gap + SLACK >= Duration::from_secs(1),
        "Retry-After: 1 was not honoured (the backoff is 50 ms): {gap:?}"
    );
    let objects = wait_until_settled(&server, &account, &call_uuid).await;
    let tried = attempts(status_delivery(&objects, 1));
    assert_eq!(tried[0]["status_code"], 503);
    assert_eq!(tried[0]["retry_after_ms"], 1000, "{tried:?}");
    assert_eq!(tried[1]["retry_after_ms"], Value::Null, "{tried:?}");
    assert_eq!(tried[1]["status_code"], 200);
}

#[tokio::test]
async fn retry_after_on_other_statuses_is_ignored() {
    let receiver = Receiver::start().await;
    receiver.on(
        "/error",
        Script::fail_first(1, Reply::status(500).with_header("Retry-After", "5")),
    );
    let server = super::start_server(&[]).await;
    let account = server.admin_create_account("retry-after-500").await;
    let call_uuid = register_call(
        &server,
        &account,
        &json!({ "status_url": receiver.url("/error") }),
    )
    .await;
    let arrived = receiver.wait_for("/error", 2, WAIT).await;
    let gap = arrived[1].at - arrived[0].at;
    assert!(
        gap < Duration::from_secs(3),
        "a 500's Retry-After: 5 replaced the 50 ms backoff: {gap:?}"
    );
    let objects = wait_until_settled(&server, &account, &call_uuid).await;
    let tried = attempts(status_delivery(&objects, 1));
    assert_eq!(tried[0]["status_code"], 500);
    assert_eq!(tried[0]["retry_after_ms"], Value::Null, "{tried:?}");
}

#[tokio::test]
async fn retry_after_is_capped_and_still_spends_a_retry() {
    let receiver = Receiver::start().await;
    receiver.on(
        "/throttled",
        Script::always(Reply::status(429).with_header("Retry-After", "5")),
    );
    let server = super::start_server(&[("--retry-after-cap-ms", "200"), ("--retry-max", "2")]).await;
    let account = server.admin_create_account("retry-after-cap").await;
    let call_uuid = register_call(
        &server,
        &account,
        &json!({ "status_url": receiver.url("/throttled") }),
    )
    .await;
    let arrived = receiver.wait_for("/throttled", 3, WAIT).await;
    for gap in gaps(&arrived) {
        assert!(
            gap + SLACK >= Duration::from_millis(200),
            "faster than the cap: {gap:?}"
        );
        assert!(
            gap < Duration::from_millis(2500),
            "Retry-After: 5 was not capped at 200 ms: {gap:?}"
        );
    }
    let objects = wait_until_settled(&server, &account, &call_uuid).await;
    let delivery = status_delivery(&objects, 1);
    assert_eq!(
        delivery["status"], "failed",
        "three attempts spend the budget: {delivery}"
    );
    let tried = attempts(delivery);
    assert_eq!(tried.len(), 3);
    assert!(
        tried
            .iter()
            .all(|a| a["retry_after_ms"].as_u64().is_some_and(|ms| ms >= 200)),
        "every attempt logs the delay asked for: {tried:?}"
    );
    assert_eq!(receiver.arrivals_to("/throttled").len(), 3);
}

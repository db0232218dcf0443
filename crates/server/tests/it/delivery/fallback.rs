//! Exhaustion (PRODUCT.md §4.2, §2.5, §6): when the application's primary URL has spent its
//! retries the same event goes to `fallback_callback_url`, then it is `failed` — kept, listed
//! and redeliverable with the same event id while the attempt numbers keep counting.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use super::{attempts, create_application, register_call, status_delivery, text, wait_until_settled, WAIT};
use crate::fixture::send;
use crate::receiver::{Receiver, Reply, Script};

#[tokio::test]
async fn an_exhausted_primary_hands_the_same_event_to_the_fallback() {
    let receiver = Receiver::start().await;
    receiver.on("/primary", Script::always(Reply::status(500)));
    let server = super::start_server(&[("--retry-max", "1")]).await;
    let account = server.admin_create_account("fallback").await;
    let app_id = create_application(
        &server,
        &account,
        &json!({
            "name": "with fallback",
            "callback_url": receiver.url("/primary"),
            "fallback_callback_url": receiver.url("/fallback"),
        }),
    )
    .await;
    let call_uuid = register_call(&server, &account, &json!({ "app_id": app_id })).await;
    let fallback = receiver.wait_for("/fallback", 1, WAIT).await;
    let primary = receiver.arrivals_to("/primary");
    assert_eq!(primary.len(), 2, "one attempt and one retry on the primary first");

    let event_id = primary[0].event_id();
    for (number, arrival) in (1..).zip(primary.iter().chain(&fallback)) {
        assert_eq!(arrival.event_id(), event_id);
        assert_eq!(
            arrival.attempt(),
            number,
            "attempts count across primary and fallback"
        );
        assert_eq!(arrival.expect_header("x-hookline-callback-level"), "application");
    }
    assert_eq!(primary[1].expect_header("x-hookline-target"), "primary");
    assert_eq!(fallback[0].expect_header("x-hookline-target"), "fallback");

    let objects = wait_until_settled(&server, &account, &call_uuid).await;
    let delivery = status_delivery(&objects, 1);
    assert_eq!(delivery["status"], "delivered", "{delivery}");
    assert_eq!(delivery["delivered_to"], "fallback");
    assert_eq!(delivery["fallback_url"], receiver.url("/fallback"));
    let targets: Vec<&Value> = attempts(delivery).iter().map(|a| &a["target"]).collect();
    assert_eq!(targets, ["primary", "primary", "fallback"]);
    assert_eq!(attempts(delivery)[2]["url"], receiver.url("/fallback"));
    assert_eq!(receiver.arrivals().len(), 3);
}

#[tokio::test]
async fn a_failed_event_is_listed_and_redelivered_with_its_id_and_counting_attempts() {
    let receiver = Receiver::start().await;
    receiver.on("/primary", Script::always(Reply::status(500)));
    receiver.on("/fallback", Script::always(Reply::status(503)));
    let server = super::start_server(&[("--retry-max", "1")]).await;
    let account = server.admin_create_account("redeliver").await;
    let app_id = create_application(
        &server,
        &account,
        &json!({
            "name": "both down",
            "callback_url": receiver.url("/primary"),
            "fallback_callback_url": receiver.url("/fallback"),
        }),
    )
    .await;
    let call_uuid = register_call(&server, &account, &json!({ "app_id": app_id })).await;
    let objects = wait_until_settled(&server, &account, &call_uuid).await;
    let delivery = status_delivery(&objects, 1);
    assert_eq!(delivery["status"], "failed", "{delivery}");
    assert_eq!(delivery["delivered_to"], Value::Null);
    assert_eq!(attempts(delivery).len(), 4, "two on each URL: {delivery}");
    assert_eq!(receiver.arrivals_to("/primary").len(), 2);
    assert_eq!(receiver.arrivals_to("/fallback").len(), 2);
    let event_id = text(delivery, "event_id");

    let since: String =
        url::form_urlencoded::byte_serialize(text(delivery, "created_at").as_bytes()).collect();
    let failed = server
        .get(
            &account,
            &account.path(&format!("/callbacks?status=failed&since={since}")),
        )
        .await
        .expect(200);
    let listed: Vec<&Value> = failed["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .map(|o| &o["event_id"])
        .collect();
    assert_eq!(listed, [&Value::from(event_id.clone())], "{failed}");

    // The primary is healthy again; a redelivery starts there.
    receiver.on("/primary", Script::always(Reply::ok()));
    let redelivered = send(server.authed(
        &account,
        Method::POST,
        &account.path(&format!("/callbacks/{event_id}/redeliver")),
    ))
    .await
    .expect(202);
    assert_eq!(redelivered["event_id"], event_id.as_str());
    let arrived = receiver.wait_for("/primary", 3, WAIT).await;
    let again = &arrived[2];
    assert_eq!(again.event_id(), event_id, "a redelivery keeps the event id");
    assert_eq!(again.expect_header("webhook-id"), event_id);
    assert_eq!(again.attempt(), 5, "attempts keep counting after four");
    assert_eq!(again.expect_header("x-hookline-target"), "primary");
    assert_ne!(
        again.expect_header("x-vobiz-signature-v2-nonce"),
        arrived[0].expect_header("x-vobiz-signature-v2-nonce"),
        "a redelivery is signed afresh"
    );

    let objects = wait_until_settled(&server, &account, &call_uuid).await;
    let delivery = status_delivery(&objects, 1);
    assert_eq!(delivery["status"], "delivered", "{delivery}");
    assert_eq!(delivery["delivered_to"], "primary");
    let numbers: Vec<&Value> = attempts(delivery).iter().map(|a| &a["attempt"]).collect();
    assert_eq!(numbers, [1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn redelivery_is_refused_while_pending_and_without_a_url_and_unknown_ids_are_404() {
    let receiver = Receiver::start().await;
    receiver.on(
        "/hanging",
        Script::always(Reply::ok().after(Duration::from_secs(3))),
    );
    let server = super::start_server(&[("--retry-base-ms", "2000")]).await;
    let account = server.admin_create_account("refusals").await;
    let redeliver = |event_id: &str| {
        send(server.authed(
            &account,
            Method::POST,
            &account.path(&format!("/callbacks/{event_id}/redeliver")),
        ))
    };

    let pending = register_call(
        &server,
        &account,
        &json!({ "status_url": receiver.url("/hanging") }),
    )
    .await;
    let first = receiver.wait_for("/hanging", 1, WAIT).await;
    redeliver(&first[0].event_id())
        .await
        .expect_error(409, "conflict");

    let app_id = create_application(
        &server,
        &account,
        &json!({ "name": "hangups only", "callback_url": receiver.url("/hangups"), "callback_events": ["Hangup"] }),
    )
    .await;
    let filtered = register_call(&server, &account, &json!({ "app_id": app_id })).await;
    let unrouted = register_call(&server, &account, &json!({})).await;
    for (call_uuid, status) in [(&filtered, "filtered"), (&unrouted, "unrouted")] {
        let objects = super::callbacks(&server, &account, call_uuid).await;
        let delivery = status_delivery(&objects, 1);
        assert_eq!(delivery["status"], status, "{delivery}");
        redeliver(&text(delivery, "event_id"))
            .await
            .expect_error(409, "conflict");
    }
    redeliver("00000000-0000-4000-8000-000000000000")
        .await
        .expect_error(404, "not_found");

    let objects = super::callbacks(&server, &account, &pending).await;
    assert_eq!(status_delivery(&objects, 1)["status"], "pending");
}

//! Where callbacks go (PRODUCT.md §3.2, §3.3): each resolution level's URL really receives
//! its calls' callbacks and no other level's, and the direct channels (`ring_url`,
//! `answer_url`, `hangup_url`, on the call or the application) receive their event as well.
//!
//! What is planned (`callback-plan`) is in `routing.rs`; the wire format is in `encoding.rs`.

use serde_json::json;

use super::{
    create_application, create_trunk, make_call, register_call, report_whole_call, update_account,
    wait_until_settled, WAIT,
};
use crate::receiver::Receiver;

#[tokio::test]
async fn each_level_receives_the_callbacks_it_wins_and_no_other() {
    let receiver = Receiver::start().await;
    let server = super::start_server(&[]).await;
    let account = server.admin_create_account("levels").await;
    update_account(
        &server,
        &account,
        &json!({ "default_callback_url": receiver.url("/account") }),
    )
    .await;
    let trunk_id = create_trunk(
        &server,
        &account,
        &json!({ "name": "carrier", "status_callback": receiver.url("/trunk") }),
    )
    .await;
    let app_id = create_application(
        &server,
        &account,
        &json!({ "name": "app", "callback_url": receiver.url("/application") }),
    )
    .await;

    // The most specific level with a URL wins; broader levels are configured but lose.
    let cases = [
        (
            "call",
            "/call",
            json!({ "status_url": receiver.url("/call"), "app_id": app_id, "trunk_id": trunk_id }),
        ),
        (
            "application",
            "/application",
            json!({ "app_id": app_id, "trunk_id": trunk_id }),
        ),
        ("trunk", "/trunk", json!({ "trunk_id": trunk_id })),
        ("account", "/account", json!({})),
    ];
    let mut calls = Vec::new();
    for (level, path, extra) in cases {
        let call_uuid = register_call(&server, &account, &extra).await;
        report_whole_call(&server, &call_uuid).await;
        calls.push((level, path, call_uuid));
    }
    for (_, _, call_uuid) in &calls {
        let objects = wait_until_settled(&server, &account, call_uuid).await;
        assert!(objects.iter().all(|o| o["status"] == "delivered"), "{objects:#?}");
    }

    assert_eq!(
        receiver.arrivals().len(),
        16,
        "four events for each of four calls"
    );
    for (level, path, call_uuid) in &calls {
        let arrived = receiver.arrivals_to(path);
        let events: Vec<String> = arrived.iter().map(|a| a.expect_field("Event")).collect();
        assert_eq!(
            events,
            ["CallInitiated", "Ring", "StartApp", "Hangup"],
            "{path} got the events of its call, in order"
        );
        for arrival in &arrived {
            assert_eq!(
                &arrival.expect_field("CallUUID"),
                call_uuid,
                "{path} got another call's callback"
            );
            assert_eq!(arrival.expect_header("x-hookline-callback-level"), *level);
        }
    }
    for (level, _, call_uuid) in &calls {
        for object in super::callbacks(&server, &account, call_uuid).await {
            assert_eq!(object["level"], *level, "{object}");
        }
    }
}

#[tokio::test]
async fn direct_channels_get_their_event_beside_the_status_callback() {
    let receiver = Receiver::start().await;
    let server = super::start_server(&[]).await;
    let account = server.admin_create_account("direct").await;

    // Call-level direct channels on a simulated call.
    let on_call = make_call(
        &server,
        &account,
        &json!({
            "status_url": receiver.url("/status"),
            "ring_url": receiver.url("/ring"),
            "answer_url": receiver.url("/answer"),
            "hangup_url": receiver.url("/hangup"),
        }),
    )
    .await;
    // Application-level direct channels, beside a call-level ring_url.
    let app_id = create_application(
        &server,
        &account,
        &json!({
            "name": "voice",
            "callback_url": receiver.url("/app-status"),
            "answer_url": receiver.url("/app-answer"),
            "hangup_url": receiver.url("/app-hangup"),
        }),
    )
    .await;
    let on_app = make_call(
        &server,
        &account,
        &json!({ "app_id": app_id, "ring_url": receiver.url("/app-call-ring") }),
    )
    .await;

    for call_uuid in [&on_call, &on_app] {
        super::wait_for_log(
            &server,
            &account,
            call_uuid,
            "four status callbacks and three direct ones, all delivered",
            WAIT,
            |objects| objects.len() == 7 && objects.iter().all(|o| o["status"] == "delivered"),
        )
        .await;
    }
    let expected = [
        (
            "/status",
            &on_call,
            vec!["CallInitiated", "Ring", "StartApp", "Hangup"],
        ),
        ("/ring", &on_call, vec!["Ring"]),
        ("/answer", &on_call, vec!["StartApp"]),
        ("/hangup", &on_call, vec!["Hangup"]),
        (
            "/app-status",
            &on_app,
            vec!["CallInitiated", "Ring", "StartApp", "Hangup"],
        ),
        ("/app-call-ring", &on_app, vec!["Ring"]),
        ("/app-answer", &on_app, vec!["StartApp"]),
        ("/app-hangup", &on_app, vec!["Hangup"]),
    ];
    for (path, call_uuid, events) in &expected {
        let arrived = receiver.arrivals_to(path);
        let got: Vec<String> = arrived.iter().map(|a| a.expect_field("Event")).collect();
        assert_eq!(&got, events, "{path}");
        assert!(arrived.iter().all(|a| &&a.expect_field("CallUUID") == call_uuid));
    }
    assert_eq!(receiver.arrivals().len(), 14, "nothing else arrived");

    // A direct channel carries the same event (id and sequence) as the status channel.
    let status = receiver.arrivals_to("/status");
    let ring = &receiver.arrivals_to("/ring")[0];
    assert_eq!(ring.event_id(), status[1].event_id());
    assert_eq!(ring.sequence(), 2);
    let channels: Vec<String> = super::callbacks(&server, &account, &on_call)
        .await
        .iter()
        .map(|o| {
            format!(
                "{}:{}",
                o["event"].as_str().unwrap_or("?"),
                o["channel"].as_str().unwrap_or("?")
            )
        })
        .collect();
    for channel in ["Ring:ring_url", "StartApp:answer_url", "Hangup:hangup_url"] {
        assert!(
            channels.iter().any(|c| c == channel),
            "{channel} not in {channels:?}"
        );
    }
}

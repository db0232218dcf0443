//! Where each event of a call goes (PRODUCT.md §2.5, §3.2, §3.3), read from the delivery log of
//! real calls: the most specific level with a URL wins and its filter decides, with no
//! fall-through (the matrix in `call_log/matrix.rs`); direct channels come in addition, the
//! configuration at the moment of the event counts, no URL means `unrouted`, and
//! `callback-plan` predicts what a call then records.
//!
//! Delivery itself (signatures, retries, fallback) is `delivery*.rs`; here a local receiver only
//! confirms that exactly the events resolved `send` arrived, at the resolved URL and method.

use reqwest::Method;
use serde_json::{json, Value};

use crate::applications::create_application;
use crate::call_receiver::Receiver;
use crate::calls::{
    call_body, call_log, list_total, make_call, poll, wait_for_events, ANSWERS, BUSY, FAST, FROM,
};
use crate::fixture::{send, Account, Server};
use crate::shapes::{detail_for, object_keys, sorted_names};
use crate::trunks::create_trunk;

mod matrix;

#[tokio::test]
async fn direct_channels_get_their_events_in_addition_and_unfiltered() {
    let receiver = Receiver::start().await;
    let server = Server::start_with(&["--dev", "--sim-ring-ms", "30", "--sim-talk-ms", "60"]).await;
    let account = server.admin_create_account("direct").await;
    let app = create_application(
        &server,
        &account,
        &json!({"name": "direct", "callback_url": receiver.url("/app"),
                "callback_events": ["recording.completed"], "answer_url": receiver.url("/app-answer"),
                "answer_method": "GET", "hangup_url": receiver.url("/app-hangup")}),
    )
    .await;
    let with_app = make_call(
        &server,
        &account,
        &call_body(
            ANSWERS,
            &json!({"app_id": app["app_id"], "record": true, "ring_url": receiver.url("/call-ring"),
                    "ring_method": "get", "answer_url": receiver.url("/call-answer")}),
        ),
    )
    .await;
    let bare = make_call(
        &server,
        &account,
        &call_body(BUSY, &json!({"ring_url": receiver.url("/bare-ring")})),
    )
    .await;
    wait_for_events(&server, &account, &with_app, 5).await;
    wait_for_events(&server, &account, &bare, 3).await;
    poll("every delivery settled", || async {
        match list_total(&server, &account, "/callbacks?status=pending").await {
            0 => Ok(()),
            n => Err(format!("{n} pending")),
        }
    })
    .await;

    // One line per object: sequence, event, channel, level, URL path, method, status.
    let row = |object: &Value| {
        let text = |key: &str| object[key].as_str().unwrap_or("-").to_owned();
        let path = text("url").replace(&receiver.url(""), "");
        format!(
            "{} {} {} {} {path} {} {}",
            object["sequence"],
            text("event"),
            text("channel"),
            text("level"),
            text("method"),
            text("status")
        )
    };
    let rows = |objects: Vec<Value>| objects.iter().map(row).collect::<Vec<_>>();
    assert_eq!(
        rows(call_log(&server, &account, &with_app).await),
        [
            "1 CallInitiated status application /app POST filtered",
            "2 Ring status application /app POST filtered",
            "2 Ring ring_url call /call-ring GET delivered",
            "3 StartApp status application /app POST filtered",
            "3 StartApp answer_url call /call-answer POST delivered",
            "4 Hangup status application /app POST filtered",
            "4 Hangup hangup_url application /app-hangup POST delivered",
            "5 RecordStop status application /app POST delivered",
        ]
    );
    assert_eq!(
        rows(call_log(&server, &account, &bare).await),
        [
            "1 CallInitiated status none - POST unrouted",
            "2 Ring status none - POST unrouted",
            "2 Ring ring_url call /bare-ring POST delivered",
            "3 Hangup status none - POST unrouted",
        ]
    );
    let mut received: Vec<(String, String)> = receiver
        .hits()
        .iter()
        .map(|hit| (hit.path.clone(), hit.field("Event").unwrap_or("?").to_owned()))
        .collect();
    received.sort();
    let mut sent: Vec<(String, String)> = [
        ("/app", "RecordStop"),
        ("/app-hangup", "Hangup"),
        ("/bare-ring", "Ring"),
        ("/call-answer", "StartApp"),
        ("/call-ring", "Ring"),
    ]
    .iter()
    .map(|(path, event)| ((*path).to_owned(), (*event).to_owned()))
    .collect();
    sent.sort();
    assert_eq!(received, sent);
}

async fn report(server: &Server, call_uuid: &str, body: Value) {
    let path = format!("/api/v1/switch/calls/{call_uuid}/events");
    send(server.operator(Method::POST, &path).json(&body))
        .await
        .expect(201);
}

async fn update(server: &Server, account: &Account, path: &str, body: Value) {
    server
        .send_json(account, Method::PATCH, path, &body)
        .await
        .expect(200);
}

/// `(event, level, url, method, status is filtered)` of each status-channel object.
async fn resolved(
    server: &Server,
    account: &Account,
    call_uuid: &str,
) -> Vec<(String, String, Value, String, bool)> {
    call_log(server, account, call_uuid)
        .await
        .iter()
        .filter(|object| object["channel"] == "status")
        .map(|object| {
            (
                object["event"].as_str().unwrap_or("?").to_owned(),
                object["level"].as_str().unwrap_or("?").to_owned(),
                object["url"].clone(),
                object["method"].as_str().unwrap_or("?").to_owned(),
                object["status"] == "filtered",
            )
        })
        .collect()
}

#[tokio::test]
async fn each_event_is_resolved_with_the_configuration_of_its_moment() {
    let server = Server::start().await;
    let account = server.admin_create_account("moments").await;
    let url = |name: &str| json!(format!("https://{name}.example.com/cb"));
    update(
        &server,
        &account,
        &account.path(""),
        json!({"default_callback_url": url("account")}),
    )
    .await;
    let app = create_application(
        &server,
        &account,
        &json!({"name": "ivr", "callback_url": url("app-1")}),
    )
    .await;
    let app_path = account.path(&format!(
        "/applications/{}",
        app["app_id"].as_str().expect("app_id")
    ));
    let registered = send(
        server
            .operator(Method::POST, "/api/v1/switch/calls")
            .json(&json!({
                "auth_id": account.auth_id, "direction": "inbound", "from": "+14155558888", "to": FROM,
                "app_id": app["app_id"],
            })),
    )
    .await
    .expect(201);
    let call_uuid = registered["call_uuid"].as_str().expect("call_uuid");

    let row = |event: &str, level: &str, url: Value, method: &str, filtered: bool| {
        (
            event.to_owned(),
            level.to_owned(),
            url,
            method.to_owned(),
            filtered,
        )
    };
    let mut expected = vec![row("CallInitiated", "application", url("app-1"), "POST", false)];
    assert_eq!(resolved(&server, &account, call_uuid).await, expected);

    update(
        &server,
        &account,
        &app_path,
        json!({"callback_url": url("app-2"), "callback_method": "GET"}),
    )
    .await;
    assert_eq!(
        resolved(&server, &account, call_uuid).await,
        expected,
        "the past stays"
    );
    report(&server, call_uuid, json!({"event": "Ring"})).await;
    expected.push(row("Ring", "application", url("app-2"), "GET", false));
    assert_eq!(resolved(&server, &account, call_uuid).await, expected);

    update(
        &server,
        &account,
        &app_path,
        json!({"callback_events": ["call.answered"]}),
    )
    .await;
    report(&server, call_uuid, json!({"event": "StartApp"})).await;
    report(&server, call_uuid, json!({"event": "Hangup"})).await;
    expected.push(row("StartApp", "application", url("app-2"), "GET", false));
    expected.push(row("Hangup", "application", url("app-2"), "GET", true));
    assert_eq!(resolved(&server, &account, call_uuid).await, expected);

    // Without its URL the application is skipped: the account takes the next event.
    update(&server, &account, &app_path, json!({"callback_url": null})).await;
    update(
        &server,
        &account,
        &account.path(""),
        json!({"default_callback_method": "GET"}),
    )
    .await;
    report(
        &server,
        call_uuid,
        json!({"event": "RecordStop", "recording_id": "r", "record_url": "https://media.example.com/r"}),
    )
    .await;
    expected.push(row("RecordStop", "account", url("account"), "GET", false));
    assert_eq!(resolved(&server, &account, call_uuid).await, expected);

    // A deleted application is skipped too.
    let other_app = create_application(
        &server,
        &account,
        &json!({"name": "gone", "callback_url": url("gone")}),
    )
    .await;
    let second = send(
        server
            .operator(Method::POST, "/api/v1/switch/calls")
            .json(&json!({
                "auth_id": account.auth_id, "direction": "inbound", "from": "+14155558888", "to": FROM,
                "app_id": other_app["app_id"],
            })),
    )
    .await
    .expect(201);
    let second = second["call_uuid"].as_str().expect("call_uuid");
    let gone_path = account.path(&format!(
        "/applications/{}",
        other_app["app_id"].as_str().expect("id")
    ));
    let deleted = server.delete(&account, &gone_path).await;
    assert_eq!(deleted.status, 204, "{}", deleted.json);
    report(&server, second, json!({"event": "Ring"})).await;
    assert_eq!(
        resolved(&server, &account, second).await,
        [
            row("CallInitiated", "application", url("gone"), "POST", false),
            row("Ring", "account", url("account"), "GET", false),
        ]
    );
}

#[tokio::test]
async fn call_failed_admits_every_unsuccessful_end_and_no_completed_call() {
    let server = Server::start().await;
    let account = server.admin_create_account("failed").await;
    let trunk = create_trunk(
        &server,
        &account,
        &json!({"name": "failures", "status_callback": "https://trunk.example.com/cb",
                "status_callback_events": ["call.failed"]}),
    )
    .await;
    let ends = [
        (
            "busy",
            vec![
                json!({"event": "Ring"}),
                json!({"event": "Hangup", "call_status": "busy"}),
            ],
        ),
        (
            "no-answer",
            vec![
                json!({"event": "Ring"}),
                json!({"event": "Hangup", "call_status": "no-answer"}),
            ],
        ),
        (
            "failed",
            vec![json!({"event": "Hangup", "hangup_cause": "UNALLOCATED_NUMBER"})],
        ),
        (
            "timeout",
            vec![
                json!({"event": "Ring"}),
                json!({"event": "Hangup", "call_status": "timeout"}),
            ],
        ),
        ("cancel", vec![json!({"event": "Ring"})]),
        (
            "completed",
            vec![
                json!({"event": "Ring"}),
                json!({"event": "StartApp"}),
                json!({"event": "Hangup"}),
            ],
        ),
    ];
    for (call_status, reports) in ends {
        let registered = send(
            server
                .operator(Method::POST, "/api/v1/switch/calls")
                .json(&json!({
                    "auth_id": account.auth_id, "direction": "outbound", "from": FROM, "to": ANSWERS,
                    "trunk_id": trunk["trunk_id"],
                })),
        )
        .await
        .expect(201);
        let call_uuid = registered["call_uuid"].as_str().expect("call_uuid");
        for body in reports {
            report(&server, call_uuid, body).await;
        }
        if call_status == "cancel" {
            let path = account.path(&format!("/calls/{call_uuid}"));
            assert_eq!(server.delete(&account, &path).await.status, 204);
        }
        let objects = call_log(&server, &account, call_uuid).await;
        let hangup = objects
            .iter()
            .find(|object| object["event"] == "Hangup")
            .unwrap_or_else(|| panic!("no Hangup for {call_status}: {objects:#?}"));
        assert_eq!(hangup["level"], "trunk", "{hangup}");
        let sent = hangup["status"] != "filtered";
        assert_eq!(sent, call_status != "completed", "{call_status}: {hangup}");
        for other in objects.iter().filter(|object| object["event"] != "Hangup") {
            assert_eq!(other["status"], "filtered", "{call_status}: {other}");
        }
    }
}

#[tokio::test]
async fn events_no_level_has_a_url_for_are_unrouted_and_listed_as_such() {
    let server = Server::start_with(FAST).await;
    let account = server.admin_create_account("unrouted").await;
    let call_uuid = make_call(&server, &account, &call_body(BUSY, &json!({}))).await;
    let objects = wait_for_events(&server, &account, &call_uuid, 3).await;
    for object in &objects {
        assert_eq!(
            (
                &object["level"],
                &object["url"],
                &object["fallback_url"],
                &object["status"]
            ),
            (&json!("none"), &Value::Null, &Value::Null, &json!("unrouted")),
            "{object}"
        );
        assert!(
            object["attempts"].as_array().is_some_and(Vec::is_empty),
            "{object}"
        );
        assert!(
            !object["reason"].as_str().unwrap_or_default().is_empty(),
            "{object}"
        );
    }
    assert_eq!(
        list_total(&server, &account, "/callbacks?status=unrouted").await,
        3
    );
    for query in [
        "?status=filtered",
        "?status=pending",
        "?since=2999-01-01T00:00:00Z",
    ] {
        assert_eq!(
            list_total(&server, &account, &format!("/callbacks{query}")).await,
            0,
            "{query}"
        );
    }
    let listed = server
        .get(&account, &account.path("/callbacks?status=unrouted"))
        .await
        .expect(200);
    let listed_ids: Vec<&Value> = listed["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .map(|o| &o["event_id"])
        .collect();
    for object in &objects {
        assert!(listed_ids.contains(&&object["event_id"]), "{object} is listed");
    }
    for (query, field) in [("?status=bogus", "status"), ("?since=tomorrow", "since")] {
        let details = server
            .get(&account, &account.path(&format!("/callbacks{query}")))
            .await
            .expect_error(400, "invalid_field");
        assert!(detail_for(&details, field).is_some(), "{query}: {details}");
    }
}

/// The query of `callback-plan` and the make-call body for the same levels.
fn plan_and_call(app: Option<&Value>, trunk: Option<&Value>, status_url: Option<&str>) -> (String, Value) {
    let mut query = Vec::new();
    let mut body = call_body(ANSWERS, &json!({"record": true}));
    if let Some(app) = app {
        query.push(format!("app_id={}", app["app_id"].as_str().expect("app_id")));
        body["app_id"] = app["app_id"].clone();
    }
    if let Some(trunk) = trunk {
        query.push(format!(
            "trunk_id={}",
            trunk["trunk_id"].as_str().expect("trunk_id")
        ));
        body["trunk_id"] = trunk["trunk_id"].clone();
    }
    if let Some(url) = status_url {
        query.push(format!("status_url={url}&status_method=GET"));
        body["status_url"] = json!(url);
        body["status_method"] = json!("GET");
    }
    (format!("/callback-plan?{}", query.join("&")), body)
}

#[tokio::test]
async fn the_callback_plan_agrees_with_what_a_call_then_records() {
    let server = Server::start_with(FAST).await;
    let account = server.admin_create_account("plan").await;
    let app = create_application(
        &server,
        &account,
        &json!({"name": "ivr", "callback_url": "https://app.example.com/cb", "callback_method": "GET",
                "fallback_callback_url": "https://backup.example.com/cb",
                "callback_events": ["call.answered", "call.completed", "recording.completed"]}),
    )
    .await;
    let trunk = create_trunk(
        &server,
        &account,
        &json!({"name": "carrier", "status_callback": "https://trunk.example.com/cb",
                "status_callback_events": ["call.ringing", "call.failed"]}),
    )
    .await;
    let cases = [
        (None, None, None),
        (None, None, None),
        (None, Some(&trunk), None),
        (Some(&app), Some(&trunk), None),
        (Some(&app), Some(&trunk), Some("https://call.example.com/status")),
    ];
    for (n, (app, trunk, status_url)) in cases.into_iter().enumerate() {
        if n == 1 {
            let settings = json!({"default_callback_url": "https://account.example.com/cb",
                                  "default_callback_events": ["Hangup", "CallInitiated"]});
            update(&server, &account, &account.path(""), settings).await;
        }
        let (query, body) = plan_and_call(app, trunk, status_url);
        let plan = server.get(&account, &account.path(&query)).await.expect(200);
        let rows = plan["objects"].as_array().expect("objects");
        let call_uuid = make_call(&server, &account, &body).await;
        let objects = wait_for_events(&server, &account, &call_uuid, 5).await;
        assert_eq!(rows.len(), 5, "{plan}");
        for (row, object) in rows.iter().zip(&objects) {
            assert_eq!(
                object_keys(row),
                sorted_names(&[
                    "event",
                    "level",
                    "url",
                    "method",
                    "fallback_url",
                    "verdict",
                    "reason"
                ])
            );
            for key in ["event", "level", "url", "method", "fallback_url", "reason"] {
                assert_eq!(
                    row[key], object[key],
                    "case {n} {query}: {key} of {row} vs {object}"
                );
            }
            let status = object["status"].as_str().unwrap_or_default();
            let verdict = match status {
                "pending" | "delivered" | "failed" => "send",
                other => other,
            };
            assert_eq!(row["verdict"], verdict, "case {n} {query}: {row} vs {object}");
        }
    }

    let other = server.admin_create_account("other").await;
    let theirs = create_application(&server, &other, &json!({"name": "theirs"})).await;
    for query in [
        format!("?app_id={}", theirs["app_id"].as_str().expect("app_id")),
        "?app_id=nope".to_owned(),
        "?trunk_id=6f1c2a4e-0b7d-4c1e-9f3a-2d5e8b7c1a90".to_owned(),
    ] {
        server
            .get(&account, &account.path(&format!("/callback-plan{query}")))
            .await
            .expect_error(404, "not_found");
    }
    for (query, field) in [
        ("?status_url=http://example.com/cb", "status_url"),
        (
            "?status_url=https://example.com/cb&status_method=PUT",
            "status_method",
        ),
    ] {
        let details = server
            .get(&account, &account.path(&format!("/callback-plan{query}")))
            .await
            .expect_error(400, "invalid_field");
        assert!(detail_for(&details, field).is_some(), "{query}: {details}");
    }
}

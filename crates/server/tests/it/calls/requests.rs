//! Make-call requests (PRODUCT.md §2.4, §4.5, §6): refused input names its field and creates
//! neither call nor event, every boundary value is accepted, and `Idempotency-Key` replays the
//! first answer byte for byte and places one call.

use reqwest::Method;
use serde_json::{json, Value};
use tokio::task::JoinSet;

use super::{
    call_body, check_fired, list_total, make_call, numbered, status_events, wait_for_events, with, ANSWERS,
    FAST, FROM, UNALLOCATED,
};
use crate::applications::create_application;
use crate::fixture::{Account, Server};
use crate::shapes::{detail_for, without_api_id};
use crate::trunks::create_trunk;

/// A refused make-call body and what the answer must say: status, `code`, and for a 400 the
/// field `details` names (any one of `named`, for a write alias).
struct Refusal {
    body: Value,
    status: u16,
    named: Vec<&'static str>,
}

fn refused(body: Value, named: &[&'static str]) -> Refusal {
    Refusal {
        body,
        status: 400,
        named: named.to_vec(),
    }
}

fn refused_with(status: u16, body: Value) -> Refusal {
    Refusal {
        body,
        status,
        named: Vec::new(),
    }
}

/// Make-call input that must be refused (PRODUCT.md §2.4, §4.5, §6), on top of a valid body.
fn refusals(foreign_app: &str, foreign_trunk: &str, inactive: &str, inbound_only: &str) -> Vec<Refusal> {
    let ok = call_body(ANSWERS, &json!({}));
    let bad = |extra: Value| with(&ok, &extra);
    let unknown_id = "6f1c2a4e-0b7d-4c1e-9f3a-2d5e8b7c1a90";
    let mut cases = vec![
        refused(json!({}), &["from"]),
        refused(json!({}), &["to"]),
        refused(json!({"from": FROM}), &["to"]),
        refused(json!({"to": ANSWERS}), &["from"]),
        refused(bad(json!({"from": null})), &["from"]),
        refused(bad(json!({"to": null})), &["to"]),
    ];
    for (field, value) in [
        ("from", json!("1234567")),
        ("from", json!("415-555-1234")),
        ("from", json!(14155551234u64)),
        ("to", json!("+1234567890123456")),
        ("to", json!("+1 415 555 0100")),
        ("to", json!("tel:+14155550100")),
        ("to", json!("sip:")),
        ("to", json!("")),
        ("status_url", json!("http://example.com/cb")),
        ("status_url", json!("https://localhost/cb")),
        ("status_url", json!("")),
        ("ring_url", json!("ftp://example.com/ring")),
        ("answer_url", json!("https://user:pw@example.com/answer")),
        ("hangup_url", json!("https://169.254.169.254/latest/meta-data/")),
        ("hangup_url", json!("https://10.0.0.1/hangup")),
        ("time_limit", json!(0)),
        ("time_limit", json!(86_401)),
        ("time_limit", json!(-1)),
        ("time_limit", json!("60")),
        ("ring_timeout", json!(0)),
        ("ring_timeout", json!(3_601)),
        ("record", json!("yes")),
        ("colour", json!("blue")),
        ("app_id", json!(7)),
    ] {
        cases.push(refused(bad(json!({ field: value })), &[field]));
    }
    cases.extend([
        refused(
            bad(json!({"status_callback_url": "https://10.0.0.1/cb"})),
            &["status_url", "status_callback_url"],
        ),
        refused(
            bad(json!({"status_url": "https://example.com/s", "status_method": "PUT"})),
            &["status_method"],
        ),
        refused(
            bad(json!({"ring_url": "https://example.com/r", "ring_method": "DELETE"})),
            &["ring_method"],
        ),
        refused(
            bad(json!({"answer_url": "https://example.com/a", "answer_method": ""})),
            &["answer_method"],
        ),
        refused(
            bad(json!({"hangup_url": "https://example.com/h", "hangup_method": 1})),
            &["hangup_method"],
        ),
        refused_with(404, bad(json!({"app_id": foreign_app}))),
        refused_with(404, bad(json!({"app_id": unknown_id}))),
        refused_with(404, bad(json!({"app_id": "not-an-app"}))),
        refused_with(404, bad(json!({"trunk_id": foreign_trunk}))),
        refused_with(404, bad(json!({"trunk_id": unknown_id}))),
        refused_with(422, bad(json!({"trunk_id": inactive}))),
        refused_with(422, bad(json!({"trunk_id": inbound_only}))),
    ]);
    cases
}

#[tokio::test]
async fn refused_make_call_input_names_the_field_and_creates_no_call_and_no_event() {
    let server = Server::start_with(FAST).await;
    let account = server.admin_create_account("validation").await;
    let other = server.admin_create_account("other").await;
    let foreign_app = create_application(&server, &other, &json!({"name": "theirs"})).await;
    let foreign_trunk = create_trunk(&server, &other, &json!({"name": "theirs"})).await;
    let inactive = create_trunk(
        &server,
        &account,
        &json!({"name": "off", "trunk_status": "inactive"}),
    )
    .await;
    let inbound_only = create_trunk(
        &server,
        &account,
        &json!({"name": "in", "trunk_direction": "inbound"}),
    )
    .await;
    let id = |object: &Value, key: &str| object[key].as_str().expect("id").to_owned();
    let cases = refusals(
        &id(&foreign_app, "app_id"),
        &id(&foreign_trunk, "trunk_id"),
        &id(&inactive, "trunk_id"),
        &id(&inbound_only, "trunk_id"),
    );
    for case in cases {
        let answer = server
            .send_json(&account, Method::POST, &account.path("/calls"), &case.body)
            .await;
        let code = match case.status {
            400 => "invalid_field",
            404 => "not_found",
            _ => "unprocessable",
        };
        let body = &case.body;
        assert_eq!(answer.status, case.status, "{body} answered {}", answer.json);
        let details = answer.expect_error(case.status, code);
        if !case.named.is_empty() {
            assert!(
                case.named
                    .iter()
                    .any(|field| detail_for(&details, field).is_some()),
                "{body}: details {details} do not name {:?}",
                case.named
            );
        }
        assert_eq!(
            list_total(&server, &account, "/calls").await,
            0,
            "{body} created a call"
        );
        assert_eq!(
            list_total(&server, &account, "/callbacks").await,
            0,
            "{body} created an event"
        );
    }
    assert_eq!(list_total(&server, &other, "/calls").await, 0);
}

#[tokio::test]
async fn make_call_accepts_the_boundaries_of_every_field() {
    let server = Server::start_with(FAST).await;
    let account = server.admin_create_account("boundaries").await;
    let bodies = [
        json!({"from": "12345678", "to": "+123456789012345", "time_limit": 86_400, "ring_timeout": 3_600}),
        json!({"from": "+14155551234", "to": "sip:alice@example.com", "time_limit": 1, "ring_timeout": 1}),
        json!({"from": FROM, "to": UNALLOCATED, "status_callback_url": "https://example.com/s",
               "status_method": "get", "ring_url": "https://example.com/r", "ring_method": "Post",
               "answer_url": "https://example.com/a", "hangup_url": "https://example.com/h",
               "hangup_method": "GET", "record": false, "app_id": null, "trunk_id": null}),
    ];
    for (n, body) in bodies.iter().enumerate() {
        make_call(&server, &account, body).await;
        assert_eq!(
            list_total(&server, &account, "/calls").await,
            n as u64 + 1,
            "{body}"
        );
    }
}

/// `POST …/calls` with this exact body text and an optional `Idempotency-Key`: status and
/// body bytes as sent by the server.
async fn post_call_text(server: &Server, account: &Account, key: Option<&str>, body: &str) -> (u16, String) {
    let mut request = server
        .authed(account, Method::POST, &account.path("/calls"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.expect("sending make-call");
    let status = response.status().as_u16();
    (status, response.text().await.expect("reading the answer"))
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer_byte_for_byte_and_places_one_call() {
    let server = Server::start_with(FAST).await;
    let account = server.admin_create_account("idempotent").await;
    let body = r#"{"from":"+14155551234","to":"+14155550100","record":true}"#;
    let reordered = "{ \"record\": true,\n  \"to\": \"+14155550100\", \"from\": \"+14155551234\" }";

    let (status, first) = post_call_text(&server, &account, Some("key-1"), body).await;
    assert_eq!(status, 201, "{first}");
    let call_uuid = check_fired(&without_api_id(&serde_json::from_str(&first).expect("JSON")));
    for text in [body, reordered] {
        let (status, again) = post_call_text(&server, &account, Some("key-1"), text).await;
        assert_eq!(
            (status, &again),
            (201, &first),
            "a replay is the first answer, api_id included"
        );
    }
    assert_eq!(list_total(&server, &account, "/calls").await, 1);

    // The same key with another body is refused and places nothing.
    let other_body = r#"{"from":"+14155551234","to":"+14155550101","record":true}"#;
    let (status, refusal) = post_call_text(&server, &account, Some("key-1"), other_body).await;
    assert_eq!(status, 422, "{refusal}");
    let refusal: Value = serde_json::from_str(&refusal).expect("a JSON error");
    assert_eq!(refusal["code"], "unprocessable", "{refusal}");
    assert_eq!(list_total(&server, &account, "/calls").await, 1);

    // The replayed call ran once: one set of events.
    let objects = wait_for_events(&server, &account, &call_uuid, 5).await;
    assert_eq!(
        status_events(&objects),
        numbered(&["CallInitiated", "Ring", "StartApp", "Hangup", "RecordStop"])
    );

    // Without a key, every request is a new call.
    let (a, b) = (
        post_call_text(&server, &account, None, body).await,
        post_call_text(&server, &account, None, body).await,
    );
    let fired = |text: &str| check_fired(&without_api_id(&serde_json::from_str(text).expect("JSON")));
    assert_eq!((a.0, b.0), (201, 201));
    assert_ne!(fired(&a.1), fired(&b.1));
    assert_eq!(list_total(&server, &account, "/calls").await, 3);

    // Keys belong to an account: another account's identical request is its own call.
    let other = server.admin_create_account("other").await;
    let (status, theirs) = post_call_text(&server, &other, Some("key-1"), body).await;
    assert_eq!(status, 201);
    assert_ne!(fired(&theirs), call_uuid);
    assert_eq!(list_total(&server, &other, "/calls").await, 1);
    assert_eq!(list_total(&server, &account, "/calls").await, 3);
}

#[tokio::test]
async fn an_idempotency_key_is_not_spent_by_a_refused_request_nor_raced_by_parallel_ones() {
    let server = Server::start_with(FAST).await;
    let account = server.admin_create_account("idempotent").await;
    let good = r#"{"from":"+14155551234","to":"+14155550100"}"#;

    let (status, _) = post_call_text(&server, &account, Some("key-2"), r#"{"from":"+14155551234"}"#).await;
    assert_eq!(status, 400);
    let (status, first) = post_call_text(&server, &account, Some("key-2"), good).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(list_total(&server, &account, "/calls").await, 1);

    for key in ["", &"k".repeat(256)] {
        let (status, answer) = post_call_text(&server, &account, Some(key), good).await;
        assert_eq!(status, 400, "key of {} bytes: {answer}", key.len());
        assert!(answer.contains("Idempotency-Key"), "{answer}");
    }
    assert_eq!(list_total(&server, &account, "/calls").await, 1);

    let mut requests = JoinSet::new();
    for _ in 0..8 {
        let request = server
            .authed(&account, Method::POST, &account.path("/calls"))
            .header("content-type", "application/json")
            .header("Idempotency-Key", "key-3")
            .body(good);
        requests.spawn(async move {
            let response = request.send().await.expect("sending make-call");
            (
                response.status().as_u16(),
                response.text().await.expect("reading"),
            )
        });
    }
    let mut answers = Vec::new();
    while let Some(joined) = requests.join_next().await {
        answers.push(joined.expect("the request task"));
    }
    assert!(answers.iter().all(|answer| answer == &answers[0]), "{answers:#?}");
    assert_eq!(answers[0].0, 201);
    assert_eq!(list_total(&server, &account, "/calls").await, 2);
}

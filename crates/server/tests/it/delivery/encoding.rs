//! The wire format of a callback (PRODUCT.md §4.1, §6): `POST` with a form body and its
//! content type, or `GET` with the same fields appended to the URL's own query; the field set
//! (plus the hangup fields once the call ended) and the Hookline headers.

use serde_json::json;

use super::{register_call, report_whole_call, wait_until_settled, FROM, TO, WAIT};
use crate::receiver::{Arrival, Receiver};

/// The fields of every callback.
const FIELDS: [&str; 10] = [
    "Event",
    "CallUUID",
    "RequestUUID",
    "From",
    "To",
    "Direction",
    "CallStatus",
    "timestamp",
    "auth_id",
    "SessionStart",
];

/// The fields a callback gains once the call has ended.
const HANGUP_FIELDS: [&str; 9] = [
    "HangupCause",
    "HangupCauseCode",
    "HangupCauseName",
    "HangupSource",
    "Duration",
    "BillDuration",
    "StartTime",
    "AnswerTime",
    "EndTime",
];

#[track_caller]
fn assert_fields(arrival: &Arrival, call_uuid: &str, auth_id: &str) {
    let event = arrival.expect_field("Event");
    for field in FIELDS {
        assert!(
            arrival.field(field).is_some(),
            "{event} lacks {field}: {:?}",
            arrival.fields()
        );
    }
    for field in HANGUP_FIELDS {
        assert_eq!(
            arrival.field(field).is_some(),
            event == "Hangup",
            "{event} and {field}: {:?}",
            arrival.fields()
        );
    }
    assert_eq!(arrival.expect_field("CallUUID"), call_uuid);
    assert_eq!(arrival.expect_field("From"), FROM);
    assert_eq!(arrival.expect_field("To"), TO);
    assert_eq!(arrival.expect_field("Direction"), "outbound");
    assert_eq!(arrival.expect_field("auth_id"), auth_id);
    let timestamp = arrival.expect_field("timestamp");
    let parsed = chrono::DateTime::parse_from_rfc3339(&timestamp)
        .unwrap_or_else(|e| panic!("timestamp {timestamp:?} is not ISO 8601 ({e})"));
    assert_eq!(
        parsed.offset().local_minus_utc(),
        0,
        "timestamp {timestamp:?} is not UTC"
    );
    let expected_status = match event.as_str() {
        "Ring" => Some("ringing"),
        "StartApp" => Some("in-progress"),
        "Hangup" => Some("completed"),
        _ => None,
    };
    if let Some(status) = expected_status {
        assert_eq!(arrival.expect_field("CallStatus"), status, "{event}");
    }
    assert_eq!(
        arrival.expect_header("user-agent"),
        format!("Hookline/{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(arrival.expect_header("x-hookline-target"), "primary");
    assert_eq!(arrival.expect_header("x-hookline-callback-level"), "call");
    assert_eq!(arrival.attempt(), 1);
    assert_eq!(arrival.event_id(), arrival.expect_header("webhook-id"));
}

#[tokio::test]
async fn get_and_post_carry_the_same_fields_in_the_query_or_the_form_body() {
    let receiver = Receiver::start().await;
    let server = super::start_server(&[]).await;
    let account = server.admin_create_account("encoding").await;
    let by_get = register_call(
        &server,
        &account,
        &json!({ "status_url": receiver.url("/get?tenant=7&mode=a%20b"), "status_method": "GET" }),
    )
    .await;
    let by_post = register_call(
        &server,
        &account,
        &json!({ "status_url": receiver.url("/post?tenant=8"), "status_method": "post" }),
    )
    .await;
    report_whole_call(&server, &by_get).await;
    report_whole_call(&server, &by_post).await;
    let gets = receiver.wait_for("/get", 4, WAIT).await;
    let posts = receiver.wait_for("/post", 4, WAIT).await;

    for (sequence, arrival) in (1..).zip(&gets) {
        assert_eq!(arrival.method, "GET");
        assert_eq!(arrival.sequence(), sequence);
        let query = arrival.query.as_deref().unwrap_or("");
        assert!(
            query.starts_with("tenant=7&mode=a%20b&"),
            "the URL's own query comes first, unchanged: {query}"
        );
        assert!(arrival.body.is_empty(), "a GET has no body");
        assert_eq!(arrival.header("content-type"), None, "a GET has no content type");
        assert_fields(arrival, &by_get, &account.auth_id);
    }
    for (sequence, arrival) in (1..).zip(&posts) {
        assert_eq!(arrival.method, "POST");
        assert_eq!(arrival.sequence(), sequence);
        assert_eq!(
            arrival.query.as_deref(),
            Some("tenant=8"),
            "the fields go in the body"
        );
        assert_eq!(
            arrival.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(
            arrival.field("tenant"),
            None,
            "the URL's query is not copied into the body"
        );
        assert_fields(arrival, &by_post, &account.auth_id);
    }
    let events =
        |arrivals: &[Arrival]| -> Vec<String> { arrivals.iter().map(|a| a.expect_field("Event")).collect() };
    assert_eq!(events(&gets), ["CallInitiated", "Ring", "StartApp", "Hangup"]);
    assert_eq!(events(&posts), events(&gets));

    let logged = wait_until_settled(&server, &account, &by_get).await;
    assert!(logged
        .iter()
        .all(|o| o["method"] == "GET" && o["status"] == "delivered"));
    let first_attempt = &super::attempts(&logged[0])[0];
    assert_eq!(first_attempt["status_code"], 200);
    assert_eq!(first_attempt["error"], serde_json::Value::Null);
    assert_eq!(first_attempt["target"], "primary");
}

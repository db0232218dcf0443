//! The switch interface (PRODUCT.md §2.6, §6) end to end: a real switch registers calls and
//! reports their events, one by one or in batches, with the operator token. Reports go through
//! the call state machine: in order they are recorded with the reported times; out of order,
//! duplicated, contradictory or malformed they are refused and change nothing.
//!
//! The simulated carrier is `calls.rs`; where events go is `call_log.rs`.

use reqwest::Method;
use serde_json::{json, Value};

use crate::call_receiver::Receiver;
use crate::calls::{
    call_body, call_log, call_path, call_record, carrier_barrier, list_total, make_call, numbered,
    status_events, wait_for_events, ANSWERS, FAST, FROM,
};
use crate::fixture::{send, Account, Answer, Server};
use crate::shapes::{detail_for, object_keys, sorted_names, without_api_id};
use crate::trunks::create_trunk;

const REGISTER: &str = "/api/v1/switch/calls";
const BATCH: &str = "/api/v1/switch/events";

/// The switch's own id for a call, as it would send it.
const SWITCH_UUID: &str = "3d1f8a52-7c4e-4b9a-8e21-5f6a7b8c9d0e";

async fn register(server: &Server, body: &Value) -> Answer {
    send(server.operator(Method::POST, REGISTER).json(body)).await
}

/// Registers an inbound call of `account` and returns its uuid.
async fn register_call(server: &Server, account: &Account, extra: &Value) -> String {
    let body = crate::calls::with(
        &json!({"auth_id": account.auth_id, "direction": "inbound", "from": "+14155558888", "to": FROM}),
        extra,
    );
    let answer = register(server, &body).await.expect(201);
    assert_eq!(object_keys(&answer), ["call_uuid"], "{answer}");
    answer["call_uuid"].as_str().expect("call_uuid").to_owned()
}

async fn report(server: &Server, call_uuid: &str, body: &Value) -> Answer {
    let path = format!("/api/v1/switch/calls/{call_uuid}/events");
    send(server.operator(Method::POST, &path).json(body)).await
}

/// Reports an event that must be recorded; returns `(event_id, sequence)`.
async fn report_ok(server: &Server, call_uuid: &str, body: &Value) -> (String, u64) {
    let answer = report(server, call_uuid, body).await.expect(201);
    assert_eq!(
        object_keys(&answer),
        sorted_names(&["event_id", "sequence"]),
        "{answer}"
    );
    (
        answer["event_id"].as_str().expect("event_id").to_owned(),
        answer["sequence"].as_u64().expect("sequence"),
    )
}

fn recording() -> Value {
    json!({"event": "RecordStop", "recording_id": "rec-1",
           "record_url": "https://media.example.com/rec-1.mp3", "recording_duration_ms": 5250,
           "recording_end_reason": "HungUp"})
}

/// The call's record (without `api_id`) and delivery log, to show a refusal changed nothing.
async fn snapshot(server: &Server, account: &Account, call_uuid: &str) -> (Value, Vec<Value>) {
    (
        without_api_id(&call_record(server, account, call_uuid).await),
        call_log(server, account, call_uuid).await,
    )
}

/// `base` (UTC) plus `ms`, as RFC 3339.
fn at(base: chrono::NaiveDateTime, ms: i64) -> String {
    (base + chrono::TimeDelta::milliseconds(ms))
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// `base` (UTC) plus `ms`, as RFC 3339 with the +05:30 offset.
fn at_in_kolkata(base: chrono::NaiveDateTime, ms: i64) -> String {
    (base + chrono::TimeDelta::milliseconds(ms) + chrono::TimeDelta::minutes(330))
        .format("%Y-%m-%dT%H:%M:%S%.3f+05:30")
        .to_string()
}

fn local(base: chrono::NaiveDateTime, ms: i64, offset_minutes: i64) -> String {
    (base + chrono::TimeDelta::milliseconds(ms) + chrono::TimeDelta::minutes(offset_minutes))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

#[tokio::test]
async fn reported_events_are_recorded_in_order_with_their_reported_times() {
    let receiver = Receiver::start().await;
    let server = Server::start_with(&["--dev"]).await;
    let account = server.admin_create_account("switch").await;
    server
        .send_json(
            &account,
            Method::POST,
            &account.path(""),
            &json!({"timezone": "Asia/Kolkata", "default_callback_url": receiver.url("/status")}),
        )
        .await
        .expect(200);
    let call_uuid = register_call(&server, &account, &json!({"call_uuid": SWITCH_UUID})).await;
    assert_eq!(call_uuid, SWITCH_UUID);

    // Event times a second and more after the registration, in UTC.
    let registered = call_record(&server, &account, &call_uuid).await;
    let initiated = chrono::NaiveDateTime::parse_from_str(
        registered["initiation_time"].as_str().expect("initiation_time"),
        "%Y-%m-%d %H:%M:%S",
    )
    .expect("local time")
        - chrono::TimeDelta::minutes(330);
    let reports = [
        (json!({"event": "Ring", "at": at(initiated, 1000)}), 1000),
        // The same instant can come with any offset.
        (
            json!({"event": "StartApp", "at": at_in_kolkata(initiated, 3250)}),
            3250,
        ),
        (
            json!({"event": "Hangup", "at": at(initiated, 8500), "hangup_cause": "NORMAL_CLEARING",
                   "hangup_source": "Caller"}),
            8500,
        ),
        (
            crate::calls::with(&recording(), &json!({"at": at(initiated, 9000)})),
            9000,
        ),
    ];
    let mut event_ids = vec![];
    for (n, (body, _)) in reports.iter().enumerate() {
        let (event_id, sequence) = report_ok(&server, &call_uuid, body).await;
        assert_eq!(sequence, n as u64 + 2, "{body}");
        event_ids.push(event_id);
    }

    let record = call_record(&server, &account, &call_uuid).await;
    let expected = json!({
        "call_uuid": SWITCH_UUID, "request_uuid": SWITCH_UUID, "direction": "inbound",
        "from_number": "+14155558888", "to_number": FROM, "call_status": "completed",
        "answer_time": local(initiated, 3250, 330), "end_time": local(initiated, 8500, 330),
        "call_duration": 6, "bill_duration": 6, "hangup_cause_name": "Normal Hangup",
        "hangup_cause_code": 4000, "hangup_source": "Caller", "app_id": null, "trunk_id": null,
    });
    for (key, value) in expected.as_object().expect("an object") {
        assert_eq!(&record[key], value, "{key} of {record}");
    }
    let objects = call_log(&server, &account, &call_uuid).await;
    assert_eq!(
        status_events(&objects),
        numbered(&["CallInitiated", "Ring", "StartApp", "Hangup", "RecordStop"])
    );
    let logged: Vec<&str> = objects[1..]
        .iter()
        .map(|o| o["event_id"].as_str().expect("id"))
        .collect();
    assert_eq!(logged, event_ids);

    // Each callback carries its reported time as `timestamp`; Hangup and RecordStop carry the
    // call's end and the recording.
    let hits = receiver.wait_for("five callbacks", |hits| hits.len() >= 5).await;
    for (hit, (sequence, (_, ms))) in hits[1..].iter().zip((2..).zip(&reports)) {
        assert_eq!(
            hit.header("X-Hookline-Sequence"),
            Some(sequence.to_string().as_str())
        );
        let timestamp = hit.field("timestamp").expect("timestamp");
        let sent = chrono::DateTime::parse_from_rfc3339(timestamp)
            .unwrap_or_else(|e| panic!("timestamp {timestamp:?}: {e}"));
        assert_eq!(
            sent.naive_utc(),
            initiated + chrono::TimeDelta::milliseconds(*ms),
            "{hit:?}"
        );
    }
    let by_event = |event: &str| {
        hits.iter()
            .find(|hit| hit.field("Event") == Some(event))
            .unwrap_or_else(|| panic!("no {event} callback"))
            .clone()
    };
    let hangup = by_event("Hangup");
    for (field, value) in [
        ("CallUUID", SWITCH_UUID.to_owned()),
        ("Direction", "inbound".to_owned()),
        ("CallStatus", "completed".to_owned()),
        ("HangupCause", "NORMAL_CLEARING".to_owned()),
        ("HangupCauseCode", "4000".to_owned()),
        ("HangupSource", "Caller".to_owned()),
        ("Duration", "6".to_owned()),
        ("AnswerTime", local(initiated, 3250, 330)),
        ("EndTime", local(initiated, 8500, 330)),
    ] {
        assert_eq!(hangup.field(field), Some(value.as_str()), "{field} of {hangup:?}");
    }
    let record_stop = by_event("RecordStop");
    for (field, value) in [
        ("RecordingID", "rec-1"),
        ("RecordUrl", "https://media.example.com/rec-1.mp3"),
        ("RecordingDuration", "6"),
        ("RecordingDurationMs", "5250"),
        ("RecordingEndReason", "HungUp"),
        ("HangupCause", "NORMAL_CLEARING"),
    ] {
        assert_eq!(
            record_stop.field(field),
            Some(value),
            "{field} of {record_stop:?}"
        );
    }
}

#[tokio::test]
async fn out_of_order_and_duplicate_reports_answer_409_and_change_nothing() {
    let server = Server::start().await;
    let account = server.admin_create_account("order").await;
    let call_uuid = register_call(&server, &account, &json!({})).await;
    let ring = json!({"event": "Ring"});
    let answer = json!({"event": "StartApp"});
    let hangup = json!({"event": "Hangup", "hangup_cause": "NORMAL_CLEARING"});
    let busy = json!({"event": "Hangup", "call_status": "busy"});
    let initiated = json!({"event": "CallInitiated"});
    let record_stop = recording();

    let steps: [(&Value, Vec<&Value>); 5] = [
        (&ring, vec![&answer, &initiated]),
        (&answer, vec![&ring, &initiated]),
        (&hangup, vec![&ring, &answer]),
        (&record_stop, vec![&ring, &answer, &hangup, &busy]),
        (&ring, vec![&record_stop, &hangup]),
    ];
    for (n, (legal, refused)) in steps.iter().enumerate() {
        for body in refused {
            let before = snapshot(&server, &account, &call_uuid).await;
            report(&server, &call_uuid, body)
                .await
                .expect_error(409, "conflict");
            assert_eq!(
                snapshot(&server, &account, &call_uuid).await,
                before,
                "after {body}"
            );
        }
        if n < 4 {
            let (_, sequence) = report_ok(&server, &call_uuid, legal).await;
            assert_eq!(sequence, n as u64 + 2);
        }
    }
    let objects = call_log(&server, &account, &call_uuid).await;
    assert_eq!(
        status_events(&objects),
        numbered(&["CallInitiated", "Ring", "StartApp", "Hangup", "RecordStop"])
    );
}

#[tokio::test]
async fn a_hangup_status_that_contradicts_the_call_answers_422_and_changes_nothing() {
    let server = Server::start().await;
    let account = server.admin_create_account("inconsistent").await;
    let call_uuid = register_call(&server, &account, &json!({})).await;
    let completed = json!({"event": "Hangup", "call_status": "completed"});
    let busy = json!({"event": "Hangup", "call_status": "busy", "hangup_cause": "USER_BUSY"});

    for (step, refused) in [
        (None, &completed),
        (Some(json!({"event": "Ring"})), &completed),
        (Some(json!({"event": "StartApp"})), &busy),
    ] {
        if let Some(step) = step {
            report_ok(&server, &call_uuid, &step).await;
        }
        let before = snapshot(&server, &account, &call_uuid).await;
        report(&server, &call_uuid, refused)
            .await
            .expect_error(422, "unprocessable");
        assert_eq!(
            snapshot(&server, &account, &call_uuid).await,
            before,
            "after {refused}"
        );
    }
    report_ok(&server, &call_uuid, &completed).await;
    let record = call_record(&server, &account, &call_uuid).await;
    assert_eq!(record["call_status"], "completed");
    assert_eq!(
        record["hangup_cause_code"], 4000,
        "NORMAL_CLEARING by default: {record}"
    );
}

#[tokio::test]
async fn a_reported_time_before_the_previous_event_answers_422_and_changes_nothing() {
    let server = Server::start().await;
    let account = server.admin_create_account("time order").await;
    let call_uuid = register_call(&server, &account, &json!({})).await;
    let registered = call_record(&server, &account, &call_uuid).await;
    let base = chrono::NaiveDateTime::parse_from_str(
        registered["initiation_time"].as_str().expect("initiation_time"),
        "%Y-%m-%d %H:%M:%S",
    )
    .expect("local time");
    report_ok(
        &server,
        &call_uuid,
        &json!({"event": "Ring", "at": at(base, 5000)}),
    )
    .await;
    // An answer before the ring, and later an end before the answer, contradict the call: the
    // record would show an end before its answer and bill 0 s for an answered call.
    for (refused, then) in [
        (
            json!({"event": "StartApp", "at": at(base, 3000)}),
            json!({"event": "StartApp", "at": at(base, 6000)}),
        ),
        (
            json!({"event": "Hangup", "at": at(base, 4000)}),
            json!({"event": "Hangup", "at": at(base, 9000)}),
        ),
    ] {
        let before = snapshot(&server, &account, &call_uuid).await;
        let answer = report(&server, &call_uuid, &refused).await;
        assert_eq!(answer.status, 422, "{refused} answered {}", answer.json);
        assert_eq!(
            snapshot(&server, &account, &call_uuid).await,
            before,
            "after {refused}"
        );
        report_ok(&server, &call_uuid, &then).await;
    }
    let record = call_record(&server, &account, &call_uuid).await;
    assert_eq!(record["call_duration"], 3, "{record}");
}

#[tokio::test]
async fn malformed_reports_are_refused_by_field_and_unknown_calls_answer_404() {
    let server = Server::start().await;
    let account = server.admin_create_account("malformed").await;
    let call_uuid = register_call(&server, &account, &json!({})).await;
    report_ok(&server, &call_uuid, &json!({"event": "Ring"})).await;
    report_ok(&server, &call_uuid, &json!({"event": "StartApp"})).await;

    let no_id = json!({"event": "RecordStop", "record_url": "https://media.example.com/r.mp3"});
    let no_url = json!({"event": "RecordStop", "recording_id": "r"});
    for (body, field) in [
        (json!({}), "event"),
        (json!({"event": "Answer"}), "event"),
        (json!({"event": "hangup"}), "event"),
        (json!({"event": "Hangup", "at": "yesterday"}), "at"),
        (
            json!({"event": "Hangup", "hangup_cause": "NOT_A_CAUSE"}),
            "hangup_cause",
        ),
        (
            json!({"event": "Hangup", "call_status": "ringing"}),
            "call_status",
        ),
        (json!({"event": "Hangup", "colour": "blue"}), "colour"),
        (json!({"event": "Hangup", "call_uuid": SWITCH_UUID}), "call_uuid"),
        (no_id, "recording_id"),
        (no_url, "record_url"),
    ] {
        let before = snapshot(&server, &account, &call_uuid).await;
        let details = report(&server, &call_uuid, &body)
            .await
            .expect_error(400, "invalid_field");
        assert!(detail_for(&details, field).is_some(), "{body}: {details}");
        assert_eq!(
            snapshot(&server, &account, &call_uuid).await,
            before,
            "after {body}"
        );
    }
    for unknown in [SWITCH_UUID, "not-a-uuid"] {
        report(&server, unknown, &json!({"event": "Ring"}))
            .await
            .expect_error(404, "not_found");
    }
    assert_eq!(
        call_record(&server, &account, &call_uuid).await["call_status"],
        "in-progress"
    );
}

#[tokio::test]
async fn registering_a_call_checks_its_fields_account_references_and_uniqueness() {
    let server = Server::start().await;
    let account = server.admin_create_account("register").await;
    let other = server.admin_create_account("other").await;
    let theirs = crate::applications::create_application(&server, &other, &json!({"name": "theirs"})).await;
    let valid = json!({"auth_id": account.auth_id, "direction": "outbound", "from": FROM, "to": ANSWERS});
    let bad = |extra: Value| crate::calls::with(&valid, &extra);

    let details = register(&server, &json!({}))
        .await
        .expect_error(400, "invalid_field");
    for field in ["auth_id", "direction", "from", "to"] {
        assert!(detail_for(&details, field).is_some(), "{field} in {details}");
    }
    for (body, field) in [
        (bad(json!({"direction": "sideways"})), "direction"),
        (bad(json!({"from": "123"})), "from"),
        (bad(json!({"to": "+1 415 555"})), "to"),
        (bad(json!({"call_uuid": "nope"})), "call_uuid"),
        (bad(json!({"status_url": "http://example.com/s"})), "status_url"),
        (
            bad(json!({"status_url": "https://example.com/s", "status_method": "PUT"})),
            "status_method",
        ),
        (bad(json!({"engine": "simulated"})), "engine"),
    ] {
        let details = register(&server, &body).await.expect_error(400, "invalid_field");
        assert!(detail_for(&details, field).is_some(), "{body}: {details}");
    }
    for body in [
        bad(json!({"auth_id": "MA_ZZZZZZZZ"})),
        bad(json!({"auth_id": "nobody"})),
        bad(json!({"app_id": theirs["app_id"]})),
        bad(json!({"trunk_id": SWITCH_UUID})),
    ] {
        register(&server, &body).await.expect_error(404, "not_found");
    }
    assert_eq!(list_total(&server, &account, "/calls").await, 0);

    let trunk = create_trunk(&server, &account, &json!({"name": "pbx", "engine": "external"})).await;
    let app = crate::applications::create_application(&server, &account, &json!({"name": "ivr"})).await;
    let call_uuid = register_call(
        &server,
        &account,
        &json!({"call_uuid": SWITCH_UUID, "direction": "outbound", "app_id": app["app_id"],
                "trunk_id": trunk["trunk_id"], "status_url": "https://example.com/status",
                "status_method": "get"}),
    )
    .await;
    let record = call_record(&server, &account, &call_uuid).await;
    assert_eq!(
        (
            &record["direction"],
            &record["call_status"],
            &record["app_id"],
            &record["trunk_id"]
        ),
        (
            &json!("outbound"),
            &json!("queued"),
            &app["app_id"],
            &trunk["trunk_id"]
        )
    );
    let objects = call_log(&server, &account, &call_uuid).await;
    assert_eq!(status_events(&objects), numbered(&["CallInitiated"]));
    assert_eq!(
        (&objects[0]["level"], &objects[0]["url"], &objects[0]["method"]),
        (
            &json!("call"),
            &json!("https://example.com/status"),
            &json!("GET")
        )
    );

    // A call uuid is registered once, whatever the account.
    for auth_id in [&account.auth_id, &other.auth_id] {
        register(
            &server,
            &bad(json!({"auth_id": auth_id, "call_uuid": SWITCH_UUID})),
        )
        .await
        .expect_error(409, "conflict");
    }
    assert_eq!(list_total(&server, &account, "/calls").await, 1);
    assert_eq!(list_total(&server, &other, "/calls").await, 0);
}

#[tokio::test]
async fn a_batch_applies_or_refuses_each_report_on_its_own_in_order() {
    let server = Server::start().await;
    let account = server.admin_create_account("batch").await;
    let a = register_call(&server, &account, &json!({})).await;
    let b = register_call(&server, &account, &json!({})).await;
    let batch = json!({"events": [
        {"call_uuid": a, "event": "Ring"},
        {"call_uuid": a, "event": "StartApp"},
        {"call_uuid": a, "event": "Ring"},
        {"call_uuid": SWITCH_UUID, "event": "Ring"},
        {"call_uuid": a, "event": "Bogus"},
        {"event": "Ring"},
        {"call_uuid": b, "event": "Hangup", "call_status": "completed"},
        {"call_uuid": b, "event": "Ring"},
        {"call_uuid": a, "event": "Hangup", "hangup_cause": "NORMAL_CLEARING", "hangup_source": "Callee"},
        {"call_uuid": b, "event": "StartApp", "colour": 1},
        {"call_uuid": b, "event": "StartApp", "at": "soon"},
        "not an object",
    ]});
    let answer = send(server.operator(Method::POST, BATCH).json(&batch))
        .await
        .expect(200);
    let results = answer["results"].as_array().expect("results");
    let expected: [(u64, Option<u64>); 12] = [
        (201, Some(2)),
        (201, Some(3)),
        (409, None),
        (404, None),
        (400, None),
        (400, None),
        (422, None),
        (201, Some(2)),
        (201, Some(4)),
        (400, None),
        (400, None),
        (400, None),
    ];
    assert_eq!(results.len(), expected.len(), "{answer}");
    for (n, (result, (status, sequence))) in results.iter().zip(expected).enumerate() {
        assert_eq!(result["status"].as_u64(), Some(status), "item {n}: {result}");
        assert_eq!(result["sequence"].as_u64(), sequence, "item {n}: {result}");
        assert_eq!(
            result["event_id"].is_string(),
            status == 201,
            "item {n}: {result}"
        );
        assert_eq!(result["error"].is_string(), status != 201, "item {n}: {result}");
    }

    let a_log = call_log(&server, &account, &a).await;
    assert_eq!(
        status_events(&a_log),
        numbered(&["CallInitiated", "Ring", "StartApp", "Hangup"])
    );
    for (object, n) in a_log[1..].iter().zip([0, 1, 8]) {
        assert_eq!(object["event_id"], results[n]["event_id"], "item {n}");
    }
    assert_eq!(
        status_events(&call_log(&server, &account, &b).await),
        numbered(&["CallInitiated", "Ring"])
    );
    assert_eq!(
        call_record(&server, &account, &a).await["call_status"],
        "completed"
    );
    assert_eq!(call_record(&server, &account, &b).await["call_status"], "ringing");

    let empty = send(server.operator(Method::POST, BATCH).json(&json!({"events": []})))
        .await
        .expect(200);
    assert_eq!(empty["results"], json!([]));
    let too_many = json!({"events": vec![json!({"call_uuid": a, "event": "Ring"}); 1001]});
    let details = send(server.operator(Method::POST, BATCH).json(&too_many))
        .await
        .expect_error(400, "invalid_field");
    assert!(detail_for(&details, "events").is_some(), "{details}");
    send(server.operator(Method::POST, BATCH).json(&json!({})))
        .await
        .expect_error(400, "invalid_field");
    assert_eq!(status_events(&call_log(&server, &account, &b).await).len(), 2);
}

#[tokio::test]
async fn the_switch_interface_answers_401_without_the_operator_token() {
    let server = Server::start().await;
    let account = server.admin_create_account("auth").await;
    let call_uuid = register_call(&server, &account, &json!({})).await;
    let register_body =
        json!({"auth_id": account.auth_id, "direction": "inbound", "from": FROM, "to": ANSWERS});
    let event_path = format!("/api/v1/switch/calls/{call_uuid}/events");
    let requests = [
        (REGISTER.to_owned(), register_body),
        (event_path, json!({"event": "Ring"})),
        (
            BATCH.to_owned(),
            json!({"events": [{"call_uuid": call_uuid, "event": "Ring"}]}),
        ),
    ];
    for (path, body) in &requests {
        let unauthenticated = [
            server.request(Method::POST, path),
            server
                .request(Method::POST, path)
                .bearer_auth("not-the-admin-token-0123456789"),
            server.request(Method::POST, path).bearer_auth(""),
            server.authed(&account, Method::POST, path),
            server.basic(&account, Method::POST, path),
        ];
        for request in unauthenticated {
            send(request.json(body)).await.expect_error(401, "unauthorized");
        }
    }
    assert_eq!(list_total(&server, &account, "/calls").await, 1);
    let objects = call_log(&server, &account, &call_uuid).await;
    assert_eq!(status_events(&objects), numbered(&["CallInitiated"]));
}

#[tokio::test]
async fn calls_reported_by_a_switch_are_not_driven_by_the_simulated_carrier() {
    let server = Server::start_with(FAST).await;
    let account = server.admin_create_account("external").await;
    let registered = register_call(
        &server,
        &account,
        &json!({"direction": "outbound", "to": ANSWERS}),
    )
    .await;
    let trunk = create_trunk(&server, &account, &json!({"name": "pbx", "engine": "external"})).await;
    let placed = make_call(
        &server,
        &account,
        &call_body(ANSWERS, &json!({"trunk_id": trunk["trunk_id"], "record": true})),
    )
    .await;
    // A simulated call placed afterwards rings, answers and ends; the others stay queued.
    let simulated = make_call(&server, &account, &call_body(ANSWERS, &json!({}))).await;
    wait_for_events(&server, &account, &simulated, 4).await;
    carrier_barrier(&server, &account).await;
    for call_uuid in [&registered, &placed] {
        assert_eq!(
            call_record(&server, &account, call_uuid).await["call_status"],
            "queued"
        );
        assert_eq!(
            status_events(&call_log(&server, &account, call_uuid).await),
            numbered(&["CallInitiated"])
        );
    }

    // The switch drives the call placed through the API on its trunk; the API hangs up the other.
    for event in ["Ring", "StartApp"] {
        report_ok(&server, &placed, &json!({"event": event})).await;
    }
    let hangup = server.delete(&account, &call_path(&account, &placed)).await;
    assert_eq!(hangup.status, 204, "{}", hangup.json);
    report_ok(&server, &placed, &recording()).await;
    assert_eq!(
        status_events(&call_log(&server, &account, &placed).await),
        numbered(&["CallInitiated", "Ring", "StartApp", "Hangup", "RecordStop"])
    );

    let hangup = server.delete(&account, &call_path(&account, &registered)).await;
    assert_eq!(hangup.status, 204, "{}", hangup.json);
    let record = call_record(&server, &account, &registered).await;
    assert_eq!(
        (
            &record["call_status"],
            &record["hangup_cause_code"],
            &record["hangup_source"]
        ),
        (&json!("cancel"), &json!(1000), &json!("API Request")),
        "a call that never rang is cancelled: {record}"
    );
    report(&server, &registered, &json!({"event": "Ring"}))
        .await
        .expect_error(409, "conflict");
    assert_eq!(
        status_events(&call_log(&server, &account, &registered).await),
        numbered(&["CallInitiated", "Hangup"])
    );
}

//! Each outcome of the simulated carrier (PRODUCT.md §3, §6): the final call record and the
//! exact event sequence in the log, with `record` and a recording trunk adding `RecordStop`.

use serde_json::{json, Value};

use super::{
    call_body, call_log, call_record, carrier_barrier, is_local_time, make_call, numbered, status_events,
    wait_for_events, wait_until_ended, ANSWERS, BUSY, FAST, FROM, NO_ANSWER, RECORD_KEYS, TALKATIVE,
    UNALLOCATED, UNAVAILABLE,
};
use crate::fixture::Server;
use crate::shapes::{object_keys, sorted_names};
use crate::trunks::create_trunk;

/// How a simulated call must end.
struct Outcome {
    to: &'static str,
    extra: Value,
    events: &'static [&'static str],
    call_status: &'static str,
    cause_name: &'static str,
    cause_code: u64,
    source: &'static str,
    duration: u64,
}

/// Places one call, waits for its end, and checks the record and the log (and that nothing
/// follows: a later call on the same carrier ends first).
async fn check_outcome(server_args: &[&str], outcome: Outcome) {
    let server = Server::start_with(server_args).await;
    let account = server.admin_create_account("outcomes").await;
    let call_uuid = make_call(&server, &account, &call_body(outcome.to, &outcome.extra)).await;
    wait_until_ended(&server, &account, &call_uuid).await;
    wait_for_events(&server, &account, &call_uuid, outcome.events.len()).await;
    carrier_barrier(&server, &account).await;

    let objects = call_log(&server, &account, &call_uuid).await;
    assert_eq!(status_events(&objects), numbered(outcome.events), "{objects:#?}");
    for object in &objects {
        assert_eq!(
            (object["channel"].as_str(), object["level"].as_str()),
            (Some("status"), Some("none"))
        );
        assert_eq!(object["status"], "unrouted", "no level has a URL: {object}");
        assert_eq!(object["call_uuid"], call_uuid.as_str());
    }

    let record = call_record(&server, &account, &call_uuid).await;
    assert_eq!(object_keys(&record), sorted_names(&RECORD_KEYS), "{record}");
    let expected = json!({
        "call_uuid": call_uuid,
        "request_uuid": call_uuid,
        "direction": "outbound",
        "from_number": FROM,
        "to_number": outcome.to,
        "call_status": outcome.call_status,
        "call_duration": outcome.duration,
        "bill_duration": outcome.duration,
        "hangup_cause_name": outcome.cause_name,
        "hangup_cause_code": outcome.cause_code,
        "hangup_source": outcome.source,
        "app_id": null,
        "trunk_id": null,
    });
    for (key, value) in expected.as_object().expect("an object") {
        assert_eq!(&record[key], value, "{key} of {record}");
    }
    let initiated = record["initiation_time"].as_str().expect("initiation_time");
    let ended = record["end_time"].as_str().expect("end_time");
    assert!(is_local_time(initiated) && is_local_time(ended), "{record}");
    assert!(initiated <= ended, "{record}");
    if outcome.events.contains(&"StartApp") {
        let answered = record["answer_time"].as_str().expect("answer_time");
        assert!(
            is_local_time(answered) && initiated <= answered && answered <= ended,
            "{record}"
        );
    } else {
        assert_eq!(record["answer_time"], Value::Null, "never answered: {record}");
    }
}

#[tokio::test]
async fn an_answered_call_completes_with_normal_clearing_from_the_callee() {
    check_outcome(
        FAST,
        Outcome {
            to: ANSWERS,
            extra: json!({}),
            events: &["CallInitiated", "Ring", "StartApp", "Hangup"],
            call_status: "completed",
            cause_name: "Normal Hangup",
            cause_code: 4000,
            source: "Callee",
            duration: 1,
        },
    )
    .await;
}

#[tokio::test]
async fn a_recorded_call_ends_with_record_stop_after_hangup() {
    check_outcome(
        FAST,
        Outcome {
            to: ANSWERS,
            extra: json!({"record": true}),
            events: &["CallInitiated", "Ring", "StartApp", "Hangup", "RecordStop"],
            call_status: "completed",
            cause_name: "Normal Hangup",
            cause_code: 4000,
            source: "Callee",
            duration: 1,
        },
    )
    .await;
}

#[tokio::test]
async fn a_busy_line_rings_then_hangs_up_busy_and_records_nothing() {
    check_outcome(
        FAST,
        Outcome {
            to: BUSY,
            extra: json!({"record": true}),
            events: &["CallInitiated", "Ring", "Hangup"],
            call_status: "busy",
            cause_name: "Busy Line",
            cause_code: 3010,
            source: "Callee",
            duration: 0,
        },
    )
    .await;
}

#[tokio::test]
async fn an_unanswered_call_rings_until_ring_timeout_then_ends_no_answer() {
    check_outcome(
        FAST,
        Outcome {
            to: NO_ANSWER,
            extra: json!({"ring_timeout": 1}),
            events: &["CallInitiated", "Ring", "Hangup"],
            call_status: "no-answer",
            cause_name: "No Answer",
            cause_code: 3000,
            source: "Vobiz",
            duration: 0,
        },
    )
    .await;
}

#[tokio::test]
async fn a_ring_timeout_shorter_than_the_ring_ends_an_answering_call_no_answer() {
    check_outcome(
        &["--sim-ring-ms", "5000", "--sim-talk-ms", "60"],
        Outcome {
            to: ANSWERS,
            extra: json!({"ring_timeout": 1}),
            events: &["CallInitiated", "Ring", "Hangup"],
            call_status: "no-answer",
            cause_name: "No Answer",
            cause_code: 3000,
            source: "Vobiz",
            duration: 0,
        },
    )
    .await;
}

#[tokio::test]
async fn an_unallocated_number_fails_without_ringing() {
    check_outcome(
        FAST,
        Outcome {
            to: UNALLOCATED,
            extra: json!({}),
            events: &["CallInitiated", "Hangup"],
            call_status: "failed",
            cause_name: "Unallocated number",
            cause_code: 3050,
            source: "Carrier",
            duration: 0,
        },
    )
    .await;
}

#[tokio::test]
async fn an_unavailable_destination_fails_without_ringing() {
    check_outcome(
        FAST,
        Outcome {
            to: UNAVAILABLE,
            extra: json!({"record": true}),
            events: &["CallInitiated", "Hangup"],
            call_status: "failed",
            cause_name: "Destination Out Of Service",
            cause_code: 2010,
            source: "Carrier",
            duration: 0,
        },
    )
    .await;
}

#[tokio::test]
async fn a_time_limit_below_the_talk_time_ends_the_call_with_allotted_timeout() {
    check_outcome(
        TALKATIVE,
        Outcome {
            to: ANSWERS,
            extra: json!({"time_limit": 1}),
            events: &["CallInitiated", "Ring", "StartApp", "Hangup"],
            call_status: "completed",
            cause_name: "Scheduled Hangup",
            cause_code: 6000,
            source: "Vobiz",
            duration: 1,
        },
    )
    .await;
}

#[tokio::test]
async fn a_recording_trunk_records_calls_placed_without_record() {
    let server = Server::start_with(FAST).await;
    let account = server.admin_create_account("recording trunk").await;
    let trunk = create_trunk(&server, &account, &json!({"name": "rec", "recording": true})).await;
    let trunk_id = trunk["trunk_id"].as_str().expect("trunk_id");
    let call_uuid = make_call(
        &server,
        &account,
        &call_body(ANSWERS, &json!({"trunk_id": trunk_id})),
    )
    .await;
    let objects = wait_for_events(&server, &account, &call_uuid, 5).await;
    assert_eq!(
        status_events(&objects),
        numbered(&["CallInitiated", "Ring", "StartApp", "Hangup", "RecordStop"])
    );
    let record = call_record(&server, &account, &call_uuid).await;
    assert_eq!(record["trunk_id"], trunk_id);
    assert_eq!(record["call_status"], "completed");
}

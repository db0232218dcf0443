//! Calls (level 1, PRODUCT.md §2.4, §3, §6) end to end: each simulated outcome's call record
//! and event sequence, hangup through the API, 200 calls at once, calls that survive a restart,
//! refused make-call input, `Idempotency-Key`, the list's filters and paging, the `/Call/` alias,
//! the account's time zone, and other accounts' calls.
//!
//! This file holds the helpers (`make_call`, `wait_for_call`, `status_events`, …) that the
//! submodules, `call_log.rs` (where each event goes) and `switch.rs` (the switch interface) use. Nothing here sleeps
//! to synchronise: tests poll the API with a deadline, and where the absence of a late event
//! matters, a later call on the same carrier is the clock.

use std::future::Future;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::fixture::{Account, Server};
use crate::shapes::{is_uuid, object_keys, sorted_names};

mod hangup;
mod listing;
mod load;
mod outcomes;
mod requests;

/// Simulated carrier timings that end an ordinary call within about 0.1 s.
pub const FAST: &[&str] = &["--sim-ring-ms", "30", "--sim-talk-ms", "60"];

/// Timings with a talk time long enough to act on an answered call (2 s).
pub const TALKATIVE: &[&str] = &["--sim-ring-ms", "30", "--sim-talk-ms", "2000"];

/// How long a test waits for a call (or many) to reach a state.
const CALL_DEADLINE: Duration = Duration::from_secs(20);

pub const FROM: &str = "+14155551234";

/// An ordinary destination: rings, answers, hangs up (PRODUCT.md §6).
pub const ANSWERS: &str = "+14155550100";
pub const BUSY: &str = "+14155550486";
pub const NO_ANSWER: &str = "+14155550480";
pub const UNALLOCATED: &str = "+14155550404";
pub const UNAVAILABLE: &str = "+14155550503";

const FINAL_STATUSES: [&str; 6] = ["completed", "busy", "no-answer", "failed", "timeout", "cancel"];

const RECORD_KEYS: [&str; 16] = [
    "call_uuid",
    "request_uuid",
    "direction",
    "from_number",
    "to_number",
    "call_status",
    "initiation_time",
    "answer_time",
    "end_time",
    "call_duration",
    "bill_duration",
    "hangup_cause_name",
    "hangup_cause_code",
    "hangup_source",
    "app_id",
    "trunk_id",
];

/// `base` with the fields of `extra` set (replaced or added).
pub fn with(base: &Value, extra: &Value) -> Value {
    let mut body = base.clone();
    for (key, value) in extra.as_object().expect("extra fields are an object") {
        body[key] = value.clone();
    }
    body
}

/// `{"from": FROM, "to": to}` plus `extra`.
pub fn call_body(to: &str, extra: &Value) -> Value {
    with(&json!({"from": FROM, "to": to}), extra)
}

/// Checks a make-call answer and returns its `call_uuid`.
#[track_caller]
pub fn check_fired(answer: &Value) -> String {
    assert_eq!(
        object_keys(answer),
        sorted_names(&["message", "request_uuid", "call_uuid"]),
        "{answer}"
    );
    assert_eq!(answer["message"], "call fired");
    let call_uuid = answer["call_uuid"].as_str().expect("call_uuid");
    assert!(is_uuid(call_uuid), "call_uuid {call_uuid:?} is not a UUID");
    assert_eq!(answer["request_uuid"], call_uuid, "request_uuid == call_uuid");
    call_uuid.to_owned()
}

/// `POST …/calls`, which must answer 201; the new call's uuid.
pub async fn make_call(server: &Server, account: &Account, body: &Value) -> String {
    let answer = server
        .send_json(account, Method::POST, &account.path("/calls"), body)
        .await
        .expect(201);
    check_fired(&answer)
}

pub fn call_path(account: &Account, call_uuid: &str) -> String {
    account.path(&format!("/calls/{call_uuid}"))
}

pub async fn call_record(server: &Server, account: &Account, call_uuid: &str) -> Value {
    server
        .get(account, &call_path(account, call_uuid))
        .await
        .expect(200)
}

/// The delivery log's objects of one call.
pub async fn call_log(server: &Server, account: &Account, call_uuid: &str) -> Vec<Value> {
    let log = server
        .get(account, &format!("{}/callbacks", call_path(account, call_uuid)))
        .await
        .expect(200);
    assert_eq!(log["call_uuid"], call_uuid, "{log}");
    log["objects"].as_array().expect("objects").clone()
}

/// The `(event, sequence)` of the status-channel objects, in log order: one per event.
pub fn status_events(objects: &[Value]) -> Vec<(String, u64)> {
    objects
        .iter()
        .filter(|object| object["channel"] == "status")
        .map(|object| {
            (
                object["event"].as_str().expect("event").to_owned(),
                object["sequence"].as_u64().expect("sequence"),
            )
        })
        .collect()
}

/// The events numbered 1, 2, 3…, as a gap-free log shows them.
pub fn numbered(events: &[&str]) -> Vec<(String, u64)> {
    events
        .iter()
        .zip(1..)
        .map(|(event, n)| ((*event).to_owned(), n))
        .collect()
}

pub fn is_final(record: &Value) -> bool {
    FINAL_STATUSES.contains(&record["call_status"].as_str().unwrap_or(""))
}

/// Calls `probe` until it answers `Ok`; on the deadline fails with `what` and the last `Err`.
pub async fn poll<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + CALL_DEADLINE;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) => assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last seen: {last}"
            ),
        }
        // Polling interval; the deadline above bounds the wait.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls the call record until `done` holds; returns that record.
pub async fn wait_for_call(
    server: &Server,
    account: &Account,
    call_uuid: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    poll(what, || async {
        let record = call_record(server, account, call_uuid).await;
        if done(&record) {
            Ok(record)
        } else {
            Err(record.to_string())
        }
    })
    .await
}

pub async fn wait_for_status(server: &Server, account: &Account, call_uuid: &str, status: &str) -> Value {
    wait_for_call(
        server,
        account,
        call_uuid,
        &format!("call_status {status}"),
        |r| r["call_status"] == status,
    )
    .await
}

pub async fn wait_until_ended(server: &Server, account: &Account, call_uuid: &str) -> Value {
    wait_for_call(server, account, call_uuid, "the end of the call", is_final).await
}

/// Polls the log until it holds at least `n_events` events; returns its objects.
pub async fn wait_for_events(
    server: &Server,
    account: &Account,
    call_uuid: &str,
    n_events: usize,
) -> Vec<Value> {
    poll(&format!("{n_events} events of {call_uuid}"), || async {
        let objects = call_log(server, account, call_uuid).await;
        if status_events(&objects).len() >= n_events {
            Ok(objects)
        } else {
            Err(format!("{:?}", status_events(&objects)))
        }
    })
    .await
}

/// `total_count` of `GET …{suffix}` (a list).
pub async fn list_total(server: &Server, account: &Account, suffix: &str) -> u64 {
    let list = server.get(account, &account.path(suffix)).await.expect(200);
    list["meta"]["total_count"].as_u64().expect("total_count")
}

/// Whether `text` is `yyyy-MM-dd HH:mm:ss`.
pub fn is_local_time(text: &str) -> bool {
    text.len() == 19
        && text.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b' ',
            13 | 16 => b == b':',
            _ => b.is_ascii_digit(),
        })
}

/// Makes and ends a call to `UNALLOCATED` (no ring, ends at once). Anything the carrier owed
/// earlier calls for times before this call's creation has fired once this call has ended.
pub async fn carrier_barrier(server: &Server, account: &Account) {
    let call_uuid = make_call(server, account, &call_body(UNALLOCATED, &json!({}))).await;
    wait_until_ended(server, account, &call_uuid).await;
}

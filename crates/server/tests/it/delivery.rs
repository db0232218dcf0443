//! The delivery engine end to end (PRODUCT.md §2.5, §3.2, §4, §6): a real `hookline serve
//! --dev` with shrunken timings delivers callbacks to a real [`Receiver`], and the tests check
//! what arrived (fields, headers, signatures, timing) against the delivery log.
//!
//! This file holds what the delivery tests share: the fast server settings and the calls that
//! make events. The tests are in the submodules, one per subject. Tests wait on receiver
//! signals or poll the delivery log, always with a deadline; no fixed sleep synchronises.
//! The crash test is `delivery_crash.rs`.

mod breaker;
mod encoding;
mod fallback;
mod isolation;
mod levels;
mod ordering;
mod outcomes;
pub mod signatures;
mod test_callback;
mod tls;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::fixture::{send, Account, DataDir, Server};

/// How long a test waits for something that should take well under a second.
pub const WAIT: Duration = Duration::from_secs(15);

/// The settings every delivery test starts from: 50 ms backoff without jitter, a 300 ms
/// attempt budget and a fast simulated carrier. A test overrides any of them.
const FAST: [(&str, &str); 5] = [
    ("--retry-base-ms", "50"),
    ("--retry-jitter", "0"),
    ("--callback-timeout-ms", "300"),
    ("--sim-ring-ms", "20"),
    ("--sim-talk-ms", "40"),
];

/// The caller and callee of every call the tests make.
pub const FROM: &str = "+14155551234";
pub const TO: &str = "+14155550100";

/// `hookline serve --dev` with [`FAST`] settings, `overrides` replacing or adding flags.
pub async fn start_server(overrides: &[(&str, &str)]) -> Server {
    start_server_on(DataDir::new(), overrides).await
}

/// Like [`start_server`] on an existing data directory (a restart).
pub async fn start_server_on(data: DataDir, overrides: &[(&str, &str)]) -> Server {
    let mut args = vec!["--dev".to_owned()];
    for (flag, value) in FAST {
        if !overrides.iter().any(|(f, _)| *f == flag) {
            args.extend([flag.to_owned(), value.to_owned()]);
        }
    }
    for (flag, value) in overrides {
        args.extend([(*flag).to_owned(), (*value).to_owned()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start_on(data, &args).await
}

/// Registers an outbound call through the switch interface (`CallInitiated` is recorded), with
/// `extra` fields (`status_url`, `app_id`, …) merged into the body. Returns its `call_uuid`.
pub async fn register_call(server: &Server, account: &Account, extra: &Value) -> String {
    let mut body = json!({
        "auth_id": account.auth_id,
        "direction": "outbound",
        "from": FROM,
        "to": TO,
    });
    merge(&mut body, extra);
    let created = send(server.operator(Method::POST, "/api/v1/switch/calls").json(&body))
        .await
        .expect(201);
    text(&created, "call_uuid")
}

/// Registers `n` switch calls like [`register_call`], four at a time (the switch interface
/// takes one call per request); returns their ids.
pub async fn register_calls(server: &Server, account: &Account, extra: &Value, n: usize) -> Vec<String> {
    const N_LANES: usize = 4;
    let lane = |lane: usize| async move {
        let mut calls = Vec::new();
        for _ in (lane..n).step_by(N_LANES) {
            calls.push(register_call(server, account, extra).await);
        }
        calls
    };
    let (a, b, c, d) = tokio::join!(lane(0), lane(1), lane(2), lane(3));
    let calls: Vec<String> = [a, b, c, d].concat();
    assert_eq!(calls.len(), n);
    calls
}

/// Reports `event` (`Ring`, `StartApp`, `Hangup`, …) for a switch call; it must answer 201.
pub async fn report(server: &Server, call_uuid: &str, event: &str) {
    send(
        server
            .operator(Method::POST, &format!("/api/v1/switch/calls/{call_uuid}/events"))
            .json(&json!({ "event": event })),
    )
    .await
    .expect(201);
}

/// Reports `Ring`, `StartApp` and `Hangup` for a switch call: with its `CallInitiated`, four
/// events with sequences 1–4.
pub async fn report_whole_call(server: &Server, call_uuid: &str) {
    for event in ["Ring", "StartApp", "Hangup"] {
        report(server, call_uuid, event).await;
    }
}

/// Makes a call through the API (the simulated carrier plays it); returns its `call_uuid`.
pub async fn make_call(server: &Server, account: &Account, extra: &Value) -> String {
    let mut body = json!({ "from": FROM, "to": TO });
    merge(&mut body, extra);
    let fired = server
        .send_json(account, Method::POST, &account.path("/calls"), &body)
        .await
        .expect(201);
    text(&fired, "call_uuid")
}

/// Creates an application; returns its `app_id`.
pub async fn create_application(server: &Server, account: &Account, body: &Value) -> String {
    let created = server
        .send_json(account, Method::POST, &account.path("/applications"), body)
        .await
        .expect(201);
    text(&created, "app_id")
}

/// Creates a SIP trunk; returns its `trunk_id`.
pub async fn create_trunk(server: &Server, account: &Account, body: &Value) -> String {
    let created = server
        .send_json(account, Method::POST, &account.path("/trunks"), body)
        .await
        .expect(201);
    text(&created, "trunk_id")
}

/// Updates the account's level-4 settings.
pub async fn update_account(server: &Server, account: &Account, body: &Value) {
    server
        .send_json(account, Method::POST, &account.path("/"), body)
        .await
        .expect(200);
}

/// The delivery log of one call: one object per event and channel.
pub async fn callbacks(server: &Server, account: &Account, call_uuid: &str) -> Vec<Value> {
    let log = server
        .get(account, &account.path(&format!("/calls/{call_uuid}/callbacks")))
        .await
        .expect(200);
    log["objects"].as_array().expect("objects").clone()
}

/// Polls the call's delivery log until `done` holds; panics naming `what` after `timeout`.
pub async fn wait_for_log(
    server: &Server,
    account: &Account,
    call_uuid: &str,
    what: &str,
    timeout: Duration,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let objects = callbacks(server, account, call_uuid).await;
        if done(&objects) {
            return objects;
        }
        assert!(
            Instant::now() < deadline,
            "gave up after {timeout:?} waiting for {what}; the log: {objects:#?}"
        );
        // The delivery log has no change signal; poll it, bounded by the deadline above.
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until every status-channel delivery of the call left `pending`.
pub async fn wait_until_settled(server: &Server, account: &Account, call_uuid: &str) -> Vec<Value> {
    wait_for_log(
        server,
        account,
        call_uuid,
        "every callback settled",
        WAIT,
        |objects| objects.iter().all(|o| o["status"] != "pending"),
    )
    .await
}

/// The one status-channel delivery of the event with `sequence`.
#[track_caller]
pub fn status_delivery(objects: &[Value], sequence: u64) -> &Value {
    objects
        .iter()
        .find(|o| o["channel"] == "status" && o["sequence"] == sequence)
        .unwrap_or_else(|| panic!("no status delivery with sequence {sequence}: {objects:#?}"))
}

/// The `attempts` of a delivery-log object.
#[track_caller]
pub fn attempts(object: &Value) -> &Vec<Value> {
    object["attempts"]
        .as_array()
        .unwrap_or_else(|| panic!("no attempts array: {object}"))
}

/// A string field of a JSON object that must be there.
#[track_caller]
pub fn text(object: &Value, field: &str) -> String {
    object[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string {field} in {object}"))
        .to_owned()
}

fn merge(body: &mut Value, extra: &Value) {
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        for (key, value) in extra {
            body.insert(key.clone(), value.clone());
        }
    }
}

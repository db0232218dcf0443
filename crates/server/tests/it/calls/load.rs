//! The carrier under load and across a restart: 200 simultaneous calls each get exactly their
//! events numbered without gaps or repeats, and calls ringing or talking at a SIGTERM finish
//! after the restart with the outcome planned from their stored times (PRODUCT.md §3, §4.3, §6).

use reqwest::Method;
use serde_json::{json, Value};
use tokio::task::JoinSet;

use super::{
    call_body, call_log, call_record, carrier_barrier, check_fired, list_total, make_call, numbered, poll,
    status_events, wait_for_events, wait_for_status, wait_until_ended, ANSWERS, FAST, NO_ANSWER, UNALLOCATED,
};
use crate::fixture::{send, Server};

/// What the `i`-th of many calls dials, and the events it must produce.
fn nth_call(i: usize) -> (Value, &'static [&'static str], &'static str) {
    let to = |suffix: &str| format!("+1415555{:04}{suffix}", i);
    match i % 5 {
        0 => (
            call_body(&to("100"), &json!({})),
            &["CallInitiated", "Ring", "StartApp", "Hangup"],
            "completed",
        ),
        1 => (
            call_body(&to("486"), &json!({})),
            &["CallInitiated", "Ring", "Hangup"],
            "busy",
        ),
        2 => (
            call_body(&to("404"), &json!({})),
            &["CallInitiated", "Hangup"],
            "failed",
        ),
        3 => (
            call_body(&to("503"), &json!({"record": true})),
            &["CallInitiated", "Hangup"],
            "failed",
        ),
        _ => (
            call_body(&to("200"), &json!({"record": true})),
            &["CallInitiated", "Ring", "StartApp", "Hangup", "RecordStop"],
            "completed",
        ),
    }
}

#[tokio::test]
async fn two_hundred_simultaneous_calls_each_get_exactly_their_events_in_sequence() {
    const N_CALLS: usize = 200;
    let server = Server::start_with(FAST).await;
    let account = server.admin_create_account("load").await;
    let mut requests = JoinSet::new();
    for i in 0..N_CALLS {
        let request = server
            .authed(&account, Method::POST, &account.path("/calls"))
            .json(&nth_call(i).0);
        requests.spawn(async move { (i, send(request).await) });
    }
    let mut call_uuids = vec![String::new(); N_CALLS];
    while let Some(joined) = requests.join_next().await {
        let (i, answer) = joined.expect("the request task");
        call_uuids[i] = check_fired(&answer.expect(201));
    }
    let mut distinct = call_uuids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), N_CALLS, "every call has its own uuid");

    let n_expected: usize = (0..N_CALLS).map(|i| nth_call(i).1.len()).sum();
    poll("every call's last event", || async {
        let n_events = list_total(&server, &account, "/callbacks?limit=1").await;
        if n_events >= n_expected as u64 {
            Ok(())
        } else {
            Err(format!("{n_events} of {n_expected} events"))
        }
    })
    .await;
    carrier_barrier(&server, &account).await;

    let mut event_ids = Vec::new();
    for (i, call_uuid) in call_uuids.iter().enumerate() {
        let (_, events, call_status) = nth_call(i);
        let objects = call_log(&server, &account, call_uuid).await;
        assert_eq!(status_events(&objects), numbered(events), "call {i} {call_uuid}");
        assert_eq!(objects.len(), events.len(), "one object per event: {objects:#?}");
        event_ids.extend(
            objects
                .iter()
                .map(|o| o["event_id"].as_str().expect("event_id").to_owned()),
        );
        let record = call_record(&server, &account, call_uuid).await;
        assert_eq!(record["call_status"], call_status, "call {i}: {record}");
    }
    let n_ids = event_ids.len();
    event_ids.sort();
    event_ids.dedup();
    assert_eq!(event_ids.len(), n_ids, "event ids are unique");
    // The barrier call adds two events.
    assert_eq!(
        list_total(&server, &account, "/callbacks?limit=1").await,
        n_expected as u64 + 2
    );
    assert_eq!(
        list_total(&server, &account, "/calls?limit=1").await,
        N_CALLS as u64 + 1
    );
}

#[tokio::test]
async fn calls_in_progress_at_a_restart_finish_with_their_planned_outcome() {
    let args = ["--sim-ring-ms", "30", "--sim-talk-ms", "60000"];
    let server = Server::start_with(&args).await;
    let account = server.admin_create_account("restart").await;
    let limited = make_call(&server, &account, &call_body(ANSWERS, &json!({"time_limit": 2}))).await;
    let recorded = make_call(
        &server,
        &account,
        &call_body(ANSWERS, &json!({"time_limit": 2, "record": true})),
    )
    .await;
    let ringing = make_call(
        &server,
        &account,
        &call_body(NO_ANSWER, &json!({"ring_timeout": 2})),
    )
    .await;
    let finished = make_call(&server, &account, &call_body(UNALLOCATED, &json!({}))).await;
    wait_for_status(&server, &account, &limited, "in-progress").await;
    wait_for_status(&server, &account, &recorded, "in-progress").await;
    wait_for_status(&server, &account, &ringing, "ringing").await;
    wait_until_ended(&server, &account, &finished).await;
    let finished_log = call_log(&server, &account, &finished).await;

    let (status, data) = server.stop();
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM: {status}");
    let server = Server::start_on(data, &args).await;

    let record = wait_until_ended(&server, &account, &limited).await;
    assert_eq!(record["call_status"], "completed", "{record}");
    assert_eq!(record["hangup_cause_name"], "Scheduled Hangup");
    assert_eq!(record["hangup_cause_code"], 6000);
    assert_eq!(record["hangup_source"], "Vobiz");
    assert_eq!(
        record["call_duration"], 2,
        "the time limit, however long the restart took"
    );

    let record = wait_until_ended(&server, &account, &ringing).await;
    assert_eq!(record["call_status"], "no-answer", "{record}");
    assert_eq!(record["hangup_cause_code"], 3000);
    assert_eq!(record["hangup_source"], "Vobiz");

    wait_for_events(&server, &account, &recorded, 5).await;
    carrier_barrier(&server, &account).await;
    let answered = ["CallInitiated", "Ring", "StartApp", "Hangup"];
    for (call_uuid, events) in [
        (&limited, &answered[..]),
        (
            &recorded,
            &["CallInitiated", "Ring", "StartApp", "Hangup", "RecordStop"][..],
        ),
        (&ringing, &["CallInitiated", "Ring", "Hangup"][..]),
    ] {
        let objects = call_log(&server, &account, call_uuid).await;
        assert_eq!(status_events(&objects), numbered(events), "{call_uuid}");
    }
    assert_eq!(
        call_log(&server, &account, &finished).await,
        finished_log,
        "a call that had ended is not replayed"
    );
}

//! Hanging up through the API (PRODUCT.md §3, §6): before the answer a `cancel`, after it a
//! completed call, both from `API Request`; a second hangup is a 409, an unknown call a 404; and
//! the carrier's own plan for the call adds nothing afterwards.

use serde_json::{json, Value};

use super::{
    call_body, call_log, call_path, call_record, is_local_time, make_call, numbered, status_events,
    wait_for_events, wait_for_status, wait_until_ended, ANSWERS, FAST, NO_ANSWER, TALKATIVE,
};
use crate::fixture::Server;
use crate::shapes::without_api_id;

#[tokio::test]
async fn hanging_up_a_ringing_call_cancels_it_and_the_carrier_adds_nothing_later() {
    let server = Server::start_with(FAST).await;
    let account = server.admin_create_account("cancel").await;
    let call_uuid = make_call(
        &server,
        &account,
        &call_body(NO_ANSWER, &json!({"ring_timeout": 2})),
    )
    .await;
    wait_for_status(&server, &account, &call_uuid, "ringing").await;
    let answer = server.delete(&account, &call_path(&account, &call_uuid)).await;
    assert_eq!((answer.status, &answer.json), (204, &Value::Null));

    let record = call_record(&server, &account, &call_uuid).await;
    assert_eq!(record["call_status"], "cancel", "{record}");
    assert_eq!(record["hangup_cause_name"], "Canceled");
    assert_eq!(record["hangup_cause_code"], 1000);
    assert_eq!(record["hangup_source"], "API Request");
    assert_eq!(record["answer_time"], Value::Null);
    assert_eq!(record["call_duration"], 0);

    // A second hangup finds the call ended.
    server
        .delete(&account, &call_path(&account, &call_uuid))
        .await
        .expect_error(409, "conflict");

    // The ring timeout the carrier had planned passes (a later call with the same timeout
    // ends after it): the cancelled call gains no no-answer Hangup.
    let later = make_call(
        &server,
        &account,
        &call_body(NO_ANSWER, &json!({"ring_timeout": 2})),
    )
    .await;
    wait_until_ended(&server, &account, &later).await;
    let objects = call_log(&server, &account, &call_uuid).await;
    assert_eq!(
        status_events(&objects),
        numbered(&["CallInitiated", "Ring", "Hangup"])
    );
    assert_eq!(
        without_api_id(&call_record(&server, &account, &call_uuid).await),
        without_api_id(&record)
    );
}

#[tokio::test]
async fn hanging_up_an_answered_call_completes_it_and_a_recording_still_follows() {
    let server = Server::start_with(TALKATIVE).await;
    let account = server.admin_create_account("api hangup").await;
    let call_uuid = make_call(&server, &account, &call_body(ANSWERS, &json!({"record": true}))).await;
    wait_for_status(&server, &account, &call_uuid, "in-progress").await;
    let answer = server.delete(&account, &call_path(&account, &call_uuid)).await;
    assert_eq!(answer.status, 204, "{}", answer.json);

    let objects = wait_for_events(&server, &account, &call_uuid, 5).await;
    let record = call_record(&server, &account, &call_uuid).await;
    assert_eq!(record["call_status"], "completed", "{record}");
    assert_eq!(record["hangup_cause_name"], "Normal Hangup");
    assert_eq!(record["hangup_cause_code"], 4000);
    assert_eq!(record["hangup_source"], "API Request");
    assert!(
        record["answer_time"].as_str().is_some_and(is_local_time),
        "{record}"
    );
    assert!(
        record["call_duration"].as_u64().is_some_and(|d| d <= 2),
        "{record}"
    );
    assert_eq!(
        status_events(&objects),
        numbered(&["CallInitiated", "Ring", "StartApp", "Hangup", "RecordStop"])
    );
    server
        .delete(&account, &call_path(&account, &call_uuid))
        .await
        .expect_error(409, "conflict");

    // The callee's planned hangup time passes (a later call of the same length ends after
    // it): no second Hangup.
    let later = make_call(&server, &account, &call_body(ANSWERS, &json!({}))).await;
    wait_until_ended(&server, &account, &later).await;
    assert_eq!(call_log(&server, &account, &call_uuid).await, objects);
    assert_eq!(
        without_api_id(&call_record(&server, &account, &call_uuid).await),
        without_api_id(&record)
    );
}

#[tokio::test]
async fn hanging_up_an_unknown_call_answers_404() {
    let server = Server::start().await;
    let account = server.admin_create_account("unknown").await;
    for call_uuid in ["6f1c2a4e-0b7d-4c1e-9f3a-2d5e8b7c1a90", "not-a-uuid"] {
        server
            .delete(&account, &call_path(&account, call_uuid))
            .await
            .expect_error(404, "not_found");
        server
            .get(&account, &call_path(&account, call_uuid))
            .await
            .expect_error(404, "not_found");
        server
            .get(&account, &format!("{}/callbacks", call_path(&account, call_uuid)))
            .await
            .expect_error(404, "not_found");
    }
}

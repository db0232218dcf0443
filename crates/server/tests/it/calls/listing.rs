//! Reading calls (PRODUCT.md §2, §2.4): the list's filters, order and paging, the Vobiz `/Call/`
//! paths, times in the account's time zone, and another account's calls answering 404.

use reqwest::Method;
use serde_json::{json, Value};

use super::{
    call_body, call_log, call_path, call_record, check_fired, list_total, make_call, numbered, status_events,
    wait_for_status, wait_until_ended, ANSWERS, BUSY, FAST, FROM, NO_ANSWER, RECORD_KEYS, UNALLOCATED,
};
use crate::fixture::{send, Account, Server};
use crate::shapes::{detail_for, object_keys, sorted_names, without_api_id};

/// The `call_uuid`s of a call list answer, in order.
async fn listed(server: &Server, account: &Account, query: &str) -> Vec<String> {
    let list = server
        .get(account, &account.path(&format!("/calls{query}")))
        .await
        .expect(200);
    let objects = list["objects"].as_array().expect("objects");
    assert_eq!(
        list["meta"]["total_count"].as_u64(),
        Some(objects.len() as u64),
        "{query}: every match fits on the page"
    );
    objects
        .iter()
        .map(|call| call["call_uuid"].as_str().expect("call_uuid").to_owned())
        .collect()
}

/// `yyyy-MM-dd HH:mm:ss` (a UTC account's local time) as RFC 3339, shifted by `seconds`.
fn rfc3339(local_utc: &str, seconds: i64) -> String {
    let time = chrono::NaiveDateTime::parse_from_str(local_utc, "%Y-%m-%d %H:%M:%S").expect("local time");
    (time + chrono::TimeDelta::seconds(seconds))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Five ended simulated calls and one registered, still queued, inbound call; newest first.
async fn six_calls(server: &Server, account: &Account) -> Vec<String> {
    let mut calls = Vec::new();
    for (from, to) in [
        (FROM, ANSWERS),
        (FROM, BUSY),
        (FROM, UNALLOCATED),
        ("+14155559999", "+14155550101"),
        (FROM, "+14155550102"),
    ] {
        let call_uuid = make_call(server, account, &json!({"from": from, "to": to})).await;
        wait_until_ended(server, account, &call_uuid).await;
        calls.push(call_uuid);
    }
    let registered = send(
        server
            .operator(Method::POST, "/api/v1/switch/calls")
            .json(&json!({
                "auth_id": account.auth_id, "direction": "inbound", "from": "+14155558888", "to": FROM,
            })),
    )
    .await
    .expect(201);
    calls.push(registered["call_uuid"].as_str().expect("call_uuid").to_owned());
    calls.reverse();
    calls
}

#[tokio::test]
async fn the_call_list_filters_by_status_direction_numbers_and_time_newest_first() {
    let server = Server::start_with(FAST).await;
    let account = server.admin_create_account("lists").await;
    let calls = six_calls(&server, &account).await;
    let [inbound, c5, c4, c3, c2, c1] = [0, 1, 2, 3, 4, 5].map(|i| calls[i].clone());
    let oldest = call_record(&server, &account, &c1).await;
    let newest = call_record(&server, &account, &inbound).await;
    let first_second = oldest["initiation_time"].as_str().expect("initiation_time");
    let last_second = newest["initiation_time"].as_str().expect("initiation_time");

    for (query, expected) in [
        ("", vec![&inbound, &c5, &c4, &c3, &c2, &c1]),
        ("?status=completed", vec![&c5, &c4, &c1]),
        ("?status=busy", vec![&c2]),
        ("?status=failed", vec![&c3]),
        ("?status=queued", vec![&inbound]),
        ("?status=in-progress", vec![]),
        ("?direction=inbound", vec![&inbound]),
        ("?direction=outbound", vec![&c5, &c4, &c3, &c2, &c1]),
        ("?from=%2B14155559999", vec![&c4]),
        ("?to=%2B14155550486", vec![&c2]),
        ("?status=completed&from=%2B14155551234", vec![&c5, &c1]),
        (
            "?since=2000-01-01T00:00:00Z",
            vec![&inbound, &c5, &c4, &c3, &c2, &c1],
        ),
        ("?since=2999-01-01T00:00:00%2B05:30", vec![]),
        ("?until=2000-01-01T00:00:00Z", vec![]),
        ("?until=2999-01-01T00:00:00Z&direction=inbound", vec![&inbound]),
    ] {
        let expected: Vec<String> = expected.into_iter().cloned().collect();
        assert_eq!(listed(&server, &account, query).await, expected, "{query}");
    }
    let since = format!("?since={}", rfc3339(first_second, 0));
    assert_eq!(listed(&server, &account, &since).await.len(), 6, "{since}");
    let until = format!("?until={}", rfc3339(first_second, 0));
    assert_eq!(
        listed(&server, &account, &until).await,
        Vec::<String>::new(),
        "{until}"
    );
    let after = format!("?since={}", rfc3339(last_second, 1));
    assert_eq!(
        listed(&server, &account, &after).await,
        Vec::<String>::new(),
        "{after}"
    );

    for (query, field) in [
        ("?status=ringingg", "status"),
        ("?status=Completed", "status"),
        ("?direction=sideways", "direction"),
        ("?since=yesterday", "since"),
        ("?until=2026-13-01T00:00:00Z", "until"),
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?offset=-1", "offset"),
    ] {
        let details = server
            .get(&account, &account.path(&format!("/calls{query}")))
            .await
            .expect_error(400, "invalid_field");
        assert!(detail_for(&details, field).is_some(), "{query}: {details}");
    }
}

#[tokio::test]
async fn the_call_list_pages_without_gaps_or_repeats() {
    let server = Server::start_with(FAST).await;
    let account = server.admin_create_account("paging").await;
    let calls = six_calls(&server, &account).await;
    let mut seen = Vec::new();
    for offset in [0, 2, 4] {
        let page = server
            .get(
                &account,
                &account.path(&format!("/calls?limit=2&offset={offset}")),
            )
            .await
            .expect(200);
        let meta = &page["meta"];
        assert_eq!(
            (meta["limit"].as_u64(), meta["total_count"].as_u64()),
            (Some(2), Some(6))
        );
        assert_eq!(meta["previous"].is_null(), offset == 0, "{meta}");
        assert_eq!(meta["next"].is_null(), offset == 4, "{meta}");
        for call in page["objects"].as_array().expect("objects") {
            assert_eq!(object_keys(call), sorted_names(&RECORD_KEYS));
            seen.push(call["call_uuid"].as_str().expect("call_uuid").to_owned());
        }
    }
    assert_eq!(seen, calls);
    let beyond = server
        .get(&account, &account.path("/calls?limit=2&offset=6"))
        .await
        .expect(200);
    assert_eq!(beyond["objects"], json!([]));
}

#[tokio::test]
async fn following_next_keeps_the_call_list_filters() {
    let server = Server::start_with(FAST).await;
    let account = server.admin_create_account("next").await;
    let calls = six_calls(&server, &account).await;
    let completed = [&calls[1], &calls[2], &calls[5]];

    let first = server
        .get(&account, &account.path("/calls?status=completed&limit=2"))
        .await
        .expect(200);
    assert_eq!(first["meta"]["total_count"], 3);
    let next = first["meta"]["next"].as_str().expect("a next page").to_owned();
    let second = send(server.authed(&account, Method::GET, &next))
        .await
        .expect(200);
    let mut seen: Vec<&str> = Vec::new();
    for page in [&first, &second] {
        for call in page["objects"].as_array().expect("objects") {
            seen.push(call["call_uuid"].as_str().expect("call_uuid"));
        }
    }
    assert_eq!(
        seen,
        completed.map(String::as_str),
        "meta.next {next:?} must page through the same filtered list"
    );
}

#[tokio::test]
async fn the_vobiz_call_paths_make_read_list_and_hang_up_calls() {
    let server = Server::start_with(FAST).await;
    let account = server.admin_create_account("alias").await;
    let answer = server
        .send_json(
            &account,
            Method::POST,
            &account.alias_path("/Call/"),
            &call_body(NO_ANSWER, &json!({"ring_timeout": 60})),
        )
        .await
        .expect(201);
    let call_uuid = check_fired(&answer);
    let alias = account.alias_path(&format!("/Call/{call_uuid}/"));
    wait_for_status(&server, &account, &call_uuid, "ringing").await;
    let via_alias = server.get(&account, &alias).await.expect(200);
    let via_primary = call_record(&server, &account, &call_uuid).await;
    assert_eq!(without_api_id(&via_alias), without_api_id(&via_primary));
    let list = server
        .get(&account, &account.alias_path("/Call/"))
        .await
        .expect(200);
    assert_eq!(list["objects"], json!([without_api_id(&via_primary)]));

    let hangup = server.delete(&account, &alias).await;
    assert_eq!(hangup.status, 204, "{}", hangup.json);
    assert_eq!(
        call_record(&server, &account, &call_uuid).await["call_status"],
        "cancel"
    );
    server
        .delete(&account, &alias)
        .await
        .expect_error(409, "conflict");
}

#[tokio::test]
async fn call_times_are_shown_in_the_accounts_time_zone() {
    let server = Server::start_with(FAST).await;
    let account = server.admin_create_account("kolkata").await;
    let set_timezone = |timezone: &'static str| {
        let (server, account) = (&server, &account);
        async move {
            let path = account.path("");
            let body = json!({ "timezone": timezone });
            server.send_json(account, Method::POST, &path, &body).await
        }
    };
    set_timezone("Asia/Kolkata").await.expect(200);
    let call_uuid = make_call(&server, &account, &call_body(ANSWERS, &json!({}))).await;
    let kolkata = wait_until_ended(&server, &account, &call_uuid).await;
    let listed_kolkata = server.get(&account, &account.path("/calls")).await.expect(200);
    assert_eq!(listed_kolkata["objects"][0], without_api_id(&kolkata));

    set_timezone("UTC").await.expect(200);
    let utc = call_record(&server, &account, &call_uuid).await;
    let parse = |record: &Value, key: &str| {
        let text = record[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key} in {record}"));
        chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
            .unwrap_or_else(|e| panic!("{key} {text:?} is not yyyy-MM-dd HH:mm:ss: {e}"))
    };
    for key in ["initiation_time", "answer_time", "end_time"] {
        assert_eq!(
            parse(&kolkata, key) - parse(&utc, key),
            chrono::TimeDelta::minutes(330),
            "{key}: Kolkata {kolkata} vs UTC {utc}"
        );
    }
}

#[tokio::test]
async fn another_accounts_call_is_not_found_and_stays_untouched() {
    let server = Server::start_with(FAST).await;
    let owner = server.admin_create_account("owner").await;
    let intruder = server.admin_create_account("intruder").await;
    let call_uuid = make_call(
        &server,
        &owner,
        &call_body(NO_ANSWER, &json!({"ring_timeout": 60})),
    )
    .await;
    wait_for_status(&server, &owner, &call_uuid, "ringing").await;

    for path in [
        call_path(&intruder, &call_uuid),
        format!("{}/callbacks", call_path(&intruder, &call_uuid)),
        // The owner's path with the intruder's credentials.
        call_path(&owner, &call_uuid),
    ] {
        server.get(&intruder, &path).await.expect_error(404, "not_found");
    }
    for path in [call_path(&intruder, &call_uuid), call_path(&owner, &call_uuid)] {
        server
            .delete(&intruder, &path)
            .await
            .expect_error(404, "not_found");
    }
    assert_eq!(list_total(&server, &intruder, "/calls").await, 0);
    assert_eq!(list_total(&server, &intruder, "/callbacks").await, 0);

    let record = call_record(&server, &owner, &call_uuid).await;
    assert_eq!(record["call_status"], "ringing", "{record}");
    let objects = call_log(&server, &owner, &call_uuid).await;
    assert_eq!(status_events(&objects), numbered(&["CallInitiated", "Ring"]));
}

//! Validation on write, as tables of bad requests (PRODUCT.md §2, §4.5, §6): each case is sent
//! to application create and update, trunk create and update, and account update, and must
//! answer its status and `code`, name the field in `details`, and change nothing — a read of
//! the resource (or of the whole list, for a create) is the same before and after.
//!
//! Every JSON case also carries a valid change (a new `name`), so "nothing changed" proves the
//! whole request was refused, not only the bad field. `--dev` is in `dev_mode.rs`; bad
//! `limit`/`offset` are in `lists.rs`.

use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::{json, Value};

use crate::bad_inputs::{account_cases, application_cases, trunk_cases, Body, Case, MAX_URL_BYTES};
use crate::fixture::{send, Account, Server};
use crate::shapes::{detail_for, without_api_id};

/// Where a table runs.
struct Target {
    label: &'static str,
    method: Method,
    path: String,
    /// The read that must answer the same before and after each refused request.
    witness: String,
    /// A valid field each JSON case carries too.
    change: (&'static str, Value),
}

/// Sends every case to `target`; returns a line per case that did not behave.
async fn run_table(server: &Server, account: &Account, target: &Target, cases: &[Case]) -> Vec<String> {
    let mut failures = Vec::new();
    let before = without_api_id(&server.get(account, &target.witness).await.expect(200));
    for case in cases {
        let (content_type, bytes, shown) = match &case.body {
            Body::Field(key, value) => {
                let mut body = json!({ target.change.0: target.change.1 });
                body[*key] = value.clone();
                let shown = format!("{key}: {}", abbreviate(&value.to_string()));
                (Some("application/json"), body.to_string().into_bytes(), shown)
            }
            Body::Raw(content_type, bytes) => {
                let shown = format!("{content_type:?} {}", abbreviate(&String::from_utf8_lossy(bytes)));
                (*content_type, bytes.clone(), shown)
            }
        };
        let mut request = server
            .authed(account, target.method.clone(), &target.path)
            .body(bytes);
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        let answer = send(request).await;
        let mut wrong = Vec::new();
        if answer.status != case.status {
            wrong.push(format!("status {} (want {})", answer.status, case.status));
        }
        if answer.json["code"] != case.code {
            wrong.push(format!("code {} (want {})", answer.json["code"], case.code));
        }
        if let Some(named) = case.named {
            match detail_for(&answer.json["details"], named) {
                None => wrong.push(format!("details do not name {named}")),
                Some(why) if case.mentions.is_some_and(|text| !why.contains(text)) => {
                    wrong.push(format!("message {why:?} does not mention {:?}", case.mentions));
                }
                Some(_) => {}
            }
        }
        let after = without_api_id(&server.get(account, &target.witness).await.expect(200));
        if after != before {
            wrong.push(format!("changed {} to {after}", target.witness));
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{} [{shown}]: {}; answer {}",
                target.label,
                wrong.join(", "),
                abbreviate(&answer.json.to_string())
            ));
        }
    }
    failures
}

fn abbreviate(text: &str) -> String {
    if text.chars().count() <= 120 {
        text.to_owned()
    } else {
        let start: String = text.chars().take(100).collect();
        format!("{start}… ({} bytes)", text.len())
    }
}

#[track_caller]
fn assert_no_failures(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} refused request(s) went wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn bad_application_creates_are_refused_naming_the_field_and_create_nothing() {
    let server = Server::start().await;
    let account = server.admin_create_account("validation").await;
    let target = Target {
        label: "POST applications",
        method: Method::POST,
        path: account.path("/applications"),
        witness: account.path("/applications?limit=100"),
        change: ("name", json!("should not exist")),
    };
    let cases = application_cases();
    assert_no_failures(&run_table(&server, &account, &target, &cases).await);
    let listed = server
        .get(&account, &account.path("/applications"))
        .await
        .expect(200);
    assert_eq!(listed["meta"]["total_count"], 0);
}

#[tokio::test]
async fn bad_application_updates_are_refused_naming_the_field_and_change_nothing() {
    let server = Server::start().await;
    let account = server.admin_create_account("validation").await;
    let app = server
        .send_json(
            &account,
            Method::POST,
            &account.path("/applications"),
            &json!({
                "name": "stable",
                "callback_url": "https://example.com/cb",
                "callback_method": "GET",
                "fallback_callback_url": "https://example.com/fallback",
                "callback_events": ["Hangup"],
                "answer_url": "https://example.com/answer",
                "hangup_url": "https://example.com/hangup",
            }),
        )
        .await
        .expect(201);
    let path = account.path(&format!(
        "/applications/{}",
        app["app_id"].as_str().expect("app_id")
    ));
    let mut failures = Vec::new();
    for method in [Method::POST, Method::PATCH] {
        let target = Target {
            label: if method == Method::POST {
                "POST application"
            } else {
                "PATCH application"
            },
            method,
            path: path.clone(),
            witness: path.clone(),
            change: ("name", json!("changed by a refused request")),
        };
        failures.extend(run_table(&server, &account, &target, &application_cases()).await);
    }
    assert_no_failures(&failures);
}

#[tokio::test]
async fn bad_trunk_creates_are_refused_naming_the_field_and_create_nothing() {
    let server = Server::start().await;
    let account = server.admin_create_account("validation").await;
    let target = Target {
        label: "POST trunks",
        method: Method::POST,
        path: account.path("/trunks"),
        witness: account.path("/trunks?limit=100"),
        change: ("name", json!("should not exist")),
    };
    assert_no_failures(&run_table(&server, &account, &target, &trunk_cases()).await);
}

#[tokio::test]
async fn bad_trunk_updates_are_refused_naming_the_field_and_change_nothing() {
    let server = Server::start().await;
    let account = server.admin_create_account("validation").await;
    let trunk = server
        .send_json(
            &account,
            Method::POST,
            &account.path("/trunks"),
            &json!({
                "name": "stable",
                "status_callback": "https://example.com/trunk",
                "status_callback_method": "GET",
                "status_callback_events": ["Ring"],
                "trunk_direction": "inbound",
                "trunk_status": "inactive",
                "termination_uri": "sip:gw@example.com",
                "recording": true,
                "engine": "external",
            }),
        )
        .await
        .expect(201);
    let path = account.path(&format!(
        "/trunks/{}",
        trunk["trunk_id"].as_str().expect("trunk_id")
    ));
    let target = Target {
        label: "PUT trunk",
        method: Method::PUT,
        path: path.clone(),
        witness: path,
        change: ("name", json!("changed by a refused request")),
    };
    assert_no_failures(&run_table(&server, &account, &target, &trunk_cases()).await);
}

#[tokio::test]
async fn bad_account_updates_are_refused_naming_the_field_and_change_nothing() {
    let server = Server::start().await;
    let account = server.admin_create_account("validation").await;
    server
        .send_json(
            &account,
            Method::PATCH,
            &account.path(""),
            &json!({
                "timezone": "Europe/Berlin",
                "default_callback_url": "https://example.com/default",
                "default_callback_method": "GET",
                "default_callback_events": ["call.failed"],
            }),
        )
        .await
        .expect(200);
    let target = Target {
        label: "POST account",
        method: Method::POST,
        path: account.path(""),
        witness: account.path(""),
        change: ("name", json!("changed by a refused request")),
    };
    assert_no_failures(&run_table(&server, &account, &target, &account_cases()).await);
}

#[tokio::test]
async fn every_invalid_field_of_one_request_is_named_together() {
    let server = Server::start().await;
    let account = server.admin_create_account("validation").await;
    let details = server
        .send_json(
            &account,
            Method::POST,
            &account.path("/applications"),
            &json!({
                "callback_url": "http://example.com/cb",
                "callback_method": "PUT",
                "callback_events": ["Nope"],
            }),
        )
        .await
        .expect_error(400, "invalid_field");
    for key in ["name", "callback_url", "callback_method", "callback_events"] {
        assert!(details[key].is_string(), "{key} is not named: {details}");
    }
}

#[tokio::test]
async fn a_type_error_under_a_write_alias_names_the_alias() {
    let server = Server::start().await;
    let account = server.admin_create_account("validation").await;
    let details = server
        .send_json(
            &account,
            Method::POST,
            &account.path("/applications"),
            &json!({"app_name": 5}),
        )
        .await
        .expect_error(400, "invalid_field");
    assert!(details["app_name"].is_string(), "{details}");
    let details = server
        .send_json(
            &account,
            Method::POST,
            &account.path("/trunks"),
            &json!({"name": "t", "webhook_method": ["GET"]}),
        )
        .await
        .expect_error(400, "invalid_field");
    assert!(details["webhook_method"].is_string(), "{details}");
}

#[tokio::test]
async fn a_url_of_exactly_2048_bytes_is_accepted() {
    let server = Server::start().await;
    let account = server.admin_create_account("validation").await;
    let longest = format!("https://example.com/{}", "a".repeat(MAX_URL_BYTES - 20));
    assert_eq!(longest.len(), MAX_URL_BYTES);
    let app = server
        .send_json(
            &account,
            Method::POST,
            &account.path("/applications"),
            &json!({"name": "long", "callback_url": longest}),
        )
        .await
        .expect(201);
    assert_eq!(app["callback_url"], longest.as_str());
}

#[tokio::test]
async fn a_json_content_type_with_parameters_is_accepted() {
    let server = Server::start().await;
    let account = server.admin_create_account("validation").await;
    let answer = send(
        server
            .authed(&account, Method::POST, &account.path("/applications"))
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .body(r#"{"name":"with charset"}"#),
    )
    .await;
    assert_eq!(answer.expect(201)["name"], "with charset");
}

/// A NUL character in a name or a filter: SQLite stores it, PostgreSQL cannot; either way the
/// answer is never a 500 (PostgreSQL's refusal is a 400 that changes nothing).
#[tokio::test]
async fn a_nul_character_in_text_is_stored_or_refused_never_a_500() {
    let server = Server::start().await;
    let account = server.admin_create_account("nul").await;
    let created = server
        .send_json(
            &account,
            Method::POST,
            &account.path("/applications"),
            &json!({ "name": "front\u{0}desk" }),
        )
        .await;
    assert!(
        created.status == 201 || created.status == 400,
        "a NUL in a name: {} {}",
        created.status,
        created.json
    );
    if created.status == 400 {
        let listed = server
            .get(&account, &account.path("/applications"))
            .await
            .expect(200);
        assert_eq!(
            listed["meta"]["total_count"], 0,
            "a refused create wrote nothing: {listed}"
        );
    }
    let filtered = server.get(&account, &account.path("/calls?from=%2B1%00")).await;
    assert!(
        filtered.status == 200 || filtered.status == 400,
        "a NUL in a filter: {} {}",
        filtered.status,
        filtered.json
    );
}

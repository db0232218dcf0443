//! Accounts end to end: the operator API (create, sub-accounts, token rotation), the
//! `hookline accounts` CLI against the same database, and the account settings
//! (PRODUCT.md §2.1, §6).
//!
//! Validation of each settings field is in `validation.rs`; cross-account access in `auth.rs`.

use reqwest::header::AUTHORIZATION;
use reqwest::Method;
use serde_json::{json, Value};

use crate::fixture::{account_from_cli_output, send, DataDir, Server, ADMIN_TOKEN};
use crate::shapes::{is_uuid, object_keys, sorted_names, without_api_id};

/// The keys of an account as every answer shows it.
const ACCOUNT_KEYS: [&str; 9] = [
    "auth_id",
    "name",
    "timezone",
    "default_callback_url",
    "default_callback_method",
    "default_callback_events",
    "parent_auth_id",
    "created_at",
    "updated_at",
];

fn is_auth_id(text: &str, prefix: &str) -> bool {
    text.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == 8 && rest.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    })
}

/// Checks the shape of a creation answer (operator API, CLI, demo account).
#[track_caller]
pub fn check_creation_answer(json: &Value, name: &str, prefix: &str, parent: Option<&str>) {
    let auth_id = json["auth_id"].as_str().unwrap_or_default();
    assert!(
        is_auth_id(auth_id, prefix),
        "auth_id {auth_id:?} is not {prefix}XXXXXXXX"
    );
    assert_eq!(json["name"], name);
    assert_eq!(json["timezone"], "UTC");
    assert_eq!(json["default_callback_url"], Value::Null);
    assert_eq!(json["default_callback_method"], "POST");
    assert_eq!(json["default_callback_events"], json!([]));
    assert_eq!(json["parent_auth_id"], parent.map_or(Value::Null, Value::from));
    assert_eq!(json["created_at"], json["updated_at"]);
    assert!(json["created_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z') && t.contains('T')));
    let token = json["auth_token"].as_str().unwrap_or_default();
    assert_eq!(token.len(), 40, "auth_token {token:?} is not 40 characters");
    assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()), "{token:?}");
    let secret = &json["signing_secret"];
    assert!(
        is_uuid(secret["secret_id"].as_str().unwrap_or_default()),
        "{secret}"
    );
    assert!(secret["created_at"].is_string(), "{secret}");
    assert!(
        secret["secret"]
            .as_str()
            .is_some_and(|s| s.len() > 30 && s.starts_with("whsec_")),
        "{secret}"
    );
    let mut expected: Vec<&str> = ACCOUNT_KEYS.to_vec();
    expected.extend(["auth_token", "signing_secret"]);
    assert_eq!(object_keys(json), sorted_names(&expected), "creation answer keys");
}

#[tokio::test]
async fn the_operator_creates_a_main_account_with_its_token_and_first_signing_secret() {
    let server = Server::start().await;
    let account = server.admin_create_account("Acme Voice").await;
    check_creation_answer(&account.json, "Acme Voice", "MA_", None);

    let read = server.get(&account, &account.path("")).await.expect(200);
    assert_eq!(object_keys(&read), sorted_names(&ACCOUNT_KEYS));
    for key in ACCOUNT_KEYS {
        assert_eq!(
            read[key], account.json[key],
            "{key} differs between create and read"
        );
    }

    let other = server.admin_create_account("Acme Voice").await;
    assert_ne!(other.auth_id, account.auth_id);
    assert_ne!(other.auth_token, account.auth_token);
}

#[tokio::test]
async fn the_operator_creates_a_sub_account_under_a_main_account() {
    let server = Server::start().await;
    let main = server.admin_create_account("main").await;
    let sub = server.admin_create_sub_account("sub", &main).await;
    check_creation_answer(&sub.json, "sub", "SA_", Some(&main.auth_id));

    let read = server.get(&sub, &sub.path("")).await.expect(200);
    assert_eq!(read["parent_auth_id"], main.auth_id.as_str());
    let explicit_null = send(
        server
            .operator(Method::POST, "/api/v1/admin/accounts")
            .json(&json!({"name": "main too", "parent_auth_id": null})),
    )
    .await
    .expect(201);
    check_creation_answer(&explicit_null, "main too", "MA_", None);
}

#[tokio::test]
async fn a_parent_that_is_unknown_malformed_or_itself_a_sub_account_is_refused() {
    let server = Server::start().await;
    let main = server.admin_create_account("main").await;
    let sub = server.admin_create_sub_account("sub", &main).await;
    for parent in ["MA_ZZZZZZZZ", "garbage", sub.auth_id.as_str(), ""] {
        let body = json!({"name": "child", "parent_auth_id": parent});
        let details = send(
            server
                .operator(Method::POST, "/api/v1/admin/accounts")
                .json(&body),
        )
        .await
        .expect_error(400, "invalid_field");
        assert!(
            details["parent_auth_id"].is_string(),
            "parent {parent:?}: {details}"
        );
    }
}

#[tokio::test]
async fn account_creation_refuses_a_missing_empty_or_unknown_field() {
    let server = Server::start().await;
    let cases = [
        (json!({}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": "   "}), "name"),
        (json!({"name": null}), "name"),
        (json!({"name": 5}), "name"),
        (json!({"name": "x", "timezone": "UTC"}), "timezone"),
        (json!({"name": "x", "auth_token": "mine"}), "auth_token"),
    ];
    for (body, field) in cases {
        let details = send(
            server
                .operator(Method::POST, "/api/v1/admin/accounts")
                .json(&body),
        )
        .await
        .expect_error(400, "invalid_field");
        assert!(details[field].is_string(), "{body}: {details}");
    }
}

#[tokio::test]
async fn the_operator_api_needs_the_admin_token() {
    let server = Server::start().await;
    let account = server.admin_create_account("customer").await;
    let body = json!({"name": "intruder"});
    let attempts = [
        server.request(Method::POST, "/api/v1/admin/accounts"),
        server
            .request(Method::POST, "/api/v1/admin/accounts")
            .bearer_auth("fixture-admin-token-wrong-0000"),
        server.authed(&account, Method::POST, "/api/v1/admin/accounts"),
        server.basic(&account, Method::POST, "/api/v1/admin/accounts"),
    ];
    for attempt in attempts {
        send(attempt.json(&body)).await.expect_error(401, "unauthorized");
    }
    let rotate = format!("/api/v1/admin/accounts/{}/rotate-token", account.auth_id);
    send(server.authed(&account, Method::POST, &rotate))
        .await
        .expect_error(401, "unauthorized");
    // The account's own token still works: the refused rotation changed nothing.
    server.get(&account, &account.path("")).await.expect(200);
}

/// RFC 7235 §2.1: the auth scheme is case-insensitive. `Basic` is read that way for account
/// credentials (see `auth.rs`); the operator's `Bearer` must be too.
#[tokio::test]
async fn the_operator_token_is_accepted_whatever_the_case_of_bearer() {
    let server = Server::start().await;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let answer = send(
            server
                .request(Method::POST, "/api/v1/admin/accounts")
                .header(AUTHORIZATION, format!("{scheme} {ADMIN_TOKEN}"))
                .json(&json!({"name": "any case"})),
        )
        .await;
        assert_eq!(answer.status, 201, "scheme {scheme:?}: {}", answer.json);
    }
}

#[tokio::test]
async fn the_operator_api_is_off_without_an_admin_token() {
    let server = Server::start_without_admin_token().await;
    send(
        server
            .operator(Method::POST, "/api/v1/admin/accounts")
            .json(&json!({"name": "x"})),
    )
    .await
    .expect_error(401, "unauthorized");
    send(server.operator(Method::POST, "/api/v1/admin/accounts/MA_ABCDEFGH/rotate-token"))
        .await
        .expect_error(401, "unauthorized");
}

#[tokio::test]
async fn rotating_a_token_retires_the_old_one_at_once() {
    let server = Server::start().await;
    let account = server.admin_create_account("rotating").await;
    let before = server.get(&account, &account.path("")).await.expect(200);

    let path = format!("/api/v1/admin/accounts/{}/rotate-token", account.auth_id);
    let rotated = send(server.operator(Method::POST, &path)).await.expect(200);
    assert_eq!(rotated["auth_id"], account.auth_id.as_str());
    let new_token = rotated["auth_token"].as_str().expect("a new token");
    assert_eq!(new_token.len(), 40);
    assert_ne!(new_token, account.auth_token);

    let old = account.clone();
    let new = account.with_token(new_token);
    server
        .get(&old, &old.path(""))
        .await
        .expect_error(401, "unauthorized");
    send(server.basic(&old, Method::GET, &old.path("")))
        .await
        .expect_error(401, "unauthorized");
    let after = server.get(&new, &new.path("")).await.expect(200);
    send(server.basic(&new, Method::GET, &new.path("")))
        .await
        .expect(200);
    assert_eq!(after["name"], before["name"]);
    assert_eq!(after["created_at"], before["created_at"]);

    let sub = server.admin_create_sub_account("sub", &new).await;
    let sub_path = format!("/api/v1/admin/accounts/{}/rotate-token", sub.auth_id);
    let sub_rotated = send(server.operator(Method::POST, &sub_path)).await.expect(200);
    let sub = sub.with_token(sub_rotated["auth_token"].as_str().expect("token"));
    server.get(&sub, &sub.path("")).await.expect(200);
}

#[tokio::test]
async fn rotating_the_token_of_an_unknown_account_answers_404() {
    let server = Server::start().await;
    for auth_id in ["MA_ZZZZZZZZ", "not-an-id"] {
        let path = format!("/api/v1/admin/accounts/{auth_id}/rotate-token");
        send(server.operator(Method::POST, &path))
            .await
            .expect_error(404, "not_found");
    }
}

#[tokio::test]
async fn an_account_created_by_the_cli_before_the_server_starts_authenticates_against_it() {
    let data = DataDir::new();
    let main = data.create_account_with_cli("from the cli", None);
    check_creation_answer(&main.json, "from the cli", "MA_", None);
    let sub = data.create_account_with_cli("cli sub", Some(&main.auth_id));
    check_creation_answer(&sub.json, "cli sub", "SA_", Some(&main.auth_id));

    let server = Server::start_on(data, &[]).await;
    let read = server.get(&main, &main.path("")).await.expect(200);
    assert_eq!(read["name"], "from the cli");
    let read = send(server.basic(&sub, Method::GET, &sub.path("")))
        .await
        .expect(200);
    assert_eq!(read["parent_auth_id"], main.auth_id.as_str());

    // The CLI prints what the operator API answers, minus the request id.
    let by_api = server.admin_create_account("by api").await;
    assert_eq!(object_keys(&main.json), object_keys(&by_api.json));
}

#[tokio::test]
async fn the_cli_creates_accounts_while_the_server_is_running() {
    let server = Server::start().await;
    let account = server.data().create_account_with_cli("live", None);
    let read = server.get(&account, &account.path("")).await.expect(200);
    assert_eq!(read["auth_id"], account.auth_id.as_str());
}

#[tokio::test]
async fn the_cli_refuses_an_unknown_parent_and_prints_no_account() {
    let data = DataDir::new();
    let database = data.database_url();
    let output = data.run_cli(&[
        "accounts",
        "create",
        "--name",
        "orphan",
        "--parent",
        "MA_ZZZZZZZZ",
        "--database",
        &database,
        "--secret-key",
        data.secret_key(),
    ]);
    assert!(!output.status.success(), "a missing parent must fail the command");
    assert!(
        output.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("parent_auth_id"), "stderr: {stderr}");
}

#[tokio::test]
async fn the_cli_and_the_server_share_the_generated_key_file_without_a_secret_key() {
    let data = DataDir::new();
    let database = data.database_url();
    let output = data.run_cli(&["accounts", "create", "--name", "keyfile", "--database", &database]);
    let account = account_from_cli_output(&output);
    let server = Server::start_with_key_file(data).await;
    server.get(&account, &account.path("")).await.expect(200);
}

#[tokio::test]
async fn account_settings_are_updated_partially_by_post_put_and_patch() {
    let server = Server::start().await;
    let account = server.admin_create_account("settings").await;
    let created = server.get(&account, &account.path("")).await.expect(200);

    let after_post = server
        .send_json(
            &account,
            Method::POST,
            &account.path(""),
            &json!({"timezone": "Asia/Kolkata"}),
        )
        .await
        .expect(200);
    assert_eq!(after_post["timezone"], "Asia/Kolkata");
    assert_eq!(after_post["name"], "settings");
    assert_eq!(after_post["default_callback_method"], "POST");
    assert_eq!(after_post["created_at"], created["created_at"]);
    assert_ne!(after_post["updated_at"], created["updated_at"]);

    let after_put = server
        .send_json(
            &account,
            Method::PUT,
            &account.alias_path("/"),
            &json!({"default_callback_url": "https://example.com/default", "default_callback_method": "get"}),
        )
        .await
        .expect(200);
    assert_eq!(after_put["timezone"], "Asia/Kolkata");
    assert_eq!(after_put["default_callback_url"], "https://example.com/default");
    assert_eq!(after_put["default_callback_method"], "GET");

    let filter = json!(["call.answered", "Hangup", "call.failed"]);
    let after_patch = server
        .send_json(
            &account,
            Method::PATCH,
            &account.path("/"),
            &json!({"default_callback_events": filter, "name": "renamed"}),
        )
        .await
        .expect(200);
    assert_eq!(after_patch["default_callback_events"], filter);
    assert_eq!(after_patch["name"], "renamed");
    assert_eq!(after_patch["default_callback_url"], "https://example.com/default");
    assert_eq!(after_patch["default_callback_method"], "GET");
    assert_eq!(after_patch["timezone"], "Asia/Kolkata");

    let unchanged = server
        .send_json(&account, Method::POST, &account.alias_path(""), &json!({}))
        .await
        .expect(200);
    for key in ACCOUNT_KEYS.iter().filter(|k| **k != "updated_at") {
        assert_eq!(
            unchanged[*key], after_patch[*key],
            "{key} changed on an empty update"
        );
    }
    let read = server.get(&account, &account.path("")).await.expect(200);
    assert_eq!(without_api_id(&read), without_api_id(&unchanged));
}

#[tokio::test]
async fn null_clears_the_default_callback_and_restores_the_defaults() {
    let server = Server::start().await;
    let account = server.admin_create_account("clearing").await;
    let set = json!({
        "timezone": "Europe/Berlin",
        "default_callback_url": "https://example.com/default",
        "default_callback_method": "GET",
        "default_callback_events": ["Hangup"],
    });
    server
        .send_json(&account, Method::PATCH, &account.path(""), &set)
        .await
        .expect(200);

    let cleared = json!({
        "timezone": null,
        "default_callback_url": null,
        "default_callback_method": null,
        "default_callback_events": null,
    });
    let after = server
        .send_json(&account, Method::PATCH, &account.path(""), &cleared)
        .await
        .expect(200);
    assert_eq!(after["timezone"], "UTC");
    assert_eq!(after["default_callback_url"], Value::Null);
    assert_eq!(after["default_callback_method"], "POST");
    assert_eq!(after["default_callback_events"], json!([]));
    assert_eq!(after["name"], "clearing");
    let read = server.get(&account, &account.path("")).await.expect(200);
    assert_eq!(without_api_id(&read), without_api_id(&after));
}

#[tokio::test]
async fn an_unknown_time_zone_is_refused_naming_timezone_and_changes_nothing() {
    let server = Server::start().await;
    let account = server.admin_create_account("tz").await;
    let before = server.get(&account, &account.path("")).await.expect(200);
    for timezone in ["Mars/Olympus", "", "Europe/Nowhere"] {
        let details = server
            .send_json(
                &account,
                Method::PATCH,
                &account.path(""),
                &json!({"timezone": timezone, "name": "changed"}),
            )
            .await
            .expect_error(400, "invalid_field");
        assert!(details["timezone"].is_string(), "{timezone:?}: {details}");
    }
    let after = server.get(&account, &account.path("")).await.expect(200);
    assert_eq!(without_api_id(&after), without_api_id(&before));
    let accepted = server
        .send_json(
            &account,
            Method::PATCH,
            &account.path(""),
            &json!({"timezone": "America/New_York"}),
        )
        .await
        .expect(200);
    assert_eq!(accepted["timezone"], "America/New_York");
}

/// Auth tokens and signing secrets are sealed before they reach the database (PRODUCT.md §4.4):
/// what the database stores holds none of them — not as the API shows them, nor their raw
/// bytes, nor those bytes in hex (how PostgreSQL dumps `bytea`).
#[tokio::test]
async fn tokens_and_signing_secrets_are_not_stored_in_plain_text() {
    use base64::Engine as _;

    let server = Server::start().await;
    let account = server.admin_create_account("sealed").await;
    let created = send(server.authed(&account, Method::POST, &account.path("/signing-secrets")))
        .await
        .expect(201);
    let path = format!("/api/v1/admin/accounts/{}/rotate-token", account.auth_id);
    let rotated = send(server.operator(Method::POST, &path)).await.expect(200);
    let (status, data) = server.stop();
    assert!(status.success(), "{status}");

    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    for token in [
        &account.auth_token,
        rotated["auth_token"].as_str().expect("token"),
    ] {
        needles.push((format!("token {token}"), token.as_bytes().to_vec()));
    }
    for secret in [&account.json["signing_secret"]["secret"], &created["secret"]] {
        let shown = secret.as_str().expect("secret");
        let encoded = shown.strip_prefix("whsec_").expect("whsec_ prefix");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("base64 after whsec_");
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        needles.push((format!("secret {shown}"), shown.as_bytes().to_vec()));
        needles.push((format!("base64 of {shown}"), encoded.as_bytes().to_vec()));
        needles.push((format!("bytes of {shown}"), bytes));
        needles.push((format!("hex of {shown}"), hex.into_bytes()));
    }

    let stored = data.database_contents();
    let contains = |needle: &[u8]| stored.windows(needle.len()).any(|w| w == needle);
    assert!(
        contains(account.auth_id.as_bytes()),
        "the account is not in what was read: the check would prove nothing"
    );
    for (what, needle) in &needles {
        assert!(!contains(needle), "the database holds the {what} in plain text");
    }
}

//! The "send test" button (PRODUCT.md §2.5, §6): `POST …/test-callback` on the account, an
//! application or a trunk sends one really signed `Hangup` to that level's URL now and answers
//! 200 with the outcome whatever the target answered; 422 when the level has no URL. Nothing
//! enters the delivery log.
//!
//! The TLS outcomes of a test callback are in `tls.rs`.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use super::signatures::{assert_all_valid, creation_secret, verify};
use super::{create_application, create_trunk, update_account};
use crate::fixture::{send, Account, Answer, Server};
use crate::receiver::{Receiver, Reply, Script};
use crate::shapes::{object_keys, sorted_names};

async fn test_callback(server: &Server, account: &Account, level_path: &str) -> Answer {
    send(server.authed(
        account,
        Method::POST,
        &account.path(&format!("{level_path}/test-callback")),
    ))
    .await
}

#[tokio::test]
async fn a_test_callback_reaches_each_levels_url_and_reports_what_it_answered() {
    let receiver = Receiver::start().await;
    receiver.on("/app", Script::always(Reply::status(500)));
    receiver.on("/slow", Script::always(Reply::ok().after(Duration::from_secs(2))));
    let server = super::start_server(&[]).await;
    let account = server.admin_create_account("test-callback").await;
    update_account(
        &server,
        &account,
        &json!({ "default_callback_url": receiver.url("/account") }),
    )
    .await;
    let app_id = create_application(
        &server,
        &account,
        &json!({ "name": "a", "callback_url": receiver.url("/app") }),
    )
    .await;
    let slow_app_id = create_application(
        &server,
        &account,
        &json!({ "name": "s", "callback_url": receiver.url("/slow") }),
    )
    .await;
    let trunk_id = create_trunk(
        &server,
        &account,
        &json!({ "name": "t", "status_callback": receiver.url("/trunk?x=1"), "status_callback_method": "GET" }),
    )
    .await;

    let cases = [
        (
            String::new(),
            "account",
            "/account",
            true,
            json!(200),
            Value::Null,
        ),
        (
            format!("/applications/{app_id}"),
            "application",
            "/app",
            false,
            json!(500),
            json!("status"),
        ),
        (
            format!("/trunks/{trunk_id}"),
            "trunk",
            "/trunk?x=1",
            true,
            json!(200),
            Value::Null,
        ),
        (
            format!("/applications/{slow_app_id}"),
            "application",
            "/slow",
            false,
            Value::Null,
            json!("timeout"),
        ),
    ];
    for (level_path, level, url_path, delivered, status_code, error) in cases {
        let outcome = test_callback(&server, &account, &level_path).await.expect(200);
        assert_eq!(
            object_keys(&outcome),
            sorted_names(&["level", "url", "delivered", "status_code", "latency_ms", "error"]),
            "{outcome}"
        );
        assert_eq!(outcome["level"], level, "{outcome}");
        assert_eq!(outcome["url"], receiver.url(url_path), "{outcome}");
        assert_eq!(outcome["delivered"], delivered, "{outcome}");
        assert_eq!(outcome["status_code"], status_code, "{outcome}");
        assert_eq!(outcome["error"], error, "{outcome}");
        assert!(outcome["latency_ms"].is_u64(), "{outcome}");
    }
    let slow = test_callback(&server, &account, &format!("/applications/{slow_app_id}"))
        .await
        .expect(200);
    let latency = slow["latency_ms"].as_u64().expect("latency_ms");
    assert!(
        (250..2000).contains(&latency),
        "stopped at the 300 ms budget: {slow}"
    );

    let secret = creation_secret(&account);
    let arrivals = receiver.arrivals();
    assert_eq!(arrivals.len(), 5, "one request per test callback");
    for arrival in &arrivals {
        assert_eq!(arrival.expect_field("Event"), "Hangup");
        assert_eq!(arrival.expect_field("auth_id"), account.auth_id);
        assert_all_valid(
            &verify(arrival, &account.auth_token, None, std::slice::from_ref(&secret)),
            "a test callback is really signed",
        );
    }
    let trunk = &receiver.arrivals_to("/trunk")[0];
    assert_eq!(trunk.method, "GET", "the level's method is used");
    assert!(
        trunk.query.as_deref().is_some_and(|q| q.starts_with("x=1&")),
        "{:?}",
        trunk.query
    );
    assert_eq!(trunk.expect_header("x-hookline-callback-level"), "trunk");

    let logged = server
        .get(&account, &account.path("/callbacks"))
        .await
        .expect(200);
    assert_eq!(
        logged["meta"]["total_count"], 0,
        "a test callback is not logged: {logged}"
    );
}

#[tokio::test]
async fn a_level_without_a_url_cannot_be_tested() {
    let server = super::start_server(&[]).await;
    let account = server.admin_create_account("no-urls").await;
    let app_id = create_application(
        &server,
        &account,
        &json!({ "name": "answer only", "answer_url": "http://127.0.0.1:9/answer" }),
    )
    .await;
    let trunk_id = create_trunk(&server, &account, &json!({ "name": "silent" })).await;
    for level_path in [
        String::new(),
        format!("/applications/{app_id}"),
        format!("/trunks/{trunk_id}"),
    ] {
        test_callback(&server, &account, &level_path)
            .await
            .expect_error(422, "unprocessable");
    }
    test_callback(&server, &account, "/applications/12345678901234567")
        .await
        .expect_error(404, "not_found");
    test_callback(&server, &account, "/trunks/00000000-0000-4000-8000-000000000000")
        .await
        .expect_error(404, "not_found");
}

//! HTTPS targets (PRODUCT.md §4.5, §5 `extra_ca`): a receiver with a certificate from a test
//! CA gets its callbacks when `--extra-ca` names that CA, and otherwise every attempt — and a
//! test callback — fails with the error kind `tls` before any request is sent.

use serde_json::{json, Value};

use super::signatures::{assert_all_valid, creation_secret, verify};
use super::{register_call, status_delivery, update_account, wait_until_settled, WAIT};
use crate::fixture::{send, Server};
use crate::receiver::{Receiver, TestCa};

async fn test_account_callback(server: &Server, account: &crate::fixture::Account) -> Value {
    send(server.authed(account, reqwest::Method::POST, &account.path("/test-callback")))
        .await
        .expect(200)
}

#[tokio::test]
async fn an_https_receiver_signed_by_the_extra_ca_gets_its_callbacks() {
    let ca = TestCa::new();
    let receiver = Receiver::start_tls(&ca).await;
    let pem_dir = tempfile::tempdir().expect("a temporary directory");
    let pem = ca.write_pem(pem_dir.path());
    let pem = pem.to_str().expect("a UTF-8 path");
    let server = super::start_server(&[("--extra-ca", pem)]).await;
    let account = server.admin_create_account("tls").await;
    assert!(receiver.base_url().starts_with("https://localhost:"));

    let call_uuid = register_call(&server, &account, &json!({ "status_url": receiver.url("/tls") })).await;
    let arrival = &receiver.wait_for("/tls", 1, WAIT).await[0];
    assert_all_valid(
        &verify(arrival, &account.auth_token, None, &[creation_secret(&account)]),
        "an HTTPS callback is signed over its https URL",
    );
    let objects = wait_until_settled(&server, &account, &call_uuid).await;
    let delivery = status_delivery(&objects, 1);
    assert_eq!(delivery["status"], "delivered", "{delivery}");
    assert_eq!(super::attempts(delivery)[0]["status_code"], 200);

    update_account(
        &server,
        &account,
        &json!({ "default_callback_url": receiver.url("/test") }),
    )
    .await;
    let outcome = test_account_callback(&server, &account).await;
    assert_eq!(outcome["delivered"], true, "{outcome}");
    assert_eq!(outcome["status_code"], 200, "{outcome}");
    assert_eq!(outcome["error"], Value::Null, "{outcome}");
    assert_eq!(receiver.arrivals_to("/test").len(), 1);
    assert_eq!(receiver.failed_handshakes(), 0);
}

#[tokio::test]
async fn without_the_ca_every_https_attempt_fails_as_tls() {
    let ca = TestCa::new();
    let receiver = Receiver::start_tls(&ca).await;
    let server = super::start_server(&[("--retry-max", "1")]).await;
    let account = server.admin_create_account("untrusted").await;

    let call_uuid = register_call(&server, &account, &json!({ "status_url": receiver.url("/tls") })).await;
    let objects = wait_until_settled(&server, &account, &call_uuid).await;
    let delivery = status_delivery(&objects, 1);
    assert_eq!(delivery["status"], "failed", "{delivery}");
    let attempts = super::attempts(delivery);
    assert_eq!(
        attempts.len(),
        2,
        "a TLS failure is retried like any other: {delivery}"
    );
    for attempt in attempts {
        assert_eq!(attempt["error"], "tls", "{attempt}");
        assert_eq!(attempt["status_code"], Value::Null, "{attempt}");
    }

    update_account(
        &server,
        &account,
        &json!({ "default_callback_url": receiver.url("/test") }),
    )
    .await;
    let outcome = test_account_callback(&server, &account).await;
    assert_eq!(outcome["delivered"], false, "{outcome}");
    assert_eq!(outcome["status_code"], Value::Null, "{outcome}");
    assert_eq!(outcome["error"], "tls", "{outcome}");

    assert!(
        receiver.arrivals().is_empty(),
        "no request got through the handshake"
    );
    assert!(
        receiver.failed_handshakes() >= 1,
        "the server did connect and refused the certificate"
    );
}

//! The dashboard as a person uses it: sign in, find a failed callback, redeliver it and see it
//! delivered; sign out; another account's call answers 404. Each main page is screenshotted.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::browser::Browser;
use crate::fixture::{send, Account, Server};
use crate::receiver::{Receiver, Reply, Script};

/// A fast server: two attempts per callback 20 ms apart, and breakers that never pause the
/// receiver (so a redelivery goes out at once once it is healthy).
pub async fn start_server() -> Server {
    Server::start_with(&[
        "--dev",
        "--retry-base-ms",
        "20",
        "--retry-max",
        "1",
        "--retry-jitter",
        "0",
        "--callback-timeout-ms",
        "1000",
        "--breaker-threshold",
        "1000",
        "--sim-ring-ms",
        "20",
        "--sim-talk-ms",
        "40",
    ])
    .await
}

pub async fn make_call(server: &Server, account: &Account, body: &Value) -> String {
    let answer = send(
        server
            .authed(account, Method::POST, &account.path("/calls/"))
            .json(body),
    )
    .await
    .expect(201);
    answer["call_uuid"].as_str().expect("call_uuid").to_owned()
}

/// Polls the delivery log until `n` callbacks of the account are `failed`.
async fn wait_for_failed(server: &Server, account: &Account, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let listing = server
            .get(account, &account.path("/callbacks?status=failed"))
            .await;
        let listing = listing.expect(200);
        if listing["meta"]["total_count"].as_u64() == Some(n) {
            return;
        }
        assert!(Instant::now() < deadline, "never {n} failed callbacks: {listing}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_user_signs_in_finds_a_failed_callback_redelivers_it_and_sees_it_delivered() {
    let receiver = Receiver::start().await;
    receiver.on("/cb", Script::always(Reply::status(500)));
    let server = start_server().await;
    let account = server.admin_create_account("Acme Support").await;
    let call_uuid = make_call(
        &server,
        &account,
        &json!({ "from": "+14155551234", "to": "+14155550100", "status_url": receiver.url("/cb") }),
    )
    .await;
    // CallInitiated, Ring, StartApp, Hangup: each tried twice, then failed.
    wait_for_failed(&server, &account, 4).await;
    receiver.on("/cb", Script::always(Reply::ok()));

    let browser = Browser::start().await;
    browser
        .sign_in(server.base_url(), &account.auth_id, &account.auth_token)
        .await;
    assert_eq!(browser.title().await, "Calls · Hookline");
    assert!(browser.text("main table").await.contains(&call_uuid));
    browser.screenshot("calls").await;

    browser.click(&format!("a[href='/ui/calls/{call_uuid}']")).await;
    let hangup = browser.text("article[data-event=Hangup]").await;
    assert!(hangup.contains("failed"), "{hangup}");
    assert!(
        hangup.contains("HTTP 500"),
        "each attempt shows its status code: {hangup}"
    );
    assert!(hangup.contains("primary"), "and its target: {hangup}");
    browser.screenshot("call").await;

    browser.click("nav a[href='/ui/callbacks']").await;
    browser.wait_for_title("Callbacks · Hookline").await;
    assert!(browser.text("p.count").await.starts_with("4 callbacks"));
    browser.screenshot("callbacks").await;

    // Redeliver one row: it is queued again and then delivered.
    let row = browser.find("tbody tr[data-event-id]").await;
    let event_id = row
        .attr("data-event-id")
        .await
        .expect("attribute")
        .expect("event id");
    browser
        .click(&format!("tbody tr[data-event-id='{event_id}'] button[name=one]"))
        .await;
    let outcome = browser.text("#redeliver-outcome").await;
    assert!(
        outcome.contains(&event_id) && outcome.contains("queued again"),
        "{outcome}"
    );
    let call_page = server.url(&format!("/ui/calls/{call_uuid}"));
    browser
        .reload_until(&call_page, "article[data-status=delivered]")
        .await;
    assert!(browser
        .text("article[data-status=delivered]")
        .await
        .contains(&event_id));

    // Redeliver the rest at once with "select all".
    browser.goto(&server.url("/ui/callbacks?status=failed")).await;
    browser.click("input[data-select-all]").await;
    browser.click("#redeliver-selected").await;
    let outcome = browser.text("#redeliver-outcome").await;
    assert_eq!(outcome.matches("queued again").count(), 3, "{outcome}");
    receiver.wait_for("/cb", 8 + 4, Duration::from_secs(20)).await;
    browser
        .reload_until(&server.url("/ui/callbacks?status=failed"), "p.empty")
        .await;

    // Sign out: the dashboard asks for credentials again.
    browser.click("header form button[type=submit]").await;
    browser.wait_for_title("Sign in · Hookline").await;
    browser.goto(&call_page).await;
    assert_eq!(browser.title().await, "Sign in · Hookline");
    assert!(
        !browser.source().await.contains("+14155550100"),
        "no call data before sign-in"
    );
    browser.close().await;
}

#[tokio::test]
async fn another_accounts_call_in_the_url_answers_not_found() {
    let server = start_server().await;
    let ours = server.admin_create_account("Ours").await;
    let theirs = server.admin_create_account("Theirs").await;
    let their_call = make_call(
        &server,
        &theirs,
        &json!({ "from": "+14155551234", "to": "+14155550100" }),
    )
    .await;
    let browser = Browser::start().await;
    browser
        .sign_in(server.base_url(), &ours.auth_id, &ours.auth_token)
        .await;
    browser
        .goto(&server.url(&format!("/ui/calls/{their_call}")))
        .await;
    assert_eq!(browser.title().await, "Not found · Hookline");
    assert!(!browser.source().await.contains("+14155550100"));
    browser.goto(&server.url("/ui/calls")).await;
    assert!(
        browser.text("main").await.contains("0 calls"),
        "only our own calls are listed"
    );
    browser.close().await;
}

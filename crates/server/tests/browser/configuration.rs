//! Configuration, signing secrets and endpoint health in the browser: an application edited
//! with a bad URL shows the API's message for that field; Send test shows status and latency;
//! the callback plan; a secret is shown once and deleted after a confirmation; the health page
//! shows the receiver's host.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::browser::Browser;
use crate::dashboard::{make_call, start_server};
use crate::fixture::send;
use crate::receiver::Receiver;

#[tokio::test]
async fn an_application_with_a_bad_url_shows_the_fields_error_and_send_test_shows_the_outcome() {
    let receiver = Receiver::start().await;
    let server = start_server().await;
    let account = server.admin_create_account("Acme Config").await;
    let app = send(
        server
            .authed(&account, Method::POST, &account.path("/applications/"))
            .json(&json!({ "name": "Support app", "callback_url": receiver.url("/app"), "callback_events": ["Ring", "Hangup"] })),
    )
    .await
    .expect(201);
    let app_id = app["app_id"].as_str().expect("app_id").to_owned();
    // What the API says about the same bad value.
    let refused = send(
        server
            .authed(
                &account,
                Method::PUT,
                &account.path(&format!("/applications/{app_id}")),
            )
            .json(&json!({ "callback_url": "ftp://example.com/hook" })),
    )
    .await
    .expect_error(400, "invalid_field");
    let api_message = refused["callback_url"].as_str().expect("a message").to_owned();

    let browser = Browser::start().await;
    browser
        .sign_in(server.base_url(), &account.auth_id, &account.auth_token)
        .await;
    browser.goto(&server.url("/ui/config")).await;
    assert!(browser
        .text(&format!("tr[data-app-id='{app_id}']"))
        .await
        .contains("Ring, Hangup"));
    browser.screenshot("configuration").await;

    browser
        .click(&format!(
            "tr[data-app-id='{app_id}'] a[href='/ui/config/applications/{app_id}']"
        ))
        .await;
    browser.wait_for_title("Edit application · Hookline").await;
    browser.fill("#f-callback_url", "ftp://example.com/hook").await;
    browser.click("form.card button[type=submit]").await;
    let error = browser.text("#f-callback_url-error").await;
    assert_eq!(
        error,
        format!("callback_url: {api_message}"),
        "the API's message, next to the field"
    );
    assert!(browser.text("#form-errors").await.contains("callback_url"));
    let invalid = browser
        .find("#f-callback_url")
        .await
        .attr("aria-invalid")
        .await
        .expect("attribute");
    assert_eq!(invalid.as_deref(), Some("true"));
    browser.screenshot("application-error").await;
    let stored = server
        .get(&account, &account.path(&format!("/applications/{app_id}")))
        .await
        .expect(200);
    assert_eq!(stored["callback_url"], receiver.url("/app"), "nothing was saved");

    // A good URL is saved, and the test callback goes there.
    browser.fill("#f-callback_url", &receiver.url("/app2")).await;
    browser.click("form.card button[type=submit]").await;
    assert_eq!(browser.text("#saved").await, "Saved.");
    let stored = server
        .get(&account, &account.path(&format!("/applications/{app_id}")))
        .await
        .expect(200);
    assert_eq!(stored["callback_url"], receiver.url("/app2"));

    browser.click("button[data-test=application]").await;
    let outcome = browser.text("#test-result").await;
    assert!(outcome.contains("HTTP 200"), "{outcome}");
    assert!(outcome.contains(" ms"), "the latency: {outcome}");
    assert!(outcome.contains("none"), "no error: {outcome}");
    receiver.wait_for("/app2", 1, Duration::from_secs(10)).await;
    browser.screenshot("send-test").await;

    // No account default yet: its test says why nothing was sent.
    browser.click("button[data-test=account]").await;
    // A `p`, where the previous page's outcome was a `div`: this waits for the new page.
    let outcome = browser.text("p#test-result").await;
    assert!(outcome.contains("No test sent"), "{outcome}");

    // The plan for this application: its filter lets Ring and Hangup through.
    browser
        .goto(&server.url(&format!("/ui/config/plan?app_id={app_id}")))
        .await;
    let ring = browser.text("#plan tr[data-event=Ring]").await;
    assert!(ring.contains("application") && ring.contains("send"), "{ring}");
    let answered = browser.text("#plan tr[data-event=StartApp]").await;
    assert!(answered.contains("filtered"), "{answered}");
    browser.screenshot("plan").await;
    browser.close().await;
}

#[tokio::test]
async fn a_new_secret_is_shown_once_and_deleted_after_confirmation_and_health_shows_the_host() {
    let receiver = Receiver::start().await;
    let server = start_server().await;
    let account = server.admin_create_account("Acme Secrets").await;
    make_call(
        &server,
        &account,
        &json!({ "from": "+14155551234", "to": "+14155550100", "status_url": receiver.url("/cb") }),
    )
    .await;
    receiver.wait_for("/cb", 4, Duration::from_secs(20)).await;

    let browser = Browser::start().await;
    browser
        .sign_in(server.base_url(), &account.auth_id, &account.auth_token)
        .await;
    browser.goto(&server.url("/ui/health")).await;
    let origin = receiver.url("").trim_end_matches('/').to_owned();
    let row = browser.text(&format!("tr[data-host='{origin}']")).await;
    assert!(row.contains("100.0 %"), "{row}");
    assert!(row.contains("closed"), "{row}");
    assert_eq!(browser.text("#queue-depth").await, "0");
    browser.screenshot("health").await;

    browser.goto(&server.url("/ui/secrets")).await;
    browser.click("#create-secret").await;
    let value = browser
        .find("#secret-value")
        .await
        .prop("value")
        .await
        .expect("a value");
    let value = value.expect("the new secret");
    assert!(value.starts_with("whsec_"), "{value}");
    browser.click("button[data-copy=secret-value]").await;
    browser.screenshot("secrets").await;
    let listed = server
        .get(&account, &account.path("/signing-secrets"))
        .await
        .expect(200);
    let listed = listed["objects"].as_array().expect("objects").clone();
    assert_eq!(listed.len(), 2);
    assert!(!browser.source().await.contains(&value) || listed.iter().all(|s| s.get("secret").is_none()));

    // Reloading the list never shows the value again.
    browser.goto(&server.url("/ui/secrets")).await;
    assert!(!browser.source().await.contains(&value), "shown once");
    let newest = listed.last().expect("the new secret")["secret_id"]
        .as_str()
        .expect("id")
        .to_owned();
    browser
        .click(&format!("a[href='/ui/secrets/{newest}/delete']"))
        .await;
    browser.wait_for_title("Delete a signing secret · Hookline").await;
    browser.click("button.danger").await;
    assert!(browser.text("p.notice.good").await.contains(&newest));
    let listed = server
        .get(&account, &account.path("/signing-secrets"))
        .await
        .expect(200);
    assert_eq!(listed["objects"].as_array().expect("objects").len(), 1);
    browser.close().await;
}

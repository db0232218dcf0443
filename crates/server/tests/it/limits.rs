//! Rate limits (PRODUCT.md §2: 429): per account on the API, per account on make-call, and a
//! separate one for the operator's switch interface. Over a limit the answer is a 429 in the
//! error shape with `Retry-After`; nothing of the refused request is written, and everything
//! answered 2xx is kept.

use std::time::Duration;

use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};

use crate::calls::{call_body, check_fired, list_total, ANSWERS, FAST};
use crate::fixture::{send, Account, Server};

/// Sends `request`; when it is a 429, checks the error shape and returns its `Retry-After`.
async fn limited(request: RequestBuilder) -> Option<Duration> {
    let response = request.send().await.expect("sending");
    if response.status().as_u16() != 429 {
        return None;
    }
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .expect("a 429 carries Retry-After in whole seconds");
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(body["code"], "rate_limited", "{body}");
    assert!(body["api_id"].as_str().is_some_and(|id| !id.is_empty()), "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("per second")),
        "{body}"
    );
    assert!(body["details"].is_object(), "{body}");
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    Some(Duration::from_secs(retry_after))
}

fn get_account(server: &Server, account: &Account) -> RequestBuilder {
    server.authed(account, Method::GET, &account.path("/"))
}

#[tokio::test]
async fn an_account_over_its_api_limit_gets_429_with_retry_after_and_passes_again_after_it() {
    let server = Server::start_with(&["--api-rate-limit", "1", "--api-rate-burst", "3"]).await;
    let busy = server.admin_create_account("busy").await;
    let quiet = server.admin_create_account("quiet").await;
    for i in 0..3 {
        assert_eq!(
            limited(get_account(&server, &busy)).await,
            None,
            "request {i} is in the burst"
        );
    }
    let wait = limited(get_account(&server, &busy))
        .await
        .expect("the fourth is over the limit");
    // Each account has its own bucket, and bad credentials are refused before any bucket.
    assert_eq!(limited(get_account(&server, &quiet)).await, None);
    send(get_account(&server, &busy.with_token("wrong-token")))
        .await
        .expect_error(401, "unauthorized");
    // Waiting as told is enough: the client is not kept out longer than Retry-After says.
    tokio::time::sleep(wait).await;
    send(get_account(&server, &busy)).await.expect(200);
}

#[tokio::test]
async fn make_call_has_its_own_limit_and_a_refused_call_is_not_placed() {
    let args: Vec<&str> = FAST
        .iter()
        .copied()
        // Slow enough that no token comes back while the test runs on a loaded machine.
        .chain(["--call-rate-limit", "0.05", "--call-rate-burst", "2"])
        .collect();
    let server = Server::start_with(&args).await;
    let account = server.admin_create_account("caller").await;
    let place = |key: &'static str| {
        server
            .authed(&account, Method::POST, &account.path("/calls"))
            .header("Idempotency-Key", key)
            .json(&call_body(ANSWERS, &json!({})))
    };
    let first = check_fired(&send(place("first")).await.expect(201));
    check_fired(&send(place("second")).await.expect(201));
    limited(place("third"))
        .await
        .expect("the third call is over the limit");
    // A repeat of an answered request places no call, so the limit does not refuse it.
    // (A replay is the first answer byte for byte, its api_id included.)
    let repeat = place("first").send().await.expect("sending");
    assert_eq!(repeat.status().as_u16(), 201);
    let repeat: Value = repeat.json().await.expect("json");
    assert_eq!(check_fired(&repeat), first);
    // The API limit (off here) is another bucket: reads still pass, and show two calls.
    assert_eq!(list_total(&server, &account, "/calls").await, 2);
}

#[tokio::test]
async fn the_operator_limit_is_its_own_and_every_event_it_accepted_is_kept() {
    let server = Server::start_with(&[
        "--operator-rate-limit",
        "0.05",
        "--operator-rate-burst",
        "5",
        "--api-rate-limit",
        "0.5",
        "--api-rate-burst",
        "1",
    ])
    .await;
    // Creating the account spends one operator token.
    let account = server.admin_create_account("inbound").await;
    send(get_account(&server, &account)).await.expect(200);
    assert!(
        limited(get_account(&server, &account)).await.is_some(),
        "the account's bucket is empty"
    );
    let register = || {
        server.operator(Method::POST, "/api/v1/switch/calls").json(&json!({
            "auth_id": account.auth_id, "direction": "inbound", "from": "+14155558888", "to": "+14155551234"
        }))
    };
    // The account's empty bucket does not hold back the operator's switch.
    let mut registered = Vec::new();
    let mut refused = 0;
    for _ in 0..8 {
        let response = register().send().await.expect("sending");
        match response.status().as_u16() {
            201 => {
                let body: Value = response.json().await.expect("json");
                registered.push(body["call_uuid"].as_str().expect("call_uuid").to_owned());
            }
            429 => refused += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(
        (registered.len(), refused),
        (4, 4),
        "a burst of 5, one spent on the account"
    );
    limited(register()).await.expect("still over the limit");
    // Every registered call is there; none of the refused ones is.
    let list = loop {
        let answer = send(server.authed(&account, Method::GET, &account.path("/calls"))).await;
        if answer.status != 429 {
            break answer.expect(200);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(list["meta"]["total_count"], 4, "{list}");
    let mut listed: Vec<&str> = list["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .filter_map(|call| call["call_uuid"].as_str())
        .collect();
    listed.sort_unstable();
    registered.sort_unstable();
    assert_eq!(listed, registered);
}

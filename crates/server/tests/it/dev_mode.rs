//! `hookline serve --dev` (PRODUCT.md §4.5, §6): it allows `http`, `localhost`, loopback and
//! private addresses in callback URLs, and nothing else — userinfo, other schemes and URLs over
//! 2048 bytes are still refused. The production rules themselves are in `validation.rs`.

use reqwest::Method;
use serde_json::{json, Value};

use crate::fixture::{Account, Server};
use crate::shapes::without_api_id;

/// URLs only `--dev` accepts.
const DEV_ONLY_URLS: &[&str] = &[
    "http://127.0.0.1:9/x",
    "http://localhost:8080/cb",
    "https://10.0.0.1/cb",
    "http://192.168.1.20/cb",
    "http://[::1]:9/cb",
    "https://169.254.169.254/latest",
];

/// URLs `--dev` still refuses.
fn still_refused() -> Vec<String> {
    vec![
        "http://user@127.0.0.1:9/x".to_owned(),
        "http://user:secret@localhost/cb".to_owned(),
        "https://@10.0.0.1/cb".to_owned(),
        "ftp://127.0.0.1/x".to_owned(),
        "file:///etc/passwd".to_owned(),
        "ws://127.0.0.1:9/x".to_owned(),
        String::new(),
        format!("http://127.0.0.1:9/{}", "a".repeat(2030)),
    ]
}

/// An application, a trunk and the account, each with one URL field, as `(path, field)`.
async fn url_fields(server: &Server, account: &Account) -> Vec<(String, &'static str)> {
    let app = server
        .send_json(
            account,
            Method::POST,
            &account.path("/applications"),
            &json!({"name": "dev"}),
        )
        .await
        .expect(201);
    let trunk = server
        .send_json(
            account,
            Method::POST,
            &account.path("/trunks"),
            &json!({"name": "dev"}),
        )
        .await
        .expect(201);
    let app_path = account.path(&format!("/applications/{}", app["app_id"].as_str().expect("id")));
    let trunk_path = account.path(&format!("/trunks/{}", trunk["trunk_id"].as_str().expect("id")));
    vec![
        (app_path.clone(), "callback_url"),
        (app_path.clone(), "fallback_callback_url"),
        (app_path.clone(), "answer_url"),
        (app_path, "hangup_url"),
        (trunk_path, "status_callback"),
        (account.path(""), "default_callback_url"),
    ]
}

#[tokio::test]
async fn dev_mode_accepts_http_localhost_and_private_targets_on_every_url_field() {
    let server = Server::start_with(&["--dev"]).await;
    let account = server.admin_create_account("dev").await;
    for (path, field) in url_fields(&server, &account).await {
        for url in DEV_ONLY_URLS {
            let updated = server
                .send_json(&account, Method::PATCH, &path, &json!({ field: url }))
                .await
                .expect(200);
            assert_eq!(updated[field], *url, "{field} on {path}");
        }
    }
    let created = server
        .send_json(
            &account,
            Method::POST,
            &account.path("/applications"),
            &json!({"name": "local", "callback_url": "http://127.0.0.1:9/x"}),
        )
        .await
        .expect(201);
    assert_eq!(created["callback_url"], "http://127.0.0.1:9/x");
}

#[tokio::test]
async fn dev_mode_still_refuses_userinfo_other_schemes_and_overlong_urls() {
    let server = Server::start_with(&["--dev"]).await;
    let account = server.admin_create_account("dev").await;
    let mut failures = Vec::new();
    for (path, field) in url_fields(&server, &account).await {
        let before = without_api_id(&server.get(&account, &path).await.expect(200));
        for url in still_refused() {
            let answer = server
                .send_json(
                    &account,
                    Method::PATCH,
                    &path,
                    &json!({ field: url, "name": "changed" }),
                )
                .await;
            let after = without_api_id(&server.get(&account, &path).await.expect(200));
            let named = answer.json["details"][field].is_string();
            if answer.status != 400 || answer.json["code"] != "invalid_field" || !named || after != before {
                failures.push(format!("{field} = {url:.60}: {} {}", answer.status, answer.json));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "accepted in dev mode:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn without_dev_mode_the_same_local_targets_are_refused() {
    let server = Server::start().await;
    let account = server.admin_create_account("prod").await;
    for url in DEV_ONLY_URLS {
        let details = server
            .send_json(
                &account,
                Method::POST,
                &account.path("/applications"),
                &json!({"name": "local", "callback_url": url}),
            )
            .await
            .expect_error(400, "invalid_field");
        assert!(details["callback_url"].is_string(), "{url}: {details}");
    }
    let listed: Value = server
        .get(&account, &account.path("/applications"))
        .await
        .expect(200);
    assert_eq!(listed["meta"]["total_count"], 0);
}

//! Applications (level 2) end to end: create, retrieve, partial update by POST/PUT/PATCH,
//! delete, on the primary paths and the Vobiz `/Account/…/Application/…/` aliases, with every
//! field, alias and default of PRODUCT.md §2.2.
//!
//! Pagination is in `lists.rs`, refused input in `validation.rs`, other accounts in `auth.rs`.

use reqwest::Method;
use serde_json::{json, Value};

use crate::fixture::{Account, Server};
use crate::shapes::{object_keys, sorted_names, without_api_id};

const APPLICATION_KEYS: [&str; 14] = [
    "app_id",
    "name",
    "app_name",
    "callback_url",
    "callback_method",
    "fallback_callback_url",
    "callback_events",
    "answer_url",
    "answer_method",
    "hangup_url",
    "hangup_method",
    "resource_uri",
    "created_at",
    "updated_at",
];

/// Creates an application on the primary path; it must answer 201.
pub async fn create_application(server: &Server, account: &Account, body: &Value) -> Value {
    server
        .send_json(account, Method::POST, &account.path("/applications"), body)
        .await
        .expect(201)
}

fn app_path(account: &Account, app: &Value) -> String {
    account.path(&format!(
        "/applications/{}",
        app["app_id"].as_str().expect("app_id")
    ))
}

fn full_body() -> Value {
    json!({
        "name": "full",
        "callback_url": "https://hooks.example.com/status?tenant=7",
        "callback_method": "get",
        "fallback_callback_url": "https://backup.example.com/status",
        "callback_events": ["call.answered", "Hangup", "call.failed"],
        "answer_url": "https://hooks.example.com/answer",
        "answer_method": "Get",
        "hangup_url": "https://hooks.example.com/hangup",
        "hangup_method": "post",
    })
}

#[tokio::test]
async fn an_application_is_created_with_its_defaults_and_read_back() {
    let server = Server::start().await;
    let account = server.admin_create_account("apps").await;
    let app = create_application(&server, &account, &json!({"name": "minimal"})).await;

    assert_eq!(object_keys(&app), sorted_names(&APPLICATION_KEYS));
    let app_id = app["app_id"].as_str().expect("app_id");
    assert!(
        app_id.len() == 17 && app_id.bytes().all(|b| b.is_ascii_digit()),
        "app_id {app_id:?} is not 17 digits"
    );
    assert_eq!(app["name"], "minimal");
    assert_eq!(app["app_name"], "minimal");
    for optional in [
        "callback_url",
        "fallback_callback_url",
        "answer_url",
        "hangup_url",
    ] {
        assert_eq!(app[optional], Value::Null, "{optional}");
    }
    for method in ["callback_method", "answer_method", "hangup_method"] {
        assert_eq!(app[method], "POST", "{method}");
    }
    assert_eq!(app["callback_events"], json!([]));
    assert_eq!(
        app["resource_uri"],
        format!("/api/v1/account/{}/applications/{app_id}", account.auth_id)
    );
    assert_eq!(app["created_at"], app["updated_at"]);

    let read = server.get(&account, &app_path(&account, &app)).await.expect(200);
    assert_eq!(without_api_id(&read), without_api_id(&app));
}

#[tokio::test]
async fn every_application_field_is_stored_with_methods_upper_cased_and_filters_as_written() {
    let server = Server::start().await;
    let account = server.admin_create_account("apps").await;
    let app = create_application(&server, &account, &full_body()).await;

    assert_eq!(app["callback_url"], "https://hooks.example.com/status?tenant=7");
    assert_eq!(app["callback_method"], "GET");
    assert_eq!(app["fallback_callback_url"], "https://backup.example.com/status");
    assert_eq!(
        app["callback_events"],
        json!(["call.answered", "Hangup", "call.failed"])
    );
    assert_eq!(app["answer_url"], "https://hooks.example.com/answer");
    assert_eq!(app["answer_method"], "GET");
    assert_eq!(app["hangup_url"], "https://hooks.example.com/hangup");
    assert_eq!(app["hangup_method"], "POST");

    let read = server.get(&account, &app_path(&account, &app)).await.expect(200);
    assert_eq!(without_api_id(&read), without_api_id(&app));
}

#[tokio::test]
async fn app_name_is_accepted_as_the_name_on_create_and_update() {
    let server = Server::start().await;
    let account = server.admin_create_account("apps").await;
    let app = create_application(&server, &account, &json!({"app_name": "vobiz style"})).await;
    assert_eq!(app["name"], "vobiz style");
    assert_eq!(app["app_name"], "vobiz style");

    let path = app_path(&account, &app);
    let renamed = server
        .send_json(&account, Method::POST, &path, &json!({"app_name": "renamed"}))
        .await
        .expect(200);
    assert_eq!(renamed["name"], "renamed");
    assert_eq!(renamed["app_name"], "renamed");
}

#[tokio::test]
async fn an_update_keeps_omitted_fields_and_null_clears_optional_ones() {
    let server = Server::start().await;
    let account = server.admin_create_account("apps").await;
    let app = create_application(&server, &account, &full_body()).await;
    let path = app_path(&account, &app);

    let after_post = server
        .send_json(&account, Method::POST, &path, &json!({"callback_method": "POST"}))
        .await
        .expect(200);
    let mut expected = without_api_id(&app);
    expected["callback_method"] = json!("POST");
    expected["updated_at"] = after_post["updated_at"].clone();
    assert_eq!(without_api_id(&after_post), expected);
    assert_ne!(after_post["updated_at"], app["updated_at"]);

    let after_put = server
        .send_json(&account, Method::PUT, &path, &json!({"name": "put"}))
        .await
        .expect(200);
    expected["name"] = json!("put");
    expected["app_name"] = json!("put");
    expected["updated_at"] = after_put["updated_at"].clone();
    assert_eq!(without_api_id(&after_put), expected);

    let cleared = json!({
        "callback_url": null,
        "fallback_callback_url": null,
        "callback_events": null,
        "answer_url": null,
        "answer_method": null,
        "hangup_url": null,
        "hangup_method": null,
    });
    let after_patch = server
        .send_json(&account, Method::PATCH, &path, &cleared)
        .await
        .expect(200);
    for optional in [
        "callback_url",
        "fallback_callback_url",
        "answer_url",
        "hangup_url",
    ] {
        assert_eq!(after_patch[optional], Value::Null, "{optional}");
    }
    assert_eq!(after_patch["callback_events"], json!([]));
    assert_eq!(after_patch["answer_method"], "POST");
    assert_eq!(after_patch["hangup_method"], "POST");
    assert_eq!(after_patch["callback_method"], "POST");
    assert_eq!(after_patch["name"], "put");
    assert_eq!(after_patch["created_at"], app["created_at"]);

    let read = server.get(&account, &path).await.expect(200);
    assert_eq!(without_api_id(&read), without_api_id(&after_patch));
}

#[tokio::test]
async fn applications_answer_on_the_vobiz_alias_paths_with_or_without_trailing_slashes() {
    let server = Server::start().await;
    let account = server.admin_create_account("aliases").await;
    let created = server
        .send_json(
            &account,
            Method::POST,
            &account.alias_path("/Application/"),
            &json!({"app_name": "via alias", "callback_url": "https://example.com/a"}),
        )
        .await
        .expect(201);
    let app_id = created["app_id"].as_str().expect("app_id").to_owned();
    let alias = account.alias_path(&format!("/Application/{app_id}/"));
    let alias_bare = account.alias_path(&format!("/Application/{app_id}"));
    let primary_slash = account.path(&format!("/applications/{app_id}/"));

    let listed = server
        .get(&account, &account.alias_path("/Application/"))
        .await
        .expect(200);
    assert_eq!(listed["meta"]["total_count"], 1);
    assert_eq!(listed["objects"][0]["app_id"], app_id.as_str());
    let listed = server
        .get(&account, &account.path("/applications/"))
        .await
        .expect(200);
    assert_eq!(listed["objects"][0]["app_id"], app_id.as_str());

    for path in [&alias, &alias_bare, &primary_slash] {
        let read = server.get(&account, path).await.expect(200);
        assert_eq!(without_api_id(&read), without_api_id(&created), "GET {path}");
    }

    let updates = [
        (Method::POST, &alias, json!({"callback_method": "GET"})),
        (
            Method::PUT,
            &alias_bare,
            json!({"hangup_url": "https://example.com/h"}),
        ),
        (Method::PATCH, &primary_slash, json!({"name": "patched"})),
    ];
    for (method, path, body) in updates {
        server.send_json(&account, method, path, &body).await.expect(200);
    }
    let read = server.get(&account, &alias).await.expect(200);
    assert_eq!(read["callback_method"], "GET");
    assert_eq!(read["hangup_url"], "https://example.com/h");
    assert_eq!(read["name"], "patched");
    assert_eq!(read["callback_url"], "https://example.com/a");

    let deleted = server.delete(&account, &alias).await;
    assert_eq!(deleted.status, 204);
    server
        .get(&account, &account.path(&format!("/applications/{app_id}")))
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn a_deleted_application_is_gone_for_every_method() {
    let server = Server::start().await;
    let account = server.admin_create_account("apps").await;
    let kept = create_application(&server, &account, &json!({"name": "kept"})).await;
    let doomed = create_application(&server, &account, &json!({"name": "doomed"})).await;
    let path = app_path(&account, &doomed);

    let deleted = server.delete(&account, &path).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.json, Value::Null, "204 has no body");

    server.get(&account, &path).await.expect_error(404, "not_found");
    server
        .delete(&account, &path)
        .await
        .expect_error(404, "not_found");
    for method in [Method::POST, Method::PUT, Method::PATCH] {
        server
            .send_json(&account, method, &path, &json!({"name": "zombie"}))
            .await
            .expect_error(404, "not_found");
    }
    let listed = server
        .get(&account, &account.path("/applications"))
        .await
        .expect(200);
    assert_eq!(listed["meta"]["total_count"], 1);
    assert_eq!(listed["objects"][0]["app_id"], kept["app_id"]);
}

#[tokio::test]
async fn an_unknown_or_malformed_app_id_answers_404() {
    let server = Server::start().await;
    let account = server.admin_create_account("apps").await;
    for app_id in ["12345678901234567", "123", "not-an-id", "00000000000000000"] {
        let path = account.path(&format!("/applications/{app_id}"));
        server.get(&account, &path).await.expect_error(404, "not_found");
        server
            .send_json(&account, Method::PATCH, &path, &json!({"name": "x"}))
            .await
            .expect_error(404, "not_found");
        server
            .delete(&account, &path)
            .await
            .expect_error(404, "not_found");
    }
}

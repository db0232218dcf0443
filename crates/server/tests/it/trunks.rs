//! SIP trunks (level 3) end to end: create, retrieve, partial update (PUT as in the seed, POST
//! and PATCH alike), delete, on `/account/…/trunks` and `/Account/…/trunks/`, with every field,
//! write alias (`webhook_url`, `webhook_method`, `trunk_type`) and default of PRODUCT.md §2.3.
//!
//! Pagination is in `lists.rs`, refused input in `validation.rs`, other accounts in `auth.rs`.

use reqwest::Method;
use serde_json::{json, Value};

use crate::fixture::{Account, Server};
use crate::shapes::{is_uuid, object_keys, sorted_names, without_api_id};

const TRUNK_KEYS: [&str; 12] = [
    "trunk_id",
    "name",
    "status_callback",
    "status_callback_method",
    "status_callback_events",
    "trunk_direction",
    "trunk_status",
    "termination_uri",
    "recording",
    "engine",
    "created_at",
    "updated_at",
];

/// Creates a trunk on the primary path; it must answer 201.
pub async fn create_trunk(server: &Server, account: &Account, body: &Value) -> Value {
    server
        .send_json(account, Method::POST, &account.path("/trunks"), body)
        .await
        .expect(201)
}

fn trunk_path(account: &Account, trunk: &Value) -> String {
    account.path(&format!(
        "/trunks/{}",
        trunk["trunk_id"].as_str().expect("trunk_id")
    ))
}

fn full_body() -> Value {
    json!({
        "name": "carrier",
        "status_callback": "https://hooks.example.com/trunk",
        "status_callback_method": "get",
        "status_callback_events": ["call.ringing", "Hangup", "call.failed"],
        "trunk_direction": "OUTBOUND",
        "trunk_status": "inactive",
        "termination_uri": "sips:gw@carrier.example.com:5061",
        "recording": true,
        "engine": "external",
    })
}

#[tokio::test]
async fn a_trunk_is_created_with_its_defaults_and_read_back() {
    let server = Server::start().await;
    let account = server.admin_create_account("trunks").await;
    let trunk = create_trunk(&server, &account, &json!({"name": "bare"})).await;

    assert_eq!(object_keys(&trunk), sorted_names(&TRUNK_KEYS));
    let trunk_id = trunk["trunk_id"].as_str().expect("trunk_id");
    assert!(is_uuid(trunk_id), "trunk_id {trunk_id:?} is not a UUID");
    assert_eq!(trunk["name"], "bare");
    assert_eq!(trunk["status_callback"], Value::Null);
    assert_eq!(trunk["status_callback_method"], "POST");
    assert_eq!(trunk["status_callback_events"], json!([]));
    assert_eq!(trunk["trunk_direction"], "both");
    assert_eq!(trunk["trunk_status"], "active");
    assert_eq!(trunk["termination_uri"], Value::Null);
    assert_eq!(trunk["recording"], false);
    assert_eq!(trunk["engine"], "simulated");
    assert_eq!(trunk["created_at"], trunk["updated_at"]);

    let read = server
        .get(&account, &trunk_path(&account, &trunk))
        .await
        .expect(200);
    assert_eq!(without_api_id(&read), without_api_id(&trunk));
}

#[tokio::test]
async fn every_trunk_field_is_stored_and_normalised() {
    let server = Server::start().await;
    let account = server.admin_create_account("trunks").await;
    let trunk = create_trunk(&server, &account, &full_body()).await;

    assert_eq!(trunk["status_callback"], "https://hooks.example.com/trunk");
    assert_eq!(trunk["status_callback_method"], "GET");
    assert_eq!(
        trunk["status_callback_events"],
        json!(["call.ringing", "Hangup", "call.failed"])
    );
    assert_eq!(trunk["trunk_direction"], "outbound");
    assert_eq!(trunk["trunk_status"], "inactive");
    assert_eq!(trunk["termination_uri"], "sips:gw@carrier.example.com:5061");
    assert_eq!(trunk["recording"], true);
    assert_eq!(trunk["engine"], "external");

    let read = server
        .get(&account, &trunk_path(&account, &trunk))
        .await
        .expect(200);
    assert_eq!(without_api_id(&read), without_api_id(&trunk));
}

#[tokio::test]
async fn the_vobiz_write_aliases_set_the_seed_fields() {
    let server = Server::start().await;
    let account = server.admin_create_account("trunks").await;
    let trunk = create_trunk(
        &server,
        &account,
        &json!({
            "name": "aliased",
            "webhook_url": "https://hooks.example.com/wh",
            "webhook_method": "gEt",
            "trunk_type": "Inbound",
            "trunk_status": "disabled",
        }),
    )
    .await;
    assert_eq!(trunk["status_callback"], "https://hooks.example.com/wh");
    assert_eq!(trunk["status_callback_method"], "GET");
    assert_eq!(trunk["trunk_direction"], "inbound");
    assert_eq!(trunk["trunk_status"], "inactive");
    for alias in ["webhook_url", "webhook_method", "trunk_type"] {
        assert!(trunk.get(alias).is_none(), "write alias {alias} is echoed back");
    }

    let path = trunk_path(&account, &trunk);
    let updated = server
        .send_json(
            &account,
            Method::PUT,
            &path,
            &json!({
                "webhook_url": "https://hooks.example.com/other",
                "webhook_method": "post",
                "trunk_type": "BOTH",
                "trunk_status": "Enabled",
            }),
        )
        .await
        .expect(200);
    assert_eq!(updated["status_callback"], "https://hooks.example.com/other");
    assert_eq!(updated["status_callback_method"], "POST");
    assert_eq!(updated["trunk_direction"], "both");
    assert_eq!(updated["trunk_status"], "active");
    assert_eq!(updated["name"], "aliased");
}

#[tokio::test]
async fn a_put_keeps_omitted_fields_and_null_clears_or_restores_defaults() {
    let server = Server::start().await;
    let account = server.admin_create_account("trunks").await;
    let trunk = create_trunk(&server, &account, &full_body()).await;
    let path = trunk_path(&account, &trunk);

    let renamed = server
        .send_json(&account, Method::PUT, &path, &json!({"name": "renamed"}))
        .await
        .expect(200);
    let mut expected = without_api_id(&trunk);
    expected["name"] = json!("renamed");
    expected["updated_at"] = renamed["updated_at"].clone();
    assert_eq!(without_api_id(&renamed), expected);
    assert_ne!(renamed["updated_at"], trunk["updated_at"]);

    let posted = server
        .send_json(&account, Method::POST, &path, &json!({"recording": false}))
        .await
        .expect(200);
    expected["recording"] = json!(false);
    expected["updated_at"] = posted["updated_at"].clone();
    assert_eq!(without_api_id(&posted), expected);

    let cleared = json!({
        "status_callback": null,
        "status_callback_method": null,
        "status_callback_events": null,
        "trunk_direction": null,
        "trunk_status": null,
        "termination_uri": null,
        "recording": null,
        "engine": null,
    });
    let after = server
        .send_json(&account, Method::PATCH, &path, &cleared)
        .await
        .expect(200);
    assert_eq!(after["status_callback"], Value::Null);
    assert_eq!(after["status_callback_method"], "POST");
    assert_eq!(after["status_callback_events"], json!([]));
    assert_eq!(after["trunk_direction"], "both");
    assert_eq!(after["trunk_status"], "active");
    assert_eq!(after["termination_uri"], Value::Null);
    assert_eq!(after["recording"], false);
    assert_eq!(after["engine"], "simulated");
    assert_eq!(after["name"], "renamed");
    assert_eq!(after["created_at"], trunk["created_at"]);

    let read = server.get(&account, &path).await.expect(200);
    assert_eq!(without_api_id(&read), without_api_id(&after));
}

#[tokio::test]
async fn trunks_answer_on_the_vobiz_paths_with_or_without_trailing_slashes() {
    let server = Server::start().await;
    let account = server.admin_create_account("aliases").await;
    let created = server
        .send_json(
            &account,
            Method::POST,
            &account.alias_path("/trunks/"),
            &json!({"name": "via alias", "webhook_url": "https://example.com/t"}),
        )
        .await
        .expect(201);
    let trunk_id = created["trunk_id"].as_str().expect("trunk_id").to_owned();
    let alias = account.alias_path(&format!("/trunks/{trunk_id}/"));
    let alias_bare = account.alias_path(&format!("/trunks/{trunk_id}"));
    let primary_slash = account.path(&format!("/trunks/{trunk_id}/"));

    for list in [
        account.alias_path("/trunks"),
        account.alias_path("/trunks/"),
        account.path("/trunks/"),
    ] {
        let listed = server.get(&account, &list).await.expect(200);
        assert_eq!(listed["meta"]["total_count"], 1, "GET {list}");
        assert_eq!(listed["objects"][0]["trunk_id"], trunk_id.as_str(), "GET {list}");
    }
    for path in [&alias, &alias_bare, &primary_slash] {
        let read = server.get(&account, path).await.expect(200);
        assert_eq!(without_api_id(&read), without_api_id(&created), "GET {path}");
    }

    let updates = [
        (Method::PUT, &alias, json!({"trunk_direction": "inbound"})),
        (Method::POST, &alias_bare, json!({"recording": true})),
        (
            Method::PATCH,
            &primary_slash,
            json!({"termination_uri": "sip:edge@example.com"}),
        ),
    ];
    for (method, path, body) in updates {
        server.send_json(&account, method, path, &body).await.expect(200);
    }
    let read = server.get(&account, &alias).await.expect(200);
    assert_eq!(read["trunk_direction"], "inbound");
    assert_eq!(read["recording"], true);
    assert_eq!(read["termination_uri"], "sip:edge@example.com");
    assert_eq!(read["status_callback"], "https://example.com/t");

    assert_eq!(server.delete(&account, &alias).await.status, 204);
    server
        .get(&account, &account.path(&format!("/trunks/{trunk_id}")))
        .await
        .expect_error(404, "not_found");
}

#[tokio::test]
async fn a_deleted_trunk_is_gone_for_every_method() {
    let server = Server::start().await;
    let account = server.admin_create_account("trunks").await;
    let kept = create_trunk(&server, &account, &json!({"name": "kept"})).await;
    let doomed = create_trunk(&server, &account, &json!({"name": "doomed"})).await;
    let path = trunk_path(&account, &doomed);

    let deleted = server.delete(&account, &path).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.json, Value::Null, "204 has no body");
    server.get(&account, &path).await.expect_error(404, "not_found");
    server
        .delete(&account, &path)
        .await
        .expect_error(404, "not_found");
    for method in [Method::PUT, Method::POST, Method::PATCH] {
        server
            .send_json(&account, method, &path, &json!({"name": "zombie"}))
            .await
            .expect_error(404, "not_found");
    }
    let listed = server.get(&account, &account.path("/trunks")).await.expect(200);
    assert_eq!(listed["meta"]["total_count"], 1);
    assert_eq!(listed["objects"][0]["trunk_id"], kept["trunk_id"]);
}

#[tokio::test]
async fn an_unknown_or_malformed_trunk_id_answers_404() {
    let server = Server::start().await;
    let account = server.admin_create_account("trunks").await;
    for trunk_id in ["00000000-0000-4000-8000-000000000000", "not-a-uuid", "12345"] {
        let path = account.path(&format!("/trunks/{trunk_id}"));
        server.get(&account, &path).await.expect_error(404, "not_found");
        server
            .send_json(&account, Method::PUT, &path, &json!({"name": "x"}))
            .await
            .expect_error(404, "not_found");
        server
            .delete(&account, &path)
            .await
            .expect_error(404, "not_found");
    }
}

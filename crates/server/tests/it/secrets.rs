//! Signing secrets (PRODUCT.md §2.1, §6): a new account has one; create shows the `whsec_…`
//! value once; the list never shows a value; deleting the last one answers 409; an unknown id
//! answers 404. Another account's secrets are in `auth.rs`.

use reqwest::Method;
use serde_json::Value;

use crate::fixture::{send, Account, Server};
use crate::shapes::{is_uuid, object_keys, sorted_names};

async fn list(server: &Server, account: &Account) -> Value {
    server
        .get(account, &account.path("/signing-secrets"))
        .await
        .expect(200)
}

fn secret_ids(listed: &Value) -> Vec<String> {
    listed["objects"]
        .as_array()
        .expect("objects is an array")
        .iter()
        .map(|object| object["secret_id"].as_str().expect("secret_id").to_owned())
        .collect()
}

/// No list answer may carry a secret value, under any key.
#[track_caller]
fn assert_no_secret_values(listed: &Value) {
    assert!(
        !listed.to_string().contains("whsec_"),
        "a secret value is listed: {listed}"
    );
    for object in listed["objects"].as_array().expect("objects") {
        assert_eq!(
            object_keys(object),
            sorted_names(&["secret_id", "created_at"]),
            "{object}"
        );
    }
}

#[tokio::test]
async fn a_new_account_has_exactly_the_secret_its_creation_showed() {
    let server = Server::start().await;
    let account = server.admin_create_account("secrets").await;
    let listed = list(&server, &account).await;
    assert_eq!(object_keys(&listed), sorted_names(&["objects"]));
    assert_eq!(
        secret_ids(&listed),
        [account.json["signing_secret"]["secret_id"].as_str().expect("id")]
    );
    assert_eq!(
        listed["objects"][0]["created_at"],
        account.json["signing_secret"]["created_at"]
    );
    assert_no_secret_values(&listed);
}

#[tokio::test]
async fn secrets_are_created_shown_once_listed_without_values_and_deleted() {
    let server = Server::start().await;
    let account = server.admin_create_account("secrets").await;
    let first = account.json["signing_secret"]["secret_id"]
        .as_str()
        .expect("id")
        .to_owned();

    let created = send(server.authed(&account, Method::POST, &account.path("/signing-secrets")))
        .await
        .expect(201);
    assert_eq!(
        object_keys(&created),
        sorted_names(&["secret_id", "created_at", "secret"])
    );
    let second = created["secret_id"].as_str().expect("secret_id").to_owned();
    assert!(is_uuid(&second), "{second}");
    let value = created["secret"].as_str().expect("secret");
    assert!(value.starts_with("whsec_") && value.len() > 30, "{value}");
    assert_ne!(Some(value), account.json["signing_secret"]["secret"].as_str());

    let listed = list(&server, &account).await;
    assert_eq!(
        secret_ids(&listed),
        [first.clone(), second.clone()],
        "oldest first"
    );
    assert_no_secret_values(&listed);

    let deleted = server
        .delete(&account, &account.path(&format!("/signing-secrets/{first}")))
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.json);
    assert_eq!(secret_ids(&list(&server, &account).await), [second.as_str()]);
    server
        .delete(&account, &account.path(&format!("/signing-secrets/{first}")))
        .await
        .expect_error(404, "not_found");

    // Through the alias spelling and with a trailing slash too.
    let third = send(server.basic(&account, Method::POST, &account.alias_path("/signing-secrets/")))
        .await
        .expect(201);
    let third = third["secret_id"].as_str().expect("secret_id").to_owned();
    let alias_delete = account.alias_path(&format!("/signing-secrets/{second}/"));
    assert_eq!(server.delete(&account, &alias_delete).await.status, 204);
    assert_eq!(secret_ids(&list(&server, &account).await), [third]);
}

#[tokio::test]
async fn the_last_secret_cannot_be_deleted() {
    let server = Server::start().await;
    let account = server.admin_create_account("secrets").await;
    let only = account.json["signing_secret"]["secret_id"].as_str().expect("id");
    let before = list(&server, &account).await;
    server
        .delete(&account, &account.path(&format!("/signing-secrets/{only}")))
        .await
        .expect_error(409, "conflict");
    let after = list(&server, &account).await;
    assert_eq!(after["objects"], before["objects"]);
}

#[tokio::test]
async fn an_unknown_or_malformed_secret_id_answers_404_and_deletes_nothing() {
    let server = Server::start().await;
    let account = server.admin_create_account("secrets").await;
    send(server.authed(&account, Method::POST, &account.path("/signing-secrets")))
        .await
        .expect(201);
    let before = list(&server, &account).await;
    for secret_id in ["00000000-0000-4000-8000-000000000000", "not-a-uuid", "whsec_abc"] {
        server
            .delete(&account, &account.path(&format!("/signing-secrets/{secret_id}")))
            .await
            .expect_error(404, "not_found");
    }
    assert_eq!(list(&server, &account).await["objects"], before["objects"]);
}

#[tokio::test]
async fn creating_a_secret_refuses_unknown_fields_but_takes_an_empty_body() {
    let server = Server::start().await;
    let account = server.admin_create_account("Fields").await;
    let path = account.path("/signing-secrets");
    let refused = send(
        server
            .authed(&account, Method::POST, &path)
            .header("content-type", "application/json")
            .body(r#"{"name":"x"}"#),
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.json);
    assert!(refused.json["details"].get("name").is_some(), "{}", refused.json);
    let listed = server.get(&account, &path).await.expect(200);
    assert_eq!(
        listed["objects"].as_array().map(Vec::len),
        Some(1),
        "nothing was created"
    );
    send(
        server
            .authed(&account, Method::POST, &path)
            .header("content-type", "application/json")
            .body("{}"),
    )
    .await
    .expect(201);
    send(server.authed(&account, Method::POST, &path))
        .await
        .expect(201);
}

/// Creating a secret takes no fields: no body, `null` or `{}`; any other body is refused as
/// every JSON body is. Found while documenting the operation for the API fuzzer (`.ci/fuzz`):
/// `null`, which the document's optional body allows, was a 400; a body of another content
/// type was read as JSON instead of a 415; one over 1 MiB was a 400, not a 413, when no body
/// deadline reads bodies first.
#[tokio::test]
async fn creating_a_secret_takes_no_body_null_or_an_empty_object_and_nothing_else() {
    let server = Server::start().await;
    let account = server.admin_create_account("secrets").await;
    let path = account.path("/signing-secrets");
    let post = |content_type: Option<&str>, body: Vec<u8>| {
        let mut request = server.authed(&account, Method::POST, &path).body(body);
        if let Some(content_type) = content_type {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type);
        }
        send(request)
    };
    let json = Some("application/json");
    for (content_type, body) in [
        (None, ""),
        (json, ""),
        (json, "null"),
        (json, " {} "),
        (json, "\n"),
    ] {
        let answer = post(content_type, body.into()).await;
        assert_eq!(answer.status, 201, "{content_type:?} {body:?}: {}", answer.json);
    }
    let too_large = format!(r#"{{"x":"{}"}}"#, "a".repeat(1 << 20)).into_bytes();
    for (content_type, body, status, code) in [
        (json, br#"{"name":"x"}"#.to_vec(), 400, "invalid_field"),
        (json, b"[]".to_vec(), 400, "malformed_body"),
        (json, b"{".to_vec(), 400, "malformed_body"),
        (Some("text/plain"), b"{}".to_vec(), 415, "unsupported_media_type"),
        (None, b"{}".to_vec(), 415, "unsupported_media_type"),
        (json, too_large, 413, "payload_too_large"),
    ] {
        post(content_type, body).await.expect_error(status, code);
    }
    // Five created above and the account's first.
    assert_eq!(secret_ids(&list(&server, &account).await).len(), 6);
}

//! The router's own answers: an unknown path is a JSON 404 (`"route not found"`), a known path
//! with a method it does not serve is a JSON 405, both with `api_id` like every answer; a path
//! id that is no text at all is a JSON 404.
//! Alias spellings of known paths are exercised with their resources.

use reqwest::Method;

use crate::fixture::{send, Server};

#[tokio::test]
async fn an_unknown_route_answers_a_json_404() {
    let server = Server::start().await;
    let account = server.admin_create_account("routing").await;
    for path in [
        "/",
        "/nope",
        "/api/v1",
        "/api/v1/nope",
        "/api/v1/accounts",
        &account.path("/nope"),
        &account.path("/application"),
        &account.path("/applications/12345678901234567/nope"),
        &account.alias_path("/Trunk/"),
    ] {
        let answer = send(server.authed(&account, Method::GET, path)).await;
        assert_eq!(answer.status, 404, "GET {path}: {}", answer.json);
        assert_eq!(answer.json["code"], "not_found", "GET {path}");
        assert_eq!(answer.json["error"], "route not found", "GET {path}");
    }
}

#[tokio::test]
async fn a_wrong_method_answers_a_json_405() {
    let server = Server::start().await;
    let account = server.admin_create_account("routing").await;
    let cases = [
        (Method::DELETE, "/healthz".to_owned()),
        (Method::POST, "/readyz".to_owned()),
        (Method::POST, "/api/v1/openapi.json".to_owned()),
        (Method::GET, "/api/v1/admin/accounts".to_owned()),
        (Method::DELETE, account.path("")),
        (Method::DELETE, account.alias_path("/")),
        (Method::PUT, account.path("/applications")),
        (Method::DELETE, account.alias_path("/Application/")),
        (Method::PATCH, account.path("/trunks")),
        (Method::DELETE, account.path("/signing-secrets")),
        (
            Method::GET,
            account.path("/signing-secrets/00000000-0000-4000-8000-000000000000"),
        ),
    ];
    for (method, path) in cases {
        let answer = send(server.authed(&account, method.clone(), &path)).await;
        assert_eq!(answer.status, 405, "{method} {path}: {}", answer.json);
        assert_eq!(answer.json["code"], "method_not_allowed", "{method} {path}");
    }
}

/// A path parameter that is not UTF-8 once percent-decoded is an id no object has: the JSON 404
/// in the error shape, on the operator's routes too (they answered axum's plain-text 400).
#[tokio::test]
async fn a_path_id_that_is_not_utf8_answers_a_json_404() {
    let server = Server::start().await;
    let account = server.admin_create_account("routing").await;
    let operator = [
        (Method::POST, "/api/v1/admin/accounts/%FF/rotate-token".to_owned()),
        (Method::POST, "/api/v1/switch/calls/%FF%FE/events".to_owned()),
    ];
    for (method, path) in operator {
        let request = server
            .operator(method.clone(), &path)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(r#"{"event":"Ring"}"#);
        let answer = send(request).await;
        assert_eq!(answer.status, 404, "{method} {path}: {}", answer.json);
        assert_eq!(answer.json["code"], "not_found", "{method} {path}");
    }
    for (method, suffix) in [
        (Method::GET, "/applications/%FF"),
        (Method::DELETE, "/trunks/%C3%28"),
        (Method::GET, "/calls/%FF/callbacks"),
        (Method::DELETE, "/signing-secrets/%FF"),
    ] {
        let path = account.path(suffix);
        let answer = send(server.authed(&account, method.clone(), &path)).await;
        assert_eq!(answer.status, 404, "{method} {path}: {}", answer.json);
        assert_eq!(answer.json["code"], "not_found", "{method} {path}");
    }
}

//! The OpenAPI document at `GET /api/v1/openapi.json` kept in step with the routes: every
//! operation it lists is routed, every path refuses the methods it does not list, every route
//! the issue requires is in it, and it matches the committed snapshot
//! `crates/api/openapi.snapshot.json` (rewrite it with `UPDATE_SNAPSHOTS=1`), and every operation
//! lists the error answers it can give, with the error schema. `.ci/fuzz` checks the answers
//! themselves against the document.
//!
//! "Routed" means the answer does not come from the router's fallbacks (neither a 404 whose
//! `error` is "route not found" nor a 405) and is not a 5xx. Whether each handler is right is
//! the other modules' business.

use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::{json, Value};

use crate::fixture::{send, send_for_document, Account, Answer, Server};

/// Where the snapshot lives, next to the crate that builds the document.
const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../api/openapi.snapshot.json");

/// The `error` of the router's own 404 (an unknown path, as opposed to an unknown object).
const ROUTE_NOT_FOUND: &str = "route not found";

/// Every operation the issue asks for (PRODUCT.md §2, §2.1, §5, §6), as `(method, path)`.
const REQUIRED: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("post", "/api/v1/admin/accounts"),
    ("post", "/api/v1/admin/accounts/{auth_id}/rotate-token"),
    ("get", "/api/v1/account/{auth_id}"),
    ("post", "/api/v1/account/{auth_id}"),
    ("put", "/api/v1/account/{auth_id}"),
    ("patch", "/api/v1/account/{auth_id}"),
    ("get", "/api/v1/account/{auth_id}/applications"),
    ("post", "/api/v1/account/{auth_id}/applications"),
    ("get", "/api/v1/account/{auth_id}/applications/{app_id}"),
    ("post", "/api/v1/account/{auth_id}/applications/{app_id}"),
    ("put", "/api/v1/account/{auth_id}/applications/{app_id}"),
    ("patch", "/api/v1/account/{auth_id}/applications/{app_id}"),
    ("delete", "/api/v1/account/{auth_id}/applications/{app_id}"),
    ("get", "/api/v1/account/{auth_id}/trunks"),
    ("post", "/api/v1/account/{auth_id}/trunks"),
    ("get", "/api/v1/account/{auth_id}/trunks/{trunk_id}"),
    ("put", "/api/v1/account/{auth_id}/trunks/{trunk_id}"),
    ("post", "/api/v1/account/{auth_id}/trunks/{trunk_id}"),
    ("patch", "/api/v1/account/{auth_id}/trunks/{trunk_id}"),
    ("delete", "/api/v1/account/{auth_id}/trunks/{trunk_id}"),
    ("get", "/api/v1/account/{auth_id}/signing-secrets"),
    ("post", "/api/v1/account/{auth_id}/signing-secrets"),
    ("delete", "/api/v1/account/{auth_id}/signing-secrets/{secret_id}"),
    ("post", "/api/v1/account/{auth_id}/calls"),
    ("get", "/api/v1/account/{auth_id}/calls"),
    ("get", "/api/v1/account/{auth_id}/calls/{call_uuid}"),
    ("delete", "/api/v1/account/{auth_id}/calls/{call_uuid}"),
    ("get", "/api/v1/account/{auth_id}/calls/{call_uuid}/callbacks"),
    ("get", "/api/v1/account/{auth_id}/callbacks"),
    ("post", "/api/v1/account/{auth_id}/callbacks/{event_id}/redeliver"),
    ("get", "/api/v1/account/{auth_id}/callback-plan"),
    ("post", "/api/v1/account/{auth_id}/test-callback"),
    (
        "post",
        "/api/v1/account/{auth_id}/applications/{app_id}/test-callback",
    ),
    (
        "post",
        "/api/v1/account/{auth_id}/trunks/{trunk_id}/test-callback",
    ),
    ("post", "/api/v1/switch/calls"),
    ("post", "/api/v1/switch/calls/{call_uuid}/events"),
    ("post", "/api/v1/switch/events"),
];

/// The HTTP methods an OpenAPI path item may list, in the order they are tried: deletions last,
/// so that they do not remove the objects the other operations use.
const METHODS: [&str; 8] = [
    "get", "head", "options", "trace", "post", "put", "patch", "delete",
];

async fn served_document(server: &Server) -> Value {
    send_for_document(server.request(Method::GET, "/api/v1/openapi.json"))
        .await
        .expect(200)
}

fn paths(document: &Value) -> &serde_json::Map<String, Value> {
    document["paths"].as_object().expect("the document has paths")
}

/// Real objects to put into the documented paths.
struct Objects {
    account: Account,
    /// The account whose token the operator rotates, so `account` keeps working.
    rotated: Account,
    app_id: String,
    trunk_id: String,
    secret_id: String,
    call_uuid: String,
    event_id: String,
}

async fn objects(server: &Server) -> Objects {
    let account = server.admin_create_account("openapi").await;
    let rotated = server.admin_create_account("rotated").await;
    let app = server
        .send_json(
            &account,
            Method::POST,
            &account.path("/applications"),
            &json!({"name": "a"}),
        )
        .await
        .expect(201);
    let trunk = server
        .send_json(
            &account,
            Method::POST,
            &account.path("/trunks"),
            &json!({"name": "t"}),
        )
        .await
        .expect(201);
    let secret = send(server.authed(&account, Method::POST, &account.path("/signing-secrets")))
        .await
        .expect(201);
    let call = server
        .send_json(
            &account,
            Method::POST,
            &account.path("/calls"),
            &json!({"from": "+14155550100", "to": "+14155550199"}),
        )
        .await
        .expect(201);
    let id = |value: &Value, key: &str| value[key].as_str().expect("id").to_owned();
    let log = server
        .get(
            &account,
            &account.path(&format!("/calls/{}/callbacks", id(&call, "call_uuid"))),
        )
        .await
        .expect(200);
    Objects {
        event_id: id(&log["objects"][0], "event_id"),
        app_id: id(&app, "app_id"),
        trunk_id: id(&trunk, "trunk_id"),
        secret_id: id(&secret, "secret_id"),
        call_uuid: id(&call, "call_uuid"),
        account,
        rotated,
    }
}

/// Sends `method template` with real ids and the credentials the path needs.
async fn call(server: &Server, objects: &Objects, method: &str, template: &str) -> Answer {
    let operator = template.starts_with("/api/v1/admin/") || template.starts_with("/api/v1/switch/");
    let auth_id = if operator {
        &objects.rotated.auth_id
    } else {
        &objects.account.auth_id
    };
    let path = template
        .replace("{auth_id}", auth_id)
        .replace("{app_id}", &objects.app_id)
        .replace("{trunk_id}", &objects.trunk_id)
        .replace("{secret_id}", &objects.secret_id)
        .replace("{call_uuid}", &objects.call_uuid)
        .replace("{event_id}", &objects.event_id);
    assert!(
        !path.contains('{'),
        "a path parameter this test does not know: {template}"
    );
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("a method");
    let mut request = if operator {
        server.operator(method.clone(), &path)
    } else {
        server.authed(&objects.account, method.clone(), &path)
    };
    if [Method::POST, Method::PUT, Method::PATCH].contains(&method) {
        request = request.header(CONTENT_TYPE, "application/json").body("{}");
    }
    if template == "/metrics" {
        // Prometheus text, which cannot carry `api_id` in its body.
        return send_for_document(request).await;
    }
    send(request).await
}

fn is_router_fallback(answer: &Answer) -> bool {
    answer.status == 405 || (answer.status == 404 && answer.json["error"] == ROUTE_NOT_FOUND)
}

#[tokio::test]
async fn the_document_is_openapi_3_and_needs_no_credentials() {
    let server = Server::start().await;
    let document = served_document(&server).await;
    let version = document["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3."), "openapi {version}");
    assert!(document["info"]["title"].is_string());
    assert!(document["info"]["version"].is_string());
    assert!(!paths(&document).is_empty());
    let schemes = &document["components"]["securitySchemes"];
    for scheme in ["auth_id", "auth_token", "basic", "operator"] {
        assert!(schemes[scheme].is_object(), "security scheme {scheme}: {schemes}");
    }
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let server = Server::start().await;
    let document = served_document(&server).await;
    let objects = objects(&server).await;
    let mut failures = Vec::new();
    let mut n_operations = 0;
    for method in METHODS {
        for (template, item) in paths(&document) {
            if item.get(method).is_none() {
                continue;
            }
            n_operations += 1;
            let answer = call(&server, &objects, method, template).await;
            if is_router_fallback(&answer) || answer.status >= 500 {
                failures.push(format!("{method} {template}: {} {}", answer.status, answer.json));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "documented operations that are not routed (router 404/405) or fail (5xx):\n{}",
        failures.join("\n")
    );
    assert!(
        n_operations >= REQUIRED.len(),
        "only {n_operations} operations documented"
    );
}

#[tokio::test]
async fn every_documented_path_refuses_the_methods_it_does_not_list() {
    let server = Server::start().await;
    let document = served_document(&server).await;
    let objects = objects(&server).await;
    let mut failures = Vec::new();
    for (template, item) in paths(&document) {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                continue;
            }
            let answer = call(&server, &objects, method, template).await;
            if answer.status != 405 || answer.json["code"] != "method_not_allowed" {
                failures.push(format!("{method} {template}: {} {}", answer.status, answer.json));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "routed but not documented:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn every_route_the_issue_requires_is_documented() {
    let server = Server::start().await;
    let document = served_document(&server).await;
    let missing: Vec<String> = REQUIRED
        .iter()
        .filter(|(method, path)| document["paths"][*path].get(*method).is_none())
        .map(|(method, path)| format!("{method} {path}"))
        .collect();
    assert!(
        missing.is_empty(),
        "not in the OpenAPI document:\n{}",
        missing.join("\n")
    );
}

#[tokio::test]
async fn the_served_document_matches_the_committed_snapshot() {
    let server = Server::start().await;
    let document = served_document(&server).await;
    if std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        let text = serde_json::to_string_pretty(&document).expect("encoding the document") + "\n";
        std::fs::write(SNAPSHOT, text).expect("writing the snapshot");
        return;
    }
    let text = std::fs::read_to_string(SNAPSHOT).unwrap_or_else(|e| {
        panic!(
            "cannot read {SNAPSHOT} ({e}); create it with UPDATE_SNAPSHOTS=1 cargo test -p server --test it"
        )
    });
    let snapshot: Value = serde_json::from_str(&text).expect("the snapshot is JSON");
    if let Some(difference) = first_difference(&snapshot, &document, "") {
        panic!(
            "the served OpenAPI document differs from {SNAPSHOT} at {difference}; if the change is \
             intended, rerun with UPDATE_SNAPSHOTS=1 and commit the snapshot"
        );
    }
}

/// Where two JSON values first differ, as a JSON-pointer-like path with both sides.
fn first_difference(expected: &Value, actual: &Value, at: &str) -> Option<String> {
    match (expected, actual) {
        (Value::Object(want), Value::Object(got)) => {
            let keys = want.keys().chain(got.keys().filter(|k| !want.contains_key(*k)));
            for key in keys {
                let inner = format!("{at}/{key}");
                match (want.get(key), got.get(key)) {
                    (Some(w), Some(g)) => {
                        if let Some(found) = first_difference(w, g, &inner) {
                            return Some(found);
                        }
                    }
                    (Some(_), None) => return Some(format!("{inner}: missing from the served document")),
                    (None, _) => return Some(format!("{inner}: not in the snapshot")),
                }
            }
            None
        }
        (Value::Array(want), Value::Array(got)) if want.len() == got.len() => want
            .iter()
            .zip(got)
            .enumerate()
            .find_map(|(i, (w, g))| first_difference(w, g, &format!("{at}/{i}"))),
        _ if expected == actual => None,
        _ => Some(format!("{at}: snapshot {expected}, served {actual}")),
    }
}

/// A response of an operation, with a `$ref` to `components.responses` resolved.
fn resolve<'a>(document: &'a Value, response: &'a Value) -> &'a Value {
    match response["$ref"].as_str() {
        Some(reference) => {
            let name = reference
                .strip_prefix("#/components/responses/")
                .unwrap_or_else(|| panic!("a response reference outside components.responses: {reference}"));
            &document["components"]["responses"][name]
        }
        None => response,
    }
}

/// Every error an operation lists has the error schema, and the errors PRODUCT.md §2 says any
/// operation of its kind can answer are listed: 401, 429 and 503 (both with `Retry-After`)
/// where it takes credentials (the rate limits; the credentials are checked in the database),
/// 404 where its path has a parameter, 400, 408, 413 and 415 where it takes a JSON body, 400
/// where it takes query parameters. No operation lists a 5xx but the database's 503.
#[tokio::test]
async fn every_operation_lists_the_errors_it_can_answer_with_the_error_schema() {
    let server = Server::start().await;
    let document = served_document(&server).await;
    let mut failures = Vec::new();
    for (template, item) in paths(&document) {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let responses = operation["responses"].as_object().expect("responses");
            let secured = operation["security"].as_array().is_some_and(|s| !s.is_empty());
            let json_body = operation["requestBody"]["content"]
                .get("application/json")
                .is_some();
            let query = operation["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
            let mut expected = Vec::new();
            if secured {
                expected.extend(["401", "429", "503"]);
            }
            if template.contains('{') {
                expected.push("404");
            }
            if json_body {
                expected.extend(["400", "408", "413", "415"]);
            }
            if query {
                expected.push("400");
            }
            for status in expected {
                if !responses.contains_key(status) {
                    failures.push(format!("{method} {template}: no {status}"));
                }
            }
            for (status, response) in responses {
                let code: u16 = status.parse().expect("a status code");
                let response = resolve(&document, response);
                if code >= 500 && !(code == 503 && secured) && template != "/readyz" {
                    failures.push(format!("{method} {template}: documents {status}"));
                }
                if code < 400 || template == "/readyz" {
                    continue;
                }
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                if schema != "#/components/schemas/ErrorSchema" {
                    failures.push(format!(
                        "{method} {template}: {status} is not the error schema: {response}"
                    ));
                }
                let retry_after = response["headers"].get("Retry-After").is_some();
                if (code == 429 || code == 503) != retry_after {
                    failures.push(format!(
                        "{method} {template}: {status} and Retry-After: {response}"
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "operations whose errors are not documented as they are answered:\n{}",
        failures.join("\n")
    );
}

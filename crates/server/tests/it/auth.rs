//! Authentication and isolation (PRODUCT.md §2, §6): `X-Auth-ID`/`X-Auth-Token` and HTTP Basic
//! both work; missing, unknown or wrong credentials answer 401; another account's `auth_id` in
//! the path or another account's resource id answers 404 — and leaves that account's data as
//! it was.
//!
//! The operator token is in `accounts.rs`.

use reqwest::header::AUTHORIZATION;
use reqwest::Method;
use serde_json::{json, Value};

use crate::fixture::{send, Account, Answer, Server, ADMIN_TOKEN};
use crate::shapes::without_api_id;

/// Everything another account could see of `account`, read with its own credentials.
async fn everything_of(server: &Server, account: &Account) -> Value {
    let mut seen = json!({});
    for (key, suffix) in [
        ("account", ""),
        ("applications", "/applications?limit=100"),
        ("trunks", "/trunks?limit=100"),
        ("signing_secrets", "/signing-secrets"),
    ] {
        seen[key] = without_api_id(&server.get(account, &account.path(suffix)).await.expect(200));
    }
    seen
}

/// An account with one application, one trunk and two signing secrets (so that a secret
/// deletion that wrongly went through would succeed instead of hitting the last-secret 409).
struct Victim {
    account: Account,
    app_id: String,
    trunk_id: String,
    secret_id: String,
}

async fn victim(server: &Server) -> Victim {
    let account = server.admin_create_account("victim").await;
    let app = server
        .send_json(
            &account,
            Method::POST,
            &account.path("/applications"),
            &json!({"name": "private", "callback_url": "https://victim.example.com/cb"}),
        )
        .await
        .expect(201);
    let trunk = server
        .send_json(
            &account,
            Method::POST,
            &account.path("/trunks"),
            &json!({"name": "private", "status_callback": "https://victim.example.com/t"}),
        )
        .await
        .expect(201);
    send(server.authed(&account, Method::POST, &account.path("/signing-secrets")))
        .await
        .expect(201);
    Victim {
        app_id: app["app_id"].as_str().expect("app_id").to_owned(),
        trunk_id: trunk["trunk_id"].as_str().expect("trunk_id").to_owned(),
        secret_id: account.json["signing_secret"]["secret_id"]
            .as_str()
            .expect("secret_id")
            .to_owned(),
        account,
    }
}

/// Every request `intruder` could try against `victim`'s objects, as `(method, path, body)`.
fn attacks(intruder: &Account, victim: &Victim) -> Vec<(Method, String, Option<Value>)> {
    let own = |suffix: &str| intruder.path(suffix);
    let theirs = |suffix: &str| victim.account.path(suffix);
    let alias_theirs = |suffix: &str| victim.account.alias_path(suffix);
    let app = format!("/applications/{}", victim.app_id);
    let trunk = format!("/trunks/{}", victim.trunk_id);
    let secret = format!("/signing-secrets/{}", victim.secret_id);
    let change = Some(json!({"name": "hijacked"}));
    let hook = Some(json!({"callback_url": "https://attacker.example.com/"}));
    let mut list = Vec::new();
    // Their ids under my own account.
    for path in [own(&app), own(&format!("/Application/{}/", victim.app_id))] {
        list.push((Method::GET, path.clone(), None));
        for method in [Method::POST, Method::PUT, Method::PATCH] {
            list.push((method, path.clone(), hook.clone()));
        }
        list.push((Method::DELETE, path, None));
    }
    list.push((Method::GET, own(&trunk), None));
    for method in [Method::PUT, Method::POST, Method::PATCH] {
        list.push((method, own(&trunk), change.clone()));
    }
    list.push((Method::DELETE, own(&trunk), None));
    list.push((Method::DELETE, own(&secret), None));
    // Their auth_id in the path, with my credentials.
    for path in [theirs(""), alias_theirs("/")] {
        list.push((Method::GET, path.clone(), None));
        for method in [Method::POST, Method::PUT, Method::PATCH] {
            list.push((method, path.clone(), change.clone()));
        }
    }
    for collection in ["/applications", "/trunks"] {
        list.push((Method::GET, theirs(collection), None));
        list.push((Method::POST, theirs(collection), change.clone()));
    }
    list.push((Method::GET, alias_theirs("/Application/"), None));
    list.push((Method::POST, alias_theirs("/Application/"), change.clone()));
    for path in [
        theirs(&app),
        alias_theirs(&format!("/Application/{}/", victim.app_id)),
        theirs(&trunk),
    ] {
        list.push((Method::GET, path.clone(), None));
        list.push((Method::PATCH, path.clone(), change.clone()));
        list.push((Method::DELETE, path, None));
    }
    list.push((Method::GET, theirs("/signing-secrets"), None));
    list.push((Method::POST, theirs("/signing-secrets"), None));
    list.push((Method::DELETE, theirs(&secret), None));
    list
}

/// Runs every attack with both credential forms; each must answer 404 and change nothing.
async fn check_isolation(server: &Server, intruder: &Account, victim: &Victim) {
    let before = everything_of(server, &victim.account).await;
    let mut failures = Vec::new();
    for (method, path, body) in attacks(intruder, victim) {
        for basic in [false, true] {
            let request = if basic {
                server.basic(intruder, method.clone(), &path)
            } else {
                server.authed(intruder, method.clone(), &path)
            };
            let request = match &body {
                Some(body) => request.json(body),
                None => request,
            };
            let answer: Answer = send(request).await;
            if answer.status != 404 || answer.json["code"] != "not_found" {
                failures.push(format!(
                    "{method} {path} (basic: {basic}): {} {}",
                    answer.status, answer.json
                ));
            }
        }
    }
    let after = everything_of(server, &victim.account).await;
    assert!(
        failures.is_empty(),
        "reached another account:\n{}",
        failures.join("\n")
    );
    assert_eq!(after, before, "the other account's data changed");
}

#[tokio::test]
async fn both_credential_forms_work_for_reads_and_writes() {
    let server = Server::start().await;
    let account = server.admin_create_account("auth").await;
    let by_headers = send(server.authed(&account, Method::GET, &account.path("")))
        .await
        .expect(200);
    let by_basic = send(server.basic(&account, Method::GET, &account.path("")))
        .await
        .expect(200);
    assert_eq!(without_api_id(&by_headers), without_api_id(&by_basic));

    let created = send(
        server
            .basic(&account, Method::POST, &account.alias_path("/Application/"))
            .json(&json!({"name": "by basic"})),
    )
    .await
    .expect(201);
    let listed = server
        .get(&account, &account.path("/applications"))
        .await
        .expect(200);
    assert_eq!(listed["objects"][0]["app_id"], created["app_id"]);
}

#[tokio::test]
async fn missing_unknown_or_wrong_credentials_answer_401_and_change_nothing() {
    let server = Server::start().await;
    let account = server.admin_create_account("auth").await;
    let other = server.admin_create_account("other").await;
    let path = account.path("");
    let wrong = account.with_token("0123456789012345678901234567890123456789");
    let unknown = Account {
        auth_id: "MA_ZZZZZZZZ".to_owned(),
        ..account.clone()
    };
    let malformed = Account {
        auth_id: "nobody".to_owned(),
        ..account.clone()
    };
    let attempts = [
        ("no credentials", server.request(Method::GET, &path)),
        (
            "X-Auth-ID only",
            server
                .request(Method::GET, &path)
                .header("X-Auth-ID", &account.auth_id),
        ),
        (
            "X-Auth-Token only",
            server
                .request(Method::GET, &path)
                .header("X-Auth-Token", &account.auth_token),
        ),
        ("wrong token", server.authed(&wrong, Method::GET, &path)),
        (
            "another account's token",
            server.authed(&account.with_token(&other.auth_token), Method::GET, &path),
        ),
        (
            "empty token",
            server.authed(&account.with_token(""), Method::GET, &path),
        ),
        ("unknown auth id", server.authed(&unknown, Method::GET, &path)),
        ("malformed auth id", server.authed(&malformed, Method::GET, &path)),
        ("Basic wrong token", server.basic(&wrong, Method::GET, &path)),
        (
            "Basic unknown auth id",
            server.basic(&unknown, Method::GET, &path),
        ),
        (
            "Basic not base64",
            server
                .request(Method::GET, &path)
                .header(AUTHORIZATION, "Basic %%%"),
        ),
        (
            "Basic without a colon",
            server
                .request(Method::GET, &path)
                .header(AUTHORIZATION, "Basic TUFfWFhYWFhYWFg="),
        ),
        (
            "operator token",
            server.request(Method::GET, &path).bearer_auth(ADMIN_TOKEN),
        ),
    ];
    for (label, request) in attempts {
        let answer = send(request).await;
        assert_eq!(answer.status, 401, "{label}: {}", answer.json);
        assert_eq!(answer.json["code"], "unauthorized", "{label}");
    }

    let app = server
        .send_json(
            &account,
            Method::POST,
            &account.path("/applications"),
            &json!({"name": "kept"}),
        )
        .await
        .expect(201);
    let app_path = account.path(&format!("/applications/{}", app["app_id"].as_str().expect("id")));
    let before = everything_of(&server, &account).await;
    let writes = [
        (Method::PATCH, app_path.clone()),
        (Method::DELETE, app_path),
        (Method::POST, account.path("/applications")),
        (Method::POST, account.path("/trunks")),
        (Method::PATCH, account.path("")),
        (Method::POST, account.path("/signing-secrets")),
    ];
    for (method, path) in writes {
        let answer = send(
            server
                .authed(&wrong, method.clone(), &path)
                .json(&json!({"name": "intruder"})),
        )
        .await;
        answer.expect_error(401, "unauthorized");
        let answer = send(
            server
                .request(method.clone(), &path)
                .json(&json!({"name": "intruder"})),
        )
        .await;
        answer.expect_error(401, "unauthorized");
    }
    assert_eq!(everything_of(&server, &account).await, before);
}

#[tokio::test]
async fn an_account_cannot_reach_another_accounts_objects_or_auth_id() {
    let server = Server::start().await;
    let intruder = server.admin_create_account("intruder").await;
    let victim = victim(&server).await;
    check_isolation(&server, &intruder, &victim).await;

    let own_apps = server
        .get(&intruder, &intruder.path("/applications"))
        .await
        .expect(200);
    assert_eq!(own_apps["meta"]["total_count"], 0);
    let own_trunks = server.get(&intruder, &intruder.path("/trunks")).await.expect(200);
    assert_eq!(own_trunks["meta"]["total_count"], 0);
}

#[tokio::test]
async fn a_main_account_does_not_reach_its_sub_accounts_objects_nor_the_other_way_round() {
    let server = Server::start().await;
    let main_victim = victim(&server).await;
    let main = main_victim.account.clone();
    let sub = server.admin_create_sub_account("sub", &main).await;
    let sub_as_victim = Victim {
        app_id: server
            .send_json(
                &sub,
                Method::POST,
                &sub.path("/applications"),
                &json!({"name": "sub app"}),
            )
            .await
            .expect(201)["app_id"]
            .as_str()
            .expect("app_id")
            .to_owned(),
        trunk_id: server
            .send_json(
                &sub,
                Method::POST,
                &sub.path("/trunks"),
                &json!({"name": "sub trunk"}),
            )
            .await
            .expect(201)["trunk_id"]
            .as_str()
            .expect("trunk_id")
            .to_owned(),
        secret_id: sub.json["signing_secret"]["secret_id"]
            .as_str()
            .expect("secret_id")
            .to_owned(),
        account: sub.clone(),
    };
    send(server.authed(&sub, Method::POST, &sub.path("/signing-secrets")))
        .await
        .expect(201);
    check_isolation(&server, &main, &sub_as_victim).await;
    check_isolation(&server, &sub, &main_victim).await;
}

#[tokio::test]
async fn valid_credentials_with_an_unknown_auth_id_in_the_path_answer_404() {
    let server = Server::start().await;
    let account = server.admin_create_account("auth").await;
    for path in [
        "/api/v1/account/MA_ZZZZZZZZ",
        "/api/v1/account/MA_ZZZZZZZZ/applications",
        "/api/v1/Account/SA_ZZZZZZZZ/trunks/",
        "/api/v1/account/nonsense/signing-secrets",
    ] {
        server.get(&account, path).await.expect_error(404, "not_found");
    }
}

#[tokio::test]
async fn an_unknown_auth_id_and_a_wrong_token_get_the_same_answer() {
    let server = Server::start().await;
    let account = server.admin_create_account("Probe").await;
    let unknown = Account {
        auth_id: "MA_ZZZZZZZZ".to_owned(),
        ..account.clone()
    };
    let path = account.path("");
    let wrong = send(server.authed(&account.with_token("not-the-token"), Method::GET, &path)).await;
    let missing = send(server.authed(&unknown, Method::GET, &unknown.path(""))).await;
    assert_eq!((wrong.status, missing.status), (401, 401));
    assert_eq!(
        wrong.json["error"], missing.json["error"],
        "the message must not tell them apart"
    );
}

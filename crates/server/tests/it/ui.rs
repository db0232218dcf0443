//! The dashboard's security rules over plain HTTP (its pages in a browser are
//! `tests/browser`): nothing is shown before sign-in, the session cookie's flags, CSRF on every
//! POST, sign-out, a rotated token ends sessions, another account's ids answer 404, and the
//! same validation messages as the API.

use std::time::Duration;

use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::fixture::{send, Account, Server};

/// A client that does not follow redirects (to see them) and keeps no cookies (each request
/// says which it sends).
// clippy.toml keeps client construction in the sender; this client only calls the server
// under test.
#[allow(clippy::disallowed_methods)]
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("building the HTTP client")
}

/// A browser's view of one session: its cookies and the CSRF token of its pages.
struct Visitor {
    client: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

/// The `name=value` of each `Set-Cookie`, and the whole header lines.
fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("ASCII cookie").to_owned())
        .collect()
}

fn hidden_csrf(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[start..].split('"').next().expect("a value").to_owned()
}

impl Visitor {
    fn new(server: &Server) -> Visitor {
        Visitor {
            client: client(),
            base: server.base_url().to_owned(),
            cookies: Vec::new(),
        }
    }

    fn keep(&mut self, response: &reqwest::Response) {
        for line in set_cookies(response) {
            let pair = line.split(';').next().expect("name=value");
            let (name, value) = pair.split_once('=').expect("name=value");
            self.cookies.retain(|(n, _)| n != name);
            if !value.is_empty() {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn get(&mut self, path: &str) -> (StatusCode, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .expect("GET");
        self.keep(&response);
        let status = response.status();
        (status, response.text().await.expect("body"))
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .expect("POST");
        self.keep(&response);
        response
    }

    /// Signs in through the form and returns the CSRF token of the session's pages.
    async fn sign_in(&mut self, account: &Account) -> String {
        let (status, page) = self.get("/ui/login").await;
        assert_eq!(status, StatusCode::OK);
        let csrf = hidden_csrf(&page);
        let response = self
            .post(
                "/ui/login",
                &[
                    ("csrf", &csrf),
                    ("next", "/ui/calls"),
                    ("auth_id", &account.auth_id),
                    ("auth_token", &account.auth_token),
                ],
            )
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let (status, page) = self.get("/ui/calls").await;
        assert_eq!(status, StatusCode::OK, "{page}");
        hidden_csrf(&page)
    }
}

async fn make_call(server: &Server, account: &Account) -> String {
    let answer = send(
        server
            .authed(account, Method::POST, &account.path("/calls/"))
            .json(&json!({ "from": "+14155551234", "to": "+14155550100" })),
    )
    .await
    .expect(201);
    answer["call_uuid"].as_str().expect("call_uuid").to_owned()
}

#[tokio::test]
async fn nothing_is_shown_before_sign_in() {
    let server = Server::start_with(&["--dev"]).await;
    let account = server.admin_create_account("ui-anonymous").await;
    let call = make_call(&server, &account).await;
    let mut visitor = Visitor::new(&server);
    for path in [
        "/ui/",
        "/ui/calls",
        &format!("/ui/calls/{call}"),
        "/ui/callbacks?status=failed",
        "/ui/config",
        "/ui/health",
        "/ui/secrets",
    ] {
        let response = visitor
            .client
            .get(format!("{}{path}", server.base_url()))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        let location = response.headers()["location"].to_str().expect("ASCII");
        assert!(location.starts_with("/ui/login?next="), "{path} → {location}");
        let body = response.text().await.expect("body");
        assert!(!body.contains(&call), "{path} shows nothing");
    }
    // A forged cookie is no session either.
    visitor.cookies.push((
        "hookline_session".into(),
        "TUFfQUJDREVGR0h8OTk5OTk5OTk5OXxBQUFB.AAAA".into(),
    ));
    let (status, _) = visitor.get("/ui/calls").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_session_cookie_is_http_only_strict_and_secure_behind_https() {
    let server = Server::start_with(&["--dev"]).await;
    let account = server.admin_create_account("ui-cookie").await;
    for (proto, secure) in [(None, false), (Some("https"), true)] {
        let mut visitor = Visitor::new(&server);
        let (_, page) = visitor.get("/ui/login").await;
        let csrf = hidden_csrf(&page);
        let mut request = visitor
            .client
            .post(format!("{}/ui/login", server.base_url()))
            .header(COOKIE, visitor.cookie_header())
            .form(&[
                ("csrf", csrf.as_str()),
                ("auth_id", &account.auth_id),
                ("auth_token", &account.auth_token),
            ]);
        if let Some(proto) = proto {
            request = request.header("x-forwarded-proto", proto);
        }
        let response = request.send().await.expect("POST");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let session = set_cookies(&response)
            .into_iter()
            .find(|c| c.starts_with("hookline_session="))
            .expect("a session cookie");
        assert!(session.contains("; HttpOnly"), "{session}");
        assert!(session.contains("; SameSite=Strict"), "{session}");
        assert!(session.contains("; Path=/ui"), "{session}");
        assert_eq!(session.contains("; Secure"), secure, "{session}");
        assert!(
            !session.contains(&account.auth_token),
            "the token is not in the cookie"
        );
    }
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_refused_and_changes_nothing() {
    let server = Server::start_with(&["--dev"]).await;
    let account = server.admin_create_account("ui-csrf").await;
    let mut visitor = Visitor::new(&server);
    let csrf = visitor.sign_in(&account).await;
    let before = server
        .get(&account, &account.path("/signing-secrets"))
        .await
        .expect(200);
    for form in [vec![], vec![("csrf", "forged")]] {
        let response = visitor.post("/ui/secrets", &form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let body = response.text().await.expect("body");
        assert!(body.contains("CSRF"), "{body}");
    }
    let after = server
        .get(&account, &account.path("/signing-secrets"))
        .await
        .expect(200);
    assert_eq!(before["objects"], after["objects"], "no secret was created");
    // Sign-out needs the token too; with it the session ends.
    let response = visitor.post("/ui/logout", &[]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = visitor.post("/ui/logout", &[("csrf", &csrf)]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (status, _) = visitor.get("/ui/calls").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "signed out");
    // The sign-in form has its own token: a foreign page cannot sign a browser in.
    let mut stranger = Visitor::new(&server);
    let response = stranger
        .post(
            "/ui/login",
            &[("auth_id", &account.auth_id), ("auth_token", &account.auth_token)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(!set_cookies(&response)
        .iter()
        .any(|c| c.starts_with("hookline_session=") && !c.starts_with("hookline_session=;")));
}

#[tokio::test]
async fn wrong_credentials_are_refused_with_the_apis_message() {
    let server = Server::start_with(&["--dev"]).await;
    let account = server.admin_create_account("ui-wrong").await;
    let mut visitor = Visitor::new(&server);
    let (_, page) = visitor.get("/ui/login").await;
    let csrf = hidden_csrf(&page);
    let response = visitor
        .post(
            "/ui/login",
            &[
                ("csrf", &csrf),
                ("auth_id", &account.auth_id),
                ("auth_token", "wrong"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = response.text().await.expect("body");
    assert!(
        body.contains("invalid credentials: check the auth id and auth token"),
        "{body}"
    );
    let (status, _) = visitor.get("/ui/calls").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn rotating_the_token_ends_the_accounts_sessions() {
    let server = Server::start_with(&["--dev"]).await;
    let account = server.admin_create_account("ui-rotate").await;
    let mut visitor = Visitor::new(&server);
    visitor.sign_in(&account).await;
    let rotate = format!("/api/v1/admin/accounts/{}/rotate-token", account.auth_id);
    send(server.operator(Method::POST, &rotate)).await.expect(200);
    let (status, _) = visitor.get("/ui/calls").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the old session is over");
}

#[tokio::test]
async fn another_accounts_ids_answer_not_found_never_forbidden() {
    let server = Server::start_with(&["--dev"]).await;
    let ours = server.admin_create_account("ui-ours").await;
    let theirs = server.admin_create_account("ui-theirs").await;
    let their_call = make_call(&server, &theirs).await;
    let their_app = send(
        server
            .authed(&theirs, Method::POST, &theirs.path("/applications/"))
            .json(&json!({ "name": "theirs" })),
    )
    .await
    .expect(201);
    let their_app = their_app["app_id"].as_str().expect("app_id");
    let mut visitor = Visitor::new(&server);
    visitor.sign_in(&ours).await;
    for path in [
        format!("/ui/calls/{their_call}"),
        "/ui/calls/not-a-uuid".to_owned(),
        format!("/ui/config/applications/{their_app}"),
    ] {
        let (status, body) = visitor.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            !body.contains("+14155550100") && !body.contains("theirs"),
            "{path}: {body}"
        );
    }
}

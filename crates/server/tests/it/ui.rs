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
    /// Submits the sign-in form (with its token) as a person would, and returns the answer.
    async fn try_sign_in(&mut self, auth_id: &str, auth_token: &str) -> reqwest::Response {
        let (_, page) = self.get("/ui/login").await;
        let csrf = hidden_csrf(&page);
        self.post(
            "/ui/login",
            &[("csrf", &csrf), ("auth_id", auth_id), ("auth_token", auth_token)],
        )
        .await
    }

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
    let response = visitor.try_sign_in(&account.auth_id, "wrong").await;
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
async fn failed_sign_ins_do_not_spend_the_accounts_api_limit() {
    let server = Server::start_with(&["--dev", "--api-rate-limit", "0.01", "--api-rate-burst", "2"]).await;
    let account = server.admin_create_account("ui-lockout").await;
    let mut visitor = Visitor::new(&server);
    // Someone who knows only the auth id tries, again and again.
    for _ in 0..5 {
        let response = visitor.try_sign_in(&account.auth_id, "wrong").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // The account's own clients still have their whole burst.
    for _ in 0..2 {
        server.get(&account, &account.path("/")).await.expect(200);
    }
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
        "/ui/no-such-page".to_owned(),
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

#[tokio::test]
async fn a_form_value_that_is_not_utf8_is_refused_and_saves_nothing() {
    let server = Server::start().await;
    let account = server.admin_create_account("ui-utf8").await;
    let mut visitor = Visitor::new(&server);
    let csrf = visitor.sign_in(&account).await;
    let body = format!("csrf={csrf}&name=%ff%fe&timezone=UTC&default_callback_method=POST");
    let response = visitor
        .client
        .post(format!("{}/ui/config/account", visitor.base))
        .header(COOKIE, visitor.cookie_header())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let stored = server.get(&account, &account.path("")).await.expect(200);
    assert_eq!(stored["name"], "ui-utf8");
}

#[tokio::test]
async fn a_sub_account_sees_only_its_own_calls() {
    let server = Server::start_with(&["--dev"]).await;
    let parent = server.admin_create_account("ui-parent").await;
    let child = server.admin_create_sub_account("ui-child", &parent).await;
    let parents_call = make_call(&server, &parent).await;
    let childs_call = make_call(&server, &child).await;
    let mut visitor = Visitor::new(&server);
    visitor.sign_in(&child).await;
    let (status, page) = visitor.get("/ui/calls").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(&childs_call) && !page.contains(&parents_call),
        "{page}"
    );
    let (status, _) = visitor.get(&format!("/ui/calls/{parents_call}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_refused_account_default_shows_the_apis_message_and_saves_nothing() {
    let server = Server::start().await;
    let account = server.admin_create_account("ui-refused").await;
    let bad = "http://127.0.0.1/not-https";
    let api = send(
        server
            .authed(&account, Method::POST, &account.path(""))
            .json(&json!({ "default_callback_url": bad })),
    )
    .await
    .expect_error(400, "invalid_field");
    let message = api["default_callback_url"].as_str().expect("a message");
    let mut visitor = Visitor::new(&server);
    let csrf = visitor.sign_in(&account).await;
    let response = visitor
        .post(
            "/ui/config/account",
            &[
                ("csrf", csrf.as_str()),
                ("name", "ui-refused"),
                ("timezone", "Mars/Olympus"),
                ("default_callback_url", bad),
                ("default_callback_method", "POST"),
                ("default_callback_events", "Ring, Rung"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let page = response.text().await.expect("body");
    // maud escapes the text as HTML; the API's message has no characters it changes here.
    assert!(page.contains(message), "{message} in the page");
    for field in ["default_callback_url", "timezone", "default_callback_events"] {
        assert!(
            page.contains(&format!("id=\"f-{field}-error\"")),
            "{field} is marked"
        );
    }
    let stored = server.get(&account, &account.path("")).await.expect(200);
    assert_eq!(stored["default_callback_url"], serde_json::Value::Null);
    assert_eq!(stored["timezone"], "UTC");
}

#[tokio::test]
async fn endpoint_health_shows_the_breaker_of_a_failing_endpoint() {
    let receiver = crate::receiver::Receiver::start().await;
    receiver.on(
        "/down",
        crate::receiver::Script::always(crate::receiver::Reply::status(503)),
    );
    let server = Server::start_with(&[
        "--dev",
        "--retry-base-ms",
        "10",
        "--retry-max",
        "3",
        "--retry-jitter",
        "0",
        "--breaker-threshold",
        "2",
        "--breaker-pause-ms",
        "60000",
        "--sim-ring-ms",
        "20",
        "--sim-talk-ms",
        "40",
    ])
    .await;
    let account = server.admin_create_account("ui-health").await;
    send(
        server
            .authed(&account, Method::POST, &account.path("/calls/"))
            .json(
                &json!({ "from": "+14155551234", "to": "+14155550100", "status_url": receiver.url("/down") }),
            ),
    )
    .await
    .expect(201);
    receiver.wait_for("/down", 2, Duration::from_secs(15)).await;
    let mut visitor = Visitor::new(&server);
    visitor.sign_in(&account).await;
    let origin = receiver.url("").trim_end_matches('/').to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, page) = visitor.get("/ui/health").await;
        assert_eq!(status, StatusCode::OK);
        let row = page
            .split(&format!("data-host=\"{origin}\""))
            .nth(1)
            .map(|rest| rest.split("</tr>").next().unwrap_or_default().to_owned());
        // One failing path pauses that path (its endpoint breaker), not the host.
        if let Some(row) = row.filter(|row| row.contains("1 path paused")) {
            assert!(row.contains("0.0 %"), "every attempt failed: {row}");
            let depth = page.split("id=\"queue-depth\">").nth(1).expect("queue depth");
            assert!(
                !depth.starts_with('0'),
                "the paused callbacks are pending: {depth:.20}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no paused path for {origin}: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_trunk_is_edited_with_the_apis_rules_and_the_plan_names_a_refused_status_url() {
    let server = Server::start().await;
    let account = server.admin_create_account("ui-trunk").await;
    let trunk = send(
        server
            .authed(&account, Method::POST, &account.path("/trunks"))
            .json(&json!({ "name": "Sales trunk" })),
    )
    .await
    .expect(201);
    let trunk_id = trunk["trunk_id"].as_str().expect("trunk_id").to_owned();
    let mut visitor = Visitor::new(&server);
    let csrf = visitor.sign_in(&account).await;
    let path = format!("/ui/config/trunks/{trunk_id}");
    let form = |url: &'static str, events: &'static str| {
        vec![
            ("name", "Sales trunk"),
            ("status_callback", url),
            ("status_callback_method", "GET"),
            ("status_callback_events", events),
            ("trunk_direction", "outbound"),
            ("trunk_status", "active"),
            ("termination_uri", ""),
            ("engine", "simulated"),
            ("recording", "on"),
        ]
    };
    let mut refused = form("https://localhost/hook", "Ring, call.failed");
    refused.push(("csrf", &csrf));
    let response = visitor.post(&path, &refused).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let page = response.text().await.expect("body");
    assert!(page.contains("id=\"f-status_callback-error\""), "{page}");
    let stored = server
        .get(&account, &account.path(&format!("/trunks/{trunk_id}")))
        .await
        .expect(200);
    assert_eq!(
        stored["status_callback"],
        serde_json::Value::Null,
        "nothing saved"
    );

    let mut accepted = form("https://hooks.example.com/trunk", "Ring, call.failed");
    accepted.push(("csrf", &csrf));
    let response = visitor.post(&path, &accepted).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let stored = server
        .get(&account, &account.path(&format!("/trunks/{trunk_id}")))
        .await
        .expect(200);
    assert_eq!(stored["status_callback"], "https://hooks.example.com/trunk");
    assert_eq!(stored["status_callback_method"], "GET");
    assert_eq!(stored["status_callback_events"], json!(["Ring", "call.failed"]));
    assert_eq!(stored["trunk_direction"], "outbound");
    assert_eq!(stored["recording"], true);

    // The plan refuses a bad status_url with the API's rule, next to the field.
    let (status, page) = visitor
        .get("/ui/config/plan?status_url=ftp%3A%2F%2Fexample.com")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("id=\"f-status_url-error\""), "{page}");
    let (status, page) = visitor.get(&format!("/ui/config/plan?trunk_id={trunk_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("https://hooks.example.com/trunk"), "{page}");
}

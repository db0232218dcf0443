//! The web dashboard at `/ui/`: server-rendered HTML pages (maud templates) for an account's
//! calls, callbacks, configuration, endpoint health and signing secrets.
//!
//! It is not a second API: every page reads through the same store calls as the JSON handlers,
//! and every form goes through the same validation and actions (`routes::*::update`,
//! `routes::debugging::{redeliver_event, plan, test_level}`), so a refused field shows the
//! message the API would put in `details`. Pages work without JavaScript; `assets/app.js` only
//! adds "copy" and "select all". Sessions and CSRF are in `session.rs`.
//!
//! Layout: `page.rs` (the page shell, error pages, shared formatting), one module per section
//! (`calls`, `callbacks`, `config` + `edit`, `health`, `secrets`), `session.rs`.

mod callbacks;
mod calls;
mod config;
mod edit;
mod health;
mod page;
mod secrets;
mod session;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::AppState;

pub use page::PageError;
pub use session::Session;

const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");

/// The dashboard's routes. The middleware has already dropped a trailing slash, so `/ui/` is
/// `/ui` here.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui", get(home))
        .route("/ui/login", get(session::login_page).post(session::login))
        .route("/ui/logout", post(session::logout))
        .route("/ui/assets/app.css", get(css))
        .route("/ui/assets/app.js", get(js))
        .route("/ui/calls", get(calls::list))
        .route("/ui/calls/{call_uuid}", get(calls::detail))
        .route("/ui/callbacks", get(callbacks::list))
        .route("/ui/callbacks/redeliver", post(callbacks::redeliver))
        .route("/ui/config", get(config::overview))
        .route("/ui/config/account", post(config::save_account))
        .route(
            "/ui/config/applications/{app_id}",
            get(edit::application_page).post(edit::save_application),
        )
        .route(
            "/ui/config/trunks/{trunk_id}",
            get(edit::trunk_page).post(edit::save_trunk),
        )
        .route("/ui/config/plan", get(config::plan_page))
        .route("/ui/config/test", post(config::send_test))
        .route("/ui/health", get(health::page))
        .route("/ui/secrets", get(secrets::page).post(secrets::create))
        .route(
            "/ui/secrets/{secret_id}/delete",
            get(secrets::confirm_delete).post(secrets::delete),
        )
        .route("/ui/{*rest}", axum::routing::any(unknown_page))
        .layer(axum::middleware::map_response(security_headers))
}

/// Headers every dashboard answer carries: no framing (clickjacking), no inline script or
/// style (only the embedded assets run), nothing cached (pages show account data).
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    headers
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// An unknown address under `/ui/`: an HTML page, not the API's JSON 404.
async fn unknown_page() -> PageError {
    PageError::not_found()
}

async fn home(_session: Session) -> Redirect {
    Redirect::to("/ui/calls")
}

async fn css() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}

async fn js() -> Response {
    asset(JS, "text/javascript; charset=utf-8")
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// A submitted HTML form (`application/x-www-form-urlencoded`), as name/value pairs in order.
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, or "" when absent.
    pub fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    /// Every value of `name` (checkboxes).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

impl<S: Send + Sync> FromRequest<S> for FormData {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, PageError> {
        let is_form = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(PageError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "This address takes an HTML form.",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| PageError::new(StatusCode::BAD_REQUEST, "The form could not be read."))?;
        decode_form(&bytes).map(FormData).ok_or_else(|| {
            PageError::new(
                StatusCode::BAD_REQUEST,
                "The form is not valid: a value is not UTF-8 once decoded.",
            )
        })
    }
}

/// `application/x-www-form-urlencoded` pairs, refusing what does not decode to UTF-8 (as the
/// JSON API refuses such a body) rather than replacing it, as `form_urlencoded::parse` would.
fn decode_form(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    bytes
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            Some((decode_part(name)?, decode_part(value)?))
        })
        .collect()
}

fn decode_part(part: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(part.len());
    let mut i = 0;
    while i < part.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match part[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < part.len() && hex(part[i + 1]).is_some() && hex(part[i + 2]).is_some() => {
                let high = hex(part[i + 1])?;
                let low = hex(part[i + 2])?;
                out.push(u8::try_from(high * 16 + low).ok()?);
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::decode_form;

    #[test]
    fn forms_decode_as_form_urlencoded_does_and_invalid_utf8_is_refused() {
        for text in [
            "a=1&b=x+y%20z&c",
            "name=%C3%A9t%C3%A9&x=100%&y=%2",
            "=v&k=&&k2=%3D%26",
        ] {
            let expected: Vec<(String, String)> = url::form_urlencoded::parse(text.as_bytes())
                .into_owned()
                .collect();
            assert_eq!(decode_form(text.as_bytes()), Some(expected), "{text}");
        }
        assert_eq!(decode_form(b"name=%ff%fe"), None);
        assert_eq!(decode_form(b"na%80me=x"), None);
    }
}

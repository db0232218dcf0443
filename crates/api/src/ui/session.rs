//! Dashboard sessions: sign-in with the account's auth id and token, a stateless signed session
//! cookie, CSRF tokens, sign-out.
//!
//! - **Cookie** `hookline_session` = `base64url(auth_id|expiry|token tag)` `.` HMAC-SHA256 of
//!   it under the dashboard key (`ApiSettings::ui_key`, derived from the server key, so every
//!   node accepts it). The token tag is an HMAC of the auth token: rotating the token changes
//!   it, which ends every session of the account at once. The plain token is never in it.
//!   `HttpOnly; SameSite=Strict; Path=/ui`, `Secure` when the request came over https (directly
//!   or as `X-Forwarded-Proto: https` from a proxy), 12 h.
//! - **CSRF**: every form carries `csrf` = HMAC of the session cookie; every POST checks it in
//!   constant time (`Posted`). The sign-in form, before any session, carries one bound to a
//!   random `hookline_login` cookie (double submit), so a foreign page cannot sign a browser
//!   into another account. `SameSite=Strict` is the second line.
//! - **Sign-out** clears the cookie. The cookie is stateless: to end a copied cookie's session
//!   on the server side, rotate the token.
//!
//! Not here: what a signed-in account may see — that is the store's `auth_id` scoping, as for
//! the JSON API.

use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use domain::{Account, AuthId};
use hmac::{Hmac, Mac};
use maud::html;
use sha2::Sha256;
use store::Authentication;
use subtle::ConstantTimeEq;

use crate::clock;
use crate::ui::page::{answer, shell, PageError, Section};
use crate::ui::FormData;
use crate::AppState;

const SESSION_COOKIE: &str = "hookline_session";
const LOGIN_COOKIE: &str = "hookline_login";
/// How long a session lasts after sign-in.
const SESSION_TTL_S: i64 = 12 * 3600;
/// How long a sign-in form stays valid.
const LOGIN_TTL_S: i64 = 3600;
/// The API's message for a wrong id or token (it does not reveal which auth ids exist).
const BAD_CREDENTIALS: &str = "invalid credentials: check the auth id and auth token";

/// A signed-in account, and the CSRF token its forms carry.
pub struct Session {
    pub account: Account,
    pub csrf: String,
}

impl FromRequestParts<AppState> for Session {
    /// A redirect to the sign-in page (which shows no account data), or an error page.
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let key = ui_key(state).map_err(IntoResponse::into_response)?;
        let Some(cookie) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(sign_in_first(parts));
        };
        let Some((auth_id, tag)) = open_session(&key, &cookie, clock::now().timestamp()) else {
            return Err(sign_in_first(parts));
        };
        let keys = match state.store.signing_keys(&auth_id).await {
            Ok(keys) => keys,
            Err(store::StoreError::NotFound) => return Err(sign_in_first(parts)),
            Err(error) => return Err(PageError::from(error).into_response()),
        };
        // The token was rotated since sign-in: this session is over.
        if !bool::from(token_tag(&key, &keys.auth_token).ct_eq(&tag)) {
            return Err(sign_in_first(parts));
        }
        let account = match state.store.account(&auth_id).await {
            Ok(Some(account)) => account,
            Ok(None) => return Err(sign_in_first(parts)),
            Err(error) => return Err(PageError::from(error).into_response()),
        };
        crate::extract::limit(
            &state.limiters.api,
            account.auth_id.as_str(),
            "this account's API limit",
        )
        .map_err(|e| PageError::from(e).into_response())?;
        Ok(Session {
            csrf: csrf_token(&key, &cookie),
            account,
        })
    }
}

/// A POSTed form of a signed-in account whose CSRF token matched its session.
pub struct Posted {
    pub session: Session,
    pub form: FormData,
}

impl FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let form = FormData::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        if !bool::from(form.text("csrf").as_bytes().ct_eq(session.csrf.as_bytes())) {
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                "The form's security token is missing or out of date (CSRF check): reload the page and try again.",
            )
            .into_response());
        }
        Ok(Posted { session, form })
    }
}

fn ui_key(state: &AppState) -> Result<[u8; 32], PageError> {
    state.settings.ui_key.ok_or_else(|| {
        PageError::new(
            StatusCode::NOT_FOUND,
            "The dashboard is switched off on this server.",
        )
    })
}

/// Where a request without a valid session goes: the sign-in page, coming back here after.
fn sign_in_first(parts: &Parts) -> Response {
    let back = parts.uri.path_and_query().map_or("/ui", |p| p.as_str());
    let next = if parts.method == axum::http::Method::GET {
        back
    } else {
        "/ui"
    };
    let location = format!(
        "/ui/login?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("next", next)
            .finish()
    );
    see_other(&location)
}

fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

#[derive(serde::Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// `GET /ui/login`: the sign-in form, with a fresh sign-in CSRF pair.
pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Result<Response, PageError> {
    let key = ui_key(&state)?;
    Ok(login_form(
        &key,
        &headers,
        StatusCode::OK,
        query.next.as_deref(),
        "",
        None,
    ))
}

/// `POST /ui/login`: checks the credentials as the API does and starts a session.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: FormData,
) -> Result<Response, PageError> {
    let key = ui_key(&state)?;
    let next = form.get("next");
    let auth_id_text = form.text("auth_id").trim().to_owned();
    let refuse =
        |status, message: &str| login_form(&key, &headers, status, next, &auth_id_text, Some(message));
    let nonce = cookie(&headers, LOGIN_COOKIE)
        .and_then(|value| open_login_nonce(&key, &value, clock::now().timestamp()));
    let expected = nonce.as_deref().map(|nonce| login_csrf(&key, nonce));
    let csrf_ok =
        expected.is_some_and(|expected| bool::from(form.text("csrf").as_bytes().ct_eq(expected.as_bytes())));
    if !csrf_ok {
        return Ok(refuse(
            StatusCode::FORBIDDEN,
            "The sign-in form expired or did not come from this site (CSRF check): please sign in again.",
        ));
    }
    let Some(auth_id) = AuthId::parse(&auth_id_text) else {
        return Ok(refuse(StatusCode::UNAUTHORIZED, BAD_CREDENTIALS));
    };
    let token = form.text("auth_token").trim();
    match state.store.authenticate(&auth_id, token).await? {
        Authentication::Authenticated(_) => {}
        Authentication::UnknownAccount | Authentication::WrongToken => {
            return Ok(refuse(StatusCode::UNAUTHORIZED, BAD_CREDENTIALS));
        }
    }
    // Counted after the token is checked, as on the API: failed sign-ins by someone who only
    // knows the auth id must not spend the account's bucket (it would lock its API clients out).
    if let Err(error) =
        crate::extract::limit(&state.limiters.api, auth_id.as_str(), "this account's API limit")
    {
        return Ok(refuse(StatusCode::TOO_MANY_REQUESTS, &error.to_string()));
    }
    let expiry = clock::now().timestamp() + SESSION_TTL_S;
    let value = seal_session(&key, &auth_id, expiry, &token_tag(&key, token.as_bytes()));
    let secure = is_https(&headers);
    let mut response = see_other(safe_next(next));
    let cookies = response.headers_mut();
    append_cookie(
        cookies,
        &set_cookie(SESSION_COOKIE, &value, SESSION_TTL_S, secure),
    );
    append_cookie(cookies, &set_cookie(LOGIN_COOKIE, "", 0, secure));
    Ok(response)
}

/// `POST /ui/logout`: clears the session cookie (with a valid CSRF token; a session that is
/// already gone just goes to the sign-in page).
pub async fn logout(headers: HeaderMap, posted: Result<Posted, Response>) -> Response {
    if let Err(refused) = posted {
        if refused.status() != StatusCode::SEE_OTHER {
            return refused;
        }
    }
    let mut response = see_other("/ui/login");
    append_cookie(
        response.headers_mut(),
        &set_cookie(SESSION_COOKIE, "", 0, is_https(&headers)),
    );
    response
}

/// The sign-in page, setting a new sign-in CSRF cookie.
fn login_form(
    key: &[u8; 32],
    headers: &HeaderMap,
    status: StatusCode,
    next: Option<&str>,
    auth_id: &str,
    error: Option<&str>,
) -> Response {
    let nonce: [u8; 16] = rand::random();
    let nonce = URL_SAFE_NO_PAD.encode(nonce);
    let expiry = clock::now().timestamp() + LOGIN_TTL_S;
    let body = html! {
        @if let Some(error) = error {
            p.notice.bad role="alert" id="login-error" { (error) }
        }
        p { "Sign in with your account's auth id and auth token (the pair the API takes as "
            code { "X-Auth-ID" } " and " code { "X-Auth-Token" } ")." }
        form.card.narrow method="post" action="/ui/login" {
            input type="hidden" name="csrf" value=(login_csrf(key, &nonce));
            input type="hidden" name="next" value=(safe_next(next));
            div.field {
                label for="auth_id" { "Auth id" }
                input type="text" id="auth_id" name="auth_id" value=(auth_id) autocomplete="username"
                    required spellcheck="false" aria-describedby=[error.map(|_| "login-error")];
            }
            div.field {
                label for="auth_token" { "Auth token" }
                input type="password" id="auth_token" name="auth_token" autocomplete="current-password" required;
            }
            button type="submit" { "Sign in" }
        }
    };
    let mut response = answer(status, shell("Sign in", None, Section::None, body));
    let value = format!("{nonce}.{expiry}");
    let value = format!(
        "{value}.{}",
        URL_SAFE_NO_PAD.encode(mac(key, b"login-cookie", value.as_bytes()))
    );
    append_cookie(
        response.headers_mut(),
        &set_cookie(LOGIN_COOKIE, &value, LOGIN_TTL_S, is_https(headers)),
    );
    response
}

/// Only a path of the dashboard itself: never another site (open redirect).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with("/ui")
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.starts_with("/ui/login")
                && !path.chars().any(char::is_control) =>
        {
            path
        }
        _ => "/ui/calls",
    }
}

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 under `key` of `purpose`, a zero byte, and `data`: one key, several purposes
/// that can never stand for one another.
fn mac(key: &[u8; 32], purpose: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(purpose);
    mac.update(&[0]);
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// What changes when the auth token is rotated, without revealing the token.
fn token_tag(key: &[u8; 32], token: &[u8]) -> [u8; 16] {
    let full = mac(key, b"token-tag", token);
    let mut tag = [0u8; 16];
    tag.copy_from_slice(&full[..16]);
    tag
}

fn seal_session(key: &[u8; 32], auth_id: &AuthId, expiry: i64, tag: &[u8; 16]) -> String {
    let payload = format!("{auth_id}|{expiry}|{}", URL_SAFE_NO_PAD.encode(tag));
    let signature = mac(key, b"session", payload.as_bytes());
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// The auth id and token tag of a session cookie whose signature holds and that has not
/// expired at `now` (unix seconds).
fn open_session(key: &[u8; 32], value: &str, now: i64) -> Option<(AuthId, [u8; 16])> {
    let (payload, signature) = value.split_once('.')?;
    let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    if !bool::from(mac(key, b"session", &payload).as_slice().ct_eq(&signature)) {
        return None;
    }
    let payload = String::from_utf8(payload).ok()?;
    let mut parts = payload.split('|');
    let auth_id = AuthId::parse(parts.next()?)?;
    let expiry: i64 = parts.next()?.parse().ok()?;
    let tag = <[u8; 16]>::try_from(URL_SAFE_NO_PAD.decode(parts.next()?).ok()?.as_slice()).ok()?;
    (now < expiry && parts.next().is_none()).then_some((auth_id, tag))
}

/// The CSRF token of a session: bound to its cookie, so it changes with every sign-in.
fn csrf_token(key: &[u8; 32], session_cookie: &str) -> String {
    URL_SAFE_NO_PAD.encode(mac(key, b"csrf", session_cookie.as_bytes()))
}

/// The sign-in form's token for the nonce of its `hookline_login` cookie.
fn login_csrf(key: &[u8; 32], nonce: &str) -> String {
    URL_SAFE_NO_PAD.encode(mac(key, b"login-csrf", nonce.as_bytes()))
}

/// The nonce of a `hookline_login` cookie that this server set and that has not expired.
fn open_login_nonce(key: &[u8; 32], value: &str, now: i64) -> Option<String> {
    let (signed, signature) = value.rsplit_once('.')?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    if !bool::from(
        mac(key, b"login-cookie", signed.as_bytes())
            .as_slice()
            .ct_eq(&signature),
    ) {
        return None;
    }
    let (nonce, expiry) = signed.split_once('.')?;
    (now < expiry.parse::<i64>().ok()?).then(|| nonce.to_owned())
}

/// A cookie's value from the request's `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Whether the browser reached us over https: a TLS-terminating proxy says so.
fn is_https(headers: &HeaderMap) -> bool {
    let forwarded_proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let forwarded = headers
        .get("forwarded")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("proto=https"));
    forwarded_proto || forwarded
}

fn set_cookie(name: &str, value: &str, max_age_s: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/ui; Max-Age={max_age_s}; HttpOnly; SameSite=Strict{secure}")
}

fn append_cookie(headers: &mut HeaderMap, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        headers.append(SET_COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    fn auth_id() -> AuthId {
        AuthId::parse("MA_ABCDEFGH").expect("valid auth id")
    }

    #[test]
    fn a_sealed_session_opens_until_it_expires() {
        let tag = token_tag(&KEY, b"token");
        let value = seal_session(&KEY, &auth_id(), 1_000, &tag);
        assert_eq!(open_session(&KEY, &value, 999), Some((auth_id(), tag)));
        assert_eq!(open_session(&KEY, &value, 1_000), None, "expired");
        assert_eq!(open_session(&[8; 32], &value, 999), None, "another key");
    }

    #[test]
    fn a_tampered_session_is_refused() {
        let value = seal_session(&KEY, &auth_id(), 1_000, &token_tag(&KEY, b"token"));
        let (payload, signature) = value.split_once('.').expect("two parts");
        let forged = URL_SAFE_NO_PAD.encode(
            String::from_utf8(URL_SAFE_NO_PAD.decode(payload).expect("base64"))
                .expect("text")
                .replace("|1000|", "|9999|"),
        );
        assert_eq!(open_session(&KEY, &format!("{forged}.{signature}"), 999), None);
    }

    #[test]
    fn rotating_the_token_changes_the_tag() {
        assert_ne!(token_tag(&KEY, b"old token"), token_tag(&KEY, b"new token"));
    }

    #[test]
    fn the_next_page_stays_on_the_dashboard() {
        assert_eq!(safe_next(Some("/ui/calls?status=busy")), "/ui/calls?status=busy");
        for hostile in [
            "https://evil.example/",
            "//evil.example/ui",
            "/uix\\evil",
            "/ui/login",
        ] {
            assert_eq!(safe_next(Some(hostile)), "/ui/calls", "{hostile}");
        }
        assert_eq!(safe_next(None), "/ui/calls");
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_over_https() {
        let mut headers = HeaderMap::new();
        assert!(!is_https(&headers));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(is_https(&headers));
        let cookie = set_cookie(SESSION_COOKIE, "v", 10, true);
        assert_eq!(
            cookie,
            "hookline_session=v; Path=/ui; Max-Age=10; HttpOnly; SameSite=Strict; Secure"
        );
    }
}

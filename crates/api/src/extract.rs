//! Extractors: the JSON body, the authenticated account, the operator, list paging.
//!
//! Each turns a bad request into an [`ApiError`] that names the field, so handlers only see
//! well-formed input.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, RawPathParams, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use domain::{Account, AuthId};
use serde::de::DeserializeOwned;
use store::{Authentication, Page};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::middleware::BodyTimedOut;
use crate::ratelimit::Limiter;
use crate::AppState;

/// A JSON request body: `Content-Type: application/json`, at most 1 MiB, a JSON object with
/// only known fields.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(body_rejection)?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// The body of an endpoint that takes no fields: none at all, JSON `null`, or an empty JSON
/// object (sent as `application/json`, at most 1 MiB, like every body).
pub struct NoFields;

impl<S: Send + Sync> FromRequest<S> for NoFields {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Empty {}
        let json = is_json(req.headers());
        let bytes = Bytes::from_request(req, state).await.map_err(body_rejection)?;
        if !bytes.iter().all(u8::is_ascii_whitespace) {
            if !json {
                return Err(ApiError::UnsupportedMediaType);
            }
            if bytes.trim_ascii() != b"null" {
                parse_json::<Empty>(&bytes)?;
            }
        }
        Ok(NoFields)
    }
}

/// A body that could not be read: too large (413), or cut off.
fn body_rejection(rejection: axum::extract::rejection::BytesRejection) -> ApiError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&rejection);
    while let Some(error) = cause {
        if let Some(timed_out) = error.downcast_ref::<BodyTimedOut>() {
            return ApiError::BodyTimeout(timed_out.0);
        }
        cause = error.source();
    }
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::MalformedBody(rejection.body_text())
    }
}

/// Path parameters, as `axum::extract::Path`, but a value that is not UTF-8 once
/// percent-decoded answers the JSON 404 of an unknown id (no object has such an id) instead of
/// axum's plain-text 400.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(|_| ApiError::NotFound("resource"))
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// Parses a JSON object into `T`, naming the offending field on a type error or unknown field.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::MalformedBody(e.to_string()))?;
    if !value.is_object() {
        return Err(ApiError::MalformedBody("the body must be a JSON object".into()));
    }
    from_value(value)
}

/// Converts a JSON value into `T` with the same error shape as bodies.
pub(crate) fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let message = error.inner().to_string();
        if let Some(name) = unknown_field_name(&message) {
            return ApiError::invalid(name, "is not a known field");
        }
        let path = error.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        ApiError::invalid(&field, message)
    })
}

fn unknown_field_name(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

const BAD_CREDENTIALS: &str = "invalid credentials: check the auth id and auth token";

/// The account whose credentials came with the request, checked against the `{auth_id}` in
/// the path: another account's id answers 404, as if it did not exist.
pub struct Authed(pub Account);

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (auth_id, token) = credentials(&parts.headers)?;
        // One message for an unknown id and a wrong token: the answer does not reveal which
        // auth ids exist.
        let auth_id = AuthId::parse(&auth_id).ok_or(ApiError::Unauthorized(BAD_CREDENTIALS))?;
        let account = match state.store.authenticate(&auth_id, &token).await? {
            Authentication::Authenticated(account) => *account,
            Authentication::UnknownAccount | Authentication::WrongToken => {
                return Err(ApiError::Unauthorized(BAD_CREDENTIALS))
            }
        };
        limit(
            &state.limiters.api,
            account.auth_id.as_str(),
            "this account's API limit",
        )?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound("account"))?;
        let in_path = params
            .iter()
            .find(|(name, _)| *name == "auth_id")
            .map(|(_, value)| value);
        if in_path != Some(account.auth_id.as_str()) {
            return Err(ApiError::NotFound("account"));
        }
        Ok(Authed(account))
    }
}

/// Counts one request against `limiter`'s bucket for `key`: a 429 naming `what` when it is empty.
pub(crate) fn limit(limiter: &Limiter, key: &str, what: &'static str) -> Result<(), ApiError> {
    limiter
        .check(key, std::time::Instant::now())
        .map_err(|wait| ApiError::RateLimited(what, limiter.rate().per_second, wait))
}

/// `X-Auth-ID` + `X-Auth-Token`, or HTTP Basic with the same pair.
fn credentials(headers: &HeaderMap) -> Result<(String, String), ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if let (Some(id), Some(token)) = (header("x-auth-id"), header("x-auth-token")) {
        return Ok((id, token));
    }
    let basic = header(AUTHORIZATION.as_str())
        .and_then(|value| {
            let (scheme, encoded) = value.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("basic")
                .then(|| encoded.trim().to_owned())
        })
        .ok_or(ApiError::Unauthorized(
            "credentials required: X-Auth-ID and X-Auth-Token headers, or HTTP Basic",
        ))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(basic)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or(ApiError::Unauthorized("malformed HTTP Basic credentials"))?;
    let (id, token) = decoded
        .split_once(':')
        .ok_or(ApiError::Unauthorized("malformed HTTP Basic credentials"))?;
    Ok((id.to_owned(), token.to_owned()))
}

/// The operator, by `Authorization: Bearer <admin_token>`. With no admin token configured the
/// operator surface is off.
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(expected) = state.settings.admin_token.as_deref() else {
            return Err(ApiError::Unauthorized(
                "the operator API is off: set HOOKLINE_ADMIN_TOKEN",
            ));
        };
        let presented = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or(ApiError::Unauthorized(
                "operator token required: Authorization: Bearer …",
            ))?;
        if bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
            limit(&state.limiters.operator, "operator", "the operator limit")?;
            Ok(Operator)
        } else {
            Err(ApiError::Unauthorized("wrong operator token"))
        }
    }
}

/// `limit` (1–100, default 20) and `offset` (≥ 0, default 0) of a list, and the rest of the
/// query string (its filters), which the `next`/`previous` links must keep.
pub struct Paging(pub Page, pub String);

const DEFAULT_LIMIT: u32 = 20;
const MAX_LIMIT: u32 = 100;

impl<S: Send + Sync> FromRequestParts<S> for Paging {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(query) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid("query", e.body_text()))?;
        let get = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let limit = match get("limit") {
            None => DEFAULT_LIMIT,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| ApiError::invalid("limit", "must be a whole number from 1 to 100"))?,
        };
        let offset = match get("offset") {
            None => 0,
            Some(text) => text
                .parse::<u64>()
                .map_err(|_| ApiError::invalid("offset", "must be a whole number, 0 or more"))?,
        };
        let filters = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query.iter().filter(|(k, _)| k != "limit" && k != "offset"))
            .finish();
        Ok(Paging(Page { limit, offset }, filters))
    }
}

/// The query string's name/value pairs, percent-decoded.
pub(crate) fn query_pairs(uri: &axum::http::Uri) -> Result<Vec<(String, String)>, ApiError> {
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|query| query.0)
        .map_err(|e| ApiError::invalid("query", e.body_text()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_are_percent_decoded() {
        let uri: axum::http::Uri = "/x?from=%2B14155551234&status=in-progress".parse().expect("uri");
        assert_eq!(
            query_pairs(&uri).expect("valid"),
            [
                ("from".to_owned(), "+14155551234".to_owned()),
                ("status".to_owned(), "in-progress".to_owned())
            ]
        );
    }
}

//! `ApiError` and the JSON envelope every answer shares.
//!
//! Every JSON answer carries `api_id`, the request id that the request span and the
//! `X-Api-Id` header also carry; it lives in a task-local set by the request middleware, so
//! errors raised deep inside extractors get it too. A 4xx names what to fix; a 5xx logs the
//! error chain inside the request span and answers with a generic body.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

tokio::task_local! {
    pub(crate) static API_ID: String;
}

/// The current request's id, or a fresh one outside a request.
pub fn current_api_id() -> String {
    API_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| uuid::Uuid::new_v4().to_string())
}

/// `{field: why}` for each invalid field of a request.
pub type Details = BTreeMap<String, String>;

/// An error answer. Each variant has a stable public `code` (see [`ApiError::code`]).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: one or more fields are invalid; `details` names them.
    #[error("invalid request parameters")]
    Invalid(Details),
    /// 400: the body is not the JSON object the endpoint expects.
    #[error("malformed JSON body: {0}")]
    MalformedBody(String),
    /// 401: no, unknown or wrong credentials.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 404: nothing here for these credentials.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 405
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: the request conflicts with the stored state.
    #[error("{0}")]
    Conflict(String),
    /// 422: well-formed, but not applicable to the current state.
    #[error("{0}")]
    Unprocessable(String),
    /// 413
    #[error("request body is larger than 1 MiB")]
    PayloadTooLarge,
    /// 415
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    /// 408: the request's body did not arrive within the deadline (a slow or stalled client).
    #[error("the request body did not arrive within {} s", .0.as_secs_f64())]
    BodyTimeout(std::time::Duration),
    /// 429: this account (or the operator) sent more than its limit allows; the same request
    /// may pass after `retry_after`. Nothing was written.
    #[error("too many requests: {0} is {1} per second; retry after the seconds in Retry-After")]
    RateLimited(&'static str, f64, std::time::Duration),
    /// 503: the database is away (restarting, unreachable); the same request may succeed
    /// after `Retry-After` seconds. Nothing was written.
    #[error("the database is unavailable{}; retry shortly", .0.map(|why| format!(": {why}")).unwrap_or_default())]
    Unavailable(Option<&'static str>),
    /// 500: logged with its chain, never shown.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// One invalid field.
    pub fn invalid(field: &str, why: impl Into<String>) -> ApiError {
        ApiError::Invalid(BTreeMap::from([(field.to_owned(), why.into())]))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) | ApiError::MalformedBody(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::RateLimited(..) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable, documented id of the error kind (API.md lists them).
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid(_) => "invalid_field",
            ApiError::MalformedBody(_) => "malformed_body",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::BodyTimeout(_) => "body_timeout",
            ApiError::RateLimited(..) => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<store::StoreError> for ApiError {
    fn from(error: store::StoreError) -> Self {
        match error {
            store::StoreError::NotFound => ApiError::NotFound("resource"),
            store::StoreError::Conflict(why) => ApiError::Conflict(why.to_owned()),
            store::StoreError::Transition(error @ domain::TransitionError::OutOfOrder { .. }) => {
                ApiError::Conflict(error.to_string())
            }
            store::StoreError::Transition(error @ domain::TransitionError::Inconsistent(_)) => {
                ApiError::Unprocessable(error.to_string())
            }
            store::StoreError::Unstorable => ApiError::invalid(
                "text",
                "contains a character that cannot be stored (the NUL character)",
            ),
            other if other.is_unavailable() => {
                tracing::warn!(error = %other, "the database is unavailable");
                ApiError::Unavailable(other.fault())
            }
            other => ApiError::Internal(Box::new(other)),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    api_id: String,
    error: String,
    code: &'a str,
    details: &'a Details,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(source) = &self {
            tracing::error!(error = %error_chain(source.as_ref()), "request failed");
        }
        let empty = Details::new();
        let details = match &self {
            ApiError::Invalid(details) => details,
            _ => &empty,
        };
        let body = ErrorBody {
            api_id: current_api_id(),
            error: self.to_string(),
            code: self.code(),
            details,
        };
        let mut response = (self.status(), Json(body)).into_response();
        let retry_after = match &self {
            ApiError::Unavailable(_) => Some(1),
            // Whole seconds (RFC 9110), rounded up so a client that waits them passes.
            ApiError::RateLimited(_, _, wait) => {
                Some(wait.as_secs().saturating_add(u64::from(wait.subsec_nanos() > 0)))
            }
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds.max(1)),
            );
        }
        response
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A successful JSON answer: the body with `api_id` added in front.
pub struct Reply<T>(pub StatusCode, pub T);

#[derive(Serialize)]
struct Envelope<T> {
    api_id: String,
    #[serde(flatten)]
    body: T,
}

impl<T> Reply<T> {
    pub fn ok(body: T) -> Reply<T> {
        Reply(StatusCode::OK, body)
    }

    pub fn created(body: T) -> Reply<T> {
        Reply(StatusCode::CREATED, body)
    }
}

impl<T: Serialize> IntoResponse for Reply<T> {
    fn into_response(self) -> Response {
        let envelope = Envelope {
            api_id: current_api_id(),
            body: self.1,
        };
        (self.0, Json(envelope)).into_response()
    }
}

/// The error body, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct ErrorSchema {
    /// The request id.
    api_id: String,
    /// What went wrong, in words.
    error: String,
    /// Stable error kind (`ApiError::code`).
    code: ErrorCode,
    /// For invalid_field: each refused field and why.
    details: std::collections::BTreeMap<String, String>,
}

/// The stable error kinds, for the OpenAPI document (`ApiError::code` gives them).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub(crate) enum ErrorCode {
    InvalidField,
    MalformedBody,
    Unauthorized,
    NotFound,
    MethodNotAllowed,
    Conflict,
    Unprocessable,
    PayloadTooLarge,
    UnsupportedMediaType,
    BodyTimeout,
    RateLimited,
    Unavailable,
    Internal,
}

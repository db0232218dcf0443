//! Request middleware that runs before routing: path aliases, optional trailing slashes, the
//! request id every answer carries, and the deadline for a request's body.
//!
//! Aliases are rewritten to the primary path here, in one place, so the router and the
//! OpenAPI document only know the primary spelling (PRODUCT.md §2 path table).

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body_util::BodyExt;

use crate::error::{ApiError, API_ID};
use crate::MAX_BODY_BYTES;

/// Wraps the router so that rewriting happens before route matching, and (with a deadline) so
/// that every body has arrived before a handler runs.
pub fn wrap(inner: Router, body_deadline: Option<Duration>) -> Router {
    let outer = Router::new().fallback_service(inner);
    let outer = match body_deadline {
        Some(deadline) => outer.layer(axum::middleware::from_fn_with_state(deadline, read_body_within)),
        None => outer,
    };
    outer.layer(axum::middleware::from_fn(rewrite_and_tag))
}

/// A client that sends its body slower than `deadline` (slow loris) gets a 408 and its
/// connection back, instead of holding a handler — and a database transaction — open.
async fn read_body_within(State(deadline): State<Duration>, request: Request, next: Next) -> Response {
    if http_body::Body::is_end_stream(request.body()) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(deadline, collect(body)).await {
        Err(_elapsed) => ApiError::BodyTimeout(deadline).into_response(),
        Ok(Err(error)) => error.into_response(),
        Ok(Ok(bytes)) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
    }
}

/// The whole body, refused (413) as soon as it passes [`MAX_BODY_BYTES`].
async fn collect(mut body: Body) -> Result<Bytes, ApiError> {
    let mut collected = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::MalformedBody(format!("the body could not be read: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if collected.len() + data.len() > MAX_BODY_BYTES {
                return Err(ApiError::PayloadTooLarge);
            }
            collected.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(collected))
}

async fn rewrite_and_tag(mut request: Request, next: Next) -> Response {
    if let Some(uri) = primary_uri(request.uri()) {
        *request.uri_mut() = uri;
    }
    // From the thread's RNG: `new_v4` asks the kernel for every id, a syscall per request.
    let api_id = uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string();
    let span = tracing::info_span!("request", api_id = %api_id, method = %request.method(), path = %request.uri().path());
    let mut response = {
        let _guard = span.enter();
        tracing::debug!("received");
        drop(_guard);
        API_ID.scope(api_id.clone(), next.run(request)).await
    };
    tracing::info!(parent: &span, status = response.status().as_u16(), "answered");
    if let Ok(value) = HeaderValue::from_str(&api_id) {
        response.headers_mut().insert("x-api-id", value);
    }
    response
}

/// The primary spelling of `uri`'s path, or `None` when it already is primary.
fn primary_uri(uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    // Most requests already use the primary spelling: no capitals, no trailing slash.
    if !path.bytes().any(|b| b.is_ascii_uppercase()) && (path == "/" || !path.ends_with('/')) {
        return None;
    }
    let primary = primary_path(path);
    if primary == path {
        return None;
    }
    let rebuilt = match uri.query() {
        Some(query) => format!("{primary}?{query}"),
        None => primary,
    };
    rebuilt.parse().ok()
}

fn primary_path(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
    let mut segments: Vec<&str> = trimmed.split('/').collect();
    // ["", "api", "v1", "Account", "{auth_id}", "Application", ...]
    if segments.len() > 3 && segments[1] == "api" && segments[2] == "v1" && segments[3] == "Account" {
        segments[3] = "account";
    }
    if segments.len() > 5 && segments[3] == "account" {
        segments[5] = match segments[5] {
            "Application" => "applications",
            "Call" => "calls",
            other => other,
        };
    }
    segments.join("/")
}

#[cfg(test)]
mod tests {
    use super::primary_path;

    #[test]
    fn vobiz_spellings_and_trailing_slashes_map_to_the_primary_path() {
        let cases = [
            ("/api/v1/Account/MA_ABCDEFGH/", "/api/v1/account/MA_ABCDEFGH"),
            (
                "/api/v1/Account/MA_ABCDEFGH/Application/",
                "/api/v1/account/MA_ABCDEFGH/applications",
            ),
            (
                "/api/v1/Account/MA_ABCDEFGH/Application/12345/",
                "/api/v1/account/MA_ABCDEFGH/applications/12345",
            ),
            (
                "/api/v1/Account/MA_ABCDEFGH/Call/",
                "/api/v1/account/MA_ABCDEFGH/calls",
            ),
            (
                "/api/v1/Account/MA_ABCDEFGH/trunks",
                "/api/v1/account/MA_ABCDEFGH/trunks",
            ),
            (
                "/api/v1/account/MA_ABCDEFGH/applications/",
                "/api/v1/account/MA_ABCDEFGH/applications",
            ),
            ("/healthz/", "/healthz"),
            ("/", "/"),
            (
                "/api/v1/account/MA_ABCDEFGH/trunks/Application",
                "/api/v1/account/MA_ABCDEFGH/trunks/Application",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(primary_path(input), expected, "{input}");
        }
    }
}

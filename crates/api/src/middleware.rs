//! Request middleware that runs before routing: path aliases, optional trailing slashes, the
//! request id every answer carries, and the deadline for a request's body.
//!
//! Aliases are rewritten to the primary path here, in one place, so the router and the
//! OpenAPI document only know the primary spelling (PRODUCT.md §2 path table).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;

use crate::error::API_ID;

/// Wraps the router so that rewriting happens before route matching, and (with a deadline) so
/// that a request's body must arrive within it.
pub fn wrap(inner: Router, body_deadline: Option<Duration>) -> Router {
    let outer = Router::new().fallback_service(inner);
    let outer = match body_deadline {
        Some(deadline) => outer.layer(axum::middleware::from_fn_with_state(deadline, body_within)),
        None => outer,
    };
    outer.layer(axum::middleware::from_fn(rewrite_and_tag))
}

/// Gives the body a deadline from the request's arrival. The body is still read by the
/// handler's extractor — after authentication, so no one can make the server buffer bodies
/// without credentials —, and a client that sends it slower (slow loris) gets a 408 there.
async fn body_within(State(deadline): State<Duration>, request: Request, next: Next) -> Response {
    if http_body::Body::is_end_stream(request.body()) {
        return next.run(request).await;
    }
    next.run(request.map(|body| Body::new(Deadlined::new(body, deadline))))
        .await
}

/// Why a body read failed: its deadline passed. The extractors find it in the error's chain.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub(crate) struct BodyTimedOut(pub(crate) Duration);

/// A body that fails with [`BodyTimedOut`] once its deadline has passed.
struct Deadlined {
    inner: Body,
    deadline: Duration,
    clock: Pin<Box<tokio::time::Sleep>>,
}

impl Deadlined {
    fn new(inner: Body, deadline: Duration) -> Deadlined {
        Deadlined {
            inner,
            deadline,
            clock: Box::pin(tokio::time::sleep(deadline)),
        }
    }
}

impl http_body::Body for Deadlined {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::BoxError>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        match this.clock.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut(this.deadline))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
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

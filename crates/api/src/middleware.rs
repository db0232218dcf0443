//! Request middleware that runs before routing: path aliases, optional trailing slashes, and
//! the request id every answer carries.
//!
//! Aliases are rewritten to the primary path here, in one place, so the router and the
//! OpenAPI document only know the primary spelling (PRODUCT.md §2 path table).

use axum::extract::Request;
use axum::http::{HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;

use crate::error::API_ID;

/// Wraps the router so that rewriting happens before route matching.
pub fn wrap(inner: Router) -> Router {
    Router::new()
        .fallback_service(inner)
        .layer(axum::middleware::from_fn(rewrite_and_tag))
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

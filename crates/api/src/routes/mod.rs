//! The route handlers, one module per resource, and what they share: list envelopes, time
//! formatting, the security schemes of the OpenAPI document.

pub mod account;
pub mod admin;
pub mod applications;
pub mod callbacks;
pub mod calls;
pub mod debugging;
pub mod health;
pub mod secrets;
pub mod switch;
pub mod trunks;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use store::{Listing, Page};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::ToSchema;

use crate::error::ApiError;

pub async fn not_found() -> ApiError {
    ApiError::NotFound("route")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Resource times: RFC 3339 in UTC with microseconds.
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses an RFC 3339 time from a query or body field.
pub fn parse_time(field: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ApiError::invalid(field, "must be an RFC 3339 time such as 2026-04-02T12:00:00Z"))
}

/// `meta` of a list answer.
#[derive(Serialize, ToSchema)]
pub struct Meta {
    pub limit: u32,
    pub offset: u64,
    pub total_count: u64,
    /// The next page's path, `null` on the last page.
    pub next: Option<String>,
    /// The previous page's path, `null` on the first page.
    pub previous: Option<String>,
}

/// A list answer: `{"meta": {...}, "objects": [...]}`.
#[derive(Serialize, ToSchema)]
pub struct ListOut<T> {
    pub meta: Meta,
    pub objects: Vec<T>,
}

impl<T> ListOut<T> {
    /// `filters` is the list's query string without `limit` and `offset`; the links keep it.
    pub fn new<S>(
        path: &str,
        filters: &str,
        page: Page,
        listing: Listing<S>,
        to_wire: impl Fn(S) -> T,
    ) -> ListOut<T> {
        let filters = if filters.is_empty() {
            String::new()
        } else {
            format!("{filters}&")
        };
        let link = |offset: u64| format!("{path}/?{filters}limit={}&offset={offset}", page.limit);
        let limit = u64::from(page.limit);
        let next = (page.offset.saturating_add(limit) < listing.total).then(|| link(page.offset + limit));
        let previous = (page.offset > 0).then(|| link(page.offset.saturating_sub(limit)));
        ListOut {
            meta: Meta {
                limit: page.limit,
                offset: page.offset,
                total_count: listing.total,
                next,
                previous,
            },
            objects: listing.items.into_iter().map(to_wire).collect(),
        }
    }
}

/// Adds the three ways to authenticate to the OpenAPI document.
pub struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "auth_id",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Header(
                utoipa::openapi::security::ApiKeyValue::new("X-Auth-ID"),
            )),
        );
        components.add_security_scheme(
            "auth_token",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Header(
                utoipa::openapi::security::ApiKeyValue::new("X-Auth-Token"),
            )),
        );
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
        components.add_security_scheme(
            "operator",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The error answers many operations share, added in one place so that no annotation can forget
/// them (PRODUCT.md §2): every operation with credentials can answer 401, 429 (rate limits) and
/// 503 (the database is away: the credentials are checked in it); one with a path parameter
/// 404 (an unknown id, or another account's `auth_id`); one that takes a JSON body 400
/// (malformed, or an invalid field), 413 and 415; one with query parameters 400. An answer an
/// annotation already lists is kept. Each is a shared response of `components.responses` with
/// the error schema (`ErrorSchema`), and `Retry-After` where the answer sends it.
///
/// A method that a documented path does not list answers 405 with the same error schema; the
/// router answers it for every path alike, so it is said once in the document's description
/// rather than under operations that, by their method, never answer it.
pub struct ErrorResponses;

/// `(status, name in components.responses, description, sends Retry-After)`.
const SHARED_ERRORS: [(&str, &str, &str, bool); 7] = [
    (
        "400",
        "BadRequest",
        "Malformed request (`malformed_body`) or invalid fields (`invalid_field`: `details` names each field and why)",
        false,
    ),
    (
        "401",
        "Unauthorized",
        "No, unknown or wrong credentials (`unauthorized`)",
        false,
    ),
    (
        "404",
        "NotFound",
        "Nothing here for these credentials (`not_found`): an unknown id, or another account's",
        false,
    ),
    (
        "413",
        "PayloadTooLarge",
        "The body is larger than 1 MiB (`payload_too_large`)",
        false,
    ),
    (
        "415",
        "UnsupportedMediaType",
        "The body is not `Content-Type: application/json` (`unsupported_media_type`)",
        false,
    ),
    (
        "429",
        "RateLimited",
        "Over the account's (or the operator's) rate limit (`rate_limited`); nothing was done: retry after `Retry-After` seconds",
        true,
    ),
    (
        "503",
        "Unavailable",
        "The database is unavailable (`unavailable`); nothing was done: retry after `Retry-After` seconds",
        true,
    ),
];

impl utoipa::Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

        let components = openapi.components.get_or_insert_with(Default::default);
        for (_, name, description, retry_after) in SHARED_ERRORS {
            let content = ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorSchema")))
                .build();
            let mut response = ResponseBuilder::new()
                .description(description)
                .content("application/json", content);
            if retry_after {
                let seconds = utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::Integer)
                    .minimum(Some(1))
                    .build();
                let header = utoipa::openapi::header::HeaderBuilder::new()
                    .schema(seconds)
                    .description(Some("Seconds to wait before sending the request again"))
                    .build();
                response = response.header("Retry-After", header);
            }
            components
                .responses
                .insert(name.to_owned(), RefOr::T(response.build()));
        }

        for (path, item) in &mut openapi.paths.paths {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ];
            for operation in operations.into_iter().flatten() {
                let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                let json_body = operation
                    .request_body
                    .as_ref()
                    .is_some_and(|body| body.content.contains_key("application/json"));
                let query = operation
                    .parameters
                    .iter()
                    .flatten()
                    .any(|p| matches!(p.parameter_in, ParameterIn::Query));
                let applies = |status: &str| match status {
                    "400" => json_body || query,
                    "401" | "429" | "503" => secured,
                    "404" => path.contains('{'),
                    "413" | "415" => json_body,
                    _ => false,
                };
                for (status, name, _, _) in SHARED_ERRORS {
                    if applies(status) {
                        operation
                            .responses
                            .responses
                            .entry(status.to_owned())
                            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
                    }
                }
            }
        }
    }
}

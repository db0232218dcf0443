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

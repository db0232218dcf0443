//! The delivery log (PRODUCT.md §2.5): every event of a call on every channel, with its
//! resolution — level, reason, target — and its status; and the same across calls.

use axum::extract::State;
use domain::{CallUuid, DeliveryStatus};
use serde::Serialize;
use store::{AttemptRecord, CallbackFilter, DeliveryRecord};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, Reply};
use crate::extract::{query_pairs, Authed, Paging, Path};
use crate::routes::{parse_time, time, ListOut};
use crate::AppState;

/// One attempt to deliver.
#[derive(Serialize, ToSchema)]
pub struct AttemptOut {
    pub(crate) attempt: u32,
    pub(crate) target: String,
    pub(crate) url: String,
    pub(crate) started_at: String,
    pub(crate) latency_ms: u64,
    pub(crate) status_code: Option<u16>,
    /// `timeout`, `connect`, `tls`, `dns`, `blocked` or `status`; `null` on success.
    pub(crate) error: Option<String>,
    /// The delay a 429/503 asked for (ms), when it did.
    pub(crate) retry_after_ms: Option<u64>,
}

impl From<AttemptRecord> for AttemptOut {
    fn from(attempt: AttemptRecord) -> Self {
        AttemptOut {
            attempt: attempt.attempt,
            target: attempt.target.as_str().to_owned(),
            url: attempt.url,
            started_at: time(attempt.started_at),
            latency_ms: attempt.latency_ms,
            status_code: attempt.status_code,
            error: attempt.error,
            retry_after_ms: attempt.retry_after_ms,
        }
    }
}

/// An event on one channel.
#[derive(Serialize, ToSchema)]
pub struct CallbackOut {
    pub(crate) event_id: String,
    pub(crate) call_uuid: String,
    pub(crate) event: String,
    pub(crate) sequence: u32,
    /// `status`, `ring_url`, `answer_url` or `hangup_url`.
    pub(crate) channel: String,
    /// `call`, `application`, `trunk`, `account` or `none`.
    pub(crate) level: String,
    /// Why this level and verdict: which URL won and what its filter said.
    pub(crate) reason: String,
    pub(crate) url: Option<String>,
    pub(crate) method: String,
    pub(crate) fallback_url: Option<String>,
    /// `pending`, `delivered`, `failed`, `filtered` or `unrouted`.
    pub(crate) status: String,
    /// `primary` or `fallback` once delivered.
    pub(crate) delivered_to: Option<String>,
    pub(crate) next_attempt_at: Option<String>,
    pub(crate) created_at: String,
    pub(crate) attempts: Vec<AttemptOut>,
}

impl From<DeliveryRecord> for CallbackOut {
    fn from(record: DeliveryRecord) -> Self {
        CallbackOut {
            event_id: record.event_id.to_string(),
            call_uuid: record.call_uuid.to_string(),
            event: record.event.as_str().to_owned(),
            sequence: record.sequence,
            channel: record.channel.as_str().to_owned(),
            level: record.level.map_or("none", |l| l.as_str()).to_owned(),
            reason: record.reason,
            url: record.url,
            method: record.method.as_str().to_owned(),
            fallback_url: record.fallback_url,
            status: record.status.as_str().to_owned(),
            delivered_to: record.delivered_to,
            next_attempt_at: record.next_attempt_at.map(time),
            created_at: time(record.created_at),
            attempts: record.attempts.into_iter().map(AttemptOut::from).collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CallCallbacksOut {
    call_uuid: String,
    objects: Vec<CallbackOut>,
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(call_callbacks))
        .routes(routes!(list_callbacks))
}

/// The delivery log of one call: each event and channel in sequence order.
#[utoipa::path(get, path = "/api/v1/account/{auth_id}/calls/{call_uuid}/callbacks", tag = "callbacks",
    params(("auth_id" = String, Path), ("call_uuid" = String, Path)),
    security(("auth_id" = [], "auth_token" = []), ("basic" = [])),
    responses((status = 200, body = CallCallbacksOut)))]
async fn call_callbacks(
    State(state): State<AppState>,
    Authed(account): Authed,
    Path((_auth_id, call_uuid)): Path<(String, String)>,
) -> Result<Reply<CallCallbacksOut>, ApiError> {
    let call_uuid = CallUuid::parse(&call_uuid).ok_or(ApiError::NotFound("call"))?;
    state
        .store
        .call(Some(&account.auth_id), &call_uuid)
        .await?
        .ok_or(ApiError::NotFound("call"))?;
    let records = state.store.call_deliveries(&account.auth_id, &call_uuid).await?;
    Ok(Reply::ok(CallCallbacksOut {
        call_uuid: call_uuid.to_string(),
        objects: records.into_iter().map(CallbackOut::from).collect(),
    }))
}

/// Callbacks across the account's calls, newest first; filter by `status` and `since`.
#[utoipa::path(get, path = "/api/v1/account/{auth_id}/callbacks", tag = "callbacks",
    params(("auth_id" = String, Path),
        ("status" = Option<String>, Query, description = "pending, delivered, failed, filtered or unrouted"),
        ("since" = Option<String>, Query, description = "RFC 3339: created at or after"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size, 1–100 (default 20)"),
        ("offset" = Option<u64>, Query, format = "uint64", description = "Objects to skip, 0 to 18446744073709551615 (default 0)")),
    security(("auth_id" = [], "auth_token" = []), ("basic" = [])),
    responses((status = 200, body = ListOut<CallbackOut>)))]
async fn list_callbacks(
    State(state): State<AppState>,
    Authed(account): Authed,
    Paging(page, filters): Paging,
    uri: axum::http::Uri,
) -> Result<Reply<ListOut<CallbackOut>>, ApiError> {
    let filter = callback_filter(&query_pairs(&uri)?)?;
    let listing = state
        .store
        .list_deliveries(&account.auth_id, &filter, page)
        .await?;
    let path = format!("/api/v1/account/{}/callbacks", account.auth_id);
    Ok(Reply::ok(ListOut::new(
        &path,
        &filters,
        page,
        listing,
        CallbackOut::from,
    )))
}

/// The callback list's filters from a query (`status`, `since`): the one parser of the JSON
/// list and the dashboard's.
pub(crate) fn callback_filter(pairs: &[(String, String)]) -> Result<CallbackFilter, ApiError> {
    let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    Ok(CallbackFilter {
        status: get("status")
            .map(|s| {
                DeliveryStatus::parse(s).ok_or_else(|| {
                    ApiError::invalid(
                        "status",
                        "must be pending, delivered, failed, filtered or unrouted",
                    )
                })
            })
            .transpose()?,
        since: get("since").map(|t| parse_time("since", t)).transpose()?,
    })
}

//! Calls (level 1): make a call, read call records, hang up.
//!
//! Make-call validates everything before it writes; the call, its `CallInitiated` event and that
//! event's resolved deliveries are committed in one transaction before the 201 answer.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::call::{is_valid_number, DEFAULT_RING_TIMEOUT_S, DEFAULT_TIME_LIMIT_S};
use domain::fields::local_time;
use domain::{
    Account, AppId, Call, CallStatus, CallUuid, Direction, Engine, Patch, TrunkDirection, TrunkId,
    TrunkStatus,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use store::{CallCreation, CallFilter, IdempotentAnswer};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::clock;
use crate::error::{current_api_id, ApiError, Reply};
use crate::extract::{from_value, query_pairs, Authed, JsonBody, Paging, Path};
use crate::field::{Checker, Field};
use crate::routes::{parse_time, ListOut};
use crate::AppState;

/// Largest `time_limit` (s): Vobiz cuts calls at 24 h.
const MAX_TIME_LIMIT_S: u32 = 86_400;
const MAX_RING_TIMEOUT_S: u32 = 3_600;
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// A call record (Vobiz field names; times in the account's time zone).
#[derive(Serialize, ToSchema)]
pub struct CallOut {
    pub(crate) call_uuid: String,
    pub(crate) request_uuid: String,
    pub(crate) direction: String,
    pub(crate) from_number: String,
    pub(crate) to_number: String,
    pub(crate) call_status: String,
    /// `yyyy-MM-dd HH:mm:ss` in the account's time zone.
    pub(crate) initiation_time: String,
    pub(crate) answer_time: Option<String>,
    pub(crate) end_time: Option<String>,
    /// Talk time in seconds.
    pub(crate) call_duration: u64,
    pub(crate) bill_duration: u64,
    pub(crate) hangup_cause_name: Option<String>,
    pub(crate) hangup_cause_code: Option<u32>,
    pub(crate) hangup_source: Option<String>,
    pub(crate) app_id: Option<String>,
    pub(crate) trunk_id: Option<String>,
}

impl CallOut {
    pub fn new(call: Call, account: &Account) -> CallOut {
        let tz = account.timezone;
        CallOut {
            call_uuid: call.call_uuid.to_string(),
            request_uuid: call.call_uuid.to_string(),
            direction: call.direction.as_str().to_owned(),
            from_number: call.from.clone(),
            to_number: call.to.clone(),
            call_status: call.call_status.as_str().to_owned(),
            initiation_time: local_time(call.initiated_at, tz),
            answer_time: call.answered_at.map(|t| local_time(t, tz)),
            end_time: call.ended_at.map(|t| local_time(t, tz)),
            call_duration: call.duration_s(),
            bill_duration: call.bill_duration_s(),
            hangup_cause_name: call.hangup.as_ref().map(|h| h.cause.name.to_owned()),
            hangup_cause_code: call.hangup.as_ref().map(|h| h.cause.code),
            hangup_source: call.hangup.as_ref().map(|h| h.source.clone()),
            app_id: call.app_id.map(|id| id.to_string()),
            trunk_id: call.trunk_id.map(|id| id.to_string()),
        }
    }
}

/// The make-call request (PRODUCT.md §2.4).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MakeCallIn {
    /// Caller id: `+` optional, then 8–15 digits.
    #[schema(value_type = String, required = true)]
    #[serde(default)]
    from: Field<String>,
    /// Destination: digits as `from`, or a `sip:` URI.
    #[schema(value_type = String, required = true)]
    #[serde(default)]
    to: Field<String>,
    /// Level 1 status callback. Alias: `status_callback_url`.
    #[schema(value_type = Option<String>)]
    #[serde(default, alias = "status_callback_url")]
    status_url: Field<String>,
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    status_method: Field<String>,
    /// Selects level 2; must belong to the account.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    app_id: Field<String>,
    /// Selects level 3 and the engine; must belong to the account.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    trunk_id: Field<String>,
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    ring_url: Field<String>,
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    ring_method: Field<String>,
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    answer_url: Field<String>,
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    answer_method: Field<String>,
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    hangup_url: Field<String>,
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    hangup_method: Field<String>,
    /// Seconds, 1–86400, default 14400.
    #[schema(value_type = Option<u32>)]
    #[serde(default)]
    time_limit: Field<u32>,
    /// Seconds, 1–3600, default 120.
    #[schema(value_type = Option<u32>)]
    #[serde(default)]
    ring_timeout: Field<u32>,
    /// Record the call (adds `RecordStop` after `Hangup`).
    #[schema(value_type = Option<bool>)]
    #[serde(default)]
    record: Field<bool>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct CallFiredOut {
    message: String,
    request_uuid: String,
    call_uuid: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct CallListQuery {
    /// A call status, e.g. `completed`, `in-progress`.
    status: Option<String>,
    /// `inbound` or `outbound`.
    direction: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// RFC 3339: calls initiated at or after.
    since: Option<String>,
    /// RFC 3339: calls initiated before.
    until: Option<String>,
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// Calls to skip, 0 to 18446744073709551615 (default 0).
    #[param(format = "uint64")]
    offset: Option<u64>,
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_calls, make_call))
        .routes(routes!(get_call, hang_up))
}

/// `Some(value)` for a given field, `None` when omitted or `null`.
fn given<T>(patch: Patch<T>) -> Option<T> {
    match patch {
        Patch::Set(value) => Some(value),
        Patch::Keep | Patch::Clear => None,
    }
}

fn number(checker: &mut Checker, field: &str, value: Field<String>) -> Option<String> {
    if matches!(value, Field::Absent | Field::Null) {
        checker.add(field, "is required");
        return None;
    }
    given(checker.parsed(field, value, |text: String| {
        if is_valid_number(&text) {
            Ok(text)
        } else {
            Err("must be + and 8–15 digits, or a sip: URI")
        }
    }))
}

fn seconds(checker: &mut Checker, field: &str, value: Field<u32>, default: u32, max: u32) -> u32 {
    given(checker.parsed(field, value, |n: u32| {
        if (1..=max).contains(&n) {
            Ok(n)
        } else {
            Err(format!("must be from 1 to {max} seconds"))
        }
    }))
    .unwrap_or(default)
}

/// Hashes the request body independent of key order and spacing, for `Idempotency-Key`.
fn request_hash(value: &serde_json::Value) -> [u8; 32] {
    fn canonical(value: &serde_json::Value, out: &mut String) {
        match value {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for key in keys {
                    out.push_str(&serde_json::Value::String(key.clone()).to_string());
                    out.push(':');
                    canonical(&map[key.as_str()], out);
                    out.push(',');
                }
                out.push('}');
            }
            serde_json::Value::Array(items) => {
                out.push('[');
                for item in items {
                    canonical(item, out);
                    out.push(',');
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut text = String::new();
    canonical(value, &mut text);
    Sha256::digest(text.as_bytes()).into()
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().map(str::trim).unwrap_or("");
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(ApiError::invalid(
            "Idempotency-Key",
            "must be 1–255 visible ASCII characters",
        ));
    }
    Ok(Some(key.to_owned()))
}

fn replay(answer: IdempotentAnswer, hash: [u8; 32]) -> Result<Response, ApiError> {
    if answer.request_hash != hash {
        return Err(ApiError::Unprocessable(
            "this Idempotency-Key was used with a different request body".to_owned(),
        ));
    }
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::CREATED);
    // The body is the first answer's, `api_id` included; the header says it is a replay.
    Ok((
        status,
        [
            ("content-type", "application/json"),
            ("idempotent-replayed", "true"),
        ],
        answer.body,
    )
        .into_response())
}

/// Make a call. With `Idempotency-Key`, a repeat within 24 h returns the first answer.
#[utoipa::path(post, path = "/api/v1/account/{auth_id}/calls", tag = "calls",
    params(("auth_id" = String, Path), ("Idempotency-Key" = Option<String>, Header)), request_body = MakeCallIn,
    security(("auth_id" = [], "auth_token" = []), ("basic" = [])),
    responses((status = 201, body = CallFiredOut),
        (status = 422, description = "The trunk is inactive or inbound-only, or the Idempotency-Key was used with another body", body = crate::error::ErrorSchema)))]
async fn make_call(
    State(state): State<AppState>,
    Authed(account): Authed,
    headers: HeaderMap,
    JsonBody(value): JsonBody<serde_json::Value>,
) -> Result<Response, ApiError> {
    let now = clock::now();
    let key = idempotency_key(&headers)?;
    let hash = request_hash(&value);
    if let Some(key) = &key {
        if let Some(answer) = state.store.idempotent_answer(&account.auth_id, key, now).await? {
            return replay(answer, hash);
        }
    }
    // After the replay: answering a repeated request again places no call.
    crate::extract::limit(
        &state.limiters.calls,
        account.auth_id.as_str(),
        "this account's make-call limit",
    )?;
    let call = build_call(&state, &account, from_value(value)?, now).await?;
    let fired = CallFiredOut {
        message: "call fired".to_owned(),
        request_uuid: call.call_uuid.to_string(),
        call_uuid: call.call_uuid.to_string(),
    };
    let body = serde_json::json!({
        "api_id": current_api_id(),
        "message": fired.message,
        "request_uuid": fired.request_uuid,
        "call_uuid": fired.call_uuid,
    })
    .to_string();
    let idempotency = key.as_deref().map(|key| {
        (
            key,
            IdempotentAnswer {
                request_hash: hash,
                status: StatusCode::CREATED.as_u16(),
                body: body.clone(),
            },
        )
    });
    match state.store.create_call(&call, idempotency, now).await? {
        CallCreation::Created(call) => {
            state.notify.call_changed(&call);
            state.notify.events_recorded(1);
            Ok((StatusCode::CREATED, [("content-type", "application/json")], body).into_response())
        }
        CallCreation::Replayed(answer) => replay(answer, hash),
    }
}

async fn build_call(
    state: &AppState,
    account: &Account,
    body: MakeCallIn,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Call, ApiError> {
    let mut checker = Checker::new(state.settings.url_policy);
    let from = number(&mut checker, "from", body.from);
    let to = number(&mut checker, "to", body.to);
    let status = checker.target("status_url", body.status_url, body.status_method);
    let ring = checker.target("ring_url", body.ring_url, body.ring_method);
    let answer = checker.target("answer_url", body.answer_url, body.answer_method);
    let hangup = checker.target("hangup_url", body.hangup_url, body.hangup_method);
    let time_limit_s = seconds(
        &mut checker,
        "time_limit",
        body.time_limit,
        DEFAULT_TIME_LIMIT_S,
        MAX_TIME_LIMIT_S,
    );
    let ring_timeout_s = seconds(
        &mut checker,
        "ring_timeout",
        body.ring_timeout,
        DEFAULT_RING_TIMEOUT_S,
        MAX_RING_TIMEOUT_S,
    );
    let record =
        given(checker.parsed("record", body.record, Ok::<bool, std::convert::Infallible>)).unwrap_or(false);
    let app_text = given(checker.parsed("app_id", body.app_id, Ok::<String, std::convert::Infallible>));
    let trunk_text = given(checker.parsed("trunk_id", body.trunk_id, Ok::<String, std::convert::Infallible>));
    checker.finish()?;

    let app_id = match app_text {
        None => None,
        Some(text) => {
            let id = AppId::parse(&text).ok_or(ApiError::NotFound("application"))?;
            state
                .store
                .application(&account.auth_id, &id)
                .await?
                .ok_or(ApiError::NotFound("application"))?;
            Some(id)
        }
    };
    let trunk = match trunk_text {
        None => None,
        Some(text) => {
            let id = TrunkId::parse(&text).ok_or(ApiError::NotFound("trunk"))?;
            Some(
                state
                    .store
                    .trunk(&account.auth_id, &id)
                    .await?
                    .ok_or(ApiError::NotFound("trunk"))?,
            )
        }
    };
    if let Some(trunk) = &trunk {
        if trunk.trunk_status == TrunkStatus::Inactive {
            return Err(ApiError::Unprocessable("the trunk is inactive".to_owned()));
        }
        if trunk.trunk_direction == TrunkDirection::Inbound {
            return Err(ApiError::Unprocessable(
                "the trunk only carries inbound calls".to_owned(),
            ));
        }
    }
    let engine = trunk.as_ref().map_or(Engine::Simulated, |t| t.engine);
    Ok(Call {
        app_id,
        trunk_id: trunk.as_ref().map(|t| t.trunk_id),
        status,
        ring,
        answer,
        hangup_target: hangup,
        time_limit_s,
        ring_timeout_s,
        record: record || trunk.as_ref().is_some_and(|t| t.recording),
        ..Call::new(
            CallUuid::from_random(rand::random()),
            account.auth_id.clone(),
            Direction::Outbound,
            from.unwrap_or_default(),
            to.unwrap_or_default(),
            engine,
            now,
        )
    })
}

/// List call records, newest first.
#[utoipa::path(get, path = "/api/v1/account/{auth_id}/calls", tag = "calls",
    params(("auth_id" = String, Path), CallListQuery),
    security(("auth_id" = [], "auth_token" = []), ("basic" = [])),
    responses((status = 200, body = ListOut<CallOut>)))]
async fn list_calls(
    State(state): State<AppState>,
    Authed(account): Authed,
    Paging(page, filters): Paging,
    uri: axum::http::Uri,
) -> Result<Reply<ListOut<CallOut>>, ApiError> {
    let filter = call_filter(&query_pairs(&uri)?)?;
    let listing = state.store.list_calls(&account.auth_id, &filter, page).await?;
    let path = format!("/api/v1/account/{}/calls", account.auth_id);
    Ok(Reply::ok(ListOut::new(&path, &filters, page, listing, |call| {
        CallOut::new(call, &account)
    })))
}

/// The call list's filters from a query (`status`, `direction`, `from`, `to`, `since`,
/// `until`): the one parser of the JSON list and the dashboard's.
pub(crate) fn call_filter(pairs: &[(String, String)]) -> Result<CallFilter, ApiError> {
    let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    Ok(CallFilter {
        status: get("status")
            .map(|s| CallStatus::parse(s).ok_or_else(|| ApiError::invalid("status", "is not a call status")))
            .transpose()?,
        direction: get("direction")
            .map(|d| {
                Direction::parse(d)
                    .ok_or_else(|| ApiError::invalid("direction", "must be inbound or outbound"))
            })
            .transpose()?,
        from: get("from").map(str::to_owned),
        to: get("to").map(str::to_owned),
        since: get("since").map(|t| parse_time("since", t)).transpose()?,
        until: get("until").map(|t| parse_time("until", t)).transpose()?,
    })
}

/// Retrieve a call record.
#[utoipa::path(get, path = "/api/v1/account/{auth_id}/calls/{call_uuid}", tag = "calls",
    params(("auth_id" = String, Path), ("call_uuid" = String, Path)),
    security(("auth_id" = [], "auth_token" = []), ("basic" = [])),
    responses((status = 200, body = CallOut)))]
async fn get_call(
    State(state): State<AppState>,
    Authed(account): Authed,
    Path((_auth_id, call_uuid)): Path<(String, String)>,
) -> Result<Reply<CallOut>, ApiError> {
    let call_uuid = CallUuid::parse(&call_uuid).ok_or(ApiError::NotFound("call"))?;
    let call = state
        .store
        .call(Some(&account.auth_id), &call_uuid)
        .await?
        .ok_or(ApiError::NotFound("call"))?;
    Ok(Reply::ok(CallOut::new(call, &account)))
}

/// Hang up a call: before answer it is cancelled, after answer completed; a `Hangup` event follows.
#[utoipa::path(delete, path = "/api/v1/account/{auth_id}/calls/{call_uuid}", tag = "calls",
    params(("auth_id" = String, Path), ("call_uuid" = String, Path)),
    security(("auth_id" = [], "auth_token" = []), ("basic" = [])),
    responses((status = 204), (status = 409, description = "The call has already ended", body = crate::error::ErrorSchema)))]
async fn hang_up(
    State(state): State<AppState>,
    Authed(account): Authed,
    Path((_auth_id, call_uuid)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let call_uuid = CallUuid::parse(&call_uuid).ok_or(ApiError::NotFound("call"))?;
    let now = clock::now();
    let recorded = state
        .store
        .apply_report(
            Some(&account.auth_id),
            &call_uuid,
            domain::Report::HangupByApi,
            now,
            now,
        )
        .await
        .map_err(|e| match e {
            store::StoreError::NotFound => ApiError::NotFound("call"),
            store::StoreError::Transition(_) => ApiError::Conflict("the call has already ended".to_owned()),
            other => other.into(),
        })?;
    state.notify.call_changed(&recorded.call);
    state.notify.events_recorded(1);
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_hash_ignores_key_order_and_spacing() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"to":"+14155550100","from":"+14155551234"}"#).expect("json");
        let b: serde_json::Value =
            serde_json::from_str(r#"{ "from": "+14155551234", "to": "+14155550100" }"#).expect("json");
        let c: serde_json::Value =
            serde_json::from_str(r#"{"from":"+14155551234","to":"+14155550101"}"#).expect("json");
        assert_eq!(request_hash(&a), request_hash(&b));
        assert_ne!(request_hash(&a), request_hash(&c));
    }
}

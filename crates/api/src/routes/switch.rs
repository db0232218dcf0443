//! The switch interface (PRODUCT.md §2.6, §6), for the operator's real switch: register calls
//! it saw and report their progress one by one or in batches. Reports go through the same
//! state machine as the simulated carrier: a duplicate or out-of-order report answers 409 and
//! changes nothing.

use axum::extract::State;
use chrono::{DateTime, Utc};
use domain::call::Recording;
use domain::{
    AppId, AuthId, Call, CallStatus, CallUuid, Direction, Engine, EventKind, HangupCause, Report, TrunkId,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use store::StoreError;

use crate::clock;
use crate::error::{ApiError, Reply};
use crate::extract::{JsonBody, Operator, Path};
use crate::field::{Checker, Field};
use crate::routes::parse_time;
use crate::AppState;

/// Largest batch of `POST /api/v1/switch/events`.
const MAX_BATCH: usize = 1000;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterCallIn {
    #[schema(value_type = String, required = true)]
    #[serde(default)]
    auth_id: Field<String>,
    /// `inbound` or `outbound`.
    #[schema(value_type = String, required = true)]
    #[serde(default)]
    direction: Field<String>,
    #[schema(value_type = String, required = true)]
    #[serde(default)]
    from: Field<String>,
    #[schema(value_type = String, required = true)]
    #[serde(default)]
    to: Field<String>,
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    trunk_id: Field<String>,
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    app_id: Field<String>,
    /// The switch's own id for the call (a UUID); generated when absent.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    call_uuid: Field<String>,
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    status_url: Field<String>,
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    status_method: Field<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RegisteredOut {
    call_uuid: String,
}

/// One progress report.
#[derive(Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    /// Only in batches: the call the report is about.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    call_uuid: Field<String>,
    /// `Ring`, `StartApp`, `Hangup` or `RecordStop`.
    #[schema(value_type = String, required = true)]
    #[serde(default)]
    event: Field<String>,
    /// RFC 3339: when it happened (the callback's `timestamp`); default now.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    at: Field<String>,
    /// Hangup: the final status; derived from `hangup_cause` when absent.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    call_status: Field<String>,
    /// Hangup: e.g. `NORMAL_CLEARING`, `USER_BUSY`; default from `call_status`, else `NORMAL_CLEARING`.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    hangup_cause: Field<String>,
    /// Hangup: `Caller`, `Callee`, `Carrier`, …; default `Unknown`.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    hangup_source: Field<String>,
    /// RecordStop: required.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    recording_id: Field<String>,
    /// RecordStop: required.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    record_url: Field<String>,
    #[schema(value_type = Option<u64>)]
    #[serde(default)]
    recording_duration_ms: Field<u64>,
    /// RecordStop: default `HungUp`.
    #[schema(value_type = Option<String>)]
    #[serde(default)]
    recording_end_reason: Field<String>,
}

#[derive(Serialize, ToSchema)]
pub struct EventRecordedOut {
    event_id: String,
    sequence: u32,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchIn {
    events: Vec<serde_json::Value>,
}

/// The outcome of one report of a batch.
#[derive(Serialize, ToSchema)]
pub struct BatchResultOut {
    /// The HTTP status the report alone would have had (201, 400, 404, 409, 422).
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sequence: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<crate::error::Details>,
}

#[derive(Serialize, ToSchema)]
pub struct BatchOut {
    results: Vec<BatchResultOut>,
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register_call))
        .routes(routes!(report_event))
        .routes(routes!(report_batch))
}

fn text(field: &Field<String>) -> Option<&str> {
    match field {
        Field::Value(text) => Some(text),
        Field::Absent | Field::Null => None,
    }
}

/// Register a call the switch saw (operator).
#[utoipa::path(post, path = "/api/v1/switch/calls", tag = "switch", request_body = RegisterCallIn,
    security(("operator" = [])),
    responses((status = 201, body = RegisteredOut),
        (status = 404, description = "No such account, or no such application or trunk in it", body = crate::error::ErrorSchema),
        (status = 409, description = "A call with this call_uuid is already registered", body = crate::error::ErrorSchema)))]
async fn register_call(
    State(state): State<AppState>,
    _operator: Operator,
    JsonBody(body): JsonBody<RegisterCallIn>,
) -> Result<Reply<RegisteredOut>, ApiError> {
    let mut checker = Checker::new(state.settings.url_policy);
    for (field, value) in [
        ("auth_id", &body.auth_id),
        ("direction", &body.direction),
        ("from", &body.from),
        ("to", &body.to),
    ] {
        if text(value).is_none() {
            checker.add(field, "is required");
        }
    }
    let direction = text(&body.direction).map(|d| Direction::parse(d).ok_or(()));
    if let Some(Err(())) = direction {
        checker.add("direction", "must be inbound or outbound");
    }
    for field in ["from", "to"] {
        let value = if field == "from" { &body.from } else { &body.to };
        if text(value).is_some_and(|n| !domain::call::is_valid_number(n)) {
            checker.add(field, "must be + and 8–15 digits, or a sip: URI");
        }
    }
    let call_uuid = match text(&body.call_uuid) {
        None => CallUuid::from_random(rand::random()),
        Some(id) => CallUuid::parse(id).unwrap_or_else(|| {
            checker.add("call_uuid", "must be a UUID");
            CallUuid::from_random(0)
        }),
    };
    let status = checker.target("status_url", body.status_url, body.status_method);
    checker.finish()?;

    let auth_id = text(&body.auth_id)
        .and_then(AuthId::parse)
        .ok_or(ApiError::NotFound("account"))?;
    // Without an application or trunk to look up under it, the account's existence is checked
    // by the write itself (a reference to it), one read less on the switch's hot path.
    if text(&body.app_id).is_some() || text(&body.trunk_id).is_some() {
        state
            .store
            .account(&auth_id)
            .await?
            .ok_or(ApiError::NotFound("account"))?;
    }
    let app_id = match text(&body.app_id) {
        None => None,
        Some(id) => {
            let id = AppId::parse(id).ok_or(ApiError::NotFound("application"))?;
            state
                .store
                .application(&auth_id, &id)
                .await?
                .ok_or(ApiError::NotFound("application"))?;
            Some(id)
        }
    };
    let trunk_id = match text(&body.trunk_id) {
        None => None,
        Some(id) => {
            let id = TrunkId::parse(id).ok_or(ApiError::NotFound("trunk"))?;
            state
                .store
                .trunk(&auth_id, &id)
                .await?
                .ok_or(ApiError::NotFound("trunk"))?;
            Some(id)
        }
    };
    let now = clock::now();
    // A switch-reported call has no limits of its own: the switch reports its end.
    let call = Call {
        app_id,
        trunk_id,
        status,
        time_limit_s: 86_400,
        ring_timeout_s: 3_600,
        ..Call::new(
            call_uuid,
            auth_id,
            direction.and_then(Result::ok).unwrap_or(Direction::Inbound),
            text(&body.from).unwrap_or_default().to_owned(),
            text(&body.to).unwrap_or_default().to_owned(),
            Engine::External,
            now,
        )
    };
    match state.store.create_call(&call, None, now).await {
        Ok(_) => {}
        Err(StoreError::NotFound) => return Err(ApiError::NotFound("account")),
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::Conflict(
                "a call with this call_uuid is already registered".to_owned(),
            ))
        }
        Err(other) => return Err(other.into()),
    }
    state.notify.events_recorded(1);
    Ok(Reply::created(RegisteredOut {
        call_uuid: call_uuid.to_string(),
    }))
}

/// Turns a report body into a domain report and its time.
fn parse_report(body: EventIn) -> Result<(Report, DateTime<Utc>), ApiError> {
    let event = text(&body.event).ok_or_else(|| ApiError::invalid("event", "is required"))?;
    let kind = EventKind::parse(event).ok_or_else(|| {
        ApiError::invalid(
            "event",
            format!("unknown event {event:?}; use Ring, StartApp, Hangup or RecordStop"),
        )
    })?;
    let at = match text(&body.at) {
        Some(at) => parse_time("at", at)?,
        None => clock::now(),
    };
    let report = match kind {
        EventKind::CallInitiated => {
            return Err(ApiError::Conflict(
                "CallInitiated is recorded when the call is registered".to_owned(),
            ))
        }
        EventKind::Ring => Report::Ring,
        EventKind::StartApp => Report::Answer,
        EventKind::Hangup => {
            let status = text(&body.call_status)
                .map(|s| {
                    CallStatus::parse(s).filter(|s| s.is_final()).ok_or_else(|| {
                        ApiError::invalid(
                            "call_status",
                            "must be completed, busy, no-answer, failed, timeout or cancel",
                        )
                    })
                })
                .transpose()?;
            let cause = match text(&body.hangup_cause) {
                Some(cause) => HangupCause::parse(cause).ok_or_else(|| {
                    ApiError::invalid("hangup_cause", format!("unknown hangup cause {cause:?}"))
                })?,
                None => HangupCause::known(default_cause(status)),
            };
            Report::Hangup {
                cause,
                source: text(&body.hangup_source).unwrap_or("Unknown").to_owned(),
                status,
            }
        }
        EventKind::RecordStop => {
            let recording_id =
                text(&body.recording_id).ok_or_else(|| ApiError::invalid("recording_id", "is required"))?;
            let url = text(&body.record_url).ok_or_else(|| ApiError::invalid("record_url", "is required"))?;
            Report::RecordStop(Recording {
                recording_id: recording_id.to_owned(),
                url: url.to_owned(),
                duration_ms: match body.recording_duration_ms {
                    Field::Value(ms) => ms,
                    Field::Absent | Field::Null => 0,
                },
                end_reason: text(&body.recording_end_reason).unwrap_or("HungUp").to_owned(),
            })
        }
    };
    Ok((report, at))
}

/// The cause a switch most likely means by a final status it names without a cause.
fn default_cause(status: Option<CallStatus>) -> &'static str {
    match status {
        Some(CallStatus::Busy) => "USER_BUSY",
        Some(CallStatus::NoAnswer) => "NO_ANSWER",
        Some(CallStatus::Cancel) => "ORIGINATOR_CANCEL",
        Some(CallStatus::Timeout) => "RING_TIMEOUT",
        Some(CallStatus::Failed) => "UNKNOWN",
        _ => "NORMAL_CLEARING",
    }
}

async fn apply(state: &AppState, call_uuid: &str, body: EventIn) -> Result<EventRecordedOut, ApiError> {
    let call_uuid = CallUuid::parse(call_uuid).ok_or(ApiError::NotFound("call"))?;
    let (report, at) = parse_report(body)?;
    let recorded = state
        .store
        .apply_report(None, &call_uuid, report, at, clock::now())
        .await
        .map_err(|e| match e {
            store::StoreError::NotFound => ApiError::NotFound("call"),
            other => other.into(),
        })?;
    Ok(EventRecordedOut {
        event_id: recorded.event_id.to_string(),
        sequence: recorded.sequence,
    })
}

/// Report one event of a call (operator).
#[utoipa::path(post, path = "/api/v1/switch/calls/{call_uuid}/events", tag = "switch",
    params(("call_uuid" = String, Path)), request_body = EventIn, security(("operator" = [])),
    responses((status = 201, body = EventRecordedOut),
        (status = 409, description = "A duplicate or out-of-order report", body = crate::error::ErrorSchema),
        (status = 422, description = "A report inconsistent with the call's state", body = crate::error::ErrorSchema)))]
async fn report_event(
    State(state): State<AppState>,
    _operator: Operator,
    Path(call_uuid): Path<String>,
    JsonBody(body): JsonBody<EventIn>,
) -> Result<Reply<EventRecordedOut>, ApiError> {
    if text(&body.call_uuid).is_some_and(|id| id != call_uuid) {
        return Err(ApiError::invalid(
            "call_uuid",
            "differs from the call in the path",
        ));
    }
    let recorded = apply(&state, &call_uuid, body).await?;
    state.notify.events_recorded(1);
    Ok(Reply::created(recorded))
}

/// Report events of many calls; each is applied or refused on its own, in order (operator).
#[utoipa::path(post, path = "/api/v1/switch/events", tag = "switch", request_body = BatchIn,
    security(("operator" = [])),
    responses((status = 200, body = BatchOut)))]
async fn report_batch(
    State(state): State<AppState>,
    _operator: Operator,
    JsonBody(batch): JsonBody<BatchIn>,
) -> Result<Reply<BatchOut>, ApiError> {
    if batch.events.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            "events",
            format!("at most {MAX_BATCH} events per batch"),
        ));
    }
    let mut results = Vec::with_capacity(batch.events.len());
    for item in batch.events {
        let outcome = match crate::extract::from_value::<EventIn>(item) {
            Ok(body) => match text(&body.call_uuid).map(str::to_owned) {
                Some(call_uuid) => apply(&state, &call_uuid, body).await,
                None => Err(ApiError::invalid("call_uuid", "is required in a batch")),
            },
            Err(error) => Err(error),
        };
        results.push(match outcome {
            Ok(recorded) => BatchResultOut {
                status: 201,
                event_id: Some(recorded.event_id),
                sequence: Some(recorded.sequence),
                error: None,
                details: None,
            },
            Err(error) => BatchResultOut {
                status: error.status().as_u16(),
                event_id: None,
                sequence: None,
                error: Some(error.to_string()),
                details: match error {
                    ApiError::Invalid(details) => Some(details),
                    _ => None,
                },
            },
        });
    }
    let applied = results.iter().filter(|r| r.event_id.is_some()).count();
    state
        .notify
        .events_recorded(u64::try_from(applied).unwrap_or(u64::MAX));
    Ok(Reply::ok(BatchOut { results }))
}

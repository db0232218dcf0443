//! Calls, events and deliveries on PostgreSQL: the same steps as on SQLite (an event, the
//! call state it produced and its deliveries in one transaction), with the row locks several
//! nodes need.
//!
//! A report locks its call's row before it reads the state (`FOR UPDATE`), so two nodes
//! applying reports to one call take turns: the sequence number and the transition are decided
//! on the latest state. The same lock orders a new event against the end of an earlier one
//! (see `queue::record_attempts`): a new delivery either sees that event still pending and
//! waits, or sees it ended and is due — never neither.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use domain::call::Target;
use domain::resolution::{DirectUrls, Hierarchy};
use domain::{AppId, AuthId, Call, CallUuid, DeliveryStatus, EventId, EventKind, Level, Report, Verdict};

use super::db::{all, execute, first};
use crate::codec::*;
use crate::rows::{call_from_row, configuration_from_row, idempotent_from_row};
use crate::sql::{new_event_id, offset_to_db, IDEMPOTENCY_WINDOW_MICROS};
use crate::{
    CallCreation, CallFilter, CallbackFilter, DeliveryRecord, IdempotentAnswer, Listing, Page, RecordedEvent,
    StoreError,
};

async fn insert_call(tx: &impl GenericClient, call: &Call, now: DateTime<Utc>) -> Result<(), StoreError> {
    let recording = call.recording.as_ref();
    execute(
        tx,
        concat!(
            "INSERT INTO calls (",
            call_columns!(),
            ", updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32)"
        ),
        &[
            &call.call_uuid.to_string(),
            &call.auth_id.as_str(),
            &call.direction.as_str(),
            &call.from,
            &call.to,
            &call.engine.as_str(),
            &call.app_id.as_ref().map(AppId::as_str),
            &call.trunk_id.map(|id| id.to_string()),
            &target_url(&call.status),
            &target_method(&call.status),
            &target_url(&call.ring),
            &target_method(&call.ring),
            &target_url(&call.answer),
            &target_method(&call.answer),
            &target_url(&call.hangup_target),
            &target_method(&call.hangup_target),
            &i64::from(call.time_limit_s),
            &i64::from(call.ring_timeout_s),
            &call.record,
            &call.call_status.as_str(),
            &time_to_db(call.initiated_at),
            &call.ringing_at.map(time_to_db),
            &call.answered_at.map(time_to_db),
            &call.ended_at.map(time_to_db),
            &call.hangup.as_ref().map(|h| h.cause.cause),
            &call.hangup.as_ref().map(|h| h.source.as_str()),
            &recording.map(|r| r.recording_id.as_str()),
            &recording.map(|r| r.url.as_str()),
            &recording.map(|r| i64::try_from(r.duration_ms).unwrap_or(i64::MAX)),
            &recording.map(|r| r.end_reason.as_str()),
            &i64::from(call.last_sequence),
            &time_to_db(now),
        ],
    )
    .await
    .map_err(|error| {
        if error.is_foreign_key_violation() {
            StoreError::NotFound
        } else if error.is_unique_violation() {
            StoreError::Conflict("the id is already taken")
        } else {
            error
        }
    })?;
    Ok(())
}

/// Writes the mutable state of a call (after a transition).
async fn update_call(tx: &impl GenericClient, call: &Call, now: DateTime<Utc>) -> Result<(), StoreError> {
    let recording = call.recording.as_ref();
    execute(
        tx,
        "UPDATE calls SET call_status = $1, ringing_at = $2, answered_at = $3, ended_at = $4, hangup_cause = $5, \
         hangup_source = $6, recording_id = $7, recording_url = $8, recording_duration_ms = $9, \
         recording_end_reason = $10, last_sequence = $11, updated_at = $12 WHERE call_uuid = $13",
        &[
            &call.call_status.as_str(),
            &call.ringing_at.map(time_to_db),
            &call.answered_at.map(time_to_db),
            &call.ended_at.map(time_to_db),
            &call.hangup.as_ref().map(|h| h.cause.cause),
            &call.hangup.as_ref().map(|h| h.source.as_str()),
            &recording.map(|r| r.recording_id.as_str()),
            &recording.map(|r| r.url.as_str()),
            &recording.map(|r| i64::try_from(r.duration_ms).unwrap_or(i64::MAX)),
            &recording.map(|r| r.end_reason.as_str()),
            &i64::from(call.last_sequence),
            &time_to_db(now),
            &call.call_uuid.to_string(),
        ],
    )
    .await?;
    Ok(())
}

/// A call; with `lock`, its row stays locked until the transaction ends.
pub(super) async fn load_call(
    client: &impl GenericClient,
    auth_id: Option<&AuthId>,
    call_uuid: &CallUuid,
    lock: bool,
) -> Result<Option<Call>, StoreError> {
    const READ: &str = concat!(
        "SELECT ",
        call_columns!(),
        " FROM calls WHERE call_uuid = $1 AND ($2::TEXT IS NULL OR auth_id = $2)"
    );
    const LOCK: &str = concat!(
        "SELECT ",
        call_columns!(),
        " FROM calls WHERE call_uuid = $1 AND ($2::TEXT IS NULL OR auth_id = $2) FOR UPDATE"
    );
    first(
        client,
        if lock { LOCK } else { READ },
        &[&call_uuid.to_string(), &auth_id.map(AuthId::as_str)],
        call_from_row,
    )
    .await
}

/// Resolves and records one event of `call` (already in its post-event state), with its
/// deliveries: one statement for the event and all its deliveries, so an event costs one round
/// trip however many channels it has. `configuration` is read in the same transaction.
async fn record_event(
    tx: &impl GenericClient,
    call: &Call,
    configuration: (Hierarchy, DirectUrls, domain::Timezone),
    kind: EventKind,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    event_id: EventId,
) -> Result<(), StoreError> {
    let (hierarchy, application_direct, timezone) = configuration;
    let call_direct = DirectUrls {
        ring: call.ring.clone(),
        answer: call.answer.clone(),
        hangup: call.hangup_target.clone(),
    };
    let call_status = call.call_status.as_str();
    let fields = domain::fields::callback_fields(call, kind, at, timezone);
    let fields_json = serde_json::to_string(&fields).expect("a list of string pairs always serialises");
    let plan = domain::resolution::plan(&hierarchy, &call_direct, &application_direct, kind, call_status);
    let mut channels = Deliveries::default();
    for (channel, resolution) in plan {
        let status = match resolution.verdict {
            Verdict::Send => DeliveryStatus::Pending,
            Verdict::Filtered => DeliveryStatus::Filtered,
            Verdict::Unrouted => DeliveryStatus::Unrouted,
        };
        channels.channel.push(channel.as_str());
        channels.level.push(resolution.level.map(Level::as_str));
        channels.reason.push(resolution.reason);
        channels
            .url
            .push(resolution.url.as_ref().map(|u| u.as_str().to_owned()));
        channels.method.push(resolution.method.as_str());
        channels
            .fallback
            .push(resolution.fallback.as_ref().map(|u| u.as_str().to_owned()));
        channels.status.push(status.as_str());
    }
    // A delivery behind an earlier pending event of the call to the same URL waits without a
    // due time; recording its predecessor's end gives it one (`queue::record_attempts`).
    execute(
        tx,
        concat!(
            "WITH e AS (INSERT INTO events (event_id, call_uuid, auth_id, sequence, event, call_status, \
               occurred_at, fields, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING event_id) \
             INSERT INTO deliveries (event_id, call_uuid, auth_id, sequence, event, channel, level, reason, url, \
               method, fallback_url, status, next_attempt_at, created_at, updated_at) \
             SELECT e.event_id, $2, $3, $4, $5, d.channel, d.level, d.reason, d.url, d.method, d.fallback, \
               d.status, CASE WHEN d.status = 'pending' AND d.url IS NOT NULL AND NOT ",
            earlier_pending!("$2", "d.url", "$4"),
            " THEN $9 END, $9, $9 \
             FROM e, UNNEST($10::TEXT[], $11::TEXT[], $12::TEXT[], $13::TEXT[], $14::TEXT[], $15::TEXT[], \
               $16::TEXT[]) AS d (channel, level, reason, url, method, fallback, status)"
        ),
        &[
            &event_id.to_string(),
            &call.call_uuid.to_string(),
            &call.auth_id.as_str(),
            &i64::from(call.last_sequence),
            &kind.as_str(),
            &call_status,
            &time_to_db(at),
            &fields_json,
            &time_to_db(now),
            &channels.channel,
            &channels.level,
            &channels.reason,
            &channels.url,
            &channels.method,
            &channels.fallback,
            &channels.status,
        ],
    )
    .await?;
    Ok(())
}

/// The deliveries of one event, column by column (the arrays of one `UNNEST`).
#[derive(Default)]
struct Deliveries {
    channel: Vec<&'static str>,
    level: Vec<Option<&'static str>>,
    reason: Vec<String>,
    url: Vec<Option<String>>,
    method: Vec<&'static str>,
    fallback: Vec<Option<String>>,
    status: Vec<&'static str>,
}

/// The configuration that resolves this call's events, as it stands now.
async fn configuration(
    tx: &impl GenericClient,
    call: &Call,
) -> Result<(Hierarchy, DirectUrls, domain::Timezone), StoreError> {
    first(
        tx,
        "SELECT a.timezone, a.default_callback_url, a.default_callback_method, a.default_callback_events, \
         p.app_id, p.callback_url, p.callback_method, p.fallback_callback_url, p.callback_events, \
         p.answer_url, p.answer_method, p.hangup_url, p.hangup_method, \
         t.trunk_id, t.status_callback, t.status_callback_method, t.status_callback_events \
         FROM accounts a \
         LEFT JOIN applications p ON p.auth_id = a.auth_id AND p.app_id = $2 \
         LEFT JOIN trunks t ON t.auth_id = a.auth_id AND t.trunk_id = $3 \
         WHERE a.auth_id = $1",
        &[
            &call.auth_id.as_str(),
            &call.app_id.as_ref().map(AppId::as_str),
            &call.trunk_id.map(|id| id.to_string()),
        ],
        |row| configuration_from_row(row, call),
    )
    .await?
    .ok_or(StoreError::NotFound)
}

fn target_url(target: &Option<Target>) -> Option<&str> {
    target.as_ref().map(|t| t.url.as_str())
}

fn target_method(target: &Option<Target>) -> Option<&'static str> {
    target.as_ref().map(|t| t.method.as_str())
}

pub(super) async fn create_call(
    tx: &impl GenericClient,
    call: &Call,
    idempotency: Option<&(&str, IdempotentAnswer)>,
    now: DateTime<Utc>,
) -> Result<CallCreation, StoreError> {
    if let Some((key, answer)) = idempotency {
        // Takes the key, or finds it live: a concurrent request with the same key (on any node)
        // waits here for the other's commit, then replays its answer.
        let taken = first(
            tx,
            "INSERT INTO idempotency_keys (auth_id, key, request_hash, status, body, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (auth_id, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, \
               status = EXCLUDED.status, body = EXCLUDED.body, created_at = EXCLUDED.created_at \
             WHERE idempotency_keys.created_at <= $7 \
             RETURNING 1",
            &[
                &call.auth_id.as_str(),
                key,
                &answer.request_hash.as_slice(),
                &i64::from(answer.status),
                &answer.body,
                &time_to_db(now),
                &(time_to_db(now) - IDEMPOTENCY_WINDOW_MICROS),
            ],
            |_| Ok(()),
        )
        .await?;
        if taken.is_none() {
            let existing = fetch_idempotent(tx, &call.auth_id, key, now).await?;
            return existing
                .map(CallCreation::Replayed)
                .ok_or(StoreError::Conflict("the idempotency key is in use"));
        }
    }
    let ((), configuration) = futures_util::try_join!(insert_call(tx, call, now), configuration(tx, call))?;
    record_event(
        tx,
        call,
        configuration,
        EventKind::CallInitiated,
        call.initiated_at,
        now,
        new_event_id(now),
    )
    .await?;
    Ok(CallCreation::Created(Box::new(call.clone())))
}

pub(super) async fn list_calls(
    client: &impl GenericClient,
    auth_id: &AuthId,
    filter: &CallFilter,
    page: Page,
) -> Result<Listing<Call>, StoreError> {
    macro_rules! filtered {
        () => {
            "WHERE auth_id = $1 AND ($2::TEXT IS NULL OR call_status = $2) AND ($3::TEXT IS NULL OR direction = $3) \
             AND ($4::TEXT IS NULL OR from_number = $4) AND ($5::TEXT IS NULL OR to_number = $5) \
             AND ($6::BIGINT IS NULL OR initiated_at >= $6) AND ($7::BIGINT IS NULL OR initiated_at < $7)"
        };
    }
    let (status, direction) = (
        filter.status.map(|s| s.as_str()),
        filter.direction.map(|d| d.as_str()),
    );
    let (since, until) = (filter.since.map(time_to_db), filter.until.map(time_to_db));
    let (limit, offset) = (i64::from(page.limit), offset_to_db(page.offset));
    let items = all(
        client,
        concat!(
            "SELECT ",
            call_columns!(),
            " FROM calls ",
            filtered!(),
            " ORDER BY initiated_at DESC, call_uuid DESC LIMIT $8 OFFSET $9"
        ),
        &[
            &auth_id.as_str(),
            &status,
            &direction,
            &filter.from.as_deref(),
            &filter.to.as_deref(),
            &since,
            &until,
            &limit,
            &offset,
        ],
        call_from_row,
    )
    .await?;
    let total: i64 = first(
        client,
        concat!("SELECT COUNT(*) FROM calls ", filtered!()),
        &[
            &auth_id.as_str(),
            &status,
            &direction,
            &filter.from.as_deref(),
            &filter.to.as_deref(),
            &since,
            &until,
        ],
        |row| Ok(row.try_get(0)?),
    )
    .await?
    .unwrap_or(0);
    Ok(Listing {
        items,
        total: u64::try_from(total).unwrap_or(0),
    })
}

pub(super) async fn apply_report(
    tx: &impl GenericClient,
    auth_id: Option<&AuthId>,
    call_uuid: &CallUuid,
    report: Report,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<RecordedEvent, StoreError> {
    let mut call = load_call(tx, auth_id, call_uuid, true)
        .await?
        .ok_or(StoreError::NotFound)?;
    let kind = call.apply(report, at).map_err(StoreError::Transition)?;
    let event_id = new_event_id(now);
    let configuration = configuration(tx, &call).await?;
    // Pipelined: the call's new state and the event with its deliveries in one round trip.
    futures_util::try_join!(
        update_call(tx, &call, now),
        record_event(tx, &call, configuration, kind, at, now, event_id),
    )?;
    Ok(RecordedEvent {
        event_id,
        sequence: call.last_sequence,
        kind,
        call,
    })
}

pub(super) async fn unfinished_simulated_calls(client: &impl GenericClient) -> Result<Vec<Call>, StoreError> {
    // Finished calls may still owe a RecordStop; the carrier's script decides.
    all(
        client,
        concat!(
            "SELECT ",
            call_columns!(),
            " FROM calls WHERE engine = 'simulated' \
             AND (call_status IN ('queued', 'ringing', 'in-progress') \
                  OR (record AND answered_at IS NOT NULL AND recording_id IS NULL))"
        ),
        &[],
        call_from_row,
    )
    .await
}

pub(super) async fn list_deliveries(
    client: &impl GenericClient,
    auth_id: &AuthId,
    filter: &CallbackFilter,
    page: Page,
) -> Result<Listing<DeliveryRecord>, StoreError> {
    const WHERE: &str =
        "WHERE auth_id = $1 AND ($2::TEXT IS NULL OR status = $2) AND ($3::BIGINT IS NULL OR created_at >= $3)";
    let (status, since) = (filter.status.map(|s| s.as_str()), filter.since.map(time_to_db));
    let items = super::queue::deliveries(
        client,
        &format!("{WHERE} ORDER BY created_at DESC, delivery_id DESC LIMIT $4 OFFSET $5"),
        &[
            &auth_id.as_str(),
            &status,
            &since,
            &i64::from(page.limit),
            &offset_to_db(page.offset),
        ],
    )
    .await?;
    let total: i64 = first(
        client,
        &format!("SELECT COUNT(*) FROM deliveries {WHERE}"),
        &[&auth_id.as_str(), &status, &since],
        |row| Ok(row.try_get(0)?),
    )
    .await?
    .unwrap_or(0);
    Ok(Listing {
        items,
        total: u64::try_from(total).unwrap_or(0),
    })
}

pub(super) async fn fetch_idempotent(
    client: &impl GenericClient,
    auth_id: &AuthId,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Option<IdempotentAnswer>, StoreError> {
    first(
        client,
        "SELECT request_hash, status, body FROM idempotency_keys WHERE auth_id = $1 AND key = $2 AND created_at > $3",
        &[&auth_id.as_str(), &key, &(time_to_db(now) - IDEMPOTENCY_WINDOW_MICROS)],
        |row| idempotent_from_row(row, key),
    )
    .await
}

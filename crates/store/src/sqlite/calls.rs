//! Calls, events and deliveries on SQLite.
//!
//! `record_event` is the heart of PRODUCT.md §3: inside the caller's transaction it reads the
//! configuration as it is now, resolves every channel of the event (pure `domain::resolution`),
//! fixes the callback fields (pure `domain::fields`), and writes the event and its deliveries.
//! The caller writes the call's new state in the same transaction, so an event never exists
//! without its deliveries, nor a state change without its event.

use chrono::{DateTime, Utc};
use domain::call::Target;
use domain::resolution::{DirectUrls, Hierarchy};
use domain::{AppId, AuthId, Call, CallUuid, DeliveryStatus, EventId, EventKind, Level, Report, Verdict};
use rusqlite::{params, Connection};

use super::db::{all, execute, first};
use crate::codec::*;
use crate::rows::{call_from_row, configuration_from_row, idempotent_from_row};
use crate::sql::{new_event_id, offset_to_db, IDEMPOTENCY_WINDOW_MICROS};
use crate::{
    CallCreation, CallFilter, CallbackFilter, DeliveryRecord, IdempotentAnswer, Listing, Page, RecordedEvent,
    StoreError,
};

fn insert_call(conn: &Connection, call: &Call, now: DateTime<Utc>) -> Result<(), StoreError> {
    let recording = call.recording.as_ref();
    execute(
        conn,
        concat!(
            "INSERT INTO calls (",
            call_columns!(),
            ", updated_at) VALUES \
             (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ),
        params![
            call.call_uuid.to_string(),
            call.auth_id.as_str(),
            call.direction.as_str(),
            call.from,
            call.to,
            call.engine.as_str(),
            call.app_id.as_ref().map(AppId::as_str),
            call.trunk_id.map(|id| id.to_string()),
            target_url(&call.status),
            target_method(&call.status),
            target_url(&call.ring),
            target_method(&call.ring),
            target_url(&call.answer),
            target_method(&call.answer),
            target_url(&call.hangup_target),
            target_method(&call.hangup_target),
            call.time_limit_s,
            call.ring_timeout_s,
            call.record,
            call.call_status.as_str(),
            time_to_db(call.initiated_at),
            call.ringing_at.map(time_to_db),
            call.answered_at.map(time_to_db),
            call.ended_at.map(time_to_db),
            call.hangup.as_ref().map(|h| h.cause.cause),
            call.hangup.as_ref().map(|h| h.source.as_str()),
            recording.map(|r| r.recording_id.as_str()),
            recording.map(|r| r.url.as_str()),
            recording.map(|r| i64::try_from(r.duration_ms).unwrap_or(i64::MAX)),
            recording.map(|r| r.end_reason.as_str()),
            call.last_sequence,
            time_to_db(now),
        ],
    )
    .map_err(|error| {
        if error.is_foreign_key_violation() {
            StoreError::NotFound
        } else {
            super::unique_is_conflict(error)
        }
    })?;
    Ok(())
}

/// Writes the mutable state of a call (after a transition).
fn update_call(conn: &Connection, call: &Call, now: DateTime<Utc>) -> Result<(), StoreError> {
    let recording = call.recording.as_ref();
    execute(
        conn,
        "UPDATE calls SET call_status = ?, ringing_at = ?, answered_at = ?, ended_at = ?, hangup_cause = ?, \
         hangup_source = ?, recording_id = ?, recording_url = ?, recording_duration_ms = ?, recording_end_reason = ?, \
         last_sequence = ?, updated_at = ? WHERE call_uuid = ?",
        params![
            call.call_status.as_str(),
            call.ringing_at.map(time_to_db),
            call.answered_at.map(time_to_db),
            call.ended_at.map(time_to_db),
            call.hangup.as_ref().map(|h| h.cause.cause),
            call.hangup.as_ref().map(|h| h.source.as_str()),
            recording.map(|r| r.recording_id.as_str()),
            recording.map(|r| r.url.as_str()),
            recording.map(|r| i64::try_from(r.duration_ms).unwrap_or(i64::MAX)),
            recording.map(|r| r.end_reason.as_str()),
            call.last_sequence,
            time_to_db(now),
            call.call_uuid.to_string(),
        ],
    )?;
    Ok(())
}

pub(super) fn load_call(
    conn: &Connection,
    auth_id: Option<&AuthId>,
    call_uuid: &CallUuid,
) -> Result<Option<Call>, StoreError> {
    first(
        conn,
        concat!(
            "SELECT ",
            call_columns!(),
            " FROM calls WHERE call_uuid = ?1 AND (?2 IS NULL OR auth_id = ?2)"
        ),
        params![call_uuid.to_string(), auth_id.map(AuthId::as_str)],
        |row| call_from_row(row),
    )
}

/// Resolves and records one event of `call` (already in its post-event state), with its
/// deliveries.
fn record_event(
    conn: &Connection,
    call: &Call,
    kind: EventKind,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    event_id: EventId,
) -> Result<(), StoreError> {
    let (hierarchy, application_direct, timezone) = configuration(conn, call)?;
    let call_direct = DirectUrls {
        ring: call.ring.clone(),
        answer: call.answer.clone(),
        hangup: call.hangup_target.clone(),
    };
    let call_status = call.call_status.as_str();
    let fields = domain::fields::callback_fields(call, kind, at, timezone);
    let fields_json = serde_json::to_string(&fields).expect("a list of string pairs always serialises");
    let (event_id, call_uuid) = (event_id.to_string(), call.call_uuid.to_string());
    execute(
        conn,
        "INSERT INTO events (event_id, call_uuid, auth_id, sequence, event, call_status, occurred_at, fields, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            event_id,
            call_uuid,
            call.auth_id.as_str(),
            call.last_sequence,
            kind.as_str(),
            call_status,
            time_to_db(at),
            fields_json,
            time_to_db(now),
        ],
    )?;
    let plan = domain::resolution::plan(&hierarchy, &call_direct, &application_direct, kind, call_status);
    let mut insert = conn.prepare_cached(
        "INSERT INTO deliveries (event_id, call_uuid, auth_id, sequence, event, channel, level, reason, url, method, \
         fallback_url, status, next_attempt_at, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?;
    // A delivery behind an earlier pending event of the call to the same URL waits without a
    // due time; recording its predecessor's end gives it one. Claims then never scan it.
    let mut behind = conn.prepare_cached(concat!("SELECT ", earlier_pending!("?1", "?2", "?3")))?;
    for (channel, resolution) in plan {
        let status = match resolution.verdict {
            Verdict::Send => DeliveryStatus::Pending,
            Verdict::Filtered => DeliveryStatus::Filtered,
            Verdict::Unrouted => DeliveryStatus::Unrouted,
        };
        let due = match (&resolution.url, status) {
            (Some(url), DeliveryStatus::Pending) => !behind
                .query_row(params![call_uuid, url.as_str(), call.last_sequence], |row| {
                    row.get::<_, bool>(0)
                })?,
            _ => false,
        };
        let next_attempt_at = due.then(|| time_to_db(now));
        insert.execute(params![
            event_id,
            call_uuid,
            call.auth_id.as_str(),
            call.last_sequence,
            kind.as_str(),
            channel.as_str(),
            resolution.level.map(Level::as_str),
            resolution.reason,
            resolution.url.as_ref().map(|u| u.as_str()),
            resolution.method.as_str(),
            resolution.fallback.as_ref().map(|u| u.as_str()),
            status.as_str(),
            next_attempt_at,
            time_to_db(now),
            time_to_db(now),
        ])?;
    }
    Ok(())
}

/// The configuration that resolves this call's events, as it stands now.
fn configuration(
    conn: &Connection,
    call: &Call,
) -> Result<(Hierarchy, DirectUrls, domain::Timezone), StoreError> {
    // One statement for the three stored levels: this runs for every event, in the write path.
    first(
        conn,
        "SELECT a.timezone, a.default_callback_url, a.default_callback_method, a.default_callback_events, \
         p.app_id, p.callback_url, p.callback_method, p.fallback_callback_url, p.callback_events, \
         p.answer_url, p.answer_method, p.hangup_url, p.hangup_method, \
         t.trunk_id, t.status_callback, t.status_callback_method, t.status_callback_events \
         FROM accounts a \
         LEFT JOIN applications p ON p.auth_id = a.auth_id AND p.app_id = ?2 \
         LEFT JOIN trunks t ON t.auth_id = a.auth_id AND t.trunk_id = ?3 \
         WHERE a.auth_id = ?1",
        params![
            call.auth_id.as_str(),
            call.app_id.as_ref().map(AppId::as_str),
            call.trunk_id.map(|id| id.to_string()),
        ],
        |row| configuration_from_row(row, call),
    )?
    .ok_or(StoreError::NotFound)
}

fn target_url(target: &Option<Target>) -> Option<&str> {
    target.as_ref().map(|t| t.url.as_str())
}

fn target_method(target: &Option<Target>) -> Option<&'static str> {
    target.as_ref().map(|t| t.method.as_str())
}

pub(super) fn create_call(
    conn: &Connection,
    call: Call,
    idempotency: Option<(String, IdempotentAnswer)>,
    now: DateTime<Utc>,
) -> Result<CallCreation, StoreError> {
    if let Some((key, answer)) = &idempotency {
        if let Some(existing) = fetch_idempotent(conn, &call.auth_id, key, now)? {
            return Ok(CallCreation::Replayed(existing));
        }
        execute(
            conn,
            "DELETE FROM idempotency_keys WHERE auth_id = ? AND key = ?",
            [call.auth_id.as_str(), key.as_str()],
        )?;
        execute(
            conn,
            "INSERT INTO idempotency_keys (auth_id, key, request_hash, status, body, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
            params![
                call.auth_id.as_str(),
                key,
                answer.request_hash.as_slice(),
                answer.status,
                answer.body,
                time_to_db(now),
            ],
        )?;
    }
    insert_call(conn, &call, now)?;
    let event_id = new_event_id(now);
    record_event(
        conn,
        &call,
        EventKind::CallInitiated,
        call.initiated_at,
        now,
        event_id,
    )?;
    Ok(CallCreation::Created(Box::new(call)))
}

pub(super) fn list_calls(
    conn: &Connection,
    auth_id: &AuthId,
    filter: &CallFilter,
    page: Page,
) -> Result<Listing<Call>, StoreError> {
    macro_rules! filtered {
        () => {
            "WHERE auth_id = ?1 AND (?2 IS NULL OR call_status = ?2) AND (?3 IS NULL OR direction = ?3) \
             AND (?4 IS NULL OR from_number = ?4) AND (?5 IS NULL OR to_number = ?5) \
             AND (?6 IS NULL OR initiated_at >= ?6) AND (?7 IS NULL OR initiated_at < ?7)"
        };
    }
    let binds = params![
        auth_id.as_str(),
        filter.status.map(|s| s.as_str()),
        filter.direction.map(|d| d.as_str()),
        filter.from.as_deref(),
        filter.to.as_deref(),
        filter.since.map(time_to_db),
        filter.until.map(time_to_db),
    ];
    let mut paged = binds.to_vec();
    let (limit, offset) = (page.limit, offset_to_db(page.offset));
    paged.push(&limit);
    paged.push(&offset);
    let items = all(
        conn,
        concat!(
            "SELECT ",
            call_columns!(),
            " FROM calls ",
            filtered!(),
            " ORDER BY initiated_at DESC, call_uuid DESC LIMIT ?8 OFFSET ?9"
        ),
        paged.as_slice(),
        |row| call_from_row(row),
    )?;
    let total: i64 = conn
        .prepare_cached(concat!("SELECT COUNT(*) FROM calls ", filtered!()))?
        .query_row(binds, |row| row.get(0))?;
    Ok(Listing {
        items,
        total: u64::try_from(total).unwrap_or(0),
    })
}

pub(super) fn apply_report(
    conn: &Connection,
    auth_id: Option<&AuthId>,
    call_uuid: &CallUuid,
    report: Report,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<RecordedEvent, StoreError> {
    let mut call = load_call(conn, auth_id, call_uuid)?.ok_or(StoreError::NotFound)?;
    let kind = call.apply(report, at).map_err(StoreError::Transition)?;
    let event_id = new_event_id(now);
    update_call(conn, &call, now)?;
    record_event(conn, &call, kind, at, now, event_id)?;
    Ok(RecordedEvent {
        event_id,
        sequence: call.last_sequence,
        kind,
        call,
    })
}

pub(super) fn unfinished_simulated_calls(conn: &Connection) -> Result<Vec<Call>, StoreError> {
    // Finished calls may still owe a RecordStop; the carrier's script decides.
    all(
        conn,
        concat!(
            "SELECT ",
            call_columns!(),
            " FROM calls WHERE engine = 'simulated' \
             AND (call_status IN ('queued', 'ringing', 'in-progress') \
                  OR (record = 1 AND answered_at IS NOT NULL AND recording_id IS NULL))"
        ),
        [],
        |row| call_from_row(row),
    )
}

pub(super) fn list_deliveries(
    conn: &Connection,
    auth_id: &AuthId,
    filter: &CallbackFilter,
    page: Page,
) -> Result<Listing<DeliveryRecord>, StoreError> {
    const WHERE: &str =
        "WHERE auth_id = ?1 AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR created_at >= ?3)";
    let (status, since) = (filter.status.map(|s| s.as_str()), filter.since.map(time_to_db));
    let items = super::queue::deliveries(
        conn,
        &format!("{WHERE} ORDER BY created_at DESC, delivery_id DESC LIMIT ?4 OFFSET ?5"),
        params![
            auth_id.as_str(),
            status,
            since,
            page.limit,
            offset_to_db(page.offset)
        ],
    )?;
    let total: i64 = conn
        .prepare_cached(&format!("SELECT COUNT(*) FROM deliveries {WHERE}"))?
        .query_row(params![auth_id.as_str(), status, since], |row| row.get(0))?;
    Ok(Listing {
        items,
        total: u64::try_from(total).unwrap_or(0),
    })
}

pub(super) fn fetch_idempotent(
    conn: &Connection,
    auth_id: &AuthId,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Option<IdempotentAnswer>, StoreError> {
    first(
        conn,
        "SELECT request_hash, status, body FROM idempotency_keys WHERE auth_id = ? AND key = ? AND created_at > ?",
        params![auth_id.as_str(), key, time_to_db(now) - IDEMPOTENCY_WINDOW_MICROS],
        |row| idempotent_from_row(row, key),
    )
}

//! Calls, events and deliveries on SQLite.
//!
//! `record_event` is the heart of PRODUCT.md §3: inside the caller's transaction it reads the
//! configuration as it is now, resolves every channel of the event (pure `domain::resolution`),
//! fixes the callback fields (pure `domain::fields`), and writes the event and its deliveries.
//! The caller writes the call's new state in the same transaction, so an event never exists
//! without its deliveries, nor a state change without its event.

use chrono::{DateTime, Utc};
use domain::call::{Hangup, Recording, Target};
use domain::resolution::{DirectUrls, Hierarchy, LevelConfig};
use domain::{
    AppId, AuthId, Call, CallStatus, CallUuid, Channel, DeliveryStatus, Direction, Engine, EventId,
    EventKind, HangupCause, Level, Report, TrunkId, Verdict,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection, SqlitePool};

use super::{offset_to_db, random_u128, SqliteQuery, BEGIN_WRITE};
use crate::codec::*;
use crate::{
    CallCreation, CallFilter, CallbackFilter, DeliveryRecord, IdempotentAnswer, Listing, Page, RecordedEvent,
    StoreError,
};

/// Idempotency keys are honoured for this long (PRODUCT.md §2.4).
const IDEMPOTENCY_WINDOW_MICROS: i64 = 24 * 3600 * 1_000_000;

pub(super) const CALL_COLUMNS: &str = "call_uuid, auth_id, direction, from_number, to_number, engine, app_id, trunk_id, \
     status_url, status_method, ring_url, ring_method, answer_url, answer_method, hangup_url, hangup_method, \
     time_limit, ring_timeout, record, call_status, initiated_at, ringing_at, answered_at, ended_at, hangup_cause, \
     hangup_source, recording_id, recording_url, recording_duration_ms, recording_end_reason, last_sequence";

pub(super) const DELIVERY_COLUMNS: &str =
    "delivery_id, event_id, call_uuid, event, sequence, channel, level, reason, url, method, \
     fallback_url, status, delivered_to, next_attempt_at, created_at";

pub(super) async fn insert_call(
    tx: &mut SqliteConnection,
    call: &Call,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO calls ({CALL_COLUMNS}, updated_at) VALUES \
         (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(call.call_uuid.to_string())
    .bind(call.auth_id.as_str())
    .bind(call.direction.as_str())
    .bind(&call.from)
    .bind(&call.to)
    .bind(call.engine.as_str())
    .bind(call.app_id.as_ref().map(AppId::as_str))
    .bind(call.trunk_id.map(|id| id.to_string()))
    .bind(target_url(&call.status))
    .bind(target_method(&call.status))
    .bind(target_url(&call.ring))
    .bind(target_method(&call.ring))
    .bind(target_url(&call.answer))
    .bind(target_method(&call.answer))
    .bind(target_url(&call.hangup_target))
    .bind(target_method(&call.hangup_target))
    .bind(i64::from(call.time_limit_s))
    .bind(i64::from(call.ring_timeout_s))
    .bind(call.record)
    .bind(call.call_status.as_str())
    .bind(time_to_db(call.initiated_at))
    .bind(call.ringing_at.map(time_to_db))
    .bind(call.answered_at.map(time_to_db))
    .bind(call.ended_at.map(time_to_db))
    .bind(call.hangup.as_ref().map(|h| h.cause.cause))
    .bind(call.hangup.as_ref().map(|h| h.source.as_str()))
    .bind(call.recording.as_ref().map(|r| r.recording_id.as_str()))
    .bind(call.recording.as_ref().map(|r| r.url.as_str()))
    .bind(
        call.recording
            .as_ref()
            .map(|r| i64::try_from(r.duration_ms).unwrap_or(i64::MAX)),
    )
    .bind(call.recording.as_ref().map(|r| r.end_reason.as_str()))
    .bind(i64::from(call.last_sequence))
    .bind(time_to_db(now))
    .execute(&mut *tx)
    .await
    .map_err(super::unique_is_conflict)?;
    Ok(())
}

/// Writes the mutable state of a call (after a transition).
pub(super) async fn update_call(
    tx: &mut SqliteConnection,
    call: &Call,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE calls SET call_status = ?, ringing_at = ?, answered_at = ?, ended_at = ?, hangup_cause = ?, \
         hangup_source = ?, recording_id = ?, recording_url = ?, recording_duration_ms = ?, recording_end_reason = ?, \
         last_sequence = ?, updated_at = ? WHERE call_uuid = ?",
    )
    .bind(call.call_status.as_str())
    .bind(call.ringing_at.map(time_to_db))
    .bind(call.answered_at.map(time_to_db))
    .bind(call.ended_at.map(time_to_db))
    .bind(call.hangup.as_ref().map(|h| h.cause.cause))
    .bind(call.hangup.as_ref().map(|h| h.source.as_str()))
    .bind(call.recording.as_ref().map(|r| r.recording_id.as_str()))
    .bind(call.recording.as_ref().map(|r| r.url.as_str()))
    .bind(call.recording.as_ref().map(|r| i64::try_from(r.duration_ms).unwrap_or(i64::MAX)))
    .bind(call.recording.as_ref().map(|r| r.end_reason.as_str()))
    .bind(i64::from(call.last_sequence))
    .bind(time_to_db(now))
    .bind(call.call_uuid.to_string())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub(super) async fn load_call(
    conn: &mut SqliteConnection,
    auth_id: Option<&AuthId>,
    call_uuid: &CallUuid,
) -> Result<Option<Call>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {CALL_COLUMNS} FROM calls WHERE call_uuid = ?1 AND (?2 IS NULL OR auth_id = ?2)"
    ))
    .bind(call_uuid.to_string())
    .bind(auth_id.map(AuthId::as_str))
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(call_from_row).transpose()
}

/// Resolves and records one event of `call` (already in its post-event state), with its
/// deliveries. Returns the new event id.
pub(super) async fn record_event(
    tx: &mut SqliteConnection,
    call: &Call,
    kind: EventKind,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    event_id: EventId,
) -> Result<(), StoreError> {
    let (hierarchy, application_direct, timezone) = configuration(tx, call).await?;
    let call_direct = DirectUrls {
        ring: call.ring.clone(),
        answer: call.answer.clone(),
        hangup: call.hangup_target.clone(),
    };
    let call_status = call.call_status.as_str();
    let fields = domain::fields::callback_fields(call, kind, at, timezone);
    let fields_json = serde_json::to_string(&fields).expect("a list of string pairs always serialises");
    sqlx::query(
        "INSERT INTO events (event_id, call_uuid, auth_id, sequence, event, call_status, occurred_at, fields, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(event_id.to_string())
    .bind(call.call_uuid.to_string())
    .bind(call.auth_id.as_str())
    .bind(i64::from(call.last_sequence))
    .bind(kind.as_str())
    .bind(call_status)
    .bind(time_to_db(at))
    .bind(fields_json)
    .bind(time_to_db(now))
    .execute(&mut *tx)
    .await?;
    let plan = domain::resolution::plan(&hierarchy, &call_direct, &application_direct, kind, call_status);
    for (channel, resolution) in plan {
        let status = match resolution.verdict {
            Verdict::Send => DeliveryStatus::Pending,
            Verdict::Filtered => DeliveryStatus::Filtered,
            Verdict::Unrouted => DeliveryStatus::Unrouted,
        };
        let next_attempt_at = (status == DeliveryStatus::Pending).then(|| time_to_db(now));
        sqlx::query(
            "INSERT INTO deliveries (event_id, call_uuid, auth_id, sequence, event, channel, level, reason, url, method, \
             fallback_url, status, next_attempt_at, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(event_id.to_string())
        .bind(call.call_uuid.to_string())
        .bind(call.auth_id.as_str())
        .bind(i64::from(call.last_sequence))
        .bind(kind.as_str())
        .bind(channel.as_str())
        .bind(resolution.level.map(Level::as_str))
        .bind(&resolution.reason)
        .bind(resolution.url.as_ref().map(|u| u.as_str()))
        .bind(resolution.method.as_str())
        .bind(resolution.fallback.as_ref().map(|u| u.as_str()))
        .bind(status.as_str())
        .bind(next_attempt_at)
        .bind(time_to_db(now))
        .bind(time_to_db(now))
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// The configuration that resolves this call's events, as it stands now.
async fn configuration(
    tx: &mut SqliteConnection,
    call: &Call,
) -> Result<(Hierarchy, DirectUrls, domain::Timezone), StoreError> {
    // One statement for the three stored levels: this runs for every event, in the write path.
    let row = sqlx::query(
        "SELECT a.timezone, a.default_callback_url, a.default_callback_method, a.default_callback_events, \
         p.app_id, p.callback_url, p.callback_method, p.fallback_callback_url, p.callback_events, \
         p.answer_url, p.answer_method, p.hangup_url, p.hangup_method, \
         t.trunk_id, t.status_callback, t.status_callback_method, t.status_callback_events \
         FROM accounts a \
         LEFT JOIN applications p ON p.auth_id = a.auth_id AND p.app_id = ?2 \
         LEFT JOIN trunks t ON t.auth_id = a.auth_id AND t.trunk_id = ?3 \
         WHERE a.auth_id = ?1",
    )
    .bind(call.auth_id.as_str())
    .bind(call.app_id.as_ref().map(AppId::as_str))
    .bind(call.trunk_id.map(|id| id.to_string()))
    .fetch_one(&mut *tx)
    .await?;
    let timezone = timezone_from_db(row.try_get("timezone")?)?;
    let mut hierarchy = Hierarchy {
        call: call.status.as_ref().map(|target| LevelConfig {
            url: Some(target.url.clone()),
            method: target.method,
            ..LevelConfig::default()
        }),
        account: Some(LevelConfig {
            url: url_from_db(row.try_get("default_callback_url")?)?,
            method: method_from_db(row.try_get("default_callback_method")?)?,
            fallback: None,
            filter: filter_from_db(row.try_get("default_callback_events")?)?,
        }),
        ..Hierarchy::default()
    };
    let mut application_direct = DirectUrls::default();
    if row.try_get::<Option<String>, _>("app_id")?.is_some() {
        hierarchy.application = Some(LevelConfig {
            url: url_from_db(row.try_get("callback_url")?)?,
            method: method_from_db(row.try_get("callback_method")?)?,
            fallback: url_from_db(row.try_get("fallback_callback_url")?)?,
            filter: filter_from_db(row.try_get("callback_events")?)?,
        });
        application_direct.answer =
            target_from_db(row.try_get("answer_url")?, row.try_get("answer_method")?)?;
        application_direct.hangup =
            target_from_db(row.try_get("hangup_url")?, row.try_get("hangup_method")?)?;
    }
    if row.try_get::<Option<String>, _>("trunk_id")?.is_some() {
        hierarchy.trunk = Some(LevelConfig {
            url: url_from_db(row.try_get("status_callback")?)?,
            method: method_from_db(row.try_get("status_callback_method")?)?,
            fallback: None,
            filter: filter_from_db(row.try_get("status_callback_events")?)?,
        });
    }
    Ok((hierarchy, application_direct, timezone))
}

fn target_url(target: &Option<Target>) -> Option<&str> {
    target.as_ref().map(|t| t.url.as_str())
}

fn target_method(target: &Option<Target>) -> Option<&'static str> {
    target.as_ref().map(|t| t.method.as_str())
}

fn target_from_db(url: Option<String>, method: Option<String>) -> Result<Option<Target>, StoreError> {
    let Some(url) = url_from_db(url)? else {
        return Ok(None);
    };
    let method = method
        .as_deref()
        .map(method_from_db)
        .transpose()?
        .unwrap_or_default();
    Ok(Some(Target { url, method }))
}

pub(super) fn optional_time(row: &SqliteRow, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    let micros: Option<i64> = row.try_get(column)?;
    micros.map(time_from_db).transpose()
}

pub(super) fn count(row: &SqliteRow, column: &str) -> Result<u32, StoreError> {
    let value: i64 = row.try_get(column)?;
    u32::try_from(value).map_err(|_| corrupt(column, &value.to_string()))
}

pub(super) fn call_from_row(row: &SqliteRow) -> Result<Call, StoreError> {
    let text = |column: &str| -> Result<String, StoreError> { Ok(row.try_get::<String, _>(column)?) };
    let uuid = text("call_uuid")?;
    let auth_id = text("auth_id")?;
    let direction = text("direction")?;
    let engine = text("engine")?;
    let status = text("call_status")?;
    let app_id: Option<String> = row.try_get("app_id")?;
    let trunk_id: Option<String> = row.try_get("trunk_id")?;
    let cause: Option<String> = row.try_get("hangup_cause")?;
    let source: Option<String> = row.try_get("hangup_source")?;
    let recording_id: Option<String> = row.try_get("recording_id")?;
    Ok(Call {
        call_uuid: CallUuid::parse(&uuid).ok_or_else(|| corrupt("call_uuid", &uuid))?,
        auth_id: AuthId::parse(&auth_id).ok_or_else(|| corrupt("auth_id", &auth_id))?,
        direction: Direction::parse(&direction).ok_or_else(|| corrupt("direction", &direction))?,
        from: text("from_number")?,
        to: text("to_number")?,
        engine: Engine::parse(&engine).ok_or_else(|| corrupt("engine", &engine))?,
        app_id: app_id
            .map(|id| AppId::parse(&id).ok_or_else(|| corrupt("app_id", &id)))
            .transpose()?,
        trunk_id: trunk_id
            .map(|id| TrunkId::parse(&id).ok_or_else(|| corrupt("trunk_id", &id)))
            .transpose()?,
        status: target_from_db(row.try_get("status_url")?, row.try_get("status_method")?)?,
        ring: target_from_db(row.try_get("ring_url")?, row.try_get("ring_method")?)?,
        answer: target_from_db(row.try_get("answer_url")?, row.try_get("answer_method")?)?,
        hangup_target: target_from_db(row.try_get("hangup_url")?, row.try_get("hangup_method")?)?,
        time_limit_s: count(row, "time_limit")?,
        ring_timeout_s: count(row, "ring_timeout")?,
        record: row.try_get("record")?,
        call_status: CallStatus::parse(&status).ok_or_else(|| corrupt("call_status", &status))?,
        initiated_at: time_from_db(row.try_get("initiated_at")?)?,
        ringing_at: optional_time(row, "ringing_at")?,
        answered_at: optional_time(row, "answered_at")?,
        ended_at: optional_time(row, "ended_at")?,
        hangup: match (cause, source) {
            (Some(cause), Some(source)) => Some(Hangup {
                cause: HangupCause::parse(&cause).ok_or_else(|| corrupt("hangup_cause", &cause))?,
                source,
            }),
            _ => None,
        },
        recording: match recording_id {
            Some(recording_id) => {
                let duration: Option<i64> = row.try_get("recording_duration_ms")?;
                Some(Recording {
                    recording_id,
                    url: row
                        .try_get::<Option<String>, _>("recording_url")?
                        .unwrap_or_default(),
                    duration_ms: u64::try_from(duration.unwrap_or(0)).unwrap_or(0),
                    end_reason: row
                        .try_get::<Option<String>, _>("recording_end_reason")?
                        .unwrap_or_default(),
                })
            }
            None => None,
        },
        last_sequence: count(row, "last_sequence")?,
    })
}

pub(super) fn delivery_from_row(row: &SqliteRow) -> Result<DeliveryRecord, StoreError> {
    let text = |column: &str| -> Result<String, StoreError> { Ok(row.try_get::<String, _>(column)?) };
    let event_id = text("event_id")?;
    let call_uuid = text("call_uuid")?;
    let event = text("event")?;
    let channel = text("channel")?;
    let status = text("status")?;
    let level: Option<String> = row.try_get("level")?;
    Ok(DeliveryRecord {
        event_id: EventId::parse(&event_id).ok_or_else(|| corrupt("event_id", &event_id))?,
        call_uuid: CallUuid::parse(&call_uuid).ok_or_else(|| corrupt("call_uuid", &call_uuid))?,
        event: EventKind::parse(&event).ok_or_else(|| corrupt("event", &event))?,
        sequence: count(row, "sequence")?,
        channel: Channel::parse(&channel).ok_or_else(|| corrupt("channel", &channel))?,
        level: level
            .map(|l| Level::parse(&l).ok_or_else(|| corrupt("level", &l)))
            .transpose()?,
        reason: text("reason")?,
        url: row.try_get("url")?,
        method: method_from_db(row.try_get("method")?)?,
        fallback_url: row.try_get("fallback_url")?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        delivered_to: row.try_get("delivered_to")?,
        next_attempt_at: optional_time(row, "next_attempt_at")?,
        created_at: time_from_db(row.try_get("created_at")?)?,
        attempts: Vec::new(),
    })
}

pub(super) async fn create_call(
    pool: &SqlitePool,
    call: &Call,
    idempotency: Option<(&str, IdempotentAnswer)>,
    now: DateTime<Utc>,
) -> Result<CallCreation, StoreError> {
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    if let Some((key, answer)) = &idempotency {
        if let Some(existing) = fetch_idempotent(&mut tx, &call.auth_id, key, now).await? {
            return Ok(CallCreation::Replayed(existing));
        }
        sqlx::query("DELETE FROM idempotency_keys WHERE auth_id = ? AND key = ?")
            .bind(call.auth_id.as_str())
            .bind(*key)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO idempotency_keys (auth_id, key, request_hash, status, body, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(call.auth_id.as_str())
        .bind(*key)
        .bind(answer.request_hash.as_slice())
        .bind(i64::from(answer.status))
        .bind(&answer.body)
        .bind(time_to_db(now))
        .execute(&mut *tx)
        .await?;
    }
    insert_call(&mut tx, call, now).await?;
    let event_id = EventId::from_random(random_u128());
    record_event(
        &mut tx,
        call,
        EventKind::CallInitiated,
        call.initiated_at,
        now,
        event_id,
    )
    .await?;
    tx.commit().await?;
    Ok(CallCreation::Created(Box::new(call.clone())))
}

pub(super) async fn idempotent_answer(
    pool: &SqlitePool,
    auth_id: &AuthId,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Option<IdempotentAnswer>, StoreError> {
    let mut conn = pool.acquire().await?;
    fetch_idempotent(&mut conn, auth_id, key, now).await
}

pub(super) async fn list_calls(
    pool: &SqlitePool,
    auth_id: &AuthId,
    filter: &CallFilter,
    page: Page,
) -> Result<Listing<Call>, StoreError> {
    const WHERE: &str =
        "WHERE auth_id = ?1 AND (?2 IS NULL OR call_status = ?2) AND (?3 IS NULL OR direction = ?3) \
         AND (?4 IS NULL OR from_number = ?4) AND (?5 IS NULL OR to_number = ?5) \
         AND (?6 IS NULL OR initiated_at >= ?6) AND (?7 IS NULL OR initiated_at < ?7)";
    let bind = |sql| call_filter_query(sql, auth_id, filter);
    let select = format!(
        "SELECT {} FROM calls {WHERE} ORDER BY initiated_at DESC, call_uuid DESC LIMIT ?8 OFFSET ?9",
        CALL_COLUMNS
    );
    let count = format!("SELECT COUNT(*) FROM calls {WHERE}");
    let items = bind(&select)
        .bind(i64::from(page.limit))
        .bind(offset_to_db(page.offset))
        .fetch_all(pool)
        .await?
        .iter()
        .map(call_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let total: i64 = bind(&count).fetch_one(pool).await?.try_get(0)?;
    Ok(Listing {
        items,
        total: u64::try_from(total).unwrap_or(0),
    })
}

pub(super) async fn apply_report(
    pool: &SqlitePool,
    auth_id: Option<&AuthId>,
    call_uuid: &CallUuid,
    report: Report,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<RecordedEvent, StoreError> {
    let mut tx = pool.begin_with(BEGIN_WRITE).await?;
    let mut call = load_call(&mut tx, auth_id, call_uuid)
        .await?
        .ok_or(StoreError::NotFound)?;
    let kind = call.apply(report, at).map_err(StoreError::Transition)?;
    let event_id = EventId::from_random(random_u128());
    update_call(&mut tx, &call, now).await?;
    record_event(&mut tx, &call, kind, at, now, event_id).await?;
    tx.commit().await?;
    Ok(RecordedEvent {
        event_id,
        sequence: call.last_sequence,
        kind,
        call,
    })
}

pub(super) async fn unfinished_simulated_calls(pool: &SqlitePool) -> Result<Vec<Call>, StoreError> {
    // Finished calls may still owe a RecordStop; the carrier's script decides.
    sqlx::query(&format!(
        "SELECT {} FROM calls WHERE engine = 'simulated' \
         AND (call_status IN ('queued', 'ringing', 'in-progress') \
              OR (record = 1 AND answered_at IS NOT NULL AND recording_id IS NULL))",
        CALL_COLUMNS
    ))
    .fetch_all(pool)
    .await?
    .iter()
    .map(call_from_row)
    .collect()
}

pub(super) async fn call_deliveries(
    pool: &SqlitePool,
    auth_id: &AuthId,
    call_uuid: &CallUuid,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    let mut conn = pool.acquire().await?;
    let rows = sqlx::query(&super::queue::select_deliveries(
        "WHERE auth_id = ? AND call_uuid = ? ORDER BY sequence, delivery_id",
    ))
    .bind(auth_id.as_str())
    .bind(call_uuid.to_string())
    .fetch_all(&mut *conn)
    .await?;
    super::queue::deliveries_with_attempts(&mut conn, rows).await
}

pub(super) async fn list_deliveries(
    pool: &SqlitePool,
    auth_id: &AuthId,
    filter: &CallbackFilter,
    page: Page,
) -> Result<Listing<DeliveryRecord>, StoreError> {
    const WHERE: &str =
        "WHERE auth_id = ?1 AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR created_at >= ?3)";
    let bind = |sql| callback_filter_query(sql, auth_id, filter);
    let select = format!(
        "SELECT {} FROM deliveries {WHERE} ORDER BY created_at DESC, delivery_id DESC LIMIT ?4 OFFSET ?5",
        DELIVERY_COLUMNS
    );
    let count = format!("SELECT COUNT(*) FROM deliveries {WHERE}");
    let mut conn = pool.acquire().await?;
    let rows = bind(&select)
        .bind(i64::from(page.limit))
        .bind(offset_to_db(page.offset))
        .fetch_all(&mut *conn)
        .await?;
    let items = super::queue::deliveries_with_attempts(&mut conn, rows).await?;
    let total: i64 = bind(&count).fetch_one(pool).await?.try_get(0)?;
    Ok(Listing {
        items,
        total: u64::try_from(total).unwrap_or(0),
    })
}

async fn fetch_idempotent(
    conn: &mut sqlx::SqliteConnection,
    auth_id: &AuthId,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Option<IdempotentAnswer>, StoreError> {
    let row = sqlx::query(
        "SELECT request_hash, status, body FROM idempotency_keys WHERE auth_id = ? AND key = ? AND created_at > ?",
    )
    .bind(auth_id.as_str())
    .bind(key)
    .bind(time_to_db(now) - IDEMPOTENCY_WINDOW_MICROS)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let hash: Vec<u8> = row.try_get("request_hash")?;
    let status: i64 = row.try_get("status")?;
    Ok(Some(IdempotentAnswer {
        request_hash: <[u8; 32]>::try_from(hash.as_slice()).map_err(|_| corrupt("request_hash", key))?,
        status: u16::try_from(status).map_err(|_| corrupt("status", &status.to_string()))?,
        body: row.try_get("body")?,
    }))
}

fn call_filter_query<'q>(sql: &'q str, auth_id: &'q AuthId, filter: &'q CallFilter) -> SqliteQuery<'q> {
    sqlx::query(sql)
        .bind(auth_id.as_str())
        .bind(filter.status.map(|s| s.as_str()))
        .bind(filter.direction.map(|d| d.as_str()))
        .bind(filter.from.as_deref())
        .bind(filter.to.as_deref())
        .bind(filter.since.map(time_to_db))
        .bind(filter.until.map(time_to_db))
}

fn callback_filter_query<'q>(
    sql: &'q str,
    auth_id: &'q AuthId,
    filter: &'q CallbackFilter,
) -> SqliteQuery<'q> {
    sqlx::query(sql)
        .bind(auth_id.as_str())
        .bind(filter.status.map(|s| s.as_str()))
        .bind(filter.since.map(time_to_db))
}

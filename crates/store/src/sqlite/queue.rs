//! The delivery queue on SQLite: claim with a lease (one `UPDATE … RETURNING`), record an
//! attempt and move the delivery on, release, redeliver, and the attempts of the delivery log.
//!
//! A claim never holds a transaction across HTTP: it commits the lease, the sender works, and
//! `record_attempt` writes the result in a second short transaction (PRODUCT.md §4.3).

use chrono::{DateTime, Utc};
use domain::{AuthId, CallUuid, Channel, DeliveryStatus, EventId, EventKind, Level, TargetKind};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection, SqlitePool};

use super::calls::{count, delivery_from_row, DELIVERY_COLUMNS};
use crate::codec::*;
use crate::{
    AfterAttempt, AttemptRecord, ClaimedDelivery, DeliveryRecord, FinishedAttempt, Redelivery, StoreError,
};

/// The claimable condition: due, pending, not leased, and first in line for its call and URL.
const CLAIMABLE: &str = "d.status = 'pending' AND d.next_attempt_at <= ?1 \
     AND (d.leased_until IS NULL OR d.leased_until <= ?1) \
     AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.status = 'pending' AND e.call_uuid = d.call_uuid \
                     AND e.url = d.url AND e.sequence < d.sequence)";

pub(super) async fn claim_due(
    pool: &SqlitePool,
    limit: u32,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    let rows = sqlx::query(&format!(
        "UPDATE deliveries SET leased_until = ?2 WHERE delivery_id IN \
         (SELECT d.delivery_id FROM deliveries d WHERE {CLAIMABLE} ORDER BY d.next_attempt_at, d.delivery_id LIMIT ?3) \
         RETURNING delivery_id, event_id, call_uuid, auth_id, sequence, event, channel, level, url, method, \
         fallback_url, target, target_attempts, attempt_count"
    ))
    .bind(time_to_db(now))
    .bind(time_to_db(lease_until))
    .bind(i64::from(limit))
    .fetch_all(&mut *tx)
    .await?;
    let event_ids: Vec<String> = rows
        .iter()
        .map(|row| row.try_get::<String, _>("event_id"))
        .collect::<Result<_, _>>()?;
    let fields: std::collections::HashMap<String, String> = sqlx::query_as(
        "SELECT event_id, fields FROM events WHERE event_id IN (SELECT value FROM json_each(?))",
    )
    .bind(serde_json::to_string(&event_ids).expect("a list of strings always serialises"))
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    tx.commit().await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for (row, event_id) in rows.iter().zip(&event_ids) {
        let fields = fields
            .get(event_id)
            .ok_or_else(|| corrupt("event of a delivery", event_id))?;
        claimed.push(claimed_from_row(row, fields)?);
    }
    claimed.sort_by_key(|c| c.delivery_id);
    Ok(claimed)
}

fn claimed_from_row(row: &SqliteRow, fields: &str) -> Result<ClaimedDelivery, StoreError> {
    let text = |column: &str| -> Result<String, StoreError> { Ok(row.try_get::<String, _>(column)?) };
    let event_id = text("event_id")?;
    let call_uuid = text("call_uuid")?;
    let auth_id = text("auth_id")?;
    let event = text("event")?;
    let channel = text("channel")?;
    let target = text("target")?;
    let level: Option<String> = row.try_get("level")?;
    let url: Option<String> = row.try_get("url")?;
    let fields: Vec<(String, String)> =
        serde_json::from_str(fields).map_err(|_| corrupt("fields", &event_id))?;
    Ok(ClaimedDelivery {
        delivery_id: row.try_get("delivery_id")?,
        event_id: EventId::parse(&event_id).ok_or_else(|| corrupt("event_id", &event_id))?,
        call_uuid: CallUuid::parse(&call_uuid).ok_or_else(|| corrupt("call_uuid", &call_uuid))?,
        auth_id: AuthId::parse(&auth_id).ok_or_else(|| corrupt("auth_id", &auth_id))?,
        sequence: count(row, "sequence")?,
        event: EventKind::parse(&event).ok_or_else(|| corrupt("event", &event))?,
        channel: Channel::parse(&channel).ok_or_else(|| corrupt("channel", &channel))?,
        level: level
            .map(|l| Level::parse(&l).ok_or_else(|| corrupt("level", &l)))
            .transpose()?,
        url: url.ok_or_else(|| corrupt("url", "NULL on a pending delivery"))?,
        method: method_from_db(row.try_get("method")?)?,
        fallback_url: row.try_get("fallback_url")?,
        target: TargetKind::parse(&target).ok_or_else(|| corrupt("target", &target))?,
        target_attempts: count(row, "target_attempts")?,
        attempt_count: count(row, "attempt_count")?,
        fields,
    })
}

pub(super) async fn next_due_at(pool: &SqlitePool) -> Result<Option<DateTime<Utc>>, StoreError> {
    let micros: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(MAX(d.next_attempt_at, COALESCE(d.leased_until, 0))) FROM deliveries d \
         WHERE d.status = 'pending' AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.status = 'pending' \
         AND e.call_uuid = d.call_uuid AND e.url = d.url AND e.sequence < d.sequence)",
    )
    .fetch_one(pool)
    .await?;
    micros.map(time_from_db).transpose()
}

pub(super) async fn record_attempts(
    pool: &SqlitePool,
    finished: &[FinishedAttempt],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    for item in finished {
        record_one(&mut tx, item, now).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn record_one(
    tx: &mut SqliteConnection,
    item: &FinishedAttempt,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (delivery_id, attempt, after) = (item.delivery_id, &item.attempt, item.after);
    sqlx::query(
        "INSERT INTO attempts (delivery_id, attempt, target, url, started_at, latency_ms, status_code, error, \
         retry_after_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(delivery_id)
    .bind(i64::from(attempt.attempt))
    .bind(attempt.target.as_str())
    .bind(&attempt.url)
    .bind(time_to_db(attempt.started_at))
    .bind(i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX))
    .bind(attempt.status_code.map(i64::from))
    .bind(attempt.error.as_deref())
    .bind(attempt.retry_after_ms.map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)))
    .execute(&mut *tx)
    .await?;
    let target = attempt.target.as_str();
    let (status, next, new_target, target_attempts, delivered_to) = match after {
        AfterAttempt::Delivered => ("delivered", None, target, "target_attempts + 1", Some(target)),
        AfterAttempt::RetryAt(at) => (
            "pending",
            Some(time_to_db(at)),
            target,
            "target_attempts + 1",
            None,
        ),
        AfterAttempt::FallbackAt(at) => ("pending", Some(time_to_db(at)), "fallback", "0", None),
        AfterAttempt::Failed => ("failed", None, target, "target_attempts + 1", None),
    };
    sqlx::query(&format!(
        "UPDATE deliveries SET status = ?1, next_attempt_at = ?2, target = ?3, target_attempts = {target_attempts}, \
         attempt_count = attempt_count + 1, delivered_to = ?4, leased_until = NULL, updated_at = ?5 \
         WHERE delivery_id = ?6 AND (?7 IS NULL OR leased_until = ?7)"
    ))
    .bind(status)
    .bind(next)
    .bind(new_target)
    .bind(delivered_to)
    .bind(time_to_db(now))
    .bind(delivery_id)
    .bind(item.lease_until.map(time_to_db))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub(super) async fn release(
    pool: &SqlitePool,
    delivery_ids: &[i64],
    next_attempt_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if delivery_ids.is_empty() {
        return Ok(());
    }
    let ids = serde_json::to_string(delivery_ids).expect("a list of integers always serialises");
    sqlx::query(
        "UPDATE deliveries SET leased_until = NULL, next_attempt_at = ? \
         WHERE delivery_id IN (SELECT value FROM json_each(?)) AND status = 'pending'",
    )
    .bind(time_to_db(next_attempt_at))
    .bind(ids)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn redeliver(
    pool: &SqlitePool,
    auth_id: &AuthId,
    event_id: &EventId,
    now: DateTime<Utc>,
) -> Result<Redelivery, StoreError> {
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT status FROM deliveries WHERE auth_id = ? AND event_id = ?")
            .bind(auth_id.as_str())
            .bind(event_id.to_string())
            .fetch_all(&mut *tx)
            .await?;
    if statuses.is_empty() {
        return Err(StoreError::NotFound);
    }
    if statuses.iter().any(|s| s == DeliveryStatus::Pending.as_str()) {
        return Ok(Redelivery::StillPending);
    }
    let done = sqlx::query(
        "UPDATE deliveries SET status = 'pending', target = 'primary', target_attempts = 0, delivered_to = NULL, \
         next_attempt_at = ?, leased_until = NULL, updated_at = ? \
         WHERE auth_id = ? AND event_id = ? AND status IN ('delivered', 'failed')",
    )
    .bind(time_to_db(now))
    .bind(time_to_db(now))
    .bind(auth_id.as_str())
    .bind(event_id.to_string())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(match done.rows_affected() {
        0 => Redelivery::NothingToSend,
        n => Redelivery::Queued(usize::try_from(n).unwrap_or(usize::MAX)),
    })
}

/// Loads deliveries with `sql` (selecting [`DELIVERY_COLUMNS`]) and fills in their attempts.
pub(super) async fn deliveries_with_attempts(
    conn: &mut SqliteConnection,
    rows: Vec<SqliteRow>,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    let mut records = Vec::with_capacity(rows.len());
    for row in &rows {
        let delivery_id: i64 = row.try_get("delivery_id")?;
        let mut record = delivery_from_row(row)?;
        record.attempts = sqlx::query(
            "SELECT attempt, target, url, started_at, latency_ms, status_code, error, retry_after_ms \
             FROM attempts WHERE delivery_id = ? ORDER BY attempt, attempt_id",
        )
        .bind(delivery_id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(attempt_from_row)
        .collect::<Result<_, _>>()?;
        records.push(record);
    }
    Ok(records)
}

fn attempt_from_row(row: &SqliteRow) -> Result<AttemptRecord, StoreError> {
    let target: String = row.try_get("target")?;
    let status_code: Option<i64> = row.try_get("status_code")?;
    let latency: i64 = row.try_get("latency_ms")?;
    let retry_after: Option<i64> = row.try_get("retry_after_ms")?;
    Ok(AttemptRecord {
        attempt: count(row, "attempt")?,
        target: TargetKind::parse(&target).ok_or_else(|| corrupt("target", &target))?,
        url: row.try_get("url")?,
        started_at: time_from_db(row.try_get("started_at")?)?,
        latency_ms: u64::try_from(latency).unwrap_or(0),
        status_code: status_code.and_then(|c| u16::try_from(c).ok()),
        error: row.try_get("error")?,
        retry_after_ms: retry_after.and_then(|ms| u64::try_from(ms).ok()),
    })
}

pub(super) const EVENT_DELIVERIES: &str = "WHERE auth_id = ? AND event_id = ? ORDER BY sequence, delivery_id";

pub(super) fn select_deliveries(filter: &str) -> String {
    format!("SELECT {DELIVERY_COLUMNS} FROM deliveries {filter}")
}

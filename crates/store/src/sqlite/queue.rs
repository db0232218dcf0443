//! The delivery queue on SQLite: claim with a lease (one `UPDATE … RETURNING`), record an
//! attempt and move the delivery on, release, redeliver, and the attempts of the delivery log.
//!
//! A claim never holds a transaction across HTTP: it commits the lease, the sender works, and
//! `record_attempts` writes the result in a second short transaction (PRODUCT.md §4.3).

use chrono::{DateTime, Utc};
use domain::{AuthId, DeliveryStatus, EventId};
use rusqlite::{params, Connection, Row};

use super::db::{all, execute, first};
use crate::codec::*;
use crate::rows::{attempt_from_row, claimed_from_row, delivery_from_row, text, Columns};
use crate::sql::DELIVERY_COLUMNS;
use crate::{AfterAttempt, ClaimedDelivery, DeliveryRecord, FinishedAttempt, Redelivery, StoreError};

pub(super) fn claim_due(
    conn: &Connection,
    limit: u32,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    // Claimable: due, pending, not leased, and first in line for its call and URL.
    let rows = all(
        conn,
        concat!(
            "UPDATE deliveries SET leased_until = ?2 WHERE delivery_id IN \
             (SELECT d.delivery_id FROM deliveries d WHERE d.status = 'pending' AND d.next_attempt_at <= ?1 \
                AND (d.leased_until IS NULL OR d.leased_until <= ?1) AND NOT ",
            earlier_pending!("d.call_uuid", "d.url", "d.sequence"),
            " ORDER BY d.next_attempt_at, d.delivery_id LIMIT ?3) \
             RETURNING delivery_id, event_id, call_uuid, auth_id, sequence, event, channel, level, url, method, \
             fallback_url, target, target_attempts, attempt_count"
        ),
        params![time_to_db(now), time_to_db(lease_until), limit],
        |row| Ok((Columns::get::<i64>(row, "delivery_id")?, claimed(conn, row))),
    )?;
    // A row that does not decode can never be sent: it is failed (and the events waiting behind
    // it move on) instead of failing every claim, where it would always come first.
    let mut claimed = Vec::with_capacity(rows.len());
    for (delivery_id, row) in rows {
        match row {
            Ok(delivery) => claimed.push(delivery),
            Err(error) => {
                tracing::error!(%error, delivery_id, "a claimed delivery does not decode; it is failed");
                execute(
                    conn,
                    "UPDATE deliveries SET status = 'failed', leased_until = NULL, updated_at = ? \
                     WHERE delivery_id = ?",
                    params![time_to_db(now), delivery_id],
                )?;
                promote_next(conn, delivery_id, now)?;
            }
        }
    }
    claimed.sort_by_key(|c| c.delivery_id);
    Ok(claimed)
}

/// Not a subquery of RETURNING: SQLite plans that as a scan of every event.
fn claimed(conn: &Connection, row: &Row<'_>) -> Result<ClaimedDelivery, StoreError> {
    let event_id = text(row, "event_id")?;
    let fields = first(
        conn,
        "SELECT fields FROM events WHERE event_id = ?",
        [&event_id],
        |row| text(row, "fields"),
    )?
    .ok_or_else(|| corrupt("event of a delivery", &event_id))?;
    let keys_version = super::secrets::keys_version(conn, &text(row, "auth_id")?)?;
    claimed_from_row(row, &fields, keys_version)
}

pub(super) fn next_due_at(conn: &Connection) -> Result<Option<DateTime<Utc>>, StoreError> {
    let micros: Option<i64> = conn
        .prepare_cached(concat!(
            "SELECT MIN(MAX(d.next_attempt_at, COALESCE(d.leased_until, 0))) FROM deliveries d \
             WHERE d.status = 'pending' AND d.next_attempt_at IS NOT NULL AND NOT ",
            earlier_pending!("d.call_uuid", "d.url", "d.sequence")
        ))?
        .query_row([], |row| row.get(0))?;
    micros.map(time_from_db).transpose()
}

pub(super) fn record_attempts(
    conn: &Connection,
    finished: &[FinishedAttempt],
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    // A later pending event that already has a due time (a redelivered event went in front of
    // it, or a sibling channel to the same URL ended first) may be claimable now too.
    let mut behind = conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM deliveries d JOIN deliveries e ON e.call_uuid = d.call_uuid \
         AND e.url = d.url AND e.sequence > d.sequence WHERE d.delivery_id = ? AND e.status = 'pending')",
    )?;
    let mut unblocked = false;
    let mut insert = conn.prepare_cached(
        "INSERT INTO attempts (delivery_id, attempt, target, url, started_at, latency_ms, status_code, error, \
         retry_after_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?;
    // A fallback starts the new target's count at 0; every other outcome adds one.
    let mut update = conn.prepare_cached(
        "UPDATE deliveries SET status = ?1, next_attempt_at = ?2, target = ?3, \
         target_attempts = CASE WHEN ?8 THEN 0 ELSE target_attempts + 1 END, \
         attempt_count = attempt_count + 1, delivered_to = ?4, leased_until = NULL, updated_at = ?5 \
         WHERE delivery_id = ?6 AND (?7 IS NULL OR leased_until = ?7)",
    )?;
    for item in finished {
        let (delivery_id, attempt) = (item.delivery_id, &item.attempt);
        insert.execute(params![
            delivery_id,
            attempt.attempt,
            attempt.target.as_str(),
            attempt.url,
            time_to_db(attempt.started_at),
            i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX),
            attempt.status_code,
            attempt.error,
            attempt
                .retry_after_ms
                .map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)),
        ])?;
        let target = attempt.target.as_str();
        let (status, next, new_target, delivered_to) = match item.after {
            AfterAttempt::Delivered => ("delivered", None, target, Some(target)),
            AfterAttempt::RetryAt(at) => ("pending", Some(time_to_db(at)), target, None),
            AfterAttempt::FallbackAt(at) => ("pending", Some(time_to_db(at)), "fallback", None),
            AfterAttempt::Failed => ("failed", None, target, None),
        };
        let to_fallback = matches!(item.after, AfterAttempt::FallbackAt(_));
        let moved = update.execute(params![
            status,
            next,
            new_target,
            delivered_to,
            time_to_db(now),
            delivery_id,
            item.lease_until.map(time_to_db),
            to_fallback,
        ])? > 0;
        let more = match item.after {
            AfterAttempt::RetryAt(_) | AfterAttempt::FallbackAt(_) => true,
            AfterAttempt::Delivered | AfterAttempt::Failed => {
                moved
                    && (promote_next(conn, delivery_id, now)?
                        || behind.query_row([delivery_id], |row| row.get::<_, bool>(0))?)
            }
        };
        unblocked |= more;
    }
    Ok(unblocked)
}

/// Makes the next waiting event of the call to the same URL as `delivery_id` (which just
/// ended) due now — unless another event before it is still pending. Returns whether it did.
fn promote_next(conn: &Connection, delivery_id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
    let promoted = execute(
        conn,
        concat!(
            "UPDATE deliveries SET next_attempt_at = ?1 WHERE status = 'pending' AND next_attempt_at IS NULL \
             AND (call_uuid, url, sequence) = \
                 (SELECT e.call_uuid, e.url, MIN(e.sequence) FROM deliveries d JOIN deliveries e \
                  ON e.call_uuid = d.call_uuid AND e.url = d.url AND e.sequence > d.sequence \
                  WHERE d.delivery_id = ?2 AND e.status = 'pending' AND e.next_attempt_at IS NULL) \
             AND NOT ",
            earlier_pending!("deliveries.call_uuid", "deliveries.url", "deliveries.sequence")
        ),
        params![time_to_db(now), delivery_id],
    )?;
    Ok(promoted > 0)
}

pub(super) fn release(
    conn: &Connection,
    delivery_ids: &[i64],
    lease_until: DateTime<Utc>,
    next_attempt_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut update = conn.prepare_cached(
        "UPDATE deliveries SET leased_until = NULL, next_attempt_at = ? \
         WHERE delivery_id = ? AND status = 'pending' AND leased_until = ?",
    )?;
    for id in delivery_ids {
        update.execute(params![time_to_db(next_attempt_at), id, time_to_db(lease_until)])?;
    }
    Ok(())
}

pub(super) fn redeliver(
    conn: &Connection,
    auth_id: &AuthId,
    event_id: &EventId,
    now: DateTime<Utc>,
) -> Result<Redelivery, StoreError> {
    let event_id = event_id.to_string();
    let statuses = all(
        conn,
        "SELECT status FROM deliveries WHERE auth_id = ? AND event_id = ?",
        [auth_id.as_str(), event_id.as_str()],
        |row| text(row, "status"),
    )?;
    if statuses.is_empty() {
        return Err(StoreError::NotFound);
    }
    if statuses.iter().any(|s| s == DeliveryStatus::Pending.as_str()) {
        return Ok(Redelivery::StillPending);
    }
    let queued = execute(
        conn,
        "UPDATE deliveries SET status = 'pending', target = 'primary', target_attempts = 0, delivered_to = NULL, \
         next_attempt_at = ?1, leased_until = NULL, updated_at = ?1 \
         WHERE auth_id = ?2 AND event_id = ?3 AND status IN ('delivered', 'failed')",
        params![time_to_db(now), auth_id.as_str(), event_id],
    )?;
    Ok(match queued {
        0 => Redelivery::NothingToSend,
        n => Redelivery::Queued(n),
    })
}

/// The deliveries selected by `filter` (a `WHERE … ORDER BY …` over the deliveries table),
/// each with its attempts.
pub(super) fn deliveries(
    conn: &Connection,
    filter: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    let mut records = all(
        conn,
        &format!("SELECT {DELIVERY_COLUMNS} FROM deliveries {filter}"),
        params,
        |row| Ok((Columns::get::<i64>(row, "delivery_id")?, delivery_from_row(row)?)),
    )?;
    for (delivery_id, record) in &mut records {
        record.attempts = all(
            conn,
            "SELECT attempt, target, url, started_at, latency_ms, status_code, error, retry_after_ms \
             FROM attempts WHERE delivery_id = ? ORDER BY attempt, attempt_id",
            [*delivery_id],
            |row| attempt_from_row(row),
        )?;
    }
    Ok(records.into_iter().map(|(_, record)| record).collect())
}

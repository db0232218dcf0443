//! The delivery queue on PostgreSQL, shared by every node: claim with a lease, record an
//! attempt and move the delivery on, redeliver, and the attempts of the delivery log.
//!
//! The claim picks rows in a `MATERIALIZED` CTE with `LIMIT … FOR UPDATE SKIP LOCKED` (the
//! planner cannot update more rows than the limit, and a row another node is claiming is
//! skipped, never waited for), then leases them in the same statement. A claim commits at once:
//! no transaction stays open across HTTP, so none pins `xmin` and bloats the queue's indexes.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use domain::{AuthId, DeliveryStatus, EventId};
use tokio_postgres::types::ToSql;

use super::db::{all, execute, first, Params};
use crate::codec::*;
use crate::rows::{attempt_from_row, claimed_from_row, delivery_from_row, text};
use crate::sql::DELIVERY_COLUMNS;
use crate::{
    AfterAttempt, ClaimedDelivery, DeliveryRecord, FinishedAttempt, KeysVersion, Redelivery, StoreError,
};

pub(super) async fn claim_due(
    tx: &impl GenericClient,
    node: &str,
    limit: u32,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    // Claimable: due, pending, not leased, and first in line for its call and URL.
    let rows = tx
        .query(
            &tx.prepare_cached(concat!(
                "WITH picked AS MATERIALIZED ( \
                   SELECT d.delivery_id FROM deliveries d \
                   WHERE d.status = 'pending' AND d.next_attempt_at <= $1 \
                     AND (d.leased_until IS NULL OR d.leased_until <= $1) AND NOT ",
                earlier_pending!("d.call_uuid", "d.url", "d.sequence"),
                "  ORDER BY d.next_attempt_at, d.delivery_id LIMIT $3 FOR UPDATE OF d SKIP LOCKED) \
                 UPDATE deliveries u SET leased_until = $2, leased_by = $4 FROM picked WHERE u.delivery_id = picked.delivery_id \
                 RETURNING u.delivery_id, u.event_id, u.call_uuid, u.auth_id, u.sequence, u.event, u.channel, \
                   u.level, u.url, u.method, u.fallback_url, u.target, u.target_attempts, u.attempt_count, \
                   (SELECT e.fields FROM events e WHERE e.event_id = u.event_id) AS fields, \
                   (SELECT a.keys_version FROM accounts a WHERE a.auth_id = u.auth_id) AS own_version, \
                   (SELECT COALESCE(p.keys_version, a.keys_version) FROM accounts a \
                      LEFT JOIN accounts p ON p.auth_id = a.parent_auth_id WHERE a.auth_id = u.auth_id) \
                     AS parent_version"
            ))
            .await?,
            &[&time_to_db(now), &time_to_db(lease_until), &i64::from(limit), &node],
        )
        .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        let delivery_id: i64 = row.try_get("delivery_id")?;
        let decoded = (|| {
            let fields: Option<String> = row.try_get("fields")?;
            let version = KeysVersion {
                own: row.try_get::<_, Option<i64>>("own_version")?.unwrap_or_default(),
                parent: row
                    .try_get::<_, Option<i64>>("parent_version")?
                    .unwrap_or_default(),
            };
            let fields = fields.ok_or_else(|| corrupt("event of delivery", &delivery_id.to_string()))?;
            claimed_from_row(&row, &fields, version)
        })();
        match decoded {
            Ok(delivery) => claimed.push(delivery),
            // A row that does not decode can never be sent: it is failed (and the events
            // waiting behind it move on) instead of failing every claim, where it would always
            // come first.
            Err(error) => {
                tracing::error!(%error, delivery_id, "a claimed delivery does not decode; it is failed");
                execute(
                    tx,
                    "UPDATE deliveries SET status = 'failed', leased_until = NULL, updated_at = $1 \
                     WHERE delivery_id = $2",
                    &[&time_to_db(now), &delivery_id],
                )
                .await?;
                promote_next(tx, delivery_id, now).await?;
            }
        }
    }
    claimed.sort_by_key(|c| c.delivery_id);
    Ok(claimed)
}

pub(super) async fn next_due_at(client: &impl GenericClient) -> Result<Option<DateTime<Utc>>, StoreError> {
    let micros: Option<i64> = first(
        client,
        concat!(
            "SELECT MIN(GREATEST(d.next_attempt_at, COALESCE(d.leased_until, 0))) FROM deliveries d \
             WHERE d.status = 'pending' AND d.next_attempt_at IS NOT NULL AND NOT ",
            earlier_pending!("d.call_uuid", "d.url", "d.sequence")
        ),
        &[],
        |row| Ok(row.try_get(0)?),
    )
    .await?
    .flatten();
    micros.map(time_from_db).transpose()
}

pub(super) async fn record_attempts(
    tx: &impl GenericClient,
    finished: &[FinishedAttempt],
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    // Ending a delivery may make the next event of its call due. Locking the calls first (in
    // one order, so two nodes cannot deadlock) orders this against a new event of the same call
    // being written on another node (`calls::apply_report` holds the same lock): either that
    // event was committed and is promoted below, or it sees this one ended and is due at once.
    let ending: Vec<i64> = finished
        .iter()
        .filter(|f| matches!(f.after, AfterAttempt::Delivered | AfterAttempt::Failed))
        .map(|f| f.delivery_id)
        .collect();
    if !ending.is_empty() {
        execute(
            tx,
            "SELECT 1 FROM calls WHERE call_uuid IN (SELECT call_uuid FROM deliveries WHERE delivery_id = ANY($1)) \
             ORDER BY call_uuid FOR UPDATE",
            &[&ending],
        )
        .await?;
    }
    let insert = tx
        .prepare_cached(
            "INSERT INTO attempts (delivery_id, attempt, target, url, started_at, latency_ms, status_code, error, \
             retry_after_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .await?;
    // A fallback starts the new target's count at 0; every other outcome adds one.
    let update = tx
        .prepare_cached(
            "UPDATE deliveries SET status = $1, next_attempt_at = $2, target = $3, \
             target_attempts = CASE WHEN $8 THEN 0 ELSE target_attempts + 1 END, \
             attempt_count = attempt_count + 1, delivered_to = $4, leased_until = NULL, updated_at = $5 \
             WHERE delivery_id = $6 AND ($7::BIGINT IS NULL OR leased_until = $7)",
        )
        .await?;
    // Every item's two writes are independent of the others': pipelined, one round trip.
    let moved = futures_util::future::try_join_all(finished.iter().map(|item| {
        let (insert, update) = (&insert, &update);
        async move {
            let attempt = &item.attempt;
            let target = attempt.target.as_str();
            let (status, next, new_target, delivered_to) = match item.after {
                AfterAttempt::Delivered => ("delivered", None, target, Some(target)),
                AfterAttempt::RetryAt(at) => ("pending", Some(time_to_db(at)), target, None),
                AfterAttempt::FallbackAt(at) => ("pending", Some(time_to_db(at)), "fallback", None),
                AfterAttempt::Failed => ("failed", None, target, None),
            };
            let to_fallback = matches!(item.after, AfterAttempt::FallbackAt(_));
            let (attempt_number, started_at) = (i64::from(attempt.attempt), time_to_db(attempt.started_at));
            let latency = i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX);
            let status_code = attempt.status_code.map(i64::from);
            let retry_after = attempt
                .retry_after_ms
                .map(|ms| i64::try_from(ms).unwrap_or(i64::MAX));
            let (updated_at, lease) = (time_to_db(now), item.lease_until.map(time_to_db));
            let inserted: [&(dyn ToSql + Sync); 9] = [
                &item.delivery_id,
                &attempt_number,
                &target,
                &attempt.url,
                &started_at,
                &latency,
                &status_code,
                &attempt.error,
                &retry_after,
            ];
            let updated: [&(dyn ToSql + Sync); 8] = [
                &status,
                &next,
                &new_target,
                &delivered_to,
                &updated_at,
                &item.delivery_id,
                &lease,
                &to_fallback,
            ];
            let (_, moved) =
                futures_util::try_join!(tx.execute(insert, &inserted), tx.execute(update, &updated))?;
            Ok::<_, StoreError>(moved > 0)
        }
    }))
    .await?;
    let mut unblocked = finished
        .iter()
        .any(|item| matches!(item.after, AfterAttempt::RetryAt(_) | AfterAttempt::FallbackAt(_)));
    let ended: Vec<i64> = finished
        .iter()
        .zip(moved)
        .filter(|(item, moved)| {
            *moved && matches!(item.after, AfterAttempt::Delivered | AfterAttempt::Failed)
        })
        .map(|(item, _)| item.delivery_id)
        .collect();
    let next = futures_util::future::try_join_all(ended.iter().map(|&delivery_id| async move {
        let (promoted, behind) =
            futures_util::try_join!(promote_next(tx, delivery_id, now), later_pending(tx, delivery_id))?;
        Ok::<_, StoreError>(promoted || behind)
    }))
    .await?;
    unblocked |= next.into_iter().any(|more| more);
    Ok(unblocked)
}

/// Whether a later event of the same call to the same URL is pending (it may be claimable now:
/// a redelivered event went in front of it, or a sibling channel to the same URL ended first).
async fn later_pending(tx: &impl GenericClient, delivery_id: i64) -> Result<bool, StoreError> {
    let found = first(
        tx,
        "SELECT EXISTS (SELECT 1 FROM deliveries d JOIN deliveries e ON e.call_uuid = d.call_uuid \
         AND e.url = d.url AND e.sequence > d.sequence WHERE d.delivery_id = $1 AND e.status = 'pending')",
        &[&delivery_id],
        |row| Ok(row.try_get::<_, bool>(0)?),
    )
    .await?;
    Ok(found == Some(true))
}

/// Makes the next waiting event of the call to the same URL as `delivery_id` (which just
/// ended) due now — unless another event before it is still pending. Returns whether it did.
async fn promote_next(
    tx: &impl GenericClient,
    delivery_id: i64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let promoted = execute(
        tx,
        concat!(
            "UPDATE deliveries SET next_attempt_at = $1 WHERE status = 'pending' AND next_attempt_at IS NULL \
             AND (call_uuid, url, sequence) = \
                 (SELECT e.call_uuid, e.url, MIN(e.sequence) FROM deliveries d JOIN deliveries e \
                  ON e.call_uuid = d.call_uuid AND e.url = d.url AND e.sequence > d.sequence \
                  WHERE d.delivery_id = $2 AND e.status = 'pending' AND e.next_attempt_at IS NULL \
                  GROUP BY e.call_uuid, e.url) \
             AND NOT ",
            earlier_pending!("deliveries.call_uuid", "deliveries.url", "deliveries.sequence")
        ),
        &[&time_to_db(now), &delivery_id],
    )
    .await?;
    Ok(promoted > 0)
}

pub(super) async fn redeliver(
    tx: &impl GenericClient,
    auth_id: &AuthId,
    event_id: &EventId,
    now: DateTime<Utc>,
) -> Result<Redelivery, StoreError> {
    let event_id = event_id.to_string();
    // Locked, so a redelivery on another node cannot queue the same event twice.
    let statuses = all(
        tx,
        "SELECT status FROM deliveries WHERE auth_id = $1 AND event_id = $2 FOR UPDATE",
        &[&auth_id.as_str(), &event_id],
        |row| text(row, "status"),
    )
    .await?;
    if statuses.is_empty() {
        return Err(StoreError::NotFound);
    }
    if statuses.iter().any(|s| s == DeliveryStatus::Pending.as_str()) {
        return Ok(Redelivery::StillPending);
    }
    let queued = execute(
        tx,
        "UPDATE deliveries SET status = 'pending', target = 'primary', target_attempts = 0, delivered_to = NULL, \
         next_attempt_at = $1, leased_until = NULL, updated_at = $1 \
         WHERE auth_id = $2 AND event_id = $3 AND status IN ('delivered', 'failed')",
        &[&time_to_db(now), &auth_id.as_str(), &event_id],
    )
    .await?;
    Ok(match queued {
        0 => Redelivery::NothingToSend,
        n => Redelivery::Queued(usize::try_from(n).unwrap_or(usize::MAX)),
    })
}

/// The deliveries selected by `filter` (a `WHERE … ORDER BY …` over the deliveries table),
/// each with its attempts.
pub(super) async fn deliveries(
    client: &impl GenericClient,
    filter: &str,
    params: &Params<'_>,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    let mut records = all(
        client,
        &format!("SELECT {DELIVERY_COLUMNS} FROM deliveries {filter}"),
        params,
        |row| Ok((row.try_get::<_, i64>("delivery_id")?, delivery_from_row(row)?)),
    )
    .await?;
    let ids: Vec<i64> = records.iter().map(|(id, _)| *id).collect();
    // One query for all the attempts of the page, grouped back by delivery.
    let attempts = all(
        client,
        "SELECT delivery_id, attempt, target, url, started_at, latency_ms, status_code, error, retry_after_ms \
         FROM attempts WHERE delivery_id = ANY($1) ORDER BY delivery_id, attempt, attempt_id",
        &[&ids],
        |row| Ok((row.try_get::<_, i64>("delivery_id")?, attempt_from_row(row)?)),
    )
    .await?;
    for (delivery_id, attempt) in attempts {
        if let Some((_, record)) = records.iter_mut().find(|(id, _)| *id == delivery_id) {
            record.attempts.push(attempt);
        }
    }
    Ok(records.into_iter().map(|(_, record)| record).collect())
}

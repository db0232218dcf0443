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

/// The claimed deliveries, and the ids of claimed rows that do not decode (see [`fail`]).
pub(super) async fn claim_due(
    tx: &impl GenericClient,
    node: &str,
    limit: u32,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<(Vec<ClaimedDelivery>, Vec<i64>), StoreError> {
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
    let (mut claimed, mut undecodable) = (Vec::with_capacity(rows.len()), Vec::new());
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
                undecodable.push(delivery_id);
            }
        }
    }
    claimed.sort_by_key(|c| c.delivery_id);
    Ok((claimed, undecodable))
}

/// Fails deliveries that can never be sent (a row that does not decode would otherwise come
/// first in every claim) and moves the events waiting behind them on — under the calls' lock,
/// in one transaction, like any other end of a delivery (`record_attempts`).
pub(super) async fn fail(
    tx: &impl GenericClient,
    delivery_ids: &[i64],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let ids = delivery_ids.to_vec();
    execute(
        tx,
        "UPDATE deliveries SET status = 'failed', leased_until = NULL, updated_at = $1 \
         WHERE delivery_id = ANY($2) AND status = 'pending'",
        &[&time_to_db(now), &ids],
    )
    .await?;
    execute(tx, LOCK_CALLS, &[&ids]).await?;
    first(tx, PROMOTE_NEXT, &[&time_to_db(now), &ids], |_| Ok(())).await?;
    Ok(())
}

/// When the next claimable delivery falls due: a delivery counts at its due time, or at its
/// lease's end while leased. Exact, without reading the whole queue: the first unleased row
/// down the due index gives `t`; a leased row can only come earlier if it is due before `t`, and
/// those (the ones in flight) are the few rows ahead of it in the same index.
pub(super) async fn next_due_at(client: &impl GenericClient) -> Result<Option<DateTime<Utc>>, StoreError> {
    let micros: Option<i64> = first(
        client,
        concat!(
            "WITH free AS (SELECT d.next_attempt_at AS t FROM deliveries d \
               WHERE d.status = 'pending' AND d.next_attempt_at IS NOT NULL \
                 AND (d.leased_until IS NULL OR d.leased_until <= d.next_attempt_at) AND NOT ",
            earlier_pending!("d.call_uuid", "d.url", "d.sequence"),
            "  ORDER BY d.next_attempt_at, d.delivery_id LIMIT 1) \
             SELECT LEAST((SELECT t FROM free), \
               (SELECT MIN(d.leased_until) FROM deliveries d \
                WHERE d.status = 'pending' AND d.next_attempt_at IS NOT NULL AND d.leased_until > d.next_attempt_at \
                  AND d.next_attempt_at <= COALESCE((SELECT t FROM free), 9223372036854775807) AND NOT ",
            earlier_pending!("d.call_uuid", "d.url", "d.sequence"),
            "))"
        ),
        &[],
        |row| Ok(row.try_get(0)?),
    )
    .await?
    .flatten();
    micros.map(time_from_db).transpose()
}

/// For each delivery of `$2` that just ended, the next pending event of its call to the same URL
/// becomes due if it was waiting — unless an event before it is still pending. Written as index
/// walks of (call, URL, sequence) that stop at the first row, so the plan cannot turn into a
/// scan of the waiting rows whatever the statistics say. A delivery still pending (its result
/// came under a lapsed lease and did not move it) promotes nothing. Answers whether any later
/// event of those calls and URLs is pending: it may be claimable now (promoted here, or a
/// redelivered event went in front of it, or a sibling channel to the same URL ended first).
const PROMOTE_NEXT: &str = concat!(
    "WITH ended AS (SELECT d.call_uuid, d.url, d.sequence FROM deliveries d \
                    WHERE d.delivery_id = ANY($2) AND d.status <> 'pending'), \
     promoted AS (UPDATE deliveries u SET next_attempt_at = $1 FROM ended d \
       WHERE u.status = 'pending' AND u.call_uuid = d.call_uuid AND u.url = d.url AND u.next_attempt_at IS NULL \
         AND u.sequence = (SELECT e.sequence FROM deliveries e WHERE e.status = 'pending' \
               AND e.call_uuid = d.call_uuid AND e.url = d.url AND e.sequence > d.sequence \
               ORDER BY e.sequence LIMIT 1) \
         AND NOT ",
    earlier_pending!("u.call_uuid", "u.url", "u.sequence"),
    " RETURNING 1) \
     SELECT EXISTS (SELECT 1 FROM ended d WHERE EXISTS (SELECT 1 FROM deliveries e WHERE e.status = 'pending' \
       AND e.call_uuid = d.call_uuid AND e.url = d.url AND e.sequence > d.sequence)) \
       OR EXISTS (SELECT 1 FROM promoted)"
);

/// Locks the calls of the deliveries `$1`, in one order (two nodes cannot deadlock).
const LOCK_CALLS: &str = "SELECT 1 FROM calls WHERE call_uuid IN \
     (SELECT call_uuid FROM deliveries WHERE delivery_id = ANY($1)) ORDER BY call_uuid FOR UPDATE";

const INSERT_ATTEMPTS: &str =
    "INSERT INTO attempts (delivery_id, attempt, target, url, started_at, latency_ms, \
     status_code, error, retry_after_ms) \
     SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[], $6::BIGINT[], \
       $7::BIGINT[], $8::TEXT[], $9::BIGINT[])";

/// A fallback starts the new target's count at 0; every other outcome adds one. Moves a
/// delivery only while it is held by the attempt's lease.
const MOVE_ON: &str = "UPDATE deliveries d SET status = m.status, next_attempt_at = m.next, target = m.target, \
     target_attempts = CASE WHEN m.to_fallback THEN 0 ELSE d.target_attempts + 1 END, \
     attempt_count = d.attempt_count + 1, delivered_to = m.delivered_to, leased_until = NULL, updated_at = $1 \
     FROM UNNEST($2::BIGINT[], $3::TEXT[], $4::BIGINT[], $5::TEXT[], $6::TEXT[], $7::BIGINT[], $8::BOOL[]) \
       AS m (delivery_id, status, next, target, delivered_to, lease, to_fallback) \
     WHERE d.delivery_id = m.delivery_id AND (m.lease IS NULL OR d.leased_until = m.lease)";

/// Records a batch of attempts in one pipelined round trip of four statements, however many
/// attempts: the attempts, each delivery's next state, then — under the lock of the calls of
/// the deliveries that ended — the next waiting event of each. The lock orders this against a
/// new event of the same call written on another node (`calls::apply_report` holds it while it
/// decides whether its event waits): either that event was committed and is promoted here, or
/// it sees this one ended and is due at once. Taken last, it is held only for the promotion and
/// the commit.
pub(super) async fn record_attempts(
    tx: &impl GenericClient,
    finished: &[FinishedAttempt],
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    // Prepared first, so that the statements below go out in this order on the first poll: the
    // promotion must run after the update that ended its delivery.
    let (insert, update, lock, promote) = futures_util::try_join!(
        tx.prepare_cached(INSERT_ATTEMPTS),
        tx.prepare_cached(MOVE_ON),
        tx.prepare_cached(LOCK_CALLS),
        tx.prepare_cached(PROMOTE_NEXT),
    )?;
    let mut a = Attempts::default();
    for item in finished {
        let attempt = &item.attempt;
        let target = attempt.target.as_str();
        let (status, next, new_target, delivered_to) = match item.after {
            AfterAttempt::Delivered => ("delivered", None, target, Some(target)),
            AfterAttempt::RetryAt(at) => ("pending", Some(time_to_db(at)), target, None),
            AfterAttempt::FallbackAt(at) => ("pending", Some(time_to_db(at)), "fallback", None),
            AfterAttempt::Failed => ("failed", None, target, None),
        };
        a.delivery_id.push(item.delivery_id);
        a.attempt.push(i64::from(attempt.attempt));
        a.target.push(target);
        a.url.push(attempt.url.as_str());
        a.started_at.push(time_to_db(attempt.started_at));
        a.latency_ms
            .push(i64::try_from(attempt.latency_ms).unwrap_or(i64::MAX));
        a.status_code.push(attempt.status_code.map(i64::from));
        a.error.push(attempt.error.as_deref());
        a.retry_after_ms.push(
            attempt
                .retry_after_ms
                .map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)),
        );
        a.status.push(status);
        a.next.push(next);
        a.new_target.push(new_target);
        a.delivered_to.push(delivered_to);
        a.lease.push(item.lease_until.map(time_to_db));
        a.to_fallback
            .push(matches!(item.after, AfterAttempt::FallbackAt(_)));
        if matches!(item.after, AfterAttempt::Delivered | AfterAttempt::Failed) {
            a.ended.push(item.delivery_id);
        }
    }
    let at = time_to_db(now);
    let inserted: [&(dyn ToSql + Sync); 9] = [
        &a.delivery_id,
        &a.attempt,
        &a.target,
        &a.url,
        &a.started_at,
        &a.latency_ms,
        &a.status_code,
        &a.error,
        &a.retry_after_ms,
    ];
    let moved: [&(dyn ToSql + Sync); 8] = [
        &at,
        &a.delivery_id,
        &a.status,
        &a.next,
        &a.new_target,
        &a.delivered_to,
        &a.lease,
        &a.to_fallback,
    ];
    let (locked, promoted): (&Params<'_>, &Params<'_>) = (&[&a.ended], &[&at, &a.ended]);
    let follow = async {
        if a.ended.is_empty() {
            return Ok(false);
        }
        let (_, more) = futures_util::try_join!(tx.execute(&lock, locked), tx.query_one(&promote, promoted))?;
        more.try_get::<_, bool>(0)
    };
    let (_, _, more) = futures_util::try_join!(
        tx.execute(&insert, &inserted),
        tx.execute(&update, &moved),
        follow
    )?;
    let retries = finished
        .iter()
        .any(|item| matches!(item.after, AfterAttempt::RetryAt(_) | AfterAttempt::FallbackAt(_)));
    Ok(retries || more)
}

/// A batch of finished attempts, column by column (the arrays of the `UNNEST`s).
#[derive(Default)]
struct Attempts<'a> {
    delivery_id: Vec<i64>,
    attempt: Vec<i64>,
    target: Vec<&'static str>,
    url: Vec<&'a str>,
    started_at: Vec<i64>,
    latency_ms: Vec<i64>,
    status_code: Vec<Option<i64>>,
    error: Vec<Option<&'a str>>,
    retry_after_ms: Vec<Option<i64>>,
    status: Vec<&'static str>,
    next: Vec<Option<i64>>,
    new_target: Vec<&'static str>,
    delivered_to: Vec<Option<&'static str>>,
    lease: Vec<Option<i64>>,
    to_fallback: Vec<bool>,
    /// The deliveries this batch delivered or failed.
    ended: Vec<i64>,
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

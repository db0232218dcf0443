//! What both backends' SQL shares: the column lists, the ordering rule of the queue, and the
//! values every backend draws the same way. Macros, so that `concat!` builds whole statements
//! at compile time in each dialect.

use chrono::{DateTime, Utc};
use domain::EventId;
use rand::RngCore;

use crate::StoreError;

/// The ordering rule of the queue, in one place: an earlier event of the same call to the same
/// URL is still pending. The arguments are SQL expressions for the delivery's call uuid, URL and
/// sequence (columns of an outer row, or parameters).
macro_rules! earlier_pending {
    ($call:literal, $url:literal, $sequence:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM deliveries p WHERE p.status = 'pending' AND p.call_uuid = ",
            $call,
            " AND p.url = ",
            $url,
            " AND p.sequence < ",
            $sequence,
            ")"
        )
    };
}

macro_rules! account_columns {
    () => {
        "auth_id, name, timezone, default_callback_url, default_callback_method, \
         default_callback_events, parent_auth_id, created_at, updated_at"
    };
}
macro_rules! application_columns {
    () => {
        "app_id, auth_id, name, callback_url, callback_method, fallback_callback_url, \
         callback_events, answer_url, answer_method, hangup_url, hangup_method, created_at, updated_at"
    };
}
macro_rules! trunk_columns {
    () => {
        "trunk_id, auth_id, name, status_callback, status_callback_method, \
         status_callback_events, trunk_direction, trunk_status, termination_uri, recording, engine, \
         created_at, updated_at"
    };
}

macro_rules! call_columns {
    () => {
        "call_uuid, auth_id, direction, from_number, to_number, engine, app_id, trunk_id, \
         status_url, status_method, ring_url, ring_method, answer_url, answer_method, hangup_url, hangup_method, \
         time_limit, ring_timeout, record, call_status, initiated_at, ringing_at, answered_at, ended_at, hangup_cause, \
         hangup_source, recording_id, recording_url, recording_duration_ms, recording_end_reason, last_sequence"
    };
}

pub(crate) const DELIVERY_COLUMNS: &str =
    "delivery_id, event_id, call_uuid, event, sequence, channel, level, reason, url, method, \
     fallback_url, status, delivered_to, next_attempt_at, created_at";

/// Idempotency keys are honoured for this long (PRODUCT.md §2.4).
pub(crate) const IDEMPOTENCY_WINDOW_MICROS: i64 = 24 * 3600 * 1_000_000;

pub(crate) fn offset_to_db(offset: u64) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}

pub(crate) fn random_u128() -> u128 {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    u128::from_le_bytes(bytes)
}

pub(crate) fn new_event_id(now: DateTime<Utc>) -> EventId {
    EventId::time_ordered(u64::try_from(now.timestamp_millis()).unwrap_or(0), random_u128())
}

/// A write that changed no row addressed a row that is not there.
pub(crate) fn found<N: Default + PartialEq>(rows_affected: N) -> Result<(), StoreError> {
    if rows_affected == N::default() {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

pub(crate) fn unique_is_conflict(error: StoreError) -> StoreError {
    if error.is_unique_violation() {
        StoreError::Conflict("the id is already taken")
    } else {
        error
    }
}

/// A new signing secret: its id, its bytes, and the bytes sealed for the database.
pub(crate) fn draw_secret(vault: &crate::Vault, now: DateTime<Utc>) -> (crate::NewSecret, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret_id = domain::SecretId::from_random(random_u128());
    let sealed = vault.seal(&secret_id.to_string(), &bytes);
    let info = crate::SecretInfo {
        secret_id,
        created_at: now,
    };
    (crate::NewSecret { info, bytes }, sealed)
}

/// Opens a stored auth token; one that does not open is corrupt (or another server key).
pub(crate) fn open_token(vault: &crate::Vault, auth_id: &str, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
    vault
        .open(auth_id, sealed)
        .map_err(|_| crate::codec::corrupt("auth token of", auth_id))
}

//! Row mappers shared by both backends: a stored row becomes a domain value in one place.
//!
//! [`Columns`] is the one thing a backend supplies: reading a named column as a Rust value.
//! Both schemas keep the same column names and encodings ([`crate::codec`]), so every mapper
//! below is written once.

use chrono::{DateTime, Utc};
use domain::call::{Hangup, Recording, Target};
use domain::resolution::{DirectUrls, Hierarchy, LevelConfig};
use domain::{
    Account, AppId, Application, AuthId, Call, CallStatus, CallUuid, Channel, DeliveryStatus, Direction,
    Engine, EventId, EventKind, HangupCause, Level, TargetKind, Trunk, TrunkId,
};
use tokio_postgres::types::FromSqlOwned;

use crate::codec::*;
use crate::{AttemptRecord, ClaimedDelivery, DeliveryRecord, IdempotentAnswer, KeysVersion, StoreError};

/// A row of either backend, read by column name.
pub(crate) trait Columns {
    fn get<T: rusqlite::types::FromSql + FromSqlOwned>(&self, column: &str) -> Result<T, StoreError>;
}

impl Columns for rusqlite::Row<'_> {
    fn get<T: rusqlite::types::FromSql + FromSqlOwned>(&self, column: &str) -> Result<T, StoreError> {
        Ok(rusqlite::Row::get(self, column)?)
    }
}

impl Columns for tokio_postgres::Row {
    fn get<T: rusqlite::types::FromSql + FromSqlOwned>(&self, column: &str) -> Result<T, StoreError> {
        Ok(self.try_get(column)?)
    }
}

pub(crate) fn auth_id_from_db(text: &str) -> Result<AuthId, StoreError> {
    AuthId::parse(text).ok_or_else(|| corrupt("auth_id", text))
}

/// A text column.
pub(crate) fn text(row: &impl Columns, column: &str) -> Result<String, StoreError> {
    row.get(column)
}

pub(crate) fn account_from_row(row: &impl Columns) -> Result<Account, StoreError> {
    let parent: Option<String> = row.get("parent_auth_id")?;
    Ok(Account {
        auth_id: auth_id_from_db(&text(row, "auth_id")?)?,
        name: row.get("name")?,
        timezone: timezone_from_db(&text(row, "timezone")?)?,
        default_callback_url: url_from_db(row.get("default_callback_url")?)?,
        default_callback_method: method_from_db(&text(row, "default_callback_method")?)?,
        default_callback_events: filter_from_db(&text(row, "default_callback_events")?)?,
        parent_auth_id: parent.as_deref().map(auth_id_from_db).transpose()?,
        created_at: time_from_db(row.get("created_at")?)?,
        updated_at: time_from_db(row.get("updated_at")?)?,
    })
}

pub(crate) fn application_from_row(row: &impl Columns) -> Result<Application, StoreError> {
    let app_id = text(row, "app_id")?;
    Ok(Application {
        app_id: AppId::parse(&app_id).ok_or_else(|| corrupt("app_id", &app_id))?,
        auth_id: auth_id_from_db(&text(row, "auth_id")?)?,
        name: row.get("name")?,
        callback_url: url_from_db(row.get("callback_url")?)?,
        callback_method: method_from_db(&text(row, "callback_method")?)?,
        fallback_callback_url: url_from_db(row.get("fallback_callback_url")?)?,
        callback_events: filter_from_db(&text(row, "callback_events")?)?,
        answer_url: url_from_db(row.get("answer_url")?)?,
        answer_method: method_from_db(&text(row, "answer_method")?)?,
        hangup_url: url_from_db(row.get("hangup_url")?)?,
        hangup_method: method_from_db(&text(row, "hangup_method")?)?,
        created_at: time_from_db(row.get("created_at")?)?,
        updated_at: time_from_db(row.get("updated_at")?)?,
    })
}

pub(crate) fn trunk_from_row(row: &impl Columns) -> Result<Trunk, StoreError> {
    let trunk_id = text(row, "trunk_id")?;
    Ok(Trunk {
        trunk_id: TrunkId::parse(&trunk_id).ok_or_else(|| corrupt("trunk_id", &trunk_id))?,
        auth_id: auth_id_from_db(&text(row, "auth_id")?)?,
        name: row.get("name")?,
        status_callback: url_from_db(row.get("status_callback")?)?,
        status_callback_method: method_from_db(&text(row, "status_callback_method")?)?,
        status_callback_events: filter_from_db(&text(row, "status_callback_events")?)?,
        trunk_direction: direction_from_db(&text(row, "trunk_direction")?)?,
        trunk_status: status_from_db(&text(row, "trunk_status")?)?,
        termination_uri: sip_uri_from_db(row.get("termination_uri")?)?,
        recording: row.get("recording")?,
        engine: engine_from_db(&text(row, "engine")?)?,
        created_at: time_from_db(row.get("created_at")?)?,
        updated_at: time_from_db(row.get("updated_at")?)?,
    })
}

pub(crate) fn configuration_from_row(
    row: &impl Columns,
    call: &Call,
) -> Result<(Hierarchy, DirectUrls, domain::Timezone), StoreError> {
    let timezone = timezone_from_db(&text(row, "timezone")?)?;
    let mut hierarchy = Hierarchy {
        call: call.status.as_ref().map(|target| LevelConfig {
            url: Some(target.url.clone()),
            method: target.method,
            ..LevelConfig::default()
        }),
        account: Some(LevelConfig {
            url: url_from_db(row.get("default_callback_url")?)?,
            method: method_from_db(&text(row, "default_callback_method")?)?,
            fallback: None,
            filter: filter_from_db(&text(row, "default_callback_events")?)?,
        }),
        ..Hierarchy::default()
    };
    let mut application_direct = DirectUrls::default();
    if row.get::<Option<String>>("app_id")?.is_some() {
        hierarchy.application = Some(LevelConfig {
            url: url_from_db(row.get("callback_url")?)?,
            method: method_from_db(&text(row, "callback_method")?)?,
            fallback: url_from_db(row.get("fallback_callback_url")?)?,
            filter: filter_from_db(&text(row, "callback_events")?)?,
        });
        application_direct.answer = target_from_db(row.get("answer_url")?, row.get("answer_method")?)?;
        application_direct.hangup = target_from_db(row.get("hangup_url")?, row.get("hangup_method")?)?;
    }
    if row.get::<Option<String>>("trunk_id")?.is_some() {
        hierarchy.trunk = Some(LevelConfig {
            url: url_from_db(row.get("status_callback")?)?,
            method: method_from_db(&text(row, "status_callback_method")?)?,
            fallback: None,
            filter: filter_from_db(&text(row, "status_callback_events")?)?,
        });
    }
    Ok((hierarchy, application_direct, timezone))
}

pub(crate) fn target_from_db(
    url: Option<String>,
    method: Option<String>,
) -> Result<Option<Target>, StoreError> {
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

pub(crate) fn optional_time(row: &impl Columns, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    let micros: Option<i64> = row.get(column)?;
    micros.map(time_from_db).transpose()
}

pub(crate) fn count(row: &impl Columns, column: &str) -> Result<u32, StoreError> {
    let value: i64 = row.get(column)?;
    u32::try_from(value).map_err(|_| corrupt(column, &value.to_string()))
}

pub(crate) fn call_from_row(row: &impl Columns) -> Result<Call, StoreError> {
    let uuid = text(row, "call_uuid")?;
    let auth_id = text(row, "auth_id")?;
    let direction = text(row, "direction")?;
    let engine = text(row, "engine")?;
    let status = text(row, "call_status")?;
    let app_id: Option<String> = row.get("app_id")?;
    let trunk_id: Option<String> = row.get("trunk_id")?;
    let cause: Option<String> = row.get("hangup_cause")?;
    let source: Option<String> = row.get("hangup_source")?;
    let recording_id: Option<String> = row.get("recording_id")?;
    Ok(Call {
        call_uuid: CallUuid::parse(&uuid).ok_or_else(|| corrupt("call_uuid", &uuid))?,
        auth_id: AuthId::parse(&auth_id).ok_or_else(|| corrupt("auth_id", &auth_id))?,
        direction: Direction::parse(&direction).ok_or_else(|| corrupt("direction", &direction))?,
        from: text(row, "from_number")?,
        to: text(row, "to_number")?,
        engine: Engine::parse(&engine).ok_or_else(|| corrupt("engine", &engine))?,
        app_id: app_id
            .map(|id| AppId::parse(&id).ok_or_else(|| corrupt("app_id", &id)))
            .transpose()?,
        trunk_id: trunk_id
            .map(|id| TrunkId::parse(&id).ok_or_else(|| corrupt("trunk_id", &id)))
            .transpose()?,
        status: target_from_db(row.get("status_url")?, row.get("status_method")?)?,
        ring: target_from_db(row.get("ring_url")?, row.get("ring_method")?)?,
        answer: target_from_db(row.get("answer_url")?, row.get("answer_method")?)?,
        hangup_target: target_from_db(row.get("hangup_url")?, row.get("hangup_method")?)?,
        time_limit_s: count(row, "time_limit")?,
        ring_timeout_s: count(row, "ring_timeout")?,
        record: row.get("record")?,
        call_status: CallStatus::parse(&status).ok_or_else(|| corrupt("call_status", &status))?,
        initiated_at: time_from_db(row.get("initiated_at")?)?,
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
                let duration: Option<i64> = row.get("recording_duration_ms")?;
                Some(Recording {
                    recording_id,
                    url: row.get::<Option<String>>("recording_url")?.unwrap_or_default(),
                    duration_ms: u64::try_from(duration.unwrap_or(0)).unwrap_or(0),
                    end_reason: row
                        .get::<Option<String>>("recording_end_reason")?
                        .unwrap_or_default(),
                })
            }
            None => None,
        },
        last_sequence: count(row, "last_sequence")?,
    })
}

pub(crate) fn delivery_from_row(row: &impl Columns) -> Result<DeliveryRecord, StoreError> {
    let event_id = text(row, "event_id")?;
    let call_uuid = text(row, "call_uuid")?;
    let event = text(row, "event")?;
    let channel = text(row, "channel")?;
    let status = text(row, "status")?;
    let level: Option<String> = row.get("level")?;
    Ok(DeliveryRecord {
        event_id: EventId::parse(&event_id).ok_or_else(|| corrupt("event_id", &event_id))?,
        call_uuid: CallUuid::parse(&call_uuid).ok_or_else(|| corrupt("call_uuid", &call_uuid))?,
        event: EventKind::parse(&event).ok_or_else(|| corrupt("event", &event))?,
        sequence: count(row, "sequence")?,
        channel: Channel::parse(&channel).ok_or_else(|| corrupt("channel", &channel))?,
        level: level
            .map(|l| Level::parse(&l).ok_or_else(|| corrupt("level", &l)))
            .transpose()?,
        reason: text(row, "reason")?,
        url: row.get("url")?,
        method: method_from_db(&text(row, "method")?)?,
        fallback_url: row.get("fallback_url")?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        delivered_to: row.get("delivered_to")?,
        next_attempt_at: optional_time(row, "next_attempt_at")?,
        created_at: time_from_db(row.get("created_at")?)?,
        attempts: Vec::new(),
    })
}

pub(crate) fn attempt_from_row(row: &impl Columns) -> Result<AttemptRecord, StoreError> {
    let target = text(row, "target")?;
    let status_code: Option<i64> = row.get("status_code")?;
    let latency: i64 = row.get("latency_ms")?;
    let retry_after: Option<i64> = row.get("retry_after_ms")?;
    Ok(AttemptRecord {
        attempt: count(row, "attempt")?,
        target: TargetKind::parse(&target).ok_or_else(|| corrupt("target", &target))?,
        url: row.get("url")?,
        started_at: time_from_db(row.get("started_at")?)?,
        latency_ms: u64::try_from(latency).unwrap_or(0),
        status_code: status_code.and_then(|c| u16::try_from(c).ok()),
        error: row.get("error")?,
        retry_after_ms: retry_after.and_then(|ms| u64::try_from(ms).ok()),
    })
}

/// A claimed delivery from its row of `deliveries`, the event's fields (JSON) and the
/// account's key versions, which each backend reads in its own way.
pub(crate) fn claimed_from_row(
    row: &impl Columns,
    fields: &str,
    keys_version: KeysVersion,
) -> Result<ClaimedDelivery, StoreError> {
    let event_id = text(row, "event_id")?;
    let call_uuid = text(row, "call_uuid")?;
    let auth_id = text(row, "auth_id")?;
    let event = text(row, "event")?;
    let channel = text(row, "channel")?;
    let target = text(row, "target")?;
    let level: Option<String> = row.get("level")?;
    let url: Option<String> = row.get("url")?;
    let fields: Vec<(String, String)> =
        serde_json::from_str(fields).map_err(|_| corrupt("fields of event", &event_id))?;
    Ok(ClaimedDelivery {
        delivery_id: row.get("delivery_id")?,
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
        method: method_from_db(&text(row, "method")?)?,
        fallback_url: row.get("fallback_url")?,
        target: TargetKind::parse(&target).ok_or_else(|| corrupt("target", &target))?,
        target_attempts: count(row, "target_attempts")?,
        attempt_count: count(row, "attempt_count")?,
        fields,
        keys_version,
    })
}

/// A stored idempotent answer (`request_hash`, `status`, `body`) of `key`.
pub(crate) fn idempotent_from_row(row: &impl Columns, key: &str) -> Result<IdempotentAnswer, StoreError> {
    let hash: Vec<u8> = row.get("request_hash")?;
    let status: i64 = row.get("status")?;
    Ok(IdempotentAnswer {
        request_hash: <[u8; 32]>::try_from(hash.as_slice()).map_err(|_| corrupt("request_hash", key))?,
        status: u16::try_from(status).map_err(|_| corrupt("status", &status.to_string()))?,
        body: row.get("body")?,
    })
}

//! Column encodings shared by every backend: times as microseconds, filters as JSON arrays,
//! URLs and enums as text. Decoding a stored value that no longer parses is `Corrupt`.

use chrono::{DateTime, Utc};
use domain::{
    CallbackUrl, EventFilter, HttpMethod, SipUri, Timezone, TrunkDirection, TrunkStatus, UrlPolicy,
};

use crate::StoreError;

pub fn time_to_db(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

pub fn time_from_db(micros: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| corrupt("time", &micros.to_string()))
}

pub fn filter_to_db(filter: &EventFilter) -> String {
    serde_json::to_string(filter.written()).expect("a list of strings always serialises")
}

pub fn filter_from_db(text: &str) -> Result<EventFilter, StoreError> {
    let entries: Vec<String> = serde_json::from_str(text).map_err(|_| corrupt("event filter", text))?;
    EventFilter::parse(&entries).map_err(|_| corrupt("event filter", text))
}

/// Stored URLs passed the rules in force when written; reading them back must not depend on
/// whether this process runs in dev mode, so they are re-parsed under the widest policy. The
/// sender checks the resolved address again at send time.
pub fn url_from_db(text: Option<String>) -> Result<Option<CallbackUrl>, StoreError> {
    text.map(|text| {
        CallbackUrl::parse(&text, UrlPolicy { allow_private: true }).map_err(|_| corrupt("url", &text))
    })
    .transpose()
}

pub fn url_to_db(url: &Option<CallbackUrl>) -> Option<&str> {
    url.as_ref().map(CallbackUrl::as_str)
}

pub fn method_from_db(text: &str) -> Result<HttpMethod, StoreError> {
    HttpMethod::parse(text).map_err(|_| corrupt("method", text))
}

pub fn timezone_from_db(text: &str) -> Result<Timezone, StoreError> {
    Timezone::parse(text).map_err(|_| corrupt("timezone", text))
}

pub fn direction_from_db(text: &str) -> Result<TrunkDirection, StoreError> {
    TrunkDirection::parse(text).map_err(|_| corrupt("trunk_direction", text))
}

pub fn status_from_db(text: &str) -> Result<TrunkStatus, StoreError> {
    TrunkStatus::parse(text).map_err(|_| corrupt("trunk_status", text))
}

pub fn engine_from_db(text: &str) -> Result<domain::Engine, StoreError> {
    domain::Engine::parse(text).ok_or_else(|| corrupt("engine", text))
}

pub fn sip_uri_from_db(text: Option<String>) -> Result<Option<SipUri>, StoreError> {
    text.map(|text| SipUri::parse(&text).ok_or_else(|| corrupt("termination_uri", &text)))
        .transpose()
}

pub fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {value:?} does not decode"))
}

//! Row mappers of the configuration tables (accounts, applications, trunks).

use domain::{Account, AppId, Application, AuthId, Trunk, TrunkId};
use rusqlite::Row;

use crate::codec::*;
use crate::StoreError;

pub(super) fn auth_id_from_db(text: &str) -> Result<AuthId, StoreError> {
    AuthId::parse(text).ok_or_else(|| corrupt("auth_id", text))
}

/// A text column.
pub(super) fn text(row: &Row<'_>, column: &str) -> Result<String, StoreError> {
    Ok(row.get(column)?)
}

pub(super) fn account_from_row(row: &Row<'_>) -> Result<Account, StoreError> {
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

pub(super) fn application_from_row(row: &Row<'_>) -> Result<Application, StoreError> {
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

pub(super) fn trunk_from_row(row: &Row<'_>) -> Result<Trunk, StoreError> {
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

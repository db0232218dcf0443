//! Row mappers of the configuration tables (accounts, applications, trunks).

use domain::{Account, AppId, Application, AuthId, Trunk, TrunkId};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use crate::codec::*;
use crate::StoreError;

pub(super) fn auth_id_from_db(text: &str) -> Result<AuthId, StoreError> {
    AuthId::parse(text).ok_or_else(|| corrupt("auth_id", text))
}

pub(super) fn account_from_row(row: &SqliteRow) -> Result<Account, StoreError> {
    let parent: Option<String> = row.try_get("parent_auth_id")?;
    Ok(Account {
        auth_id: auth_id_from_db(row.try_get("auth_id")?)?,
        name: row.try_get("name")?,
        timezone: timezone_from_db(row.try_get("timezone")?)?,
        default_callback_url: url_from_db(row.try_get("default_callback_url")?)?,
        default_callback_method: method_from_db(row.try_get("default_callback_method")?)?,
        default_callback_events: filter_from_db(row.try_get("default_callback_events")?)?,
        parent_auth_id: parent.as_deref().map(auth_id_from_db).transpose()?,
        created_at: time_from_db(row.try_get("created_at")?)?,
        updated_at: time_from_db(row.try_get("updated_at")?)?,
    })
}

pub(super) fn application_from_row(row: &SqliteRow) -> Result<Application, StoreError> {
    let app_id: String = row.try_get("app_id")?;
    Ok(Application {
        app_id: AppId::parse(&app_id).ok_or_else(|| corrupt("app_id", &app_id))?,
        auth_id: auth_id_from_db(row.try_get("auth_id")?)?,
        name: row.try_get("name")?,
        callback_url: url_from_db(row.try_get("callback_url")?)?,
        callback_method: method_from_db(row.try_get("callback_method")?)?,
        fallback_callback_url: url_from_db(row.try_get("fallback_callback_url")?)?,
        callback_events: filter_from_db(row.try_get("callback_events")?)?,
        answer_url: url_from_db(row.try_get("answer_url")?)?,
        answer_method: method_from_db(row.try_get("answer_method")?)?,
        hangup_url: url_from_db(row.try_get("hangup_url")?)?,
        hangup_method: method_from_db(row.try_get("hangup_method")?)?,
        created_at: time_from_db(row.try_get("created_at")?)?,
        updated_at: time_from_db(row.try_get("updated_at")?)?,
    })
}

pub(super) fn trunk_from_row(row: &SqliteRow) -> Result<Trunk, StoreError> {
    let trunk_id: String = row.try_get("trunk_id")?;
    Ok(Trunk {
        trunk_id: TrunkId::parse(&trunk_id).ok_or_else(|| corrupt("trunk_id", &trunk_id))?,
        auth_id: auth_id_from_db(row.try_get("auth_id")?)?,
        name: row.try_get("name")?,
        status_callback: url_from_db(row.try_get("status_callback")?)?,
        status_callback_method: method_from_db(row.try_get("status_callback_method")?)?,
        status_callback_events: filter_from_db(row.try_get("status_callback_events")?)?,
        trunk_direction: direction_from_db(row.try_get("trunk_direction")?)?,
        trunk_status: status_from_db(row.try_get("trunk_status")?)?,
        termination_uri: sip_uri_from_db(row.try_get("termination_uri")?)?,
        recording: row.try_get("recording")?,
        engine: engine_from_db(row.try_get("engine")?)?,
        created_at: time_from_db(row.try_get("created_at")?)?,
        updated_at: time_from_db(row.try_get("updated_at")?)?,
    })
}

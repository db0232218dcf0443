//! The account (level 4): read it and update its settings and default callback.

use axum::extract::State;
use domain::{Account, AccountPatch, Timezone};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::clock;
use crate::error::{ApiError, Reply};
use crate::extract::{Authed, JsonBody};
use crate::field::{Checker, Field};
use crate::routes::time;
use crate::AppState;

/// An account as the API shows it. The auth token is never part of it.
#[derive(Serialize, ToSchema)]
pub struct AccountOut {
    pub auth_id: String,
    pub name: String,
    pub timezone: String,
    pub default_callback_url: Option<String>,
    pub default_callback_method: String,
    pub default_callback_events: Vec<String>,
    pub parent_auth_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Account> for AccountOut {
    fn from(account: Account) -> Self {
        AccountOut {
            auth_id: account.auth_id.to_string(),
            name: account.name,
            timezone: account.timezone.name().to_owned(),
            default_callback_url: account.default_callback_url.map(|u| u.into_string()),
            default_callback_method: account.default_callback_method.as_str().to_owned(),
            default_callback_events: account.default_callback_events.written().to_vec(),
            parent_auth_id: account.parent_auth_id.map(|id| id.to_string()),
            created_at: time(account.created_at),
            updated_at: time(account.updated_at),
        }
    }
}

/// A partial update of the account: omitted fields stay, `null` clears (or restores the default).
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct AccountIn {
    /// 1–255 characters, not only spaces; never `null`.
    #[serde(default)]
    #[schema(value_type = String, required = false, min_length = 1, max_length = 255)]
    name: Field<String>,
    /// IANA time zone, default `UTC`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    timezone: Field<String>,
    /// Level-4 callback URL: receives every event no more specific level claims.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    default_callback_url: Field<String>,
    /// `GET` or `POST` (default), any case.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    default_callback_method: Field<String>,
    /// Event filter; empty = all.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    default_callback_events: Field<Vec<String>>,
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_account, update_account))
}

/// Retrieve the account.
#[utoipa::path(get, path = "/api/v1/account/{auth_id}", tag = "account",
    params(("auth_id" = String, Path)),
    security(("auth_id" = [], "auth_token" = []), ("basic" = [])),
    responses((status = 200, body = AccountOut)))]
async fn get_account(Authed(account): Authed) -> Reply<AccountOut> {
    Reply::ok(account.into())
}

/// Update the account (partial; POST, PUT and PATCH alike).
#[utoipa::path(method(post, put, patch), path = "/api/v1/account/{auth_id}", tag = "account",
    params(("auth_id" = String, Path)), request_body = AccountIn,
    security(("auth_id" = [], "auth_token" = []), ("basic" = [])),
    responses((status = 200, body = AccountOut)))]
async fn update_account(
    State(state): State<AppState>,
    Authed(mut account): Authed,
    JsonBody(body): JsonBody<AccountIn>,
) -> Result<Reply<AccountOut>, ApiError> {
    update(&state, &mut account, body).await?;
    Ok(Reply::ok(account.into()))
}

/// Validates and applies a partial update of the account: the one code path of the JSON API
/// and the dashboard, so both refuse the same fields with the same messages.
pub(crate) async fn update(state: &AppState, account: &mut Account, body: AccountIn) -> Result<(), ApiError> {
    let mut checker = Checker::new(state.settings.url_policy);
    let patch = AccountPatch {
        name: checker.name("name", body.name, false),
        timezone: checker.parsed("timezone", body.timezone, |tz: String| Timezone::parse(&tz)),
        default_callback_url: checker.url("default_callback_url", body.default_callback_url),
        default_callback_method: checker.method("default_callback_method", body.default_callback_method),
        default_callback_events: checker.events("default_callback_events", body.default_callback_events),
    };
    checker.finish()?;
    account.apply(patch, clock::now());
    state.store.update_account(account).await?;
    Ok(())
}

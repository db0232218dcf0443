//! Applications (level 2): the status callback with its fallback and filter, and the Vobiz
//! direct channels `answer_url`/`hangup_url`.

use axum::extract::State;
use axum::http::StatusCode;
use domain::{AppId, Application, ApplicationPatch, AuthId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::clock;
use crate::error::{ApiError, Reply};
use crate::extract::{Authed, JsonBody, Paging, Path};
use crate::field::{Checker, Field};
use crate::routes::{time, ListOut};
use crate::AppState;

#[derive(Serialize, ToSchema)]
pub struct ApplicationOut {
    pub(crate) app_id: String,
    pub(crate) name: String,
    /// The same as `name`, under Vobiz's field name.
    pub(crate) app_name: String,
    pub(crate) callback_url: Option<String>,
    pub(crate) callback_method: String,
    pub(crate) fallback_callback_url: Option<String>,
    pub(crate) callback_events: Vec<String>,
    pub(crate) answer_url: Option<String>,
    pub(crate) answer_method: String,
    pub(crate) hangup_url: Option<String>,
    pub(crate) hangup_method: String,
    pub(crate) resource_uri: String,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

impl From<Application> for ApplicationOut {
    fn from(app: Application) -> Self {
        ApplicationOut {
            resource_uri: format!("/api/v1/account/{}/applications/{}", app.auth_id, app.app_id),
            app_id: app.app_id.to_string(),
            app_name: app.name.clone(),
            name: app.name,
            callback_url: app.callback_url.map(|u| u.into_string()),
            callback_method: app.callback_method.as_str().to_owned(),
            fallback_callback_url: app.fallback_callback_url.map(|u| u.into_string()),
            callback_events: app.callback_events.written().to_vec(),
            answer_url: app.answer_url.map(|u| u.into_string()),
            answer_method: app.answer_method.as_str().to_owned(),
            hangup_url: app.hangup_url.map(|u| u.into_string()),
            hangup_method: app.hangup_method.as_str().to_owned(),
            created_at: time(app.created_at),
            updated_at: time(app.updated_at),
        }
    }
}

/// Create or update an application. On update, omitted fields stay and `null` clears.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationIn {
    /// Required on create; 1–255 characters, not only spaces; never `null`. Alias: `app_name`.
    #[serde(default, alias = "app_name")]
    #[schema(value_type = String, required = false, min_length = 1, max_length = 255)]
    name: Field<String>,
    /// HTTPS URL of the status callback (level 2).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    callback_url: Field<String>,
    /// `GET` or `POST` (default).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    callback_method: Field<String>,
    /// Receives the event after the primary URL exhausted its retries.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    fallback_callback_url: Field<String>,
    /// Event filter; empty or absent = all events.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    callback_events: Field<Vec<String>>,
    /// Direct channel: receives `StartApp`, unfiltered.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    answer_url: Field<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    answer_method: Field<String>,
    /// Direct channel: receives `Hangup`, unfiltered.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    hangup_url: Field<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    hangup_method: Field<String>,
}

impl ApplicationIn {
    fn into_patch(self, state: &AppState, creating: bool) -> Result<ApplicationPatch, ApiError> {
        let mut checker = Checker::new(state.settings.url_policy);
        let patch = ApplicationPatch {
            name: checker.name("name", self.name, creating),
            callback_url: checker.url("callback_url", self.callback_url),
            callback_method: checker.method("callback_method", self.callback_method),
            fallback_callback_url: checker.url("fallback_callback_url", self.fallback_callback_url),
            callback_events: checker.events("callback_events", self.callback_events),
            answer_url: checker.url("answer_url", self.answer_url),
            answer_method: checker.method("answer_method", self.answer_method),
            hangup_url: checker.url("hangup_url", self.hangup_url),
            hangup_method: checker.method("hangup_method", self.hangup_method),
        };
        checker.finish()?;
        Ok(patch)
    }
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_applications, create_application))
        .routes(routes!(get_application, update_application, delete_application))
}

pub(crate) fn parse_id(app_id: &str) -> Result<AppId, ApiError> {
    AppId::parse(app_id).ok_or(ApiError::NotFound("application"))
}

/// Create an application.
#[utoipa::path(post, path = "/api/v1/account/{auth_id}/applications", tag = "applications",
    params(("auth_id" = String, Path)), request_body = ApplicationIn,
    security(("auth_id" = [], "auth_token" = []), ("basic" = [])),
    responses((status = 201, body = ApplicationOut)))]
async fn create_application(
    State(state): State<AppState>,
    Authed(account): Authed,
    JsonBody(body): JsonBody<ApplicationIn>,
) -> Result<Reply<ApplicationOut>, ApiError> {
    let mut patch = body.into_patch(&state, true)?;
    let now = clock::now();
    let name = patch.name.take().unwrap_or_default();
    let mut app = Application::new(AppId::generate(rand::random()), account.auth_id, name, now);
    app.apply(patch, now);
    state.store.insert_application(&app).await?;
    Ok(Reply::created(app.into()))
}

/// List applications, oldest first.
#[utoipa::path(get, path = "/api/v1/account/{auth_id}/applications", tag = "applications",
    params(("auth_id" = String, Path), ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size, 1–100 (default 20)"),
        ("offset" = Option<u64>, Query, format = "uint64", description = "Objects to skip, 0 to 18446744073709551615 (default 0)")),
    security(("auth_id" = [], "auth_token" = []), ("basic" = [])),
    responses((status = 200, body = ListOut<ApplicationOut>)))]
async fn list_applications(
    State(state): State<AppState>,
    Authed(account): Authed,
    Paging(page, filters): Paging,
) -> Result<Reply<ListOut<ApplicationOut>>, ApiError> {
    let listing = state.store.list_applications(&account.auth_id, page).await?;
    let path = format!("/api/v1/account/{}/applications", account.auth_id);
    Ok(Reply::ok(ListOut::new(
        &path,
        &filters,
        page,
        listing,
        ApplicationOut::from,
    )))
}

/// Retrieve an application.
#[utoipa::path(get, path = "/api/v1/account/{auth_id}/applications/{app_id}", tag = "applications",
    params(("auth_id" = String, Path), ("app_id" = String, Path)),
    security(("auth_id" = [], "auth_token" = []), ("basic" = [])),
    responses((status = 200, body = ApplicationOut)))]
async fn get_application(
    State(state): State<AppState>,
    Authed(account): Authed,
    Path((_auth_id, app_id)): Path<(String, String)>,
) -> Result<Reply<ApplicationOut>, ApiError> {
    let app = state
        .store
        .application(&account.auth_id, &parse_id(&app_id)?)
        .await?
        .ok_or(ApiError::NotFound("application"))?;
    Ok(Reply::ok(app.into()))
}

/// Update an application (partial; POST, PUT and PATCH alike).
#[utoipa::path(method(post, put, patch), path = "/api/v1/account/{auth_id}/applications/{app_id}", tag = "applications",
    params(("auth_id" = String, Path), ("app_id" = String, Path)), request_body = ApplicationIn,
    security(("auth_id" = [], "auth_token" = []), ("basic" = [])),
    responses((status = 200, body = ApplicationOut)))]
async fn update_application(
    State(state): State<AppState>,
    Authed(account): Authed,
    Path((_auth_id, app_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<ApplicationIn>,
) -> Result<Reply<ApplicationOut>, ApiError> {
    let app = update(&state, &account.auth_id, &app_id, body).await?;
    Ok(Reply::ok(app.into()))
}

/// Validates and applies a partial update of an application: the one code path of the JSON
/// API and the dashboard, so both refuse the same fields with the same messages.
pub(crate) async fn update(
    state: &AppState,
    auth_id: &AuthId,
    app_id: &str,
    body: ApplicationIn,
) -> Result<Application, ApiError> {
    let app_id = parse_id(app_id)?;
    let patch = body.into_patch(state, false)?;
    let mut app = state
        .store
        .application(auth_id, &app_id)
        .await?
        .ok_or(ApiError::NotFound("application"))?;
    app.apply(patch, clock::now());
    state.store.update_application(&app).await.map_err(not_found)?;
    Ok(app)
}

/// Delete an application.
#[utoipa::path(delete, path = "/api/v1/account/{auth_id}/applications/{app_id}", tag = "applications",
    params(("auth_id" = String, Path), ("app_id" = String, Path)),
    security(("auth_id" = [], "auth_token" = []), ("basic" = [])),
    responses((status = 204)))]
async fn delete_application(
    State(state): State<AppState>,
    Authed(account): Authed,
    Path((_auth_id, app_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let app_id = parse_id(&app_id)?;
    state
        .store
        .delete_application(&account.auth_id, &app_id)
        .await
        .map_err(not_found)?;
    Ok(StatusCode::NO_CONTENT)
}

fn not_found(error: store::StoreError) -> ApiError {
    match error {
        store::StoreError::NotFound => ApiError::NotFound("application"),
        other => other.into(),
    }
}

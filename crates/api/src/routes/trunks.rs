//! SIP trunks (level 3): the trunk's status callback and filter, and where outbound calls go.
//! Write aliases from the Vobiz trunk API: `webhook_url`, `webhook_method`, `trunk_type`.

use axum::extract::State;
use axum::http::StatusCode;
use domain::{AuthId, Engine, SipUri, Trunk, TrunkDirection, TrunkId, TrunkPatch, TrunkStatus};
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
pub struct TrunkOut {
    pub(crate) trunk_id: String,
    pub(crate) name: String,
    pub(crate) status_callback: Option<String>,
    pub(crate) status_callback_method: String,
    pub(crate) status_callback_events: Vec<String>,
    pub(crate) trunk_direction: String,
    pub(crate) trunk_status: String,
    pub(crate) termination_uri: Option<String>,
    pub(crate) recording: bool,
    /// `simulated` (the built-in carrier) or `external` (a switch reports events).
    pub(crate) engine: String,
    pub(crate) created_at: String,
    pub(crate) updated_at: String,
}

impl From<Trunk> for TrunkOut {
    fn from(trunk: Trunk) -> Self {
        TrunkOut {
            trunk_id: trunk.trunk_id.to_string(),
            name: trunk.name,
            status_callback: trunk.status_callback.map(|u| u.into_string()),
            status_callback_method: trunk.status_callback_method.as_str().to_owned(),
            status_callback_events: trunk.status_callback_events.written().to_vec(),
            trunk_direction: trunk.trunk_direction.as_str().to_owned(),
            trunk_status: trunk.trunk_status.as_str().to_owned(),
            termination_uri: trunk.termination_uri.map(|u| u.as_str().to_owned()),
            recording: trunk.recording,
            engine: trunk.engine.as_str().to_owned(),
            created_at: time(trunk.created_at),
            updated_at: time(trunk.updated_at),
        }
    }
}

/// Create or update a trunk. On update, omitted fields stay and `null` clears.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrunkIn {
    /// Required on create; 1–255 characters, not only spaces; never `null`.
    #[serde(default)]
    #[schema(value_type = String, required = false, min_length = 1, max_length = 255)]
    name: Field<String>,
    /// HTTPS URL of the trunk's status callback (level 3). Alias: `webhook_url`.
    #[serde(default, alias = "webhook_url")]
    #[schema(value_type = Option<String>)]
    status_callback: Field<String>,
    /// `GET` or `POST` (default). Alias: `webhook_method`.
    #[serde(default, alias = "webhook_method")]
    #[schema(value_type = Option<String>)]
    status_callback_method: Field<String>,
    /// Event filter; empty = all events.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    status_callback_events: Field<Vec<String>>,
    /// `inbound`, `outbound` or `both` (default), any case. Alias: `trunk_type`.
    #[serde(default, alias = "trunk_type")]
    #[schema(value_type = Option<String>)]
    trunk_direction: Field<String>,
    /// `active` (default) or `inactive`; `enabled`/`disabled` accepted.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    trunk_status: Field<String>,
    /// `sip:` URI where outbound calls go.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    termination_uri: Field<String>,
    /// Record calls on this trunk (adds a `RecordStop` event).
    #[serde(default)]
    #[schema(value_type = Option<bool>)]
    recording: Field<bool>,
    /// What drives calls through this trunk: `simulated` (default) or `external` (the switch
    /// interface reports their events).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    engine: Field<String>,
}

impl TrunkIn {
    fn into_patch(self, state: &AppState, creating: bool) -> Result<TrunkPatch, ApiError> {
        let mut checker = Checker::new(state.settings.url_policy);
        let patch = TrunkPatch {
            name: checker.name("name", self.name, creating),
            status_callback: checker.url("status_callback", self.status_callback),
            status_callback_method: checker.method("status_callback_method", self.status_callback_method),
            status_callback_events: checker.events("status_callback_events", self.status_callback_events),
            trunk_direction: checker.parsed("trunk_direction", self.trunk_direction, |t: String| {
                TrunkDirection::parse(&t)
            }),
            trunk_status: checker.parsed("trunk_status", self.trunk_status, |t: String| {
                TrunkStatus::parse(&t)
            }),
            termination_uri: checker.parsed("termination_uri", self.termination_uri, |t: String| {
                SipUri::parse(&t).ok_or("must be a sip: or sips: URI")
            }),
            recording: checker.parsed("recording", self.recording, Ok::<bool, std::convert::Infallible>),
            engine: checker.parsed("engine", self.engine, |e: String| match e.as_str() {
                "sip" => Err("the sip engine is not available yet; use simulated or external"),
                other => Engine::parse(other).ok_or("must be simulated or external"),
            }),
        };
        checker.finish()?;
        Ok(patch)
    }
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_trunks, create_trunk))
        .routes(routes!(get_trunk, update_trunk, delete_trunk))
}

pub(crate) fn parse_id(trunk_id: &str) -> Result<TrunkId, ApiError> {
    TrunkId::parse(trunk_id).ok_or(ApiError::NotFound("trunk"))
}

/// Create a SIP trunk.
#[utoipa::path(post, path = "/api/v1/account/{auth_id}/trunks", tag = "trunks",
    params(("auth_id" = String, Path)), request_body = TrunkIn,
    security(("auth_id" = [], "auth_token" = []), ("basic" = [])),
    responses((status = 201, body = TrunkOut)))]
async fn create_trunk(
    State(state): State<AppState>,
    Authed(account): Authed,
    JsonBody(body): JsonBody<TrunkIn>,
) -> Result<Reply<TrunkOut>, ApiError> {
    let mut patch = body.into_patch(&state, true)?;
    let now = clock::now();
    let name = patch.name.take().unwrap_or_default();
    let mut trunk = Trunk::new(TrunkId::from_random(rand::random()), account.auth_id, name, now);
    trunk.apply(patch, now);
    state.store.insert_trunk(&trunk).await?;
    Ok(Reply::created(trunk.into()))
}

/// List SIP trunks, oldest first.
#[utoipa::path(get, path = "/api/v1/account/{auth_id}/trunks", tag = "trunks",
    params(("auth_id" = String, Path), ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size, 1–100 (default 20)"),
        ("offset" = Option<u64>, Query, format = "uint64", description = "Objects to skip, 0 to 18446744073709551615 (default 0)")),
    security(("auth_id" = [], "auth_token" = []), ("basic" = [])),
    responses((status = 200, body = ListOut<TrunkOut>)))]
async fn list_trunks(
    State(state): State<AppState>,
    Authed(account): Authed,
    Paging(page, filters): Paging,
) -> Result<Reply<ListOut<TrunkOut>>, ApiError> {
    let listing = state.store.list_trunks(&account.auth_id, page).await?;
    let path = format!("/api/v1/account/{}/trunks", account.auth_id);
    Ok(Reply::ok(ListOut::new(
        &path,
        &filters,
        page,
        listing,
        TrunkOut::from,
    )))
}

/// Retrieve a SIP trunk.
#[utoipa::path(get, path = "/api/v1/account/{auth_id}/trunks/{trunk_id}", tag = "trunks",
    params(("auth_id" = String, Path), ("trunk_id" = String, Path)),
    security(("auth_id" = [], "auth_token" = []), ("basic" = [])),
    responses((status = 200, body = TrunkOut)))]
async fn get_trunk(
    State(state): State<AppState>,
    Authed(account): Authed,
    Path((_auth_id, trunk_id)): Path<(String, String)>,
) -> Result<Reply<TrunkOut>, ApiError> {
    let trunk = state
        .store
        .trunk(&account.auth_id, &parse_id(&trunk_id)?)
        .await?
        .ok_or(ApiError::NotFound("trunk"))?;
    Ok(Reply::ok(trunk.into()))
}

/// Update a SIP trunk (partial; PUT as in the seed, POST and PATCH alike).
#[utoipa::path(method(put, post, patch), path = "/api/v1/account/{auth_id}/trunks/{trunk_id}", tag = "trunks",
    params(("auth_id" = String, Path), ("trunk_id" = String, Path)), request_body = TrunkIn,
    security(("auth_id" = [], "auth_token" = []), ("basic" = [])),
    responses((status = 200, body = TrunkOut)))]
async fn update_trunk(
    State(state): State<AppState>,
    Authed(account): Authed,
    Path((_auth_id, trunk_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<TrunkIn>,
) -> Result<Reply<TrunkOut>, ApiError> {
    let trunk = update(&state, &account.auth_id, &trunk_id, body).await?;
    Ok(Reply::ok(trunk.into()))
}

/// Validates and applies a partial update of a trunk: the one code path of the JSON API and
/// the dashboard, so both refuse the same fields with the same messages.
pub(crate) async fn update(
    state: &AppState,
    auth_id: &AuthId,
    trunk_id: &str,
    body: TrunkIn,
) -> Result<Trunk, ApiError> {
    let trunk_id = parse_id(trunk_id)?;
    let patch = body.into_patch(state, false)?;
    let mut trunk = state
        .store
        .trunk(auth_id, &trunk_id)
        .await?
        .ok_or(ApiError::NotFound("trunk"))?;
    trunk.apply(patch, clock::now());
    state.store.update_trunk(&trunk).await.map_err(not_found)?;
    Ok(trunk)
}

/// Delete a SIP trunk.
#[utoipa::path(delete, path = "/api/v1/account/{auth_id}/trunks/{trunk_id}", tag = "trunks",
    params(("auth_id" = String, Path), ("trunk_id" = String, Path)),
    security(("auth_id" = [], "auth_token" = []), ("basic" = [])),
    responses((status = 204)))]
async fn delete_trunk(
    State(state): State<AppState>,
    Authed(account): Authed,
    Path((_auth_id, trunk_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let trunk_id = parse_id(&trunk_id)?;
    state
        .store
        .delete_trunk(&account.auth_id, &trunk_id)
        .await
        .map_err(not_found)?;
    Ok(StatusCode::NO_CONTENT)
}

fn not_found(error: store::StoreError) -> ApiError {
    match error {
        store::StoreError::NotFound => ApiError::NotFound("trunk"),
        other => other.into(),
    }
}

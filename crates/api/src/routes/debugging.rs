//! The debugging aids of PRODUCT.md §2.5: redeliver an event, the callback plan (which level
//! would win for each event, before any call is made), and the "send test" button per level.

use axum::extract::State;
use axum::http::StatusCode;
use domain::resolution::{resolve, Hierarchy, LevelConfig};
use domain::{Account, AppId, AuthId, CallbackUrl, EventId, EventKind, HttpMethod, Level, Target, TrunkId};
use serde::Serialize;
use store::Redelivery;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::clock;
use crate::error::{ApiError, Reply};
use crate::extract::{query_pairs, Authed, Path};
use crate::routes::callbacks::CallbackOut;
use crate::AppState;

#[derive(Serialize, ToSchema)]
pub struct RedeliveredOut {
    event_id: String,
    /// The event's deliveries, queued again.
    objects: Vec<CallbackOut>,
}

#[derive(Serialize, ToSchema)]
pub struct PlanRowOut {
    pub(crate) event: String,
    /// `call`, `application`, `trunk`, `account` or `none`.
    pub(crate) level: String,
    pub(crate) url: Option<String>,
    pub(crate) method: String,
    pub(crate) fallback_url: Option<String>,
    /// `send`, `filtered` or `unrouted`.
    pub(crate) verdict: String,
    pub(crate) reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct PlanOut {
    objects: Vec<PlanRowOut>,
}

#[derive(Serialize, ToSchema)]
pub struct TestCallbackOut {
    pub(crate) level: String,
    pub(crate) url: String,
    pub(crate) delivered: bool,
    pub(crate) status_code: Option<u16>,
    pub(crate) latency_ms: u64,
    /// `timeout`, `connect`, `tls`, `dns`, `blocked` or `status`; `null` when delivered.
    pub(crate) error: Option<String>,
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(redeliver))
        .routes(routes!(callback_plan))
        .routes(routes!(test_account))
        .routes(routes!(test_application))
        .routes(routes!(test_trunk))
}

/// Queue a fresh delivery of an event: same `event_id`, new signatures, from the primary URL.
#[utoipa::path(post, path = "/api/v1/account/{auth_id}/callbacks/{event_id}/redeliver", tag = "callbacks",
    params(("auth_id" = String, Path), ("event_id" = String, Path)),
    security(("auth_id" = [], "auth_token" = []), ("basic" = [])),
    responses((status = 202, body = RedeliveredOut),
        (status = 409, description = "The event is still being delivered, or has no URL to go to", body = crate::error::ErrorSchema)))]
async fn redeliver(
    State(state): State<AppState>,
    Authed(account): Authed,
    Path((_auth_id, event_id)): Path<(String, String)>,
) -> Result<Reply<RedeliveredOut>, ApiError> {
    let event_id = EventId::parse(&event_id).ok_or(ApiError::NotFound("event"))?;
    let records = redeliver_event(&state, &account.auth_id, &event_id).await?;
    Ok(Reply(
        StatusCode::ACCEPTED,
        RedeliveredOut {
            event_id: event_id.to_string(),
            objects: records.into_iter().map(CallbackOut::from).collect(),
        },
    ))
}

/// Queues a fresh delivery of an event and answers its deliveries as they now stand: the one
/// code path of `POST …/redeliver` and the dashboard's Redeliver button.
pub(crate) async fn redeliver_event(
    state: &AppState,
    auth_id: &AuthId,
    event_id: &EventId,
) -> Result<Vec<store::DeliveryRecord>, ApiError> {
    let outcome = state
        .store
        .redeliver(auth_id, event_id, clock::now())
        .await
        .map_err(|e| match e {
            store::StoreError::NotFound => ApiError::NotFound("event"),
            other => other.into(),
        })?;
    match outcome {
        Redelivery::Queued(_) => {}
        Redelivery::StillPending => {
            return Err(ApiError::Conflict(
                "the event is still being delivered".to_owned(),
            ))
        }
        Redelivery::NothingToSend => {
            return Err(ApiError::Conflict(
                "the event was filtered or unrouted: there is no URL to deliver it to".to_owned(),
            ))
        }
    }
    state.notify.deliveries_pending();
    Ok(state.store.event_deliveries(auth_id, event_id).await?)
}

/// The account's level-4 settings as a resolution level.
fn account_level(account: &Account) -> LevelConfig {
    LevelConfig {
        url: account.default_callback_url.clone(),
        method: account.default_callback_method,
        fallback: None,
        filter: account.default_callback_events.clone(),
    }
}

/// Which level would receive each event of a call placed with these parameters, now.
#[utoipa::path(get, path = "/api/v1/account/{auth_id}/callback-plan", tag = "callbacks",
    params(("auth_id" = String, Path), ("app_id" = Option<String>, Query), ("trunk_id" = Option<String>, Query),
        ("status_url" = Option<String>, Query, description = "a per-call status_url"),
        ("status_method" = Option<String>, Query)),
    security(("auth_id" = [], "auth_token" = []), ("basic" = [])),
    responses((status = 200, body = PlanOut)))]
async fn callback_plan(
    State(state): State<AppState>,
    Authed(account): Authed,
    uri: axum::http::Uri,
) -> Result<Reply<PlanOut>, ApiError> {
    let pairs = query_pairs(&uri)?;
    let objects = plan(&state, &account, &pairs).await?;
    Ok(Reply::ok(PlanOut { objects }))
}

/// The callback plan for the query's `app_id`, `trunk_id`, `status_url` and `status_method`:
/// the one code path of `GET …/callback-plan` and the dashboard's plan.
pub(crate) async fn plan(
    state: &AppState,
    account: &Account,
    pairs: &[(String, String)],
) -> Result<Vec<PlanRowOut>, ApiError> {
    let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let mut hierarchy = Hierarchy {
        account: Some(account_level(account)),
        ..Hierarchy::default()
    };
    if let Some(url) = get("status_url") {
        let url = CallbackUrl::parse(url, state.settings.url_policy)
            .map_err(|e| ApiError::invalid("status_url", e.to_string()))?;
        let method = get("status_method")
            .map(|m| HttpMethod::parse(m).map_err(|e| ApiError::invalid("status_method", e.to_string())))
            .transpose()?
            .unwrap_or_default();
        hierarchy.call = Some(LevelConfig {
            url: Some(url),
            method,
            ..LevelConfig::default()
        });
    }
    if let Some(app_id) = get("app_id") {
        let app_id = AppId::parse(app_id).ok_or(ApiError::NotFound("application"))?;
        let app = state
            .store
            .application(&account.auth_id, &app_id)
            .await?
            .ok_or(ApiError::NotFound("application"))?;
        hierarchy.application = Some(LevelConfig {
            url: app.callback_url,
            method: app.callback_method,
            fallback: app.fallback_callback_url,
            filter: app.callback_events,
        });
    }
    if let Some(trunk_id) = get("trunk_id") {
        let trunk_id = TrunkId::parse(trunk_id).ok_or(ApiError::NotFound("trunk"))?;
        let trunk = state
            .store
            .trunk(&account.auth_id, &trunk_id)
            .await?
            .ok_or(ApiError::NotFound("trunk"))?;
        hierarchy.trunk = Some(LevelConfig {
            url: trunk.status_callback,
            method: trunk.status_callback_method,
            fallback: None,
            filter: trunk.status_callback_events,
        });
    }
    // A Hangup is planned as a completed call; `call.failed` filters admit failed ones only.
    let objects = EventKind::ALL
        .into_iter()
        .map(|kind| {
            let resolution = resolve(&hierarchy, kind, "completed");
            PlanRowOut {
                event: kind.as_str().to_owned(),
                level: resolution.level.map_or("none", Level::as_str).to_owned(),
                url: resolution.url.map(CallbackUrl::into_string),
                method: resolution.method.as_str().to_owned(),
                fallback_url: resolution.fallback.map(CallbackUrl::into_string),
                verdict: resolution.verdict.as_str().to_owned(),
                reason: resolution.reason,
            }
        })
        .collect();
    Ok(objects)
}

/// Which configured level a test callback goes to.
pub(crate) enum TestLevel {
    Account,
    Application(String),
    Trunk(String),
}

/// Sends a signed test `Hangup` to a level's URL now: the one code path of the three
/// `…/test-callback` endpoints and the dashboard's Send test buttons.
pub(crate) async fn test_level(
    state: &AppState,
    account: &Account,
    level: TestLevel,
) -> Result<TestCallbackOut, ApiError> {
    match level {
        TestLevel::Account => {
            let (url, method) = (
                account.default_callback_url.clone(),
                account.default_callback_method,
            );
            test_target(state, account, Level::Account, url, method).await
        }
        TestLevel::Application(app_id) => {
            let app_id = AppId::parse(&app_id).ok_or(ApiError::NotFound("application"))?;
            let app = state
                .store
                .application(&account.auth_id, &app_id)
                .await?
                .ok_or(ApiError::NotFound("application"))?;
            test_target(
                state,
                account,
                Level::Application,
                app.callback_url,
                app.callback_method,
            )
            .await
        }
        TestLevel::Trunk(trunk_id) => {
            let trunk_id = TrunkId::parse(&trunk_id).ok_or(ApiError::NotFound("trunk"))?;
            let trunk = state
                .store
                .trunk(&account.auth_id, &trunk_id)
                .await?
                .ok_or(ApiError::NotFound("trunk"))?;
            let (url, method) = (trunk.status_callback, trunk.status_callback_method);
            test_target(state, account, Level::Trunk, url, method).await
        }
    }
}

async fn test_target(
    state: &AppState,
    account: &Account,
    level: Level,
    url: Option<CallbackUrl>,
    method: HttpMethod,
) -> Result<TestCallbackOut, ApiError> {
    let url = url.ok_or_else(|| {
        ApiError::Unprocessable(format!(
            "the {} level has no callback URL to test",
            level.as_str()
        ))
    })?;
    let target = Target { url, method };
    let outcome = state.tester.send_test(account, level, &target).await?;
    Ok(TestCallbackOut {
        level: level.as_str().to_owned(),
        url: target.url.into_string(),
        delivered: outcome.delivered,
        status_code: outcome.status_code,
        latency_ms: outcome.latency_ms,
        error: outcome.error,
    })
}

/// Send a signed test `Hangup` to the account's default callback URL now.
#[utoipa::path(post, path = "/api/v1/account/{auth_id}/test-callback", tag = "callbacks",
    params(("auth_id" = String, Path)), security(("auth_id" = [], "auth_token" = []), ("basic" = [])),
    responses((status = 200, body = TestCallbackOut),
        (status = 422, description = "The level has no callback URL to test", body = crate::error::ErrorSchema)))]
async fn test_account(
    State(state): State<AppState>,
    Authed(account): Authed,
) -> Result<Reply<TestCallbackOut>, ApiError> {
    test_level(&state, &account, TestLevel::Account)
        .await
        .map(Reply::ok)
}

/// Send a signed test `Hangup` to the application's callback URL now.
#[utoipa::path(post, path = "/api/v1/account/{auth_id}/applications/{app_id}/test-callback", tag = "callbacks",
    params(("auth_id" = String, Path), ("app_id" = String, Path)),
    security(("auth_id" = [], "auth_token" = []), ("basic" = [])),
    responses((status = 200, body = TestCallbackOut),
        (status = 422, description = "The level has no callback URL to test", body = crate::error::ErrorSchema)))]
async fn test_application(
    State(state): State<AppState>,
    Authed(account): Authed,
    Path((_auth_id, app_id)): Path<(String, String)>,
) -> Result<Reply<TestCallbackOut>, ApiError> {
    test_level(&state, &account, TestLevel::Application(app_id))
        .await
        .map(Reply::ok)
}

/// Send a signed test `Hangup` to the trunk's status callback now.
#[utoipa::path(post, path = "/api/v1/account/{auth_id}/trunks/{trunk_id}/test-callback", tag = "callbacks",
    params(("auth_id" = String, Path), ("trunk_id" = String, Path)),
    security(("auth_id" = [], "auth_token" = []), ("basic" = [])),
    responses((status = 200, body = TestCallbackOut),
        (status = 422, description = "The level has no callback URL to test", body = crate::error::ErrorSchema)))]
async fn test_trunk(
    State(state): State<AppState>,
    Authed(account): Authed,
    Path((_auth_id, trunk_id)): Path<(String, String)>,
) -> Result<Reply<TestCallbackOut>, ApiError> {
    test_level(&state, &account, TestLevel::Trunk(trunk_id))
        .await
        .map(Reply::ok)
}

//! Hookline's HTTP API: the axum router, its extractors, wire types and the OpenAPI document.
//!
//! This is the only crate that knows status codes and JSON shapes. It holds an
//! `Arc<dyn Store>` and never learns which database is underneath; it reads no environment
//! and no files (the `server` crate hands it [`ApiSettings`]).

mod clock;
mod error;
mod extract;
mod field;
mod middleware;
mod ratelimit;
mod routes;
mod ui;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use domain::UrlPolicy;
use routes::SecuritySchemes;
use store::Store;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use error::{ApiError, Details};
pub use field::Field;
pub use ratelimit::{Limiters, Rate, RateLimits};
pub use routes::admin::{account_created_json, new_account, rotate_account_token, token_rotated_json};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// What the API needs from the configuration.
#[derive(Clone, Default)]
pub struct ApiSettings {
    /// Which callback URLs are accepted on write (`--dev` widens it).
    pub url_policy: UrlPolicy,
    /// The operator token; `None` switches the operator API off.
    pub admin_token: Option<String>,
    /// How long a request's body may take to arrive; `None` is no deadline.
    pub body_read_timeout: Option<std::time::Duration>,
    /// Signs the dashboard's session cookies and CSRF tokens. It must be the same on every node
    /// (the server derives it from its secret key), so a session works whichever node answers;
    /// `None` switches the dashboard off.
    pub ui_key: Option<[u8; 32]>,
}

impl std::fmt::Debug for ApiSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiSettings")
            .field("url_policy", &self.url_policy)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "REDACTED"))
            .field("body_read_timeout", &self.body_read_timeout)
            .field("ui_key", &self.ui_key.as_ref().map(|_| "REDACTED"))
            .finish()
    }
}

/// What the API tells the rest of the process after it committed a change.
pub trait Notify: Send + Sync {
    /// A call was created or hung up through the API: its engine (re)plans it.
    fn call_changed(&self, call: &domain::Call);
    /// Deliveries were queued again (redelivery): delivery workers should look now.
    fn deliveries_pending(&self);
    /// `count` events were recorded (with their deliveries): count them and wake the workers.
    fn events_recorded(&self, count: u64);
}

/// Renders `/metrics`; the API supplies the queue gauges it reads from the store.
pub trait Telemetry: Send + Sync {
    fn render(&self, queue_depth: u64, oldest_pending_age_s: f64) -> String;
}

/// The delivery engine's circuit breakers, for the dashboard's endpoint health. The state is
/// the answering process's own (each node keeps its breakers in memory).
pub trait Breakers: Send + Sync {
    /// The breaker of each host this process has sent to recently.
    fn hosts(&self) -> Vec<HostBreaker>;
}

/// One host's breaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostBreaker {
    /// `scheme://host:port`, the key the engine uses.
    pub origin: String,
    pub state: BreakerState,
    /// Endpoints (paths) of the host whose own breaker pauses them.
    pub paused_endpoints: usize,
}

/// A breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    /// Failures counted in a row, below the threshold: still sending.
    Failing(u32),
    /// Paused until this time.
    Open(chrono::DateTime<chrono::Utc>),
    /// The pause is over; one probe decides.
    HalfOpen,
}

/// `Breakers` for a process without a delivery engine (tests of the API alone).
pub struct NoBreakers;

impl Breakers for NoBreakers {
    fn hosts(&self) -> Vec<HostBreaker> {
        Vec::new()
    }
}

/// What a test callback did (the answer of `…/test-callback`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestOutcome {
    pub delivered: bool,
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
}

/// Sends synthetic signed callbacks for `…/test-callback` (the delivery engine does).
#[async_trait::async_trait]
pub trait CallbackTester: Send + Sync {
    /// # Errors
    /// When the test could not be built at all (the keys could not be read), not when the
    /// endpoint failed: a database that is away is a 503 like anywhere else.
    async fn send_test(
        &self,
        account: &domain::Account,
        level: domain::Level,
        target: &domain::Target,
    ) -> Result<TestOutcome, store::StoreError>;
}

/// A `Notify` that tells no one (tests of the API alone).
pub struct NoNotify;

impl Notify for NoNotify {
    fn call_changed(&self, _call: &domain::Call) {}
    fn deliveries_pending(&self) {}
    fn events_recorded(&self, _count: u64) {}
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub settings: Arc<ApiSettings>,
    pub notify: Arc<dyn Notify>,
    pub tester: Arc<dyn CallbackTester>,
    pub telemetry: Arc<dyn Telemetry>,
    pub breakers: Arc<dyn Breakers>,
    pub limiters: Arc<Limiters>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Hookline",
        description = "Callback configuration and delivery for a voice platform (Vobiz/Plivo wire format). \
            Paths under /api/v1/account/{auth_id} also answer under /api/v1/Account/{auth_id}, with \
            /Application/ for /applications/ and /Call/ for /calls/; trailing slashes are optional. \
            Every error answer is an ErrorSchema object. A method that a path does not list answers \
            405 (method_not_allowed) with an Allow header, and an unknown path 404 (not_found)."
    ),
    components(schemas(error::ErrorSchema)),
    modifiers(&SecuritySchemes)
)]
struct ApiDoc;

/// The routes and their OpenAPI document, built from the same registrations so they cannot
/// drift apart.
fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::health::routes())
        .merge(routes::admin::routes())
        .merge(routes::account::routes())
        .merge(routes::applications::routes())
        .merge(routes::trunks::routes())
        .merge(routes::secrets::routes())
        .merge(routes::calls::routes())
        .merge(routes::callbacks::routes())
        .merge(routes::switch::routes())
        .merge(routes::debugging::routes())
        .split_for_parts();
    // After the merge: the shared error answers go to every operation the routes brought.
    utoipa::Modify::modify(&routes::ErrorResponses, &mut doc);
    (router, doc)
}

/// The OpenAPI document of the whole API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().1
}

/// The complete HTTP application.
pub fn router(state: AppState) -> Router {
    let (routes, doc) = routes();
    let doc = Arc::new(doc);
    let body_deadline = state.settings.body_read_timeout;
    let inner = routes
        .merge(ui::routes())
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let doc = Arc::clone(&doc);
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state);
    middleware::wrap(inner, body_deadline)
}

//! `/healthz` (the process answers) and `/readyz` (and its database does). No credentials.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::Reply;
use crate::AppState;

#[derive(Serialize, ToSchema)]
pub struct HealthOut {
    status: &'static str,
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// Liveness: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = HealthOut)))]
async fn healthz() -> Reply<HealthOut> {
    Reply::ok(HealthOut { status: "ok" })
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = HealthOut), (status = 503, body = HealthOut)))]
async fn readyz(State(state): State<AppState>) -> Reply<HealthOut> {
    match state.store.ping().await {
        Ok(()) => Reply::ok(HealthOut { status: "ready" }),
        Err(error) => {
            tracing::warn!(error = %error, "database not ready");
            Reply(
                StatusCode::SERVICE_UNAVAILABLE,
                HealthOut {
                    status: "database unavailable",
                },
            )
        }
    }
}

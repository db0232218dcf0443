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
        .routes(routes!(metrics))
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

/// Prometheus metrics: events, attempts by outcome, attempt latency, queue depth, oldest
/// pending age.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (depth, oldest) = match state.store.queue_depth().await {
        Ok(gauges) => gauges,
        Err(error) => {
            tracing::warn!(%error, "reading the queue depth failed");
            (0, None)
        }
    };
    let age = oldest.map_or(0.0, |t| {
        (crate::clock::now() - t).num_milliseconds().max(0) as f64 / 1000.0
    });
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        state.telemetry.render(depth, age),
    )
        .into_response()
}

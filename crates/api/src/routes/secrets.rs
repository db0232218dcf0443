//! Signing secrets of the body-covering Standard Webhooks signature: list, create (the value is
//! shown once), delete. An account always keeps at least one.

use axum::extract::State;
use axum::http::StatusCode;
use domain::SecretId;
use serde::Serialize;
use signing::standard::SigningSecret;
use store::{NewSecret, SecretDeletion, SecretInfo};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::clock;
use crate::error::{ApiError, Reply};
use crate::extract::{Authed, Path};
use crate::routes::time;
use crate::AppState;

#[derive(Serialize, ToSchema)]
pub struct SecretOut {
    pub secret_id: String,
    pub created_at: String,
    /// `whsec_…`; only in the answer that creates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl SecretOut {
    pub fn created(secret: NewSecret) -> SecretOut {
        SecretOut {
            secret: Some(SigningSecret::from_bytes(secret.bytes).expose()),
            ..SecretOut::from(secret.info)
        }
    }
}

impl From<SecretInfo> for SecretOut {
    fn from(info: SecretInfo) -> Self {
        SecretOut {
            secret_id: info.secret_id.to_string(),
            created_at: time(info.created_at),
            secret: None,
        }
    }
}

/// No fields: the body is empty or `{}`.
#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct NoFieldsIn {}

#[derive(Serialize, ToSchema)]
pub struct SecretsOut {
    objects: Vec<SecretOut>,
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_secrets, create_secret))
        .routes(routes!(delete_secret))
}

/// List the active signing secrets (without their values).
#[utoipa::path(get, path = "/api/v1/account/{auth_id}/signing-secrets", tag = "signing secrets",
    params(("auth_id" = String, Path)), security(("auth_id" = [], "auth_token" = []), ("basic" = [])),
    responses((status = 200, body = SecretsOut)))]
async fn list_secrets(
    State(state): State<AppState>,
    Authed(account): Authed,
) -> Result<Reply<SecretsOut>, ApiError> {
    let secrets = state.store.list_signing_secrets(&account.auth_id).await?;
    Ok(Reply::ok(SecretsOut {
        objects: secrets.into_iter().map(SecretOut::from).collect(),
    }))
}

/// Create a signing secret; every active secret signs each callback (rotation without gaps).
#[utoipa::path(post, path = "/api/v1/account/{auth_id}/signing-secrets", tag = "signing secrets",
    params(("auth_id" = String, Path)), request_body = Option<NoFieldsIn>, security(("auth_id" = [], "auth_token" = []), ("basic" = [])),
    responses((status = 201, body = SecretOut)))]
async fn create_secret(
    State(state): State<AppState>,
    Authed(account): Authed,
    _no_fields: crate::extract::NoFields,
) -> Result<Reply<SecretOut>, ApiError> {
    let secret = state
        .store
        .create_signing_secret(&account.auth_id, clock::now())
        .await?;
    Ok(Reply::created(SecretOut::created(secret)))
}

/// Delete a signing secret. The last one cannot be deleted (409): callbacks are always signed.
#[utoipa::path(delete, path = "/api/v1/account/{auth_id}/signing-secrets/{secret_id}", tag = "signing secrets",
    params(("auth_id" = String, Path), ("secret_id" = String, Path)),
    security(("auth_id" = [], "auth_token" = []), ("basic" = [])),
    responses((status = 204), (status = 409, description = "The account's last signing secret", body = crate::error::ErrorSchema)))]
async fn delete_secret(
    State(state): State<AppState>,
    Authed(account): Authed,
    Path((_auth_id, secret_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let secret_id = SecretId::parse(&secret_id).ok_or(ApiError::NotFound("signing secret"))?;
    match state
        .store
        .delete_signing_secret(&account.auth_id, &secret_id)
        .await?
    {
        SecretDeletion::Deleted => Ok(StatusCode::NO_CONTENT),
        SecretDeletion::NotFound => Err(ApiError::NotFound("signing secret")),
        SecretDeletion::LastSecret => Err(ApiError::Conflict(
            "an account keeps at least one signing secret: create the new one before deleting the old".into(),
        )),
    }
}

//! The operator surface (`Authorization: Bearer <admin_token>`): create accounts and rotate
//! their auth tokens. The JSON it answers is also what `hookline accounts …` prints.

use axum::extract::State;
use domain::AuthId;
use domain::UrlPolicy;
use serde::{Deserialize, Serialize};
use store::{CreatedAccount, Store};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::clock;
use crate::error::{ApiError, Reply};
use crate::extract::{JsonBody, Operator, Path};
use crate::field::{Checker, Field};
use crate::routes::account::AccountOut;
use crate::routes::secrets::SecretOut;
use crate::AppState;

/// A new account, with the only copy of its auth token and first signing secret.
#[derive(Serialize, ToSchema)]
pub struct AccountCreatedOut {
    #[serde(flatten)]
    pub account: AccountOut,
    /// Shown once: store it now.
    pub auth_token: String,
    /// Shown once: the account's first Standard Webhooks signing secret.
    pub signing_secret: SecretOut,
}

impl From<CreatedAccount> for AccountCreatedOut {
    fn from(created: CreatedAccount) -> Self {
        AccountCreatedOut {
            account: created.account.into(),
            auth_token: created.auth_token,
            signing_secret: SecretOut::created(created.signing_secret),
        }
    }
}

/// The creation answer as JSON (for the CLI, which prints it without a server).
pub fn account_created_json(created: CreatedAccount) -> serde_json::Value {
    serde_json::to_value(AccountCreatedOut::from(created)).expect("wire types always serialise")
}

#[derive(Serialize, ToSchema)]
pub struct TokenRotatedOut {
    pub auth_id: String,
    /// Shown once; the previous token stopped working.
    pub auth_token: String,
}

/// The rotation answer as JSON (for the CLI).
pub fn token_rotated_json(auth_id: &AuthId, auth_token: String) -> serde_json::Value {
    serde_json::to_value(TokenRotatedOut {
        auth_id: auth_id.to_string(),
        auth_token,
    })
    .expect("wire types always serialise")
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountCreateIn {
    /// 1–255 characters, not only spaces.
    #[serde(default)]
    #[schema(value_type = String, required = true, min_length = 1, max_length = 255)]
    name: Field<String>,
    /// Makes the new account a sub-account (`SA_…`) of this main account.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    parent_auth_id: Field<String>,
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_account))
        .routes(routes!(rotate_token))
}

/// Create an account (operator).
#[utoipa::path(post, path = "/api/v1/admin/accounts", tag = "operator", request_body = AccountCreateIn,
    security(("operator" = [])),
    responses((status = 201, body = AccountCreatedOut)))]
async fn create_account(
    State(state): State<AppState>,
    _operator: Operator,
    JsonBody(body): JsonBody<AccountCreateIn>,
) -> Result<Reply<AccountCreatedOut>, ApiError> {
    let created = new_account(state.store.as_ref(), body.name, body.parent_auth_id).await?;
    Ok(Reply::created(created.into()))
}

/// Checks a create-account request and creates the account: shared by the operator API and
/// `hookline accounts create`, so both apply the same rules.
///
/// # Errors
/// `Invalid` naming `name` or `parent_auth_id`; store failures.
pub async fn new_account(
    store: &dyn Store,
    name: Field<String>,
    parent_auth_id: Field<String>,
) -> Result<CreatedAccount, ApiError> {
    let mut checker = Checker::new(UrlPolicy::default());
    let name = checker.name("name", name, true);
    let parent = match parent_auth_id {
        Field::Absent | Field::Null => None,
        Field::Value(text) => {
            let parsed = AuthId::parse(&text);
            if parsed.is_none() {
                checker.add(
                    "parent_auth_id",
                    "is not an auth id (MA_ followed by 8 characters)",
                );
            }
            parsed
        }
    };
    if let Some(parent) = &parent {
        match store.account(parent).await? {
            None => checker.add("parent_auth_id", "no such account"),
            Some(account) if account.parent_auth_id.is_some() => {
                checker.add("parent_auth_id", "must be a main account (MA_…)")
            }
            Some(_) => {}
        }
    }
    checker.finish()?;
    let name = name.ok_or_else(|| ApiError::invalid("name", "is required"))?;
    Ok(store.create_account(&name, parent.as_ref(), clock::now()).await?)
}

/// Rotate an account's auth token (operator). The old token stops working at once.
#[utoipa::path(post, path = "/api/v1/admin/accounts/{auth_id}/rotate-token", tag = "operator",
    params(("auth_id" = String, Path)), security(("operator" = [])),
    responses((status = 200, body = TokenRotatedOut)))]
async fn rotate_token(
    State(state): State<AppState>,
    _operator: Operator,
    Path(auth_id): Path<String>,
) -> Result<Reply<TokenRotatedOut>, ApiError> {
    let auth_id = AuthId::parse(&auth_id).ok_or(ApiError::NotFound("account"))?;
    let auth_token = rotate_account_token(state.store.as_ref(), &auth_id).await?;
    Ok(Reply::ok(TokenRotatedOut {
        auth_id: auth_id.to_string(),
        auth_token,
    }))
}

/// Replaces an account's auth token: shared by the operator API and `hookline accounts
/// rotate-token`.
///
/// # Errors
/// `NotFound` for an unknown account; store failures.
pub async fn rotate_account_token(store: &dyn Store, auth_id: &AuthId) -> Result<String, ApiError> {
    store
        .rotate_token(auth_id, clock::now())
        .await
        .map_err(|e| match e {
            store::StoreError::NotFound => ApiError::NotFound("account"),
            other => other.into(),
        })
}

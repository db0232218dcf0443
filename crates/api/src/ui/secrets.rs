//! The Signing secrets page: the account's active secrets (never their values), Create (the
//! new value is shown once, with a copy button) and Delete after a confirmation page.
//!
//! The same store calls as `…/signing-secrets`: the last secret cannot be deleted (the API's
//! 409 message is shown).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use domain::SecretId;
use maud::{html, Markup};
use store::SecretDeletion;

use crate::clock;
use crate::routes::secrets::SecretOut;
use crate::ui::page::{answer, shell, time, PageError, Section};
use crate::ui::session::Posted;
use crate::ui::Session;
use crate::AppState;

const LAST_SECRET: &str =
    "an account keeps at least one signing secret: create the new one before deleting the old";

#[derive(serde::Deserialize)]
pub struct Notice {
    deleted: Option<String>,
}

/// `GET /ui/secrets`.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(notice): Query<Notice>,
) -> Result<Response, PageError> {
    let banner = notice.deleted.map(|id| {
        html! { p.notice.good role="status" { "Deleted signing secret " code { (id) } "." } }
    });
    render(&state, &session, banner.unwrap_or_default(), StatusCode::OK).await
}

/// `POST /ui/secrets`: creates a secret and shows its value this once.
pub async fn create(State(state): State<AppState>, posted: Posted) -> Result<Response, PageError> {
    let session = posted.session;
    let secret = state
        .store
        .create_signing_secret(&session.account.auth_id, clock::now())
        .await?;
    let created = SecretOut::created(secret);
    let value = created.secret.clone().unwrap_or_default();
    let banner = html! {
        div.notice.good role="status" id="new-secret" {
            p { strong { "Created signing secret " code { (created.secret_id) } "." }
                " Copy it now: it is shown only this once. Every active secret signs each callback (" code { "webhook-signature" } ")." }
            div.secret {
                label for="secret-value" { "Secret" }
                input type="text" id="secret-value" readonly value=(value) spellcheck="false";
                button type="button" data-copy="secret-value" hidden { "Copy" }
            }
        }
    };
    render(&state, &session, banner, StatusCode::CREATED).await
}

/// `GET /ui/secrets/{secret_id}/delete`: asks before deleting.
pub async fn confirm_delete(
    State(state): State<AppState>,
    session: Session,
    Path(secret_id): Path<String>,
) -> Result<Response, PageError> {
    let id = SecretId::parse(&secret_id).ok_or_else(PageError::not_found)?;
    let secrets = state.store.list_signing_secrets(&session.account.auth_id).await?;
    let info = secrets
        .into_iter()
        .find(|s| s.secret_id == id)
        .ok_or_else(PageError::not_found)?;
    let info = SecretOut::from(info);
    let body = html! {
        p { "Delete signing secret " code { (info.secret_id) } ", created " (time(&info.created_at)) "?" }
        p { "Callbacks are no longer signed with it from the next attempt on: receivers that only know this secret will reject them." }
        form.actions method="post" action={"/ui/secrets/" (info.secret_id) "/delete"} {
            input type="hidden" name="csrf" value=(session.csrf);
            button.danger type="submit" { "Delete this secret" }
            a href="/ui/secrets" { "Cancel" }
        }
    };
    Ok(answer(
        StatusCode::OK,
        shell("Delete a signing secret", Some(&session), Section::Secrets, body),
    ))
}

/// `POST /ui/secrets/{secret_id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    Path(secret_id): Path<String>,
    posted: Posted,
) -> Result<Response, PageError> {
    let session = posted.session;
    let id = SecretId::parse(&secret_id).ok_or_else(PageError::not_found)?;
    match state
        .store
        .delete_signing_secret(&session.account.auth_id, &id)
        .await?
    {
        SecretDeletion::Deleted => Ok(Redirect::to(&format!("/ui/secrets?deleted={id}")).into_response()),
        SecretDeletion::NotFound => Err(PageError::not_found()),
        SecretDeletion::LastSecret => {
            let banner = html! { p.notice.bad role="alert" { "Not deleted: " (LAST_SECRET) "." } };
            render(&state, &session, banner, StatusCode::CONFLICT).await
        }
    }
}

async fn render(
    state: &AppState,
    session: &Session,
    banner: Markup,
    status: StatusCode,
) -> Result<Response, PageError> {
    let secrets = state.store.list_signing_secrets(&session.account.auth_id).await?;
    let body = html! {
        (banner)
        p { "Signing secrets key the Standard Webhooks signature over each callback's body. "
            "To rotate: create a new one, give it to your receiver, then delete the old one." }
        table {
            caption.visually-hidden { "Active signing secrets" }
            thead { tr { th scope="col" { "Secret id" } th scope="col" { "Created" } th scope="col" { span.visually-hidden { "Action" } } } }
            tbody {
                @for info in secrets.into_iter().map(SecretOut::from) {
                    tr {
                        td { code { (info.secret_id) } }
                        td { (time(&info.created_at)) }
                        td { a href={"/ui/secrets/" (info.secret_id) "/delete"} aria-label={"Delete " (info.secret_id)} { "Delete…" } }
                    }
                }
            }
        }
        form method="post" action="/ui/secrets" {
            input type="hidden" name="csrf" value=(session.csrf);
            button #create-secret type="submit" { "Create a signing secret" }
        }
    };
    Ok(answer(
        status,
        shell("Signing secrets", Some(session), Section::Secrets, body),
    ))
}

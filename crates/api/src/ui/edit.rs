//! The edit pages of an application (level 2) and a SIP trunk (level 3): every field of the
//! API's update, with the API's refusal shown next to each field (see `config.rs` for how a
//! form becomes the API's body).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde_json::Value;

use crate::error::{ApiError, Details};
use crate::extract::from_value;
use crate::routes::applications::ApplicationOut;
use crate::routes::trunks::TrunkOut;
use crate::routes::{applications, trunks};
use crate::ui::config::{
    body, error_summary, form_values, pairs, test_button, value, Saved, Values, FILTER_HINT, METHODS,
};
use crate::ui::page::{answer, select_field, shell, text_field, PageError, Section};
use crate::ui::session::Posted;
use crate::ui::Session;
use crate::AppState;

const APP_FIELDS: [&str; 9] = [
    "name",
    "callback_url",
    "callback_method",
    "fallback_callback_url",
    "callback_events",
    "answer_url",
    "answer_method",
    "hangup_url",
    "hangup_method",
];

/// `GET /ui/config/applications/{app_id}`.
pub async fn application_page(
    State(state): State<AppState>,
    session: Session,
    Path(app_id): Path<String>,
    Query(saved): Query<Saved>,
) -> Result<Response, PageError> {
    let id = applications::parse_id(&app_id).map_err(|_| PageError::not_found())?;
    let app = state
        .store
        .application(&session.account.auth_id, &id)
        .await?
        .ok_or_else(PageError::not_found)?;
    let out = ApplicationOut::from(app);
    let values = pairs(&[
        ("name", out.name.clone()),
        ("callback_url", out.callback_url.clone().unwrap_or_default()),
        ("callback_method", out.callback_method.clone()),
        (
            "fallback_callback_url",
            out.fallback_callback_url.clone().unwrap_or_default(),
        ),
        ("callback_events", out.callback_events.join(", ")),
        ("answer_url", out.answer_url.clone().unwrap_or_default()),
        ("answer_method", out.answer_method.clone()),
        ("hangup_url", out.hangup_url.clone().unwrap_or_default()),
        ("hangup_method", out.hangup_method.clone()),
    ]);
    let notice = saved.notice();
    Ok(application_form(
        &session,
        &out.app_id,
        &values,
        &Details::new(),
        notice,
        StatusCode::OK,
    ))
}

/// `POST /ui/config/applications/{app_id}`.
pub async fn save_application(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    posted: Posted,
) -> Result<Response, PageError> {
    let Posted { session, form } = posted;
    let json = body(
        &form,
        &["name", "callback_method", "answer_method", "hangup_method"],
        &[
            "callback_url",
            "fallback_callback_url",
            "answer_url",
            "hangup_url",
        ],
        &["callback_events"],
    );
    let result = match from_value::<applications::ApplicationIn>(json) {
        Ok(input) => applications::update(&state, &session.account.auth_id, &app_id, input).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(app) => {
            Ok(Redirect::to(&format!("/ui/config/applications/{}?saved=1", app.app_id)).into_response())
        }
        Err(ApiError::Invalid(details)) => {
            let values = form_values(&form, &APP_FIELDS);
            Ok(application_form(
                &session,
                &app_id,
                &values,
                &details,
                None,
                StatusCode::BAD_REQUEST,
            ))
        }
        Err(other) => Err(other.into()),
    }
}

fn application_form(
    session: &Session,
    app_id: &str,
    values: &Values,
    errors: &Details,
    notice: Option<Markup>,
    status: StatusCode,
) -> Response {
    let field = |name: &str, label: &str, hint: Option<&str>| {
        text_field(name, label, value(values, name), hint, errors)
    };
    let method = |name: &str| select_field(name, "Method", &METHODS, value(values, name), errors);
    let body = html! {
        (notice.unwrap_or_default())
        p { a href="/ui/config" { "← Configuration" } " · application " code { (app_id) } }
        (error_summary("The application", errors))
        form.card method="post" action={"/ui/config/applications/" (app_id)} novalidate {
            input type="hidden" name="csrf" value=(session.csrf);
            (field("name", "Name", None))
            fieldset { legend { "Status callback" }
                (field("callback_url", "Callback URL", Some("Empty = no application callback (the trunk or account level applies).")))
                (method("callback_method"))
                (field("fallback_callback_url", "Fallback callback URL", Some("Receives an event after the callback URL exhausted its retries.")))
                (field("callback_events", "Events", Some(FILTER_HINT)))
            }
            fieldset { legend { "Direct channels (unfiltered)" }
                (field("answer_url", "Answer URL", None))
                (method("answer_method"))
                (field("hangup_url", "Hangup URL", None))
                (method("hangup_method"))
            }
            div.actions { button type="submit" { "Save the application" } }
        }
        (test_button(session, "application", app_id, "Send test to this application"))
    };
    answer(
        status,
        shell("Edit application", Some(session), Section::Config, body),
    )
}

const TRUNK_FIELDS: [&str; 9] = [
    "name",
    "status_callback",
    "status_callback_method",
    "status_callback_events",
    "trunk_direction",
    "trunk_status",
    "termination_uri",
    "recording",
    "engine",
];

/// `GET /ui/config/trunks/{trunk_id}`.
pub async fn trunk_page(
    State(state): State<AppState>,
    session: Session,
    Path(trunk_id): Path<String>,
    Query(saved): Query<Saved>,
) -> Result<Response, PageError> {
    let id = trunks::parse_id(&trunk_id).map_err(|_| PageError::not_found())?;
    let trunk = state
        .store
        .trunk(&session.account.auth_id, &id)
        .await?
        .ok_or_else(PageError::not_found)?;
    let out = TrunkOut::from(trunk);
    let values = pairs(&[
        ("name", out.name.clone()),
        ("status_callback", out.status_callback.clone().unwrap_or_default()),
        ("status_callback_method", out.status_callback_method.clone()),
        ("status_callback_events", out.status_callback_events.join(", ")),
        ("trunk_direction", out.trunk_direction.clone()),
        ("trunk_status", out.trunk_status.clone()),
        ("termination_uri", out.termination_uri.clone().unwrap_or_default()),
        (
            "recording",
            if out.recording {
                "on".to_owned()
            } else {
                String::new()
            },
        ),
        ("engine", out.engine.clone()),
    ]);
    let notice = saved.notice();
    Ok(trunk_form(
        &session,
        &out.trunk_id,
        &values,
        &Details::new(),
        notice,
        StatusCode::OK,
    ))
}

/// `POST /ui/config/trunks/{trunk_id}`.
pub async fn save_trunk(
    State(state): State<AppState>,
    Path(trunk_id): Path<String>,
    posted: Posted,
) -> Result<Response, PageError> {
    let Posted { session, form } = posted;
    let mut json = body(
        &form,
        &[
            "name",
            "status_callback_method",
            "trunk_direction",
            "trunk_status",
            "engine",
        ],
        &["status_callback", "termination_uri"],
        &["status_callback_events"],
    );
    json["recording"] = Value::Bool(form.get("recording").is_some());
    let result = match from_value::<trunks::TrunkIn>(json) {
        Ok(input) => trunks::update(&state, &session.account.auth_id, &trunk_id, input).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(trunk) => {
            Ok(Redirect::to(&format!("/ui/config/trunks/{}?saved=1", trunk.trunk_id)).into_response())
        }
        Err(ApiError::Invalid(details)) => {
            let values = form_values(&form, &TRUNK_FIELDS);
            Ok(trunk_form(
                &session,
                &trunk_id,
                &values,
                &details,
                None,
                StatusCode::BAD_REQUEST,
            ))
        }
        Err(other) => Err(other.into()),
    }
}

fn trunk_form(
    session: &Session,
    trunk_id: &str,
    values: &Values,
    errors: &Details,
    notice: Option<Markup>,
    status: StatusCode,
) -> Response {
    let field = |name: &str, label: &str, hint: Option<&str>| {
        text_field(name, label, value(values, name), hint, errors)
    };
    let choice = |name: &str, label: &str, choices: &[&str]| {
        select_field(name, label, choices, value(values, name), errors)
    };
    let body = html! {
        (notice.unwrap_or_default())
        p { a href="/ui/config" { "← Configuration" } " · trunk " code { (trunk_id) } }
        (error_summary("The trunk", errors))
        form.card method="post" action={"/ui/config/trunks/" (trunk_id)} novalidate {
            input type="hidden" name="csrf" value=(session.csrf);
            (field("name", "Name", None))
            fieldset { legend { "Status callback" }
                (field("status_callback", "Status callback URL", Some("Empty = no trunk callback (the account level applies).")))
                (choice("status_callback_method", "Method", &METHODS))
                (field("status_callback_events", "Events", Some(FILTER_HINT)))
            }
            fieldset { legend { "Trunk" }
                (choice("trunk_direction", "Direction", &["both", "outbound", "inbound"]))
                (choice("trunk_status", "Status", &["active", "inactive"]))
                (field("termination_uri", "Termination URI", Some("sip: URI where outbound calls go; empty = none.")))
                (choice("engine", "Engine", &["simulated", "external"]))
                div.field.check {
                    input type="checkbox" id="f-recording" name="recording" checked[!value(values, "recording").is_empty()];
                    label for="f-recording" { "Record calls on this trunk" }
                }
            }
            div.actions { button type="submit" { "Save the trunk" } }
        }
        (test_button(session, "trunk", trunk_id, "Send test to this trunk"))
    };
    answer(status, shell("Edit trunk", Some(session), Section::Config, body))
}

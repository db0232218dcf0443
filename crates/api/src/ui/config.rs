//! The Configuration pages: the account default (level 4) editable, the applications (level 2)
//! and SIP trunks (level 3) with their callback URLs, methods and filters (their edit pages are
//! `edit.rs`); the callback plan ("where would each event go?"); a Send test button per level.
//!
//! A form becomes the JSON body the API takes (an empty optional field is `null`, a filter is
//! split at commas) and goes through the same `update` functions as `POST/PUT …`, so a refused
//! field shows the API's `details` message next to it. The plan and the tests are
//! `routes::debugging::{plan, test_level}`.

use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde_json::{Map, Value};
use store::Page;

use crate::error::{ApiError, Details};
use crate::extract::{from_value, query_pairs};
use crate::routes::account;
use crate::routes::account::AccountOut;
use crate::routes::applications::ApplicationOut;
use crate::routes::debugging::{plan, test_level, TestCallbackOut, TestLevel};
use crate::routes::trunks::TrunkOut;
use crate::ui::page::{
    answer, badge, non_empty, select_field, shell, status_for, text_field, PageError, Section,
};
use crate::ui::session::Posted;
use crate::ui::{FormData, Session};
use crate::AppState;

/// Applications and trunks listed at most (the JSON API pages through more).
const LISTED: u32 = 100;
pub(super) const METHODS: [&str; 2] = ["POST", "GET"];
pub(super) const FILTER_HINT: &str = "Comma-separated events: CallInitiated, Ring, StartApp, Hangup, RecordStop \
    (or call.initiated, call.ringing, call.answered, call.completed, call.failed, recording.completed). Empty = all events.";

/// A form's values by field name, as shown in its inputs.
pub(super) type Values = Vec<(String, String)>;

pub(super) fn value<'a>(values: &'a Values, name: &str) -> &'a str {
    values
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

pub(super) fn pairs(fields: &[(&str, String)]) -> Values {
    fields.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

#[derive(serde::Deserialize)]
pub struct Saved {
    pub(super) saved: Option<String>,
}

impl Saved {
    /// The edit pages' confirmation after a save redirected back to them.
    pub(super) fn notice(&self) -> Option<Markup> {
        self.saved
            .as_ref()
            .map(|_| html! { p.notice.good role="status" id="saved" { "Saved." } })
    }
}

/// `GET /ui/config`.
pub async fn overview(
    State(state): State<AppState>,
    session: Session,
    Query(saved): Query<Saved>,
) -> Result<Response, PageError> {
    let notice = saved
        .saved
        .map(|_| html! { p.notice.good role="status" { "Saved the account's default callback." } });
    render_overview(&state, &session, None, notice.unwrap_or_default(), StatusCode::OK).await
}

/// The form's text fields as a JSON object for the API: each named field, `""` as `null`
/// where the field is optional, filters split into arrays.
pub(super) fn body(form: &FormData, text: &[&str], optional: &[&str], filters: &[&str]) -> Value {
    let mut object = Map::new();
    for name in text {
        object.insert((*name).to_owned(), Value::String(form.text(name).to_owned()));
    }
    for name in optional {
        let given = form.text(name).trim();
        let value = if given.is_empty() {
            Value::Null
        } else {
            Value::String(given.to_owned())
        };
        object.insert((*name).to_owned(), value);
    }
    for name in filters {
        let events = form
            .text(name)
            .split([',', ' ', '\n', '\t'])
            .filter(|e| !e.is_empty())
            .map(|e| Value::String(e.to_owned()))
            .collect();
        object.insert((*name).to_owned(), Value::Array(events));
    }
    Value::Object(object)
}

pub(super) fn form_values(form: &FormData, names: &[&str]) -> Values {
    names
        .iter()
        .map(|name| ((*name).to_owned(), form.text(name).to_owned()))
        .collect()
}

const ACCOUNT_FIELDS: [&str; 5] = [
    "name",
    "timezone",
    "default_callback_url",
    "default_callback_method",
    "default_callback_events",
];

/// `POST /ui/config/account`.
pub async fn save_account(State(state): State<AppState>, posted: Posted) -> Result<Response, PageError> {
    let Posted { mut session, form } = posted;
    let json = body(
        &form,
        &["name", "default_callback_method"],
        &["timezone", "default_callback_url"],
        &["default_callback_events"],
    );
    let result = match from_value::<account::AccountIn>(json) {
        Ok(input) => account::update(&state, &mut session.account, input).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => Ok(Redirect::to("/ui/config?saved=account").into_response()),
        Err(ApiError::Invalid(details)) => {
            let refused = (form_values(&form, &ACCOUNT_FIELDS), details);
            render_overview(
                &state,
                &session,
                Some(refused),
                Markup::default(),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(other) => Err(other.into()),
    }
}

async fn render_overview(
    state: &AppState,
    session: &Session,
    refused_account: Option<(Values, Details)>,
    notice: Markup,
    status: StatusCode,
) -> Result<Response, PageError> {
    let auth_id = &session.account.auth_id;
    let page = Page {
        limit: LISTED,
        offset: 0,
    };
    let apps = state.store.list_applications(auth_id, page).await?;
    let trunks = state.store.list_trunks(auth_id, page).await?;
    let (values, errors) = refused_account.unwrap_or_else(|| {
        let out = AccountOut::from(session.account.clone());
        let values = pairs(&[
            ("name", out.name),
            ("timezone", out.timezone),
            (
                "default_callback_url",
                out.default_callback_url.unwrap_or_default(),
            ),
            ("default_callback_method", out.default_callback_method),
            ("default_callback_events", out.default_callback_events.join(", ")),
        ]);
        (values, Details::new())
    });
    let body = html! {
        (notice)
        section aria-labelledby="account" {
            h2 id="account" { "Account default (level 4)" }
            p.hint { "Receives every event that no call, application or trunk URL claims." }
            (error_summary("The account", &errors))
            form.card method="post" action="/ui/config/account" novalidate {
                input type="hidden" name="csrf" value=(session.csrf);
                (text_field("name", "Account name", value(&values, "name"), None, &errors))
                (text_field("timezone", "Time zone (IANA)", value(&values, "timezone"), Some("Empty restores UTC."), &errors))
                (text_field("default_callback_url", "Default callback URL", value(&values, "default_callback_url"), Some("Empty = no account default."), &errors))
                (select_field("default_callback_method", "Method", &METHODS, value(&values, "default_callback_method"), &errors))
                (text_field("default_callback_events", "Events", value(&values, "default_callback_events"), Some(FILTER_HINT), &errors))
                div.actions { button type="submit" { "Save the account default" } }
            }
            (test_button(session, "account", "", "Send test to the account default"))
        }
        section aria-labelledby="applications" {
            h2 id="applications" { "Applications (level 2)" }
            @if apps.items.is_empty() { p.empty { "No applications: create them with " code { "POST /api/v1/account/" (auth_id) "/applications/" } "." } }
            @else {
                table {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Callback URL" } th scope="col" { "Fallback" }
                        th scope="col" { "Events" } th scope="col" { span.visually-hidden { "Actions" } } } }
                    tbody {
                        @for app in apps.items.into_iter().map(ApplicationOut::from) {
                            tr data-app-id=(app.app_id) {
                                td { a href={"/ui/config/applications/" (app.app_id)} { (app.name) } }
                                td { (target(app.callback_url.as_deref(), &app.callback_method)) }
                                td { (app.fallback_callback_url.as_deref().unwrap_or("—")) }
                                td { (events(&app.callback_events)) }
                                td.actions {
                                    a href={"/ui/config/applications/" (app.app_id)} aria-label={"Edit " (app.name)} { "Edit" }
                                    (test_button(session, "application", &app.app_id, &format!("Send test to {}", app.name)))
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="trunks" {
            h2 id="trunks" { "SIP trunks (level 3)" }
            @if trunks.items.is_empty() { p.empty { "No trunks." } }
            @else {
                table {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Status callback" } th scope="col" { "Events" }
                        th scope="col" { "Direction / status" } th scope="col" { span.visually-hidden { "Actions" } } } }
                    tbody {
                        @for trunk in trunks.items.into_iter().map(TrunkOut::from) {
                            tr data-trunk-id=(trunk.trunk_id) {
                                td { a href={"/ui/config/trunks/" (trunk.trunk_id)} { (trunk.name) } }
                                td { (target(trunk.status_callback.as_deref(), &trunk.status_callback_method)) }
                                td { (events(&trunk.status_callback_events)) }
                                td { (trunk.trunk_direction) " / " (trunk.trunk_status) }
                                td.actions {
                                    a href={"/ui/config/trunks/" (trunk.trunk_id)} aria-label={"Edit " (trunk.name)} { "Edit" }
                                    (test_button(session, "trunk", &trunk.trunk_id, &format!("Send test to {}", trunk.name)))
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="plan" {
            h2 id="plan" { "Callback plan" }
            p { a href="/ui/config/plan" { "Where would each event go?" } " — the resolution of a call placed now, for a chosen application, trunk and status URL." }
        }
    };
    Ok(answer(
        status,
        shell("Configuration", Some(session), Section::Config, body),
    ))
}

fn target(url: Option<&str>, method: &str) -> Markup {
    html! { @if let Some(url) = url { (method) " " code { (url) } } @else { "—" } }
}

fn events(filter: &[String]) -> Markup {
    html! { @if filter.is_empty() { "all" } @else { (filter.join(", ")) } }
}

/// A Send test button: its own small form, so it works inside tables and without script.
pub(super) fn test_button(session: &Session, level: &str, id: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action="/ui/config/test" {
            input type="hidden" name="csrf" value=(session.csrf);
            input type="hidden" name="level" value=(level);
            input type="hidden" name="id" value=(id);
            button.small.secondary-light type="submit" data-test=(level) { (label) }
        }
    }
}

/// The summary above a refused form: every field and why, each linking to its input.
pub(super) fn error_summary(what: &str, errors: &Details) -> Markup {
    html! {
        @if !errors.is_empty() {
            div.notice.bad role="alert" id="form-errors" {
                p { strong { (what) " was not saved." } " The API refused these fields:" }
                ul {
                    @for (field, why) in errors {
                        li { a href={"#f-" (field)} { (field) } ": " (why) }
                    }
                }
            }
        }
    }
}

/// `POST /ui/config/test`: sends a signed test `Hangup` to one level and shows the outcome.
pub async fn send_test(State(state): State<AppState>, posted: Posted) -> Result<Response, PageError> {
    let Posted { session, form } = posted;
    let id = form.text("id").to_owned();
    let level = match form.text("level") {
        "account" => TestLevel::Account,
        "application" => TestLevel::Application(id),
        "trunk" => TestLevel::Trunk(id),
        _ => return Err(PageError::new(StatusCode::BAD_REQUEST, "Unknown level.")),
    };
    let (notice, status) = match test_level(&state, &session.account, level).await {
        Ok(outcome) => (test_outcome(&outcome), StatusCode::OK),
        Err(ApiError::Unprocessable(why)) => (
            html! { p.notice.bad role="alert" id="test-result" { "No test sent: " (why) "." } },
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(other) => return Err(other.into()),
    };
    render_overview(&state, &session, None, notice, status).await
}

fn test_outcome(outcome: &TestCallbackOut) -> Markup {
    let class = if outcome.delivered { "good" } else { "bad" };
    html! {
        div class={"notice " (class)} role="status" id="test-result" {
            p { strong { "Test callback to the " (outcome.level) " level" } " — " code { (outcome.url) } }
            dl.record {
                dt { "Delivered" } dd { @if outcome.delivered { span.ok { "yes" } } @else { span.bad { "no" } } }
                dt { "Status" } dd { @if let Some(code) = outcome.status_code { "HTTP " (code) } @else { "no answer" } }
                dt { "Latency" } dd { (outcome.latency_ms) " ms" }
                dt { "Error" } dd { (outcome.error.as_deref().unwrap_or("none")) }
            }
        }
    }
}

/// `GET /ui/config/plan?app_id=&trunk_id=&status_url=&status_method=`.
pub async fn plan_page(
    State(state): State<AppState>,
    session: Session,
    uri: Uri,
) -> Result<Response, PageError> {
    let given = non_empty(&query_pairs(&uri)?);
    let get = |name: &str| {
        given
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let auth_id = &session.account.auth_id;
    let page = Page {
        limit: LISTED,
        offset: 0,
    };
    let apps = state.store.list_applications(auth_id, page).await?;
    let trunks = state.store.list_trunks(auth_id, page).await?;
    let asked = !given.is_empty();
    let (rows, errors) = if asked {
        match plan(&state, &session.account, &given).await {
            Ok(rows) => (rows, Details::new()),
            Err(ApiError::Invalid(details)) => (Vec::new(), details),
            Err(other) => return Err(other.into()),
        }
    } else {
        (plan(&state, &session.account, &[]).await?, Details::new())
    };
    let body = html! {
        p { "Which level would receive each event of a call placed now with these parameters (the resolution of the configuration as it is)." }
        form.filters method="get" action="/ui/config/plan" aria-label="Plan parameters" {
            div.field {
                label for="f-app_id" { "Application" }
                select id="f-app_id" name="app_id" {
                    option value="" { "none" }
                    @for app in &apps.items {
                        option value=(app.app_id) selected[get("app_id") == app.app_id.to_string()] { (app.name) }
                    }
                }
            }
            div.field {
                label for="f-trunk_id" { "Trunk" }
                select id="f-trunk_id" name="trunk_id" {
                    option value="" { "none" }
                    @for trunk in &trunks.items {
                        option value=(trunk.trunk_id) selected[get("trunk_id") == trunk.trunk_id.to_string()] { (trunk.name) }
                    }
                }
            }
            (text_field("status_url", "Call status_url", get("status_url"), None, &errors))
            (select_field("status_method", "Method", &METHODS, get("status_method"), &errors))
            div.actions { button type="submit" { "Show the plan" } }
        }
        @if errors.is_empty() {
            table #plan {
                caption { "Plan" }
                thead { tr { th scope="col" { "Event" } th scope="col" { "Level" } th scope="col" { "URL" }
                    th scope="col" { "Fallback" } th scope="col" { "Verdict" } th scope="col" { "Reason" } } }
                tbody {
                    @for row in &rows {
                        tr data-event=(row.event) {
                            td { (row.event) }
                            td { (row.level) }
                            td { (target(row.url.as_deref(), &row.method)) }
                            td { (row.fallback_url.as_deref().unwrap_or("—")) }
                            td { (badge(&row.verdict)) }
                            td { (row.reason) }
                        }
                    }
                }
            }
        }
    };
    Ok(answer(
        status_for(&errors),
        shell("Callback plan", Some(&session), Section::Config, body),
    ))
}

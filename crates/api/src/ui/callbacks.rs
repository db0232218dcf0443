//! The Callbacks page: failed (or pending, or any) callbacks across the account's calls, with a
//! Redeliver button per row and one for every selected row.
//!
//! Redelivery is `routes::debugging::redeliver_event`, the code path of `POST
//! …/callbacks/{event_id}/redeliver`: the outcome shown per event is the API's (queued, or the
//! 409's reason).

use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use domain::{DeliveryStatus, EventId};
use maud::{html, Markup};
use store::Page;

use crate::error::{ApiError, Details};
use crate::extract::query_pairs;
use crate::routes::callbacks::{callback_filter, CallbackOut};
use crate::routes::debugging::redeliver_event;
use crate::ui::calls::pager;
use crate::ui::page::{
    answer, badge, non_empty, rfc3339_from_local, select_field, shell, status_for, time, PageError, Section,
};
use crate::ui::session::Posted;
use crate::ui::Session;
use crate::AppState;

const PAGE_SIZE: u32 = 25;

/// What happened to one event the user asked to redeliver.
struct Outcome {
    event_id: String,
    result: Result<usize, String>,
}

/// `GET /ui/callbacks?status=failed&since=&offset=` (status defaults to `failed`; `any` lists
/// every status).
pub async fn list(State(state): State<AppState>, session: Session, uri: Uri) -> Result<Response, PageError> {
    let pairs = non_empty(&query_pairs(&uri)?);
    render(&state, &session, &pairs, &[]).await
}

/// `POST /ui/callbacks/redeliver`: the pressed row's event (`one`), or every checked `event_id`.
pub async fn redeliver(State(state): State<AppState>, posted: Posted) -> Result<Response, PageError> {
    const MAX_REDELIVER: usize = 100;
    let Posted { session, form } = posted;
    let mut chosen: Vec<&str> = match form.get("one") {
        Some(one) => vec![one],
        None => form.all("event_id"),
    };
    // Two channels of one event share its id: redeliver it once.
    chosen.sort_unstable();
    chosen.dedup();
    // A page shows 25; a form naming more is not from it, and would be a query per id.
    chosen.truncate(MAX_REDELIVER);
    let mut outcomes = Vec::new();
    for event_id in chosen {
        let result = match EventId::parse(event_id) {
            None => Err("no such event".to_owned()),
            Some(id) => match redeliver_event(&state, &session.account.auth_id, &id).await {
                Ok(records) => Ok(records.len()),
                Err(ApiError::NotFound(_)) => Err("no such event".to_owned()),
                Err(error @ (ApiError::Conflict(_) | ApiError::RateLimited(..))) => Err(error.to_string()),
                Err(other) => return Err(other.into()),
            },
        };
        outcomes.push(Outcome {
            event_id: event_id.to_owned(),
            result,
        });
    }
    let keep: Vec<(String, String)> = ["status", "since"]
        .into_iter()
        .filter_map(|name| form.get(name).map(|v| (name.to_owned(), v.to_owned())))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    render(&state, &session, &keep, &outcomes).await
}

async fn render(
    state: &AppState,
    session: &Session,
    pairs: &[(String, String)],
    outcomes: &[Outcome],
) -> Result<Response, PageError> {
    let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let status = get("status").unwrap_or("failed");
    let since = get("since").unwrap_or("");
    let offset: u64 = get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
    let mut api_pairs = Vec::new();
    if status != "any" {
        api_pairs.push(("status".to_owned(), status.to_owned()));
    }
    if !since.is_empty() {
        api_pairs.push(("since".to_owned(), rfc3339_from_local(since)));
    }
    let (errors, listing) = match callback_filter(&api_pairs) {
        Ok(filter) => {
            let page = Page {
                limit: PAGE_SIZE,
                offset,
            };
            let listing = state
                .store
                .list_deliveries(&session.account.auth_id, &filter, page)
                .await?;
            (Details::new(), Some(listing))
        }
        Err(ApiError::Invalid(details)) => (details, None),
        Err(other) => return Err(other.into()),
    };
    let statuses: Vec<&str> = std::iter::once("any")
        .chain(DeliveryStatus::ALL.iter().map(|s| s.as_str()))
        .collect();
    let keep: Vec<(String, String)> = vec![
        ("status".to_owned(), status.to_owned()),
        ("since".to_owned(), since.to_owned()),
    ];
    let body = html! {
        (outcome_panel(outcomes))
        form.filters method="get" action="/ui/callbacks" role="search" aria-label="Filter callbacks" {
            (select_field("status", "Status", &statuses, status, &errors))
            div.field.invalid[errors.contains_key("since")] {
                label for="f-since" { "Created from (UTC)" }
                input type="datetime-local" id="f-since" name="since" value=(since)
                    aria-describedby=[errors.get("since").map(|_| "f-since-error")];
                @if let Some(why) = errors.get("since") { p.error id="f-since-error" { strong { "since" } ": " (why) } }
            }
            div.actions { button type="submit" { "Filter" } }
        }
        @if let Some(listing) = listing {
            p.count { (listing.total) " callbacks" }
            @if listing.items.is_empty() {
                p.empty { "Nothing here: no " (status) " callbacks." }
            } @else {
                form method="post" action="/ui/callbacks/redeliver" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    input type="hidden" name="status" value=(status);
                    input type="hidden" name="since" value=(since);
                    table {
                        caption.visually-hidden { "Callbacks, newest first" }
                        thead { tr {
                            th scope="col" {
                                label.select-all { input type="checkbox" data-select-all="event_id" aria-label="Select all"; }
                            }
                            th scope="col" { "Created" } th scope="col" { "Call" } th scope="col" { "Event" }
                            th scope="col" { "Level" } th scope="col" { "URL" } th scope="col" { "Status" }
                            th scope="col" { "Last attempt" } th scope="col" { span.visually-hidden { "Action" } }
                        } }
                        tbody {
                            @for callback in listing.items.into_iter().map(CallbackOut::from) { (row(&callback)) }
                        }
                    }
                    div.actions { button #redeliver-selected type="submit" { "Redeliver selected" } }
                }
            }
            (pager("/ui/callbacks", &keep, offset, listing.total))
        }
    };
    Ok(answer(
        status_for(&errors),
        shell("Callbacks", Some(session), Section::Callbacks, body),
    ))
}

fn row(callback: &CallbackOut) -> Markup {
    let checkbox_id = format!("pick-{}-{}", callback.event_id, callback.channel);
    let last = callback.attempts.last();
    html! {
        tr data-event-id=(callback.event_id) {
            td {
                input type="checkbox" id=(checkbox_id) name="event_id" value=(callback.event_id);
                label.visually-hidden for=(checkbox_id) { "Select " (callback.event) " of call " (callback.call_uuid) }
            }
            td { (time(&callback.created_at)) }
            td { a href={"/ui/calls/" (callback.call_uuid)} { code { (short(&callback.call_uuid)) } } }
            td { "#" (callback.sequence) " " (callback.event) " · " (callback.channel) }
            td { (callback.level) }
            td { @if let Some(url) = &callback.url { code { (url) } } @else { "—" } }
            td { (badge(&callback.status)) }
            td {
                @if let Some(attempt) = last {
                    @if let Some(code) = attempt.status_code { "HTTP " (code) " " }
                    @if let Some(error) = &attempt.error { "(" (error) ")" }
                    " · " (attempt.latency_ms) " ms · " (callback.attempts.len()) " attempts"
                } @else { "—" }
                @if let Some(next) = &callback.next_attempt_at { br; "next: " (time(next)) }
            }
            td {
                @if matches!(callback.status.as_str(), "failed" | "delivered") {
                    button.small type="submit" name="one" value=(callback.event_id)
                        aria-label={"Redeliver " (callback.event) " of call " (callback.call_uuid)} { "Redeliver" }
                }
            }
        }
    }
}

/// The first block of a UUID, for a compact link (the page of the call shows it whole).
fn short(uuid: &str) -> &str {
    uuid.split('-').next().unwrap_or(uuid)
}

fn outcome_panel(outcomes: &[Outcome]) -> Markup {
    html! {
        @if !outcomes.is_empty() {
            div.notice role="status" id="redeliver-outcome" {
                p { strong { "Redelivery" } }
                ul {
                    @for outcome in outcomes {
                        li {
                            code { (outcome.event_id) } ": "
                            @match &outcome.result {
                                Ok(n) => { span.ok { "queued again" } " (" (n) " deliveries, same event id, new signatures)" }
                                Err(why) => { span.bad { "not queued" } ": " (why) }
                            }
                        }
                    }
                }
            }
        }
    }
}

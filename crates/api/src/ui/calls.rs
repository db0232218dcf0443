//! The Calls pages: a paged, filtered list of the account's calls, and one call with its record
//! and every event of its delivery log (resolution, status, each attempt).
//!
//! Both read through the JSON API's own parsers and wire structs (`call_filter`, `CallOut`,
//! `CallbackOut`), so the page shows exactly what `GET …/calls` and `…/callbacks` answer.

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use domain::{CallStatus, CallUuid};
use maud::{html, Markup};
use store::Page;

use crate::error::{ApiError, Details};
use crate::extract::query_pairs;
use crate::routes::callbacks::CallbackOut;
use crate::routes::calls::{call_filter, CallOut};
use crate::ui::page::{
    answer, badge, non_empty, query_string, rfc3339_from_local, select_field, shell, status_for, text_field,
    time, PageError, Section,
};
use crate::ui::Session;
use crate::AppState;

/// Rows per page of the list.
const PAGE_SIZE: u32 = 25;

/// `GET /ui/calls?status=&direction=&from=&to=&since=&until=&offset=`.
pub async fn list(State(state): State<AppState>, session: Session, uri: Uri) -> Result<Response, PageError> {
    let raw = query_pairs(&uri)?;
    let given = non_empty(&raw);
    let get = |name: &str| {
        given
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let offset: u64 = get("offset").parse().unwrap_or(0);
    // The API's filter names; the time fields come from `datetime-local` inputs.
    let api_pairs: Vec<(String, String)> = given
        .iter()
        .filter(|(k, _)| k != "offset")
        .map(|(k, v)| match k.as_str() {
            "since" | "until" => (k.clone(), rfc3339_from_local(v)),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    let (errors, listing) = match call_filter(&api_pairs) {
        Ok(filter) => {
            let page = Page {
                limit: PAGE_SIZE,
                offset,
            };
            let listing = state
                .store
                .list_calls(&session.account.auth_id, &filter, page)
                .await?;
            (Details::new(), Some(listing))
        }
        Err(ApiError::Invalid(details)) => (details, None),
        Err(other) => return Err(other.into()),
    };
    let statuses: Vec<&str> = std::iter::once("")
        .chain(CallStatus::ALL.iter().map(|s| s.as_str()))
        .collect();
    let filters_form = html! {
        form.filters method="get" action="/ui/calls" role="search" aria-label="Filter calls" {
            (select_field("status", "Status", &statuses, get("status"), &errors))
            (select_field("direction", "Direction", &["", "outbound", "inbound"], get("direction"), &errors))
            (text_field("from", "From number", get("from"), None, &errors))
            (text_field("to", "To number", get("to"), None, &errors))
            (datetime_field("since", "Initiated from (UTC)", get("since"), &errors))
            (datetime_field("until", "Initiated before (UTC)", get("until"), &errors))
            div.actions { button type="submit" { "Filter" } " " a href="/ui/calls" { "Clear" } }
        }
    };
    let keep: Vec<(String, String)> = given.iter().filter(|(k, _)| k != "offset").cloned().collect();
    let body = html! {
        (filters_form)
        @if let Some(listing) = listing {
            p.count { (listing.total) " calls" @if listing.total > 0 { ", showing " (offset.saturating_add(1)) "–" (offset.saturating_add(listing.items.len() as u64)) } }
            @if listing.items.is_empty() {
                p.empty { "No calls match." }
            } @else {
                table {
                    caption.visually-hidden { "Calls, newest first" }
                    thead { tr { th scope="col" { "Call" } th scope="col" { "From" } th scope="col" { "To" }
                        th scope="col" { "Direction" } th scope="col" { "Status" } th scope="col" { "Initiated" }
                        th scope="col" { "Duration" } th scope="col" { "Hangup cause" } } }
                    tbody {
                        @for call in listing.items {
                            (call_row(&CallOut::new(call, &session.account)))
                        }
                    }
                }
            }
            (pager("/ui/calls", &keep, offset, listing.total))
        }
    };
    Ok(answer(
        status_for(&errors),
        shell("Calls", Some(&session), Section::Calls, body),
    ))
}

fn call_row(call: &CallOut) -> Markup {
    html! {
        tr {
            td { a href={"/ui/calls/" (call.call_uuid)} { code { (call.call_uuid) } } }
            td { (call.from_number) }
            td { (call.to_number) }
            td { (call.direction) }
            td { (badge(&call.call_status)) }
            td { (call.initiation_time) }
            td { (call.call_duration) " s" }
            td { (call.hangup_cause_name.as_deref().unwrap_or("—")) }
        }
    }
}

fn datetime_field(name: &str, label: &str, value: &str, errors: &Details) -> Markup {
    let id = format!("f-{name}");
    let error = errors.get(name);
    html! {
        div.field.invalid[error.is_some()] {
            label for=(id) { (label) }
            input type="datetime-local" id=(id) name=(name) value=(value)
                aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| format!("{id}-error"))];
            @if let Some(why) = error { p.error id={(id) "-error"} { strong { (name) } ": " (why) } }
        }
    }
}

/// Previous/next links that keep the filters.
pub fn pager(path: &str, keep: &[(String, String)], offset: u64, total: u64) -> Markup {
    let link = |offset: u64| {
        let mut pairs = keep.to_vec();
        pairs.push(("offset".to_owned(), offset.to_string()));
        format!("{path}?{}", query_string(&pairs))
    };
    let size = u64::from(PAGE_SIZE);
    html! {
        nav.pager aria-label="Pages" {
            @if offset > 0 { a href=(link(offset.saturating_sub(size))) rel="prev" { "← Newer" } }
            @if offset.saturating_add(size) < total { a href=(link(offset + size)) rel="next" { "Older →" } }
        }
    }
}

/// `GET /ui/calls/{call_uuid}`: another account's (or an unknown) call answers 404.
pub async fn detail(
    State(state): State<AppState>,
    session: Session,
    axum::extract::Path(call_uuid): axum::extract::Path<String>,
) -> Result<Response, PageError> {
    let call_uuid = CallUuid::parse(&call_uuid).ok_or_else(PageError::not_found)?;
    let auth_id = &session.account.auth_id;
    let call = state
        .store
        .call(Some(auth_id), &call_uuid)
        .await?
        .ok_or_else(PageError::not_found)?;
    let records = state.store.call_deliveries(auth_id, &call_uuid).await?;
    let call = CallOut::new(call, &session.account);
    let callbacks: Vec<CallbackOut> = records.into_iter().map(CallbackOut::from).collect();
    let body = html! {
        section aria-labelledby="record" {
            h2 id="record" { "Call record" }
            dl.record {
                dt { "Call UUID" } dd { code { (call.call_uuid) } }
                dt { "Status" } dd { (badge(&call.call_status)) }
                dt { "Direction" } dd { (call.direction) }
                dt { "From" } dd { (call.from_number) }
                dt { "To" } dd { (call.to_number) }
                dt { "Initiated" } dd { (call.initiation_time) }
                dt { "Answered" } dd { (call.answer_time.as_deref().unwrap_or("—")) }
                dt { "Ended" } dd { (call.end_time.as_deref().unwrap_or("—")) }
                dt { "Duration / billed" } dd { (call.call_duration) " s / " (call.bill_duration) " s" }
                dt { "Hangup" } dd {
                    @match (&call.hangup_cause_name, call.hangup_cause_code, &call.hangup_source) {
                        (Some(name), Some(code), Some(source)) => { (name) " (" (code) "), by " (source) }
                        _ => "—",
                    }
                }
                dt { "Application" } dd { (call.app_id.as_deref().unwrap_or("—")) }
                dt { "Trunk" } dd { (call.trunk_id.as_deref().unwrap_or("—")) }
            }
        }
        section aria-labelledby="events" {
            h2 id="events" { "Events and callbacks" }
            p.hint { "Times are UTC. The call record's times are in the account's time zone." }
            @if callbacks.is_empty() { p.empty { "No events yet." } }
            @for callback in &callbacks { (event_card(&session, callback)) }
        }
    };
    let title = format!("Call {}", call.call_uuid);
    Ok(answer(
        StatusCode::OK,
        shell(&title, Some(&session), Section::Calls, body),
    ))
}

/// One event on one channel: its resolution, status, attempts, and a Redeliver button.
fn event_card(session: &Session, callback: &CallbackOut) -> Markup {
    let heading = format!("#{} {} · {}", callback.sequence, callback.event, callback.channel);
    let redeliverable = matches!(callback.status.as_str(), "failed" | "delivered");
    html! {
        article.card.event data-event=(callback.event) data-status=(callback.status) {
            h3 { (heading) " " (badge(&callback.status)) }
            dl.record {
                dt { "Event id" } dd { code { (callback.event_id) } }
                dt { "Level" } dd { (callback.level) }
                dt { "Reason" } dd { (callback.reason) }
                dt { "URL" } dd { @if let Some(url) = &callback.url { (callback.method) " " code { (url) } } @else { "—" } }
                @if let Some(fallback) = &callback.fallback_url { dt { "Fallback" } dd { code { (fallback) } } }
                @if let Some(to) = &callback.delivered_to { dt { "Delivered to" } dd { (to) } }
                @if let Some(next) = &callback.next_attempt_at { dt { "Next attempt" } dd { (time(next)) } }
            }
            @if !callback.attempts.is_empty() { (attempts_table(callback)) }
            @if redeliverable {
                form method="post" action="/ui/callbacks/redeliver" {
                    input type="hidden" name="csrf" value=(session.csrf);
                    input type="hidden" name="event_id" value=(callback.event_id);
                    button type="submit" { "Redeliver " (callback.event) }
                }
            }
        }
    }
}

pub fn attempts_table(callback: &CallbackOut) -> Markup {
    html! {
        table.attempts {
            caption { "Attempts" }
            thead { tr { th scope="col" { "#" } th scope="col" { "Started" } th scope="col" { "Target" }
                th scope="col" { "Latency" } th scope="col" { "Result" } th scope="col" { "URL" } } }
            tbody {
                @for attempt in &callback.attempts {
                    tr {
                        td { (attempt.attempt) }
                        td { (time(&attempt.started_at)) }
                        td { (attempt.target) }
                        td { (attempt.latency_ms) " ms" }
                        td {
                            @if let Some(code) = attempt.status_code { "HTTP " (code) " " }
                            @if let Some(error) = &attempt.error { span.bad { "error: " (error) } } @else { span.ok { "ok" } }
                            @if let Some(ms) = attempt.retry_after_ms { " (Retry-After " (ms) " ms)" }
                        }
                        td { code { (attempt.url) } }
                    }
                }
            }
        }
    }
}

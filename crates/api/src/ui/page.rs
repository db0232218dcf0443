//! The page shell every dashboard page shares (head, navigation, sign-out), error pages, and
//! small rendering helpers: form fields with their refusal messages, times, status badges.
//!
//! Accessibility rules kept here so pages cannot forget them: `lang`, a title per page, a
//! skip link, every input with a `<label>` and its error tied by `aria-describedby`.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use crate::error::{ApiError, Details};
use crate::ui::Session;

/// The sections of the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Calls,
    Callbacks,
    Config,
    Health,
    Secrets,
    None,
}

const NAV: [(Section, &str, &str); 5] = [
    (Section::Calls, "/ui/calls", "Calls"),
    (Section::Callbacks, "/ui/callbacks", "Callbacks"),
    (Section::Config, "/ui/config", "Configuration"),
    (Section::Health, "/ui/health", "Endpoint health"),
    (Section::Secrets, "/ui/secrets", "Signing secrets"),
];

/// A whole page: `title` is both the `<title>` and the `<h1>`.
pub fn shell(title: &str, session: Option<&Session>, section: Section, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Hookline" }
                link rel="stylesheet" href="/ui/assets/app.css";
                script src="/ui/assets/app.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/ui" { "Hookline" }
                    @if let Some(session) = session {
                        nav aria-label="Main" {
                            ul {
                                @for (item, href, label) in NAV {
                                    li {
                                        a href=(href) aria-current=[(item == section).then_some("page")] { (label) }
                                    }
                                }
                            }
                        }
                        div.who {
                            span { (session.account.name) " · " code { (session.account.auth_id) } }
                            form method="post" action="/ui/logout" {
                                input type="hidden" name="csrf" value=(session.csrf);
                                button.secondary type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A rendered page as an answer.
pub fn answer(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

/// A page showing refused fields (a filter form's) answers 400, as the API would.
pub fn status_for(errors: &Details) -> StatusCode {
    if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    }
}

/// A page that could not be shown: its status and what to tell the user. Never shows account
/// data, so it needs no session.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> PageError {
        PageError {
            status,
            message: message.into(),
        }
    }

    pub fn not_found() -> PageError {
        PageError::new(StatusCode::NOT_FOUND, "Nothing here for this account.")
    }
}

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> Self {
        match &error {
            // Another account's id is as unknown as a made-up one (never 403).
            ApiError::NotFound(_) => PageError::not_found(),
            ApiError::Internal(source) => {
                tracing::error!(error = %source, "dashboard request failed");
                PageError::new(
                    error.status(),
                    "Something went wrong on the server; it was logged.",
                )
            }
            _ => PageError::new(error.status(), error.to_string()),
        }
    }
}

impl From<store::StoreError> for PageError {
    fn from(error: store::StoreError) -> Self {
        PageError::from(ApiError::from(error))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = match self.status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Refused",
            StatusCode::TOO_MANY_REQUESTS => "Too many requests",
            status if status.is_server_error() => "Server error",
            _ => "Cannot do that",
        };
        let body = html! {
            p.notice.bad role="alert" { (self.message) }
            p { a href="/ui" { "Back to the dashboard" } }
        };
        answer(self.status, shell(title, None, Section::None, body))
    }
}

/// A text input with its label, an optional hint, and the API's refusal for this field.
pub fn text_field(name: &str, label: &str, value: &str, hint: Option<&str>, errors: &Details) -> Markup {
    let id = format!("f-{name}");
    let error = errors.get(name);
    let described = described_by(&id, hint.is_some(), error.is_some());
    html! {
        div.field.invalid[error.is_some()] {
            label for=(id) { (label) }
            @if let Some(hint) = hint { p.hint id={(id) "-hint"} { (hint) } }
            input type="text" id=(id) name=(name) value=(value)
                aria-invalid=[error.map(|_| "true")] aria-describedby=[described];
            (error_line(&id, name, error))
        }
    }
}

/// A `<select>` of fixed choices.
pub fn select_field(name: &str, label: &str, choices: &[&str], selected: &str, errors: &Details) -> Markup {
    let id = format!("f-{name}");
    let error = errors.get(name);
    let described = described_by(&id, false, error.is_some());
    html! {
        div.field.invalid[error.is_some()] {
            label for=(id) { (label) }
            select id=(id) name=(name) aria-invalid=[error.map(|_| "true")] aria-describedby=[described] {
                @for choice in choices {
                    option value=(choice) selected[choice.eq_ignore_ascii_case(selected)] { (if choice.is_empty() { "any" } else { choice }) }
                }
            }
            (error_line(&id, name, error))
        }
    }
}

fn described_by(id: &str, hint: bool, error: bool) -> Option<String> {
    let mut ids = Vec::new();
    if hint {
        ids.push(format!("{id}-hint"));
    }
    if error {
        ids.push(format!("{id}-error"));
    }
    (!ids.is_empty()).then(|| ids.join(" "))
}

fn error_line(id: &str, name: &str, error: Option<&String>) -> Markup {
    html! {
        @if let Some(why) = error {
            p.error id={(id) "-error"} { strong { (name) } ": " (why) }
        }
    }
}

/// A status word as a badge, coloured by meaning (the word itself carries it, not the colour).
pub fn badge(status: &str) -> Markup {
    let class = match status {
        "delivered" | "completed" | "send" | "closed" => "ok",
        "failed" | "busy" | "no-answer" | "timeout" | "cancel" | "open" => "bad",
        "pending" | "ringing" | "in-progress" | "queued" | "half-open" | "failing" => "wait",
        _ => "neutral",
    };
    html! { span class={"badge " (class)} { (status) } }
}

/// An RFC 3339 time of the API as `YYYY-MM-DD HH:MM:SS.mmm UTC`.
pub fn time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string())
        .unwrap_or_else(|_| rfc3339.to_owned())
}

/// A `datetime-local` value (`YYYY-MM-DDTHH:MM`, taken as UTC) as the API's RFC 3339; other
/// text is passed on unchanged, so the API's parser refuses it with its own message.
pub fn rfc3339_from_local(value: &str) -> String {
    let value = value.trim();
    match value.len() {
        16 => format!("{value}:00Z"),
        19 => format!("{value}Z"),
        _ => value.to_owned(),
    }
}

/// Query-string pairs with the empty ones dropped (an empty filter field does not filter).
pub fn non_empty(pairs: &[(String, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k.clone(), v.trim().to_owned()))
        .collect()
}

/// Encodes pairs as a query string.
pub fn query_string(pairs: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

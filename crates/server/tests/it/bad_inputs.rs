//! The tables of bad input that `validation.rs` sends: every refused URL spelling, method,
//! filter, name and value per field, and the body-level cases (media type, JSON syntax, size),
//! each with the status, `code` and field the answer must have (PRODUCT.md §2, §4.5, §6).
//!
//! Data only; sending the cases and checking that nothing changed is `validation.rs`'s job.

use serde_json::{json, Value};

/// The largest accepted body (PRODUCT.md: bodies over 1 MiB answer 413).
const MAX_BODY_BYTES: usize = 1 << 20;

/// The longest accepted callback URL (PRODUCT.md §4.5).
pub const MAX_URL_BYTES: usize = 2048;

/// Callback URLs every URL field refuses outside `--dev`.
const BAD_URLS: &[&str] = &[
    "",
    "http://example.com/cb",
    "ftp://example.com/cb",
    "file:///etc/passwd",
    "javascript:alert(1)",
    "https://user:pass@example.com/cb",
    "https://user@example.com/cb",
    "https://@example.com/cb",
    "https://localhost/cb",
    "https://LOCALHOST/cb",
    "https://localhost./cb",
    "https://api.localhost/cb",
    "https://127.0.0.1/cb",
    "https://127.1/cb",
    "https://2130706433/cb",
    "https://0177.0.0.1/cb",
    "https://0x7f.0.0.1/cb",
    "https://0x7f000001/cb",
    "https://[::1]/cb",
    "https://[0:0:0:0:0:0:0:1]/cb",
    "https://[::ffff:127.0.0.1]/cb",
    "https://[::ffff:7f00:1]/cb",
    "https://[::127.0.0.1]/cb",
    "https://[64:ff9b::7f00:1]/cb",
    "https://[2002:7f00:1::]/cb",
    "https://10.0.0.1/cb",
    "https://172.16.0.1/cb",
    "https://192.168.1.1/cb",
    "https://169.254.169.254/latest/meta-data/",
    "https://100.64.0.1/cb",
    "https://0.0.0.0/cb",
    "https://224.0.0.1/cb",
    "https://255.255.255.255/cb",
    "https://192.0.2.1/cb",
    "https://[::ffff:10.0.0.1]/cb",
    "https://[::ffff:169.254.169.254]/cb",
    "https://[fc00::1]/cb",
    "https://[fd12:3456::1]/cb",
    "https://[fe80::1]/cb",
    "https://[ff02::1]/cb",
    "https://[2001:db8::1]/cb",
    "https://[::]/cb",
    "example.com/cb",
    "/relative/cb",
    "https://",
    "https:///example.com/cb",
    "https://exa mple.com/cb",
    " https://example.com/cb",
    "not a url",
];

/// What a case sends.
pub enum Body {
    /// A JSON object with one bad field (plus the target's valid change).
    Field(&'static str, Value),
    /// Bytes as they are, with this content type (none when `None`).
    Raw(Option<&'static str>, Vec<u8>),
}

/// One refused request and what must come back.
pub struct Case {
    pub body: Body,
    pub status: u16,
    pub code: &'static str,
    /// The key `details` must have (for `invalid_field`).
    pub named: Option<&'static str>,
    /// Text the named field's message must contain.
    pub mentions: Option<&'static str>,
}

fn field(key: &'static str, value: Value) -> Case {
    Case {
        body: Body::Field(key, value),
        status: 400,
        code: "invalid_field",
        named: Some(key),
        mentions: None,
    }
}

fn raw(
    content_type: Option<&'static str>,
    bytes: impl Into<Vec<u8>>,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        body: Body::Raw(content_type, bytes.into()),
        status,
        code,
        named: None,
        mentions: None,
    }
}

impl Case {
    /// The field `details` names when it is not the key sent (a write alias).
    fn named(mut self, key: &'static str) -> Case {
        self.named = Some(key);
        self
    }

    fn mentioning(mut self, text: &'static str) -> Case {
        self.mentions = Some(text);
        self
    }
}

/// Every bad URL and a few wrong types, for one URL field.
fn url_cases(key: &'static str) -> Vec<Case> {
    let too_long = format!("https://example.com/{}", "a".repeat(MAX_URL_BYTES + 1 - 20));
    assert_eq!(too_long.len(), MAX_URL_BYTES + 1);
    let mut cases: Vec<Case> = BAD_URLS.iter().map(|url| field(key, json!(url))).collect();
    cases.push(field(key, json!(too_long)));
    for wrong_type in [
        json!(5),
        json!(true),
        json!(["https://example.com/"]),
        json!({"url": "x"}),
    ] {
        cases.push(field(key, wrong_type));
    }
    cases
}

/// A handful of bad URLs, for the secondary URL fields.
fn some_url_cases(key: &'static str) -> Vec<Case> {
    [
        "",
        "http://example.com/cb",
        "https://10.0.0.1/cb",
        "https://u@example.com/",
    ]
    .into_iter()
    .map(|url| field(key, json!(url)))
    .chain([field(key, json!(5))])
    .collect()
}

fn method_cases(key: &'static str) -> Vec<Case> {
    [
        json!("PUT"),
        json!("DELETE"),
        json!(""),
        json!(" POST"),
        json!("POSTS"),
        json!(5),
    ]
    .into_iter()
    .map(|method| field(key, method))
    .collect()
}

fn event_cases(key: &'static str) -> Vec<Case> {
    vec![
        field(key, json!(["Bogus"])).mentioning("Bogus"),
        field(key, json!(["Hangup", "nope.event"])).mentioning("nope.event"),
        field(key, json!(["call.exploded"])).mentioning("call.exploded"),
        field(key, json!([""])),
        field(key, json!("Hangup")),
        field(key, json!([1])),
        field(key, json!([null])),
    ]
}

fn name_cases() -> Vec<Case> {
    let too_long = "n".repeat(256);
    [
        json!(""),
        json!("   "),
        json!(null),
        json!(too_long),
        json!(5),
        json!(["x"]),
    ]
    .into_iter()
    .map(|name| field("name", name))
    .collect()
}

fn unknown_field_cases(keys: &[&'static str]) -> Vec<Case> {
    keys.iter()
        .map(|key| field(key, json!("https://example.com/x")).mentioning("not a known field"))
        .collect()
}

/// Cases about the body as a whole: media type, JSON syntax, size.
fn body_cases() -> Vec<Case> {
    let json_type = Some("application/json");
    let over_limit = format!(r#"{{"name":"{}"}}"#, "a".repeat(MAX_BODY_BYTES));
    let padding = MAX_BODY_BYTES - r#"{"name":""}"#.len();
    let at_limit = format!(r#"{{"name":"{}"}}"#, "a".repeat(padding));
    assert_eq!(at_limit.len(), MAX_BODY_BYTES);
    vec![
        raw(None, r#"{"name":"x"}"#, 415, "unsupported_media_type"),
        raw(
            Some("text/plain"),
            r#"{"name":"x"}"#,
            415,
            "unsupported_media_type",
        ),
        raw(
            Some("application/x-www-form-urlencoded"),
            "name=x",
            415,
            "unsupported_media_type",
        ),
        raw(
            Some("application/jsonx"),
            r#"{"name":"x"}"#,
            415,
            "unsupported_media_type",
        ),
        raw(json_type, "", 400, "malformed_body"),
        raw(json_type, r#"{"name":"#, 400, "malformed_body"),
        raw(json_type, r#"{'name': 'x'}"#, 400, "malformed_body"),
        raw(json_type, r#"{"name":"x"} trailing"#, 400, "malformed_body"),
        raw(json_type, "[]", 400, "malformed_body"),
        raw(json_type, "null", 400, "malformed_body"),
        raw(json_type, r#""name""#, 400, "malformed_body"),
        raw(json_type, "42", 400, "malformed_body"),
        raw(json_type, over_limit, 413, "payload_too_large"),
        // Exactly 1 MiB is within the limit: it reaches validation and fails on the name.
        raw(json_type, at_limit, 400, "invalid_field").named("name"),
    ]
}

pub fn application_cases() -> Vec<Case> {
    let mut cases = url_cases("callback_url");
    for key in ["fallback_callback_url", "answer_url", "hangup_url"] {
        cases.extend(some_url_cases(key));
    }
    for key in ["callback_method", "answer_method", "hangup_method"] {
        cases.extend(method_cases(key));
    }
    cases.extend(event_cases("callback_events"));
    cases.extend(name_cases());
    cases.extend(unknown_field_cases(&[
        "bogus",
        "webhook_url",
        "status_callback",
        "app_id",
        "auth_id",
        "created_at",
    ]));
    cases.extend(body_cases());
    cases
}

pub fn trunk_cases() -> Vec<Case> {
    let mut cases = url_cases("status_callback");
    for url in ["http://example.com/cb", "https://10.0.0.1/cb", ""] {
        cases.push(field("webhook_url", json!(url)).named("status_callback"));
    }
    cases.push(field("webhook_url", json!(5)));
    cases.extend(method_cases("status_callback_method"));
    cases.push(field("webhook_method", json!("PUT")).named("status_callback_method"));
    cases.extend(event_cases("status_callback_events"));
    for direction in [json!("sideways"), json!(""), json!(1)] {
        cases.push(field("trunk_direction", direction));
    }
    cases.push(field("trunk_type", json!("upward")).named("trunk_direction"));
    for status in [json!("paused"), json!(""), json!(true)] {
        cases.push(field("trunk_status", status));
    }
    for uri in [
        json!(""),
        json!("http://carrier.example.com"),
        json!("sip:"),
        json!("sip:a b"),
        json!(5),
    ] {
        cases.push(field("termination_uri", uri));
    }
    for recording in [json!("yes"), json!("true"), json!(1), json!("false")] {
        cases.push(field("recording", recording));
    }
    for engine in [json!("sip"), json!("carrier-pigeon"), json!(""), json!(5)] {
        cases.push(field("engine", engine));
    }
    cases.extend(name_cases());
    cases.extend(unknown_field_cases(&[
        "bogus",
        "app_name",
        "callback_url",
        "trunk_id",
    ]));
    cases.extend(body_cases());
    cases
}

pub fn account_cases() -> Vec<Case> {
    let mut cases = url_cases("default_callback_url");
    cases.extend(method_cases("default_callback_method"));
    cases.extend(event_cases("default_callback_events"));
    for timezone in [json!("Mars/Olympus"), json!(""), json!("UTC+5"), json!(5)] {
        cases.push(field("timezone", timezone));
    }
    cases.extend(name_cases());
    cases.extend(unknown_field_cases(&[
        "bogus",
        "parent_auth_id",
        "auth_id",
        "auth_token",
        "callback_url",
    ]));
    cases.extend(body_cases());
    cases
}

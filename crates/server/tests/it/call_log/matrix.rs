//! The resolution matrix (PRODUCT.md §3.1, §3.2) through real calls: every combination of call,
//! application, trunk and account level present or absent, with filters that admit everything,
//! only the answer and the recording (aliases), or failures (`call.failed`), for a completed and a
//! busy call. The log must show the winning level's URL, method, fallback and verdict for each
//! event, and the receiver must get exactly the events resolved `send`.

use reqwest::Method;
use serde_json::{json, Value};

use crate::applications::create_application;
use crate::call_receiver::Receiver;
use crate::calls::{
    call_log, carrier_barrier, list_total, make_call, numbered, poll, status_events, wait_for_events,
    ANSWERS, BUSY, FROM,
};
use crate::fixture::{Account, Server};
use crate::trunks::create_trunk;

/// The filter every level of one account uses, and what it admits (the test's own oracle).
#[derive(Clone, Copy, Debug)]
enum Filter {
    /// `[]`: every event.
    All,
    /// Aliases: `StartApp` and `RecordStop` only.
    Answered,
    /// `CallInitiated`, `Ring`, and a `Hangup` whose status is a failure.
    Failed,
}

impl Filter {
    fn written(self) -> Value {
        match self {
            Filter::All => json!([]),
            Filter::Answered => json!(["call.answered", "recording.completed"]),
            Filter::Failed => json!(["call.initiated", "call.ringing", "call.failed"]),
        }
    }

    fn admits(self, event: &str, call_status: &str) -> bool {
        match self {
            Filter::All => true,
            Filter::Answered => matches!(event, "StartApp" | "RecordStop"),
            Filter::Failed => match event {
                "CallInitiated" | "Ring" => true,
                "Hangup" => call_status != "completed",
                _ => false,
            },
        }
    }
}

/// What the log must say for the status channel of one event.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    level: &'static str,
    url: Option<String>,
    method: &'static str,
    fallback_url: Option<String>,
    /// `delivered`, `filtered` or `unrouted` once deliveries settled.
    status: &'static str,
}

/// One account of the matrix: every level configured with `filter`, the account's default URL
/// present or not, and of each of application and trunk one with a URL and one without (whose
/// filter excludes nearly everything: it must not matter, a level without URL is skipped).
struct Setup {
    account: Account,
    tag: String,
    filter: Filter,
    account_has_url: bool,
    app_with_url: String,
    app_without_url: String,
    trunk_with_url: String,
    trunk_without_url: String,
}

impl Setup {
    async fn create(server: &Server, receiver: &Receiver, filter: Filter, account_has_url: bool) -> Setup {
        let tag = format!("{filter:?}-{account_has_url}").to_lowercase();
        let account = server.admin_create_account(&tag).await;
        if account_has_url {
            let settings = json!({
                "default_callback_url": receiver.url(&format!("/{tag}/account")),
                "default_callback_method": "GET",
                "default_callback_events": filter.written(),
            });
            server
                .send_json(&account, Method::POST, &account.path(""), &settings)
                .await
                .expect(200);
        }
        let id = |object: Value, key: &str| object[key].as_str().expect("id").to_owned();
        let app_with_url = create_application(
            server,
            &account,
            &json!({"name": "with", "callback_url": receiver.url(&format!("/{tag}/app")),
                    "fallback_callback_url": receiver.url(&format!("/{tag}/app-fallback")),
                    "callback_events": filter.written()}),
        )
        .await;
        let app_without_url = create_application(
            server,
            &account,
            &json!({"name": "without", "callback_events": ["recording.completed"]}),
        )
        .await;
        let trunk_with_url = create_trunk(
            server,
            &account,
            &json!({"name": "with", "status_callback": receiver.url(&format!("/{tag}/trunk")),
                    "status_callback_method": "GET", "status_callback_events": filter.written()}),
        )
        .await;
        let trunk_without_url = create_trunk(
            server,
            &account,
            &json!({"name": "without", "status_callback_events": ["call.failed"]}),
        )
        .await;
        Setup {
            account,
            tag,
            filter,
            account_has_url,
            app_with_url: id(app_with_url, "app_id"),
            app_without_url: id(app_without_url, "app_id"),
            trunk_with_url: id(trunk_with_url, "trunk_id"),
            trunk_without_url: id(trunk_without_url, "trunk_id"),
        }
    }

    /// The status channel of `event` for a call with these levels present.
    fn expect(&self, receiver: &Receiver, levels: [bool; 3], event: &str, call_status: &str) -> Expected {
        let [call, app, trunk] = levels;
        let url = |level: &str| Some(receiver.url(&format!("/{}/{level}", self.tag)));
        let (level, method) = if call {
            ("call", "GET")
        } else if app {
            ("application", "POST")
        } else if trunk {
            ("trunk", "GET")
        } else if self.account_has_url {
            ("account", "GET")
        } else {
            return Expected {
                level: "none",
                url: None,
                method: "POST",
                fallback_url: None,
                status: "unrouted",
            };
        };
        let admitted = level == "call" || self.filter.admits(event, call_status);
        Expected {
            level,
            url: url(if level == "application" { "app" } else { level }),
            method,
            fallback_url: if level == "application" {
                url("app-fallback")
            } else {
                None
            },
            status: if admitted { "delivered" } else { "filtered" },
        }
    }
}

/// A placed call of the matrix.
struct Placed {
    setup: usize,
    levels: [bool; 3],
    call_uuid: String,
    /// `(event, CallStatus after it)`.
    events: Vec<(&'static str, &'static str)>,
}

fn expected_events(answered: bool) -> Vec<(&'static str, &'static str)> {
    if answered {
        vec![
            ("CallInitiated", "queued"),
            ("Ring", "ringing"),
            ("StartApp", "in-progress"),
            ("Hangup", "completed"),
            ("RecordStop", "completed"),
        ]
    } else {
        vec![
            ("CallInitiated", "queued"),
            ("Ring", "ringing"),
            ("Hangup", "busy"),
        ]
    }
}

fn resolution(object: &Value) -> Expected {
    let text = |key: &str| object[key].as_str().map(str::to_owned);
    let known = |key: &str, choices: &[&'static str]| {
        let value = object[key].as_str().unwrap_or_default();
        *choices
            .iter()
            .find(|choice| **choice == value)
            .unwrap_or_else(|| panic!("unexpected {key} in {object}"))
    };
    Expected {
        level: known("level", &["call", "application", "trunk", "account", "none"]),
        url: text("url"),
        method: known("method", &["GET", "POST"]),
        fallback_url: text("fallback_url"),
        status: known(
            "status",
            &["pending", "delivered", "failed", "filtered", "unrouted"],
        ),
    }
}

#[tokio::test]
async fn the_most_specific_level_with_a_url_takes_each_event_and_its_filter_decides() {
    let receiver = Receiver::start().await;
    let server = Server::start_with(&["--dev", "--sim-ring-ms", "30", "--sim-talk-ms", "60"]).await;
    let mut setups = Vec::new();
    for filter in [Filter::All, Filter::Answered, Filter::Failed] {
        for account_has_url in [true, false] {
            setups.push(Setup::create(&server, &receiver, filter, account_has_url).await);
        }
    }
    let mut placed = Vec::new();
    for (n, setup) in setups.iter().enumerate() {
        for bits in 0..8u8 {
            let levels = [bits & 1 != 0, bits & 2 != 0, bits & 4 != 0];
            let [call, app, trunk] = levels;
            for answered in [true, false] {
                let mut body = json!({
                    "from": FROM, "to": if answered { ANSWERS } else { BUSY }, "record": answered,
                    "app_id": if app { &setup.app_with_url } else { &setup.app_without_url },
                    "trunk_id": if trunk { &setup.trunk_with_url } else { &setup.trunk_without_url },
                });
                if call {
                    body["status_url"] = json!(receiver.url(&format!("/{}/call", setup.tag)));
                    body["status_method"] = json!("get");
                }
                let call_uuid = make_call(&server, &setup.account, &body).await;
                placed.push(Placed {
                    setup: n,
                    levels,
                    call_uuid,
                    events: expected_events(answered),
                });
            }
        }
    }
    for call in &placed {
        let account = &setups[call.setup].account;
        wait_for_events(&server, account, &call.call_uuid, call.events.len()).await;
    }
    // An account without a default URL: the barrier call sends nothing.
    carrier_barrier(&server, &setups[1].account).await;
    for setup in &setups {
        poll("every delivery settled", || async {
            match list_total(&server, &setup.account, "/callbacks?status=pending").await {
                0 => Ok(()),
                n => Err(format!("{n} pending for {}", setup.tag)),
            }
        })
        .await;
    }

    let mut sent = Vec::new();
    for call in &placed {
        let setup = &setups[call.setup];
        let objects = call_log(&server, &setup.account, &call.call_uuid).await;
        let events: Vec<&str> = call.events.iter().map(|(event, _)| *event).collect();
        assert_eq!(status_events(&objects), numbered(&events));
        assert_eq!(objects.len(), events.len(), "status channel only: {objects:#?}");
        for (object, (event, call_status)) in objects.iter().zip(&call.events) {
            let expected = setup.expect(&receiver, call.levels, event, call_status);
            assert_eq!(
                resolution(object),
                expected,
                "{} levels {:?}, {event} ({call_status}): {object:#}",
                setup.tag,
                call.levels
            );
            let reason = object["reason"].as_str().unwrap_or_default();
            assert_eq!(
                reason.contains("excludes"),
                expected.status == "filtered",
                "reason {reason:?}"
            );
            if let (Some(url), "delivered") = (&expected.url, expected.status) {
                let path = url.trim_start_matches(&receiver.url(""));
                sent.push((
                    path.to_owned(),
                    expected.method,
                    call.call_uuid.clone(),
                    *event,
                    expected.level,
                ));
            }
        }
    }
    // Exactly the events resolved `send` reached the receiver, each once, where the log says.
    let mut received: Vec<_> = receiver
        .hits()
        .iter()
        .map(|hit| {
            (
                hit.path.clone(),
                if hit.method == "GET" { "GET" } else { "POST" },
                hit.field("CallUUID").unwrap_or_default().to_owned(),
                EVENTS
                    .into_iter()
                    .find(|event| hit.field("Event") == Some(*event))
                    .unwrap_or("?"),
                LEVELS
                    .into_iter()
                    .find(|level| hit.header("X-Hookline-Callback-Level") == Some(*level))
                    .unwrap_or("?"),
            )
        })
        .collect();
    received.sort();
    sent.sort();
    let missing: Vec<_> = sent.iter().filter(|s| !received.contains(s)).collect();
    let unexpected: Vec<_> = received.iter().filter(|r| !sent.contains(r)).collect();
    assert!(
        missing.is_empty() && unexpected.is_empty() && received.len() == sent.len(),
        "missing {missing:#?}\nunexpected {unexpected:#?}\n{} received, {} sent",
        received.len(),
        sent.len()
    );
}

const EVENTS: [&str; 5] = ["CallInitiated", "Ring", "StartApp", "Hangup", "RecordStop"];
const LEVELS: [&str; 4] = ["call", "application", "trunk", "account"];

//! Property tests of the callback request encoding (PRODUCT.md §4.1, §4.4) through the public
//! `dispatcher::request::build`: whatever the field names and values, a receiver decoding the
//! POST body or the GET query string with a standard form decoder gets back exactly the pairs
//! that were sent, in order, and the signatures verify over what it received.

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use proptest::sample::select;
use url::form_urlencoded;

use dispatcher::request::{build, AttemptHeaders, Freshness};
use domain::call::Recording;
use domain::fields::callback_fields;
use domain::{
    AuthId, Call, CallUuid, Direction, Engine, EventKind, HangupCause, HttpMethod, Level, Report, TargetKind,
    Timezone,
};
use sender::OutboundRequest;
use signing::standard::SigningSecret;
use signing::{verify_request, CapturedRequest, Check, Keys};
use store::{KeysVersion, SigningKeys};

const NOW: i64 = 1_700_000_000;

fn keys() -> SigningKeys {
    SigningKeys {
        auth_token: b"token-of-the-account".to_vec(),
        parent_token: b"token-of-the-parent".to_vec(),
        secrets: vec![vec![1; 32], vec![2; 32]],
        version: KeysVersion::default(),
    }
}

fn fresh(v2: u128, v3: u128) -> Freshness {
    Freshness {
        nonces: signing::vobiz::Nonces {
            v2: signing::vobiz::nonce_from(v2),
            v3: signing::vobiz::nonce_from(v3),
        },
        unix_time: NOW,
    }
}

fn headers(event_id: &str, attempt: u32, sequence: u32) -> AttemptHeaders<'_> {
    AttemptHeaders {
        event_id,
        attempt,
        level: Some(Level::Application),
        sequence,
        target: TargetKind::Primary,
    }
}

fn send(method: HttpMethod, url: &str, fields: &[(String, String)]) -> OutboundRequest {
    build(
        method,
        url,
        fields,
        &keys(),
        &headers("6f1c2a4e-0b7d-4c1e-9f3a-2d5e8b7c1a90", 1, 2),
        &fresh(1, 2),
    )
}

fn decode(encoded: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(encoded).into_owned().collect()
}

/// Field text with everything form encoding must get right: `&`, `=`, `+`, `%`, spaces,
/// control characters, multi-byte UTF-8.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[&=+% a-zA-Z0-9]{0,8}",
        "[&=+%#?/;:@\\[\\] \t\r\n\u{0}\u{7f}\u{e9}\u{20ac}\u{1f600}]{0,8}",
        "%[0-9a-fA-F]{2}|%[g-z]{0,2}|\\+|%2B|%26|%3D",
        "\\PC{0,16}",
        ".{0,16}",
    ]
}

fn fields() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec((text(), text()), 0..12)
}

/// A callback URL with or without a path, query and fragment, in normalised form.
fn base_url() -> impl Strategy<Value = String> {
    let path = select(&["", "/", "/cb", "/a/b.php", "/caf%C3%A9"][..]);
    let host = select(
        &[
            "example.com",
            "api.example.com:8443",
            "127.0.0.1:9000",
            "[::1]:8080",
        ][..],
    );
    let scheme = select(&["https", "http"][..]);
    (scheme, host, path).prop_map(|(scheme, host, path)| format!("{scheme}://{host}{path}"))
}

/// How the configured URL's own query ends: none, `?`, `?pairs`, `?pairs&`.
fn existing_query() -> impl Strategy<Value = (String, Vec<(String, String)>)> {
    (0u8..4, proptest::collection::vec((text(), text()), 0..3)).prop_map(|(shape, pairs)| {
        let encoded = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .finish();
        match shape {
            0 => (String::new(), Vec::new()),
            1 => ("?".to_owned(), Vec::new()),
            2 => (format!("?{encoded}"), pairs),
            _ => (format!("?{encoded}&"), pairs),
        }
    })
}

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "#[a-z?&=/]{0,8}"]
}

/// A call that has been through its whole life with arbitrary free-text values, and one of
/// its events, for `callback_fields`.
fn call_event() -> impl Strategy<Value = (Call, EventKind, DateTime<Utc>, Timezone)> {
    let cause = select(HangupCause::all_names().collect::<Vec<_>>());
    let tz = select(&["UTC", "Asia/Kolkata", "America/New_York", "Australia/Lord_Howe"][..]);
    (
        (text(), text(), text(), cause),
        (text(), text(), text(), any::<u64>()),
        (0i64..4_000_000_000, 0u32..1_000_000, 0i64..100_000),
        (select(&EventKind::ALL[..]), tz, any::<bool>()),
    )
        .prop_map(
            |(
                (from, to, source, cause),
                (rec_id, rec_url, end_reason, duration_ms),
                (start, micros, talk),
                (kind, tz, out),
            )| {
                let t0 = DateTime::from_timestamp(start, micros * 1000).expect("in range");
                let direction = if out {
                    Direction::Outbound
                } else {
                    Direction::Inbound
                };
                let mut call = Call::new(
                    CallUuid::from_random(u128::from(micros)),
                    AuthId::generate(!out, [7; 8]),
                    direction,
                    from,
                    to,
                    Engine::External,
                    t0,
                );
                let seconds = |s: i64| t0 + chrono::Duration::seconds(s);
                call.apply(Report::Ring, seconds(1)).expect("legal");
                call.apply(Report::Answer, seconds(2)).expect("legal");
                let hangup = Report::Hangup {
                    cause: HangupCause::parse(cause).expect("from the table"),
                    source,
                    status: None,
                };
                call.apply(hangup, seconds(2 + talk)).expect("legal");
                let recording = Recording {
                    recording_id: rec_id,
                    url: rec_url,
                    duration_ms,
                    end_reason,
                };
                call.apply(Report::RecordStop(recording), seconds(2 + talk))
                    .expect("legal");
                let at = seconds(2 + talk);
                (call, kind, at, Timezone::parse(tz).expect("IANA name"))
            },
        )
}

fn owned(fields: Vec<(&'static str, String)>) -> Vec<(String, String)> {
    fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Verifies `request` as a receiver does, from the URL the HTTP client actually requests.
fn verify(request: &OutboundRequest) -> signing::Report {
    let received = url::Url::parse(&request.url).expect("valid URL").to_string();
    let secrets = [
        SigningSecret::from_bytes([1; 32]),
        SigningSecret::from_bytes([2; 32]),
    ];
    let keys = keys();
    verify_request(
        &CapturedRequest {
            url: &received,
            headers: &request.headers,
            body: &request.body,
        },
        &Keys {
            auth_token: Some(&keys.auth_token),
            parent_token: Some(&keys.parent_token),
            secrets: &secrets,
        },
        NOW,
        300,
    )
}

fn all_valid(report: &signing::Report) -> bool {
    [
        &report.v2,
        &report.v3,
        &report.ma_v2,
        &report.ma_v3,
        &report.standard,
    ]
    .iter()
    .all(|check| **check == Check::Valid)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The POST body decodes to exactly the fields, in order, and is plain ASCII made only of
    /// the characters form encoding produces.
    #[test]
    fn post_body_decodes_to_the_same_pairs(fields in fields(), url in base_url()) {
        let request = send(HttpMethod::Post, &url, &fields);
        prop_assert_eq!(decode(&request.body), fields.clone());
        prop_assert!(
            request.body.iter().all(|b| b.is_ascii_alphanumeric() || b"*-._%+=&".contains(b)),
            "{:?}", String::from_utf8_lossy(&request.body)
        );
        prop_assert_eq!(request.url, url);
    }

    /// A GET carries the same pairs after the URL's own query, which is kept, while the
    /// fragment is dropped; the URL the HTTP client sends is exactly the one built.
    #[test]
    fn get_query_carries_the_same_pairs_after_the_existing_query(
        fields in fields(),
        base in base_url(),
        (query, existing) in existing_query(),
        fragment in fragment(),
    ) {
        let configured = format!("{base}{query}{fragment}");
        let request = send(HttpMethod::Get, &configured, &fields);
        prop_assert!(request.body.is_empty());
        prop_assert!(request.url.starts_with(&format!("{base}{query}")), "{}", request.url);
        let parsed = url::Url::parse(&request.url).expect("valid URL");
        prop_assert_eq!(parsed.fragment(), None);
        let got: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
        let mut expected = existing.clone();
        expected.extend(fields.iter().cloned());
        prop_assert_eq!(got, expected, "{}", request.url);
        if base.split_once("://").is_some_and(|(_, rest)| rest.contains('/')) {
            // Already normalised (it has a path): the client sends the URL unchanged.
            prop_assert_eq!(parsed.as_str(), request.url.as_str());
        }
    }

    /// End to end from the call: the fields `callback_fields` computes for any event of a call
    /// with arbitrary free-text values (numbers, hangup source, recording) arrive intact, in
    /// order, by POST and by GET.
    #[test]
    fn callback_fields_arrive_intact((call, kind, at, tz) in call_event(), get in any::<bool>()) {
        let fields = owned(callback_fields(&call, kind, at, tz));
        prop_assert_eq!(&fields[0], &("Event".to_owned(), kind.as_str().to_owned()));
        let request = if get {
            send(HttpMethod::Get, "https://example.com/cb", &fields)
        } else {
            send(HttpMethod::Post, "https://example.com/cb", &fields)
        };
        let got = if get {
            let parsed = url::Url::parse(&request.url).expect("valid URL");
            parsed.query_pairs().into_owned().collect()
        } else {
            decode(&request.body)
        };
        prop_assert_eq!(got, fields);
    }

    /// Every signature verifies over what the receiver gets, whatever the fields, nonces and
    /// method; changing one byte of a POST body breaks the body signature.
    #[test]
    fn signatures_verify_over_what_is_received(
        fields in fields(),
        base in base_url(),
        (query, _) in existing_query(),
        nonces in (any::<u128>(), any::<u128>()),
        get in any::<bool>(),
        (attempt, sequence) in (1u32..100, 1u32..10),
    ) {
        let method = if get { HttpMethod::Get } else { HttpMethod::Post };
        let url = format!("{base}{query}");
        let event_id = "0190f1c2-0000-7000-8000-000000000001";
        let mut request = build(method, &url, &fields, &keys(), &headers(event_id, attempt, sequence), &fresh(nonces.0, nonces.1));
        let report = verify(&request);
        prop_assert!(all_valid(&report), "{:?} for {}", report, request.url);
        let header = |name: &str| {
            request.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
        };
        prop_assert_eq!(header("x-hookline-attempt"), Some(attempt.to_string()));
        prop_assert_eq!(header("x-hookline-sequence"), Some(sequence.to_string()));
        prop_assert_eq!(header("x-hookline-event-id"), Some(event_id.to_owned()));
        prop_assert_eq!(header("content-type").is_some(), !get);
        if !get {
            request.body.push(b'x');
            prop_assert_eq!(verify(&request).standard, Check::Invalid);
        }
    }
}

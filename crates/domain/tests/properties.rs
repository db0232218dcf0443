//! Property tests of the domain's parsers and rules, through the public API only: numbers,
//! event filters, `Retry-After`, the enum parsers, the retry backoff, and the call state
//! machine that switch reports (PRODUCT.md §2.6) go through.
//!
//! The switch interface's JSON parsing (`crates/api/src/routes/switch.rs`, `parse_report`) is
//! private to the api crate; what it produces is a `domain::Report` applied with
//! `Call::apply`, so the state machine is tested here, with reports built from parsed enum
//! values exactly as that handler builds them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use proptest::sample::select;

use domain::call::{is_valid_number, Recording};
use domain::event::FAILED_CALL_STATUSES;
use domain::retry::{backoff, decide, parse_retry_after, AttemptOutcome, Decision, RetryPolicy};
use domain::{
    AuthId, Call, CallStatus, CallUuid, Direction, Engine, EventFilter, EventKind, FilterName, HangupCause,
    HttpMethod, Report, TransitionError, ValueError,
};

// ---------------------------------------------------------------------------------------------
// Numbers (PRODUCT.md §6: `+` optional, then 8–15 digits, no separators; or a `sip:` URI)

/// The rule restated: what `is_valid_number` must accept, and nothing else.
fn number_rule(input: &str) -> bool {
    match input.strip_prefix("sip:") {
        Some(rest) => {
            !rest.is_empty()
                && rest.len() <= 255
                && !rest
                    .bytes()
                    .any(|b| b.is_ascii_whitespace() || b < 0x20 || b == 0x7f)
        }
        None => {
            let digits = input.strip_prefix('+').unwrap_or(input);
            (8..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit())
        }
    }
}

/// Inputs near the boundary of the rule: numbers of every length, with junk, sip URIs.
fn number_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\+?[0-9]{0,20}",
        "\\+{0,2}[0-9 ()./-]{6,18}",
        "[+0-9\u{ff10}-\u{ff19}\u{660}-\u{669}]{6,17}",
        "(sip|SIP|sips|tel):[!-~ \t\u{a0}\u{85}]{0,20}",
        "sip:[!-~]{250,260}",
        "\\PC{0,20}",
        ".{0,20}",
    ]
}

// ---------------------------------------------------------------------------------------------
// Filters (PRODUCT.md §3.1)

const KNOWN_FILTER_NAMES: [&str; 11] = [
    "CallInitiated",
    "Ring",
    "StartApp",
    "Hangup",
    "RecordStop",
    "call.initiated",
    "call.ringing",
    "call.answered",
    "call.completed",
    "recording.completed",
    "call.failed",
];

const ALL_CALL_STATUS_NAMES: [&str; 9] = [
    "queued",
    "ringing",
    "in-progress",
    "completed",
    "busy",
    "no-answer",
    "failed",
    "timeout",
    "cancel",
];

/// Whether one filter entry admits an event, as §3.1 states it.
fn entry_admits(entry: &str, kind: EventKind, call_status: &str) -> bool {
    match entry {
        "call.initiated" | "CallInitiated" => kind == EventKind::CallInitiated,
        "call.ringing" | "Ring" => kind == EventKind::Ring,
        "call.answered" | "StartApp" => kind == EventKind::StartApp,
        "call.completed" | "Hangup" => kind == EventKind::Hangup,
        "recording.completed" | "RecordStop" => kind == EventKind::RecordStop,
        "call.failed" => {
            kind == EventKind::Hangup
                && ["busy", "no-answer", "failed", "timeout", "cancel"].contains(&call_status)
        }
        other => panic!("not a filter name: {other}"),
    }
}

/// A known name with one ASCII letter's case flipped (always a different string).
fn case_variant() -> impl Strategy<Value = String> {
    (select(&KNOWN_FILTER_NAMES[..]), any::<prop::sample::Index>()).prop_map(|(name, at)| {
        let letters: Vec<usize> = name
            .char_indices()
            .filter(|(_, c)| c.is_ascii_alphabetic())
            .map(|(i, _)| i)
            .collect();
        let i = letters[at.index(letters.len())];
        let mut bytes = name.as_bytes().to_vec();
        bytes[i] ^= 0x20;
        String::from_utf8(bytes).expect("ASCII")
    })
}

fn filter_entry() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => select(&KNOWN_FILTER_NAMES[..]).prop_map(str::to_owned),
        1 => case_variant(),
        1 => select(&KNOWN_FILTER_NAMES[..]).prop_map(|n| format!(" {n}")),
        1 => select(&KNOWN_FILTER_NAMES[..]).prop_map(|n| format!("{n}s")),
        1 => "\\PC{0,16}",
    ]
}

// ---------------------------------------------------------------------------------------------
// The call state machine

fn at(seconds: i64, millis: u32) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + seconds, millis * 1_000_000).expect("in range")
}

fn new_call() -> Call {
    Call::new(
        CallUuid::from_random(7),
        AuthId::generate(false, [1; 8]),
        Direction::Outbound,
        "+14155551234".into(),
        "+14155555678".into(),
        Engine::External,
        at(0, 0),
    )
}

fn cause() -> impl Strategy<Value = HangupCause> {
    let names: Vec<&'static str> = HangupCause::all_names().collect();
    select(names).prop_map(|name| HangupCause::parse(name).expect("from the table"))
}

fn recording() -> impl Strategy<Value = Recording> {
    ("\\PC{0,12}", "\\PC{0,20}", any::<u64>(), "\\PC{0,8}").prop_map(
        |(recording_id, url, duration_ms, end_reason)| Recording {
            recording_id,
            url,
            duration_ms,
            end_reason,
        },
    )
}

/// Any report the switch interface (or the simulated carrier, or the hangup API) can produce.
fn report() -> impl Strategy<Value = Report> {
    prop_oneof![
        2 => Just(Report::Ring),
        2 => Just(Report::Answer),
        1 => Just(Report::HangupByApi),
        3 => (cause(), "\\PC{0,10}", proptest::option::of(select(&CallStatus::ALL[..])))
            .prop_map(|(cause, source, status)| Report::Hangup { cause, source, status }),
        1 => recording().prop_map(Report::RecordStop),
    ]
}

/// Reports with their times: usually later than the previous one, sometimes earlier. Half are
/// random sequences, half a valid journey with stray reports (duplicates, reports out of order
/// or late, contradictory hangups) slipped in, so every state and branch is reached often.
fn timed_reports() -> impl Strategy<Value = Vec<(Report, DateTime<Utc>)>> {
    let random = proptest::collection::vec((report(), -3i64..20, 0u32..1000), 0..12).prop_map(|steps| {
        let mut t = 0i64;
        steps
            .into_iter()
            .map(|(report, step, millis)| {
                t += step;
                (report, at(t, millis))
            })
            .collect::<Vec<_>>()
    });
    let strays = proptest::collection::vec((any::<prop::sample::Index>(), report(), -40i64..40), 0..4);
    let perturbed = (valid_journey(), strays).prop_map(|(mut journey, strays)| {
        for (i, report, offset) in strays {
            let i = i.index(journey.len() + 1);
            let t = journey.get(i).or(journey.last()).map_or(at(0, 0), |(_, t)| *t);
            journey.insert(i, (report, t + chrono::Duration::seconds(offset)));
        }
        journey
    });
    prop_oneof![random, perturbed]
}

/// Why the model expects a report to be refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    OutOfOrder,
    Inconsistent,
}

fn class(err: &TransitionError) -> Refusal {
    match err {
        TransitionError::OutOfOrder { .. } => Refusal::OutOfOrder,
        TransitionError::Inconsistent(_) => Refusal::Inconsistent,
    }
}

/// The states of PRODUCT.md §3 as a small model of what a call may do next.
#[derive(Debug, Clone)]
struct Model {
    status: CallStatus,
    answered: bool,
    recorded: bool,
    latest: Option<DateTime<Utc>>,
}

/// The status a cause implies for a call that was never answered (as `Call` documents it).
fn unanswered_status(cause: &HangupCause) -> CallStatus {
    match cause.cause {
        "USER_BUSY" => CallStatus::Busy,
        "NO_ANSWER" | "RING_TIMEOUT" => CallStatus::NoAnswer,
        "ORIGINATOR_CANCEL" => CallStatus::Cancel,
        _ => CallStatus::Failed,
    }
}

const UNANSWERED_ENDS: [CallStatus; 5] = [
    CallStatus::Busy,
    CallStatus::NoAnswer,
    CallStatus::Failed,
    CallStatus::Timeout,
    CallStatus::Cancel,
];

impl Model {
    fn new() -> Model {
        Model {
            status: CallStatus::Queued,
            answered: false,
            recorded: false,
            latest: None,
        }
    }

    fn apply(&self, report: &Report, at: DateTime<Utc>) -> Result<Model, Refusal> {
        use CallStatus::*;
        let mut next = self.clone();
        let before_answer = matches!(self.status, Queued | Ringing);
        match (self.status, report) {
            (Queued, Report::Ring) => next.status = Ringing,
            (Ringing, Report::Answer) => {
                next.status = InProgress;
                next.answered = true;
            }
            (Queued | Ringing, Report::HangupByApi) => next.status = Cancel,
            (InProgress, Report::HangupByApi) => next.status = Completed,
            (_, Report::Hangup { cause, status, .. }) if before_answer => {
                let status = status.unwrap_or_else(|| unanswered_status(cause));
                if !UNANSWERED_ENDS.contains(&status) {
                    return Err(Refusal::Inconsistent);
                }
                next.status = status;
            }
            (InProgress, Report::Hangup { status, .. }) => {
                if status.is_some_and(|s| s != Completed) {
                    return Err(Refusal::Inconsistent);
                }
                next.status = Completed;
            }
            (status, Report::RecordStop(_)) if status.is_final() && self.answered && !self.recorded => {
                next.recorded = true;
            }
            _ => return Err(Refusal::OutOfOrder),
        }
        if self.latest.is_some_and(|latest| at < latest) {
            return Err(Refusal::Inconsistent);
        }
        if !matches!(report, Report::RecordStop(_)) {
            next.latest = Some(self.latest.map_or(at, |l| l.max(at)));
        }
        Ok(next)
    }
}

/// What must hold of any call, whatever it went through.
fn check_invariants(call: &Call, accepted: u32) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        call.last_sequence,
        1 + accepted,
        "one sequence number per accepted report"
    );
    prop_assert!(
        call.last_sequence <= 5,
        "at most Ring, StartApp, Hangup, RecordStop after CallInitiated"
    );
    let ended = call.call_status.is_final();
    prop_assert_eq!(ended, call.ended_at.is_some());
    prop_assert_eq!(ended, call.hangup.is_some());
    let answered = call.answered_at.is_some();
    prop_assert!(!answered || call.ringing_at.is_some(), "answered without ringing");
    prop_assert_eq!(
        answered,
        matches!(call.call_status, CallStatus::InProgress | CallStatus::Completed)
    );
    prop_assert!(call.recording.is_none() || call.call_status == CallStatus::Completed);
    let times: Vec<_> = [call.ringing_at, call.answered_at, call.ended_at]
        .into_iter()
        .flatten()
        .collect();
    prop_assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "events in time order: {:?}",
        times
    );
    match (call.answered_at, call.ended_at) {
        (Some(a), Some(e)) => {
            let ms = (e - a).num_milliseconds();
            prop_assert_eq!(
                call.duration_s(),
                u64::try_from(ms).expect("ordered").div_ceil(1000)
            );
        }
        _ => prop_assert_eq!(call.duration_s(), 0),
    }
    prop_assert_eq!(call.bill_duration_s(), call.duration_s());
    Ok(())
}

/// A sequence of reports a well-behaved switch could send for one call, in time order.
fn valid_journey() -> impl Strategy<Value = Vec<(Report, DateTime<Utc>)>> {
    let unanswered_status = prop_oneof![Just(None), select(&UNANSWERED_ENDS[..]).prop_map(Some)];
    (
        0u8..3,
        any::<bool>(),
        cause(),
        "\\PC{0,10}",
        unanswered_status,
        any::<bool>(),
        recording(),
        proptest::collection::vec(0i64..30, 4),
    )
        .prop_map(|(path, rings, cause, source, status, record, rec, gaps)| {
            let mut t = 0;
            let mut next = |i: usize| {
                t += gaps[i];
                at(t, 0)
            };
            let mut out = Vec::new();
            match path {
                // Answered and ended, maybe recorded.
                0 => {
                    out.push((Report::Ring, next(0)));
                    out.push((Report::Answer, next(1)));
                    let status = if rings { Some(CallStatus::Completed) } else { None };
                    out.push((
                        Report::Hangup {
                            cause,
                            source,
                            status,
                        },
                        next(2),
                    ));
                    if record {
                        out.push((Report::RecordStop(rec), next(3)));
                    }
                }
                // Never answered: ends from queued or ringing with a status the cause allows.
                1 => {
                    if rings {
                        out.push((Report::Ring, next(0)));
                    }
                    out.push((
                        Report::Hangup {
                            cause,
                            source,
                            status,
                        },
                        next(2),
                    ));
                }
                // Hung up through the API, before or after answer.
                _ => {
                    out.push((Report::Ring, next(0)));
                    if rings {
                        out.push((Report::Answer, next(1)));
                    }
                    out.push((Report::HangupByApi, next(2)));
                }
            }
            out
        })
}

// ---------------------------------------------------------------------------------------------
// Retry-After and backoff

/// `now` as a real clock can give it: any second chrono can represent.
fn clock() -> impl Strategy<Value = i64> {
    prop_oneof![
        DateTime::<Utc>::MIN_UTC.timestamp()..=DateTime::<Utc>::MAX_UTC.timestamp(),
        0i64..4_102_444_800,
    ]
}

/// An HTTP date (IMF-fixdate) for a second between 1970 and 9999.
fn http_date(unix: i64) -> String {
    DateTime::from_timestamp(unix, 0)
        .expect("in range")
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

fn policy() -> impl Strategy<Value = RetryPolicy> {
    (0u64..=86_400_000, 0.0f64..1.0, 0u32..10, 0u64..=600_000).prop_map(
        |(base_ms, jitter, max_retries, cap_ms)| RetryPolicy {
            max_retries,
            base: Duration::from_millis(base_ms),
            jitter,
            retry_after_cap: Duration::from_millis(cap_ms),
        },
    )
}

fn nominal(policy: &RetryPolicy, retry: u32) -> Duration {
    let exponent = retry.saturating_sub(1).min(30);
    policy
        .base
        .checked_mul(1 << exponent)
        .expect("a day times 2^30 fits")
}

// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    // --- numbers

    /// Generated E.164-style numbers, with or without `+`, are accepted.
    #[test]
    fn e164_numbers_are_accepted(number in "\\+?[0-9]{8,15}") {
        prop_assert!(is_valid_number(&number), "{}", number);
    }

    /// `sip:` URIs without whitespace or control characters, up to 255 bytes, are accepted.
    #[test]
    fn sip_uris_are_accepted(rest in "[!-~]{1,255}|[\\p{L}\\p{N}@.:;=_-]{1,60}") {
        prop_assume!(rest.len() <= 255);
        let input = format!("sip:{rest}");
        prop_assert!(is_valid_number(&input), "{}", input);
    }

    /// Any string: never a panic, and accepted exactly when the rule restated from §6 says so.
    #[test]
    fn numbers_follow_the_rule_and_never_panic(input in number_like()) {
        prop_assert_eq!(is_valid_number(&input), number_rule(&input), "{:?}", input);
    }

    /// A separator anywhere in a valid number, or a length outside 8–15, makes it invalid.
    #[test]
    fn separators_and_wrong_lengths_are_refused(
        number in "\\+?[0-9]{8,15}",
        at in any::<prop::sample::Index>(),
        sep in select(&[" ", "-", ".", "(", ")", "/", "\u{a0}", "+", "\u{ff11}"][..]),
        short in "\\+?[0-9]{0,7}",
        long in "\\+?[0-9]{16,30}",
    ) {
        let i = at.index(number.len() + 1).max(usize::from(number.starts_with('+')));
        let spaced = format!("{}{sep}{}", &number[..i], &number[i..]);
        prop_assume!(!(sep == "+" && i == 0));
        prop_assert!(!is_valid_number(&spaced), "{:?}", spaced);
        prop_assert!(!is_valid_number(&short), "{:?}", short);
        prop_assert!(!is_valid_number(&long), "{:?}", long);
    }

    // --- event filters

    /// `FilterName::parse` never panics and accepts exactly the eleven names of §3.1.
    #[test]
    fn filter_names_are_exactly_the_known_ones(input in filter_entry()) {
        let parsed = FilterName::parse(&input);
        prop_assert_eq!(parsed.is_ok(), KNOWN_FILTER_NAMES.contains(&input.as_str()), "{:?}", input);
        if let Err(err) = parsed {
            prop_assert_eq!(err, ValueError::UnknownEvent(input.clone()));
        }
    }

    /// A filter parses iff every entry is known; it keeps its entries as written (order and
    /// duplicates included), re-parses to itself, and admits exactly what §3.1 says.
    #[test]
    fn filters_round_trip_and_admit_what_the_spec_says(entries in proptest::collection::vec(filter_entry(), 0..6)) {
        let parsed = EventFilter::parse(&entries);
        match entries.iter().find(|e| !KNOWN_FILTER_NAMES.contains(&e.as_str())) {
            Some(unknown) => prop_assert_eq!(parsed, Err(ValueError::UnknownEvent(unknown.clone()))),
            None => {
                let filter = parsed.expect("all entries known");
                prop_assert_eq!(filter.written(), entries.as_slice());
                prop_assert_eq!(filter.is_empty(), entries.is_empty());
                prop_assert_eq!(EventFilter::parse(filter.written()), Ok(filter.clone()));
                for kind in EventKind::ALL {
                    for status in ALL_CALL_STATUS_NAMES {
                        let expected = entries.is_empty() || entries.iter().any(|e| entry_admits(e, kind, status));
                        prop_assert_eq!(filter.admits(kind, status), expected, "{:?} {} {}", entries, kind, status);
                    }
                }
            }
        }
    }

    /// Duplicating and reordering entries changes what is written, never what is admitted.
    #[test]
    fn duplicates_and_order_do_not_change_what_a_filter_admits(
        entries in proptest::collection::vec(select(&KNOWN_FILTER_NAMES[..]), 1..5),
        extra in proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
        rotate in any::<prop::sample::Index>(),
    ) {
        let mut shuffled: Vec<&str> = entries.clone();
        shuffled.extend(extra.iter().map(|i| entries[i.index(entries.len())]));
        let n = rotate.index(shuffled.len());
        shuffled.rotate_left(n);
        let a = EventFilter::parse(&entries).expect("known");
        let b = EventFilter::parse(&shuffled).expect("known");
        prop_assert_eq!(b.written().len(), shuffled.len(), "duplicates are kept as written");
        for kind in EventKind::ALL {
            for status in ALL_CALL_STATUS_NAMES {
                prop_assert_eq!(a.admits(kind, status), b.admits(kind, status));
            }
        }
    }

    /// Names are case-sensitive: flipping the case of any letter of a known name refuses it.
    #[test]
    fn filter_names_are_case_sensitive(variant in case_variant()) {
        prop_assert_eq!(FilterName::parse(&variant), Err(ValueError::UnknownEvent(variant.clone())));
        prop_assert!(EventFilter::parse(&["Ring".to_owned(), variant]).is_err());
    }

    // --- enum parsers

    /// `EventKind`, `CallStatus`, `Direction`, `Engine` and `HangupCause` parse exactly their
    /// own wire names and round-trip through `as_str` (and `Display` for `EventKind`).
    #[test]
    fn enum_parsers_round_trip_and_accept_nothing_else(
        input in prop_oneof![
            select(&["CallInitiated", "Ring", "StartApp", "Hangup", "RecordStop"][..]).prop_map(str::to_owned),
            select(&ALL_CALL_STATUS_NAMES[..]).prop_map(str::to_owned),
            select(&["inbound", "outbound", "simulated", "external"][..]).prop_map(str::to_owned),
            select(HangupCause::all_names().collect::<Vec<_>>()).prop_map(str::to_owned),
            case_variant(),
            "\\PC{0,20}",
        ]
    ) {
        match EventKind::parse(&input) {
            Some(kind) => {
                prop_assert_eq!(kind.as_str(), input.as_str());
                prop_assert_eq!(kind.to_string(), input.clone());
            }
            None => prop_assert!(EventKind::ALL.iter().all(|k| k.as_str() != input)),
        }
        match CallStatus::parse(&input) {
            Some(status) => prop_assert_eq!(status.as_str(), input.as_str()),
            None => prop_assert!(!ALL_CALL_STATUS_NAMES.contains(&input.as_str())),
        }
        match Direction::parse(&input) {
            Some(d) => prop_assert_eq!(d.as_str(), input.as_str()),
            None => prop_assert!(input != "inbound" && input != "outbound"),
        }
        match Engine::parse(&input) {
            Some(e) => prop_assert_eq!(e.as_str(), input.as_str()),
            None => prop_assert!(input != "simulated" && input != "external"),
        }
        match HangupCause::parse(&input) {
            Some(cause) => {
                prop_assert_eq!(cause.cause, input.as_str());
                prop_assert_eq!(HangupCause::known(cause.cause), cause);
            }
            None => prop_assert!(HangupCause::all_names().all(|n| n != input)),
        }
    }

    /// Every value of each enum round-trips through its wire name.
    #[test]
    fn every_enum_value_round_trips(
        kind in select(&EventKind::ALL[..]),
        status in select(&CallStatus::ALL[..]),
        cause in cause(),
    ) {
        prop_assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        prop_assert_eq!(CallStatus::parse(status.as_str()), Some(status));
        prop_assert_eq!(HangupCause::parse(cause.cause), Some(cause));
        prop_assert_eq!(status.is_final(), !matches!(status, CallStatus::Queued | CallStatus::Ringing | CallStatus::InProgress));
        prop_assert_eq!(FAILED_CALL_STATUSES.contains(&status.as_str()), UNANSWERED_ENDS.contains(&status));
    }

    /// HTTP methods are accepted in any case and stored upper-case; nothing else is a method.
    #[test]
    fn http_methods_parse_in_any_case(
        (name, case) in (select(&["GET", "POST"][..]), proptest::collection::vec(any::<bool>(), 4)),
        other in "\\PC{0,6}",
    ) {
        let written: String = name.chars().zip(case).map(|(c, low)| if low { c.to_ascii_lowercase() } else { c }).collect();
        prop_assert_eq!(HttpMethod::parse(&written).map(HttpMethod::as_str), Ok(name));
        let known = other.eq_ignore_ascii_case("get") || other.eq_ignore_ascii_case("post");
        prop_assert_eq!(HttpMethod::parse(&other).is_ok(), known);
    }

    // --- Retry-After

    /// No header value and no clock reading panics it.
    #[test]
    fn retry_after_never_panics(value in "\\PC{0,40}|[0-9 +-]{0,25}|[A-Za-z]{3}, [0-9]{1,2} [A-Za-z]{3} [0-9]{2,5} [0-9:]{8} [A-Z]{3}", now in clock()) {
        let _ = parse_retry_after(&value, now);
    }

    /// Integer seconds, with surrounding whitespace, give exactly that many seconds whatever
    /// the clock; negative or fractional numbers give `None`.
    #[test]
    fn retry_after_seconds_are_exact(
        seconds in any::<u64>(),
        pad in select(&["", " ", "\t", "  "][..]),
        negative in 1u64..1_000_000,
        fraction in 0u32..1000,
        now in clock(),
    ) {
        prop_assert_eq!(parse_retry_after(&format!("{pad}{seconds}{pad}"), now), Some(Duration::from_secs(seconds)));
        prop_assert_eq!(parse_retry_after(&format!("-{negative}"), now), None);
        prop_assert_eq!(parse_retry_after(&format!("{negative}.{fraction}"), now), None);
    }

    /// An HTTP date gives the time until it, and zero once it is past.
    #[test]
    fn retry_after_dates_give_the_time_until_them(
        when in 0i64..253_402_300_800,
        delta in -10_000_000i64..10_000_000,
    ) {
        let now = when - delta;
        let expected = Duration::from_secs(u64::try_from(delta).unwrap_or(0));
        prop_assert_eq!(parse_retry_after(&http_date(when), now), Some(expected), "{}", http_date(when));
    }

    // --- backoff and decide

    /// Within the configurable ranges (base up to a day, jitter in [0, 1)), retry `n`'s delay
    /// stays within base·2^(n−1)·(1 ± jitter), for every `n` and every sample in [−1, 1].
    #[test]
    fn backoff_stays_within_its_jitter_band(policy in policy(), retry in any::<u32>(), sample in -1.0f64..=1.0) {
        let delay = backoff(&policy, retry, sample);
        let nominal = nominal(&policy, retry);
        let low = nominal.mul_f64(1.0 - policy.jitter);
        let high = nominal.mul_f64(1.0 + policy.jitter);
        prop_assert!(low <= delay && delay <= high, "{:?} not in {:?}..={:?}", delay, low, high);
        let ratio = if nominal.is_zero() { 1.0 } else { delay.as_secs_f64() / nominal.as_secs_f64() };
        prop_assert!((ratio - 1.0).abs() <= policy.jitter + 1e-9, "{}", ratio);
    }

    /// The delay grows with the retry number and with the sample; a sample outside [−1, 1]
    /// (even NaN or infinite) never panics and is clamped.
    #[test]
    fn backoff_is_monotonic_and_total(policy in policy(), retry in 1u32..40, a in -1.0f64..=1.0, b in -1.0f64..=1.0, wild in any::<f64>()) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(backoff(&policy, retry, lo) <= backoff(&policy, retry, hi));
        prop_assert!(backoff(&policy, retry, a) <= backoff(&policy, retry + 1, a));
        let wild_delay = backoff(&policy, retry, wild);
        if wild.is_finite() {
            prop_assert_eq!(wild_delay, backoff(&policy, retry, wild.clamp(-1.0, 1.0)));
        }
        prop_assert!(wild_delay <= nominal(&policy, retry).mul_f64(1.0 + policy.jitter));
    }

    /// The retry policy: success delivers; a block never retries; each URL gets one attempt
    /// plus `max_retries` retries; `Retry-After` is honoured up to the cap.
    #[test]
    fn decide_follows_the_retry_policy(
        policy in policy(),
        attempts in 1u32..15,
        fallback in any::<bool>(),
        sample in -1.0f64..=1.0,
        asked in proptest::option::of(0u64..10_000_000),
    ) {
        let exhausted = if fallback { Decision::Fallback } else { Decision::Failed };
        prop_assert_eq!(decide(&policy, AttemptOutcome::Success, attempts, fallback, sample), Decision::Delivered);
        prop_assert_eq!(decide(&policy, AttemptOutcome::Blocked, attempts, fallback, sample), exhausted);
        let retry_after = asked.map(Duration::from_millis);
        let got = decide(&policy, AttemptOutcome::Failure { retry_after }, attempts, fallback, sample);
        let expected = if attempts > policy.max_retries {
            exhausted
        } else {
            Decision::Retry(match retry_after {
                Some(asked) => asked.min(policy.retry_after_cap),
                None => backoff(&policy, attempts, sample),
            })
        };
        prop_assert_eq!(got, expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Reports in any order and at any time: the call follows the §3 state machine; every
    /// accepted report takes the next sequence number; a refused one (duplicate, out of order,
    /// contradictory, or dated before the previous event) leaves the call exactly as it was.
    #[test]
    fn reports_follow_the_state_machine(reports in timed_reports()) {
        let mut call = new_call();
        let mut model = Model::new();
        let mut accepted = 0;
        for (report, at) in reports {
            let before = call.clone();
            let got = call.apply(report.clone(), at);
            let expected = model.apply(&report, at);
            match (&got, expected) {
                (Ok(kind), Ok(next)) => {
                    prop_assert_eq!(*kind, report.kind());
                    prop_assert_eq!(call.call_status, next.status, "{:?} at {}", report, at);
                    accepted += 1;
                    model = next;
                    if let Report::Hangup { cause, source, .. } = &report {
                        let hangup = call.hangup.clone().expect("ended");
                        prop_assert_eq!(&hangup.cause, cause);
                        prop_assert_eq!(&hangup.source, source);
                    }
                    if let Report::HangupByApi = report {
                        let hangup = call.hangup.clone().expect("ended");
                        let expected = if model.answered { "NORMAL_CLEARING" } else { "ORIGINATOR_CANCEL" };
                        prop_assert_eq!((hangup.cause.cause, hangup.source.as_str()), (expected, "API Request"));
                    }
                    if let Report::RecordStop(recording) = &report {
                        prop_assert_eq!(call.recording.as_ref(), Some(recording));
                    }
                    // The same report again is a duplicate: refused, nothing changes.
                    let after = call.clone();
                    let again = call.apply(report.clone(), at);
                    prop_assert!(matches!(again, Err(TransitionError::OutOfOrder { .. })), "duplicate {:?}: {:?}", report, again);
                    prop_assert_eq!(&call, &after);
                }
                (Err(err), Err(refusal)) => {
                    prop_assert_eq!(class(err), refusal, "{:?} at {}: {}", report, at, err);
                    prop_assert_eq!(&call, &before, "a refused report changed the call");
                }
                (got, expected) => {
                    prop_assert!(false, "{:?} at {} in {:?}: got {:?}, model says {:?}", report, at, before.call_status, got, expected);
                }
            }
            check_invariants(&call, accepted)?;
        }
    }

    /// A journey a well-behaved switch reports, in time order, is accepted report by report
    /// with gap-free sequence numbers 2, 3, 4…, and ends in a final state.
    #[test]
    fn valid_journeys_are_accepted_with_gap_free_sequences(journey in valid_journey()) {
        let mut call = new_call();
        for (i, (report, at)) in journey.iter().enumerate() {
            let got = call.apply(report.clone(), *at);
            prop_assert_eq!(got, Ok(report.kind()), "report {} of {:?}", i, journey);
            prop_assert_eq!(call.last_sequence, 2 + i as u32);
        }
        prop_assert!(call.call_status.is_final());
        check_invariants(&call, journey.len() as u32)?;
    }
}

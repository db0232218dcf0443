//! Calls and their state machine (PRODUCT.md §3): `queued → ringing → in-progress → completed`,
//! or from `queued`/`ringing` to a failed end. Every accepted report is one event; a report the
//! current state does not allow is refused and changes nothing.

use chrono::{DateTime, Utc};
use urlguard::CallbackUrl;

use crate::event::EventKind;
use crate::hangup::HangupCause;
use crate::ids::{AppId, AuthId, CallUuid, TrunkId};
use crate::values::HttpMethod;

/// `CallStatus` of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallStatus {
    Queued,
    Ringing,
    InProgress,
    Completed,
    Busy,
    NoAnswer,
    Failed,
    Timeout,
    Cancel,
}

impl CallStatus {
    pub const ALL: [CallStatus; 9] = [
        CallStatus::Queued,
        CallStatus::Ringing,
        CallStatus::InProgress,
        CallStatus::Completed,
        CallStatus::Busy,
        CallStatus::NoAnswer,
        CallStatus::Failed,
        CallStatus::Timeout,
        CallStatus::Cancel,
    ];

    pub fn parse(input: &str) -> Option<CallStatus> {
        CallStatus::ALL.into_iter().find(|s| s.as_str() == input)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Queued => "queued",
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in-progress",
            CallStatus::Completed => "completed",
            CallStatus::Busy => "busy",
            CallStatus::NoAnswer => "no-answer",
            CallStatus::Failed => "failed",
            CallStatus::Timeout => "timeout",
            CallStatus::Cancel => "cancel",
        }
    }

    /// The call has ended.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            CallStatus::Queued | CallStatus::Ringing | CallStatus::InProgress
        )
    }

    /// A final status of a call that was never answered.
    fn is_unanswered_end(self) -> bool {
        matches!(
            self,
            CallStatus::Busy
                | CallStatus::NoAnswer
                | CallStatus::Failed
                | CallStatus::Timeout
                | CallStatus::Cancel
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn parse(input: &str) -> Option<Direction> {
        match input {
            "inbound" => Some(Direction::Inbound),
            "outbound" => Some(Direction::Outbound),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// What reports a call's progress: the built-in simulated carrier, or a real switch through
/// the switch interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Simulated,
    External,
}

impl Engine {
    pub fn parse(input: &str) -> Option<Engine> {
        match input {
            "simulated" => Some(Engine::Simulated),
            "external" => Some(Engine::External),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Simulated => "simulated",
            Engine::External => "external",
        }
    }
}

/// A URL with the method it is called with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: CallbackUrl,
    pub method: HttpMethod,
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hangup {
    pub cause: HangupCause,
    /// `Callee`, `Caller`, `Vobiz`, `Carrier`, `API Request`, …
    pub source: String,
}

/// A recording, reported with `RecordStop`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    pub recording_id: String,
    pub url: String,
    pub duration_ms: u64,
    pub end_reason: String,
}

/// A call and the callback configuration it was placed with (level 1 and direct channels).
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub call_uuid: CallUuid,
    pub auth_id: AuthId,
    pub direction: Direction,
    pub from: String,
    pub to: String,
    pub engine: Engine,
    pub app_id: Option<AppId>,
    pub trunk_id: Option<TrunkId>,
    /// Level 1 of the hierarchy.
    pub status: Option<Target>,
    pub ring: Option<Target>,
    pub answer: Option<Target>,
    pub hangup_target: Option<Target>,
    pub time_limit_s: u32,
    pub ring_timeout_s: u32,
    pub record: bool,
    pub call_status: CallStatus,
    pub initiated_at: DateTime<Utc>,
    pub ringing_at: Option<DateTime<Utc>>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub hangup: Option<Hangup>,
    pub recording: Option<Recording>,
    /// Sequence number of the call's latest event (1 = `CallInitiated`).
    pub last_sequence: u32,
}

/// A progress report: from the switch interface, the simulated carrier or the hangup API.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    Ring,
    Answer,
    Hangup {
        cause: HangupCause,
        source: String,
        /// The final status when the reporter names one; otherwise derived from the cause.
        status: Option<CallStatus>,
    },
    RecordStop(Recording),
    /// `DELETE …/calls/{uuid}`: cancels before answer, clears after (PRODUCT.md §3).
    HangupByApi,
}

impl Report {
    pub fn kind(&self) -> EventKind {
        match self {
            Report::Ring => EventKind::Ring,
            Report::Answer => EventKind::StartApp,
            Report::Hangup { .. } | Report::HangupByApi => EventKind::Hangup,
            Report::RecordStop(_) => EventKind::RecordStop,
        }
    }
}

/// Why a report was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// Duplicate or out of order for the call's state (HTTP 409).
    #[error("{event} is not allowed while the call is {status}")]
    OutOfOrder { event: EventKind, status: &'static str },
    /// The report contradicts itself or the call (HTTP 422).
    #[error("{0}")]
    Inconsistent(String),
}

/// Defaults of a new call (PRODUCT.md §2.4).
pub const DEFAULT_TIME_LIMIT_S: u32 = 14_400;
pub const DEFAULT_RING_TIMEOUT_S: u32 = 120;

impl Call {
    /// A new call, `queued`, whose `CallInitiated` is event 1; no callback URLs, default limits.
    pub fn new(
        call_uuid: CallUuid,
        auth_id: AuthId,
        direction: Direction,
        from: String,
        to: String,
        engine: Engine,
        initiated_at: DateTime<Utc>,
    ) -> Call {
        Call {
            call_uuid,
            auth_id,
            direction,
            from,
            to,
            engine,
            app_id: None,
            trunk_id: None,
            status: None,
            ring: None,
            answer: None,
            hangup_target: None,
            time_limit_s: DEFAULT_TIME_LIMIT_S,
            ring_timeout_s: DEFAULT_RING_TIMEOUT_S,
            record: false,
            call_status: CallStatus::Queued,
            initiated_at,
            ringing_at: None,
            answered_at: None,
            ended_at: None,
            hangup: None,
            recording: None,
            last_sequence: 1,
        }
    }

    /// Applies a report at time `at`: the new state, or why not. The call is unchanged on error.
    ///
    /// # Errors
    /// `OutOfOrder` for a duplicate or a report the state does not allow; `Inconsistent` for a
    /// hangup status that contradicts whether the call was answered, or a report dated before
    /// the call's previous event.
    pub fn apply(&mut self, report: Report, at: DateTime<Utc>) -> Result<EventKind, TransitionError> {
        let mut next = self.clone();
        let kind = next.transition(report, at)?;
        // Reported progress cannot go back in time. Registration is not compared: a switch may
        // register a call after its first events.
        let latest = [self.ringing_at, self.answered_at, self.ended_at]
            .into_iter()
            .flatten()
            .max();
        if let Some(latest) = latest.filter(|latest| at < *latest) {
            return Err(TransitionError::Inconsistent(format!(
                "at {} is before the call's previous event ({})",
                at.to_rfc3339(),
                latest.to_rfc3339()
            )));
        }
        *self = next;
        Ok(kind)
    }

    fn transition(&mut self, report: Report, at: DateTime<Utc>) -> Result<EventKind, TransitionError> {
        let kind = report.kind();
        let out_of_order = || TransitionError::OutOfOrder {
            event: kind,
            status: self.call_status.as_str(),
        };
        let report = match report {
            Report::HangupByApi => api_hangup(self.call_status),
            other => other,
        };

        match (self.call_status, report) {
            (CallStatus::Queued, Report::Ring) => {
                self.call_status = CallStatus::Ringing;
                self.ringing_at = Some(at);
            }
            (CallStatus::Ringing, Report::Answer) => {
                self.call_status = CallStatus::InProgress;
                self.answered_at = Some(at);
            }
            (
                CallStatus::Queued | CallStatus::Ringing,
                Report::Hangup {
                    cause,
                    source,
                    status,
                },
            ) => {
                let status = status.unwrap_or_else(|| unanswered_status(cause));
                if !status.is_unanswered_end() {
                    return Err(TransitionError::Inconsistent(format!(
                        "call_status {} is not possible for a call that was never answered; use busy, no-answer, failed, timeout or cancel",
                        status.as_str()
                    )));
                }
                self.end(status, Hangup { cause, source }, at);
            }
            (
                CallStatus::InProgress,
                Report::Hangup {
                    cause,
                    source,
                    status,
                },
            ) => {
                if status.is_some_and(|s| s != CallStatus::Completed) {
                    return Err(TransitionError::Inconsistent(
                        "an answered call ends as completed".to_owned(),
                    ));
                }
                self.end(CallStatus::Completed, Hangup { cause, source }, at);
            }
            (status, Report::RecordStop(recording))
                if status.is_final() && self.answered_at.is_some() && self.recording.is_none() =>
            {
                self.recording = Some(recording);
            }
            _ => return Err(out_of_order()),
        }
        self.last_sequence += 1;
        Ok(kind)
    }

    fn end(&mut self, status: CallStatus, hangup: Hangup, at: DateTime<Utc>) {
        self.call_status = status;
        self.ended_at = Some(at);
        self.hangup = Some(hangup);
    }

    /// Talk time in whole seconds, rounded up (`Duration`); 0 for an unanswered call.
    pub fn duration_s(&self) -> u64 {
        match (self.answered_at, self.ended_at) {
            (Some(answered), Some(ended)) => {
                let ms = u64::try_from((ended - answered).num_milliseconds()).unwrap_or(0);
                ms.div_ceil(1000)
            }
            _ => 0,
        }
    }

    /// Billed seconds (`BillDuration`): per-second billing, so equal to the duration.
    pub fn bill_duration_s(&self) -> u64 {
        self.duration_s()
    }
}

/// The hangup a `DELETE` means in `status`: before answer `ORIGINATOR_CANCEL`, after answer
/// `NORMAL_CLEARING`, both from `API Request`. On a finished call it stays `HangupByApi`, which
/// no state accepts.
fn api_hangup(status: CallStatus) -> Report {
    let cause = match status {
        CallStatus::Queued | CallStatus::Ringing => "ORIGINATOR_CANCEL",
        CallStatus::InProgress => "NORMAL_CLEARING",
        _ => return Report::HangupByApi,
    };
    Report::Hangup {
        cause: HangupCause::known(cause),
        source: "API Request".to_owned(),
        status: None,
    }
}

/// The final status a cause implies for a call that was never answered.
fn unanswered_status(cause: HangupCause) -> CallStatus {
    match cause.cause {
        "USER_BUSY" => CallStatus::Busy,
        "NO_ANSWER" | "RING_TIMEOUT" => CallStatus::NoAnswer,
        "ORIGINATOR_CANCEL" => CallStatus::Cancel,
        _ => CallStatus::Failed,
    }
}

/// A telephone number (`+` optional, then 8–15 digits) or a `sip:` URI (PRODUCT.md §6).
pub fn is_valid_number(input: &str) -> bool {
    if let Some(rest) = input.strip_prefix("sip:") {
        return !rest.is_empty()
            && rest.len() <= 255
            && !rest
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control());
    }
    let digits = input.strip_prefix('+').unwrap_or(input);
    (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).expect("valid")
    }

    fn call() -> Call {
        Call::new(
            CallUuid::from_random(1),
            AuthId::generate(false, [0; 8]),
            Direction::Outbound,
            "+14155551234".into(),
            "+14155555678".into(),
            Engine::External,
            at(0),
        )
    }

    fn hangup(cause: &'static str, status: Option<CallStatus>) -> Report {
        Report::Hangup {
            cause: HangupCause::known(cause),
            source: "Callee".into(),
            status,
        }
    }

    fn recording() -> Report {
        Report::RecordStop(Recording {
            recording_id: "r".into(),
            url: "https://x".into(),
            duration_ms: 1,
            end_reason: "HungUp".into(),
        })
    }

    #[test]
    fn a_completed_call_walks_the_happy_path_and_counts_its_events() {
        let mut c = call();
        assert_eq!(c.apply(Report::Ring, at(1)), Ok(EventKind::Ring));
        assert_eq!(c.apply(Report::Answer, at(3)), Ok(EventKind::StartApp));
        assert_eq!(
            c.apply(hangup("NORMAL_CLEARING", None), at(8)),
            Ok(EventKind::Hangup)
        );
        assert_eq!(c.apply(recording(), at(8)), Ok(EventKind::RecordStop));
        assert_eq!(c.call_status, CallStatus::Completed);
        assert_eq!(c.last_sequence, 5);
        assert_eq!(c.duration_s(), 5);
    }

    #[test]
    fn duplicates_and_out_of_order_reports_are_refused_without_change() {
        let mut c = call();
        assert!(matches!(
            c.apply(Report::Answer, at(1)),
            Err(TransitionError::OutOfOrder { .. })
        ));
        c.apply(Report::Ring, at(1)).expect("legal");
        let before = c.clone();
        for report in [Report::Ring, recording()] {
            assert!(matches!(
                c.apply(report, at(2)),
                Err(TransitionError::OutOfOrder { .. })
            ));
            assert_eq!(c, before);
        }
        c.apply(hangup("USER_BUSY", None), at(2)).expect("legal");
        let ended = c.clone();
        for report in [
            Report::Ring,
            Report::Answer,
            hangup("NORMAL_CLEARING", None),
            recording(),
        ] {
            assert!(c.apply(report, at(3)).is_err());
            assert_eq!(c, ended);
        }
    }

    #[test]
    fn an_unanswered_hangup_takes_its_status_from_the_cause() {
        for (cause, status) in [
            ("USER_BUSY", CallStatus::Busy),
            ("NO_ANSWER", CallStatus::NoAnswer),
            ("ORIGINATOR_CANCEL", CallStatus::Cancel),
            ("UNALLOCATED_NUMBER", CallStatus::Failed),
            ("SERVICE_UNAVAILABLE", CallStatus::Failed),
        ] {
            let mut c = call();
            c.apply(hangup(cause, None), at(1)).expect("legal");
            assert_eq!(c.call_status, status, "{cause}");
            assert_eq!(c.duration_s(), 0);
        }
    }

    #[test]
    fn a_hangup_status_that_contradicts_the_answer_state_is_inconsistent() {
        let mut c = call();
        let err = c.apply(hangup("NORMAL_CLEARING", Some(CallStatus::Completed)), at(1));
        assert!(matches!(err, Err(TransitionError::Inconsistent(_))));
        c.apply(Report::Ring, at(1)).expect("legal");
        c.apply(Report::Answer, at(2)).expect("legal");
        let err = c.apply(hangup("USER_BUSY", Some(CallStatus::Busy)), at(3));
        assert!(matches!(err, Err(TransitionError::Inconsistent(_))));
        assert_eq!(c.call_status, CallStatus::InProgress);
    }

    #[test]
    fn a_report_dated_before_the_previous_event_is_inconsistent() {
        let mut c = call();
        c.apply(Report::Ring, at(5)).expect("legal");
        let before = c.clone();
        assert!(matches!(
            c.apply(Report::Answer, at(4)),
            Err(TransitionError::Inconsistent(_))
        ));
        assert_eq!(c, before);
        assert_eq!(
            c.apply(Report::Answer, at(5)),
            Ok(EventKind::StartApp),
            "the same instant is fine"
        );
    }

    #[test]
    fn an_api_hangup_cancels_before_answer_and_completes_after() {
        let mut ringing = call();
        ringing.apply(Report::Ring, at(1)).expect("legal");
        ringing.apply(Report::HangupByApi, at(2)).expect("legal");
        assert_eq!(ringing.call_status, CallStatus::Cancel);
        let hangup = ringing.hangup.clone().expect("ended");
        assert_eq!((hangup.cause.code, hangup.source.as_str()), (1000, "API Request"));
        assert!(matches!(
            ringing.apply(Report::HangupByApi, at(3)),
            Err(TransitionError::OutOfOrder { .. })
        ));

        let mut answered = call();
        answered.apply(Report::Ring, at(1)).expect("legal");
        answered.apply(Report::Answer, at(2)).expect("legal");
        answered.apply(Report::HangupByApi, at(4)).expect("legal");
        assert_eq!(answered.call_status, CallStatus::Completed);
        assert_eq!(answered.hangup.expect("ended").cause.code, 4000);
    }

    #[test]
    fn numbers_are_e164_digits_or_sip_uris() {
        for good in [
            "+14155551234",
            "14155551234",
            "12345678",
            "+123456789012345",
            "sip:alice@example.com",
        ] {
            assert!(is_valid_number(good), "{good}");
        }
        for bad in [
            "",
            "+1234567",
            "1234567890123456",
            "+1 415 555 1234",
            "415-555-1234",
            "sip:",
            "tel:+1415",
        ] {
            assert!(!is_valid_number(bad), "{bad}");
        }
    }
}

//! The form fields a callback carries (PRODUCT.md §4.1), as a pure function of the call (as it
//! stands right after the event) and the event. POST sends them form-encoded, GET in the query
//! string; the order here is the order on the wire.

use chrono::{DateTime, Utc};

use crate::call::Call;
use crate::event::EventKind;
use crate::values::Timezone;

/// `StartTime`/`AnswerTime`/`EndTime`: the account's time zone, `yyyy-MM-dd HH:mm:ss`.
pub fn local_time(time: DateTime<Utc>, timezone: Timezone) -> String {
    time.with_timezone(&timezone.tz())
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// The fields of one event's callback. `at` is when the event happened (`timestamp`).
pub fn callback_fields(
    call: &Call,
    kind: EventKind,
    at: DateTime<Utc>,
    timezone: Timezone,
) -> Vec<(&'static str, String)> {
    let call_uuid = call.call_uuid.to_string();
    let mut fields = vec![
        ("Event", kind.as_str().to_owned()),
        ("CallUUID", call_uuid.clone()),
        ("RequestUUID", call_uuid),
        ("From", call.from.clone()),
        ("To", call.to.clone()),
        ("Direction", call.direction.as_str().to_owned()),
        ("CallStatus", call.call_status.as_str().to_owned()),
        (
            "timestamp",
            at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        ),
        ("auth_id", call.auth_id.to_string()),
        (
            "SessionStart",
            call.initiated_at.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        ),
    ];
    if matches!(kind, EventKind::Hangup | EventKind::RecordStop) {
        if let Some(hangup) = &call.hangup {
            fields.extend([
                ("HangupCause", hangup.cause.cause.to_owned()),
                ("HangupCauseCode", hangup.cause.code.to_string()),
                ("HangupCauseName", hangup.cause.name.to_owned()),
                ("HangupSource", hangup.source.clone()),
                ("Duration", call.duration_s().to_string()),
                ("BillDuration", call.bill_duration_s().to_string()),
                ("StartTime", local_time(call.initiated_at, timezone)),
                (
                    "AnswerTime",
                    call.answered_at
                        .map(|t| local_time(t, timezone))
                        .unwrap_or_default(),
                ),
                (
                    "EndTime",
                    call.ended_at.map(|t| local_time(t, timezone)).unwrap_or_default(),
                ),
            ]);
        }
    }
    if kind == EventKind::RecordStop {
        if let Some(recording) = &call.recording {
            fields.extend([
                ("RecordingID", recording.recording_id.clone()),
                ("RecordUrl", recording.url.clone()),
                (
                    "RecordingDuration",
                    recording.duration_ms.div_ceil(1000).to_string(),
                ),
                ("RecordingDurationMs", recording.duration_ms.to_string()),
                ("RecordingEndReason", recording.end_reason.clone()),
            ]);
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{Direction, Engine, Recording, Report};
    use crate::hangup::HangupCause;
    use crate::ids::{AuthId, CallUuid};

    const UUID: &str = "6f1c2a4e-0b7d-4c1e-9f3a-2d5e8b7c1a90";

    fn at(ms: i64) -> DateTime<Utc> {
        // 2026-04-02 12:00:00 UTC
        DateTime::from_timestamp_millis(1_775_131_200_000 + ms).expect("valid")
    }

    fn call() -> Call {
        Call::new(
            CallUuid::parse(UUID).expect("valid"),
            AuthId::parse("MA_ABCDEFGH").expect("valid"),
            Direction::Outbound,
            "+14155551234".into(),
            "14155555678".into(),
            Engine::Simulated,
            at(0),
        )
    }

    fn fields(call: &Call, kind: EventKind, at: DateTime<Utc>, tz: &str) -> Vec<(&'static str, String)> {
        callback_fields(call, kind, at, Timezone::parse(tz).expect("valid"))
    }

    fn common(event: &str, status: &str, timestamp: &str) -> Vec<(&'static str, String)> {
        vec![
            ("Event", event.into()),
            ("CallUUID", UUID.into()),
            ("RequestUUID", UUID.into()),
            ("From", "+14155551234".into()),
            ("To", "14155555678".into()),
            ("Direction", "outbound".into()),
            ("CallStatus", status.into()),
            ("timestamp", timestamp.into()),
            ("auth_id", "MA_ABCDEFGH".into()),
            ("SessionStart", "2026-04-02 12:00:00.000000".into()),
        ]
    }

    fn hangup(cause: &'static str) -> Report {
        Report::Hangup {
            cause: HangupCause::known(cause),
            source: "Callee".into(),
            status: None,
        }
    }

    #[test]
    fn ring_and_start_app_carry_the_common_fields_only() {
        let mut c = call();
        c.apply(Report::Ring, at(200)).expect("legal");
        assert_eq!(
            fields(&c, EventKind::Ring, at(200), "UTC"),
            common("Ring", "ringing", "2026-04-02T12:00:00.200000Z")
        );
        c.apply(Report::Answer, at(1200)).expect("legal");
        assert_eq!(
            fields(&c, EventKind::StartApp, at(1200), "UTC"),
            common("StartApp", "in-progress", "2026-04-02T12:00:01.200000Z")
        );
    }

    #[test]
    fn an_answered_hangup_carries_durations_and_local_times() {
        let mut c = call();
        c.apply(Report::Ring, at(0)).expect("legal");
        c.apply(Report::Answer, at(1000)).expect("legal");
        c.apply(hangup("NORMAL_CLEARING"), at(6500)).expect("legal");
        let mut expected = common("Hangup", "completed", "2026-04-02T12:00:06.500000Z");
        expected.extend([
            ("HangupCause", "NORMAL_CLEARING".into()),
            ("HangupCauseCode", "4000".into()),
            ("HangupCauseName", "Normal Hangup".into()),
            ("HangupSource", "Callee".into()),
            ("Duration", "6".into()),
            ("BillDuration", "6".into()),
            ("StartTime", "2026-04-02 17:30:00".into()),
            ("AnswerTime", "2026-04-02 17:30:01".into()),
            ("EndTime", "2026-04-02 17:30:06".into()),
        ]);
        assert_eq!(fields(&c, EventKind::Hangup, at(6500), "Asia/Kolkata"), expected);
    }

    #[test]
    fn unanswered_hangups_have_zero_duration_and_an_empty_answer_time() {
        let cases = [
            ("USER_BUSY", "busy", "3010", "Busy Line", true),
            ("NO_ANSWER", "no-answer", "3000", "No Answer", true),
            (
                "UNALLOCATED_NUMBER",
                "failed",
                "3050",
                "Unallocated number",
                false,
            ),
            ("ORIGINATOR_CANCEL", "cancel", "1000", "Canceled", true),
        ];
        for (cause, status, code, name, rings) in cases {
            let mut c = call();
            if rings {
                c.apply(Report::Ring, at(0)).expect("legal");
            }
            c.apply(hangup(cause), at(2000)).expect("legal");
            let mut expected = common("Hangup", status, "2026-04-02T12:00:02.000000Z");
            expected.extend([
                ("HangupCause", cause.into()),
                ("HangupCauseCode", code.into()),
                ("HangupCauseName", name.into()),
                ("HangupSource", "Callee".into()),
                ("Duration", "0".into()),
                ("BillDuration", "0".into()),
                ("StartTime", "2026-04-02 12:00:00".into()),
                ("AnswerTime", String::new()),
                ("EndTime", "2026-04-02 12:00:02".into()),
            ]);
            assert_eq!(
                fields(&c, EventKind::Hangup, at(2000), "UTC"),
                expected,
                "{cause}"
            );
        }
    }

    #[test]
    fn record_stop_adds_the_recording_fields() {
        let mut c = call();
        c.apply(Report::Ring, at(0)).expect("legal");
        c.apply(Report::Answer, at(1000)).expect("legal");
        c.apply(hangup("NORMAL_CLEARING"), at(3500)).expect("legal");
        c.apply(
            Report::RecordStop(Recording {
                recording_id: "rec-1".into(),
                url: "https://media.example.com/rec-1.mp3".into(),
                duration_ms: 2500,
                end_reason: "HungUp".into(),
            }),
            at(3500),
        )
        .expect("legal");
        let got = fields(&c, EventKind::RecordStop, at(3500), "UTC");
        let tail: Vec<_> = got.iter().skip(got.len() - 5).cloned().collect();
        assert_eq!(
            tail,
            [
                ("RecordingID", "rec-1".to_owned()),
                ("RecordUrl", "https://media.example.com/rec-1.mp3".to_owned()),
                ("RecordingDuration", "3".to_owned()),
                ("RecordingDurationMs", "2500".to_owned()),
                ("RecordingEndReason", "HungUp".to_owned()),
            ]
        );
        assert!(got
            .iter()
            .any(|(k, v)| *k == "HangupCause" && v == "NORMAL_CLEARING"));
        assert_eq!(got[0], ("Event", "RecordStop".to_owned()));
    }
}

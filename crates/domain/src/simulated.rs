//! The simulated carrier's script (PRODUCT.md §3, §6): given a call as it stands, the next
//! report and when it is due. Outcomes follow the last three digits of `to`. Because the plan is
//! computed from the stored call times, a restarted server resumes unfinished calls where their
//! timeline says they are.

use chrono::{DateTime, TimeDelta, Utc};

use crate::call::{Call, CallStatus, Recording, Report};
use crate::hangup::HangupCause;

/// Simulated ring and talk times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimTimings {
    pub ring_ms: u64,
    pub talk_ms: u64,
}

fn ms(value: u64) -> TimeDelta {
    TimeDelta::milliseconds(i64::try_from(value).unwrap_or(i64::MAX / 1_000_000))
}

fn hangup(cause: &'static str, source: &str) -> Report {
    Report::Hangup {
        cause: HangupCause::known(cause),
        source: source.to_owned(),
        status: None,
    }
}

/// The next step of a simulated call, or `None` when its script is done.
pub fn next_step(call: &Call, timings: SimTimings) -> Option<(DateTime<Utc>, Report)> {
    let suffix = call.to.get(call.to.len().saturating_sub(3)..).unwrap_or("");
    match call.call_status {
        CallStatus::Queued => Some(match suffix {
            "404" => (call.initiated_at, hangup("UNALLOCATED_NUMBER", "Carrier")),
            "503" => (call.initiated_at, hangup("SERVICE_UNAVAILABLE", "Carrier")),
            _ => (call.initiated_at, Report::Ring),
        }),
        CallStatus::Ringing => {
            let rang = call.ringing_at.unwrap_or(call.initiated_at);
            let deadline = rang + ms(u64::from(call.ring_timeout_s) * 1000);
            let planned = match suffix {
                "480" => None,
                "486" => Some((rang + ms(timings.ring_ms), hangup("USER_BUSY", "Callee"))),
                _ => Some((rang + ms(timings.ring_ms), Report::Answer)),
            };
            Some(match planned {
                Some((when, report)) if when < deadline => (when, report),
                _ => (deadline, hangup("NO_ANSWER", "Vobiz")),
            })
        }
        CallStatus::InProgress => {
            let answered = call.answered_at.unwrap_or(call.initiated_at);
            let limit_ms = u64::from(call.time_limit_s) * 1000;
            Some(if limit_ms <= timings.talk_ms {
                (answered + ms(limit_ms), hangup("ALLOTTED_TIMEOUT", "Vobiz"))
            } else {
                (
                    answered + ms(timings.talk_ms),
                    hangup("NORMAL_CLEARING", "Callee"),
                )
            })
        }
        _ => {
            let (answered, ended) = (call.answered_at?, call.ended_at?);
            if !call.record || call.recording.is_some() {
                return None;
            }
            let duration_ms = u64::try_from((ended - answered).num_milliseconds()).unwrap_or(0);
            let recording_id = call.call_uuid.to_string();
            Some((
                ended,
                Report::RecordStop(Recording {
                    url: format!("https://recordings.simulated.invalid/{recording_id}.mp3"),
                    recording_id,
                    duration_ms,
                    end_reason: "HungUp".to_owned(),
                }),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::{Direction, Engine};
    use crate::event::EventKind;
    use crate::ids::{AuthId, CallUuid};

    const TIMINGS: SimTimings = SimTimings {
        ring_ms: 1000,
        talk_ms: 5000,
    };

    fn call(to: &str) -> Call {
        Call::new(
            CallUuid::from_random(7),
            AuthId::generate(false, [0; 8]),
            Direction::Outbound,
            "+14155551234".into(),
            to.into(),
            Engine::Simulated,
            DateTime::from_timestamp(1_700_000_000, 0).expect("valid"),
        )
    }

    /// Runs the script to the end: (ms after start, event, status after it, cause).
    fn run(mut c: Call) -> Vec<(i64, EventKind, &'static str, Option<&'static str>)> {
        let start = c.initiated_at;
        let mut steps = Vec::new();
        while let Some((when, report)) = next_step(&c, TIMINGS) {
            let kind = c.apply(report, when).expect("the script only makes legal moves");
            steps.push((
                (when - start).num_milliseconds(),
                kind,
                c.call_status.as_str(),
                c.hangup.as_ref().map(|h| h.cause.cause),
            ));
            assert!(steps.len() < 10, "the script must end");
        }
        steps
    }

    #[test]
    fn each_destination_suffix_has_its_outcome() {
        use EventKind::*;
        assert_eq!(
            run(call("+14155550100")),
            [
                (0, Ring, "ringing", None),
                (1000, StartApp, "in-progress", None),
                (6000, Hangup, "completed", Some("NORMAL_CLEARING"))
            ]
        );
        assert_eq!(
            run(call("+14155550486")),
            [
                (0, Ring, "ringing", None),
                (1000, Hangup, "busy", Some("USER_BUSY"))
            ]
        );
        assert_eq!(
            run(call("+14155550480")),
            [
                (0, Ring, "ringing", None),
                (120_000, Hangup, "no-answer", Some("NO_ANSWER"))
            ]
        );
        assert_eq!(
            run(call("+14155550404")),
            [(0, Hangup, "failed", Some("UNALLOCATED_NUMBER"))]
        );
        assert_eq!(
            run(call("+14155550503")),
            [(0, Hangup, "failed", Some("SERVICE_UNAVAILABLE"))]
        );
    }

    #[test]
    fn time_limit_and_ring_timeout_cut_the_call_short() {
        let mut limited = call("+14155550100");
        limited.time_limit_s = 2;
        let steps = run(limited);
        assert_eq!(
            steps.last(),
            Some(&(3000, EventKind::Hangup, "completed", Some("ALLOTTED_TIMEOUT")))
        );

        let mut impatient = call("+14155550100");
        impatient.ring_timeout_s = 0;
        let steps = run(impatient);
        assert_eq!(
            steps.last(),
            Some(&(0, EventKind::Hangup, "no-answer", Some("NO_ANSWER")))
        );
    }

    #[test]
    fn a_recorded_answered_call_ends_with_record_stop() {
        let mut recorded = call("+14155550100");
        recorded.record = true;
        let steps = run(recorded);
        assert_eq!(
            steps.last(),
            Some(&(6000, EventKind::RecordStop, "completed", Some("NORMAL_CLEARING")))
        );
        let mut busy = call("+14155550486");
        busy.record = true;
        assert_eq!(
            run(busy).last().map(|s| s.1),
            Some(EventKind::Hangup),
            "nothing was recorded"
        );
    }
}

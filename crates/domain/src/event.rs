//! Call event kinds and the event filters of PRODUCT.md §3.1.
//!
//! A filter is stored as written (the API returns it unchanged) together with its parsed names,
//! so `callback_events: ["call.answered"]` round-trips while still matching `StartApp`.

use std::fmt;

use crate::values::ValueError;

/// An event of a call, by its wire name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    CallInitiated,
    Ring,
    StartApp,
    Hangup,
    RecordStop,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::CallInitiated,
        EventKind::Ring,
        EventKind::StartApp,
        EventKind::Hangup,
        EventKind::RecordStop,
    ];

    /// Parses a wire name exactly (as the switch interface reports it).
    pub fn parse(input: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|kind| kind.as_str() == input)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::CallInitiated => "CallInitiated",
            EventKind::Ring => "Ring",
            EventKind::StartApp => "StartApp",
            EventKind::Hangup => "Hangup",
            EventKind::RecordStop => "RecordStop",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One name in a filter: an event, or `call.failed` (a Hangup that ended the call unsuccessfully).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterName {
    Event(EventKind),
    CallFailed,
}

/// The `CallStatus` values that make a Hangup count as `call.failed`.
pub const FAILED_CALL_STATUSES: [&str; 5] = ["busy", "no-answer", "failed", "timeout", "cancel"];

impl FilterName {
    pub fn parse(input: &str) -> Result<FilterName, ValueError> {
        let kind = match input {
            "call.initiated" => EventKind::CallInitiated,
            "call.ringing" => EventKind::Ring,
            "call.answered" => EventKind::StartApp,
            "call.completed" => EventKind::Hangup,
            "recording.completed" => EventKind::RecordStop,
            "call.failed" => return Ok(FilterName::CallFailed),
            other => EventKind::parse(other).ok_or_else(|| ValueError::UnknownEvent(other.to_owned()))?,
        };
        Ok(FilterName::Event(kind))
    }

    fn admits(self, kind: EventKind, call_status: &str) -> bool {
        match self {
            FilterName::Event(wanted) => wanted == kind,
            FilterName::CallFailed => {
                kind == EventKind::Hangup && FAILED_CALL_STATUSES.contains(&call_status)
            }
        }
    }
}

/// An event filter of one level. Empty admits every event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventFilter {
    written: Vec<String>,
    names: Vec<FilterName>,
}

impl EventFilter {
    /// Parses a filter; the error names the first unknown entry.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<EventFilter, ValueError> {
        let names = entries
            .iter()
            .map(|entry| FilterName::parse(entry.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let written = entries.iter().map(|e| e.as_ref().to_owned()).collect();
        Ok(EventFilter { written, names })
    }

    /// The filter as the user wrote it.
    pub fn written(&self) -> &[String] {
        &self.written
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Whether an event with this `CallStatus` passes the filter.
    pub fn admits(&self, kind: EventKind, call_status: &str) -> bool {
        self.names.is_empty() || self.names.iter().any(|n| n.admits(kind, call_status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(filter: &[&str], kind: EventKind, call_status: &str, expected: bool) {
        let parsed = EventFilter::parse(filter).expect("test filters are valid");
        assert_eq!(
            parsed.admits(kind, call_status),
            expected,
            "{filter:?} admits {kind} ({call_status})"
        );
    }

    #[test]
    fn an_empty_filter_admits_every_event() {
        for kind in EventKind::ALL {
            check(&[], kind, "completed", true);
        }
    }

    #[test]
    fn aliases_match_their_events() {
        check(&["call.initiated"], EventKind::CallInitiated, "queued", true);
        check(&["call.ringing"], EventKind::Ring, "ringing", true);
        check(&["call.answered"], EventKind::StartApp, "in-progress", true);
        check(&["call.completed"], EventKind::Hangup, "completed", true);
        check(&["recording.completed"], EventKind::RecordStop, "completed", true);
        check(&["call.answered"], EventKind::Hangup, "completed", false);
    }

    #[test]
    fn call_failed_admits_only_unsuccessful_hangups() {
        for status in FAILED_CALL_STATUSES {
            check(&["call.failed"], EventKind::Hangup, status, true);
        }
        check(&["call.failed"], EventKind::Hangup, "completed", false);
        check(&["call.failed"], EventKind::Ring, "busy", false);
        check(&["call.failed", "Hangup"], EventKind::Hangup, "completed", true);
    }

    #[test]
    fn unknown_names_are_refused_by_name() {
        assert_eq!(
            EventFilter::parse(&["Ring", "conference.started"]),
            Err(ValueError::UnknownEvent("conference.started".into()))
        );
        assert!(
            EventFilter::parse(&["ring"]).is_err(),
            "wire names are case-sensitive"
        );
    }

    #[test]
    fn a_filter_is_kept_as_written() {
        let filter = EventFilter::parse(&["call.answered", "Hangup"]).expect("valid");
        assert_eq!(filter.written(), ["call.answered", "Hangup"]);
    }
}

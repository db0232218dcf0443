//! Callback resolution (PRODUCT.md §3.2–3.3): where each event of a call goes.
//!
//! The status channel goes to the **most specific level that has a URL** — call `status_url`,
//! application `callback_url`, trunk `status_callback`, account `default_callback_url` — with
//! that level's method, fallback and filter. Levels are never merged: a filter that excludes
//! the event makes it `filtered`, it does not fall through. The direct channels (`ring_url`,
//! `answer_url`, `hangup_url`) receive their event in addition, unfiltered.

use urlguard::CallbackUrl;

use crate::call::Target;
use crate::event::{EventFilter, EventKind};
use crate::values::HttpMethod;

/// A level of the hierarchy, most specific first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Call,
    Application,
    Trunk,
    Account,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Call => "call",
            Level::Application => "application",
            Level::Trunk => "trunk",
            Level::Account => "account",
        }
    }

    pub fn parse(input: &str) -> Option<Level> {
        [Level::Call, Level::Application, Level::Trunk, Level::Account]
            .into_iter()
            .find(|l| l.as_str() == input)
    }

    /// The name of this level's URL field, for reasons people read.
    fn url_field(self) -> &'static str {
        match self {
            Level::Call => "status_url",
            Level::Application => "callback_url",
            Level::Trunk => "status_callback",
            Level::Account => "default_callback_url",
        }
    }
}

/// One level's status-callback settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LevelConfig {
    pub url: Option<CallbackUrl>,
    pub method: HttpMethod,
    /// Only applications have one.
    pub fallback: Option<CallbackUrl>,
    pub filter: EventFilter,
}

/// The four levels as they stand when an event is created; `None` where the call has no
/// such level (no application, no trunk).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Hierarchy {
    pub call: Option<LevelConfig>,
    pub application: Option<LevelConfig>,
    pub trunk: Option<LevelConfig>,
    pub account: Option<LevelConfig>,
}

/// What happens to an event on a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Queued for delivery (`pending`).
    Send,
    /// The winning level's filter excludes it (`filtered`).
    Filtered,
    /// No level has a URL (`unrouted`, level `none`).
    Unrouted,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Send => "send",
            Verdict::Filtered => "filtered",
            Verdict::Unrouted => "unrouted",
        }
    }
}

/// Where a channel of an event goes, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    pub level: Option<Level>,
    pub url: Option<CallbackUrl>,
    pub method: HttpMethod,
    pub fallback: Option<CallbackUrl>,
    pub verdict: Verdict,
    pub reason: String,
}

/// Resolves the status channel of one event.
pub fn resolve(hierarchy: &Hierarchy, kind: EventKind, call_status: &str) -> Resolution {
    let levels = [
        (Level::Call, &hierarchy.call),
        (Level::Application, &hierarchy.application),
        (Level::Trunk, &hierarchy.trunk),
        (Level::Account, &hierarchy.account),
    ];
    let winner = levels
        .into_iter()
        .find_map(|(level, config)| config.as_ref().filter(|c| c.url.is_some()).map(|c| (level, c)));
    let Some((level, config)) = winner else {
        return Resolution {
            level: None,
            url: None,
            method: HttpMethod::default(),
            fallback: None,
            verdict: Verdict::Unrouted,
            reason: "no level has a callback URL".to_owned(),
        };
    };
    let admitted = config.filter.admits(kind, call_status);
    let reason = if config.filter.is_empty() {
        format!("{} {} set, no event filter", level.as_str(), level.url_field())
    } else {
        format!(
            "{} {} set, filter [{}] {} {}",
            level.as_str(),
            level.url_field(),
            config.filter.written().join(", "),
            if admitted { "admits" } else { "excludes" },
            kind
        )
    };
    Resolution {
        level: Some(level),
        url: config.url.clone(),
        method: config.method,
        fallback: config.fallback.clone(),
        verdict: if admitted {
            Verdict::Send
        } else {
            Verdict::Filtered
        },
        reason,
    }
}

/// A delivery channel of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Channel {
    Status,
    RingUrl,
    AnswerUrl,
    HangupUrl,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Status => "status",
            Channel::RingUrl => "ring_url",
            Channel::AnswerUrl => "answer_url",
            Channel::HangupUrl => "hangup_url",
        }
    }

    pub fn parse(input: &str) -> Option<Channel> {
        [
            Channel::Status,
            Channel::RingUrl,
            Channel::AnswerUrl,
            Channel::HangupUrl,
        ]
        .into_iter()
        .find(|c| c.as_str() == input)
    }
}

/// Direct-channel URLs of one level (the call, or its application; applications have no
/// `ring_url`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DirectUrls {
    pub ring: Option<Target>,
    pub answer: Option<Target>,
    pub hangup: Option<Target>,
}

/// The direct channel an event goes to, if any: the call's URL wins over the application's.
pub fn resolve_direct(
    call: &DirectUrls,
    application: &DirectUrls,
    kind: EventKind,
) -> Option<(Channel, Resolution)> {
    let (channel, pick): (Channel, fn(&DirectUrls) -> Option<&Target>) = match kind {
        EventKind::Ring => (Channel::RingUrl, |d| d.ring.as_ref()),
        EventKind::StartApp => (Channel::AnswerUrl, |d| d.answer.as_ref()),
        EventKind::Hangup => (Channel::HangupUrl, |d| d.hangup.as_ref()),
        EventKind::CallInitiated | EventKind::RecordStop => return None,
    };
    let (level, target) = pick(call)
        .map(|t| (Level::Call, t))
        .or_else(|| pick(application).map(|t| (Level::Application, t)))?;
    Some((
        channel,
        Resolution {
            level: Some(level),
            url: Some(target.url.clone()),
            method: target.method,
            fallback: None,
            verdict: Verdict::Send,
            reason: format!(
                "{} {} set (direct channel, unfiltered)",
                level.as_str(),
                channel.as_str()
            ),
        },
    ))
}

/// Every channel of one event: the status channel always (sent, filtered or unrouted), plus
/// the direct channel when one has a URL.
pub fn plan(
    hierarchy: &Hierarchy,
    call_direct: &DirectUrls,
    application_direct: &DirectUrls,
    kind: EventKind,
    call_status: &str,
) -> Vec<(Channel, Resolution)> {
    let mut channels = vec![(Channel::Status, resolve(hierarchy, kind, call_status))];
    channels.extend(resolve_direct(call_direct, application_direct, kind));
    channels
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::FAILED_CALL_STATUSES;
    use urlguard::UrlPolicy;

    fn url(level: Level) -> CallbackUrl {
        CallbackUrl::parse(
            &format!("https://{}.example.com/cb", level.as_str()),
            UrlPolicy::default(),
        )
        .expect("valid")
    }

    fn config(level: Level, filter: &[&str]) -> LevelConfig {
        LevelConfig {
            url: Some(url(level)),
            method: if level == Level::Trunk {
                HttpMethod::Get
            } else {
                HttpMethod::Post
            },
            fallback: (level == Level::Application).then(|| {
                CallbackUrl::parse("https://fallback.example.com/cb", UrlPolicy::default()).expect("valid")
            }),
            filter: EventFilter::parse(filter).expect("valid"),
        }
    }

    /// The resolution table: every combination of the four levels present or absent, with the
    /// winning level's filter admitting or excluding, for every event.
    #[test]
    fn the_most_specific_level_with_a_url_wins_and_its_filter_decides() {
        let levels = [Level::Call, Level::Application, Level::Trunk, Level::Account];
        let statuses = ["completed", "busy"];
        let mut checked = 0;
        for present in 0u8..16 {
            for exclude in [false, true] {
                for kind in EventKind::ALL {
                    for call_status in statuses {
                        let others: Vec<&str> = EventKind::ALL
                            .iter()
                            .filter(|k| **k != kind)
                            .map(|k| k.as_str())
                            .collect();
                        let filter: Vec<&str> = if exclude { others } else { vec![] };
                        let mut hierarchy = Hierarchy::default();
                        for (bit, level) in levels.iter().enumerate() {
                            if present & (1 << bit) == 0 {
                                continue;
                            }
                            // The call level has no filter of its own (PRODUCT.md §2.4).
                            let cfg = config(*level, if *level == Level::Call { &[] } else { &filter });
                            match level {
                                Level::Call => hierarchy.call = Some(cfg),
                                Level::Application => hierarchy.application = Some(cfg),
                                Level::Trunk => hierarchy.trunk = Some(cfg),
                                Level::Account => hierarchy.account = Some(cfg),
                            }
                        }
                        let expected_level = levels
                            .iter()
                            .enumerate()
                            .find(|(bit, _)| present & (1 << bit) != 0);
                        let got = resolve(&hierarchy, kind, call_status);
                        match expected_level {
                            None => {
                                assert_eq!(got.verdict, Verdict::Unrouted);
                                assert_eq!(got.level, None);
                            }
                            Some((_, level)) => {
                                assert_eq!(got.level, Some(*level), "present={present:04b} {kind}");
                                assert_eq!(got.url, Some(url(*level)));
                                let excluded = exclude && *level != Level::Call;
                                let expected = if excluded {
                                    Verdict::Filtered
                                } else {
                                    Verdict::Send
                                };
                                assert_eq!(
                                    got.verdict, expected,
                                    "present={present:04b} {kind} exclude={exclude}"
                                );
                                assert_eq!(got.method, config(*level, &[]).method);
                                assert_eq!(got.fallback.is_some(), *level == Level::Application);
                            }
                        }
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 16 * 2 * 5 * 2);
    }

    #[test]
    fn a_level_without_a_url_is_skipped_even_with_a_filter() {
        let hierarchy = Hierarchy {
            application: Some(LevelConfig {
                url: None,
                filter: EventFilter::parse(&["Ring"]).expect("valid"),
                ..LevelConfig::default()
            }),
            account: Some(config(Level::Account, &[])),
            ..Hierarchy::default()
        };
        let got = resolve(&hierarchy, EventKind::Hangup, "completed");
        assert_eq!(got.level, Some(Level::Account));
        assert_eq!(got.verdict, Verdict::Send);
    }

    #[test]
    fn a_filtered_event_does_not_fall_through_to_a_broader_level() {
        let hierarchy = Hierarchy {
            trunk: Some(config(Level::Trunk, &["call.failed"])),
            account: Some(config(Level::Account, &[])),
            ..Hierarchy::default()
        };
        let completed = resolve(&hierarchy, EventKind::Hangup, "completed");
        assert_eq!(
            (completed.level, completed.verdict),
            (Some(Level::Trunk), Verdict::Filtered)
        );
        for status in FAILED_CALL_STATUSES {
            let failed = resolve(&hierarchy, EventKind::Hangup, status);
            assert_eq!(
                (failed.level, failed.verdict),
                (Some(Level::Trunk), Verdict::Send),
                "{status}"
            );
        }
        assert!(
            completed.reason.contains("excludes Hangup"),
            "{}",
            completed.reason
        );
    }

    #[test]
    fn direct_channels_add_to_the_status_channel_and_the_call_wins() {
        let target = |host: &str| Target {
            url: CallbackUrl::parse(&format!("https://{host}/x"), UrlPolicy::default()).expect("valid"),
            method: HttpMethod::Post,
        };
        let call = DirectUrls {
            ring: Some(target("ring.call")),
            answer: None,
            hangup: Some(target("hangup.call")),
        };
        let app = DirectUrls {
            ring: None,
            answer: Some(target("answer.app")),
            hangup: Some(target("hangup.app")),
        };
        let hierarchy = Hierarchy::default();
        let channels = |kind| {
            plan(&hierarchy, &call, &app, kind, "completed")
                .into_iter()
                .map(|(c, r)| (c, r.url.map(|u| u.host().to_owned())))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            channels(EventKind::Ring),
            [
                (Channel::Status, None),
                (Channel::RingUrl, Some("ring.call".into()))
            ]
        );
        assert_eq!(
            channels(EventKind::StartApp),
            [
                (Channel::Status, None),
                (Channel::AnswerUrl, Some("answer.app".into()))
            ]
        );
        assert_eq!(
            channels(EventKind::Hangup),
            [
                (Channel::Status, None),
                (Channel::HangupUrl, Some("hangup.call".into()))
            ]
        );
        assert_eq!(channels(EventKind::CallInitiated), [(Channel::Status, None)]);
        assert_eq!(channels(EventKind::RecordStop), [(Channel::Status, None)]);
    }
}

//! The resources that carry callback configuration: account (level 4), application (level 2)
//! and SIP trunk (level 3), with the partial updates that change them.
//!
//! Creation is "a fresh resource with defaults, then the create body applied as a patch", so
//! create and update share one set of rules.

use chrono::{DateTime, Utc};
use urlguard::CallbackUrl;

use crate::call::Engine;
use crate::event::EventFilter;
use crate::ids::{AppId, AuthId, TrunkId};
use crate::patch::Patch;
use crate::values::{HttpMethod, Timezone, TrunkDirection, TrunkStatus};

/// An account and its level-4 default callback.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub auth_id: AuthId,
    pub name: String,
    pub timezone: Timezone,
    pub default_callback_url: Option<CallbackUrl>,
    pub default_callback_method: HttpMethod,
    pub default_callback_events: EventFilter,
    pub parent_auth_id: Option<AuthId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct AccountPatch {
    pub name: Option<String>,
    pub timezone: Patch<Timezone>,
    pub default_callback_url: Patch<CallbackUrl>,
    pub default_callback_method: Patch<HttpMethod>,
    pub default_callback_events: Patch<EventFilter>,
}

impl Account {
    pub fn new(auth_id: AuthId, name: String, parent_auth_id: Option<AuthId>, now: DateTime<Utc>) -> Account {
        Account {
            auth_id,
            name,
            timezone: Timezone::default(),
            default_callback_url: None,
            default_callback_method: HttpMethod::default(),
            default_callback_events: EventFilter::default(),
            parent_auth_id,
            created_at: now,
            updated_at: now,
        }
    }

    pub fn apply(&mut self, patch: AccountPatch, now: DateTime<Utc>) {
        if let Some(name) = patch.name {
            self.name = name;
        }
        patch.timezone.apply_or(&mut self.timezone, Timezone::default);
        patch
            .default_callback_url
            .apply_to(&mut self.default_callback_url);
        patch
            .default_callback_method
            .apply_or(&mut self.default_callback_method, HttpMethod::default);
        patch
            .default_callback_events
            .apply_or(&mut self.default_callback_events, EventFilter::default);
        self.updated_at = now;
    }
}

/// An application and its level-2 status callback, plus the Vobiz direct channels.
#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    pub app_id: AppId,
    pub auth_id: AuthId,
    pub name: String,
    pub callback_url: Option<CallbackUrl>,
    pub callback_method: HttpMethod,
    pub fallback_callback_url: Option<CallbackUrl>,
    pub callback_events: EventFilter,
    pub answer_url: Option<CallbackUrl>,
    pub answer_method: HttpMethod,
    pub hangup_url: Option<CallbackUrl>,
    pub hangup_method: HttpMethod,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct ApplicationPatch {
    pub name: Option<String>,
    pub callback_url: Patch<CallbackUrl>,
    pub callback_method: Patch<HttpMethod>,
    pub fallback_callback_url: Patch<CallbackUrl>,
    pub callback_events: Patch<EventFilter>,
    pub answer_url: Patch<CallbackUrl>,
    pub answer_method: Patch<HttpMethod>,
    pub hangup_url: Patch<CallbackUrl>,
    pub hangup_method: Patch<HttpMethod>,
}

impl Application {
    pub fn new(app_id: AppId, auth_id: AuthId, name: String, now: DateTime<Utc>) -> Application {
        Application {
            app_id,
            auth_id,
            name,
            callback_url: None,
            callback_method: HttpMethod::default(),
            fallback_callback_url: None,
            callback_events: EventFilter::default(),
            answer_url: None,
            answer_method: HttpMethod::default(),
            hangup_url: None,
            hangup_method: HttpMethod::default(),
            created_at: now,
            updated_at: now,
        }
    }

    pub fn apply(&mut self, patch: ApplicationPatch, now: DateTime<Utc>) {
        if let Some(name) = patch.name {
            self.name = name;
        }
        patch.callback_url.apply_to(&mut self.callback_url);
        patch
            .callback_method
            .apply_or(&mut self.callback_method, HttpMethod::default);
        patch
            .fallback_callback_url
            .apply_to(&mut self.fallback_callback_url);
        patch
            .callback_events
            .apply_or(&mut self.callback_events, EventFilter::default);
        patch.answer_url.apply_to(&mut self.answer_url);
        patch
            .answer_method
            .apply_or(&mut self.answer_method, HttpMethod::default);
        patch.hangup_url.apply_to(&mut self.hangup_url);
        patch
            .hangup_method
            .apply_or(&mut self.hangup_method, HttpMethod::default);
        self.updated_at = now;
    }
}

/// A SIP URI (`sip:` or `sips:`), where a trunk sends outbound calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri(String);

impl SipUri {
    pub fn parse(input: &str) -> Option<SipUri> {
        let rest = input
            .strip_prefix("sip:")
            .or_else(|| input.strip_prefix("sips:"))?;
        let well_formed = !rest.is_empty()
            && rest.len() <= 2048
            && !rest
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control());
        well_formed.then(|| SipUri(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A SIP trunk and its level-3 status callback.
#[derive(Debug, Clone, PartialEq)]
pub struct Trunk {
    pub trunk_id: TrunkId,
    pub auth_id: AuthId,
    pub name: String,
    pub status_callback: Option<CallbackUrl>,
    pub status_callback_method: HttpMethod,
    pub status_callback_events: EventFilter,
    pub trunk_direction: TrunkDirection,
    pub trunk_status: TrunkStatus,
    pub termination_uri: Option<SipUri>,
    pub recording: bool,
    /// What drives calls placed through this trunk.
    pub engine: Engine,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct TrunkPatch {
    pub name: Option<String>,
    pub status_callback: Patch<CallbackUrl>,
    pub status_callback_method: Patch<HttpMethod>,
    pub status_callback_events: Patch<EventFilter>,
    pub trunk_direction: Patch<TrunkDirection>,
    pub trunk_status: Patch<TrunkStatus>,
    pub termination_uri: Patch<SipUri>,
    pub recording: Patch<bool>,
    pub engine: Patch<Engine>,
}

impl Trunk {
    pub fn new(trunk_id: TrunkId, auth_id: AuthId, name: String, now: DateTime<Utc>) -> Trunk {
        Trunk {
            trunk_id,
            auth_id,
            name,
            status_callback: None,
            status_callback_method: HttpMethod::default(),
            status_callback_events: EventFilter::default(),
            trunk_direction: TrunkDirection::default(),
            trunk_status: TrunkStatus::default(),
            termination_uri: None,
            recording: false,
            engine: Engine::Simulated,
            created_at: now,
            updated_at: now,
        }
    }

    pub fn apply(&mut self, patch: TrunkPatch, now: DateTime<Utc>) {
        if let Some(name) = patch.name {
            self.name = name;
        }
        patch.status_callback.apply_to(&mut self.status_callback);
        patch
            .status_callback_method
            .apply_or(&mut self.status_callback_method, HttpMethod::default);
        patch
            .status_callback_events
            .apply_or(&mut self.status_callback_events, EventFilter::default);
        patch
            .trunk_direction
            .apply_or(&mut self.trunk_direction, TrunkDirection::default);
        patch
            .trunk_status
            .apply_or(&mut self.trunk_status, TrunkStatus::default);
        patch.termination_uri.apply_to(&mut self.termination_uri);
        patch.recording.apply_or(&mut self.recording, || false);
        patch.engine.apply_or(&mut self.engine, || Engine::Simulated);
        self.updated_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use urlguard::UrlPolicy;

    fn url(s: &str) -> CallbackUrl {
        CallbackUrl::parse(s, UrlPolicy::default()).expect("test URLs are valid")
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).expect("valid timestamp")
    }

    #[test]
    fn omitted_fields_are_kept_and_null_clears_or_restores_the_default() {
        let mut app = Application::new(
            AppId::generate(1),
            AuthId::generate(false, [1; 8]),
            "a".into(),
            now(),
        );
        app.apply(
            ApplicationPatch {
                callback_url: Patch::Set(url("https://example.com/cb")),
                callback_method: Patch::Set(HttpMethod::Get),
                ..Default::default()
            },
            now(),
        );
        app.apply(
            ApplicationPatch {
                name: Some("b".into()),
                ..Default::default()
            },
            now(),
        );
        assert_eq!(
            app.callback_url.as_ref().map(CallbackUrl::as_str),
            Some("https://example.com/cb")
        );
        assert_eq!(app.callback_method, HttpMethod::Get);
        assert_eq!(app.name, "b");

        app.apply(
            ApplicationPatch {
                callback_url: Patch::Clear,
                callback_method: Patch::Clear,
                ..Default::default()
            },
            now(),
        );
        assert_eq!(app.callback_url, None);
        assert_eq!(app.callback_method, HttpMethod::Post);
    }

    #[test]
    fn sip_uris_need_the_sip_scheme_and_no_spaces() {
        assert!(SipUri::parse("sip:gw@carrier.example.com:5060").is_some());
        assert!(SipUri::parse("sips:gw@carrier.example.com").is_some());
        for bad in ["", "sip:", "https://x", "sip:a b", "SIP"] {
            assert!(SipUri::parse(bad).is_none(), "{bad:?}");
        }
    }
}

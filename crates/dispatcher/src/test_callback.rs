//! Test callbacks (the "send test" button of PRODUCT.md §2.5): one synthetic, really signed
//! callback sent now, outside the queue.

use chrono::{DateTime, TimeDelta, Utc};
use domain::TargetKind;
use rand::Rng;
use sender::ErrorKind;
use store::StoreError;

use crate::{clock, fresh, request, Dispatcher};

/// What a test callback did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    pub delivered: bool,
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<&'static str>,
}

impl Dispatcher {
    /// Sends one synthetic, really signed `Hangup` callback to `target` now, outside the queue
    /// (the "send test" button of PRODUCT.md §2.5). Nothing is stored.
    ///
    /// # Errors
    /// When the account's signing keys cannot be loaded.
    pub async fn send_test(
        &self,
        account: &domain::Account,
        level: domain::Level,
        target: &domain::Target,
    ) -> Result<TestResult, StoreError> {
        let keys = self.keys(&account.auth_id, None).await?;
        let now = clock::now();
        let call = synthetic_call(account, now);
        let fields: Vec<(String, String)> =
            domain::fields::callback_fields(&call, domain::EventKind::Hangup, now, account.timezone)
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
        let event_id = domain::EventId::from_random(rand::thread_rng().gen()).to_string();
        let mut request = request::build(
            target.method,
            target.url.as_str(),
            &fields,
            &keys,
            &request::AttemptHeaders {
                event_id: &event_id,
                attempt: 1,
                level: Some(level),
                sequence: call.last_sequence,
                target: TargetKind::Primary,
            },
            &fresh(now),
        );
        request
            .headers
            .push(("X-Hookline-Test".to_owned(), "true".to_owned()));
        let outcome = self.inner.sender.send(request).await;
        Ok(TestResult {
            delivered: outcome.is_success(),
            status_code: outcome.status_code,
            latency_ms: u64::try_from(outcome.latency.as_millis()).unwrap_or(u64::MAX),
            error: outcome.error.map(ErrorKind::as_str),
        })
    }
}

/// A completed five-second call of `account`, for test callbacks.
fn synthetic_call(account: &domain::Account, now: DateTime<Utc>) -> domain::Call {
    let mut call = domain::Call::new(
        domain::CallUuid::from_random(rand::thread_rng().gen()),
        account.auth_id.clone(),
        domain::Direction::Outbound,
        "+14155550100".to_owned(),
        "+14155550199".to_owned(),
        domain::Engine::Simulated,
        now - TimeDelta::seconds(7),
    );
    let steps = [
        (domain::Report::Ring, now - TimeDelta::seconds(7)),
        (domain::Report::Answer, now - TimeDelta::seconds(5)),
        (
            domain::Report::Hangup {
                cause: domain::HangupCause::known("NORMAL_CLEARING"),
                source: "Callee".to_owned(),
                status: None,
            },
            now,
        ),
    ];
    for (report, at) in steps {
        // The script is legal by construction; a refusal would only leave the call earlier.
        let _ = call.apply(report, at);
    }
    call
}

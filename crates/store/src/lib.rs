//! Persistence for Hookline: the [`Store`] trait every backend implements, and the backends.
//!
//! This is the only crate that writes SQL. Above it, `api` and the dispatcher hold an
//! `Arc<dyn Store>` and never learn which database is underneath, so the PostgreSQL backend
//! joins by implementing the same trait (and passing the same conformance tests).
//! Key material is sealed here, at the boundary, so plain text never reaches the database.

#[macro_use]
mod sql;
mod codec;
mod error;
pub mod postgres;
mod rows;
pub mod sqlite;
pub mod vault;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    Account, AppId, Application, AuthId, Call, CallStatus, CallUuid, Channel, DeliveryStatus, Direction,
    EventId, EventKind, HttpMethod, Level, Report, SecretId, TargetKind, Trunk, TrunkId,
};

pub use error::StoreError;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use vault::Vault;

/// One page of a list: `limit` rows after skipping `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    pub offset: u64,
}

/// A page of rows and the total count across all pages.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub total: u64,
}

/// What creating an account hands back once: its plain auth token and first signing secret.
#[derive(Debug, Clone)]
pub struct CreatedAccount {
    pub account: Account,
    pub auth_token: String,
    pub signing_secret: NewSecret,
}

/// A signing secret's public description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    pub secret_id: SecretId,
    pub created_at: DateTime<Utc>,
}

/// A freshly created signing secret, with its bytes (shown to the user once).
#[derive(Clone)]
pub struct NewSecret {
    pub info: SecretInfo,
    pub bytes: [u8; 32],
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSecret")
            .field("info", &self.info)
            .field("bytes", &"REDACTED")
            .finish()
    }
}

/// The answer to "who is this?" for a presented auth id and token.
#[derive(Debug, Clone, PartialEq)]
pub enum Authentication {
    Authenticated(Box<Account>),
    UnknownAccount,
    WrongToken,
}

/// Why a signing secret was not deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretDeletion {
    Deleted,
    NotFound,
    /// Refused: every account keeps at least one secret, so callbacks are always signed.
    LastSecret,
}

/// A stored answer for an `Idempotency-Key` (24 h).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentAnswer {
    /// SHA-256 of the canonical request body: the same key with another body is refused.
    pub request_hash: [u8; 32],
    pub status: u16,
    pub body: String,
}

/// What `create_call` did.
#[derive(Debug, Clone)]
pub enum CallCreation {
    /// The call is stored with its `CallInitiated` event and deliveries.
    Created(Box<Call>),
    /// The idempotency key was used before (within 24 h): its first answer.
    Replayed(IdempotentAnswer),
}

/// An event that was recorded, with the call as it now stands.
#[derive(Debug, Clone)]
pub struct RecordedEvent {
    pub event_id: EventId,
    pub sequence: u32,
    pub kind: EventKind,
    pub call: Call,
}

/// Filters of the call list; `None` does not filter.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    pub status: Option<CallStatus>,
    pub direction: Option<Direction>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Initiated at or after.
    pub since: Option<DateTime<Utc>>,
    /// Initiated before.
    pub until: Option<DateTime<Utc>>,
}

/// Filters of the callback list across calls.
#[derive(Debug, Clone, Default)]
pub struct CallbackFilter {
    pub status: Option<DeliveryStatus>,
    /// Created at or after.
    pub since: Option<DateTime<Utc>>,
}

/// One attempt, as recorded and shown in the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// 1, 2, 3… across primary, fallback and redeliveries (`X-Hookline-Attempt`).
    pub attempt: u32,
    pub target: TargetKind,
    pub url: String,
    pub started_at: DateTime<Utc>,
    pub latency_ms: u64,
    pub status_code: Option<u16>,
    /// `timeout`, `connect`, `tls`, `dns`, `blocked`, `status`; `None` on success.
    pub error: Option<String>,
    pub retry_after_ms: Option<u64>,
}

/// Where a delivery goes after an attempt (decided by the pure retry policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterAttempt {
    Delivered,
    /// Try the same target again at this time.
    RetryAt(DateTime<Utc>),
    /// Move to the fallback URL, due at this time.
    FallbackAt(DateTime<Utc>),
    Failed,
}

/// An attempt made, and where its delivery goes next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedAttempt {
    pub delivery_id: i64,
    pub attempt: AttemptRecord,
    pub after: AfterAttempt,
    /// The lease the attempt was made under. When the delivery is no longer held by it (the
    /// lease expired and another worker claimed it), the attempt is still logged but does not
    /// move the delivery on: the current holder decides. `None` skips the check.
    pub lease_until: Option<DateTime<Utc>>,
}

/// A delivery claimed for sending, with everything needed to build the request.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedDelivery {
    pub delivery_id: i64,
    pub event_id: EventId,
    pub call_uuid: CallUuid,
    pub auth_id: AuthId,
    pub sequence: u32,
    pub event: EventKind,
    pub channel: Channel,
    pub level: Option<Level>,
    /// The primary URL.
    pub url: String,
    pub method: HttpMethod,
    pub fallback_url: Option<String>,
    pub target: TargetKind,
    /// Attempts already made on `target`.
    pub target_attempts: u32,
    /// Attempts already made in all.
    pub attempt_count: u32,
    /// The callback's form fields, in wire order.
    pub fields: Vec<(String, String)>,
    /// The account's signing keys as of the claim: keys cached at another version are stale.
    pub keys_version: KeysVersion,
}

/// How many times an account's signing keys, and its parent's, have changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeysVersion {
    pub own: i64,
    pub parent: i64,
}

impl ClaimedDelivery {
    /// The URL this attempt goes to.
    pub fn target_url(&self) -> &str {
        match self.target {
            TargetKind::Primary => &self.url,
            TargetKind::Fallback => self.fallback_url.as_deref().unwrap_or(&self.url),
        }
    }
}

/// The key material that signs an account's callbacks (unsealed; never logged).
#[derive(Clone)]
pub struct SigningKeys {
    pub auth_token: Vec<u8>,
    /// The parent account's token; the account's own for a main account.
    pub parent_token: Vec<u8>,
    /// Raw bytes of each active signing secret.
    pub secrets: Vec<Vec<u8>>,
    /// The version these keys were read at.
    pub version: KeysVersion,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKeys(REDACTED)")
    }
}

/// What `redeliver` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redelivery {
    /// This many deliveries of the event were queued again.
    Queued(usize),
    /// The event has no channel with a URL (it was filtered or unrouted).
    NothingToSend,
    /// A delivery of the event is still pending.
    StillPending,
}

/// One delivery (an event on one channel) as the delivery log shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    pub event_id: EventId,
    pub call_uuid: CallUuid,
    pub event: EventKind,
    pub sequence: u32,
    pub channel: Channel,
    pub level: Option<Level>,
    pub reason: String,
    pub url: Option<String>,
    pub method: HttpMethod,
    pub fallback_url: Option<String>,
    pub status: DeliveryStatus,
    pub delivered_to: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub attempts: Vec<AttemptRecord>,
}

/// The storage interface. Every method is atomic and short (a backend may commit several
/// callers' writes together, as SQLite's writer thread does); none is held across I/O outside
/// the database.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks that the database answers (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Calls `wake` whenever another process on the same database may have queued work
    /// (several nodes on one PostgreSQL). A backend that one process owns never calls it.
    fn listen_for_work(&self, wake: std::sync::Arc<dyn Fn() + Send + Sync>) {
        drop(wake);
    }

    /// Whether a delivery claimed at `claimed_at` may still be sent by this process with an
    /// attempt of up to `budget`, or may have been taken over by another (a node judged dead
    /// while it was frozen or cut off). A backend that one process owns always answers yes.
    fn may_send(&self, claimed_at: DateTime<Utc>, budget: std::time::Duration) -> bool {
        let _ = (claimed_at, budget);
        true
    }

    /// Creates an account with a new auth id, auth token and first signing secret.
    /// `parent` makes it a sub-account; the parent must be an existing main account.
    async fn create_account(
        &self,
        name: &str,
        parent: Option<&AuthId>,
        now: DateTime<Utc>,
    ) -> Result<CreatedAccount, StoreError>;
    async fn account(&self, auth_id: &AuthId) -> Result<Option<Account>, StoreError>;
    async fn count_accounts(&self) -> Result<u64, StoreError>;
    async fn authenticate(&self, auth_id: &AuthId, token: &str) -> Result<Authentication, StoreError>;
    /// Writes every mutable field of the account.
    async fn update_account(&self, account: &Account) -> Result<(), StoreError>;
    /// Replaces the auth token; the old one stops working at once. Returns the new token.
    async fn rotate_token(&self, auth_id: &AuthId, now: DateTime<Utc>) -> Result<String, StoreError>;

    async fn insert_application(&self, app: &Application) -> Result<(), StoreError>;
    async fn application(&self, auth_id: &AuthId, app_id: &AppId) -> Result<Option<Application>, StoreError>;
    async fn list_applications(
        &self,
        auth_id: &AuthId,
        page: Page,
    ) -> Result<Listing<Application>, StoreError>;
    /// Writes every mutable field; `NotFound` if it is gone.
    async fn update_application(&self, app: &Application) -> Result<(), StoreError>;
    /// `NotFound` if there was nothing to delete.
    async fn delete_application(&self, auth_id: &AuthId, app_id: &AppId) -> Result<(), StoreError>;

    async fn insert_trunk(&self, trunk: &Trunk) -> Result<(), StoreError>;
    async fn trunk(&self, auth_id: &AuthId, trunk_id: &TrunkId) -> Result<Option<Trunk>, StoreError>;
    async fn list_trunks(&self, auth_id: &AuthId, page: Page) -> Result<Listing<Trunk>, StoreError>;
    async fn update_trunk(&self, trunk: &Trunk) -> Result<(), StoreError>;
    async fn delete_trunk(&self, auth_id: &AuthId, trunk_id: &TrunkId) -> Result<(), StoreError>;

    async fn create_signing_secret(
        &self,
        auth_id: &AuthId,
        now: DateTime<Utc>,
    ) -> Result<NewSecret, StoreError>;
    async fn list_signing_secrets(&self, auth_id: &AuthId) -> Result<Vec<SecretInfo>, StoreError>;
    async fn delete_signing_secret(
        &self,
        auth_id: &AuthId,
        secret_id: &SecretId,
    ) -> Result<SecretDeletion, StoreError>;

    /// Stores a new call (status `queued`, sequence 1) with its `CallInitiated` event and that
    /// event's deliveries, resolved from the configuration as it is now — all in one
    /// transaction. With an idempotency key: a key used within 24 h replays its first answer
    /// (the caller compares the request hash); otherwise `answer` is stored with the call.
    async fn create_call(
        &self,
        call: &Call,
        idempotency: Option<(&str, IdempotentAnswer)>,
        now: DateTime<Utc>,
    ) -> Result<CallCreation, StoreError>;
    /// A stored idempotent answer younger than 24 h, if any.
    async fn idempotent_answer(
        &self,
        auth_id: &AuthId,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotentAnswer>, StoreError>;
    /// A call; `auth_id` restricts it to one account (`None`: the operator sees all).
    async fn call(&self, auth_id: Option<&AuthId>, call_uuid: &CallUuid) -> Result<Option<Call>, StoreError>;
    /// An account's calls, newest first.
    async fn list_calls(
        &self,
        auth_id: &AuthId,
        filter: &CallFilter,
        page: Page,
    ) -> Result<Listing<Call>, StoreError>;
    /// Applies a progress report: the transition, its event and the event's deliveries in one
    /// transaction. `Transition` (nothing written) when the state does not allow it.
    async fn apply_report(
        &self,
        auth_id: Option<&AuthId>,
        call_uuid: &CallUuid,
        report: Report,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<RecordedEvent, StoreError>;
    /// Simulated calls whose script has not finished (to resume after a restart).
    async fn unfinished_simulated_calls(&self) -> Result<Vec<Call>, StoreError>;
    /// The delivery log of one call, in sequence order.
    async fn call_deliveries(
        &self,
        auth_id: &AuthId,
        call_uuid: &CallUuid,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;
    /// Deliveries across an account's calls, newest first.
    async fn list_deliveries(
        &self,
        auth_id: &AuthId,
        filter: &CallbackFilter,
        page: Page,
    ) -> Result<Listing<DeliveryRecord>, StoreError>;

    /// Claims up to `limit` deliveries that are due at `now`, not leased, and not waiting
    /// behind an earlier pending event of their call to the same URL; leases them until
    /// `lease_until`. One statement, so two workers never claim the same delivery.
    async fn claim_due(
        &self,
        limit: u32,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<ClaimedDelivery>, StoreError>;
    /// When the next claimable delivery falls due (past times mean now).
    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Records attempts and moves each delivery on, releasing its lease — all in one
    /// transaction (group commit: the dispatcher batches what finished together). Returns
    /// whether other work may have become claimable: a retry or fallback is due at a new time,
    /// or a later event of the same call to the same URL was waiting behind one of these.
    async fn record_attempts(
        &self,
        attempts: &[FinishedAttempt],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// [`Store::record_attempts`] for a single attempt.
    async fn record_attempt(
        &self,
        delivery_id: i64,
        attempt: &AttemptRecord,
        after: AfterAttempt,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let finished = FinishedAttempt {
            delivery_id,
            attempt: attempt.clone(),
            after,
            lease_until: None,
        };
        self.record_attempts(std::slice::from_ref(&finished), now)
            .await
            .map(|_| ())
    }
    /// Releases deliveries without an attempt, due again at `next_attempt_at` (circuit breaker
    /// pause, a saturated host, shutdown) — those still held under the lease they were claimed
    /// with (`lease_until`): one claimed again since is not this claim's to put back.
    async fn release(
        &self,
        delivery_ids: &[i64],
        lease_until: DateTime<Utc>,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Releases every lease: at start-up of the only process on an embedded database, leases
    /// left by a crashed run are known dead.
    async fn release_all_leases(&self) -> Result<u64, StoreError>;
    /// Puts back, due as they were, the deliveries this process still holds under a lease that
    /// ends between `from` and `to` (inclusive): those of claims whose answers were lost (the
    /// database went away) are claimable once it answers instead of when the lease ends.
    /// Returns how many.
    async fn release_claims(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Unsealed signing keys of an account.
    async fn signing_keys(&self, auth_id: &AuthId) -> Result<SigningKeys, StoreError>;
    /// Queues every sendable delivery of an event again, from the primary URL (same event id).
    async fn redeliver(
        &self,
        auth_id: &AuthId,
        event_id: &EventId,
        now: DateTime<Utc>,
    ) -> Result<Redelivery, StoreError>;
    /// The deliveries of one event (for the redeliver answer).
    async fn event_deliveries(
        &self,
        auth_id: &AuthId,
        event_id: &EventId,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;
    /// Pending deliveries: how many, and when the oldest was created (for metrics).
    async fn queue_depth(&self) -> Result<(u64, Option<DateTime<Utc>>), StoreError>;
}

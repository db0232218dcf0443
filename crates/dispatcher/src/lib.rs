//! The delivery engine (PRODUCT.md §4): claims due deliveries from the store's durable queue,
//! signs and sends each attempt, records the outcome, and schedules what the pure retry policy
//! decides — retry, fallback, delivered or failed.
//!
//! - **Wake-ups**: `wake()` after new events means no polling delay on the happy path; otherwise
//!   the loop sleeps until the store's next due time (capped by `idle_poll`, so work queued by
//!   another process is found too).
//! - **Isolation**: a global bound on in-flight attempts; per target host a ceiling that its
//!   endpoints (URLs without query) share fairly, and circuit breakers per endpoint and per host
//!   (`targets`); a paused delivery is released with a later due time, not dropped.
//! - **Ordering** is the store's: a delivery is claimable only when no earlier event of its call
//!   to the same URL is pending.
//! - **Durability**: the lease is committed before sending and the result in a second short
//!   transaction; a crash leaves a lease that expires (or is released at the next start).

mod breaker;
mod lost;
mod metrics;
pub mod request;
mod targets;
mod test_callback;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use domain::retry::{decide, parse_retry_after, AttemptOutcome, Decision, RetryPolicy};
use domain::{AuthId, TargetKind};
use rand::Rng;
use sender::{ErrorKind, Sender};
use store::{
    AfterAttempt, AttemptRecord, ClaimedDelivery, FinishedAttempt, KeysVersion, SigningKeys, Store,
    StoreError,
};
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use breaker::{BreakerConfig, BreakerState};
use lost::{lost_claim, Lost};
pub use metrics::Metrics;
pub use targets::HostSnapshot;
use targets::{Slot, Targets};
pub use test_callback::TestResult;

/// Most attempts written in one transaction by the recorder (group commit).
const RECORD_BATCH: usize = 256;
/// How long after its claim a delivery's keys version is still taken as current; one that
/// waited longer (for its host) reads the keys again. Reading them for every attempt would put
/// a query and a decryption on each; this bounds a key change's delay to this much.
const KEYS_VERSION_FRESH_FOR: Duration = Duration::from_millis(100);
/// Claim sizes adapt between these: large while claims come back full, small while most of a
/// claim would only be deferred (one saturated host).
const MIN_CLAIM: usize = 16;
const FIRST_CLAIM: usize = 64;

/// A finished attempt, and where to say whether recording it may have made other work claimable.
type Recording = (FinishedAttempt, oneshot::Sender<bool>);

/// The engine's numbers.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    pub policy: RetryPolicy,
    pub per_host_concurrency: usize,
    /// Claimed-but-unfinished deliveries at most (bounds memory and the lease queue).
    pub max_in_flight: usize,
    /// How long a claim holds a delivery before another worker may take it.
    pub lease: Duration,
    pub breaker: BreakerConfig,
    /// The longest sleep between looks at the queue.
    pub idle_poll: Duration,
}

struct Inner {
    store: Arc<dyn Store>,
    sender: Sender,
    config: DispatcherConfig,
    wake: Notify,
    in_flight: Arc<Semaphore>,
    targets: Arc<Targets>,
    /// Unsealed keys by account, each labelled with the version it was read at.
    keys: Mutex<HashMap<AuthId, SigningKeys>>,
    tasks: TaskTracker,
    metrics: Arc<Metrics>,
    /// Cancelled when the engine stops: claimed deliveries not yet sent are released.
    stopping: CancellationToken,
    /// Finished attempts on their way to the recorder, which writes them in batches.
    recorder: mpsc::UnboundedSender<Recording>,
    claim_size: std::sync::atomic::AtomicUsize,
    /// Leases left with nobody working on them because the database went away mid-request; put
    /// back once it answers instead of when they end (300 s by default). Recordings are not
    /// among them: one the database refuses is retried until its batch's first lease ends, and
    /// past that (or on any other error) its leases end on their own.
    lost: Mutex<Vec<Lost>>,
    /// The previous claim's lease end: each claim's is later, so a lease names one claim.
    last_lease: Mutex<DateTime<Utc>>,
    /// The last claim was cut short by in-flight capacity: due work may be waiting for a slot.
    capacity_bound: AtomicBool,
}

/// The delivery engine. Cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

impl Dispatcher {
    /// Creates the engine and starts its recorder task (call inside a Tokio runtime).
    pub fn new(
        store: Arc<dyn Store>,
        sender: Sender,
        config: DispatcherConfig,
        metrics: Arc<Metrics>,
    ) -> Dispatcher {
        let (recorder, recordings) = mpsc::unbounded_channel();
        let targets = Targets::new(config.per_host_concurrency, sender.timeout(), config.breaker);
        tokio::spawn(record_loop(Arc::clone(&store), recordings));
        Dispatcher {
            inner: Arc::new(Inner {
                recorder,
                lost: Mutex::new(Vec::new()),
                last_lease: Mutex::new(DateTime::<Utc>::MIN_UTC),
                claim_size: std::sync::atomic::AtomicUsize::new(FIRST_CLAIM),
                capacity_bound: AtomicBool::new(false),
                store,
                in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
                config,
                wake: Notify::new(),
                targets,
                keys: Mutex::new(HashMap::new()),
                sender,
                tasks: TaskTracker::new(),
                metrics,
                stopping: CancellationToken::new(),
            }),
        }
    }

    /// The circuit breaker of every host this process sends to, as of now.
    pub fn breakers(&self) -> Vec<HostSnapshot> {
        self.inner.targets.snapshot(clock::now())
    }

    /// New work may be due: look now.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Claims what is due (as far as in-flight capacity allows) and starts sending it. Returns
    /// whether the claim came back full of sendable work, so that more may be due already.
    ///
    /// # Errors
    /// When the claim itself fails.
    pub async fn dispatch_once(&self) -> Result<bool, StoreError> {
        let inner = &self.inner;
        let available = inner.in_flight.available_permits();
        if available == 0 {
            inner.capacity_bound.store(true, Ordering::Relaxed);
            return Ok(false);
        }
        let now = clock::now();
        // After the clock steps back, leases run on from the last one's end until it catches up.
        let (previous_lease, lease_until) = {
            let mut last = lock(&inner.last_lease);
            let previous = *last;
            *last = (now + delta(inner.config.lease)).max(previous + TimeDelta::microseconds(1));
            (previous, *last)
        };
        let size = inner.claim_size.load(std::sync::atomic::Ordering::Relaxed);
        let limit = u32::try_from(available.min(size)).unwrap_or(u32::MAX);
        let claimed = match inner.store.claim_due(limit, now, lease_until).await {
            Ok(claimed) => claimed,
            Err(error) => {
                // It may have been committed with its answer lost.
                if error.is_unavailable() {
                    lost_claim(&mut lock(&inner.lost), previous_lease, lease_until);
                }
                return Err(error);
            }
        };
        let count = claimed.len();
        let full = count == limit as usize;
        inner
            .capacity_bound
            .store(full && limit as usize == available, Ordering::Relaxed);
        // Deliveries beyond their endpoint's or host's claimed share, by how long they go back.
        let mut deferred: BTreeMap<Duration, Vec<i64>> = BTreeMap::new();
        let mut n_deferred = 0;
        for delivery in claimed {
            let slot = match inner.targets.claim(delivery.target_url(), now) {
                Ok(slot) => slot,
                Err(targets::Deferral(by)) => {
                    deferred.entry(by).or_default().push(delivery.delivery_id);
                    n_deferred += 1;
                    continue;
                }
            };
            let Ok(permit) = Arc::clone(&inner.in_flight).try_acquire_owned() else {
                // Cannot happen (we claimed at most the available permits).
                deferred
                    .entry(Duration::ZERO)
                    .or_default()
                    .push(delivery.delivery_id);
                n_deferred += 1;
                continue;
            };
            let engine = self.clone();
            inner.tasks.spawn(async move {
                let more = engine.attempt(delivery, slot, now, lease_until).await;
                drop(permit);
                // Without new work in sight the loop sleeps on: a claim after every attempt
                // would cost a write transaction per callback for nothing.
                if more || engine.inner.capacity_bound.load(Ordering::Relaxed) {
                    engine.wake();
                }
            });
        }
        let next_size = if n_deferred * 2 > count {
            (size / 2).max(MIN_CLAIM)
        } else if full && n_deferred == 0 {
            (size * 2).min(inner.config.max_in_flight)
        } else {
            size
        };
        inner
            .claim_size
            .store(next_size, std::sync::atomic::Ordering::Relaxed);
        for (by, ids) in deferred {
            self.release(ids, lease_until, now + delta(by)).await;
        }
        // Mostly deferred: the next look goes through the next due time (a read) instead of
        // another claim that would mostly defer again.
        Ok(full && n_deferred * 2 <= count)
    }

    /// Runs until `shutdown`, then waits up to `drain` for in-flight attempts to finish (their
    /// results are recorded; anything still running is released by its lease).
    pub async fn run(&self, shutdown: CancellationToken, drain: Duration) {
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            self.put_back_lost().await;
            let sleep = match self.dispatch_once().await {
                // A claim that was not full took everything due; a new event wakes the loop, and
                // claiming again at once would be an empty write transaction per wake-up.
                Ok(true) if self.inner.in_flight.available_permits() > 0 => continue,
                // Full: a finishing attempt wakes the loop (`capacity_bound`), so no claim
                // until then — the due work would only spin the loop.
                Ok(_) if self.inner.in_flight.available_permits() == 0 => self.inner.config.idle_poll,
                Ok(_) => self.until_next_due().await,
                Err(error) => {
                    tracing::error!(%error, "claiming deliveries failed");
                    self.inner.config.idle_poll
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(sleep) => {}
            }
        }
        self.inner.stopping.cancel();
        self.inner.tasks.close();
        if tokio::time::timeout(drain, self.inner.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "in-flight attempts still running at shutdown; their leases expire and they are retried"
            );
        }
    }

    /// Puts claimed deliveries back in the queue, due at `at`; one the database did not hear
    /// about is put back once it answers.
    async fn release(&self, ids: Vec<i64>, lease_until: DateTime<Utc>, at: DateTime<Utc>) {
        if let Err(error) = self.inner.store.release(&ids, lease_until, at).await {
            tracing::warn!(%error, n = ids.len(), "putting deliveries back in the queue failed");
            // Another error would only fail again: those leases end on their own.
            if error.is_unavailable() {
                lock(&self.inner.lost).push(Lost::Release { ids, lease_until, at });
            }
        }
    }

    /// Puts back the leases failed requests left, oldest first, until the database still does
    /// not answer; those whose lease has ended meanwhile are claimable anyway and are dropped.
    async fn put_back_lost(&self) {
        let now = clock::now();
        let mut lost = std::mem::take(&mut *lock(&self.inner.lost))
            .into_iter()
            .filter(|lost| lost.lease_end() > now);
        while let Some(next) = lost.next() {
            let result = match &next {
                Lost::Claims { from, to } => self.inner.store.release_claims(*from, *to).await,
                Lost::Release { ids, lease_until, at } => {
                    self.inner.store.release(ids, *lease_until, *at).await.map(|()| 0)
                }
            };
            match result {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    n,
                    "deliveries of claims whose answer was lost put back in the queue"
                ),
                Err(error) if error.is_unavailable() => {
                    let mut kept = lock(&self.inner.lost);
                    let newer = std::mem::take(&mut *kept);
                    kept.extend(std::iter::once(next).chain(lost).chain(newer));
                    return;
                }
                Err(error) => tracing::warn!(%error, "putting back leases failed requests left failed"),
            }
        }
    }

    async fn until_next_due(&self) -> Duration {
        let idle = self.inner.config.idle_poll;
        match self.inner.store.next_due_at().await {
            Ok(Some(due)) => (due - clock::now()).to_std().unwrap_or(Duration::ZERO).min(idle),
            Ok(None) => idle,
            Err(error) => {
                tracing::warn!(%error, "reading the next due time failed");
                idle
            }
        }
    }

    /// The account's signing keys at `version` (the claim's) or later; `None` reads them anew.
    /// A key change bumps the version in its own transaction, so no callback claimed after
    /// the change's commit is signed with the old keys, whichever process made it.
    async fn keys(&self, auth_id: &AuthId, version: Option<KeysVersion>) -> Result<SigningKeys, StoreError> {
        if let (Some(version), Ok(cache)) = (version, self.inner.keys.lock()) {
            if let Some(keys) = cache.get(auth_id).filter(|keys| keys.version == version) {
                return Ok(keys.clone());
            }
        }
        let keys = self.inner.store.signing_keys(auth_id).await?;
        if let Ok(mut cache) = self.inner.keys.lock() {
            cache.insert(auth_id.clone(), keys.clone());
        }
        Ok(keys)
    }

    /// One attempt of one claimed delivery, start to recorded result. Returns whether other
    /// work may have become claimable (the delivery went back to the queue, is due again, or
    /// let a later event of its call through).
    async fn attempt(
        &self,
        delivery: ClaimedDelivery,
        slot: Slot,
        claimed_at: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> bool {
        let url = delivery.target_url().to_owned();
        let delivery_id = delivery.delivery_id;
        let put_back = move |at| self.release(vec![delivery_id], lease_until, at);
        // Wait for the host only while the lease still covers a whole attempt after it: a
        // delivery sent after its lease expired could be sent twice. Guarded by the delivery test
        // `a_delivery_queued_behind_a_busy_host_longer_than_its_lease_is_sent_once`.
        let margin = self.inner.sender.timeout() + Duration::from_secs(1);
        let patience = (lease_until - clock::now())
            .to_std()
            .unwrap_or_default()
            .saturating_sub(margin);
        let Some(send_permit) = slot.send_permit(patience, &self.inner.stopping).await else {
            // Not sent: back in the queue at once, without an attempt.
            put_back(clock::now()).await;
            return true;
        };
        if self.inner.stopping.is_cancelled() {
            put_back(clock::now()).await;
            return true;
        }
        let probes = match slot.admit(clock::now()) {
            Ok(probes) => probes,
            Err(until) => {
                put_back(until).await;
                return true;
            }
        };
        // The claim read the account's keys version; a delivery that then waited reads the keys
        // again, so a secret deleted while it waited does not sign it.
        let version =
            (clock::now() - claimed_at < delta(KEYS_VERSION_FRESH_FOR)).then_some(delivery.keys_version);
        let keys = match self.keys(&delivery.auth_id, version).await {
            // The database is away: nothing can change the keys meanwhile, so the claim's are
            // current (and the attempt's result is kept until the database is back).
            Err(error) if version.is_none() && error.is_unavailable() => {
                self.keys(&delivery.auth_id, Some(delivery.keys_version)).await
            }
            other => other,
        };
        let keys = match keys {
            Ok(keys) => keys,
            Err(error) => {
                tracing::error!(%error, event_id = %delivery.event_id, "loading signing keys failed; retrying later");
                let at = clock::now() + TimeDelta::seconds(5);
                put_back(at).await;
                slot.abandon(probes);
                return true;
            }
        };
        if !self.inner.store.may_send(claimed_at, self.inner.sender.timeout()) {
            // Another node may hold it now (this one may have been judged dead): not sent here;
            // put back, if this claim still holds it.
            put_back(clock::now()).await;
            slot.abandon(probes);
            return true;
        }
        let event_id = delivery.event_id.to_string();
        let attempt_number = delivery.attempt_count + 1;
        let started_at = clock::now();
        let request = request::build(
            delivery.method,
            &url,
            &delivery.fields,
            &keys,
            &request::AttemptHeaders {
                event_id: &event_id,
                attempt: attempt_number,
                level: delivery.level,
                sequence: delivery.sequence,
                target: delivery.target,
            },
            &fresh(started_at),
        );
        let outcome = self.inner.sender.send(request).await;
        // The request is over: the permits and the claimed slot go now, not after the result is
        // recorded (which waits for the writer). Ordering does not depend on it: a later event
        // becomes claimable only once this result is committed. The breakers hear the outcome
        // first, so a task that takes these permits never finds a probe still open.
        let now = clock::now();
        slot.record(&outcome, probes, started_at, now);
        drop(send_permit);
        drop(slot);
        self.inner.metrics.attempt(&outcome);
        let retry_after = outcome
            .retry_after
            .as_deref()
            .and_then(|value| parse_retry_after(value, now.timestamp()));
        let policy_outcome = match outcome.error {
            None => AttemptOutcome::Success,
            Some(ErrorKind::Blocked) => AttemptOutcome::Blocked,
            Some(_) => AttemptOutcome::Failure { retry_after },
        };
        let fallback_available = delivery.target == TargetKind::Primary && delivery.fallback_url.is_some();
        let jitter: f64 = rand::thread_rng().gen_range(-1.0..=1.0);
        let decision = decide(
            &self.inner.config.policy,
            policy_outcome,
            delivery.target_attempts + 1,
            fallback_available,
            jitter,
        );
        let after = match decision {
            Decision::Delivered => AfterAttempt::Delivered,
            Decision::Retry(delay) => AfterAttempt::RetryAt(now + delta(delay)),
            Decision::Fallback => AfterAttempt::FallbackAt(now),
            Decision::Failed => AfterAttempt::Failed,
        };
        let record = AttemptRecord {
            attempt: attempt_number,
            target: delivery.target,
            url,
            started_at,
            latency_ms: u64::try_from(outcome.latency.as_millis()).unwrap_or(u64::MAX),
            status_code: outcome.status_code,
            error: outcome.error.map(|e| e.as_str().to_owned()),
            retry_after_ms: retry_after.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        };
        tracing::debug!(event_id, attempt = attempt_number, ?after, error = ?outcome.error, "attempt");
        let (done, recorded) = oneshot::channel();
        let finished = FinishedAttempt {
            delivery_id: delivery.delivery_id,
            attempt: record,
            after,
            lease_until: Some(lease_until),
        };
        if self.inner.recorder.send((finished, done)).is_err() {
            return true;
        }
        recorded.await.unwrap_or(true)
    }
}

/// How often a batch of results is written again while the database is away.
const RECORD_RETRY: Duration = Duration::from_millis(250);

/// Writes finished attempts in batches: whatever finished while the previous batch was being
/// written goes into the next transaction. Each attempt's task waits for its batch.
async fn record_loop(store: Arc<dyn Store>, mut recordings: mpsc::UnboundedReceiver<Recording>) {
    while let Some(first) = recordings.recv().await {
        let mut batch = vec![first];
        while batch.len() < RECORD_BATCH {
            match recordings.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let finished: Vec<FinishedAttempt> = batch.iter().map(|(f, _)| f.clone()).collect();
        let more = record_until_lease_ends(store.as_ref(), &finished).await;
        for (_, done) in batch {
            let _ = done.send(more);
        }
    }
}

/// Records a batch. While the database is away the results are kept and written again every
/// [`RECORD_RETRY`] until the batch's first lease ends: a short outage then repeats no
/// callback that was already answered. Past that, or on any other error, the leases expire and
/// the attempts are made again (at-least-once, same event ids).
async fn record_until_lease_ends(store: &dyn Store, finished: &[FinishedAttempt]) -> bool {
    let first_lease_end = finished.iter().filter_map(|f| f.lease_until).min();
    loop {
        let error = match store.record_attempts(finished, clock::now()).await {
            Ok(more) => return more,
            Err(error) => error,
        };
        let retry_at = clock::now() + delta(RECORD_RETRY);
        if !error.is_unavailable() || first_lease_end.is_none_or(|end| retry_at >= end) {
            tracing::error!(%error, n = finished.len(), "recording attempts failed");
            return true;
        }
        tracing::warn!(%error, n = finished.len(), "recording attempts failed; retrying");
        tokio::time::sleep(RECORD_RETRY).await;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn fresh(now: DateTime<Utc>) -> request::Freshness {
    let mut rng = rand::thread_rng();
    request::Freshness {
        nonces: signing::vobiz::Nonces {
            v2: signing::vobiz::nonce_from(rng.gen()),
            v3: signing::vobiz::nonce_from(rng.gen()),
        },
        unix_time: now.timestamp(),
    }
}

fn delta(duration: Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}

mod clock {
    //! The engine's one wall-clock read.
    use chrono::{DateTime, Utc};

    #[allow(clippy::disallowed_methods)]
    pub fn now() -> DateTime<Utc> {
        Utc::now()
    }
}

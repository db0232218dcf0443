//! Who may send to a target now (PRODUCT.md §4.2): isolation by endpoint, a ceiling per host.
//!
//! An *endpoint* is a callback URL without its query (scheme, host, port and path); a *host* is
//! its origin (scheme, host, port). Per-call query strings (`?call=…`) are common in status
//! URLs, so keying by the full URL would make every call its own endpoint.
//!
//! - **Ceiling**: at most `per_host_concurrency` attempts in flight to one host, whatever the
//!   endpoint: a remote host is never flooded.
//! - **Fair share**: an endpoint holds at most ⌊ceiling / endpoints of its host with work here⌋
//!   of those permits (at least one), and only one while its breaker counts failures. A path
//!   that hangs therefore holds one permit, not the host: the host's other paths keep theirs.
//! - **Claimed share**: an endpoint keeps at most [`CLAIMED_PER_PERMIT`] claimed deliveries per
//!   permit of its share (waiting or sending), a host the same per permit of its ceiling; the
//!   rest goes back to the queue ([`Deferral`]), so one slow endpoint cannot fill the engine.
//! - **Breakers**: one per endpoint for outcomes that say the endpoint is unhealthy (timeouts,
//!   5xx, 429 and connection failures); one per host for connection failures (connect, TLS)
//!   and for each endpoint once as it starts failing since the host's last success, counting
//!   only attempts begun after that success ([`host_verdict`]); a path known to fail does not
//!   get the host's probe while another path could take it. A hanging or failing path pauses itself, never its host's healthy
//!   paths; a host whose paths all fail is paused as a whole.
//!
//! The state lives in this process only: with several processes each keeps its own view, and
//! the ceiling holds per process.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sender::{ErrorKind, Outcome};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::breaker::{Admission, Breaker, BreakerConfig, BreakerState};
use crate::delta;

/// Claimed deliveries kept per permit of a share (waiting for it or sending).
pub const CLAIMED_PER_PERMIT: usize = 4;
/// How long deliveries beyond a healthy endpoint's claimed share stay back in the queue.
const SATURATED_DEFERRAL: Duration = Duration::from_millis(250);
/// Endpoints a host keeps (idle ones for their breakers' memory) before idle ones that are not
/// paused are dropped; the next sweep waits until the map has doubled again.
const ENDPOINTS_KEPT: usize = 1024;

/// Why a claimed delivery goes back to the queue unsent, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deferral(pub Duration);

/// The permits an endpoint may hold: its fair share of the host's ceiling among the host's
/// `active` endpoints (those with work here, itself included), and one while it is suspect.
pub fn allowance(ceiling: usize, active: usize, suspect: bool) -> usize {
    if suspect {
        1
    } else {
        (ceiling / active.max(1)).max(1)
    }
}

/// Whether an outcome says the endpoint is unhealthy (its breaker counts it).
pub fn endpoint_failing(outcome: &Outcome) -> bool {
    match outcome.error {
        None | Some(ErrorKind::Blocked | ErrorKind::Dns) => false,
        Some(ErrorKind::Status) => outcome.status_code.is_some_and(|c| c >= 500 || c == 429),
        Some(ErrorKind::Timeout | ErrorKind::Connect | ErrorKind::Tls) => true,
    }
}

/// What an outcome says about the whole host, for its breaker: `Some(true)` down (the
/// connection or its TLS failed, or the failure is the first of this endpoint since the host's
/// last success: `threshold` endpoints failing in a row), `Some(false)` up (it answered as an
/// endpoint should), `None` nothing new (another failure of an endpoint already counted — a
/// hanging or failing path alone never pauses its host — or nothing was sent). The caller
/// ignores failures of attempts begun before the host's last success.
pub fn host_verdict(outcome: &Outcome, first_of_endpoint: bool) -> Option<bool> {
    match outcome.error {
        Some(ErrorKind::Connect | ErrorKind::Tls) => Some(true),
        // Not sent at all: says nothing about the host.
        Some(ErrorKind::Dns | ErrorKind::Blocked) => None,
        _ if endpoint_failing(outcome) => first_of_endpoint.then_some(true),
        _ => Some(false),
    }
}

/// `(origin, path)` of a URL: the keys of the host and of the endpoint.
pub fn keys_of(url: &str) -> (String, String) {
    match url::Url::parse(url) {
        Ok(parsed) => (
            format!(
                "{}://{}:{}",
                parsed.scheme(),
                parsed.host_str().unwrap_or(""),
                parsed.port_or_known_default().unwrap_or(0)
            ),
            parsed.path().to_owned(),
        ),
        Err(_) => (url.to_owned(), String::new()),
    }
}

#[derive(Default)]
struct Endpoint {
    /// Claimed deliveries of this endpoint here, waiting or sending.
    queued: usize,
    in_flight: usize,
    breaker: Breaker,
    /// Woken when a permit of this endpoint's share frees up.
    freed: Arc<Notify>,
}

impl Endpoint {
    fn idle(&self) -> bool {
        self.queued == 0 && self.in_flight == 0
    }

    fn forgettable(&self) -> bool {
        self.idle() && self.breaker == Breaker::default()
    }
}

struct Host {
    permits: Arc<Semaphore>,
    breaker: Breaker,
    /// Endpoints that failed since the host's last success (up to the breaker's threshold).
    failing: HashSet<String>,
    /// When an attempt to one of its paths last succeeded.
    last_success: Option<DateTime<Utc>>,
    queued: usize,
    /// Endpoints with `queued > 0`.
    active: usize,
    endpoints: HashMap<String, Endpoint>,
    /// The endpoint count at which idle endpoints are swept next.
    sweep_at: usize,
}

impl Host {
    /// Nothing claimed and nothing its breaker must remember.
    fn forgettable(&self) -> bool {
        self.queued == 0 && self.endpoints.is_empty() && self.breaker == Breaker::default()
    }
}

/// Every host and endpoint this process sends to. Shared by the engine's tasks.
pub struct Targets {
    ceiling: usize,
    breaker: BreakerConfig,
    /// How long deliveries beyond a suspect endpoint's share stay back: about as long as the
    /// attempt it is waiting for may take.
    suspect_deferral: Duration,
    hosts: Mutex<HashMap<String, Host>>,
}

impl Targets {
    pub fn new(ceiling: usize, attempt_budget: Duration, breaker: BreakerConfig) -> Arc<Targets> {
        Arc::new(Targets {
            ceiling: ceiling.max(1),
            breaker,
            suspect_deferral: attempt_budget.max(SATURATED_DEFERRAL),
            hosts: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Host>> {
        self.hosts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a claimed delivery to `url` against its endpoint's and host's claimed shares, or
    /// says how long it should go back to the queue. The slot is given back on drop.
    pub fn claim(self: &Arc<Self>, url: &str, now: DateTime<Utc>) -> Result<Slot, Deferral> {
        let (origin, path) = keys_of(url);
        let mut hosts = self.lock();
        let host = hosts.entry(origin.clone()).or_insert_with(|| Host {
            permits: Arc::new(Semaphore::new(self.ceiling)),
            breaker: Breaker::default(),
            failing: HashSet::new(),
            last_success: None,
            queued: 0,
            active: 0,
            endpoints: HashMap::new(),
            sweep_at: ENDPOINTS_KEPT,
        });
        if host.endpoints.len() >= host.sweep_at {
            host.endpoints
                .retain(|_, e| !e.idle() || e.breaker.paused_until().is_some_and(|until| until > now));
            host.sweep_at = ENDPOINTS_KEPT.max(2 * host.endpoints.len());
        }
        let newly_active = usize::from(host.endpoints.get(&path).is_none_or(|e| e.queued == 0));
        let active = host.active + newly_active;
        let endpoint = host.endpoints.entry(path.clone()).or_default();
        let suspect = endpoint.breaker.is_suspect();
        let share = allowance(self.ceiling, active, suspect) * CLAIMED_PER_PERMIT;
        // The host's cap spares an endpoint's first few deliveries (an endpoint that cannot
        // claim never becomes active, so the fair share would never make room for it) up to
        // twice the cap: with per-call paths every delivery is a new endpoint.
        let cap = self.ceiling * CLAIMED_PER_PERMIT;
        let host_full =
            host.queued >= 2 * cap || (host.queued >= cap && endpoint.queued >= CLAIMED_PER_PERMIT);
        if endpoint.queued >= share || host_full {
            if endpoint.forgettable() {
                host.endpoints.remove(&path);
                if host.forgettable() {
                    hosts.remove(&origin);
                }
            }
            return Err(Deferral(if suspect {
                self.suspect_deferral
            } else {
                SATURATED_DEFERRAL
            }));
        }
        endpoint.queued += 1;
        host.queued += 1;
        host.active = active;
        Ok(Slot {
            targets: Arc::clone(self),
            origin,
            path,
        })
    }

    /// The breaker of every host known here and how many of its endpoints are paused, for
    /// the dashboard (this process's view: each node keeps its own breakers).
    pub fn snapshot(&self, now: DateTime<Utc>) -> Vec<HostSnapshot> {
        let hosts = self.lock();
        hosts
            .iter()
            .map(|(origin, host)| HostSnapshot {
                origin: origin.clone(),
                breaker: host.breaker.state(now),
                paused_endpoints: host
                    .endpoints
                    .values()
                    .filter(|e| matches!(e.breaker.state(now), BreakerState::Open(_)))
                    .count(),
            })
            .collect()
    }

    fn with_host<T>(&self, slot: &Slot, f: impl FnOnce(&mut Host) -> T) -> Option<T> {
        self.lock().get_mut(&slot.origin).map(f)
    }
}

/// A host's breaker as [`Targets::snapshot`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSnapshot {
    /// `scheme://host:port`.
    pub origin: String,
    pub breaker: BreakerState,
    /// Endpoints (paths) of the host whose own breaker is open.
    pub paused_endpoints: usize,
}

/// A claimed delivery's place in its endpoint's and host's shares.
pub struct Slot {
    targets: Arc<Targets>,
    origin: String,
    path: String,
}

/// Which breakers gave this attempt their one probe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Probes {
    host: bool,
    endpoint: bool,
}

impl Slot {
    /// Waits for a permit of the endpoint's share, then of the host's ceiling; `None` when
    /// `patience` runs out or the engine stops first.
    pub async fn send_permit(&self, patience: Duration, stopping: &CancellationToken) -> Option<SendPermit> {
        let acquire = async {
            let share = self.endpoint_share().await;
            let host = self.targets.with_host(self, |host| Arc::clone(&host.permits))?;
            let permit = host.acquire_owned().await.ok()?;
            Some(SendPermit {
                _host: permit,
                _share: share,
            })
        };
        tokio::select! {
            permit = tokio::time::timeout(patience, acquire) => permit.ok().flatten(),
            () = stopping.cancelled() => None,
        }
    }

    async fn endpoint_share(&self) -> EndpointShare {
        let share = || EndpointShare {
            targets: Arc::clone(&self.targets),
            origin: self.origin.clone(),
            path: self.path.clone(),
        };
        loop {
            let freed = {
                let mut hosts = self.targets.lock();
                let Some(host) = hosts.get_mut(&self.origin) else {
                    return share();
                };
                let active = host.active;
                let Some(endpoint) = host.endpoints.get_mut(&self.path) else {
                    return share();
                };
                let allowed = allowance(self.targets.ceiling, active, endpoint.breaker.is_suspect());
                if endpoint.in_flight < allowed {
                    endpoint.in_flight += 1;
                    if endpoint.in_flight < allowed {
                        // Several permits may have freed up while one waiter was being woken.
                        endpoint.freed.notify_one();
                    }
                    return share();
                }
                Arc::clone(&endpoint.freed)
            };
            // `notify_one` keeps a wake-up for a waiter that has not started waiting yet.
            freed.notified().await;
        }
    }

    /// What the host's and the endpoint's breakers say about sending now.
    pub fn admit(&self, now: DateTime<Utc>) -> Result<Probes, DateTime<Utc>> {
        let config = self.targets.breaker;
        self.targets
            .with_host(self, |host| {
                let on_host = host.breaker.admit(now, config);
                if let Admission::Wait(until) = on_host {
                    return Err(until);
                }
                let Some(endpoint) = host.endpoints.get_mut(&self.path) else {
                    return Ok(Probes {
                        host: on_host == Admission::Probe,
                        endpoint: false,
                    });
                };
                // A path known to fail would fail the host's probe and pause every path again: it
                // may probe only once the pause has been over for an attempt budget, when no
                // other path took the probe (every path fails: the host is down).
                let recently_paused = host
                    .breaker
                    .paused_until()
                    .is_some_and(|until| now < until + delta(self.targets.suspect_deferral));
                if on_host == Admission::Probe && endpoint.breaker.is_suspect() && recently_paused {
                    host.breaker.abandon_probe();
                    return Err(now + delta(SATURATED_DEFERRAL));
                }
                match endpoint.breaker.admit(now, config) {
                    Admission::Wait(until) => {
                        if on_host == Admission::Probe {
                            host.breaker.abandon_probe();
                        }
                        Err(until)
                    }
                    on_endpoint => Ok(Probes {
                        host: on_host == Admission::Probe,
                        endpoint: on_endpoint == Admission::Probe,
                    }),
                }
            })
            .unwrap_or(Ok(Probes::default()))
    }

    /// The attempt given `probes` was not sent after all.
    pub fn abandon(&self, probes: Probes) {
        self.targets.with_host(self, |host| {
            if probes.host {
                host.breaker.abandon_probe();
            }
            if probes.endpoint {
                if let Some(endpoint) = host.endpoints.get_mut(&self.path) {
                    endpoint.breaker.abandon_probe();
                }
            }
        });
    }

    /// Records the outcome of an attempt given `probes` and started at `started` with both
    /// breakers.
    pub fn record(&self, outcome: &Outcome, probes: Probes, started: DateTime<Utc>, now: DateTime<Utc>) {
        let config = self.targets.breaker;
        self.targets.with_host(self, |host| {
            // Attempts that ended together (their timers fire on the same tick) but began before
            // the host's last success say nothing against the host: it answered since.
            let verdict = if host.last_success.is_some_and(|at| at >= started) {
                host_verdict(outcome, false).filter(|down| !down)
            } else {
                let threshold = usize::try_from(config.threshold).unwrap_or(usize::MAX);
                let first_of_endpoint = endpoint_failing(outcome)
                    && host.failing.len() < threshold
                    && host.failing.insert(self.path.clone());
                host_verdict(outcome, first_of_endpoint)
            };
            match verdict {
                Some(false) => {
                    host.failing.clear();
                    host.last_success = Some(now);
                    host.breaker.record(false, now, config);
                }
                Some(true) => host.breaker.record(true, now, config),
                // A probe must end in a verdict: one more failing path is no proof of life.
                None if probes.host => host.breaker.record(true, now, config),
                None => {}
            }
            if let Some(endpoint) = host.endpoints.get_mut(&self.path) {
                let was_suspect = endpoint.breaker.is_suspect();
                endpoint.breaker.record(endpoint_failing(outcome), now, config);
                if was_suspect && !endpoint.breaker.is_suspect() {
                    // Its share grew back: a waiter may go now.
                    endpoint.freed.notify_one();
                }
            }
        });
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut hosts = self.targets.lock();
        let Some(host) = hosts.get_mut(&self.origin) else {
            return;
        };
        host.queued = host.queued.saturating_sub(1);
        if let Some(endpoint) = host.endpoints.get_mut(&self.path) {
            endpoint.queued = endpoint.queued.saturating_sub(1);
            if endpoint.queued == 0 {
                host.active = host.active.saturating_sub(1);
            }
            if endpoint.forgettable() {
                host.endpoints.remove(&self.path);
            }
        }
        if host.forgettable() {
            hosts.remove(&self.origin);
        }
    }
}

/// A permit of an endpoint's share; freed on drop.
struct EndpointShare {
    targets: Arc<Targets>,
    origin: String,
    path: String,
}

impl Drop for EndpointShare {
    fn drop(&mut self) {
        let mut hosts = self.targets.lock();
        if let Some(endpoint) = hosts
            .get_mut(&self.origin)
            .and_then(|host| host.endpoints.get_mut(&self.path))
        {
            endpoint.in_flight = endpoint.in_flight.saturating_sub(1);
            endpoint.freed.notify_one();
        }
    }
}

/// Leave to send one attempt: a permit of the endpoint's share and one of the host's ceiling.
/// Dropped when the request is over.
pub struct SendPermit {
    _host: OwnedSemaphorePermit,
    _share: EndpointShare,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(error: Option<ErrorKind>, status_code: Option<u16>) -> Outcome {
        Outcome {
            status_code,
            error,
            latency: Duration::ZERO,
            retry_after: None,
        }
    }

    #[test]
    fn keys_are_the_origin_and_the_path_without_the_query() {
        assert_eq!(
            keys_of("https://Example.com/hooks/a?call=1#x"),
            ("https://example.com:443".to_owned(), "/hooks/a".to_owned())
        );
        assert_eq!(
            keys_of("http://127.0.0.1:8080/ep/7"),
            ("http://127.0.0.1:8080".to_owned(), "/ep/7".to_owned())
        );
    }

    #[test]
    fn the_fair_share_divides_the_ceiling_and_a_suspect_endpoint_gets_one() {
        assert_eq!(allowance(32, 1, false), 32);
        assert_eq!(allowance(32, 10, false), 3);
        assert_eq!(allowance(32, 100, false), 1, "never less than one");
        assert_eq!(allowance(32, 0, false), 32);
        assert_eq!(allowance(32, 1, true), 1);
    }

    #[test]
    fn an_endpoints_failures_count_against_its_host_once_connection_failures_always() {
        let timeout = outcome(Some(ErrorKind::Timeout), None);
        assert!(endpoint_failing(&timeout));
        assert_eq!(host_verdict(&timeout, true), Some(true), "a newly failing path");
        assert_eq!(host_verdict(&timeout, false), None, "the same path again");
        for code in [500, 503, 429] {
            let status = outcome(Some(ErrorKind::Status), Some(code));
            assert!(endpoint_failing(&status), "{code}");
            assert_eq!(host_verdict(&status, false), None, "{code}");
        }
        let not_found = outcome(Some(ErrorKind::Status), Some(404));
        assert!(!endpoint_failing(&not_found));
        assert_eq!(host_verdict(&not_found, false), Some(false), "a live endpoint");
        for kind in [ErrorKind::Connect, ErrorKind::Tls] {
            let down = outcome(Some(kind), None);
            assert!(endpoint_failing(&down), "{kind:?}");
            assert_eq!(host_verdict(&down, false), Some(true), "{kind:?}");
        }
        for kind in [ErrorKind::Blocked, ErrorKind::Dns] {
            let refused = outcome(Some(kind), None);
            assert!(!endpoint_failing(&refused), "{kind:?}");
            assert_eq!(host_verdict(&refused, false), None, "{kind:?}: nothing was sent");
        }
        assert!(!endpoint_failing(&outcome(None, Some(200))));
    }

    const CONFIG: BreakerConfig = BreakerConfig {
        threshold: 2,
        pause: chrono::TimeDelta::seconds(5),
    };

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).expect("valid")
    }

    impl Targets {
        fn claim_now(self: &Arc<Self>, url: &str) -> Result<Slot, Deferral> {
            self.claim(url, now())
        }
    }

    #[test]
    fn claimed_shares_follow_the_fair_share_and_the_host_ceiling() {
        let targets = Targets::new(4, Duration::from_secs(3), CONFIG);
        // Alone on its host an endpoint may keep ceiling × CLAIMED_PER_PERMIT.
        let alone: Vec<Slot> = (0..16)
            .map(|_| targets.claim_now("http://h:1/a").expect("within the share"))
            .collect();
        assert_eq!(
            targets.claim_now("http://h:1/a").err(),
            Some(Deferral(SATURATED_DEFERRAL))
        );
        let newcomer: Vec<_> = (0..5).map(|_| targets.claim_now("http://h:1/b")).collect();
        assert_eq!(
            newcomer.iter().filter(|c| c.is_ok()).count(),
            CLAIMED_PER_PERMIT,
            "a full host still takes an endpoint's first few, so that it becomes active"
        );
        drop(newcomer);
        assert!(
            targets.claim_now("http://other:1/a").is_ok(),
            "other hosts are not"
        );
        drop(alone);
        // Two active endpoints share the ceiling: two permits each, eight claimed each.
        let a: Vec<Slot> = (0..8)
            .map(|_| targets.claim_now("http://h:1/a").expect("a"))
            .collect();
        let b: Vec<Slot> = (0..8)
            .map(|_| targets.claim_now("http://h:1/b").expect("b"))
            .collect();
        assert!(targets.claim_now("http://h:1/b").is_err());
        drop((a, b));
        assert!(targets.lock().is_empty(), "idle state is forgotten");
    }

    #[test]
    fn a_failing_endpoint_is_paused_and_limited_without_its_host() {
        let targets = Targets::new(8, Duration::from_secs(3), CONFIG);
        let bad = targets.claim_now("http://h:1/bad").expect("claim");
        let good = targets.claim_now("http://h:1/good").expect("claim");
        let timeout = outcome(Some(ErrorKind::Timeout), None);
        bad.record(&timeout, Probes::default(), now(), now());
        assert_eq!(
            targets.claim_now("http://h:1/bad").err(),
            None,
            "one failure: still a share of one permit (four claimed)"
        );
        bad.record(&timeout, Probes::default(), now(), now());
        assert!(bad.admit(now()).is_err(), "the endpoint is paused");
        assert_eq!(good.admit(now()), Ok(Probes::default()), "its host is not");
        let more: Vec<_> = (0..4).map(|_| targets.claim_now("http://h:1/bad")).collect();
        assert!(
            more.iter()
                .any(|r| r.as_ref().err() == Some(&Deferral(Duration::from_secs(3)))),
            "beyond a suspect endpoint's share deliveries go back for an attempt's budget"
        );
        let connect = outcome(Some(ErrorKind::Connect), None);
        good.record(&connect, Probes::default(), now(), now());
        good.record(&connect, Probes::default(), now(), now());
        assert!(good.admit(now()).is_err(), "connection failures pause the host");
    }

    #[test]
    fn per_call_paths_cannot_claim_more_than_twice_the_hosts_cap() {
        let targets = Targets::new(4, Duration::from_secs(3), CONFIG);
        let claimed: Vec<Slot> = (0..100)
            .filter_map(|i| targets.claim_now(&format!("http://h:1/calls/{i}")).ok())
            .collect();
        assert_eq!(claimed.len(), 2 * 4 * CLAIMED_PER_PERMIT);
    }

    #[test]
    fn a_path_known_to_fail_does_not_get_the_hosts_probe_while_another_can() {
        let targets = Targets::new(8, Duration::from_secs(3), CONFIG);
        let connect = outcome(Some(ErrorKind::Connect), None);
        let failing = targets.claim_now("http://h:1/failing").expect("claim");
        failing.record(&connect, Probes::default(), now(), now());
        failing.record(&connect, Probes::default(), now(), now());
        let after_pause = now() + CONFIG.pause;
        assert!(
            failing.admit(after_pause).is_err(),
            "the failing path does not take the host's probe"
        );
        let fresh = targets.claim_now("http://h:1/fresh").expect("claim");
        assert_eq!(
            fresh.admit(after_pause).map(|p| p.host),
            Ok(true),
            "a path not known to fail does"
        );
        fresh.abandon(Probes {
            host: true,
            endpoint: false,
        });
        let much_later = after_pause + chrono::TimeDelta::seconds(4);
        assert!(
            failing.admit(much_later).is_ok_and(|p| p.host),
            "once nobody else took it, even a failing path probes"
        );
    }

    #[test]
    fn a_host_whose_paths_all_fail_is_paused_one_failing_path_never_pauses_it() {
        let targets = Targets::new(8, Duration::from_secs(3), CONFIG);
        let unavailable = outcome(Some(ErrorKind::Status), Some(503));
        let one = targets.claim_now("http://h:1/one").expect("claim");
        for _ in 0..10 {
            one.record(&unavailable, Probes::default(), now(), now());
        }
        let other = targets.claim_now("http://h:1/other").expect("claim");
        assert!(
            other.admit(now()).is_ok(),
            "one failing path, however often, leaves the host open"
        );
        other.record(&unavailable, Probes::default(), now(), now());
        let third = targets.claim_now("http://h:1/third").expect("claim");
        assert!(
            third.admit(now()).is_err(),
            "two paths failing in a row (the threshold): the host is paused"
        );
        let fine = targets.claim_now("http://h:2/x").expect("claim");
        fine.record(
            &outcome(Some(ErrorKind::Timeout), None),
            Probes::default(),
            now(),
            now(),
        );
        fine.record(&outcome(None, Some(200)), Probes::default(), now(), now());
        let again = targets.claim_now("http://h:2/y").expect("claim");
        let later = now() + chrono::TimeDelta::milliseconds(1);
        again.record(
            &outcome(Some(ErrorKind::Timeout), None),
            Probes::default(),
            later,
            later,
        );
        assert!(
            again.admit(now()).is_ok(),
            "a success between two failing paths resets the host's count"
        );
        // Hanging paths whose attempts began before the host's last success time out together.
        let before = now() - chrono::TimeDelta::seconds(3);
        for path in ["/h1", "/h2", "/h3"] {
            let hanging = targets.claim_now(&format!("http://h:2{path}")).expect("claim");
            hanging.record(
                &outcome(Some(ErrorKind::Timeout), None),
                Probes::default(),
                before,
                now(),
            );
        }
        assert!(
            again.admit(now()).is_ok(),
            "failures of attempts begun before the host last succeeded do not count against it"
        );
    }

    #[tokio::test]
    async fn a_suspect_endpoint_sends_one_at_a_time_while_others_use_the_rest_of_the_ceiling() {
        let targets = Targets::new(4, Duration::from_secs(3), CONFIG);
        let stopping = CancellationToken::new();
        let patience = Duration::from_millis(50);
        let bad: Vec<Slot> = (0..3)
            .map(|_| targets.claim_now("http://h:1/bad").expect("claim"))
            .collect();
        bad[0].record(
            &outcome(Some(ErrorKind::Timeout), None),
            Probes::default(),
            now(),
            now(),
        );
        let held = bad[0].send_permit(patience, &stopping).await.expect("one permit");
        assert!(
            bad[1].send_permit(patience, &stopping).await.is_none(),
            "a suspect endpoint holds one permit at a time"
        );
        let good: Vec<Slot> = (0..3)
            .map(|_| targets.claim_now("http://h:1/good").expect("claim"))
            .collect();
        let mut permits = Vec::new();
        for slot in &good {
            permits.push(slot.send_permit(patience, &stopping).await);
        }
        assert_eq!(
            permits.iter().filter(|p| p.is_some()).count(),
            2,
            "the healthy endpoint gets its fair share (two of four) while the other hangs"
        );
        drop(held);
        assert!(
            bad[2].send_permit(patience, &stopping).await.is_some(),
            "the freed permit goes to the next delivery"
        );
    }
}

//! The simulated carrier (PRODUCT.md §3): plays each simulated call's script on timers.
//!
//! The script itself is pure (`domain::simulated::next_step`); this crate only keeps a timer
//! queue and applies each step through `Store::apply_report` — the same state machine the
//! switch interface uses — with the step's planned time as the event time. On start it loads
//! every unfinished simulated call, so a restarted server resumes them from their stored times.
//! It is not a SIP user agent and sends nothing over the network.
//!
//! Several nodes on one database: each plays the calls placed through it. Every few seconds a
//! node also adopts the unfinished calls whose next step is overdue (their node died, or the
//! database was away when it was due). A step is applied once whoever fires it: the store
//! applies reports under the call's row lock and refuses a duplicate (`Transition`), and the
//! loser re-plans from the stored state, so two players never record one step twice.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::simulated::{next_step, SimTimings};
use domain::{Call, CallUuid, Engine, Report};
use store::{Store, StoreError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long to wait before retrying a step the database refused for a transient reason.
const RETRY_AFTER_STORE_ERROR: Duration = Duration::from_secs(1);
/// How often unfinished calls are looked over for ones no node is playing.
const ADOPT_EVERY: Duration = Duration::from_secs(2);
/// A call not planned here whose next step is this late is adopted: its player is gone.
const ADOPT_WHEN_LATE_BY: Duration = Duration::from_secs(3);

/// The handle the API uses to hand calls to the carrier.
#[derive(Clone)]
pub struct Carrier {
    calls: mpsc::UnboundedSender<Call>,
}

/// Called after each recorded event (e.g. to wake delivery workers).
pub type OnEvent = Arc<dyn Fn() + Send + Sync>;

impl Carrier {
    /// Starts the carrier's task. It stops when `shutdown` is cancelled; unfinished calls are
    /// picked up again by the next start.
    pub fn spawn(
        store: Arc<dyn Store>,
        timings: SimTimings,
        shutdown: CancellationToken,
        on_event: OnEvent,
    ) -> (Carrier, JoinHandle<()>) {
        let (calls, inbox) = mpsc::unbounded_channel();
        let driver = Driver {
            store,
            timings,
            on_event,
            planned: HashMap::new(),
            timers: BinaryHeap::new(),
        };
        let task = tokio::spawn(driver.run(inbox, shutdown));
        (Carrier { calls }, task)
    }

    /// Plans (or re-plans, after a change such as an API hangup) a simulated call. Calls of
    /// other engines are ignored.
    pub fn plan(&self, call: &Call) {
        if call.engine == Engine::Simulated && self.calls.send(call.clone()).is_err() {
            tracing::warn!(call_uuid = %call.call_uuid, "carrier stopped; the call resumes on the next start");
        }
    }
}

/// A planned step: the report, the event time it will carry, and when to try it.
struct Step {
    at: DateTime<Utc>,
    report: Report,
    wake: DateTime<Utc>,
}

struct Driver {
    store: Arc<dyn Store>,
    timings: SimTimings,
    on_event: OnEvent,
    /// The one current step of each call; timer entries that no longer match are stale.
    planned: HashMap<CallUuid, Step>,
    timers: BinaryHeap<Reverse<(DateTime<Utc>, CallUuid)>>,
}

impl Driver {
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Call>, shutdown: CancellationToken) {
        self.adopt(Duration::ZERO).await;
        let mut adopt = tokio::time::interval(ADOPT_EVERY);
        adopt.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        adopt.tick().await;
        loop {
            let next_wake = self.timers.peek().map(|Reverse((wake, _))| *wake);
            let sleep = async {
                match next_wake {
                    Some(wake) => tokio::time::sleep(until(wake)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                received = inbox.recv() => match received {
                    Some(call) => self.schedule(&call),
                    None => break,
                },
                () = sleep => self.fire_due().await,
                _ = adopt.tick() => self.adopt(ADOPT_WHEN_LATE_BY).await,
            }
        }
    }

    /// Plans the unfinished calls not planned here whose next step is at least `late` overdue
    /// (at start: all of them).
    async fn adopt(&mut self, late: Duration) {
        let calls = match self.store.unfinished_simulated_calls().await {
            Ok(calls) => calls,
            Err(error) => {
                tracing::warn!(%error, "cannot load unfinished simulated calls");
                return;
            }
        };
        let cutoff = clock::now() - chrono::TimeDelta::from_std(late).unwrap_or_default();
        let mut adopted = 0;
        for call in &calls {
            let overdue = next_step(call, self.timings).is_some_and(|(at, _)| at <= cutoff);
            if !self.planned.contains_key(&call.call_uuid) && (late.is_zero() || overdue) {
                self.schedule(call);
                adopted += 1;
            }
        }
        if adopted > 0 {
            tracing::info!(calls = adopted, "resuming unfinished simulated calls");
        }
    }

    fn schedule(&mut self, call: &Call) {
        match next_step(call, self.timings) {
            Some((at, report)) => self.set(call.call_uuid, Step { at, report, wake: at }),
            None => {
                self.planned.remove(&call.call_uuid);
            }
        }
    }

    fn set(&mut self, call_uuid: CallUuid, step: Step) {
        self.timers.push(Reverse((step.wake, call_uuid)));
        self.planned.insert(call_uuid, step);
    }

    async fn fire_due(&mut self) {
        let now = clock::now();
        while let Some(Reverse((wake, call_uuid))) = self.timers.peek().copied() {
            if wake > now {
                break;
            }
            self.timers.pop();
            let current = self.planned.get(&call_uuid).is_some_and(|step| step.wake == wake);
            if current {
                if let Some(step) = self.planned.remove(&call_uuid) {
                    self.fire(call_uuid, step).await;
                }
            }
        }
    }

    async fn fire(&mut self, call_uuid: CallUuid, step: Step) {
        let result = self
            .store
            .apply_report(None, &call_uuid, step.report.clone(), step.at, clock::now())
            .await;
        match result {
            Ok(recorded) => {
                (self.on_event)();
                self.schedule(&recorded.call);
            }
            // The call moved on without us (hung up through the API): plan from where it is.
            Err(StoreError::Transition(_)) => match self.store.call(None, &call_uuid).await {
                Ok(Some(call)) => self.schedule(&call),
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, %call_uuid, "cannot reload a simulated call"),
            },
            Err(StoreError::NotFound) => {}
            Err(error) => {
                tracing::warn!(%error, %call_uuid, "simulated step failed; retrying");
                let wake =
                    clock::now() + chrono::TimeDelta::from_std(RETRY_AFTER_STORE_ERROR).unwrap_or_default();
                self.set(call_uuid, Step { wake, ..step });
            }
        }
    }
}

/// How long from now until `when` (zero if it has passed).
fn until(when: DateTime<Utc>) -> Duration {
    (when - clock::now()).to_std().unwrap_or(Duration::ZERO)
}

mod clock {
    //! The carrier's one wall-clock read.
    use chrono::{DateTime, Utc};

    #[allow(clippy::disallowed_methods)]
    pub fn now() -> DateTime<Utc> {
        Utc::now()
    }
}

//! The injector: drives Hookline through the public switch interface only, one request per
//! event, and records each event's submit time, in one of two workloads ([`Style`]).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::receiver::Receiver;
use crate::Hookline;

const EVENTS: [&str; 3] = ["Ring", "StartApp", "Hangup"];

/// How the injector drives Hookline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// s-scenarios: calls of four events, each after the previous was accepted, to one host
    /// (port) per endpoint; the submit time is when the request was answered.
    FourEvents,
    /// c-scenarios: every event a new call (one `CallInitiated` callback per request) to a path
    /// of one host; the submit time is taken just before the request is sent.
    NewCalls,
}

impl Style {
    pub fn of(scenario: &str) -> Style {
        if scenario.starts_with('c') {
            Style::NewCalls
        } else {
            Style::FourEvents
        }
    }

    pub fn events_per_call(self) -> usize {
        match self {
            Style::FourEvents => 4,
            Style::NewCalls => 1,
        }
    }

    /// The receiver layout of this workload.
    pub async fn receiver(
        self,
        endpoints: usize,
        hanging: HashSet<u32>,
        hang_for: Duration,
    ) -> anyhow::Result<Receiver> {
        match self {
            Style::FourEvents => Receiver::start(endpoints, hanging, hang_for).await,
            Style::NewCalls => Receiver::one_host(hanging, hang_for).await,
        }
    }
}

/// When each event was submitted (see [`Style`]), keyed like the receiver's arrivals.
pub type Submitted = Arc<Mutex<HashMap<(String, u32), Instant>>>;

fn mark(submitted: &Submitted, call: &str, sequence: u32, at: Instant) {
    if let Ok(mut s) = submitted.lock() {
        s.insert((call.to_owned(), sequence), at);
    }
}

/// Submits event `step` of `call` (0: register it, its `CallInitiated`; then `EVENTS`) and
/// records its submit time as `style` says. The c-scenarios' "just before the request is
/// sent" (the outside driver's definition) leaves out how late a paced injector was: on two
/// shared cores a task may start a millisecond or two after its tick (BENCHMARKS.md).
async fn submit(
    hookline: &Hookline,
    submitted: &Submitted,
    style: Style,
    call: &str,
    url: &str,
    step: usize,
) -> anyhow::Result<()> {
    let sequence = u32::try_from(step).unwrap_or(0) + 1;
    if style == Style::NewCalls {
        mark(submitted, call, sequence, Instant::now());
    }
    if step == 0 {
        hookline.register(call, url).await?;
    } else {
        hookline.report(call, EVENTS[step - 1]).await?;
    }
    if style == Style::FourEvents {
        mark(submitted, call, sequence, Instant::now());
    }
    Ok(())
}

/// One call's events, in order, each as soon as the previous was accepted.
async fn play_call(
    hookline: &Hookline,
    submitted: &Submitted,
    style: Style,
    call: &str,
    url: &str,
) -> anyhow::Result<()> {
    for step in 0..style.events_per_call() {
        submit(hookline, submitted, style, call, url, step).await?;
    }
    Ok(())
}

/// Runs `job(0)` … `job(count - 1)` on `in_flight` workers, each taking the next index.
pub async fn in_parallel<F, Fut>(count: usize, in_flight: usize, job: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let (job, next) = (Arc::new(job), Arc::new(AtomicUsize::new(0)));
    let mut workers = Vec::new();
    for _ in 0..in_flight {
        let (job, next) = (Arc::clone(&job), Arc::clone(&next));
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= count {
                    return Ok::<(), anyhow::Error>(());
                }
                job(i).await?;
            }
        }));
    }
    for worker in workers {
        worker.await??;
    }
    Ok(())
}

/// Throughput: `calls` calls (events as `style` says) with `in_flight` requests at once,
/// spread over `endpoints` endpoints.
pub async fn throughput(
    hookline: &Arc<Hookline>,
    receiver: &Receiver,
    calls: usize,
    endpoints: usize,
    in_flight: usize,
    style: Style,
) -> anyhow::Result<(Submitted, Instant, Instant)> {
    let submitted: Submitted = Arc::default();
    let started = Instant::now();
    let (shared_hookline, shared_submitted) = (Arc::clone(hookline), Arc::clone(&submitted));
    let targets = receiver.targets.clone();
    in_parallel(calls, in_flight, move |i| {
        let (hookline, submitted) = (Arc::clone(&shared_hookline), Arc::clone(&shared_submitted));
        let call = uuid::Uuid::new_v4().to_string();
        let url = targets.url(i % endpoints, &call);
        async move { play_call(&hookline, &submitted, style, &call, &url).await }
    })
    .await?;
    Ok((submitted, started, Instant::now()))
}

/// A steady `rate` events/s for `seconds`, in waves so a call's events are ≥ 100 ms apart.
pub async fn steady(
    hookline: &Arc<Hookline>,
    receiver: &Receiver,
    rate: f64,
    seconds: f64,
    endpoints: usize,
    style: Style,
) -> anyhow::Result<(Submitted, HashMap<String, usize>, Instant, Instant)> {
    let mut endpoint_of = HashMap::new();
    let submitted: Submitted = Arc::default();
    let total = (rate * seconds) as usize;
    let wave = ((rate / 10.0).max(1.0)) as usize; // calls per wave: one event each per 100 ms
    let period = Duration::from_secs_f64(1.0 / rate);
    let started = Instant::now();
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let limit = Arc::new(Semaphore::new(512));
    let mut sent = 0usize;
    let mut tasks = tokio::task::JoinSet::new();
    let mut call_index = 0usize;
    while sent < total {
        let calls: Vec<(String, usize)> = (0..wave)
            .map(|k| (uuid::Uuid::new_v4().to_string(), (call_index + k) % endpoints))
            .collect();
        call_index += wave;
        endpoint_of.extend(calls.iter().cloned());
        for step in 0..style.events_per_call() {
            for (call, endpoint) in &calls {
                if sent >= total {
                    break;
                }
                ticker.tick().await;
                let permit = Arc::clone(&limit).acquire_owned().await?;
                let (hookline, submitted) = (Arc::clone(hookline), Arc::clone(&submitted));
                let (call, url) = (call.clone(), receiver.url(*endpoint, call));
                tasks.spawn(async move {
                    let result = submit(&hookline, &submitted, style, &call, &url, step).await;
                    drop(permit);
                    result
                });
                sent += 1;
            }
            // The next step of these calls must come after this one was accepted: wait for the
            // slowest (the ticker then bursts to keep the rate). Collecting only the finished
            // ones sent an event before its call existed whenever a registration took longer
            // than a wave (seen on PostgreSQL with two nodes: 404 for the event).
            while let Some(done) = tasks.join_next().await {
                done??;
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok((submitted, endpoint_of, started, Instant::now()))
}

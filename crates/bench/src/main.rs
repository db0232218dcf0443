//! `hookline-bench`: measures callback delivery end to end on one machine (BENCHMARKS.md).
//!
//! It starts a release `hookline serve` as a separate process on a temporary SQLite database
//! (production settings, plus `--dev` so loopback targets are allowed), a fast loopback
//! receiver, and injects work through the public switch interface only — one request per
//! event. It reports the submit rate, delivered callbacks/s (first submit → last receipt),
//! latency submit → receipt, lost and duplicate callbacks, the server's peak RSS and CPU time.
//! All traffic stays on 127.0.0.1; every loop is bounded in count and time.
//!
//! Two workloads ([`Style`]):
//! - **s1–s5**: calls of four events (register, then `Ring`, `StartApp`, `Hangup`, each after
//!   the previous was accepted) to endpoints that are each their own host (one port each); an
//!   event's submit time is when its request was answered.
//! - **c1, c3, c4** (an outside load driver's workload): every event is a new call registered
//!   through `POST /api/v1/switch/calls` — one `CallInitiated` callback per request — to paths
//!   `/ep/0` … `/ep/99` of one receiver host, which identifies a callback by the body's
//!   `CallUUID` and the `X-Hookline-Sequence` header. Latency runs from just before the request
//!   is sent. c1: 20 000 events to 1 path, 64 in flight · c3: 500/s for 20 s over 10 paths ·
//!   c4: 200/s for 20 s over 100 paths, /ep/0–/ep/9 hanging 6 s; the 90 healthy are measured
//!   and awaited until all arrived or 20 s pass without a new one, the rest reported as lost.
//!
//! `--quick` runs a short fixed suite (c1, c3, c4 at `--scale 0.25`: 5 000 events, 5 s, 5 s;
//! one run each; under a minute on 2 cores) and prints the same table; it overrides the
//! scenario list, `--runs` and `--scale`.
#![allow(clippy::print_stdout)] // A benchmark's report is its output.
#![allow(clippy::disallowed_methods)] // The injector is a client of Hookline, not part of it.

mod inject;
mod receiver;

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use serde_json::{json, Value};

use inject::{in_parallel, steady, throughput, Style, Submitted};
use receiver::Receiver;

const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";

#[derive(Parser)]
#[command(about = "End-to-end delivery benchmark of Hookline (all traffic on 127.0.0.1)")]
struct Args {
    /// Scenarios to run: limit s1 s2 s3 s4 s5 (calls of four events, one host per endpoint),
    /// c1 c3 c4 (one new call per event, endpoints as paths of one host)
    #[arg(default_values_t = ["limit".to_owned(), "s1".into(), "s2".into(), "s3".into(), "s4".into(), "s5".into()])]
    scenarios: Vec<String>,
    /// Runs of each scenario (the report gives the median and range)
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// The hookline binary (build it with `cargo build --release`)
    #[arg(long, default_value = "target/release/hookline")]
    hookline: PathBuf,
    /// Scale the event counts and durations down for a quick check (1.0 = the documented sizes)
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Quick check in under a minute: c1 c3 c4 at --scale 0.25 (5 000 events, 5 s, 5 s), one run
    /// each; overrides the scenario list, --runs and --scale
    #[arg(long)]
    quick: bool,
}

/// The scenarios, runs and scale of `--quick`.
const QUICK: (&[&str], usize, f64) = (&["c1", "c3", "c4"], 1, 0.25);

/// One run's figures.
#[derive(Debug, Clone, Default)]
struct Figures {
    events: u64,
    submit_per_s: f64,
    delivered_per_s: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    lost: u64,
    duplicates: u64,
    peak_rss_mib: f64,
    cpu_s: f64,
}

/// A running `hookline serve`.
struct Hookline {
    child: Child,
    base: String,
    auth_id: String,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Hookline {
    async fn start(binary: &PathBuf, extra: &[&str]) -> anyhow::Result<Hookline> {
        let dir = tempfile::tempdir()?;
        let database = format!("sqlite://{}/hookline.db", dir.path().display());
        let mut child = Command::new(binary)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--dev",
                "--offline-dns",
                "--database",
                &database,
            ])
            .args(["--admin-token", ADMIN_TOKEN, "--secret-key", "bench server key"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (run `cargo build --release` first)",
                    binary.display()
                )
            })?;
        let stdout = child.stdout.take().context("stdout")?;
        let base = tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let line = line?;
                if let Some(url) = line.strip_prefix("hookline listening on ") {
                    return Ok(url.trim().to_owned());
                }
            }
            bail!("hookline exited before listening")
        })
        .await??;
        let http = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
        let created: Value = http
            .post(format!("{base}/api/v1/admin/accounts"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"name": "bench"}))
            .send()
            .await?
            .json()
            .await?;
        let auth_id = created["auth_id"].as_str().context("auth_id")?.to_owned();
        Ok(Hookline {
            child,
            base,
            auth_id,
            _dir: dir,
            http,
        })
    }

    /// VmHWM (MiB) and user+system CPU seconds of the server process.
    fn usage(&self) -> (f64, f64) {
        let pid = self.child.id();
        let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
            })
            .map_or(0.0, |kb| kb / 1024.0);
        let ticks = 100.0; // USER_HZ on Linux
        let cpu = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                let after = s.rsplit_once(") ")?.1.split_whitespace().collect::<Vec<_>>();
                let utime: f64 = after.get(11)?.parse().ok()?;
                let stime: f64 = after.get(12)?.parse().ok()?;
                Some((utime + stime) / ticks)
            })
            .unwrap_or(0.0);
        (rss, cpu)
    }

    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let answer = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(body)
            .send()
            .await?;
        let status = answer.status();
        let value: Value = answer.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{path} answered {status}: {value}");
        }
        Ok(value)
    }

    /// Registers a call (its `CallInitiated` is event 1) whose status callbacks go to `url`.
    async fn register(&self, call: &str, url: &str) -> anyhow::Result<()> {
        let body = json!({"auth_id": self.auth_id, "direction": "outbound", "from": "+14155551234",
            "to": "+14155550100", "call_uuid": call, "status_url": url});
        self.post("/api/v1/switch/calls", &body).await.map(|_| ())
    }

    async fn report(&self, call: &str, event: &str) -> anyhow::Result<()> {
        self.post(
            &format!("/api/v1/switch/calls/{call}/events"),
            &json!({"event": event}),
        )
        .await
        .map(|_| ())
    }
}

impl Drop for Hookline {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Compares what was submitted with what arrived.
fn figures(
    submitted: &Submitted,
    receiver: &Receiver,
    started: Instant,
    submit_done: Instant,
    measured: &dyn Fn(&str) -> bool,
    hookline: &Hookline,
) -> Figures {
    let submitted = submitted.lock().map(|s| s.clone()).unwrap_or_default();
    let seen = receiver
        .shared
        .seen
        .lock()
        .map(|s| s.arrivals.clone())
        .unwrap_or_default();
    let mut latencies = Vec::new();
    let (mut lost, mut duplicates, mut last) = (0u64, 0u64, started);
    let mut counted = 0u64;
    for ((call, sequence), at) in &submitted {
        let url_key = call.as_str();
        if !measured(url_key) {
            continue;
        }
        counted += 1;
        match seen.get(&(call.clone(), *sequence)) {
            None => lost += 1,
            Some(times) => {
                duplicates += times.len().saturating_sub(1) as u64;
                let first = times.iter().min().copied().unwrap_or(*at);
                last = last.max(first);
                latencies.push(first.saturating_duration_since(*at).as_secs_f64() * 1000.0);
            }
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let (rss, cpu) = hookline.usage();
    let n = submitted.len() as f64;
    Figures {
        events: counted,
        submit_per_s: n / submit_done.duration_since(started).as_secs_f64(),
        delivered_per_s: (counted - lost) as f64 / last.duration_since(started).as_secs_f64().max(1e-9),
        p50_ms: percentile(&latencies, 50.0),
        p90_ms: percentile(&latencies, 90.0),
        p99_ms: percentile(&latencies, 99.0),
        max_ms: latencies.last().copied().unwrap_or(0.0),
        lost,
        duplicates,
        peak_rss_mib: rss,
        cpu_s: cpu,
    }
}

async fn run_scenario(name: &str, args: &Args) -> anyhow::Result<Figures> {
    let scale = args.scale;
    let count = |n: f64| ((n * scale) as usize).max(4);
    let style = Style::of(name);
    match name {
        "s1" | "s2" | "c1" => {
            let endpoints = if name == "s2" { 100 } else { 1 };
            let receiver = style.receiver(endpoints, HashSet::new(), Duration::ZERO).await?;
            let hookline = Arc::new(Hookline::start(&args.hookline, &[]).await?);
            let calls = count(20_000.0) / style.events_per_call();
            let (submitted, started, done) =
                throughput(&hookline, &receiver, calls, endpoints, 64, style).await?;
            let expected = submitted.lock().map(|s| s.len()).unwrap_or(0) as u64;
            receiver
                .wait_for(expected, Instant::now() + Duration::from_secs(120))
                .await;
            Ok(figures(
                &submitted,
                &receiver,
                started,
                done,
                &|_| true,
                &hookline,
            ))
        }
        "s3" | "c3" => {
            let receiver = style.receiver(10, HashSet::new(), Duration::ZERO).await?;
            let hookline = Arc::new(Hookline::start(&args.hookline, &[]).await?);
            let (submitted, _, started, done) =
                steady(&hookline, &receiver, 500.0, 20.0 * scale, 10, style).await?;
            let expected = submitted.lock().map(|s| s.len()).unwrap_or(0) as u64;
            receiver
                .wait_for(expected, Instant::now() + Duration::from_secs(60))
                .await;
            Ok(figures(
                &submitted,
                &receiver,
                started,
                done,
                &|_| true,
                &hookline,
            ))
        }
        "s4" | "c4" => {
            let hanging: HashSet<u32> = (0..10).collect();
            let receiver = style.receiver(100, hanging, Duration::from_secs(6)).await?;
            let hookline = Arc::new(Hookline::start(&args.hookline, &[]).await?);
            let (submitted, endpoint_of, started, done) =
                steady(&hookline, &receiver, 200.0, 20.0 * scale, 100, style).await?;
            // Endpoints 0–9 hang; only the 90 healthy ones are measured and awaited.
            let healthy: HashSet<String> = endpoint_of
                .into_iter()
                .filter(|(_, e)| *e >= 10)
                .map(|(call, _)| call)
                .collect();
            let expected = submitted
                .lock()
                .map(|s| s.keys().filter(|(call, _)| healthy.contains(call)).count())
                .unwrap_or(0) as u64;
            // s4: up to 60 s. c4: until 20 s pass without a new callback (at most 5 min), so
            // the figures show how many never came.
            let (quiet, wait) = match style {
                Style::FourEvents => (Duration::MAX, Duration::from_secs(60)),
                // Scaled with the run (at least 5 s), so --quick stays under a minute.
                Style::NewCalls => (
                    Duration::from_secs_f64((20.0 * scale).max(5.0)),
                    Duration::from_secs_f64((300.0 * scale).max(30.0)),
                ),
            };
            receiver.wait_quiet(expected, quiet, Instant::now() + wait).await;
            Ok(figures(
                &submitted,
                &receiver,
                started,
                done,
                &|call| healthy.contains(call),
                &hookline,
            ))
        }
        "s5" => {
            let receiver = Receiver::start(10, HashSet::new(), Duration::ZERO).await?;
            receiver.shared.refusing.store(true, Ordering::SeqCst);
            // A long refusal must not exhaust the retry budget of the first deliveries.
            let hookline = Arc::new(Hookline::start(&args.hookline, &["--retry-max", "50"]).await?);
            let (submitted, _, _) =
                throughput(&hookline, &receiver, count(100_000.0) / 4, 10, 64, style).await?;
            let expected = submitted.lock().map(|s| s.len()).unwrap_or(0) as u64;
            let released = Instant::now();
            receiver.shared.refusing.store(false, Ordering::SeqCst);
            receiver
                .wait_for(expected, Instant::now() + Duration::from_secs(600))
                .await;
            let mut f = figures(&submitted, &receiver, released, released, &|_| true, &hookline);
            f.submit_per_s = 0.0;
            f.p50_ms = 0.0;
            f.p90_ms = 0.0;
            f.p99_ms = 0.0;
            f.max_ms = 0.0;
            Ok(f)
        }
        "limit" => limit(args).await,
        other => bail!("unknown scenario {other}"),
    }
}

/// The physical ceiling: a bare HTTP client posting to the same receiver at 64 in flight.
async fn limit(args: &Args) -> anyhow::Result<Figures> {
    let receiver = Receiver::start(1, HashSet::new(), Duration::ZERO).await?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    let total = ((20_000.0 * args.scale) as usize).max(64);
    let url = receiver.url(0, "limit");
    let started = Instant::now();
    in_parallel(total, 64, move |i| {
        let request = http
            .post(&url)
            .header("x-hookline-sequence", i.to_string())
            .body("Event=Ring");
        async move {
            request.send().await?;
            Ok(())
        }
    })
    .await?;
    let elapsed = started.elapsed().as_secs_f64();
    Ok(Figures {
        events: total as u64,
        delivered_per_s: total as f64 / elapsed,
        ..Figures::default()
    })
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn report(name: &str, runs: &[Figures]) {
    let column = |f: &dyn Fn(&Figures) -> f64| {
        let mut values: Vec<f64> = runs.iter().map(f).collect();
        let (lo, hi) = (
            values.iter().copied().fold(f64::INFINITY, f64::min),
            values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        );
        let m = median(&mut values);
        if (hi - lo).abs() < f64::EPSILON {
            format!("{m:.1}")
        } else {
            format!("{m:.1} ({lo:.1}–{hi:.1})")
        }
    };
    println!(
        "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        runs.first().map_or(0, |f| f.events),
        column(&|f| f.submit_per_s),
        column(&|f| f.delivered_per_s),
        column(&|f| f.p50_ms),
        column(&|f| f.p90_ms),
        column(&|f| f.p99_ms),
        column(&|f| f.max_ms),
        runs.iter().map(|f| f.lost).sum::<u64>(),
        runs.iter().map(|f| f.duplicates).sum::<u64>(),
        column(&|f| f.peak_rss_mib),
        column(&|f| f.cpu_s),
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.quick {
        let (scenarios, runs, scale) = QUICK;
        args.scenarios = scenarios.iter().map(|s| (*s).to_owned()).collect();
        (args.runs, args.scale) = (runs, scale);
    }
    println!("| scenario | events | submit/s | delivered/s | p50 ms | p90 ms | p99 ms | max ms | lost | dup | peak RSS MiB | CPU s |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for name in &args.scenarios {
        let mut runs = Vec::new();
        for _ in 0..args.runs {
            runs.push(
                run_scenario(name, &args)
                    .await
                    .with_context(|| format!("scenario {name}"))?,
            );
        }
        report(name, &runs);
    }
    Ok(())
}

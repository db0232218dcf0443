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
//! `--database postgres` runs each scenario on a fresh database of a throwaway PostgreSQL 15
//! cluster (`pgcluster`, started once, PostgreSQL's durable defaults: `fsync` and
//! `synchronous_commit` on) instead of a temporary SQLite file; `--nodes 2` (PostgreSQL only)
//! starts two `hookline serve` on that database, with one account created through the first,
//! and splits the calls between their APIs. On PostgreSQL the report adds the cluster's CPU
//! (every process of the cluster, measured before and after the run) and the CPU per event of
//! Hookline and PostgreSQL together; problems (a node's stderr, the server log's errors) are
//! printed to stderr.
//!
//! `--quick` runs a short fixed suite (c1, c3, c4 at `--scale 0.25`: 5 000 events, 5 s, 5 s;
//! one run each; under a minute on 2 cores) and prints the same table; it overrides the
//! scenario list, `--runs` and `--scale`.
#![allow(clippy::print_stdout)] // A benchmark's report is its output.
#![allow(clippy::disallowed_methods)] // The injector is a client of Hookline, not part of it.

mod inject;
mod receiver;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
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
    /// The database of each run: sqlite (a temporary file) or postgres (a fresh database on a
    /// throwaway PostgreSQL 15 cluster started once, fsync and synchronous_commit on)
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    database: Backend,
    /// `hookline serve` processes sharing each run's database (more than one needs
    /// --database postgres); the calls are split between their APIs, all of them deliver
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=8))]
    nodes: u16,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
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
    /// Summed over the nodes.
    peak_rss_mib: f64,
    /// Hookline's CPU (summed over the nodes), from their start.
    cpu_s: f64,
    /// The PostgreSQL cluster's CPU from before the nodes started (0 on SQLite).
    pg_cpu_s: f64,
    /// (Hookline + PostgreSQL CPU) per submitted event, in ms.
    cpu_ms_per_event: f64,
}

/// What every run deploys (`--database`, `--nodes`), the same for the whole invocation.
struct Deployment {
    /// Absolute, since each node runs in its own directory.
    binary: PathBuf,
    /// The throwaway cluster of `--database postgres`, started once.
    cluster: Option<Arc<pgcluster::Cluster>>,
    nodes: usize,
}

impl Deployment {
    fn new(args: &Args) -> anyhow::Result<Deployment> {
        let nodes = usize::from(args.nodes);
        if nodes > 1 && args.database == Backend::Sqlite {
            bail!(
                "--nodes {nodes} needs --database postgres: on SQLite one `hookline serve` \
                 holds the database (one writer), so several nodes cannot share it"
            );
        }
        let cluster = match args.database {
            Backend::Sqlite => None,
            Backend::Postgres => Some(Arc::new(
                pgcluster::Cluster::start(pgcluster::Options::durable()).with_context(|| {
                    format!(
                        "starting a throwaway PostgreSQL cluster (programs in {}, or ${})",
                        pgcluster::DEFAULT_BIN_DIR,
                        pgcluster::BIN_DIR_VAR
                    )
                })?,
            )),
        };
        Ok(Deployment {
            // A missing binary is reported when a run starts it (`limit` needs none).
            binary: std::fs::canonicalize(&args.hookline).unwrap_or_else(|_| args.hookline.clone()),
            cluster,
            nodes,
        })
    }

    /// The report's header: which database, how many nodes, what the CPU columns count.
    fn describe(&self) -> anyhow::Result<String> {
        let Some(cluster) = &self.cluster else {
            return Ok("database: SQLite, a fresh temporary file per run · nodes: 1".to_owned());
        };
        // What the server really runs with, not what was asked for.
        let settings = cluster
            .psql(
                &cluster.url("postgres"),
                "SELECT current_setting('server_version'), current_setting('fsync'), \
                 current_setting('synchronous_commit'), current_setting('full_page_writes')",
            )
            .context("reading the cluster's settings")?;
        let mut fields = settings.trim().split('|');
        let mut field = || fields.next().unwrap_or("?").to_owned();
        let (version, fsync, synchronous_commit, full_page_writes) = (field(), field(), field(), field());
        let nodes = if self.nodes == 1 {
            "1".to_owned()
        } else {
            format!(
                "{} `hookline serve` on the same database (same --secret-key, one account made \
                 through node 1), each call's events to one node's API (calls split by call id), \
                 any node delivers",
                self.nodes
            )
        };
        Ok(format!(
            "database: PostgreSQL {version} on 127.0.0.1:{} (throwaway cluster, fsync {fsync}, \
             synchronous_commit {synchronous_commit}, full_page_writes {full_page_writes}), a fresh \
             database per run · nodes: {nodes} · peak RSS and hookline CPU summed over the nodes; \
             PG CPU: all the cluster's processes during the run; CPU ms/event: (hookline + PG CPU) \
             per submitted event",
            cluster.port()
        ))
    }
}

/// One run's PostgreSQL database, dropped after the run (after its nodes, see [`Hookline`]).
struct Database {
    cluster: Arc<pgcluster::Cluster>,
    url: String,
    /// Where the server log stood when the database was made.
    log_from: u64,
}

impl Database {
    fn create(cluster: &Arc<pgcluster::Cluster>) -> anyhow::Result<Database> {
        let log_from = std::fs::metadata(cluster.log_path()).map_or(0, |m| m.len());
        let url = cluster.create_database().context("creating the run's database")?;
        Ok(Database {
            cluster: Arc::clone(cluster),
            url,
            log_from,
        })
    }
}

impl Drop for Database {
    /// Prints the server log's warnings and errors of this run, then drops the database.
    fn drop(&mut self) {
        let log = std::fs::read(self.cluster.log_path()).unwrap_or_default();
        let start = usize::try_from(self.log_from)
            .unwrap_or(usize::MAX)
            .min(log.len());
        let problems: Vec<String> = String::from_utf8_lossy(&log[start..])
            .lines()
            .filter(|l| {
                ["WARNING:", "ERROR:", "FATAL:", "PANIC:"]
                    .iter()
                    .any(|w| l.contains(w))
            })
            .map(str::to_owned)
            .collect();
        print_excerpt(&format!("PostgreSQL log ({})", self.url), &problems);
        if let Err(error) = self.cluster.drop_database(&self.url) {
            eprintln!("  dropping {}: {error}", self.url);
        }
    }
}

/// One `hookline serve` process, in its own temporary directory, on its own port.
struct Node {
    /// 1, 2, … for messages.
    number: usize,
    child: Child,
    base: String,
    dir: tempfile::TempDir,
}

impl Node {
    /// Starts a node on `database` (a PostgreSQL URL), or on a SQLite file in its directory.
    async fn start(
        binary: &Path,
        number: usize,
        database: Option<&str>,
        extra: &[&str],
    ) -> anyhow::Result<Node> {
        let dir = tempfile::tempdir()?;
        let database = database.map_or_else(
            || format!("sqlite://{}/hookline.db", dir.path().display()),
            str::to_owned,
        );
        let stderr = std::fs::File::create(dir.path().join("stderr.log"))?;
        let child = Command::new(binary)
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
            // The bench measures the engine at its limit; a 429 would be counted as a failure.
            .args(["--operator-rate-limit", "0"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (run `cargo build --release` first)",
                    binary.display()
                )
            })?;
        // From here on, `Drop` stops it (and prints its stderr) if it does not come up.
        let mut node = Node {
            number,
            child,
            base: String::new(),
            dir,
        };
        let stdout = node.child.stdout.take().context("stdout")?;
        let listening = tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let line = line?;
                if let Some(url) = line.strip_prefix("hookline listening on ") {
                    return Ok(url.trim().to_owned());
                }
            }
            bail!("hookline exited before listening")
        });
        node.base = tokio::time::timeout(Duration::from_secs(60), listening)
            .await
            .context("hookline did not listen within 60 s")???;
        Ok(node)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Node {
    /// Stops the node and prints what it wrote to stderr (warnings and errors: `RUST_LOG=warn`)
    /// but the expected warnings of `--dev`.
    fn drop(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            eprintln!(
                "  node {} had exited before the end of the run: {status}",
                self.number
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let stderr = std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default();
        // The two warnings of `--dev` at every start are expected; the rest is worth seeing.
        let lines: Vec<String> = stderr
            .lines()
            .filter(|l| !l.contains(" hookline: dev mode"))
            .map(str::to_owned)
            .collect();
        print_excerpt(&format!("node {} stderr", self.number), &lines);
    }
}

/// Prints `lines` to stderr under `title` (the first 15 and the last 5), if there are any.
fn print_excerpt(title: &str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    eprintln!("  {title}: {} lines", lines.len());
    let (head, tail) = (15, 5);
    for line in lines.iter().take(head) {
        eprintln!("    {line}");
    }
    if lines.len() > head + tail {
        eprintln!("    … {} more …", lines.len() - head - tail);
    }
    for line in lines.iter().skip(head.max(lines.len().saturating_sub(tail))) {
        eprintln!("    {line}");
    }
}

/// What a run's processes used.
struct Usage {
    peak_rss_mib: f64,
    cpu_s: f64,
    pg_cpu_s: Option<f64>,
}

/// The benchmarked service: one or more nodes on one database, and the account the injector
/// uses on all of them.
struct Hookline {
    /// Declared before `database`, so the nodes stop before the database is dropped.
    nodes: Vec<Node>,
    auth_id: String,
    http: reqwest::Client,
    /// The cluster's CPU seconds before the nodes started (PostgreSQL only).
    pg_cpu_before: Option<f64>,
    database: Option<Database>,
}

impl Hookline {
    async fn start(deployment: &Deployment, extra: &[&str]) -> anyhow::Result<Hookline> {
        let database = deployment.cluster.as_ref().map(Database::create).transpose()?;
        let pg_cpu_before = database
            .as_ref()
            .map(|d| pg_cpu_seconds(&d.cluster))
            .transpose()?;
        let mut nodes = Vec::new();
        // One after the other: the first migrates the fresh database, the others find it done.
        for number in 1..=deployment.nodes {
            let url = database.as_ref().map(|d| d.url.as_str());
            nodes.push(Node::start(&deployment.binary, number, url, extra).await?);
        }
        let http = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
        // One account, made through node 1, used on every node.
        let created: Value = http
            .post(format!("{}/api/v1/admin/accounts", nodes[0].base))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"name": "bench"}))
            .send()
            .await?
            .json()
            .await?;
        let auth_id = created["auth_id"].as_str().context("auth_id")?.to_owned();
        Ok(Hookline {
            nodes,
            auth_id,
            http,
            pg_cpu_before,
            database,
        })
    }

    /// The node whose API takes every event of `call`: calls are split between the nodes by
    /// their id (random UUIDs, so about evenly).
    fn node_for(&self, call: &str) -> &Node {
        if self.nodes.len() == 1 {
            return &self.nodes[0];
        }
        let hash = call
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        &self.nodes[usize::try_from(hash % self.nodes.len() as u64).unwrap_or(0)]
    }

    /// Peak RSS (VmHWM, MiB) and user+system CPU seconds, summed over the nodes, and the
    /// cluster's CPU seconds since the nodes started.
    fn usage(&self) -> Usage {
        let (mut peak_rss_mib, mut cpu_s) = (0.0, 0.0);
        for node in &self.nodes {
            let pid = node.pid();
            peak_rss_mib += std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("VmHWM:"))
                        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
                })
                .map_or(0.0, |kb| kb / 1024.0);
            match proc_stat(pid) {
                Some(stat) if stat.state != 'Z' => cpu_s += stat.own_seconds(),
                _ => eprintln!("  node {} is not running at the end of the run", node.number),
            }
        }
        let pg_cpu_s = match (&self.database, self.pg_cpu_before) {
            (Some(database), Some(before)) => pg_cpu_seconds(&database.cluster)
                .map_err(|error| eprintln!("  PG CPU: {error:#}"))
                .ok()
                .map(|after| after - before),
            _ => None,
        };
        Usage {
            peak_rss_mib,
            cpu_s,
            pg_cpu_s,
        }
    }

    /// Each node's events recorded and delivery attempts by outcome, from its `/metrics`.
    async fn attempts(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for node in &self.nodes {
            let text = match self
                .http
                .get(format!("{}/metrics", node.base))
                .timeout(Duration::from_secs(10))
                .send()
                .await
            {
                Ok(answer) => answer.text().await.unwrap_or_default(),
                Err(error) => format!("unreadable: {error}"),
            };
            let outcomes: Vec<String> = text
                .lines()
                .filter_map(|l| l.strip_prefix("hookline_attempts_total{outcome=\""))
                .filter_map(|l| l.split_once("\"} "))
                .map(|(outcome, count)| format!("{outcome} {}", count.trim()))
                .collect();
            let outcomes = if outcomes.is_empty() {
                "none".to_owned()
            } else {
                outcomes.join(", ")
            };
            let events = text
                .lines()
                .find_map(|l| l.strip_prefix("hookline_events_total "))
                .unwrap_or("?")
                .trim()
                .to_owned();
            lines.push(format!(
                "node {}: events taken by its API {events}; delivery attempts {outcomes}",
                node.number
            ));
        }
        lines
    }

    async fn post(&self, node: &Node, path: &str, body: &Value) -> anyhow::Result<Value> {
        let answer = self
            .http
            .post(format!("{}{path}", node.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(body)
            .send()
            .await?;
        let status = answer.status();
        let value: Value = answer.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{path} answered {status} (node {}): {value}", node.number);
        }
        Ok(value)
    }

    /// Registers a call (its `CallInitiated` is event 1) whose status callbacks go to `url`.
    async fn register(&self, call: &str, url: &str) -> anyhow::Result<()> {
        let body = json!({"auth_id": self.auth_id, "direction": "outbound", "from": "+14155551234",
            "to": "+14155550100", "call_uuid": call, "status_url": url});
        self.post(self.node_for(call), "/api/v1/switch/calls", &body)
            .await
            .map(|_| ())
    }

    async fn report(&self, call: &str, event: &str) -> anyhow::Result<()> {
        self.post(
            self.node_for(call),
            &format!("/api/v1/switch/calls/{call}/events"),
            &json!({"event": event}),
        )
        .await
        .map(|_| ())
    }
}

/// The fields of `/proc/PID/stat` the benchmark reads; times in clock ticks.
struct ProcStat {
    state: char,
    ppid: u32,
    utime: f64,
    stime: f64,
    /// Of the children it has waited for (ended backends, for the postmaster).
    cutime: f64,
    cstime: f64,
}

const TICKS_PER_SECOND: f64 = 100.0; // USER_HZ on Linux

impl ProcStat {
    fn own_seconds(&self) -> f64 {
        (self.utime + self.stime) / TICKS_PER_SECOND
    }

    fn with_children_seconds(&self) -> f64 {
        (self.utime + self.stime + self.cutime + self.cstime) / TICKS_PER_SECOND
    }
}

fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name in parentheses: state, ppid, …; utime is the 12th field from there.
    let after: Vec<&str> = text.rsplit_once(") ")?.1.split_whitespace().collect();
    let number = |i: usize| after.get(i)?.parse::<f64>().ok();
    Some(ProcStat {
        state: after.first()?.chars().next()?,
        ppid: after.get(1)?.parse().ok()?,
        utime: number(11)?,
        stime: number(12)?,
        cutime: number(13)?,
        cstime: number(14)?,
    })
}

/// CPU seconds (user + system) the cluster's processes have used so far: the postmaster's own
/// and that of its children which have ended (its `cutime`/`cstime`: backends of closed
/// connections), plus that of each living child (backends, checkpointer, WAL writer, …).
/// The difference of two readings is what the cluster used in between.
fn pg_cpu_seconds(cluster: &pgcluster::Cluster) -> anyhow::Result<f64> {
    let pid_file = cluster.directory().join("data").join("postmaster.pid");
    let text =
        std::fs::read_to_string(&pid_file).with_context(|| format!("reading {}", pid_file.display()))?;
    let postmaster: u32 = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .with_context(|| format!("no pid in {}", pid_file.display()))?;
    let mut seconds = 0.0;
    for entry in std::fs::read_dir("/proc")? {
        let Some(pid) = entry?.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if let Some(stat) = proc_stat(pid).filter(|s| s.ppid == postmaster) {
            seconds += stat.with_children_seconds();
        }
    }
    // Read last: a child that ends during the scan is counted twice rather than not at all;
    // rare, since this is read while the nodes' connections are open.
    let main = proc_stat(postmaster).with_context(|| format!("the postmaster {postmaster} is gone"))?;
    Ok(seconds + main.with_children_seconds())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Compares what was submitted with what arrived.
async fn figures(
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
    let usage = hookline.usage();
    let n = submitted.len() as f64;
    let pg_cpu_s = usage.pg_cpu_s.unwrap_or(0.0);
    if hookline.database.is_some() {
        // Where the deliveries came from, to check every node takes part.
        for line in hookline.attempts().await {
            eprintln!("  {line}");
        }
    }
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
        peak_rss_mib: usage.peak_rss_mib,
        cpu_s: usage.cpu_s,
        pg_cpu_s,
        cpu_ms_per_event: if n > 0.0 {
            (usage.cpu_s + pg_cpu_s) * 1000.0 / n
        } else {
            0.0
        },
    }
}

async fn run_scenario(name: &str, args: &Args, deployment: &Deployment) -> anyhow::Result<Figures> {
    let scale = args.scale;
    let count = |n: f64| ((n * scale) as usize).max(4);
    let style = Style::of(name);
    match name {
        "s1" | "s2" | "c1" => {
            let endpoints = if name == "s2" { 100 } else { 1 };
            let receiver = style.receiver(endpoints, HashSet::new(), Duration::ZERO).await?;
            let hookline = Arc::new(Hookline::start(deployment, &[]).await?);
            let calls = count(20_000.0) / style.events_per_call();
            let (submitted, started, done) =
                throughput(&hookline, &receiver, calls, endpoints, 64, style).await?;
            let expected = submitted.lock().map(|s| s.len()).unwrap_or(0) as u64;
            receiver
                .wait_for(expected, Instant::now() + Duration::from_secs(120))
                .await;
            Ok(figures(&submitted, &receiver, started, done, &|_| true, &hookline).await)
        }
        "s3" | "c3" => {
            let receiver = style.receiver(10, HashSet::new(), Duration::ZERO).await?;
            let hookline = Arc::new(Hookline::start(deployment, &[]).await?);
            let (submitted, _, started, done) =
                steady(&hookline, &receiver, 500.0, 20.0 * scale, 10, style).await?;
            let expected = submitted.lock().map(|s| s.len()).unwrap_or(0) as u64;
            receiver
                .wait_for(expected, Instant::now() + Duration::from_secs(60))
                .await;
            Ok(figures(&submitted, &receiver, started, done, &|_| true, &hookline).await)
        }
        "s4" | "c4" => {
            let hanging: HashSet<u32> = (0..10).collect();
            let receiver = style.receiver(100, hanging, Duration::from_secs(6)).await?;
            let hookline = Arc::new(Hookline::start(deployment, &[]).await?);
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
            )
            .await)
        }
        "s5" => {
            let receiver = Receiver::start(10, HashSet::new(), Duration::ZERO).await?;
            receiver.shared.refusing.store(true, Ordering::SeqCst);
            // A long refusal must not exhaust the retry budget of the first deliveries.
            let hookline = Arc::new(Hookline::start(deployment, &["--retry-max", "50"]).await?);
            let (submitted, _, _) =
                throughput(&hookline, &receiver, count(100_000.0) / 4, 10, 64, style).await?;
            let expected = submitted.lock().map(|s| s.len()).unwrap_or(0) as u64;
            let released = Instant::now();
            receiver.shared.refusing.store(false, Ordering::SeqCst);
            receiver
                .wait_for(expected, Instant::now() + Duration::from_secs(600))
                .await;
            let mut f = figures(&submitted, &receiver, released, released, &|_| true, &hookline).await;
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

/// One row of the table; on PostgreSQL with the cluster's CPU and the CPU per event.
fn report(name: &str, runs: &[Figures], postgres: bool) {
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
    let postgres_columns = if postgres {
        format!(
            " {} | {} |",
            column(&|f| f.pg_cpu_s),
            column(&|f| f.cpu_ms_per_event)
        )
    } else {
        String::new()
    };
    println!(
        "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |{postgres_columns}",
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
    let deployment = Deployment::new(&args)?;
    let postgres = deployment.cluster.is_some();
    println!("{}", deployment.describe()?);
    println!();
    if postgres {
        println!("| scenario | events | submit/s | delivered/s | p50 ms | p90 ms | p99 ms | max ms | lost | dup | peak RSS MiB | hookline CPU s | PG CPU s | CPU ms/event |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    } else {
        println!("| scenario | events | submit/s | delivered/s | p50 ms | p90 ms | p99 ms | max ms | lost | dup | peak RSS MiB | CPU s |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    }
    for name in &args.scenarios {
        let mut runs = Vec::new();
        for run in 1..=args.runs {
            if postgres {
                // Heads the run's diagnostics on stderr (attempts per node, logged problems).
                eprintln!("{name} run {run}/{}:", args.runs);
            }
            runs.push(
                run_scenario(name, &args, &deployment)
                    .await
                    .with_context(|| format!("scenario {name}"))?,
            );
        }
        report(name, &runs, postgres);
    }
    Ok(())
}

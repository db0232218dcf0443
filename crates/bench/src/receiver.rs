//! The benchmark's receiver: an axum (hyper) HTTP/1.1 server on 127.0.0.1 that answers 200 at
//! once and records when each callback arrived, keyed by (call, sequence). Endpoints can be
//! told to hang past the attempt budget, and the whole receiver to refuse (503) for a while.
//!
//! Two layouts: one listener per endpoint (URLs `/ep/{endpoint}/{call}`, [`Receiver::start`]),
//! or one listener whose endpoints are paths (`/ep/{endpoint}`, [`Receiver::one_host`]); there
//! the call is the `CallUUID` field of the form-encoded body.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use tokio::sync::Notify;

/// What the receiver saw.
#[derive(Default)]
pub struct Seen {
    /// Arrival times of each (call, sequence); more than one is a duplicate.
    pub arrivals: HashMap<(String, u32), Vec<Instant>>,
}

pub struct Shared {
    pub seen: Mutex<Seen>,
    /// Distinct callbacks received (duplicates not counted).
    pub received: AtomicU64,
    pub refusing: AtomicBool,
    pub hanging: HashSet<u32>,
    pub hang_for: Duration,
    pub progress: Notify,
}

/// Where the endpoints are; cheap to clone into injector tasks.
#[derive(Clone)]
pub struct Targets {
    ports: Vec<u16>,
    /// One host, endpoints as paths without the call.
    one_host: bool,
}

impl Targets {
    /// The URL of `endpoint` for `call`.
    pub fn url(&self, endpoint: usize, call: &str) -> String {
        let port = self.ports[endpoint % self.ports.len()];
        if self.one_host {
            format!("http://127.0.0.1:{port}/ep/{endpoint}")
        } else {
            format!("http://127.0.0.1:{port}/ep/{endpoint}/{call}")
        }
    }
}

/// The receiver. With [`Receiver::start`] each endpoint is its own host (scheme, host, port) to
/// Hookline: per-host limits and circuit breakers apply per endpoint, as with real customers.
/// With [`Receiver::one_host`] all endpoints share one host, as paths of one customer's server.
pub struct Receiver {
    pub targets: Targets,
    pub shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    /// One listener (port) per endpoint; the call is the path's last segment.
    pub async fn start(
        endpoints: usize,
        hanging: HashSet<u32>,
        hang_for: Duration,
    ) -> anyhow::Result<Receiver> {
        Receiver::launch(endpoints.max(1), false, hanging, hang_for).await
    }

    /// One listener for every endpoint (`/ep/{endpoint}`); the call is the body's `CallUUID`.
    pub async fn one_host(hanging: HashSet<u32>, hang_for: Duration) -> anyhow::Result<Receiver> {
        Receiver::launch(1, true, hanging, hang_for).await
    }

    async fn launch(
        listeners: usize,
        one_host: bool,
        hanging: HashSet<u32>,
        hang_for: Duration,
    ) -> anyhow::Result<Receiver> {
        let shared = Arc::new(Shared {
            seen: Mutex::new(Seen::default()),
            received: AtomicU64::new(0),
            refusing: AtomicBool::new(false),
            hanging,
            hang_for,
            progress: Notify::new(),
        });
        let (mut ports, mut tasks) = (Vec::new(), Vec::new());
        for _ in 0..listeners {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            ports.push(listener.local_addr()?.port());
            // Only the one-host layout reads the body, so the per-port one costs what it did.
            let app = if one_host {
                axum::Router::new().fallback(receive_form)
            } else {
                axum::Router::new().fallback(receive)
            }
            .with_state(Arc::clone(&shared));
            tasks.push(tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            }));
        }
        Ok(Receiver {
            targets: Targets { ports, one_host },
            shared,
            tasks,
        })
    }

    /// The URL of `endpoint` for `call`.
    pub fn url(&self, endpoint: usize, call: &str) -> String {
        self.targets.url(endpoint, call)
    }

    /// Waits until `count` callbacks were received or `deadline` passes.
    pub async fn wait_for(&self, count: u64, deadline: Instant) -> bool {
        self.wait_quiet(count, Duration::MAX, deadline).await
    }

    /// Waits until `count` callbacks were received, `quiet` passed without a new (distinct)
    /// one, or `deadline` passes.
    pub async fn wait_quiet(&self, count: u64, quiet: Duration, deadline: Instant) -> bool {
        let (mut last_count, mut last_change) = (u64::MAX, Instant::now());
        loop {
            let received = self.shared.received.load(Ordering::SeqCst);
            if received >= count {
                return true;
            }
            let now = Instant::now();
            if received != last_count {
                (last_count, last_change) = (received, now);
            }
            let end = last_change
                .checked_add(quiet)
                .map_or(deadline, |q| q.min(deadline));
            let left = end.saturating_duration_since(now);
            if left.is_zero() {
                return false;
            }
            let _ = tokio::time::timeout(
                left.min(Duration::from_millis(200)),
                self.shared.progress.notified(),
            )
            .await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Per-port layout: paths are /ep/{endpoint}/{call_uuid}; the body is not read.
async fn receive(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> StatusCode {
    answer(&shared, Instant::now(), &uri, &headers, None).await
}

/// One-host layout: paths are /ep/{endpoint}; the call is the body's `CallUUID`.
async fn receive_form(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    answer(&shared, Instant::now(), &uri, &headers, Some(&body[..])).await
}

async fn answer(
    shared: &Shared,
    arrived: Instant,
    uri: &Uri,
    headers: &HeaderMap,
    body: Option<&[u8]>,
) -> StatusCode {
    if shared.refusing.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let mut parts = uri.path().trim_start_matches('/').split('/');
    let (_, endpoint, call) = (parts.next(), parts.next(), parts.next());
    let endpoint: u32 = endpoint.and_then(|e| e.parse().ok()).unwrap_or(0);
    if shared.hanging.contains(&endpoint) {
        tokio::time::sleep(shared.hang_for).await;
        return StatusCode::OK;
    }
    // A path without a call segment: the body names it.
    let call = call
        .filter(|c| !c.is_empty())
        .or_else(|| body.and_then(|b| form_field(b, "CallUUID")));
    let sequence: u32 = headers
        .get("x-hookline-sequence")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut first = false;
    if let Some(call) = call {
        if let Ok(mut seen) = shared.seen.lock() {
            let times = seen.arrivals.entry((call.to_owned(), sequence)).or_default();
            first = times.is_empty();
            times.push(arrived);
        }
    }
    if first {
        shared.received.fetch_add(1, Ordering::SeqCst);
        shared.progress.notify_waiters();
    }
    StatusCode::OK
}

/// The raw value of `name` in an `application/x-www-form-urlencoded` body. Not percent-decoded:
/// enough for a UUID, whose characters are never encoded.
fn form_field<'a>(body: &'a [u8], name: &str) -> Option<&'a str> {
    std::str::from_utf8(body)
        .ok()?
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

//! The benchmark's receiver: an axum (hyper) HTTP/1.1 server on 127.0.0.1 that answers 200 at
//! once and records when each callback arrived, keyed by (call, sequence). Endpoints can be
//! told to hang past the attempt budget, and the whole receiver to refuse (503) for a while.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// One listener per endpoint, so each endpoint is its own host (scheme, host, port) to Hookline:
/// per-host limits and circuit breakers apply per endpoint, as with real customers.
pub struct Receiver {
    pub ports: Vec<u16>,
    pub shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    pub async fn start(
        endpoints: usize,
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
        for _ in 0..endpoints.max(1) {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            ports.push(listener.local_addr()?.port());
            let app = axum::Router::new()
                .fallback(receive)
                .with_state(Arc::clone(&shared));
            tasks.push(tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            }));
        }
        Ok(Receiver { ports, shared, tasks })
    }

    /// The URL of `endpoint` for `call`.
    pub fn url(&self, endpoint: usize, call: &str) -> String {
        format!(
            "http://127.0.0.1:{}/ep/{endpoint}/{call}",
            self.ports[endpoint % self.ports.len()]
        )
    }

    /// Waits until `count` callbacks were received or `deadline` passes.
    pub async fn wait_for(&self, count: u64, deadline: Instant) -> bool {
        loop {
            if self.shared.received.load(Ordering::SeqCst) >= count {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
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

async fn receive(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> StatusCode {
    let arrived = Instant::now();
    if shared.refusing.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    // Paths are /ep/{endpoint}/{call_uuid}.
    let mut parts = uri.path().trim_start_matches('/').split('/');
    let (_, endpoint, call) = (parts.next(), parts.next(), parts.next());
    let endpoint: u32 = endpoint.and_then(|e| e.parse().ok()).unwrap_or(0);
    if shared.hanging.contains(&endpoint) {
        tokio::time::sleep(shared.hang_for).await;
        return StatusCode::OK;
    }
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

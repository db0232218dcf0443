//! `hookline serve`: open the store, build the API, serve until shut down.
//!
//! `run` takes an already-bound listener and a cancellation token, so tests and `main` drive
//! the same entry point (mini-redis `server::run`).

use std::sync::Arc;

use anyhow::Context;
use api::{ApiSettings, AppState, Breakers, CallbackTester, HostBreaker, Notify, Telemetry, TestOutcome};
use carrier::Carrier;
use dispatcher::{BreakerConfig, Dispatcher, DispatcherConfig, Metrics};
use domain::retry::RetryPolicy;
use domain::simulated::SimTimings;
use domain::{Call, UrlPolicy};
use store::{PgStore, SqliteStore, Store, Vault};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{redact_dsn, Config};
use crate::keys::{server_key, ui_key};
use crate::listener::{self, ListenerLimits};

/// Takes the embedded database for this `serve` process alone: SQLite has one writer, and a
/// second process would release the first one's leases at its start (and so send its in-flight
/// callbacks twice). The lock is a file beside the database, held until the returned handle
/// drops (the process ends, `kill -9` included). `None` for other backends.
///
/// # Errors
/// When another process holds the lock, or the lock file cannot be opened.
pub fn lock_embedded_database(config: &Config) -> anyhow::Result<Option<std::fs::File>> {
    if !config.database.starts_with("sqlite:") {
        return Ok(None);
    }
    let database = SqliteStore::database_path(&config.database)?;
    let mut name = database.clone().into_os_string();
    name.push(".serve-lock");
    let path = std::path::PathBuf::from(name);
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another `hookline serve` is already using {} (it holds {}): SQLite has one writer, \
             so stop that process first (several nodes need PostgreSQL)",
            database.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(error)) => {
            Err(error).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// Opens and migrates the database the configuration names.
///
/// # Errors
/// When the key cannot be loaded, the database cannot be opened or migrated, or its scheme
/// has no backend in this build.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let key = server_key(config.secret_key.as_deref(), &config.data_dir())?;
    let vault = Vault::new(key);
    if config.database.starts_with("sqlite:") {
        let store = SqliteStore::open(&config.database, vault)
            .await
            .with_context(|| format!("opening database {}", redact_dsn(&config.database)))?;
        store.migrate().await.context("migrating the database")?;
        Ok(Arc::new(store))
    } else {
        let store = PgStore::open(&config.database, vault)
            .await
            .with_context(|| format!("connecting to database {}", redact_dsn(&config.database)))?;
        store.migrate().await.context("migrating the database")?;
        Ok(Arc::new(store))
    }
}

/// Serves the API on `listener` until `shutdown` is cancelled, then finishes in-flight
/// requests and returns.
///
/// # Errors
/// When the server fails while serving.
pub async fn run(
    config: Config,
    store: Arc<dyn Store>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let timings = SimTimings {
        ring_ms: millis(config.sim_ring),
        talk_ms: millis(config.sim_talk),
    };
    if config.database.starts_with("sqlite:") {
        // One process serves an embedded database, so leases left by a crashed run are dead.
        let released = store
            .release_all_leases()
            .await
            .context("releasing stale leases")?;
        if released > 0 {
            tracing::info!(released, "released deliveries claimed by the previous run");
        }
    }
    let metrics = Arc::new(Metrics::default());
    let dispatcher = Dispatcher::new(
        Arc::clone(&store),
        build_sender(&config)?,
        dispatcher_config(&config),
        Arc::clone(&metrics),
    );
    {
        // Work another node queued wakes this one at once, not at its next poll.
        let dispatcher = dispatcher.clone();
        store.listen_for_work(Arc::new(move || dispatcher.wake()));
    }
    let on_event = {
        let dispatcher = dispatcher.clone();
        let metrics = Arc::clone(&metrics);
        Arc::new(move || {
            metrics.events_recorded(1);
            dispatcher.wake();
        })
    };
    let (carrier, carrier_task) = Carrier::spawn(Arc::clone(&store), timings, shutdown.clone(), on_event);
    let drain = config.callback_timeout + std::time::Duration::from_secs(2);
    let dispatcher_task = {
        let dispatcher = dispatcher.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move { dispatcher.run(shutdown, drain).await })
    };
    // The same key as `open_store` loaded (the file exists by now): the dashboard's is derived.
    let ui_key = ui_key(&server_key(config.secret_key.as_deref(), &config.data_dir())?);
    let state = AppState {
        store,
        settings: Arc::new(ApiSettings {
            url_policy: UrlPolicy {
                allow_private: config.dev,
            },
            admin_token: config.admin_token.clone(),
            body_read_timeout: Some(config.body_read_timeout),
            ui_key: Some(ui_key),
        }),
        notify: Arc::new(Wiring {
            carrier,
            dispatcher: dispatcher.clone(),
            metrics: Arc::clone(&metrics),
        }),
        telemetry: Arc::new(Prometheus(metrics)),
        tester: Arc::new(Tester(dispatcher.clone())),
        breakers: Arc::new(EngineBreakers(dispatcher.clone())),
        limiters: Arc::new(api::Limiters::new(config.rate_limits)),
    };
    let app = api::router(state);
    let limits = ListenerLimits {
        max_connections: config.max_connections,
        header_read_timeout: config.header_read_timeout,
    };
    listener::serve(listener, app, limits, shutdown.clone()).await;
    tracing::info!("API stopped");
    if let Err(error) = carrier_task.await {
        tracing::error!(%error, "the simulated carrier ended abnormally");
    }
    if let Err(error) = dispatcher_task.await {
        tracing::error!(%error, "the delivery engine ended abnormally");
    }
    tracing::info!("delivery engine stopped");
    Ok(())
}

fn build_sender(config: &Config) -> anyhow::Result<sender::Sender> {
    let extra_ca_pem = match &config.extra_ca {
        Some(path) => {
            Some(std::fs::read(path).with_context(|| format!("reading extra CA {}", path.display()))?)
        }
        None => None,
    };
    let sender_config = sender::SenderConfig {
        timeout: config.callback_timeout,
        policy: UrlPolicy {
            allow_private: config.dev,
        },
        extra_ca_pem,
        accept_any_2xx: config.accept_any_2xx,
        user_agent: format!("Hookline/{}", env!("CARGO_PKG_VERSION")),
    };
    if config.offline_dns {
        sender::Sender::with_lookup(sender_config, Arc::new(sender::LoopbackOnlyLookup))
    } else {
        sender::Sender::new(sender_config)
    }
    .context("building the HTTP sender")
}

fn dispatcher_config(config: &Config) -> DispatcherConfig {
    DispatcherConfig {
        policy: RetryPolicy {
            max_retries: config.retry_max,
            base: config.retry_base,
            jitter: config.retry_jitter,
            retry_after_cap: config.retry_after_cap,
        },
        per_host_concurrency: config.per_host_concurrency,
        max_in_flight: 1024,
        lease: config.lease,
        breaker: BreakerConfig {
            threshold: config.breaker_threshold,
            pause: chrono::TimeDelta::from_std(config.breaker_pause).unwrap_or(chrono::TimeDelta::seconds(5)),
        },
        idle_poll: std::time::Duration::from_secs(1),
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Passes the API's notifications to the parts of the process that act on them.
struct Wiring {
    carrier: Carrier,
    dispatcher: Dispatcher,
    metrics: Arc<Metrics>,
}

struct Prometheus(Arc<Metrics>);

impl Telemetry for Prometheus {
    fn render(&self, queue_depth: u64, oldest_pending_age_s: f64) -> String {
        self.0.render(queue_depth, oldest_pending_age_s)
    }
}

/// The dashboard reads the delivery engine's breakers.
struct EngineBreakers(Dispatcher);

impl Breakers for EngineBreakers {
    fn hosts(&self) -> Vec<HostBreaker> {
        self.0
            .breakers()
            .into_iter()
            .map(|host| HostBreaker {
                origin: host.origin,
                state: match host.breaker {
                    dispatcher::BreakerState::Closed => api::BreakerState::Closed,
                    dispatcher::BreakerState::Failing(n) => api::BreakerState::Failing(n),
                    dispatcher::BreakerState::Open(until) => api::BreakerState::Open(until),
                    dispatcher::BreakerState::HalfOpen => api::BreakerState::HalfOpen,
                },
                paused_endpoints: host.paused_endpoints,
            })
            .collect()
    }
}

/// Test callbacks go through the delivery engine's signing and sender.
struct Tester(Dispatcher);

#[async_trait::async_trait]
impl CallbackTester for Tester {
    async fn send_test(
        &self,
        account: &domain::Account,
        level: domain::Level,
        target: &domain::Target,
    ) -> Result<TestOutcome, store::StoreError> {
        let result = self.0.send_test(account, level, target).await?;
        Ok(TestOutcome {
            delivered: result.delivered,
            status_code: result.status_code,
            latency_ms: result.latency_ms,
            error: result.error.map(str::to_owned),
        })
    }
}

impl Notify for Wiring {
    fn call_changed(&self, call: &Call) {
        self.carrier.plan(call);
    }

    fn deliveries_pending(&self) {
        self.dispatcher.wake();
    }

    fn events_recorded(&self, count: u64) {
        self.metrics.events_recorded(count);
        self.dispatcher.wake();
    }
}

/// Cancels `token` on SIGTERM or Ctrl-C (SIGINT).
pub fn cancel_on_signals(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(error) => {
                    tracing::error!(%error, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    token.cancel();
                    return;
                }
            };
            tokio::select! {
                _ = ctrl_c => tracing::info!("Ctrl-C: shutting down"),
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
            tracing::info!("Ctrl-C: shutting down");
        }
        token.cancel();
    });
}

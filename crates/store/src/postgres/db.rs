//! The PostgreSQL engine under [`super::PgStore`]: a connection pool, migrations, the
//! statement helpers, and the cross-node wake-up (`LISTEN`/`NOTIFY`).
//!
//! Every store method is one short transaction on a pooled connection, in READ COMMITTED;
//! where two nodes could race (a call's events, an account's keys) the transaction locks the
//! row it builds on first. A deadlock or serialization failure runs the transaction again.
//!
//! Wake-ups: a transaction with a pending `NOTIFY` takes a database-wide lock at commit, which
//! serialises every such commit. So writes never notify themselves; they mark that work was
//! queued, and one task per node sends a single `NOTIFY` for everything marked since its last
//! one (at most one in flight per node, however many events are written meanwhile).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use futures_util::future::poll_fn;
use tokio::sync::Notify;
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, NoTls, Row};

use crate::StoreError;

/// Connections per node: enough for the API's concurrent writes, the dispatcher's claims and
/// records, and the announcer, without crowding a server's `max_connections` when several nodes
/// share it.
const POOL_SIZE: usize = 16;
/// A request waits this long for a connection (or to open one) before it is answered 503.
const POOL_WAIT: Duration = Duration::from_secs(5);
/// No statement runs longer: a hung query must end as an error, not hold a request.
const STATEMENT_TIMEOUT_MS: u32 = 30_000;
/// A lock held longer than this (by a stuck session) fails the waiting statement: 503.
const LOCK_TIMEOUT_MS: u32 = 10_000;
/// A session idle inside a transaction this long is ended by the server, releasing its locks
/// (no Hookline transaction waits on anything but the database).
const IDLE_IN_TRANSACTION_MS: u32 = 10_000;
/// How long a listener that lost its connection waits before connecting again.
const LISTEN_RETRY: Duration = Duration::from_millis(500);
/// The channel every node listens on.
pub(super) const CHANNEL: &str = "hookline_work";
/// A transaction aborted by a deadlock or serialization failure runs again up to this often.
pub(super) const TRANSACTION_ATTEMPTS: u32 = 4;

/// The numbered migrations, applied in order; `hookline_migrations` records each one.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_schema.sql"),
    include_str!("../../migrations/postgres/0002_nodes.sql"),
    include_str!("../../migrations/postgres/0003_key_check.sql"),
];
/// How often a node says it is alive.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);
/// A node silent this long is dead: the others release its leases. Only a node that has itself
/// been heartbeating this long judges, so after the database was away (no node could beat)
/// every node has beaten again before any is judged.
const NODE_DEAD_AFTER: Duration = Duration::from_secs(10);
/// Room left between an attempt's end and the moment the others could judge this node dead.
const SEND_MARGIN: Duration = Duration::from_secs(1);
/// The server's clock in microseconds, in SQL: one clock for every node.
const SERVER_NOW: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT";

#[derive(Clone)]
pub(super) struct Db {
    pool: Pool,
    config: tokio_postgres::Config,
    announcer: Arc<Announcer>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .finish()
    }
}

/// Work queued on this node that other nodes have not heard of yet.
struct Announcer {
    /// This node's id (new each start): its claims' `leased_by`, and the payload of its
    /// notifications, so a node does not wake itself.
    node: String,
    pending: AtomicBool,
    signal: Notify,
    liveness: std::sync::Mutex<Liveness>,
}

/// What this node knows of its own heartbeat, to fence itself (see [`Db::may_send`]).
struct Liveness {
    /// The last beat that landed.
    last_beat: Option<tokio::time::Instant>,
    /// Claims made before this may have been taken over by another node: not to be sent.
    fence: chrono::DateTime<chrono::Utc>,
}

impl Db {
    /// Builds the pool for a `postgres://` URL and checks that the server answers.
    pub(super) async fn connect(url: &str) -> Result<Db, StoreError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Io(format!("the database URL does not parse: {e}")))?;
        if config.get_application_name().is_none() {
            config.application_name("hookline");
        }
        // A server that vanishes without closing the connection (a network cut, a paused host)
        // is noticed in seconds, not after the kernel's default ~11 minutes; a session stuck
        // in a transaction, or waiting on a lock held by such a session, ends instead of
        // blocking every node behind a call's row.
        config
            .connect_timeout(POOL_WAIT)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(5))
            .keepalives_interval(Duration::from_secs(2))
            .keepalives_retries(3)
            .options(format!(
                "-c statement_timeout={STATEMENT_TIMEOUT_MS} -c lock_timeout={LOCK_TIMEOUT_MS} \
                 -c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}"
            ));
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .recycle_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|e| StoreError::Io(e.to_string()))?;
        let db = Db {
            pool,
            config,
            announcer: Arc::new(Announcer {
                node: format!("{:032x}", crate::sql::random_u128()),
                pending: AtomicBool::new(false),
                signal: Notify::new(),
                liveness: std::sync::Mutex::new(Liveness {
                    last_beat: None,
                    fence: chrono::DateTime::<chrono::Utc>::MIN_UTC,
                }),
            }),
        };
        db.client().await?.simple_query("SELECT 1").await?;
        db.spawn_announcer();
        Ok(db)
    }

    /// This node's id, which its claims carry.
    pub(super) fn node(&self) -> &str {
        &self.announcer.node
    }

    /// Starts heartbeating (after migrations: the table must exist); returns once the first
    /// beat is in (or failed), so this node is on record before it claims anything. Each beat
    /// also releases the leases of nodes that stopped beating.
    pub(super) async fn spawn_heartbeat(&self) {
        beat_and_fence(&self.pool, &self.announcer, false).await;
        let (pool, alive) = (self.pool.clone(), Arc::downgrade(&self.announcer));
        tokio::spawn(async move {
            let mut healthy_since: Option<tokio::time::Instant> = None;
            let mut ticks = tokio::time::interval(HEARTBEAT_EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(announcer) = alive.upgrade() else { return };
                let judge = healthy_since.is_some_and(|since| since.elapsed() >= NODE_DEAD_AFTER);
                match beat_and_fence(&pool, &announcer, judge).await {
                    Some(released) => {
                        healthy_since.get_or_insert_with(tokio::time::Instant::now);
                        if released > 0 {
                            tracing::warn!(released, "released the deliveries of a node that stopped");
                            announcer.pending.store(true, Ordering::Release);
                            announcer.signal.notify_one();
                        }
                    }
                    None => healthy_since = None,
                }
            }
        });
    }

    /// Whether a delivery claimed at `claimed_at` may be sent now, with an attempt of up to
    /// `budget`: only while no other node can have judged this one dead and taken it over —
    /// its last beat is recent enough to cover the whole attempt, and the claim was made after
    /// this node's last silence. A node frozen or cut off from the database for that long thus
    /// sends nothing it claimed before; what it held was released by the others, or by itself
    /// on its first beat back.
    pub(super) fn may_send(&self, claimed_at: chrono::DateTime<chrono::Utc>, budget: Duration) -> bool {
        let liveness = self
            .announcer
            .liveness
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let fresh = liveness
            .last_beat
            .is_some_and(|at| at.elapsed() + budget + SEND_MARGIN < NODE_DEAD_AFTER);
        fresh && claimed_at > liveness.fence
    }

    /// A pooled connection; the database being away is `Io` (answered 503).
    pub(super) async fn client(&self) -> Result<Object, StoreError> {
        pooled(&self.pool).await
    }

    /// Applies pending migrations. Nodes starting together take turns (an advisory lock); a
    /// database a newer build migrated is refused.
    pub(super) async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.batch_execute(
            "SELECT pg_advisory_xact_lock(7262537700931);
             CREATE TABLE IF NOT EXISTS hookline_migrations (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await
        .map_err(|e| StoreError::Migrate(e.to_string()))?;
        let version: i64 = tx
            .query_one("SELECT COALESCE(MAX(version), 0) FROM hookline_migrations", &[])
            .await?
            .get(0);
        let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
        if version > known {
            return Err(StoreError::Migrate(format!(
                "the database is at version {version}, newer than this build ({known}); \
                 run the newer build, or a database of this one"
            )));
        }
        for (index, sql) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(version).unwrap_or(0))
        {
            let number = i64::try_from(index + 1).unwrap_or(i64::MAX);
            tx.batch_execute(sql)
                .await
                .map_err(|e| StoreError::Migrate(format!("migration {number}: {e}")))?;
            tx.execute(
                "INSERT INTO hookline_migrations (version) VALUES ($1)",
                &[&number],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Marks that work was queued, for the announcer to tell the other nodes.
    pub(super) fn announce(&self) {
        if !self.announcer.pending.swap(true, Ordering::AcqRel) {
            self.announcer.signal.notify_one();
        }
    }

    fn spawn_announcer(&self) {
        let (pool, announcer) = (self.pool.clone(), Arc::downgrade(&self.announcer));
        tokio::spawn(async move {
            loop {
                let Some(signal) = announcer.upgrade() else { return };
                signal.signal.notified().await;
                signal.pending.store(false, Ordering::Release);
                let notify = format!("NOTIFY {CHANNEL}, '{}'", signal.node);
                drop(signal);
                // A lost NOTIFY only costs the other nodes their poll interval.
                if let Ok(client) = pool.get().await {
                    if let Err(error) = client.simple_query(&notify).await {
                        tracing::debug!(%error, "could not notify the other nodes");
                    }
                }
            }
        });
    }

    /// Calls `wake` whenever any node announces work, for as long as the store lives; after a
    /// lost connection it listens again and wakes once (a notification may have been missed).
    pub(super) fn listen(&self, wake: Arc<dyn Fn() + Send + Sync>) {
        let (config, alive) = (self.config.clone(), Arc::downgrade(&self.announcer));
        let node = self.announcer.node.clone();
        tokio::spawn(async move {
            while alive.strong_count() > 0 {
                match config.connect(NoTls).await {
                    Ok((client, mut connection)) => {
                        let listening = async {
                            client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
                            wake();
                            std::future::pending::<Result<(), tokio_postgres::Error>>().await
                        };
                        let messages = async {
                            while let Some(message) = poll_fn(|cx| connection.poll_message(cx)).await {
                                match message {
                                    Ok(AsyncMessage::Notification(n)) if n.payload() != node => wake(),
                                    Ok(_) => {}
                                    Err(error) => return Err(error),
                                }
                            }
                            Ok(())
                        };
                        let ended = tokio::select! {
                            ended = listening => ended,
                            ended = messages => ended,
                        };
                        if let Err(error) = ended {
                            tracing::debug!(%error, "the listening connection ended");
                        }
                    }
                    Err(error) => tracing::debug!(%error, "could not connect to listen"),
                }
                tokio::time::sleep(LISTEN_RETRY).await;
            }
        });
    }
}

/// Beats; after a silence long enough for the others to judge this node dead, fences its older
/// claims and puts back every lease it holds (none of it is this node's any more). Returns how
/// many deliveries of dead nodes it released, or `None` when the beat failed.
async fn beat_and_fence(pool: &Pool, announcer: &Announcer, judge: bool) -> Option<u64> {
    let silent = {
        let mut liveness = announcer
            .liveness
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let silent = liveness
            .last_beat
            .is_some_and(|at| at.elapsed() + HEARTBEAT_EVERY >= NODE_DEAD_AFTER);
        if silent {
            liveness.fence = clock::now();
        }
        silent
    };
    let beaten = async {
        let released = beat(pool, &announcer.node, judge).await?;
        if silent {
            let client = pooled(pool).await?;
            let own = client
                .execute(
                    "UPDATE deliveries SET leased_until = NULL, leased_by = NULL \
                     WHERE status = 'pending' AND leased_by = $1 AND leased_until IS NOT NULL",
                    &[&announcer.node],
                )
                .await?;
            // A claim made since the fence was set lost its leases to this update too.
            announcer
                .liveness
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .fence = clock::now();
            tracing::warn!(
                own,
                "silent long enough to be judged dead: put back every lease of this node"
            );
        }
        Ok::<_, StoreError>(released)
    };
    match beaten.await {
        Ok(released) => {
            let mut liveness = announcer
                .liveness
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            liveness.last_beat = Some(tokio::time::Instant::now());
            Some(released)
        }
        Err(error) => {
            tracing::debug!(%error, "heartbeat failed");
            None
        }
    }
}

/// Says this node is alive; with `judge`, releases the leases of nodes silent for longer than
/// [`NODE_DEAD_AFTER`] and forgets them. Returns how many deliveries it released.
async fn beat(pool: &Pool, node: &str, judge: bool) -> Result<u64, StoreError> {
    let client = pooled(pool).await?;
    client
        .execute(
            &format!(
                "INSERT INTO nodes (node_id, seen_at) VALUES ($1, {SERVER_NOW}) \
                 ON CONFLICT (node_id) DO UPDATE SET seen_at = EXCLUDED.seen_at"
            ),
            &[&node],
        )
        .await?;
    if !judge {
        return Ok(0);
    }
    let dead_after = i64::try_from(NODE_DEAD_AFTER.as_micros()).unwrap_or(i64::MAX);
    let row = client
        .query_one(
            &format!(
                "WITH dead AS (DELETE FROM nodes WHERE seen_at < {SERVER_NOW} - $1 RETURNING node_id), \
                 released AS (UPDATE deliveries SET leased_until = NULL, leased_by = NULL \
                   WHERE status = 'pending' AND leased_until IS NOT NULL AND (leased_by IN (SELECT node_id FROM dead) \
                   OR leased_by NOT IN (SELECT node_id FROM nodes)) RETURNING 1) \
                 SELECT COUNT(*) FROM released"
            ),
            &[&dead_after],
        )
        .await?;
    Ok(u64::try_from(row.try_get::<_, i64>(0)?).unwrap_or(0))
}

/// A connection of `pool`; the database being away is `Io` (answered 503).
async fn pooled(pool: &Pool) -> Result<Object, StoreError> {
    pool.get().await.map_err(|error| match error {
        deadpool_postgres::PoolError::Backend(e) => StoreError::from(e),
        other => StoreError::Io(other.to_string()),
    })
}

/// Parameters of a statement.
pub(super) type Params<'a> = [&'a (dyn ToSql + Sync)];

/// Runs a (cached) query and maps every row.
pub(super) async fn all<T>(
    client: &impl GenericClient,
    sql: &str,
    params: &Params<'_>,
    map: impl Fn(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let statement = client.prepare_cached(sql).await?;
    client.query(&statement, params).await?.iter().map(map).collect()
}

/// Runs a (cached) query and maps its first row, if any.
pub(super) async fn first<T>(
    client: &impl GenericClient,
    sql: &str,
    params: &Params<'_>,
    map: impl FnOnce(&Row) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let statement = client.prepare_cached(sql).await?;
    client
        .query_opt(&statement, params)
        .await?
        .as_ref()
        .map(map)
        .transpose()
}

/// Runs a (cached) statement; returns the number of rows it changed.
pub(super) async fn execute(
    client: &impl GenericClient,
    sql: &str,
    params: &Params<'_>,
) -> Result<u64, StoreError> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.execute(&statement, params).await?)
}

/// Runs `$body` in a transaction on a pooled connection, binding it to `$tx`, and commits; a
/// deadlock or serialization failure runs it again (`$body` must be safe to repeat: it only
/// writes inside the transaction).
macro_rules! transaction {
    ($db:expr, |$tx:ident| $body:block) => {{
        let mut attempt = 1;
        loop {
            let mut client = $db.client().await?;
            let $tx = client.transaction().await.map_err($crate::StoreError::from)?;
            let result: Result<_, $crate::StoreError> = async { $body }.await;
            let result = match result {
                Ok(value) => $tx
                    .commit()
                    .await
                    .map(|()| value)
                    .map_err($crate::StoreError::from),
                Err(error) => Err(error),
            };
            match result {
                Err(error)
                    if error.is_retryable() && attempt < $crate::postgres::db::TRANSACTION_ATTEMPTS =>
                {
                    attempt += 1;
                }
                other => break other,
            }
        }
    }};
}
pub(super) use transaction;

mod clock {
    //! The fence's one wall-clock read: claims carry the dispatcher's wall-clock time.
    #[allow(clippy::disallowed_methods)]
    pub fn now() -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }
}

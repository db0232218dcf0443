//! The SQLite engine under [`super::SqliteStore`]: one writer thread with group commit, and a
//! small pool of reader connections.
//!
//! SQLite has one writer. Every write runs on a dedicated OS thread that owns the only writing
//! connection; what queued up while it was busy runs together in one transaction, each job in
//! its own savepoint (a failing job rolls back alone; a job alone needs none), and every caller
//! hears back only after
//! the shared COMMIT. So one commit pays for many events, statements are prepared once and
//! cached, and no async runtime hand-off sits between the statements of a transaction.
//! Readers run on tokio's blocking threads; WAL lets them read beside the writer.
//!
//! Checkpoints (copying the WAL's pages into the database file) take two threads. A
//! checkpoint on another connection never catches up with a writer that keeps appending, so
//! alone it never lets the WAL start over, and the WAL grew without bound; the writer's own
//! checkpoint, in a pause between batches, completes and the next commit rewinds the WAL — but
//! copying half a second of pages paused every write for ~20 ms (the p99 of a steady load). So a
//! checkpointer thread copies beside the writer every 100 ms while it writes, and the writer
//! runs its own checkpoint in the first pause after one of those, when only the pages written
//! since are left.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, TryLockError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use crate::StoreError;

/// At most this many jobs share one transaction (bounds the time a caller waits for COMMIT).
const MAX_BATCH: usize = 256;
/// Reader connections: at most this many reads run at once, and stay open when idle.
const MAX_READERS: usize = 8;
/// How long a statement waits for a lock another process holds before it fails (and the API
/// answers 503), unless the URL's `busy_timeout_ms` says otherwise.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// After a write found the database locked by another process, how long new writes fail at
/// once before one waits for the lock again.
const REFUSE_AFTER_BUSY: Duration = Duration::from_secs(1);
/// A pause this long between jobs is used for a checkpoint…
const CHECKPOINT_WHEN_IDLE_FOR: Duration = Duration::from_millis(2);
/// …once this long has passed since the last one…
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// …and without waiting for a pause once this long has (a writer that is never idle).
const CHECKPOINT_AT_LATEST: Duration = Duration::from_secs(2);
/// How often the checkpointer thread copies the WAL beside a writer that keeps writing.
const SIDE_CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// The numbered migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_configuration.sql"),
    include_str!("../../migrations/sqlite/0002_calls.sql"),
    include_str!("../../migrations/sqlite/0003_delivery.sql"),
    include_str!("../../migrations/sqlite/0004_append_only_indexes.sql"),
    include_str!("../../migrations/sqlite/0005_waiting_deliveries.sql"),
    include_str!("../../migrations/sqlite/0006_keys_version.sql"),
];

/// A job's result, sent once the transaction it ran in has committed (or failed to).
type Reply = Box<dyn FnOnce(Result<(), &rusqlite::Error>) + Send>;
/// A write job: runs inside its own savepoint, or alone in the transaction (`None`: it cannot
/// run, the transaction did not start); `false` rolls its writes back.
type Job = Box<dyn FnOnce(Option<&Connection>) -> (bool, Reply) + Send>;

#[derive(Clone)]
pub(super) struct Db {
    jobs: mpsc::Sender<Job>,
    readers: Arc<Readers>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.readers.path).finish()
    }
}

struct Readers {
    path: PathBuf,
    busy_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
    /// At most this many reads at once, so a burst does not open a connection per request.
    permits: tokio::sync::Semaphore,
}

impl Db {
    /// Opens the database file (creating it and its directory) and starts the writer thread.
    pub(super) fn open(path: &Path, busy_timeout: Duration) -> Result<Db, StoreError> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Io(e.to_string()))?;
            }
        }
        let writer = connect(path, true, busy_timeout)?;
        let checkpointer = connect(path, false, busy_timeout)?;
        let (jobs, queue) = mpsc::channel();
        let (wrote, written) = mpsc::sync_channel(1);
        let checkpoints = Arc::new(Checkpoints::default());
        let side = Arc::clone(&checkpoints);
        spawn("hookline-sqlite-writer", move || {
            write_loop(writer, &queue, &wrote, &checkpoints);
        })?;
        spawn("hookline-sqlite-checkpointer", move || {
            checkpoint_loop(checkpointer, &written, &side);
        })?;
        Ok(Db {
            jobs,
            readers: Arc::new(Readers {
                path: path.to_owned(),
                busy_timeout,
                idle: Mutex::new(Vec::new()),
                permits: tokio::sync::Semaphore::new(MAX_READERS),
            }),
        })
    }

    /// Runs `job` on the writer, inside the current group transaction. Its result arrives
    /// once that transaction committed; an `Err` from the job rolls back only its own writes.
    pub(super) async fn write<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Some(conn) => std::panic::catch_unwind(AssertUnwindSafe(|| job(conn)))
                    .unwrap_or_else(|_| Err(StoreError::Io("a database job panicked".to_owned()))),
                None => Err(StoreError::Io("no write transaction could start".to_owned())),
            };
            let ok = result.is_ok();
            let reply: Reply = Box::new(move |committed| {
                let result = match committed {
                    Ok(()) => result,
                    Err(error) => Err(StoreError::from(copy_error(error))),
                };
                let _ = tx.send(result);
            });
            (ok, reply)
        });
        self.jobs.send(job).map_err(|_| writer_gone())?;
        rx.await.map_err(|_| writer_gone())?
    }

    /// Runs `job` on a reader connection, on a blocking thread.
    pub(super) async fn read<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let _permit = self
            .readers
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Io("the database readers are closed".to_owned()))?;
        let readers = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || {
            let conn = readers.take()?;
            let result = job(&conn);
            readers.put(conn);
            result
        })
        .await
        .map_err(|_| StoreError::Io("a database read panicked".to_owned()))?
    }

    /// Applies pending migrations, all in one transaction.
    pub(super) async fn migrate(&self) -> Result<(), StoreError> {
        self.write(migrate).await
    }
}

impl Readers {
    fn take(&self) -> Result<Connection, StoreError> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match idle {
            Some(conn) => Ok(conn),
            None => connect(&self.path, false, self.busy_timeout),
        }
    }

    fn put(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < MAX_READERS {
                idle.push(conn);
            }
        }
    }
}

fn connect(path: &Path, writer: bool, busy_timeout: Duration) -> Result<Connection, StoreError> {
    let flags = if writer {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(busy_timeout)?;
    // WAL: readers beside the writer. NORMAL: a commit survives a process crash (kill -9);
    // only a power loss could drop the last ones (PRODUCT.md §4.3).
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA temp_store = MEMORY;",
    )?;
    if writer {
        // The writer never checkpoints on commit (that would stall the commit that crosses the
        // threshold); `write_loop` checkpoints in its pauses instead.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")?;
    }
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn spawn(name: &str, run: impl FnOnce() + Send + 'static) -> Result<(), StoreError> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(run)
        .map(drop)
        .map_err(|e| StoreError::Io(e.to_string()))
}

/// What the writer and the checkpointer thread share.
#[derive(Default)]
struct Checkpoints {
    /// Held by whichever thread checkpoints: SQLite runs one checkpoint at a time, and a second
    /// one returns at once, having done nothing.
    running: Mutex<()>,
    /// The checkpointer has just copied the WAL: the writer's checkpoint now has least to copy.
    side_done: AtomicBool,
}

impl Checkpoints {
    /// The right to checkpoint now, unless the other thread is checkpointing; `wait` waits for
    /// it instead. (A poisoned lock guards nothing: no data lives behind it.)
    fn take(&self, wait: bool) -> Option<std::sync::MutexGuard<'_, ()>> {
        match self.running.try_lock() {
            Ok(alone) => Some(alone),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) if wait => Some(
                self.running
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            ),
            Err(TryLockError::WouldBlock) => None,
        }
    }
}

fn write_loop(
    conn: Connection,
    queue: &mpsc::Receiver<Job>,
    wrote: &mpsc::SyncSender<()>,
    checkpoints: &Checkpoints,
) {
    // Only the writer's own checkpoint, between its transactions, lets the WAL start over. In
    // a pause it skips a side checkpoint in progress (it tries again in the next pause); at the
    // latest it waits for it (~100 ms of pages at most).
    let checkpoint = |conn: &Connection, wait: bool| {
        let Some(_alone) = checkpoints.take(wait) else {
            return false;
        };
        checkpoints.side_done.store(false, Ordering::Relaxed);
        checkpoint(conn)
    };
    let mut last_checkpoint = Instant::now();
    let mut written = false;
    // While another process holds the lock, writes fail at once instead of each batch waiting
    // out the busy timeout again (the queue, and every caller's wait, would grow without bound).
    let mut refusing_until: Option<Instant> = None;
    loop {
        let wait = if written {
            CHECKPOINT_EVERY
                .saturating_sub(last_checkpoint.elapsed())
                .max(CHECKPOINT_WHEN_IDLE_FOR)
        } else {
            Duration::from_secs(3600)
        };
        let first = match queue.recv_timeout(wait) {
            Ok(job) => job,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // Right after a side checkpoint, unless that takes too long.
                let due = last_checkpoint.elapsed() >= CHECKPOINT_EVERY
                    && (checkpoints.side_done.swap(false, Ordering::Relaxed)
                        || last_checkpoint.elapsed() >= CHECKPOINT_AT_LATEST);
                if written && due && checkpoint(&conn, false) {
                    (last_checkpoint, written) = (Instant::now(), false);
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if refusing_until.is_some_and(|until| Instant::now() < until) {
            fail_all(batch.into_iter().map(|job| job(None).1), &busy());
            continue;
        }
        refusing_until = run_batch(&conn, batch)
            .is_err_and(|error| error.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy))
            .then(|| Instant::now() + REFUSE_AFTER_BUSY);
        written = true;
        // Full means the checkpointer has a wake-up pending already.
        let _ = wrote.try_send(());
        if last_checkpoint.elapsed() >= CHECKPOINT_AT_LATEST && checkpoint(&conn, true) {
            (last_checkpoint, written) = (Instant::now(), false);
        }
    }
    let _ = checkpoint(&conn, true);
}

/// Copies the WAL into the database file beside the writer, every [`SIDE_CHECKPOINT_EVERY`]
/// while something is written, so that the writer's own checkpoint in its pauses — the one
/// after which the WAL can start over — has only the last few pages left to copy.
fn checkpoint_loop(conn: Connection, written: &mpsc::Receiver<()>, checkpoints: &Checkpoints) {
    while written.recv().is_ok() {
        std::thread::sleep(SIDE_CHECKPOINT_EVERY);
        let _ = written.try_recv();
        // The writer's checkpoint goes first; this one would only find the WAL copied.
        let alone = checkpoints.take(false);
        if alone.is_some() && checkpoint(&conn) {
            checkpoints.side_done.store(true, Ordering::Relaxed);
        }
    }
}

/// Copies the WAL into the database file (`PASSIVE`: readers are never waited for). Returns
/// whether it ran: not when another connection's checkpoint was running (then the writer tries
/// again in its next pause, or the WAL could not start over for another period).
fn checkpoint(conn: &Connection) -> bool {
    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get::<_, i64>(0)) {
        Ok(busy) => busy == 0,
        Err(error) => {
            tracing::warn!(%error, "WAL checkpoint failed");
            true
        }
    }
}

/// Runs the batch in one transaction; `Err` when the transaction could not even begin.
fn run_batch(conn: &Connection, batch: Vec<Job>) -> Result<(), rusqlite::Error> {
    if !conn.is_autocommit() {
        // A failed ROLLBACK left a transaction open: end it, or no write could start again.
        let _ = sql(conn, "ROLLBACK");
    }
    if let Err(error) = sql(conn, "BEGIN IMMEDIATE") {
        tracing::error!(%error, "starting a write transaction failed");
        fail_all(batch.into_iter().map(|job| job(None).1), &error);
        return Err(error);
    }
    // A job alone in its transaction needs no savepoint: the transaction is its savepoint.
    let alone = batch.len() == 1;
    let mut replies = Vec::with_capacity(batch.len());
    let mut jobs = batch.into_iter();
    while let Some(job) = jobs.next() {
        if !alone {
            if let Err(error) = sql(conn, "SAVEPOINT job") {
                let (_, reply) = job(None);
                reply(Err(&error));
                continue;
            }
        }
        let (ok, reply) = job(Some(conn));
        if alone {
            if !ok {
                // Nothing to commit; the answer is the job's own error.
                if let Err(error) = sql(conn, "ROLLBACK") {
                    tracing::error!(%error, "rolling back a failed write failed");
                }
                reply(Ok(()));
                return Ok(());
            }
            replies.push(reply);
            continue;
        }
        replies.push(reply);
        let ended = if ok {
            sql(conn, "RELEASE job")
        } else {
            sql(conn, "ROLLBACK TO job").and_then(|()| sql(conn, "RELEASE job"))
        };
        if let Err(error) = ended {
            // The job's writes could not be kept apart from the others': keep none.
            tracing::error!(%error, "ending a savepoint failed; the batch is rolled back");
            let _ = sql(conn, "ROLLBACK");
            fail_all(replies.into_iter().chain(jobs.map(|job| job(None).1)), &error);
            return Ok(());
        }
    }
    let committed = sql(conn, "COMMIT");
    if committed.is_err() {
        let _ = sql(conn, "ROLLBACK");
    }
    for reply in replies {
        reply(committed.as_ref().copied());
    }
    Ok(())
}

fn fail_all(replies: impl IntoIterator<Item = Reply>, error: &rusqlite::Error) {
    for reply in replies {
        reply(Err(error));
    }
}

/// Runs a statement without parameters, prepared once: transaction control runs several
/// times per batch, so parsing it each time shows in profiles.
fn sql(conn: &Connection, statement: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(statement)?.execute([]).map(|_| ())
}

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let mut version: usize = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version == 0 {
        // Databases created by earlier builds (sqlx) record their migrations in a table.
        let legacy: Option<i64> = conn
            .query_row(
                "SELECT MAX(version) FROM _sqlx_migrations WHERE success",
                [],
                |row| row.get(0),
            )
            .ok()
            .flatten();
        version = legacy.and_then(|v| usize::try_from(v).ok()).unwrap_or(0);
    }
    if version > MIGRATIONS.len() {
        return Err(StoreError::Migrate(format!(
            "the database is at version {version}, newer than this build ({})",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        conn.execute_batch(sql)
            .and_then(|()| conn.pragma_update(None, "user_version", index + 1))
            .map_err(|error| StoreError::Migrate(format!("migration {}: {error}", index + 1)))?;
    }
    Ok(())
}

fn copy_error(error: &rusqlite::Error) -> rusqlite::Error {
    match error {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    }
}

/// The error of a write refused while another process holds the lock.
fn busy() -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
        Some("another process holds the database's lock".to_owned()),
    )
}

fn writer_gone() -> StoreError {
    StoreError::Io("the database writer has stopped".to_owned())
}

/// Runs a (cached) query and maps every row.
pub(super) fn all<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl Fn(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(map(row)?);
    }
    Ok(out)
}

/// Runs a (cached) query and maps its first row, if any.
pub(super) fn first<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl FnOnce(&rusqlite::Row<'_>) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    let mut rows = statement.query(params)?;
    rows.next()?.map(map).transpose()
}

/// Runs a (cached) statement; returns the number of rows it changed.
pub(super) fn execute(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<usize, StoreError> {
    Ok(conn.prepare_cached(sql)?.execute(params)?)
}

//! Migrations: a fresh database gets every step; a database made by the earlier sqlx build is
//! adopted at the version its `_sqlx_migrations` table records; a newer database is refused.
//!
//! The SQLite tests always run. The PostgreSQL ones (`migrations/postgres`, counted in
//! `hookline_migrations`) run with `HOOKLINE_TEST_DATABASE=postgres`, on the throwaway cluster
//! of `common/mod.rs`, and say they were skipped otherwise.

mod common;

use common::{backend, Backend};
use pgcluster::Cluster;
use store::{PgStore, SqliteStore, StoreError, Vault};

const OLD_STEPS: [&str; 3] = [
    include_str!("../migrations/sqlite/0001_configuration.sql"),
    include_str!("../migrations/sqlite/0002_calls.sql"),
    include_str!("../migrations/sqlite/0003_delivery.sql"),
];

fn index_exists(conn: &rusqlite::Connection, name: &str) -> bool {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?)",
        [name],
        |row| row.get(0),
    )
    .expect("query")
}

async fn open(path: &std::path::Path) -> SqliteStore {
    SqliteStore::open(&format!("sqlite://{}", path.display()), Vault::new([1; 32]))
        .await
        .expect("open")
}

#[tokio::test]
async fn a_database_of_the_sqlx_build_is_adopted_and_upgraded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("old.db");
    {
        let old = rusqlite::Connection::open(&path).expect("create");
        for step in OLD_STEPS {
            old.execute_batch(step).expect("old step");
        }
        old.execute_batch(
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
             installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, \
             checksum BLOB NOT NULL, execution_time BIGINT NOT NULL); \
             INSERT INTO _sqlx_migrations VALUES (1, 'configuration', 0, 1, x'00', 0), \
             (2, 'calls', 0, 1, x'00', 0), (3, 'delivery', 0, 1, x'00', 0);",
        )
        .expect("sqlx bookkeeping");
    }
    let store = open(&path).await;
    store
        .migrate()
        .await
        .expect("the old database is adopted, not migrated from scratch");
    let after = rusqlite::Connection::open(&path).expect("reopen");
    let version: i64 = after
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("version");
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .expect("the migrations folder")
        .count();
    assert_eq!(
        version,
        i64::try_from(migrations).expect("a few"),
        "every migration ran"
    );
    assert!(
        !index_exists(&after, "deliveries_pending_by_destination"),
        "step 4 ran on the adopted database"
    );
    store.migrate().await.expect("migrating again changes nothing");
}

#[tokio::test]
async fn a_database_newer_than_the_build_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("new.db");
    open(&path).await.migrate().await.expect("fresh");
    rusqlite::Connection::open(&path)
        .expect("reopen")
        .execute_batch("PRAGMA user_version = 99;")
        .expect("from the future");
    let refused = open(&path).await.migrate().await;
    assert!(matches!(refused, Err(StoreError::Migrate(_))), "{refused:?}");
}

/// A fresh PostgreSQL database and its URL, or `None` (and a note) when the tests run on SQLite.
fn postgres_database(test: &str) -> Option<String> {
    if backend() != Backend::Postgres {
        eprintln!("{test}: skipped, PostgreSQL only (set HOOKLINE_TEST_DATABASE=postgres)");
        return None;
    }
    Some(Cluster::shared().create_database().expect("a database"))
}

async fn open_postgres(url: &str) -> PgStore {
    PgStore::open(url, Vault::new([1; 32])).await.expect("open")
}

#[tokio::test]
async fn a_fresh_postgres_database_gets_every_step_once() {
    let Some(url) = postgres_database("a_fresh_postgres_database_gets_every_step_once") else {
        return;
    };
    let store = open_postgres(&url).await;
    store.migrate().await.expect("fresh");
    store.migrate().await.expect("migrating again changes nothing");
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .expect("the migrations folder")
        .count();
    let recorded = Cluster::shared()
        .psql(&url, "SELECT count(*), max(version) FROM hookline_migrations")
        .expect("query");
    assert_eq!(
        recorded,
        format!("{migrations}|{migrations}\n"),
        "each step once, in order"
    );
}

/// Nodes started together migrate the same fresh database at once: both succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_nodes_starting_together_both_migrate() {
    let Some(url) = postgres_database("postgres_nodes_starting_together_both_migrate") else {
        return;
    };
    let (a, b) = (open_postgres(&url).await, open_postgres(&url).await);
    let (a, b) = tokio::join!(a.migrate(), b.migrate());
    a.expect("the first node");
    b.expect("the second node");
}

#[tokio::test]
async fn a_postgres_database_newer_than_the_build_is_refused() {
    let Some(url) = postgres_database("a_postgres_database_newer_than_the_build_is_refused") else {
        return;
    };
    open_postgres(&url).await.migrate().await.expect("fresh");
    Cluster::shared()
        .psql(&url, "INSERT INTO hookline_migrations (version) VALUES (99)")
        .expect("from the future");
    let refused = open_postgres(&url).await.migrate().await;
    assert!(matches!(refused, Err(StoreError::Migrate(_))), "{refused:?}");
}

//! The store a test runs on: SQLite in a temporary directory, or — with
//! `HOOKLINE_TEST_DATABASE=postgres` — a fresh database on the PostgreSQL cluster this test
//! process starts for itself ([`pgcluster::Cluster::shared`]). Opened and migrated, behind the
//! `Store` trait, so one test checks both backends.

// Each test binary that includes this module uses a part of it.
#![allow(dead_code)]

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;

use pgcluster::Cluster;
use store::{PgStore, SqliteStore, Store, Vault};

/// The environment variable that chooses the backend: `postgres`, or `sqlite` (the default).
pub const BACKEND_VAR: &str = "HOOKLINE_TEST_DATABASE";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backend [`BACKEND_VAR`] chooses. Any other value is a mistake that would quietly test
/// SQLite twice, so it panics.
pub fn backend() -> Backend {
    match std::env::var(BACKEND_VAR).as_deref() {
        Err(_) | Ok("" | "sqlite") => Backend::Sqlite,
        Ok("postgres" | "postgresql") => Backend::Postgres,
        Ok(other) => panic!("{BACKEND_VAR}={other:?}: expected \"postgres\" or \"sqlite\""),
    }
}

/// A migrated store on a database of its own, and where that database is. PostgreSQL
/// databases are not dropped: a store test makes a few, and the cluster goes with the process.
pub struct TestStore {
    pub store: Arc<dyn Store>,
    place: Place,
}

enum Place {
    Sqlite { path: PathBuf, _dir: tempfile::TempDir },
    Postgres { url: String },
}

impl TestStore {
    /// A fresh, migrated store on the chosen backend, sealing with `key`.
    pub async fn open(key: [u8; 32]) -> TestStore {
        match backend() {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let path = dir.path().join("test.db");
                let url = format!("sqlite://{}", path.display());
                let store = SqliteStore::open(&url, Vault::new(key)).await.expect("open");
                store.migrate().await.expect("migrate");
                TestStore {
                    store: Arc::new(store),
                    place: Place::Sqlite { path, _dir: dir },
                }
            }
            Backend::Postgres => {
                let url = Cluster::shared()
                    .create_database()
                    .expect("creating a PostgreSQL database");
                let store = PgStore::open(&url, Vault::new(key)).await.expect("open");
                store.migrate().await.expect("migrate");
                TestStore {
                    store: Arc::new(store),
                    place: Place::Postgres { url },
                }
            }
        }
    }

    pub fn backend(&self) -> Backend {
        match self.place {
            Place::Sqlite { .. } => Backend::Sqlite,
            Place::Postgres { .. } => Backend::Postgres,
        }
    }

    /// Runs one `UPDATE` on the database behind the store's back (a change made outside
    /// Hookline) and returns how many rows it changed. `sql` has no parameters and is valid on
    /// both backends (the schemas mirror each other column for column).
    pub fn update_outside(&self, sql: &str) -> usize {
        match &self.place {
            Place::Sqlite { path, .. } => {
                let outside = rusqlite::Connection::open(path).expect("open directly");
                outside
                    .busy_timeout(std::time::Duration::from_secs(5))
                    .expect("busy timeout");
                outside.execute(sql, []).expect("update")
            }
            Place::Postgres { url } => Cluster::shared()
                .psql(url, &format!("{sql} RETURNING 1"))
                .expect("update")
                .lines()
                .count(),
        }
    }
}

impl Deref for TestStore {
    type Target = dyn Store;

    fn deref(&self) -> &(dyn Store + 'static) {
        &*self.store
    }
}

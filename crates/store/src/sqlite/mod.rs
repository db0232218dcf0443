//! The SQLite backend: the embedded default (`sqlite://./hookline-data/hookline.db`).
//!
//! WAL mode lets readers run beside the single writer; `synchronous=NORMAL` keeps every
//! committed transaction across a process crash (`kill -9`), which is the durability promise
//! of PRODUCT.md §4.3 (only a power loss could drop the last commits).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    Account, AppId, Application, AuthId, Call, CallUuid, EventId, Report, SecretId, Trunk, TrunkId,
};
use rand::RngCore;
use sqlx::sqlite::SqliteRow;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::codec::*;
use crate::vault::{new_auth_token, token_hash, token_matches, Vault};
use crate::{
    Authentication, CallCreation, CallFilter, CallbackFilter, ClaimedDelivery, CreatedAccount,
    DeliveryRecord, FinishedAttempt, IdempotentAnswer, Listing, NewSecret, Page, RecordedEvent, Redelivery,
    SecretDeletion, SecretInfo, SigningKeys, Store, StoreError,
};

mod calls;
mod queue;
mod rows;
mod secrets;

use rows::{account_from_row, application_from_row, trunk_from_row};

/// Transactions that read before they write start with `BEGIN IMMEDIATE`: in WAL mode a
/// deferred transaction that upgrades to a writer after another writer committed fails at once
/// with SQLITE_BUSY (no busy-timeout wait), while an immediate one queues for the write lock.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

/// How many times a generated id is redrawn after a (vanishingly rare) collision.
const ID_ATTEMPTS: usize = 3;

const ACCOUNT_COLUMNS: &str = "auth_id, name, timezone, default_callback_url, default_callback_method, \
     default_callback_events, parent_auth_id, created_at, updated_at";
const APPLICATION_COLUMNS: &str =
    "app_id, auth_id, name, callback_url, callback_method, fallback_callback_url, \
     callback_events, answer_url, answer_method, hangup_url, hangup_method, created_at, updated_at";
const TRUNK_COLUMNS: &str = "trunk_id, auth_id, name, status_callback, status_callback_method, \
     status_callback_events, trunk_direction, trunk_status, termination_uri, recording, engine, created_at, updated_at";

/// A [`Store`] on one SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Readers: WAL lets them run beside the writer.
    pool: SqlitePool,
    /// The one connection that writes. SQLite has a single writer anyway; queueing writers here,
    /// in order, instead of in SQLite's busy handler (which sleeps and retries) keeps write
    /// latency flat under load.
    writer: SqlitePool,
    vault: Vault,
}

impl SqliteStore {
    /// Opens (creating if missing, with its directory) the database at a `sqlite://PATH` URL.
    ///
    /// # Errors
    /// `Backend` when the URL is not a SQLite URL or the file cannot be opened.
    pub async fn open(url: &str, vault: Vault) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        if let Some(dir) = options.get_filename().parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Backend(sqlx::Error::Io(e)))?;
            }
        }
        // The writer never checkpoints on commit (that would stall the commit that crosses the
        // threshold, a latency spike); `checkpoint` runs beside it instead.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone().pragma("wal_autocheckpoint", "0"))
            .await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        Ok(SqliteStore { pool, writer, vault })
    }

    /// Copies committed WAL pages into the database file without blocking the writer
    /// (`PRAGMA wal_checkpoint(PASSIVE)`); call it periodically, since the writer does not.
    ///
    /// # Errors
    /// `Backend` when the checkpoint fails.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Applies pending migrations.
    ///
    /// # Errors
    /// `Migrate` when a migration fails or the database is newer than this binary.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations/sqlite").run(&self.writer).await?;
        Ok(())
    }

    /// Runs a select with text binds (and `LIMIT ? OFFSET ?` binds for a page) and maps the rows.
    async fn fetch<T>(
        &self,
        sql: &str,
        binds: &[&str],
        page: Option<Page>,
        map: fn(&SqliteRow) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut query = sqlx::query(sql);
        for bind in binds {
            query = query.bind(*bind);
        }
        if let Some(page) = page {
            query = query.bind(i64::from(page.limit)).bind(offset_to_db(page.offset));
        }
        query.fetch_all(&self.pool).await?.iter().map(map).collect()
    }

    async fn count(&self, table: &'static str, auth_id: &AuthId) -> Result<u64, StoreError> {
        let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE auth_id = ?"))
            .bind(auth_id.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(total).unwrap_or(0))
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_account(
        &self,
        name: &str,
        parent: Option<&AuthId>,
        now: DateTime<Utc>,
    ) -> Result<CreatedAccount, StoreError> {
        let auth_token = new_auth_token();
        for attempt in 1..=ID_ATTEMPTS {
            let mut random = [0u8; 8];
            rand::rngs::OsRng.fill_bytes(&mut random);
            let account = Account::new(
                AuthId::generate(parent.is_some(), random),
                name.to_owned(),
                parent.cloned(),
                now,
            );
            let mut tx = self.writer.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO accounts (auth_id, name, timezone, default_callback_url, default_callback_method, \
                 default_callback_events, parent_auth_id, token_hash, token_sealed, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(account.auth_id.as_str())
            .bind(&account.name)
            .bind(account.timezone.name())
            .bind(url_to_db(&account.default_callback_url))
            .bind(account.default_callback_method.as_str())
            .bind(filter_to_db(&account.default_callback_events))
            .bind(parent.map(AuthId::as_str))
            .bind(token_hash(&auth_token).as_slice())
            .bind(self.vault.seal(account.auth_id.as_str(), auth_token.as_bytes()))
            .bind(time_to_db(now))
            .bind(time_to_db(now))
            .execute(&mut *tx)
            .await;
            match inserted {
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() && attempt < ID_ATTEMPTS => continue,
                Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
                    return Err(StoreError::NotFound)
                }
                other => other?,
            };
            let signing_secret = secrets::insert_secret(&self.vault, &mut tx, &account.auth_id, now).await?;
            tx.commit().await?;
            return Ok(CreatedAccount {
                account,
                auth_token,
                signing_secret,
            });
        }
        Err(StoreError::Conflict("could not draw a free auth id"))
    }

    async fn account(&self, auth_id: &AuthId) -> Result<Option<Account>, StoreError> {
        sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE auth_id = ?"
        ))
        .bind(auth_id.as_str())
        .fetch_optional(&self.pool)
        .await?
        .map(|row| account_from_row(&row))
        .transpose()
    }

    async fn count_accounts(&self) -> Result<u64, StoreError> {
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(total).unwrap_or(0))
    }

    async fn authenticate(&self, auth_id: &AuthId, token: &str) -> Result<Authentication, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS}, token_hash FROM accounts WHERE auth_id = ?"
        ))
        .bind(auth_id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(Authentication::UnknownAccount);
        };
        let stored: Vec<u8> = row.try_get("token_hash")?;
        if token_matches(token, &stored) {
            Ok(Authentication::Authenticated(Box::new(account_from_row(&row)?)))
        } else {
            Ok(Authentication::WrongToken)
        }
    }

    async fn update_account(&self, account: &Account) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE accounts SET name = ?, timezone = ?, default_callback_url = ?, default_callback_method = ?, \
             default_callback_events = ?, updated_at = ? WHERE auth_id = ?",
        )
        .bind(&account.name)
        .bind(account.timezone.name())
        .bind(url_to_db(&account.default_callback_url))
        .bind(account.default_callback_method.as_str())
        .bind(filter_to_db(&account.default_callback_events))
        .bind(time_to_db(account.updated_at))
        .bind(account.auth_id.as_str())
        .execute(&self.writer)
        .await?;
        found(done.rows_affected())
    }

    async fn rotate_token(&self, auth_id: &AuthId, now: DateTime<Utc>) -> Result<String, StoreError> {
        let token = new_auth_token();
        let done = sqlx::query(
            "UPDATE accounts SET token_hash = ?, token_sealed = ?, updated_at = ? WHERE auth_id = ?",
        )
        .bind(token_hash(&token).as_slice())
        .bind(self.vault.seal(auth_id.as_str(), token.as_bytes()))
        .bind(time_to_db(now))
        .bind(auth_id.as_str())
        .execute(&self.writer)
        .await?;
        found(done.rows_affected())?;
        Ok(token)
    }

    async fn insert_application(&self, app: &Application) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO applications ({APPLICATION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(app.app_id.as_str())
        .bind(app.auth_id.as_str())
        .bind(&app.name)
        .bind(url_to_db(&app.callback_url))
        .bind(app.callback_method.as_str())
        .bind(url_to_db(&app.fallback_callback_url))
        .bind(filter_to_db(&app.callback_events))
        .bind(url_to_db(&app.answer_url))
        .bind(app.answer_method.as_str())
        .bind(url_to_db(&app.hangup_url))
        .bind(app.hangup_method.as_str())
        .bind(time_to_db(app.created_at))
        .bind(time_to_db(app.updated_at))
        .execute(&self.writer)
        .await
        .map_err(unique_is_conflict)?;
        Ok(())
    }

    async fn application(&self, auth_id: &AuthId, app_id: &AppId) -> Result<Option<Application>, StoreError> {
        let sql = format!("SELECT {APPLICATION_COLUMNS} FROM applications WHERE auth_id = ? AND app_id = ?");
        Ok(self
            .fetch(
                &sql,
                &[auth_id.as_str(), app_id.as_str()],
                None,
                application_from_row,
            )
            .await?
            .pop())
    }

    async fn list_applications(
        &self,
        auth_id: &AuthId,
        page: Page,
    ) -> Result<Listing<Application>, StoreError> {
        let sql = format!(
            "SELECT {APPLICATION_COLUMNS} FROM applications WHERE auth_id = ? \
             ORDER BY created_at, app_id LIMIT ? OFFSET ?"
        );
        let items = self
            .fetch(&sql, &[auth_id.as_str()], Some(page), application_from_row)
            .await?;
        let total = self.count("applications", auth_id).await?;
        Ok(Listing { items, total })
    }

    async fn update_application(&self, app: &Application) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE applications SET name = ?, callback_url = ?, callback_method = ?, fallback_callback_url = ?, \
             callback_events = ?, answer_url = ?, answer_method = ?, hangup_url = ?, hangup_method = ?, \
             updated_at = ? WHERE auth_id = ? AND app_id = ?",
        )
        .bind(&app.name)
        .bind(url_to_db(&app.callback_url))
        .bind(app.callback_method.as_str())
        .bind(url_to_db(&app.fallback_callback_url))
        .bind(filter_to_db(&app.callback_events))
        .bind(url_to_db(&app.answer_url))
        .bind(app.answer_method.as_str())
        .bind(url_to_db(&app.hangup_url))
        .bind(app.hangup_method.as_str())
        .bind(time_to_db(app.updated_at))
        .bind(app.auth_id.as_str())
        .bind(app.app_id.as_str())
        .execute(&self.writer)
        .await?;
        found(done.rows_affected())
    }

    async fn delete_application(&self, auth_id: &AuthId, app_id: &AppId) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM applications WHERE auth_id = ? AND app_id = ?")
            .bind(auth_id.as_str())
            .bind(app_id.as_str())
            .execute(&self.writer)
            .await?;
        found(done.rows_affected())
    }

    async fn insert_trunk(&self, trunk: &Trunk) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO trunks ({TRUNK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(trunk.trunk_id.to_string())
        .bind(trunk.auth_id.as_str())
        .bind(&trunk.name)
        .bind(url_to_db(&trunk.status_callback))
        .bind(trunk.status_callback_method.as_str())
        .bind(filter_to_db(&trunk.status_callback_events))
        .bind(trunk.trunk_direction.as_str())
        .bind(trunk.trunk_status.as_str())
        .bind(trunk.termination_uri.as_ref().map(|uri| uri.as_str()))
        .bind(trunk.recording)
        .bind(trunk.engine.as_str())
        .bind(time_to_db(trunk.created_at))
        .bind(time_to_db(trunk.updated_at))
        .execute(&self.writer)
        .await
        .map_err(unique_is_conflict)?;
        Ok(())
    }

    async fn trunk(&self, auth_id: &AuthId, trunk_id: &TrunkId) -> Result<Option<Trunk>, StoreError> {
        let sql = format!("SELECT {TRUNK_COLUMNS} FROM trunks WHERE auth_id = ? AND trunk_id = ?");
        let trunk_id = trunk_id.to_string();
        Ok(self
            .fetch(&sql, &[auth_id.as_str(), &trunk_id], None, trunk_from_row)
            .await?
            .pop())
    }

    async fn list_trunks(&self, auth_id: &AuthId, page: Page) -> Result<Listing<Trunk>, StoreError> {
        let sql = format!(
            "SELECT {TRUNK_COLUMNS} FROM trunks WHERE auth_id = ? ORDER BY created_at, trunk_id LIMIT ? OFFSET ?"
        );
        let items = self
            .fetch(&sql, &[auth_id.as_str()], Some(page), trunk_from_row)
            .await?;
        let total = self.count("trunks", auth_id).await?;
        Ok(Listing { items, total })
    }

    async fn update_trunk(&self, trunk: &Trunk) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE trunks SET name = ?, status_callback = ?, status_callback_method = ?, status_callback_events = ?, \
             trunk_direction = ?, trunk_status = ?, termination_uri = ?, recording = ?, engine = ?, updated_at = ? \
             WHERE auth_id = ? AND trunk_id = ?",
        )
        .bind(&trunk.name)
        .bind(url_to_db(&trunk.status_callback))
        .bind(trunk.status_callback_method.as_str())
        .bind(filter_to_db(&trunk.status_callback_events))
        .bind(trunk.trunk_direction.as_str())
        .bind(trunk.trunk_status.as_str())
        .bind(trunk.termination_uri.as_ref().map(|uri| uri.as_str()))
        .bind(trunk.recording)
        .bind(trunk.engine.as_str())
        .bind(time_to_db(trunk.updated_at))
        .bind(trunk.auth_id.as_str())
        .bind(trunk.trunk_id.to_string())
        .execute(&self.writer)
        .await?;
        found(done.rows_affected())
    }

    async fn delete_trunk(&self, auth_id: &AuthId, trunk_id: &TrunkId) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM trunks WHERE auth_id = ? AND trunk_id = ?")
            .bind(auth_id.as_str())
            .bind(trunk_id.to_string())
            .execute(&self.writer)
            .await?;
        found(done.rows_affected())
    }

    async fn call(&self, auth_id: Option<&AuthId>, call_uuid: &CallUuid) -> Result<Option<Call>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        calls::load_call(&mut conn, auth_id, call_uuid).await
    }

    async fn create_signing_secret(
        &self,
        auth_id: &AuthId,
        now: DateTime<Utc>,
    ) -> Result<NewSecret, StoreError> {
        secrets::create_signing_secret(&self.writer, &self.vault, auth_id, now).await
    }

    async fn list_signing_secrets(&self, auth_id: &AuthId) -> Result<Vec<SecretInfo>, StoreError> {
        secrets::list_signing_secrets(&self.pool, auth_id).await
    }

    async fn delete_signing_secret(
        &self,
        auth_id: &AuthId,
        secret_id: &SecretId,
    ) -> Result<SecretDeletion, StoreError> {
        secrets::delete_signing_secret(&self.writer, auth_id, secret_id).await
    }

    async fn create_call(
        &self,
        call: &Call,
        idempotency: Option<(&str, IdempotentAnswer)>,
        now: DateTime<Utc>,
    ) -> Result<CallCreation, StoreError> {
        calls::create_call(&self.writer, call, idempotency, now).await
    }

    async fn idempotent_answer(
        &self,
        auth_id: &AuthId,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotentAnswer>, StoreError> {
        calls::idempotent_answer(&self.pool, auth_id, key, now).await
    }

    async fn list_calls(
        &self,
        auth_id: &AuthId,
        filter: &CallFilter,
        page: Page,
    ) -> Result<Listing<Call>, StoreError> {
        calls::list_calls(&self.pool, auth_id, filter, page).await
    }

    async fn apply_report(
        &self,
        auth_id: Option<&AuthId>,
        call_uuid: &CallUuid,
        report: Report,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<RecordedEvent, StoreError> {
        calls::apply_report(&self.writer, auth_id, call_uuid, report, at, now).await
    }

    async fn unfinished_simulated_calls(&self) -> Result<Vec<Call>, StoreError> {
        calls::unfinished_simulated_calls(&self.pool).await
    }

    async fn call_deliveries(
        &self,
        auth_id: &AuthId,
        call_uuid: &CallUuid,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        calls::call_deliveries(&self.pool, auth_id, call_uuid).await
    }

    async fn list_deliveries(
        &self,
        auth_id: &AuthId,
        filter: &CallbackFilter,
        page: Page,
    ) -> Result<Listing<DeliveryRecord>, StoreError> {
        calls::list_deliveries(&self.pool, auth_id, filter, page).await
    }

    async fn claim_due(
        &self,
        limit: u32,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        queue::claim_due(&self.writer, limit, now, lease_until).await
    }

    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        queue::next_due_at(&self.pool).await
    }

    async fn record_attempts(
        &self,
        finished: &[FinishedAttempt],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        queue::record_attempts(&self.writer, finished, now).await
    }

    async fn release(&self, delivery_ids: &[i64], next_attempt_at: DateTime<Utc>) -> Result<(), StoreError> {
        queue::release(&self.writer, delivery_ids, next_attempt_at).await
    }

    async fn release_all_leases(&self) -> Result<u64, StoreError> {
        let done = sqlx::query("UPDATE deliveries SET leased_until = NULL WHERE leased_until IS NOT NULL")
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }

    async fn signing_keys(&self, auth_id: &AuthId) -> Result<SigningKeys, StoreError> {
        secrets::signing_keys(&self.pool, &self.vault, auth_id).await
    }

    async fn redeliver(
        &self,
        auth_id: &AuthId,
        event_id: &EventId,
        now: DateTime<Utc>,
    ) -> Result<Redelivery, StoreError> {
        queue::redeliver(&self.writer, auth_id, event_id, now).await
    }

    async fn event_deliveries(
        &self,
        auth_id: &AuthId,
        event_id: &EventId,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let rows = sqlx::query(&queue::select_deliveries(queue::EVENT_DELIVERIES))
            .bind(auth_id.as_str())
            .bind(event_id.to_string())
            .fetch_all(&mut *conn)
            .await?;
        queue::deliveries_with_attempts(&mut conn, rows).await
    }

    async fn queue_depth(&self) -> Result<(u64, Option<DateTime<Utc>>), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM deliveries WHERE status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?;
        let n: i64 = row.try_get("n")?;
        let oldest: Option<i64> = row.try_get("oldest")?;
        Ok((
            u64::try_from(n).unwrap_or(0),
            oldest.map(time_from_db).transpose()?,
        ))
    }
}

fn found(rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

fn unique_is_conflict(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::Database(e) if e.is_unique_violation() => {
            StoreError::Conflict("the id is already taken")
        }
        other => StoreError::Backend(other),
    }
}

fn offset_to_db(offset: u64) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}

fn random_u128() -> u128 {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    u128::from_le_bytes(bytes)
}

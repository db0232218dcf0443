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
    Account, AppId, Application, AuthId, Call, CallUuid, EventId, EventKind, Report, SecretId, Trunk, TrunkId,
};
use rand::RngCore;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};

use crate::codec::*;
use crate::vault::{new_auth_token, token_hash, token_matches, Vault};
use crate::{
    AfterAttempt, AttemptRecord, Authentication, CallCreation, CallFilter, CallbackFilter, ClaimedDelivery,
    CreatedAccount, DeliveryRecord, IdempotentAnswer, Listing, NewSecret, Page, RecordedEvent, Redelivery,
    SecretDeletion, SecretInfo, SigningKeys, Store, StoreError,
};

mod calls;
mod queue;

/// Idempotency keys are honoured for this long (PRODUCT.md §2.4).
const IDEMPOTENCY_WINDOW_MICROS: i64 = 24 * 3600 * 1_000_000;

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
    pool: SqlitePool,
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
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        Ok(SqliteStore { pool, vault })
    }

    /// Applies pending migrations.
    ///
    /// # Errors
    /// `Migrate` when a migration fails or the database is newer than this binary.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations/sqlite").run(&self.pool).await?;
        Ok(())
    }

    async fn fetch_applications(
        &self,
        sql: &str,
        binds: &[&str],
        page: Option<Page>,
    ) -> Result<Vec<Application>, StoreError> {
        let mut query = sqlx::query(sql);
        for bind in binds {
            query = query.bind(*bind);
        }
        if let Some(page) = page {
            query = query.bind(i64::from(page.limit)).bind(offset_to_db(page.offset));
        }
        query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(application_from_row)
            .collect()
    }

    async fn fetch_trunks(
        &self,
        sql: &str,
        binds: &[&str],
        page: Option<Page>,
    ) -> Result<Vec<Trunk>, StoreError> {
        let mut query = sqlx::query(sql);
        for bind in binds {
            query = query.bind(*bind);
        }
        if let Some(page) = page {
            query = query.bind(i64::from(page.limit)).bind(offset_to_db(page.offset));
        }
        query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(trunk_from_row)
            .collect()
    }

    async fn count(&self, table: &'static str, auth_id: &AuthId) -> Result<u64, StoreError> {
        let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE auth_id = ?"))
            .bind(auth_id.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(total).unwrap_or(0))
    }

    fn open_token(&self, auth_id: &str, sealed: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        self.vault
            .open(auth_id, &sealed)
            .map_err(|_| corrupt("auth token of", auth_id))
    }

    async fn insert_secret(
        &self,
        tx: &mut sqlx::SqliteConnection,
        auth_id: &AuthId,
        now: DateTime<Utc>,
    ) -> Result<NewSecret, StoreError> {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let secret_id = SecretId::from_random(random_u128());
        let sealed = self.vault.seal(&secret_id.to_string(), &bytes);
        sqlx::query(
            "INSERT INTO signing_secrets (secret_id, auth_id, secret_sealed, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(secret_id.to_string())
        .bind(auth_id.as_str())
        .bind(sealed)
        .bind(time_to_db(now))
        .execute(&mut *tx)
        .await?;
        Ok(NewSecret {
            info: SecretInfo {
                secret_id,
                created_at: now,
            },
            bytes,
        })
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
            let mut tx = self.pool.begin().await?;
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
            let signing_secret = self.insert_secret(&mut tx, &account.auth_id, now).await?;
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
        .execute(&self.pool)
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
        .execute(&self.pool)
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
        .execute(&self.pool)
        .await
        .map_err(unique_is_conflict)?;
        Ok(())
    }

    async fn application(&self, auth_id: &AuthId, app_id: &AppId) -> Result<Option<Application>, StoreError> {
        let sql = format!("SELECT {APPLICATION_COLUMNS} FROM applications WHERE auth_id = ? AND app_id = ?");
        Ok(self
            .fetch_applications(&sql, &[auth_id.as_str(), app_id.as_str()], None)
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
            .fetch_applications(&sql, &[auth_id.as_str()], Some(page))
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
        .execute(&self.pool)
        .await?;
        found(done.rows_affected())
    }

    async fn delete_application(&self, auth_id: &AuthId, app_id: &AppId) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM applications WHERE auth_id = ? AND app_id = ?")
            .bind(auth_id.as_str())
            .bind(app_id.as_str())
            .execute(&self.pool)
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
        .execute(&self.pool)
        .await
        .map_err(unique_is_conflict)?;
        Ok(())
    }

    async fn trunk(&self, auth_id: &AuthId, trunk_id: &TrunkId) -> Result<Option<Trunk>, StoreError> {
        let sql = format!("SELECT {TRUNK_COLUMNS} FROM trunks WHERE auth_id = ? AND trunk_id = ?");
        let trunk_id = trunk_id.to_string();
        Ok(self
            .fetch_trunks(&sql, &[auth_id.as_str(), &trunk_id], None)
            .await?
            .pop())
    }

    async fn list_trunks(&self, auth_id: &AuthId, page: Page) -> Result<Listing<Trunk>, StoreError> {
        let sql = format!(
            "SELECT {TRUNK_COLUMNS} FROM trunks WHERE auth_id = ? ORDER BY created_at, trunk_id LIMIT ? OFFSET ?"
        );
        let items = self.fetch_trunks(&sql, &[auth_id.as_str()], Some(page)).await?;
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
        .execute(&self.pool)
        .await?;
        found(done.rows_affected())
    }

    async fn delete_trunk(&self, auth_id: &AuthId, trunk_id: &TrunkId) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM trunks WHERE auth_id = ? AND trunk_id = ?")
            .bind(auth_id.as_str())
            .bind(trunk_id.to_string())
            .execute(&self.pool)
            .await?;
        found(done.rows_affected())
    }

    async fn create_signing_secret(
        &self,
        auth_id: &AuthId,
        now: DateTime<Utc>,
    ) -> Result<NewSecret, StoreError> {
        let mut tx = self.pool.begin().await?;
        let secret = self
            .insert_secret(&mut tx, auth_id, now)
            .await
            .map_err(|e| match e {
                StoreError::Backend(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                    StoreError::NotFound
                }
                other => other,
            })?;
        tx.commit().await?;
        Ok(secret)
    }

    async fn list_signing_secrets(&self, auth_id: &AuthId) -> Result<Vec<SecretInfo>, StoreError> {
        sqlx::query("SELECT secret_id, created_at FROM signing_secrets WHERE auth_id = ? ORDER BY created_at, secret_id")
            .bind(auth_id.as_str())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                let id: String = row.try_get("secret_id")?;
                Ok(SecretInfo {
                    secret_id: SecretId::parse(&id).ok_or_else(|| corrupt("secret_id", &id))?,
                    created_at: time_from_db(row.try_get("created_at")?)?,
                })
            })
            .collect()
    }

    async fn delete_signing_secret(
        &self,
        auth_id: &AuthId,
        secret_id: &SecretId,
    ) -> Result<SecretDeletion, StoreError> {
        // One statement, so two concurrent deletes cannot both pass the "not the last" check.
        let done = sqlx::query(
            "DELETE FROM signing_secrets WHERE auth_id = ?1 AND secret_id = ?2 \
             AND (SELECT COUNT(*) FROM signing_secrets WHERE auth_id = ?1) > 1",
        )
        .bind(auth_id.as_str())
        .bind(secret_id.to_string())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(SecretDeletion::Deleted);
        }
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM signing_secrets WHERE auth_id = ? AND secret_id = ?")
                .bind(auth_id.as_str())
                .bind(secret_id.to_string())
                .fetch_optional(&self.pool)
                .await?;
        Ok(if exists.is_some() {
            SecretDeletion::LastSecret
        } else {
            SecretDeletion::NotFound
        })
    }

    async fn create_call(
        &self,
        call: &Call,
        idempotency: Option<(&str, IdempotentAnswer)>,
        now: DateTime<Utc>,
    ) -> Result<CallCreation, StoreError> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        if let Some((key, answer)) = &idempotency {
            if let Some(existing) = fetch_idempotent(&mut tx, &call.auth_id, key, now).await? {
                return Ok(CallCreation::Replayed(existing));
            }
            sqlx::query("DELETE FROM idempotency_keys WHERE auth_id = ? AND key = ?")
                .bind(call.auth_id.as_str())
                .bind(*key)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO idempotency_keys (auth_id, key, request_hash, status, body, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(call.auth_id.as_str())
            .bind(*key)
            .bind(answer.request_hash.as_slice())
            .bind(i64::from(answer.status))
            .bind(&answer.body)
            .bind(time_to_db(now))
            .execute(&mut *tx)
            .await?;
        }
        calls::insert_call(&mut tx, call, now).await?;
        let event_id = EventId::from_random(random_u128());
        calls::record_event(
            &mut tx,
            call,
            EventKind::CallInitiated,
            call.initiated_at,
            now,
            event_id,
        )
        .await?;
        tx.commit().await?;
        Ok(CallCreation::Created(Box::new(call.clone())))
    }

    async fn idempotent_answer(
        &self,
        auth_id: &AuthId,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotentAnswer>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        fetch_idempotent(&mut conn, auth_id, key, now).await
    }

    async fn call(&self, auth_id: Option<&AuthId>, call_uuid: &CallUuid) -> Result<Option<Call>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        calls::load_call(&mut conn, auth_id, call_uuid).await
    }

    async fn list_calls(
        &self,
        auth_id: &AuthId,
        filter: &CallFilter,
        page: Page,
    ) -> Result<Listing<Call>, StoreError> {
        const WHERE: &str =
            "WHERE auth_id = ?1 AND (?2 IS NULL OR call_status = ?2) AND (?3 IS NULL OR direction = ?3) \
             AND (?4 IS NULL OR from_number = ?4) AND (?5 IS NULL OR to_number = ?5) \
             AND (?6 IS NULL OR initiated_at >= ?6) AND (?7 IS NULL OR initiated_at < ?7)";
        let bind = |sql| call_filter_query(sql, auth_id, filter);
        let select = format!(
            "SELECT {} FROM calls {WHERE} ORDER BY initiated_at DESC, call_uuid DESC LIMIT ?8 OFFSET ?9",
            calls::CALL_COLUMNS
        );
        let count = format!("SELECT COUNT(*) FROM calls {WHERE}");
        let items = bind(&select)
            .bind(i64::from(page.limit))
            .bind(offset_to_db(page.offset))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(calls::call_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let total: i64 = bind(&count).fetch_one(&self.pool).await?.try_get(0)?;
        Ok(Listing {
            items,
            total: u64::try_from(total).unwrap_or(0),
        })
    }

    async fn apply_report(
        &self,
        auth_id: Option<&AuthId>,
        call_uuid: &CallUuid,
        report: Report,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<RecordedEvent, StoreError> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let mut call = calls::load_call(&mut tx, auth_id, call_uuid)
            .await?
            .ok_or(StoreError::NotFound)?;
        let kind = call.apply(report, at).map_err(StoreError::Transition)?;
        let event_id = EventId::from_random(random_u128());
        calls::update_call(&mut tx, &call, now).await?;
        calls::record_event(&mut tx, &call, kind, at, now, event_id).await?;
        tx.commit().await?;
        Ok(RecordedEvent {
            event_id,
            sequence: call.last_sequence,
            kind,
            call,
        })
    }

    async fn unfinished_simulated_calls(&self) -> Result<Vec<Call>, StoreError> {
        // Finished calls may still owe a RecordStop; the carrier's script decides.
        sqlx::query(&format!(
            "SELECT {} FROM calls WHERE engine = 'simulated' \
             AND (call_status IN ('queued', 'ringing', 'in-progress') \
                  OR (record = 1 AND answered_at IS NOT NULL AND recording_id IS NULL))",
            calls::CALL_COLUMNS
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(calls::call_from_row)
        .collect()
    }

    async fn call_deliveries(
        &self,
        auth_id: &AuthId,
        call_uuid: &CallUuid,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let rows = sqlx::query(&queue::select_deliveries(
            "WHERE auth_id = ? AND call_uuid = ? ORDER BY sequence, delivery_id",
        ))
        .bind(auth_id.as_str())
        .bind(call_uuid.to_string())
        .fetch_all(&mut *conn)
        .await?;
        queue::deliveries_with_attempts(&mut conn, rows).await
    }

    async fn list_deliveries(
        &self,
        auth_id: &AuthId,
        filter: &CallbackFilter,
        page: Page,
    ) -> Result<Listing<DeliveryRecord>, StoreError> {
        const WHERE: &str =
            "WHERE auth_id = ?1 AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR created_at >= ?3)";
        let bind = |sql| callback_filter_query(sql, auth_id, filter);
        let select = format!(
            "SELECT {} FROM deliveries {WHERE} ORDER BY created_at DESC, delivery_id DESC LIMIT ?4 OFFSET ?5",
            calls::DELIVERY_COLUMNS
        );
        let count = format!("SELECT COUNT(*) FROM deliveries {WHERE}");
        let mut conn = self.pool.acquire().await?;
        let rows = bind(&select)
            .bind(i64::from(page.limit))
            .bind(offset_to_db(page.offset))
            .fetch_all(&mut *conn)
            .await?;
        let items = queue::deliveries_with_attempts(&mut conn, rows).await?;
        let total: i64 = bind(&count).fetch_one(&self.pool).await?.try_get(0)?;
        Ok(Listing {
            items,
            total: u64::try_from(total).unwrap_or(0),
        })
    }

    async fn claim_due(
        &self,
        limit: u32,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        queue::claim_due(&self.pool, limit, now, lease_until).await
    }

    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        queue::next_due_at(&self.pool).await
    }

    async fn record_attempt(
        &self,
        delivery_id: i64,
        attempt: &AttemptRecord,
        after: AfterAttempt,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        queue::record_attempt(&self.pool, delivery_id, attempt, after, now).await
    }

    async fn release(&self, delivery_id: i64, next_attempt_at: DateTime<Utc>) -> Result<(), StoreError> {
        queue::release(&self.pool, delivery_id, next_attempt_at).await
    }

    async fn release_all_leases(&self) -> Result<u64, StoreError> {
        let done = sqlx::query("UPDATE deliveries SET leased_until = NULL WHERE leased_until IS NOT NULL")
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn signing_keys(&self, auth_id: &AuthId) -> Result<SigningKeys, StoreError> {
        let row = sqlx::query("SELECT token_sealed, parent_auth_id FROM accounts WHERE auth_id = ?")
            .bind(auth_id.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        let auth_token = self.open_token(auth_id.as_str(), row.try_get("token_sealed")?)?;
        let parent: Option<String> = row.try_get("parent_auth_id")?;
        let parent_token = match parent {
            None => auth_token.clone(),
            Some(parent) => {
                let sealed: Vec<u8> =
                    sqlx::query_scalar("SELECT token_sealed FROM accounts WHERE auth_id = ?")
                        .bind(&parent)
                        .fetch_one(&self.pool)
                        .await?;
                self.open_token(&parent, sealed)?
            }
        };
        let secrets = sqlx::query(
            "SELECT secret_id, secret_sealed FROM signing_secrets WHERE auth_id = ? ORDER BY created_at",
        )
        .bind(auth_id.as_str())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            let id: String = row.try_get("secret_id")?;
            let sealed: Vec<u8> = row.try_get("secret_sealed")?;
            self.vault
                .open(&id, &sealed)
                .map_err(|_| corrupt("signing secret", &id))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(SigningKeys {
            auth_token,
            parent_token,
            secrets,
        })
    }

    async fn redeliver(
        &self,
        auth_id: &AuthId,
        event_id: &EventId,
        now: DateTime<Utc>,
    ) -> Result<Redelivery, StoreError> {
        queue::redeliver(&self.pool, auth_id, event_id, now).await
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

fn auth_id_from_db(text: &str) -> Result<AuthId, StoreError> {
    AuthId::parse(text).ok_or_else(|| corrupt("auth_id", text))
}

fn account_from_row(row: &SqliteRow) -> Result<Account, StoreError> {
    let parent: Option<String> = row.try_get("parent_auth_id")?;
    Ok(Account {
        auth_id: auth_id_from_db(row.try_get("auth_id")?)?,
        name: row.try_get("name")?,
        timezone: timezone_from_db(row.try_get("timezone")?)?,
        default_callback_url: url_from_db(row.try_get("default_callback_url")?)?,
        default_callback_method: method_from_db(row.try_get("default_callback_method")?)?,
        default_callback_events: filter_from_db(row.try_get("default_callback_events")?)?,
        parent_auth_id: parent.as_deref().map(auth_id_from_db).transpose()?,
        created_at: time_from_db(row.try_get("created_at")?)?,
        updated_at: time_from_db(row.try_get("updated_at")?)?,
    })
}

fn application_from_row(row: &SqliteRow) -> Result<Application, StoreError> {
    let app_id: String = row.try_get("app_id")?;
    Ok(Application {
        app_id: AppId::parse(&app_id).ok_or_else(|| corrupt("app_id", &app_id))?,
        auth_id: auth_id_from_db(row.try_get("auth_id")?)?,
        name: row.try_get("name")?,
        callback_url: url_from_db(row.try_get("callback_url")?)?,
        callback_method: method_from_db(row.try_get("callback_method")?)?,
        fallback_callback_url: url_from_db(row.try_get("fallback_callback_url")?)?,
        callback_events: filter_from_db(row.try_get("callback_events")?)?,
        answer_url: url_from_db(row.try_get("answer_url")?)?,
        answer_method: method_from_db(row.try_get("answer_method")?)?,
        hangup_url: url_from_db(row.try_get("hangup_url")?)?,
        hangup_method: method_from_db(row.try_get("hangup_method")?)?,
        created_at: time_from_db(row.try_get("created_at")?)?,
        updated_at: time_from_db(row.try_get("updated_at")?)?,
    })
}

fn trunk_from_row(row: &SqliteRow) -> Result<Trunk, StoreError> {
    let trunk_id: String = row.try_get("trunk_id")?;
    Ok(Trunk {
        trunk_id: TrunkId::parse(&trunk_id).ok_or_else(|| corrupt("trunk_id", &trunk_id))?,
        auth_id: auth_id_from_db(row.try_get("auth_id")?)?,
        name: row.try_get("name")?,
        status_callback: url_from_db(row.try_get("status_callback")?)?,
        status_callback_method: method_from_db(row.try_get("status_callback_method")?)?,
        status_callback_events: filter_from_db(row.try_get("status_callback_events")?)?,
        trunk_direction: direction_from_db(row.try_get("trunk_direction")?)?,
        trunk_status: status_from_db(row.try_get("trunk_status")?)?,
        termination_uri: sip_uri_from_db(row.try_get("termination_uri")?)?,
        recording: row.try_get("recording")?,
        engine: engine_from_db(row.try_get("engine")?)?,
        created_at: time_from_db(row.try_get("created_at")?)?,
        updated_at: time_from_db(row.try_get("updated_at")?)?,
    })
}

async fn fetch_idempotent(
    conn: &mut sqlx::SqliteConnection,
    auth_id: &AuthId,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Option<IdempotentAnswer>, StoreError> {
    let row = sqlx::query(
        "SELECT request_hash, status, body FROM idempotency_keys WHERE auth_id = ? AND key = ? AND created_at > ?",
    )
    .bind(auth_id.as_str())
    .bind(key)
    .bind(time_to_db(now) - IDEMPOTENCY_WINDOW_MICROS)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let hash: Vec<u8> = row.try_get("request_hash")?;
    let status: i64 = row.try_get("status")?;
    Ok(Some(IdempotentAnswer {
        request_hash: <[u8; 32]>::try_from(hash.as_slice()).map_err(|_| corrupt("request_hash", key))?,
        status: u16::try_from(status).map_err(|_| corrupt("status", &status.to_string()))?,
        body: row.try_get("body")?,
    }))
}

fn call_filter_query<'q>(sql: &'q str, auth_id: &'q AuthId, filter: &'q CallFilter) -> SqliteQuery<'q> {
    sqlx::query(sql)
        .bind(auth_id.as_str())
        .bind(filter.status.map(|s| s.as_str()))
        .bind(filter.direction.map(|d| d.as_str()))
        .bind(filter.from.as_deref())
        .bind(filter.to.as_deref())
        .bind(filter.since.map(time_to_db))
        .bind(filter.until.map(time_to_db))
}

fn callback_filter_query<'q>(
    sql: &'q str,
    auth_id: &'q AuthId,
    filter: &'q CallbackFilter,
) -> SqliteQuery<'q> {
    sqlx::query(sql)
        .bind(auth_id.as_str())
        .bind(filter.status.map(|s| s.as_str()))
        .bind(filter.since.map(time_to_db))
}

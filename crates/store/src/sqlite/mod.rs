//! The SQLite backend: the embedded default (`sqlite://./hookline-data/hookline.db`).
//!
//! WAL mode lets readers run beside the single writer; `synchronous=NORMAL` keeps every
//! committed transaction across a process crash (`kill -9`), which is the durability promise
//! of PRODUCT.md §4.3 (only a power loss could drop the last commits). All writes go through
//! one writer thread with group commit (see [`db`]).

use std::path::PathBuf;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    Account, AppId, Application, AuthId, Call, CallUuid, EventId, Report, SecretId, Trunk, TrunkId,
};
use rand::RngCore;
use rusqlite::params;

use crate::codec::*;
use crate::sql::{found, offset_to_db, unique_is_conflict};
use crate::vault::{new_auth_token, token_hash, token_matches, Vault};
use crate::{
    Authentication, CallCreation, CallFilter, CallbackFilter, ClaimedDelivery, CreatedAccount,
    DeliveryRecord, FinishedAttempt, IdempotentAnswer, Listing, NewSecret, Page, RecordedEvent, Redelivery,
    SecretDeletion, SecretInfo, SigningKeys, Store, StoreError,
};

mod calls;
mod db;
mod queue;
mod secrets;

use crate::rows::{account_from_row, application_from_row, trunk_from_row};
use db::{all, execute, first, Db};

/// How many times a generated id is redrawn after a (vanishingly rare) collision.
const ID_ATTEMPTS: usize = 3;

/// A [`Store`] on one SQLite database file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    db: Db,
    vault: Vault,
}

impl SqliteStore {
    /// The file of a `sqlite://PATH` URL.
    ///
    /// # Errors
    /// `Io` when the URL is not a SQLite URL.
    pub fn database_path(url: &str) -> Result<PathBuf, StoreError> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| StoreError::Io(format!("{url:?} is not a sqlite:// URL")))?;
        Ok(PathBuf::from(path.split('?').next().unwrap_or(path)))
    }

    /// Opens (creating if missing, with its directory) the database at a `sqlite://PATH` URL.
    /// The URL may end in `?busy_timeout_ms=N`: how long a statement waits for a lock another
    /// process holds (default 10 s).
    ///
    /// # Errors
    /// `Io` when the URL is not a SQLite URL or its query is not understood; `Backend` or
    /// `Refused` when the file cannot be opened.
    pub async fn open(url: &str, vault: Vault) -> Result<SqliteStore, StoreError> {
        let path = Self::database_path(url)?;
        let busy_timeout = busy_timeout(url)?;
        let db = tokio::task::spawn_blocking(move || Db::open(&path, busy_timeout))
            .await
            .map_err(|_| StoreError::Io("opening the database panicked".to_owned()))??;
        Ok(SqliteStore { db, vault })
    }

    /// Applies pending migrations.
    ///
    /// # Errors
    /// `Migrate` when a migration fails or the database is newer than this binary.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.db.migrate().await
    }
}

/// The `busy_timeout_ms` of a SQLite URL's query, the only parameter it takes.
fn busy_timeout(url: &str) -> Result<std::time::Duration, StoreError> {
    let Some((_, query)) = url.split_once('?') else {
        return Ok(db::BUSY_TIMEOUT);
    };
    let mut timeout = db::BUSY_TIMEOUT;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("busy_timeout_ms", ms)) => {
                let ms: u64 = ms.parse().map_err(|_| {
                    StoreError::Io(format!(
                        "busy_timeout_ms={ms:?} in the database URL is not a number of ms"
                    ))
                })?;
                timeout = std::time::Duration::from_millis(ms);
            }
            _ => {
                return Err(StoreError::Io(format!(
                    "{pair:?} in the database URL: a sqlite:// URL takes only busy_timeout_ms"
                )))
            }
        }
    }
    Ok(timeout)
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        // Through the writer: a store whose writer stopped cannot accept events, so is not ready.
        self.db
            .write(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    async fn create_account(
        &self,
        name: &str,
        parent: Option<&AuthId>,
        now: DateTime<Utc>,
    ) -> Result<CreatedAccount, StoreError> {
        let (name, parent, vault) = (name.to_owned(), parent.cloned(), self.vault.clone());
        self.db
            .write(move |c| {
                let auth_token = new_auth_token();
                for attempt in 1..=ID_ATTEMPTS {
                    let mut random = [0u8; 8];
                    rand::rngs::OsRng.fill_bytes(&mut random);
                    let account = Account::new(
                        AuthId::generate(parent.is_some(), random),
                        name.clone(),
                        parent.clone(),
                        now,
                    );
                    let inserted = execute(
                        c,
                        "INSERT INTO accounts (auth_id, name, timezone, default_callback_url, default_callback_method, \
                         default_callback_events, parent_auth_id, token_hash, token_sealed, created_at, updated_at) \
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        params![
                            account.auth_id.as_str(),
                            account.name,
                            account.timezone.name(),
                            url_to_db(&account.default_callback_url),
                            account.default_callback_method.as_str(),
                            filter_to_db(&account.default_callback_events),
                            parent.as_ref().map(AuthId::as_str),
                            token_hash(&auth_token).as_slice(),
                            vault.seal(account.auth_id.as_str(), auth_token.as_bytes()),
                            time_to_db(now),
                            time_to_db(now),
                        ],
                    );
                    match inserted {
                        Err(e) if e.is_unique_violation() && attempt < ID_ATTEMPTS => continue,
                        Err(e) if e.is_foreign_key_violation() => return Err(StoreError::NotFound),
                        other => other?,
                    };
                    let signing_secret = secrets::insert_secret(&vault, c, &account.auth_id, now)?;
                    return Ok(CreatedAccount {
                        account,
                        auth_token,
                        signing_secret,
                    });
                }
                Err(StoreError::Conflict("could not draw a free auth id"))
            })
            .await
    }

    async fn account(&self, auth_id: &AuthId) -> Result<Option<Account>, StoreError> {
        let auth_id = auth_id.clone();
        self.db
            .read(move |c| {
                first(
                    c,
                    concat!("SELECT ", account_columns!(), " FROM accounts WHERE auth_id = ?"),
                    [auth_id.as_str()],
                    |row| account_from_row(row),
                )
            })
            .await
    }

    async fn count_accounts(&self) -> Result<u64, StoreError> {
        self.db
            .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM accounts", [], |row| row.get(0))?))
            .await
    }

    async fn authenticate(&self, auth_id: &AuthId, token: &str) -> Result<Authentication, StoreError> {
        let (auth_id, token) = (auth_id.clone(), token.to_owned());
        self.db
            .read(move |c| {
                let found = first(
                    c,
                    concat!(
                        "SELECT ",
                        account_columns!(),
                        ", token_hash FROM accounts WHERE auth_id = ?"
                    ),
                    [auth_id.as_str()],
                    |row| {
                        let stored: Vec<u8> = row.get("token_hash")?;
                        Ok(if token_matches(&token, &stored) {
                            Authentication::Authenticated(Box::new(account_from_row(row)?))
                        } else {
                            Authentication::WrongToken
                        })
                    },
                )?;
                Ok(found.unwrap_or(Authentication::UnknownAccount))
            })
            .await
    }

    async fn update_account(&self, account: &Account) -> Result<(), StoreError> {
        let account = account.clone();
        self.db
            .write(move |c| {
                found(execute(
                    c,
                    "UPDATE accounts SET name = ?, timezone = ?, default_callback_url = ?, default_callback_method = ?, \
                     default_callback_events = ?, updated_at = ? WHERE auth_id = ?",
                    params![
                        account.name,
                        account.timezone.name(),
                        url_to_db(&account.default_callback_url),
                        account.default_callback_method.as_str(),
                        filter_to_db(&account.default_callback_events),
                        time_to_db(account.updated_at),
                        account.auth_id.as_str(),
                    ],
                )?)
            })
            .await
    }

    async fn rotate_token(&self, auth_id: &AuthId, now: DateTime<Utc>) -> Result<String, StoreError> {
        let (auth_id, vault) = (auth_id.clone(), self.vault.clone());
        self.db
            .write(move |c| {
                let token = new_auth_token();
                found(execute(
                    c,
                    "UPDATE accounts SET token_hash = ?, token_sealed = ?, updated_at = ? WHERE auth_id = ?",
                    params![
                        token_hash(&token).as_slice(),
                        vault.seal(auth_id.as_str(), token.as_bytes()),
                        time_to_db(now),
                        auth_id.as_str(),
                    ],
                )?)?;
                secrets::keys_changed(c, &auth_id)?;
                Ok(token)
            })
            .await
    }

    async fn insert_application(&self, app: &Application) -> Result<(), StoreError> {
        let app = app.clone();
        self.db
            .write(move |c| {
                execute(
                    c,
                    concat!(
                        "INSERT INTO applications (",
                        application_columns!(),
                        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    ),
                    params![
                        app.app_id.as_str(),
                        app.auth_id.as_str(),
                        app.name,
                        url_to_db(&app.callback_url),
                        app.callback_method.as_str(),
                        url_to_db(&app.fallback_callback_url),
                        filter_to_db(&app.callback_events),
                        url_to_db(&app.answer_url),
                        app.answer_method.as_str(),
                        url_to_db(&app.hangup_url),
                        app.hangup_method.as_str(),
                        time_to_db(app.created_at),
                        time_to_db(app.updated_at),
                    ],
                )
                .map_err(unique_is_conflict)?;
                Ok(())
            })
            .await
    }

    async fn application(&self, auth_id: &AuthId, app_id: &AppId) -> Result<Option<Application>, StoreError> {
        let (auth_id, app_id) = (auth_id.clone(), app_id.clone());
        self.db
            .read(move |c| {
                first(
                    c,
                    concat!(
                        "SELECT ",
                        application_columns!(),
                        " FROM applications WHERE auth_id = ? AND app_id = ?"
                    ),
                    [auth_id.as_str(), app_id.as_str()],
                    |row| application_from_row(row),
                )
            })
            .await
    }

    async fn list_applications(
        &self,
        auth_id: &AuthId,
        page: Page,
    ) -> Result<Listing<Application>, StoreError> {
        let auth_id = auth_id.clone();
        self.db
            .read(move |c| {
                let items = all(
                    c,
                    concat!(
                        "SELECT ",
                        application_columns!(),
                        " FROM applications WHERE auth_id = ? ORDER BY created_at, app_id LIMIT ? OFFSET ?"
                    ),
                    params![auth_id.as_str(), page.limit, offset_to_db(page.offset)],
                    |row| application_from_row(row),
                )?;
                let total = count(c, "SELECT COUNT(*) FROM applications WHERE auth_id = ?", &auth_id)?;
                Ok(Listing { items, total })
            })
            .await
    }

    async fn update_application(&self, app: &Application) -> Result<(), StoreError> {
        let app = app.clone();
        self.db
            .write(move |c| {
                found(execute(
                    c,
                    "UPDATE applications SET name = ?, callback_url = ?, callback_method = ?, fallback_callback_url = ?, \
                     callback_events = ?, answer_url = ?, answer_method = ?, hangup_url = ?, hangup_method = ?, \
                     updated_at = ? WHERE auth_id = ? AND app_id = ?",
                    params![
                        app.name,
                        url_to_db(&app.callback_url),
                        app.callback_method.as_str(),
                        url_to_db(&app.fallback_callback_url),
                        filter_to_db(&app.callback_events),
                        url_to_db(&app.answer_url),
                        app.answer_method.as_str(),
                        url_to_db(&app.hangup_url),
                        app.hangup_method.as_str(),
                        time_to_db(app.updated_at),
                        app.auth_id.as_str(),
                        app.app_id.as_str(),
                    ],
                )?)
            })
            .await
    }

    async fn delete_application(&self, auth_id: &AuthId, app_id: &AppId) -> Result<(), StoreError> {
        let (auth_id, app_id) = (auth_id.clone(), app_id.clone());
        self.db
            .write(move |c| {
                found(execute(
                    c,
                    "DELETE FROM applications WHERE auth_id = ? AND app_id = ?",
                    [auth_id.as_str(), app_id.as_str()],
                )?)
            })
            .await
    }

    async fn insert_trunk(&self, trunk: &Trunk) -> Result<(), StoreError> {
        let trunk = trunk.clone();
        self.db
            .write(move |c| {
                execute(
                    c,
                    concat!(
                        "INSERT INTO trunks (",
                        trunk_columns!(),
                        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    ),
                    params![
                        trunk.trunk_id.to_string(),
                        trunk.auth_id.as_str(),
                        trunk.name,
                        url_to_db(&trunk.status_callback),
                        trunk.status_callback_method.as_str(),
                        filter_to_db(&trunk.status_callback_events),
                        trunk.trunk_direction.as_str(),
                        trunk.trunk_status.as_str(),
                        trunk.termination_uri.as_ref().map(|uri| uri.as_str()),
                        trunk.recording,
                        trunk.engine.as_str(),
                        time_to_db(trunk.created_at),
                        time_to_db(trunk.updated_at),
                    ],
                )
                .map_err(unique_is_conflict)?;
                Ok(())
            })
            .await
    }

    async fn trunk(&self, auth_id: &AuthId, trunk_id: &TrunkId) -> Result<Option<Trunk>, StoreError> {
        let (auth_id, trunk_id) = (auth_id.clone(), trunk_id.to_string());
        self.db
            .read(move |c| {
                first(
                    c,
                    concat!(
                        "SELECT ",
                        trunk_columns!(),
                        " FROM trunks WHERE auth_id = ? AND trunk_id = ?"
                    ),
                    [auth_id.as_str(), trunk_id.as_str()],
                    |row| trunk_from_row(row),
                )
            })
            .await
    }

    async fn list_trunks(&self, auth_id: &AuthId, page: Page) -> Result<Listing<Trunk>, StoreError> {
        let auth_id = auth_id.clone();
        self.db
            .read(move |c| {
                let items = all(
                    c,
                    concat!(
                        "SELECT ",
                        trunk_columns!(),
                        " FROM trunks WHERE auth_id = ? ORDER BY created_at, trunk_id LIMIT ? OFFSET ?"
                    ),
                    params![auth_id.as_str(), page.limit, offset_to_db(page.offset)],
                    |row| trunk_from_row(row),
                )?;
                let total = count(c, "SELECT COUNT(*) FROM trunks WHERE auth_id = ?", &auth_id)?;
                Ok(Listing { items, total })
            })
            .await
    }

    async fn update_trunk(&self, trunk: &Trunk) -> Result<(), StoreError> {
        let trunk = trunk.clone();
        self.db
            .write(move |c| {
                found(execute(
                    c,
                    "UPDATE trunks SET name = ?, status_callback = ?, status_callback_method = ?, status_callback_events = ?, \
                     trunk_direction = ?, trunk_status = ?, termination_uri = ?, recording = ?, engine = ?, updated_at = ? \
                     WHERE auth_id = ? AND trunk_id = ?",
                    params![
                        trunk.name,
                        url_to_db(&trunk.status_callback),
                        trunk.status_callback_method.as_str(),
                        filter_to_db(&trunk.status_callback_events),
                        trunk.trunk_direction.as_str(),
                        trunk.trunk_status.as_str(),
                        trunk.termination_uri.as_ref().map(|uri| uri.as_str()),
                        trunk.recording,
                        trunk.engine.as_str(),
                        time_to_db(trunk.updated_at),
                        trunk.auth_id.as_str(),
                        trunk.trunk_id.to_string(),
                    ],
                )?)
            })
            .await
    }

    async fn delete_trunk(&self, auth_id: &AuthId, trunk_id: &TrunkId) -> Result<(), StoreError> {
        let (auth_id, trunk_id) = (auth_id.clone(), trunk_id.to_string());
        self.db
            .write(move |c| {
                found(execute(
                    c,
                    "DELETE FROM trunks WHERE auth_id = ? AND trunk_id = ?",
                    [auth_id.as_str(), trunk_id.as_str()],
                )?)
            })
            .await
    }

    async fn create_signing_secret(
        &self,
        auth_id: &AuthId,
        now: DateTime<Utc>,
    ) -> Result<NewSecret, StoreError> {
        let (auth_id, vault) = (auth_id.clone(), self.vault.clone());
        self.db
            .write(move |c| {
                secrets::insert_secret(&vault, c, &auth_id, now).map_err(|e| {
                    if e.is_foreign_key_violation() {
                        StoreError::NotFound
                    } else {
                        e
                    }
                })
            })
            .await
    }

    async fn list_signing_secrets(&self, auth_id: &AuthId) -> Result<Vec<SecretInfo>, StoreError> {
        let auth_id = auth_id.clone();
        self.db
            .read(move |c| secrets::list_signing_secrets(c, &auth_id))
            .await
    }

    async fn delete_signing_secret(
        &self,
        auth_id: &AuthId,
        secret_id: &SecretId,
    ) -> Result<SecretDeletion, StoreError> {
        let (auth_id, secret_id) = (auth_id.clone(), *secret_id);
        self.db
            .write(move |c| secrets::delete_signing_secret(c, &auth_id, &secret_id))
            .await
    }

    async fn create_call(
        &self,
        call: &Call,
        idempotency: Option<(&str, IdempotentAnswer)>,
        now: DateTime<Utc>,
    ) -> Result<CallCreation, StoreError> {
        let call = call.clone();
        let idempotency = idempotency.map(|(key, answer)| (key.to_owned(), answer));
        self.db
            .write(move |c| calls::create_call(c, call, idempotency, now))
            .await
    }

    async fn idempotent_answer(
        &self,
        auth_id: &AuthId,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotentAnswer>, StoreError> {
        let (auth_id, key) = (auth_id.clone(), key.to_owned());
        self.db
            .read(move |c| calls::fetch_idempotent(c, &auth_id, &key, now))
            .await
    }

    async fn call(&self, auth_id: Option<&AuthId>, call_uuid: &CallUuid) -> Result<Option<Call>, StoreError> {
        let (auth_id, call_uuid) = (auth_id.cloned(), *call_uuid);
        self.db
            .read(move |c| calls::load_call(c, auth_id.as_ref(), &call_uuid))
            .await
    }

    async fn list_calls(
        &self,
        auth_id: &AuthId,
        filter: &CallFilter,
        page: Page,
    ) -> Result<Listing<Call>, StoreError> {
        let (auth_id, filter) = (auth_id.clone(), filter.clone());
        self.db
            .read(move |c| calls::list_calls(c, &auth_id, &filter, page))
            .await
    }

    async fn apply_report(
        &self,
        auth_id: Option<&AuthId>,
        call_uuid: &CallUuid,
        report: Report,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<RecordedEvent, StoreError> {
        let (auth_id, call_uuid) = (auth_id.cloned(), *call_uuid);
        self.db
            .write(move |c| calls::apply_report(c, auth_id.as_ref(), &call_uuid, report, at, now))
            .await
    }

    async fn unfinished_simulated_calls(&self) -> Result<Vec<Call>, StoreError> {
        self.db.read(calls::unfinished_simulated_calls).await
    }

    async fn call_deliveries(
        &self,
        auth_id: &AuthId,
        call_uuid: &CallUuid,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let (auth_id, call_uuid) = (auth_id.clone(), call_uuid.to_string());
        self.db
            .read(move |c| {
                queue::deliveries(
                    c,
                    "WHERE auth_id = ? AND call_uuid = ? ORDER BY sequence, delivery_id",
                    [auth_id.as_str(), call_uuid.as_str()],
                )
            })
            .await
    }

    async fn list_deliveries(
        &self,
        auth_id: &AuthId,
        filter: &CallbackFilter,
        page: Page,
    ) -> Result<Listing<DeliveryRecord>, StoreError> {
        let (auth_id, filter) = (auth_id.clone(), filter.clone());
        self.db
            .read(move |c| calls::list_deliveries(c, &auth_id, &filter, page))
            .await
    }

    async fn claim_due(
        &self,
        limit: u32,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        self.db
            .write(move |c| queue::claim_due(c, limit, now, lease_until))
            .await
    }

    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.db.read(queue::next_due_at).await
    }

    async fn record_attempts(
        &self,
        finished: &[FinishedAttempt],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let finished = finished.to_vec();
        self.db
            .write(move |c| queue::record_attempts(c, &finished, now))
            .await
    }

    async fn release(
        &self,
        delivery_ids: &[i64],
        lease_until: DateTime<Utc>,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if delivery_ids.is_empty() {
            return Ok(());
        }
        let ids = delivery_ids.to_vec();
        self.db
            .write(move |c| queue::release(c, &ids, lease_until, next_attempt_at))
            .await
    }

    async fn release_all_leases(&self) -> Result<u64, StoreError> {
        self.db
            .write(|c| {
                let n = execute(
                    c,
                    "UPDATE deliveries SET leased_until = NULL WHERE leased_until IS NOT NULL",
                    [],
                )?;
                Ok(u64::try_from(n).unwrap_or(u64::MAX))
            })
            .await
    }

    async fn release_claims(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<u64, StoreError> {
        self.db
            .write(move |c| {
                let n = execute(
                    c,
                    "UPDATE deliveries SET leased_until = NULL \
                     WHERE status = 'pending' AND leased_until BETWEEN ? AND ?",
                    [time_to_db(from), time_to_db(to)],
                )?;
                Ok(u64::try_from(n).unwrap_or(u64::MAX))
            })
            .await
    }

    async fn signing_keys(&self, auth_id: &AuthId) -> Result<SigningKeys, StoreError> {
        let (auth_id, vault) = (auth_id.clone(), self.vault.clone());
        self.db
            .read(move |c| secrets::signing_keys(c, &vault, &auth_id))
            .await
    }

    async fn redeliver(
        &self,
        auth_id: &AuthId,
        event_id: &EventId,
        now: DateTime<Utc>,
    ) -> Result<Redelivery, StoreError> {
        let (auth_id, event_id) = (auth_id.clone(), *event_id);
        self.db
            .write(move |c| queue::redeliver(c, &auth_id, &event_id, now))
            .await
    }

    async fn event_deliveries(
        &self,
        auth_id: &AuthId,
        event_id: &EventId,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let (auth_id, event_id) = (auth_id.clone(), event_id.to_string());
        self.db
            .read(move |c| {
                queue::deliveries(
                    c,
                    "WHERE auth_id = ? AND event_id = ? ORDER BY sequence, delivery_id",
                    [auth_id.as_str(), event_id.as_str()],
                )
            })
            .await
    }

    async fn queue_depth(&self) -> Result<(u64, Option<DateTime<Utc>>), StoreError> {
        self.db
            .read(|c| {
                let (n, oldest): (i64, Option<i64>) = c.query_row(
                    "SELECT COUNT(*), MIN(created_at) FROM deliveries WHERE status = 'pending'",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )?;
                Ok((
                    u64::try_from(n).unwrap_or(0),
                    oldest.map(time_from_db).transpose()?,
                ))
            })
            .await
    }
}

fn count(conn: &rusqlite::Connection, sql: &str, auth_id: &AuthId) -> Result<u64, StoreError> {
    let total: i64 = conn
        .prepare_cached(sql)?
        .query_row([auth_id.as_str()], |row| row.get(0))?;
    Ok(u64::try_from(total).unwrap_or(0))
}

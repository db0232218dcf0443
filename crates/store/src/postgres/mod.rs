//! The PostgreSQL backend (`postgres://user@host:port/db`): several `serve` processes on one
//! database share the work, with no leader.
//!
//! Durability is PostgreSQL's own (`synchronous_commit` as the server is configured). Nodes
//! coordinate only through the database: a claim takes rows with `FOR UPDATE SKIP LOCKED`, so
//! two live nodes never hold one delivery; a lease that lapses (its node died) makes the
//! delivery claimable again; a result recorded under a lapsed lease does not move it on. The
//! row mappers and the ordering rule are shared with SQLite ([`crate::rows`], [`crate::sql`]);
//! what differs (placeholders, locking, the claim) is here.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    Account, AppId, Application, AuthId, Call, CallUuid, EventId, Report, SecretId, Trunk, TrunkId,
};
use rand::RngCore;

use crate::codec::*;
use crate::rows::{account_from_row, application_from_row, trunk_from_row};
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

use db::{all, execute, first, transaction, Db};

/// How many times a generated id is redrawn after a (vanishingly rare) collision.
const ID_ATTEMPTS: usize = 3;

/// A [`Store`] on a PostgreSQL database, shared with any number of other nodes.
#[derive(Debug, Clone)]
pub struct PgStore {
    db: Db,
    vault: Vault,
}

impl PgStore {
    /// Connects to the database at a `postgres://` URL (and checks that it answers).
    ///
    /// # Errors
    /// `Io` when the URL does not parse or the server cannot be reached.
    pub async fn open(url: &str, vault: Vault) -> Result<PgStore, StoreError> {
        Ok(PgStore {
            db: Db::connect(url).await?,
            vault,
        })
    }

    /// Applies pending migrations, starts this node's heartbeat (see `db::spawn_heartbeat`),
    /// then checks that this node's server key is the database's (all nodes must share
    /// `secret_key`): the first node seals a check value, every later one must open it.
    ///
    /// # Errors
    /// `Migrate` when a migration fails, the database is newer than this binary, or the key
    /// cannot open existing rows.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.db.migrate().await?;
        self.db.spawn_heartbeat().await;
        const CONTEXT: &str = "hookline key check";
        let sealed = transaction!(self.db, |tx| {
            // Under the lock nodes migrate with, so the first node's check is the only one.
            tx.batch_execute("SELECT pg_advisory_xact_lock(7262537700931)")
                .await?;
            let stored = first(
                &tx,
                "SELECT sealed FROM hookline_key_check WHERE id = 1",
                &[],
                |row| Ok(row.try_get::<_, Vec<u8>>(0)?),
            )
            .await?;
            if stored.is_none() {
                let sealed = self.vault.seal(CONTEXT, b"hookline");
                execute(
                    &tx,
                    "INSERT INTO hookline_key_check (id, sealed) VALUES (1, $1)",
                    &[&sealed],
                )
                .await?;
            }
            Ok::<_, StoreError>(stored)
        })?;
        if sealed.is_some_and(|sealed| self.vault.open(CONTEXT, &sealed).is_err()) {
            return Err(StoreError::Migrate(
                "this node's secret_key cannot open the keys stored in the database: every node \
                 on one database must use the same secret_key"
                    .to_owned(),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.db.client().await?.simple_query("SELECT 1").await?;
        Ok(())
    }

    fn listen_for_work(&self, wake: Arc<dyn Fn() + Send + Sync>) {
        self.db.listen(wake);
    }

    fn may_send(&self, claimed_at: DateTime<Utc>, budget: std::time::Duration) -> bool {
        self.db.may_send(claimed_at, budget)
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
            let created = transaction!(self.db, |tx| {
                execute(
                    &tx,
                    "INSERT INTO accounts (auth_id, name, timezone, default_callback_url, default_callback_method, \
                     default_callback_events, parent_auth_id, token_hash, token_sealed, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    &[
                        &account.auth_id.as_str(),
                        &account.name,
                        &account.timezone.name(),
                        &url_to_db(&account.default_callback_url),
                        &account.default_callback_method.as_str(),
                        &filter_to_db(&account.default_callback_events),
                        &parent.map(AuthId::as_str),
                        &token_hash(&auth_token).as_slice(),
                        &self.vault.seal(account.auth_id.as_str(), auth_token.as_bytes()),
                        &time_to_db(now),
                        &time_to_db(now),
                    ],
                )
                .await?;
                secrets::insert_secret(&self.vault, &tx, &account.auth_id, now).await
            });
            match created {
                Err(e) if e.is_unique_violation() && attempt < ID_ATTEMPTS => continue,
                Err(e) if e.is_foreign_key_violation() => return Err(StoreError::NotFound),
                Err(e) => return Err(e),
                Ok(signing_secret) => {
                    return Ok(CreatedAccount {
                        account,
                        auth_token,
                        signing_secret,
                    })
                }
            }
        }
        Err(StoreError::Conflict("could not draw a free auth id"))
    }

    async fn account(&self, auth_id: &AuthId) -> Result<Option<Account>, StoreError> {
        first(
            &self.db.client().await?,
            concat!("SELECT ", account_columns!(), " FROM accounts WHERE auth_id = $1"),
            &[&auth_id.as_str()],
            account_from_row,
        )
        .await
    }

    async fn count_accounts(&self) -> Result<u64, StoreError> {
        let client = self.db.client().await?;
        count(&client, "SELECT COUNT(*) FROM accounts", &[]).await
    }

    async fn authenticate(&self, auth_id: &AuthId, token: &str) -> Result<Authentication, StoreError> {
        let found = first(
            &self.db.client().await?,
            concat!(
                "SELECT ",
                account_columns!(),
                ", token_hash FROM accounts WHERE auth_id = $1"
            ),
            &[&auth_id.as_str()],
            |row| {
                let stored: Vec<u8> = row.try_get("token_hash")?;
                Ok(if token_matches(token, &stored) {
                    Authentication::Authenticated(Box::new(account_from_row(row)?))
                } else {
                    Authentication::WrongToken
                })
            },
        )
        .await?;
        Ok(found.unwrap_or(Authentication::UnknownAccount))
    }

    async fn update_account(&self, account: &Account) -> Result<(), StoreError> {
        let client = self.db.client().await?;
        found(
            execute(
                &client,
                "UPDATE accounts SET name = $1, timezone = $2, default_callback_url = $3, default_callback_method = $4, \
                 default_callback_events = $5, updated_at = $6 WHERE auth_id = $7",
                &[
                    &account.name,
                    &account.timezone.name(),
                    &url_to_db(&account.default_callback_url),
                    &account.default_callback_method.as_str(),
                    &filter_to_db(&account.default_callback_events),
                    &time_to_db(account.updated_at),
                    &account.auth_id.as_str(),
                ],
            )
            .await?,
        )
    }

    async fn rotate_token(&self, auth_id: &AuthId, now: DateTime<Utc>) -> Result<String, StoreError> {
        let token = new_auth_token();
        let client = self.db.client().await?;
        // One statement: the new token and the new key version commit together.
        found(
            execute(
                &client,
                "UPDATE accounts SET token_hash = $1, token_sealed = $2, updated_at = $3, \
                 keys_version = keys_version + 1 WHERE auth_id = $4",
                &[
                    &token_hash(&token).as_slice(),
                    &self.vault.seal(auth_id.as_str(), token.as_bytes()),
                    &time_to_db(now),
                    &auth_id.as_str(),
                ],
            )
            .await?,
        )?;
        Ok(token)
    }

    async fn insert_application(&self, app: &Application) -> Result<(), StoreError> {
        let client = self.db.client().await?;
        execute(
            &client,
            concat!(
                "INSERT INTO applications (",
                application_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
            ),
            &[
                &app.app_id.as_str(),
                &app.auth_id.as_str(),
                &app.name,
                &url_to_db(&app.callback_url),
                &app.callback_method.as_str(),
                &url_to_db(&app.fallback_callback_url),
                &filter_to_db(&app.callback_events),
                &url_to_db(&app.answer_url),
                &app.answer_method.as_str(),
                &url_to_db(&app.hangup_url),
                &app.hangup_method.as_str(),
                &time_to_db(app.created_at),
                &time_to_db(app.updated_at),
            ],
        )
        .await
        .map_err(unique_is_conflict)?;
        Ok(())
    }

    async fn application(&self, auth_id: &AuthId, app_id: &AppId) -> Result<Option<Application>, StoreError> {
        first(
            &self.db.client().await?,
            concat!(
                "SELECT ",
                application_columns!(),
                " FROM applications WHERE auth_id = $1 AND app_id = $2"
            ),
            &[&auth_id.as_str(), &app_id.as_str()],
            application_from_row,
        )
        .await
    }

    async fn list_applications(
        &self,
        auth_id: &AuthId,
        page: Page,
    ) -> Result<Listing<Application>, StoreError> {
        let client = self.db.client().await?;
        let items = all(
            &client,
            concat!(
                "SELECT ",
                application_columns!(),
                " FROM applications WHERE auth_id = $1 ORDER BY created_at, app_id LIMIT $2 OFFSET $3"
            ),
            &[
                &auth_id.as_str(),
                &i64::from(page.limit),
                &offset_to_db(page.offset),
            ],
            application_from_row,
        )
        .await?;
        let total = count(
            &client,
            "SELECT COUNT(*) FROM applications WHERE auth_id = $1",
            &[&auth_id.as_str()],
        )
        .await?;
        Ok(Listing { items, total })
    }

    async fn update_application(&self, app: &Application) -> Result<(), StoreError> {
        let client = self.db.client().await?;
        found(
            execute(
                &client,
                "UPDATE applications SET name = $1, callback_url = $2, callback_method = $3, fallback_callback_url = $4, \
                 callback_events = $5, answer_url = $6, answer_method = $7, hangup_url = $8, hangup_method = $9, \
                 updated_at = $10 WHERE auth_id = $11 AND app_id = $12",
                &[
                    &app.name,
                    &url_to_db(&app.callback_url),
                    &app.callback_method.as_str(),
                    &url_to_db(&app.fallback_callback_url),
                    &filter_to_db(&app.callback_events),
                    &url_to_db(&app.answer_url),
                    &app.answer_method.as_str(),
                    &url_to_db(&app.hangup_url),
                    &app.hangup_method.as_str(),
                    &time_to_db(app.updated_at),
                    &app.auth_id.as_str(),
                    &app.app_id.as_str(),
                ],
            )
            .await?,
        )
    }

    async fn delete_application(&self, auth_id: &AuthId, app_id: &AppId) -> Result<(), StoreError> {
        let client = self.db.client().await?;
        found(
            execute(
                &client,
                "DELETE FROM applications WHERE auth_id = $1 AND app_id = $2",
                &[&auth_id.as_str(), &app_id.as_str()],
            )
            .await?,
        )
    }

    async fn insert_trunk(&self, trunk: &Trunk) -> Result<(), StoreError> {
        let client = self.db.client().await?;
        execute(
            &client,
            concat!(
                "INSERT INTO trunks (",
                trunk_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
            ),
            &[
                &trunk.trunk_id.to_string(),
                &trunk.auth_id.as_str(),
                &trunk.name,
                &url_to_db(&trunk.status_callback),
                &trunk.status_callback_method.as_str(),
                &filter_to_db(&trunk.status_callback_events),
                &trunk.trunk_direction.as_str(),
                &trunk.trunk_status.as_str(),
                &trunk.termination_uri.as_ref().map(|uri| uri.as_str()),
                &trunk.recording,
                &trunk.engine.as_str(),
                &time_to_db(trunk.created_at),
                &time_to_db(trunk.updated_at),
            ],
        )
        .await
        .map_err(unique_is_conflict)?;
        Ok(())
    }

    async fn trunk(&self, auth_id: &AuthId, trunk_id: &TrunkId) -> Result<Option<Trunk>, StoreError> {
        first(
            &self.db.client().await?,
            concat!(
                "SELECT ",
                trunk_columns!(),
                " FROM trunks WHERE auth_id = $1 AND trunk_id = $2"
            ),
            &[&auth_id.as_str(), &trunk_id.to_string()],
            trunk_from_row,
        )
        .await
    }

    async fn list_trunks(&self, auth_id: &AuthId, page: Page) -> Result<Listing<Trunk>, StoreError> {
        let client = self.db.client().await?;
        let items = all(
            &client,
            concat!(
                "SELECT ",
                trunk_columns!(),
                " FROM trunks WHERE auth_id = $1 ORDER BY created_at, trunk_id LIMIT $2 OFFSET $3"
            ),
            &[
                &auth_id.as_str(),
                &i64::from(page.limit),
                &offset_to_db(page.offset),
            ],
            trunk_from_row,
        )
        .await?;
        let total = count(
            &client,
            "SELECT COUNT(*) FROM trunks WHERE auth_id = $1",
            &[&auth_id.as_str()],
        )
        .await?;
        Ok(Listing { items, total })
    }

    async fn update_trunk(&self, trunk: &Trunk) -> Result<(), StoreError> {
        let client = self.db.client().await?;
        found(
            execute(
                &client,
                "UPDATE trunks SET name = $1, status_callback = $2, status_callback_method = $3, status_callback_events = $4, \
                 trunk_direction = $5, trunk_status = $6, termination_uri = $7, recording = $8, engine = $9, updated_at = $10 \
                 WHERE auth_id = $11 AND trunk_id = $12",
                &[
                    &trunk.name,
                    &url_to_db(&trunk.status_callback),
                    &trunk.status_callback_method.as_str(),
                    &filter_to_db(&trunk.status_callback_events),
                    &trunk.trunk_direction.as_str(),
                    &trunk.trunk_status.as_str(),
                    &trunk.termination_uri.as_ref().map(|uri| uri.as_str()),
                    &trunk.recording,
                    &trunk.engine.as_str(),
                    &time_to_db(trunk.updated_at),
                    &trunk.auth_id.as_str(),
                    &trunk.trunk_id.to_string(),
                ],
            )
            .await?,
        )
    }

    async fn delete_trunk(&self, auth_id: &AuthId, trunk_id: &TrunkId) -> Result<(), StoreError> {
        let client = self.db.client().await?;
        found(
            execute(
                &client,
                "DELETE FROM trunks WHERE auth_id = $1 AND trunk_id = $2",
                &[&auth_id.as_str(), &trunk_id.to_string()],
            )
            .await?,
        )
    }

    async fn create_signing_secret(
        &self,
        auth_id: &AuthId,
        now: DateTime<Utc>,
    ) -> Result<NewSecret, StoreError> {
        transaction!(self.db, |tx| {
            secrets::insert_secret(&self.vault, &tx, auth_id, now).await
        })
        .map_err(|e| {
            if e.is_foreign_key_violation() {
                StoreError::NotFound
            } else {
                e
            }
        })
    }

    async fn list_signing_secrets(&self, auth_id: &AuthId) -> Result<Vec<SecretInfo>, StoreError> {
        secrets::list_signing_secrets(&self.db.client().await?, auth_id).await
    }

    async fn delete_signing_secret(
        &self,
        auth_id: &AuthId,
        secret_id: &SecretId,
    ) -> Result<SecretDeletion, StoreError> {
        transaction!(self.db, |tx| {
            secrets::delete_signing_secret(&tx, auth_id, secret_id).await
        })
    }

    async fn create_call(
        &self,
        call: &Call,
        idempotency: Option<(&str, IdempotentAnswer)>,
        now: DateTime<Utc>,
    ) -> Result<CallCreation, StoreError> {
        let created = transaction!(self.db, |tx| {
            calls::create_call(&tx, call, idempotency.as_ref(), now).await
        })?;
        self.db.announce();
        Ok(created)
    }

    async fn idempotent_answer(
        &self,
        auth_id: &AuthId,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotentAnswer>, StoreError> {
        calls::fetch_idempotent(&self.db.client().await?, auth_id, key, now).await
    }

    async fn call(&self, auth_id: Option<&AuthId>, call_uuid: &CallUuid) -> Result<Option<Call>, StoreError> {
        calls::load_call(&self.db.client().await?, auth_id, call_uuid, false).await
    }

    async fn list_calls(
        &self,
        auth_id: &AuthId,
        filter: &CallFilter,
        page: Page,
    ) -> Result<Listing<Call>, StoreError> {
        calls::list_calls(&self.db.client().await?, auth_id, filter, page).await
    }

    async fn apply_report(
        &self,
        auth_id: Option<&AuthId>,
        call_uuid: &CallUuid,
        report: Report,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<RecordedEvent, StoreError> {
        let recorded = transaction!(self.db, |tx| {
            calls::apply_report(&tx, auth_id, call_uuid, report.clone(), at, now).await
        })?;
        self.db.announce();
        Ok(recorded)
    }

    async fn unfinished_simulated_calls(&self) -> Result<Vec<Call>, StoreError> {
        calls::unfinished_simulated_calls(&self.db.client().await?).await
    }

    async fn call_deliveries(
        &self,
        auth_id: &AuthId,
        call_uuid: &CallUuid,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        queue::deliveries(
            &self.db.client().await?,
            "WHERE auth_id = $1 AND call_uuid = $2 ORDER BY sequence, delivery_id",
            &[&auth_id.as_str(), &call_uuid.to_string()],
        )
        .await
    }

    async fn list_deliveries(
        &self,
        auth_id: &AuthId,
        filter: &CallbackFilter,
        page: Page,
    ) -> Result<Listing<DeliveryRecord>, StoreError> {
        calls::list_deliveries(&self.db.client().await?, auth_id, filter, page).await
    }

    async fn claim_due(
        &self,
        limit: u32,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        // One statement, its own transaction: two round trips fewer than BEGIN … COMMIT.
        let client = self.db.client().await?;
        let (claimed, undecodable) =
            queue::claim_due(&client, self.db.node(), limit, now, lease_until).await?;
        drop(client);
        if !undecodable.is_empty() {
            transaction!(self.db, |tx| { queue::fail(&tx, &undecodable, now).await })?;
        }
        Ok(claimed)
    }

    async fn next_due_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        queue::next_due_at(&self.db.client().await?).await
    }

    async fn record_attempts(
        &self,
        finished: &[FinishedAttempt],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        transaction!(self.db, |tx| { queue::record_attempts(&tx, finished, now).await })
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
        let client = self.db.client().await?;
        execute(
            &client,
            // Only while this claim holds them: a delivery claimed since, by another node (this
            // one was judged dead, or its lease lapsed) or by this one, is not this claim's.
            "UPDATE deliveries SET leased_until = NULL, next_attempt_at = $1 \
             WHERE delivery_id = ANY($2) AND status = 'pending' AND leased_by = $3 AND leased_until = $4",
            &[
                &time_to_db(next_attempt_at),
                &delivery_ids,
                &self.db.node(),
                &time_to_db(lease_until),
            ],
        )
        .await
        .map(drop)
    }

    async fn release_all_leases(&self) -> Result<u64, StoreError> {
        // Other nodes may be alive and holding their leases: only expiry releases them here.
        Ok(0)
    }

    async fn release_claims(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<u64, StoreError> {
        let client = self.db.client().await?;
        execute(
            &client,
            "UPDATE deliveries SET leased_until = NULL \
             WHERE status = 'pending' AND leased_by = $1 AND leased_until BETWEEN $2 AND $3",
            &[&self.db.node(), &time_to_db(from), &time_to_db(to)],
        )
        .await
    }

    async fn signing_keys(&self, auth_id: &AuthId) -> Result<SigningKeys, StoreError> {
        secrets::signing_keys(&self.db.client().await?, &self.vault, auth_id).await
    }

    async fn redeliver(
        &self,
        auth_id: &AuthId,
        event_id: &EventId,
        now: DateTime<Utc>,
    ) -> Result<Redelivery, StoreError> {
        let redelivery = transaction!(self.db, |tx| {
            queue::redeliver(&tx, auth_id, event_id, now).await
        })?;
        self.db.announce();
        Ok(redelivery)
    }

    async fn event_deliveries(
        &self,
        auth_id: &AuthId,
        event_id: &EventId,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        queue::deliveries(
            &self.db.client().await?,
            "WHERE auth_id = $1 AND event_id = $2 ORDER BY sequence, delivery_id",
            &[&auth_id.as_str(), &event_id.to_string()],
        )
        .await
    }

    async fn queue_depth(&self) -> Result<(u64, Option<DateTime<Utc>>), StoreError> {
        let client = self.db.client().await?;
        let row = client
            .query_one(
                "SELECT COUNT(*), MIN(created_at) FROM deliveries WHERE status = 'pending'",
                &[],
            )
            .await?;
        let (n, oldest): (i64, Option<i64>) = (row.try_get(0)?, row.try_get(1)?);
        Ok((
            u64::try_from(n).unwrap_or(0),
            oldest.map(time_from_db).transpose()?,
        ))
    }
}

async fn count(
    client: &deadpool_postgres::Object,
    sql: &str,
    params: &db::Params<'_>,
) -> Result<u64, StoreError> {
    let total: i64 = first(client, sql, params, |row| Ok(row.try_get(0)?))
        .await?
        .unwrap_or(0);
    Ok(u64::try_from(total).unwrap_or(0))
}

//! Signing secrets and the unsealed signing keys of an account, on SQLite. Key material is
//! sealed with the server key before it is written and opened only to sign.

use chrono::{DateTime, Utc};
use domain::{AuthId, SecretId};
use rand::RngCore;
use sqlx::{Row, SqlitePool};

use super::random_u128;
use crate::codec::*;
use crate::vault::Vault;
use crate::{NewSecret, SecretDeletion, SecretInfo, SigningKeys, StoreError};

pub(super) async fn insert_secret(
    vault: &Vault,
    tx: &mut sqlx::SqliteConnection,
    auth_id: &AuthId,
    now: DateTime<Utc>,
) -> Result<NewSecret, StoreError> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret_id = SecretId::from_random(random_u128());
    let sealed = vault.seal(&secret_id.to_string(), &bytes);
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

fn open_token(vault: &Vault, auth_id: &str, sealed: Vec<u8>) -> Result<Vec<u8>, StoreError> {
    vault
        .open(auth_id, &sealed)
        .map_err(|_| corrupt("auth token of", auth_id))
}

pub(super) async fn create_signing_secret(
    pool: &SqlitePool,
    vault: &Vault,
    auth_id: &AuthId,
    now: DateTime<Utc>,
) -> Result<NewSecret, StoreError> {
    let mut tx = pool.begin().await?;
    let secret = insert_secret(vault, &mut tx, auth_id, now)
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

pub(super) async fn list_signing_secrets(
    pool: &SqlitePool,
    auth_id: &AuthId,
) -> Result<Vec<SecretInfo>, StoreError> {
    sqlx::query(
        "SELECT secret_id, created_at FROM signing_secrets WHERE auth_id = ? ORDER BY created_at, secret_id",
    )
    .bind(auth_id.as_str())
    .fetch_all(pool)
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

pub(super) async fn delete_signing_secret(
    pool: &SqlitePool,
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
    .execute(pool)
    .await?;
    if done.rows_affected() == 1 {
        return Ok(SecretDeletion::Deleted);
    }
    let exists: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM signing_secrets WHERE auth_id = ? AND secret_id = ?")
            .bind(auth_id.as_str())
            .bind(secret_id.to_string())
            .fetch_optional(pool)
            .await?;
    Ok(if exists.is_some() {
        SecretDeletion::LastSecret
    } else {
        SecretDeletion::NotFound
    })
}

pub(super) async fn signing_keys(
    pool: &SqlitePool,
    vault: &Vault,
    auth_id: &AuthId,
) -> Result<SigningKeys, StoreError> {
    let row = sqlx::query("SELECT token_sealed, parent_auth_id FROM accounts WHERE auth_id = ?")
        .bind(auth_id.as_str())
        .fetch_optional(pool)
        .await?
        .ok_or(StoreError::NotFound)?;
    let auth_token = open_token(vault, auth_id.as_str(), row.try_get("token_sealed")?)?;
    let parent: Option<String> = row.try_get("parent_auth_id")?;
    let parent_token = match parent {
        None => auth_token.clone(),
        Some(parent) => {
            let sealed: Vec<u8> = sqlx::query_scalar("SELECT token_sealed FROM accounts WHERE auth_id = ?")
                .bind(&parent)
                .fetch_one(pool)
                .await?;
            open_token(vault, &parent, sealed)?
        }
    };
    let secrets = sqlx::query(
        "SELECT secret_id, secret_sealed FROM signing_secrets WHERE auth_id = ? ORDER BY created_at",
    )
    .bind(auth_id.as_str())
    .fetch_all(pool)
    .await?
    .iter()
    .map(|row| {
        let id: String = row.try_get("secret_id")?;
        let sealed: Vec<u8> = row.try_get("secret_sealed")?;
        vault
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

//! Signing secrets and the unsealed signing keys of an account, on PostgreSQL. Key material
//! is sealed with the server key before it is written and opened only to sign.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use domain::{AuthId, SecretId};

use super::db::{all, execute, first};
use crate::codec::*;
use crate::sql::{draw_secret, open_token};
use crate::vault::Vault;
use crate::{KeysVersion, NewSecret, SecretDeletion, SecretInfo, SigningKeys, StoreError};

pub(super) async fn insert_secret(
    vault: &Vault,
    tx: &impl GenericClient,
    auth_id: &AuthId,
    now: DateTime<Utc>,
) -> Result<NewSecret, StoreError> {
    let (secret, sealed) = draw_secret(vault, now);
    execute(
        tx,
        "INSERT INTO signing_secrets (secret_id, auth_id, secret_sealed, created_at) VALUES ($1, $2, $3, $4)",
        &[
            &secret.info.secret_id.to_string(),
            &auth_id.as_str(),
            &sealed,
            &time_to_db(now),
        ],
    )
    .await?;
    keys_changed(tx, auth_id).await?;
    Ok(secret)
}

pub(super) async fn list_signing_secrets(
    client: &impl GenericClient,
    auth_id: &AuthId,
) -> Result<Vec<SecretInfo>, StoreError> {
    all(
        client,
        "SELECT secret_id, created_at FROM signing_secrets WHERE auth_id = $1 ORDER BY created_at, secret_id",
        &[&auth_id.as_str()],
        |row| {
            let id: String = row.try_get("secret_id")?;
            Ok(SecretInfo {
                secret_id: SecretId::parse(&id).ok_or_else(|| corrupt("secret_id", &id))?,
                created_at: time_from_db(row.try_get("created_at")?)?,
            })
        },
    )
    .await
}

pub(super) async fn delete_signing_secret(
    tx: &impl GenericClient,
    auth_id: &AuthId,
    secret_id: &SecretId,
) -> Result<SecretDeletion, StoreError> {
    // The account's row lock orders concurrent deletes on any node, so two of them cannot both
    // pass the "not the last" check.
    let locked = first(
        tx,
        "SELECT 1 FROM accounts WHERE auth_id = $1 FOR UPDATE",
        &[&auth_id.as_str()],
        |_| Ok(()),
    )
    .await?;
    if locked.is_none() {
        return Ok(SecretDeletion::NotFound);
    }
    let secret_id = secret_id.to_string();
    let deleted = execute(
        tx,
        "DELETE FROM signing_secrets WHERE auth_id = $1 AND secret_id = $2 \
         AND (SELECT COUNT(*) FROM signing_secrets WHERE auth_id = $1) > 1",
        &[&auth_id.as_str(), &secret_id],
    )
    .await?;
    if deleted == 1 {
        keys_changed(tx, auth_id).await?;
        return Ok(SecretDeletion::Deleted);
    }
    let exists = first(
        tx,
        "SELECT 1 FROM signing_secrets WHERE auth_id = $1 AND secret_id = $2",
        &[&auth_id.as_str(), &secret_id],
        |_| Ok(()),
    )
    .await?;
    Ok(if exists.is_some() {
        SecretDeletion::LastSecret
    } else {
        SecretDeletion::NotFound
    })
}

/// Counts a change of the account's signing keys, in the transaction that makes it.
async fn keys_changed(tx: &impl GenericClient, auth_id: &AuthId) -> Result<(), StoreError> {
    execute(
        tx,
        "UPDATE accounts SET keys_version = keys_version + 1 WHERE auth_id = $1",
        &[&auth_id.as_str()],
    )
    .await
    .map(drop)
}

pub(super) async fn signing_keys(
    client: &impl GenericClient,
    vault: &Vault,
    auth_id: &AuthId,
) -> Result<SigningKeys, StoreError> {
    // One statement, so the token, the parent's token and the versions are of one moment.
    let row = first(
        client,
        "SELECT a.token_sealed, a.keys_version, p.auth_id AS parent_id, p.token_sealed AS parent_sealed, \
         COALESCE(p.keys_version, a.keys_version) AS parent_version \
         FROM accounts a LEFT JOIN accounts p ON p.auth_id = a.parent_auth_id WHERE a.auth_id = $1",
        &[&auth_id.as_str()],
        |row| {
            let sealed: Vec<u8> = row.try_get("token_sealed")?;
            let parent_id: Option<String> = row.try_get("parent_id")?;
            let parent_sealed: Option<Vec<u8>> = row.try_get("parent_sealed")?;
            let auth_token = open_token(vault, auth_id.as_str(), &sealed)?;
            let parent_token = match (parent_id, parent_sealed) {
                (Some(id), Some(sealed)) => open_token(vault, &id, &sealed)?,
                _ => auth_token.clone(),
            };
            let version = KeysVersion {
                own: row.try_get("keys_version")?,
                parent: row.try_get("parent_version")?,
            };
            Ok((auth_token, parent_token, version))
        },
    )
    .await?
    .ok_or(StoreError::NotFound)?;
    let (auth_token, parent_token, version) = row;
    let secrets = all(
        client,
        "SELECT secret_id, secret_sealed FROM signing_secrets WHERE auth_id = $1 ORDER BY created_at",
        &[&auth_id.as_str()],
        |row| {
            let id: String = row.try_get("secret_id")?;
            let sealed: Vec<u8> = row.try_get("secret_sealed")?;
            vault
                .open(&id, &sealed)
                .map_err(|_| corrupt("signing secret", &id))
        },
    )
    .await?;
    Ok(SigningKeys {
        auth_token,
        parent_token,
        secrets,
        version,
    })
}

//! Signing secrets and the unsealed signing keys of an account, on SQLite. Key material is
//! sealed with the server key before it is written and opened only to sign.

use chrono::{DateTime, Utc};
use domain::{AuthId, SecretId};
use rusqlite::{params, Connection};

use super::db::{all, execute, first};
use crate::codec::*;
use crate::sql::{draw_secret, open_token};
use crate::vault::Vault;
use crate::{KeysVersion, NewSecret, SecretDeletion, SecretInfo, SigningKeys, StoreError};

pub(super) fn insert_secret(
    vault: &Vault,
    conn: &Connection,
    auth_id: &AuthId,
    now: DateTime<Utc>,
) -> Result<NewSecret, StoreError> {
    let (secret, sealed) = draw_secret(vault, now);
    execute(
        conn,
        "INSERT INTO signing_secrets (secret_id, auth_id, secret_sealed, created_at) VALUES (?, ?, ?, ?)",
        params![
            secret.info.secret_id.to_string(),
            auth_id.as_str(),
            sealed,
            time_to_db(now)
        ],
    )?;
    keys_changed(conn, auth_id)?;
    Ok(secret)
}

pub(super) fn list_signing_secrets(
    conn: &Connection,
    auth_id: &AuthId,
) -> Result<Vec<SecretInfo>, StoreError> {
    all(
        conn,
        "SELECT secret_id, created_at FROM signing_secrets WHERE auth_id = ? ORDER BY created_at, secret_id",
        [auth_id.as_str()],
        |row| {
            let id: String = row.get("secret_id")?;
            Ok(SecretInfo {
                secret_id: SecretId::parse(&id).ok_or_else(|| corrupt("secret_id", &id))?,
                created_at: time_from_db(row.get("created_at")?)?,
            })
        },
    )
}

pub(super) fn delete_signing_secret(
    conn: &Connection,
    auth_id: &AuthId,
    secret_id: &SecretId,
) -> Result<SecretDeletion, StoreError> {
    let secret_id = secret_id.to_string();
    // One statement, so two concurrent deletes cannot both pass the "not the last" check.
    let deleted = execute(
        conn,
        "DELETE FROM signing_secrets WHERE auth_id = ?1 AND secret_id = ?2 \
         AND (SELECT COUNT(*) FROM signing_secrets WHERE auth_id = ?1) > 1",
        [auth_id.as_str(), secret_id.as_str()],
    )?;
    if deleted == 1 {
        keys_changed(conn, auth_id)?;
        return Ok(SecretDeletion::Deleted);
    }
    let exists = first(
        conn,
        "SELECT 1 FROM signing_secrets WHERE auth_id = ? AND secret_id = ?",
        [auth_id.as_str(), secret_id.as_str()],
        |_| Ok(()),
    )?;
    Ok(if exists.is_some() {
        SecretDeletion::LastSecret
    } else {
        SecretDeletion::NotFound
    })
}

/// Counts a change of the account's signing keys, in the transaction that makes it.
pub(super) fn keys_changed(conn: &Connection, auth_id: &AuthId) -> Result<(), StoreError> {
    execute(
        conn,
        "UPDATE accounts SET keys_version = keys_version + 1 WHERE auth_id = ?",
        [auth_id.as_str()],
    )
    .map(drop)
}

/// The versions of the keys that sign `auth_id`'s callbacks: its own and its parent's (whose
/// token keys the `-MA-` signatures).
pub(super) fn keys_version(conn: &Connection, auth_id: &str) -> Result<KeysVersion, StoreError> {
    first(
        conn,
        "SELECT a.keys_version AS own, COALESCE(p.keys_version, a.keys_version) AS parent          FROM accounts a LEFT JOIN accounts p ON p.auth_id = a.parent_auth_id WHERE a.auth_id = ?",
        [auth_id],
        |row| {
            Ok(KeysVersion {
                own: row.get("own")?,
                parent: row.get("parent")?,
            })
        },
    )?
    .ok_or(StoreError::NotFound)
}

pub(super) fn signing_keys(
    conn: &Connection,
    vault: &Vault,
    auth_id: &AuthId,
) -> Result<SigningKeys, StoreError> {
    let sealed_token = |id: &str| {
        first(
            conn,
            "SELECT token_sealed, parent_auth_id, keys_version FROM accounts WHERE auth_id = ?",
            [id],
            |row| {
                let sealed: Vec<u8> = row.get("token_sealed")?;
                let parent: Option<String> = row.get("parent_auth_id")?;
                let version: i64 = row.get("keys_version")?;
                Ok((open_token(vault, id, &sealed)?, parent, version))
            },
        )?
        .ok_or(StoreError::NotFound)
    };
    let (auth_token, parent, own) = sealed_token(auth_id.as_str())?;
    let (parent_token, parent_version) = match parent {
        None => (auth_token.clone(), own),
        Some(parent) => {
            let (token, _, version) = sealed_token(&parent)?;
            (token, version)
        }
    };
    let secrets = all(
        conn,
        "SELECT secret_id, secret_sealed FROM signing_secrets WHERE auth_id = ? ORDER BY created_at",
        [auth_id.as_str()],
        |row| {
            let id: String = row.get("secret_id")?;
            let sealed: Vec<u8> = row.get("secret_sealed")?;
            vault
                .open(&id, &sealed)
                .map_err(|_| corrupt("signing secret", &id))
        },
    )?;
    Ok(SigningKeys {
        auth_token,
        parent_token,
        secrets,
        version: KeysVersion {
            own,
            parent: parent_version,
        },
    })
}

//! The server key that seals auth tokens and signing secrets at rest (PRODUCT.md §4.4): from
//! the `secret_key` setting, or a key file generated in the data directory on first start.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

const KEY_FILE: &str = "secret.key";

/// Loads the server key: SHA-256 of `secret_key` when set (any high-entropy string), else the
/// key file in `data_dir`, created with mode 0600 when missing.
///
/// # Errors
/// When the key file cannot be read, written or decoded.
pub fn server_key(secret_key: Option<&str>, data_dir: &Path) -> anyhow::Result<[u8; 32]> {
    if let Some(secret) = secret_key {
        return Ok(Sha256::digest(secret.as_bytes()).into());
    }
    let path = data_dir.join(KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => decode(text.trim()).with_context(|| format!("reading server key {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(&path),
        Err(e) => Err(e).with_context(|| format!("reading server key {}", path.display())),
    }
}

/// The dashboard's key (session cookies, CSRF tokens), derived from the server key so that
/// every node sharing a `secret_key` accepts every node's sessions, and distinct from the
/// sealing key: HMAC-SHA256(server key, purpose label).
pub fn ui_key(server_key: &[u8; 32]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(server_key).expect("HMAC takes a key of any length");
    mac.update(b"hookline dashboard sessions v1");
    mac.finalize().into_bytes().into()
}

fn decode(text: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = STANDARD.decode(text).context("the key file is not base64")?;
    match <[u8; 32]>::try_from(bytes.as_slice()) {
        Ok(key) => Ok(key),
        Err(_) => bail!("the key file must hold 32 bytes, it holds {}", bytes.len()),
    }
}

fn create(path: &Path) -> anyhow::Result<[u8; 32]> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating data directory {}", dir.display()))?;
    }
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            writeln!(file, "{}", STANDARD.encode(key))
                .and_then(|()| file.sync_all())
                .with_context(|| format!("writing server key {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated a new server key; back it up with the database");
            Ok(key)
        }
        // Another process (a concurrent `accounts create`) won the race: use its key.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading server key {}", path.display()))?;
            decode(text.trim())
        }
        Err(e) => Err(e).with_context(|| format!("creating server key {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dashboard_key_is_derived_and_differs_from_the_server_key() {
        let key = [3u8; 32];
        assert_eq!(ui_key(&key), ui_key(&key));
        assert_ne!(ui_key(&key), key);
        assert_ne!(ui_key(&key), ui_key(&[4u8; 32]));
    }

    #[test]
    fn the_key_file_is_created_once_and_then_reused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = server_key(None, dir.path()).expect("created");
        let second = server_key(None, dir.path()).expect("read back");
        assert_eq!(first, second);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .expect("exists")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_configured_secret_key_wins_and_is_stable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let a = server_key(Some("correct horse battery staple"), dir.path()).expect("derived");
        assert_eq!(
            a,
            server_key(Some("correct horse battery staple"), dir.path()).expect("derived")
        );
        assert!(!dir.path().join(KEY_FILE).exists());
    }

    #[test]
    fn a_corrupt_key_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(KEY_FILE), "not base64!").expect("write");
        assert!(server_key(None, dir.path()).is_err());
    }
}

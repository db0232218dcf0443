//! Key material at rest: auth tokens and signing secrets are sealed with ChaCha20-Poly1305
//! under the server key, and auth tokens are also hashed for authentication.
//!
//! Vobiz signatures are keyed by the auth token and Standard Webhooks by the secret itself, so
//! neither can be stored only as a hash (PRODUCT.md §4.4). Each sealed value is bound to the row
//! it belongs to (associated data), so a sealed token copied into another row does not open.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const NONCE_LEN: usize = 12;

/// Seals and opens key material with the server key.
#[derive(Clone)]
pub struct Vault {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(REDACTED)")
    }
}

/// A sealed value could not be opened: wrong server key or a tampered row.
#[derive(Debug, thiserror::Error)]
#[error("sealed value does not open with this server key")]
pub struct OpenError;

impl Vault {
    pub fn new(key: [u8; 32]) -> Vault {
        Vault {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        }
    }

    /// Seals `plaintext`, bound to `context` (the row's id): nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("ChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a value sealed by [`Vault::seal`] with the same `context`.
    ///
    /// # Errors
    /// `OpenError` when the server key differs or the value or context was altered.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < NONCE_LEN {
            return Err(OpenError);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| OpenError)
    }
}

/// The stored form of an auth token for authentication. Tokens are 40 random characters, so
/// a fast hash is enough: there is nothing to brute-force.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Compares a presented token with a stored hash in constant time.
pub fn token_matches(token: &str, stored_hash: &[u8]) -> bool {
    token_hash(token).ct_eq(stored_hash).into()
}

/// A new auth token: 40 characters from [A-Za-z0-9], like Plivo's and Vobiz's.
pub fn new_auth_token() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rngs::OsRng;
    (0..40)
        .map(|_| ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_context() {
        let vault = Vault::new([7; 32]);
        let sealed = vault.seal("MA_ABCDEFGH", b"token");
        assert_eq!(vault.open("MA_ABCDEFGH", &sealed).expect("opens"), b"token");
        assert!(vault.open("MA_OTHER000", &sealed).is_err());
        assert!(Vault::new([8; 32]).open("MA_ABCDEFGH", &sealed).is_err());
        assert!(
            !sealed.windows(5).any(|w| w == b"token"),
            "plain text must not appear"
        );
    }

    #[test]
    fn tokens_match_their_hash_only() {
        let token = new_auth_token();
        assert_eq!(token.len(), 40);
        let hash = token_hash(&token);
        assert!(token_matches(&token, &hash));
        assert!(!token_matches("wrong", &hash));
    }
}

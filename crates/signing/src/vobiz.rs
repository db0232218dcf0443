//! Vobiz-compatible (Plivo-style) callback signatures: the V2, V3 and
//! main-account (MA) headers, computed over the callback's base URL and a
//! per-attempt nonce.
//!
//! This module is not a source of nonces: it turns caller-supplied randomness
//! into the 20-digit format ([`nonce_from`]) but never draws randomness itself.
//! It signs only the URL, never the body — body integrity is what the
//! Standard Webhooks signature in [`crate::standard`] is for.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use subtle::ConstantTimeEq as _;

use crate::hmac_sha256;

pub const V2: &str = "X-Vobiz-Signature-V2";
pub const V2_NONCE: &str = "X-Vobiz-Signature-V2-Nonce";
pub const V3: &str = "X-Vobiz-Signature-V3";
pub const V3_NONCE: &str = "X-Vobiz-Signature-V3-Nonce";
pub const MA_V2: &str = "X-Vobiz-Signature-MA-V2";
pub const MA_V3: &str = "X-Vobiz-Signature-MA-V3";

/// The part of `url` that Vobiz receivers sign: everything before the first
/// `?` or `#`, byte for byte.
///
/// No normalisation (case, default port, trailing slash) happens on purpose:
/// receivers rebuild the URL from what they were called on and compare
/// strings, so any rewriting here would only create mismatches.
pub fn base_url(url: &str) -> &str {
    match url.find(['?', '#']) {
        Some(end) => &url[..end],
        None => url,
    }
}

/// `X-Vobiz-Signature-V2`: base64(HMAC-SHA256(key, base_url + nonce)).
pub fn sign_v2(key: &[u8], url: &str, nonce: &str) -> String {
    STANDARD.encode(hmac_sha256(key, &[base_url(url).as_bytes(), nonce.as_bytes()]))
}

/// `X-Vobiz-Signature-V3`: base64(HMAC-SHA256(key, base_url + "." + nonce)).
pub fn sign_v3(key: &[u8], url: &str, nonce: &str) -> String {
    STANDARD.encode(hmac_sha256(
        key,
        &[base_url(url).as_bytes(), b".", nonce.as_bytes()],
    ))
}

/// Exclusive upper bound of a 20-digit decimal nonce.
const NONCE_SPACE: u128 = 100_000_000_000_000_000_000;

/// 20 decimal digits from caller-supplied randomness (e.g. a random u128),
/// zero-padded.
///
/// Reducing a uniform u128 modulo 10^20 is biased by at most 10^20 / 2^128
/// (about 3e-19), which is irrelevant for a nonce.
pub fn nonce_from(random: u128) -> String {
    format!("{:020}", random % NONCE_SPACE)
}

/// The two nonces of one delivery attempt; V2 and V3 each get their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nonces {
    pub v2: String,
    pub v3: String,
}

/// All six headers (V2, V2-Nonce, MA-V2, V3, V3-Nonce, MA-V3) in that order.
///
/// `parent_token` is the parent account's auth token; a main account passes
/// its own token, which makes the MA headers equal V2/V3. They are sent
/// either way because receivers may check them unconditionally.
pub fn headers(
    url: &str,
    auth_token: &[u8],
    parent_token: &[u8],
    nonces: &Nonces,
) -> Vec<(&'static str, String)> {
    vec![
        (V2, sign_v2(auth_token, url, &nonces.v2)),
        (V2_NONCE, nonces.v2.clone()),
        (MA_V2, sign_v2(parent_token, url, &nonces.v2)),
        (V3, sign_v3(auth_token, url, &nonces.v3)),
        (V3_NONCE, nonces.v3.clone()),
        (MA_V3, sign_v3(parent_token, url, &nonces.v3)),
    ]
}

/// Checks a V2 signature in constant time (for equal-length inputs; every
/// valid signature has the same length, so length leaks nothing useful).
pub fn verify_v2(key: &[u8], url: &str, nonce: &str, signature: &str) -> bool {
    constant_time_eq(&sign_v2(key, url, nonce), signature)
}

/// Checks a V3 signature; see [`verify_v2`] for the timing guarantee.
pub fn verify_v3(key: &[u8], url: &str, nonce: &str, signature: &str) -> bool {
    constant_time_eq(&sign_v3(key, url, nonce), signature)
}

/// Compares the base64 text rather than decoded bytes so that a signature in
/// any non-canonical encoding is rejected, as a Vobiz receiver would.
fn constant_time_eq(expected: &str, given: &str) -> bool {
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &[u8] = b"test-auth-token";
    const PARENT: &[u8] = b"parent-auth-token";
    const URL: &str = "https://example.com/vobiz/status";
    const V2_NONCE_VECTOR: &str = "12345678901234567890";
    const V3_NONCE_VECTOR: &str = "09876543210987654321";

    fn vector_nonces() -> Nonces {
        Nonces {
            v2: V2_NONCE_VECTOR.into(),
            v3: V3_NONCE_VECTOR.into(),
        }
    }

    #[test]
    fn v2_matches_the_known_vector() {
        assert_eq!(
            sign_v2(TOKEN, URL, V2_NONCE_VECTOR),
            "A9JV7ttjkq77DdHrxccwbzzk66BhE5W7cuRUERLRKgk="
        );
    }

    #[test]
    fn v3_matches_the_known_vector() {
        assert_eq!(
            sign_v3(TOKEN, URL, V3_NONCE_VECTOR),
            "szGO24+0ay9GmRUV5CC9RwEKTeTcGKmzXAjEBS6uvTM="
        );
    }

    #[test]
    fn ma_v3_with_a_parent_token_matches_the_known_vector() {
        let headers = headers(URL, TOKEN, PARENT, &vector_nonces());
        assert_eq!(
            headers[5],
            (MA_V3, "ifjktqfSF9VJYeqv+pJwi0trRrW/aNB9J6Rmt4Q52W4=".to_string())
        );
    }

    #[test]
    fn headers_come_in_the_documented_order_with_the_vector_values() {
        let headers = headers(URL, TOKEN, PARENT, &vector_nonces());
        let names: Vec<&str> = headers.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, [V2, V2_NONCE, MA_V2, V3, V3_NONCE, MA_V3]);
        assert_eq!(headers[0].1, "A9JV7ttjkq77DdHrxccwbzzk66BhE5W7cuRUERLRKgk=");
        assert_eq!(headers[1].1, V2_NONCE_VECTOR);
        assert_eq!(headers[2].1, sign_v2(PARENT, URL, V2_NONCE_VECTOR));
        assert_eq!(headers[3].1, "szGO24+0ay9GmRUV5CC9RwEKTeTcGKmzXAjEBS6uvTM=");
        assert_eq!(headers[4].1, V3_NONCE_VECTOR);
    }

    #[test]
    fn ma_headers_equal_v2_and_v3_when_the_parent_is_the_account_itself() {
        let headers = headers(URL, TOKEN, TOKEN, &vector_nonces());
        assert_eq!(headers[2].1, headers[0].1);
        assert_eq!(headers[5].1, headers[3].1);
    }

    #[test]
    fn a_query_string_or_fragment_does_not_change_the_signature() {
        for url in [
            "https://example.com/vobiz/status?x=1",
            "https://example.com/vobiz/status#frag",
            "https://example.com/vobiz/status?x=1#frag",
            "https://example.com/vobiz/status?",
        ] {
            assert_eq!(base_url(url), URL);
            assert_eq!(
                sign_v2(TOKEN, url, V2_NONCE_VECTOR),
                sign_v2(TOKEN, URL, V2_NONCE_VECTOR)
            );
            assert_eq!(
                sign_v3(TOKEN, url, V3_NONCE_VECTOR),
                sign_v3(TOKEN, URL, V3_NONCE_VECTOR)
            );
        }
    }

    #[test]
    fn base_url_stops_at_whichever_of_query_or_fragment_comes_first() {
        assert_eq!(base_url("https://h/p#a?b"), "https://h/p");
        assert_eq!(base_url("https://h/p?a#b"), "https://h/p");
        assert_eq!(base_url("https://h/p/"), "https://h/p/");
        assert_eq!(base_url(""), "");
    }

    #[test]
    fn nonces_are_twenty_zero_padded_digits() {
        assert_eq!(nonce_from(0), "00000000000000000000");
        assert_eq!(nonce_from(42), "00000000000000000042");
        assert_eq!(nonce_from(NONCE_SPACE - 1), "99999999999999999999");
        assert_eq!(nonce_from(NONCE_SPACE), "00000000000000000000");
        for random in [u128::MAX, u128::MAX / 3, 1 << 100, 12_345] {
            let nonce = nonce_from(random);
            assert_eq!(nonce.len(), 20);
            assert!(nonce.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn verify_accepts_what_sign_produced_across_varied_inputs() {
        let urls = [
            URL,
            "https://example.com/vobiz/status?x=1&y=2",
            "http://10.0.0.1:8080/a/b/c/",
            "https://例え.jp/パス",
        ];
        let keys: [&[u8]; 3] = [TOKEN, PARENT, b""];
        for (i, url) in urls.iter().enumerate() {
            for (j, key) in keys.iter().enumerate() {
                let nonce = nonce_from((i as u128 + 1) * 7_919 + j as u128 * 104_729);
                let v2 = sign_v2(key, url, &nonce);
                let v3 = sign_v3(key, url, &nonce);
                assert!(verify_v2(key, url, &nonce, &v2));
                assert!(verify_v3(key, url, &nonce, &v3));
                assert!(verify_v2(key, base_url(url), &nonce, &v2));
            }
        }
    }

    #[test]
    fn verify_rejects_a_wrong_key_nonce_url_version_or_signature() {
        let v2 = sign_v2(TOKEN, URL, V2_NONCE_VECTOR);
        let v3 = sign_v3(TOKEN, URL, V2_NONCE_VECTOR);
        assert!(!verify_v2(PARENT, URL, V2_NONCE_VECTOR, &v2));
        assert!(!verify_v2(TOKEN, URL, V3_NONCE_VECTOR, &v2));
        assert!(!verify_v2(
            TOKEN,
            "https://example.com/vobiz/other",
            V2_NONCE_VECTOR,
            &v2
        ));
        assert!(!verify_v2(TOKEN, URL, V2_NONCE_VECTOR, &v3));
        assert!(!verify_v3(TOKEN, URL, V2_NONCE_VECTOR, &v2));
        assert!(!verify_v2(TOKEN, URL, V2_NONCE_VECTOR, ""));
        assert!(!verify_v2(TOKEN, URL, V2_NONCE_VECTOR, v2.trim_end_matches('=')));
        let mut flipped = v2.clone().into_bytes();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).expect("base64 is ASCII");
        assert!(!verify_v2(TOKEN, URL, V2_NONCE_VECTOR, &flipped));
    }
}

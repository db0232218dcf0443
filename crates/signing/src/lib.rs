//! Signatures for Hookline callbacks: Vobiz-compatible URL signatures
//! ([`vobiz`]) and Standard Webhooks body-covering signatures ([`standard`]),
//! plus [`verify_request`] to check every scheme on one captured request.
//!
//! This crate is pure: it has no clock, no randomness source and no I/O.
//! Timestamps, nonces' randomness and secret bytes are passed in, which keeps
//! every result reproducible and testable. It does not send or receive HTTP.

pub mod standard;
pub mod vobiz;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Why a `whsec_` signing secret could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("signing secret must start with \"whsec_\"")]
    MissingPrefix,
    #[error("signing secret after \"whsec_\" must be standard base64 (A-Z a-z 0-9 + /)")]
    NotBase64,
    #[error("signing secret must decode to 24 to 64 bytes, but it decodes to {0}")]
    Length(usize),
}

/// Why a Standard Webhooks signature was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("timestamp outside the tolerance")]
    Timestamp,
    #[error("no signature matched")]
    NoMatch,
    #[error("signature header is malformed")]
    Malformed,
}

/// HMAC-SHA256 over the concatenation of `parts`, fed piecewise so callers
/// need not allocate the joined message.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .expect("HMAC accepts keys of any length (long keys are hashed, short ones padded)");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// A captured callback request, for `hookline verify` and `hookline listen`.
#[derive(Debug, Clone, Copy)]
pub struct CapturedRequest<'a> {
    /// The full URL the request was made to; any query or fragment is
    /// stripped before the Vobiz checks.
    pub url: &'a str,
    /// Header names are matched case-insensitively; the first occurrence wins.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// The keys to check a [`CapturedRequest`] with; a scheme whose key is absent
/// is reported as [`Check::Skipped`].
#[derive(Debug, Clone, Copy)]
pub struct Keys<'a> {
    pub auth_token: Option<&'a [u8]>,
    /// The parent account's token for the MA checks; when absent the auth
    /// token is used, which is right for a main account.
    pub parent_token: Option<&'a [u8]>,
    pub secrets: &'a [standard::SigningSecret],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Valid,
    Invalid,
    /// A header the check needs is absent.
    Missing,
    /// No key was given for this check.
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub v2: Check,
    pub v3: Check,
    pub ma_v2: Check,
    pub ma_v3: Check,
    pub standard: Check,
}

impl Report {
    /// True when nothing failed or was missing. Note that a report where
    /// every check was skipped is also true: callers wanting proof of
    /// authenticity must make sure at least one key was given.
    pub fn all_valid_or_skipped(&self) -> bool {
        [&self.v2, &self.v3, &self.ma_v2, &self.ma_v3, &self.standard]
            .iter()
            .all(|check| matches!(check, Check::Valid | Check::Skipped))
    }
}

/// Checks every signature scheme on `req` independently.
///
/// A check is skipped when its key is absent before headers are looked at,
/// so a request from a sender that only uses one scheme is not reported as
/// missing the other. An unparseable `webhook-timestamp` counts as Invalid.
pub fn verify_request(req: &CapturedRequest<'_>, keys: &Keys<'_>, now: i64, tolerance_secs: i64) -> Report {
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim())
    };
    let vobiz_check = |key: Option<&[u8]>,
                       sig_name: &str,
                       nonce_name: &str,
                       verify: fn(&[u8], &str, &str, &str) -> bool| {
        let Some(key) = key else {
            return Check::Skipped;
        };
        match (header(sig_name), header(nonce_name)) {
            (Some(signature), Some(nonce)) => to_check(verify(key, req.url, nonce, signature)),
            _ => Check::Missing,
        }
    };
    let ma_key = keys.parent_token.or(keys.auth_token);

    let standard = if keys.secrets.is_empty() {
        Check::Skipped
    } else {
        match (
            header(standard::ID),
            header(standard::TIMESTAMP),
            header(standard::SIGNATURE),
        ) {
            (Some(id), Some(timestamp), Some(signature)) => match timestamp.parse::<i64>() {
                Ok(timestamp) => to_check(
                    standard::verify(
                        keys.secrets,
                        id,
                        timestamp,
                        req.body,
                        signature,
                        now,
                        tolerance_secs,
                    )
                    .is_ok(),
                ),
                Err(_) => Check::Invalid,
            },
            _ => Check::Missing,
        }
    };

    Report {
        v2: vobiz_check(keys.auth_token, vobiz::V2, vobiz::V2_NONCE, vobiz::verify_v2),
        v3: vobiz_check(keys.auth_token, vobiz::V3, vobiz::V3_NONCE, vobiz::verify_v3),
        ma_v2: vobiz_check(ma_key, vobiz::MA_V2, vobiz::V2_NONCE, vobiz::verify_v2),
        ma_v3: vobiz_check(ma_key, vobiz::MA_V3, vobiz::V3_NONCE, vobiz::verify_v3),
        standard,
    }
}

fn to_check(valid: bool) -> Check {
    if valid {
        Check::Valid
    } else {
        Check::Invalid
    }
}

#[cfg(test)]
mod tests {
    use super::standard::SigningSecret;
    use super::*;

    const URL: &str = "https://example.com/vobiz/status?call=abc";
    const TOKEN: &[u8] = b"test-auth-token";
    const PARENT: &[u8] = b"parent-auth-token";
    const NOW: i64 = 1_700_000_000;
    const TOLERANCE: i64 = 300;
    const BODY: &[u8] = br#"{"event":"call.completed"}"#;

    fn secret() -> SigningSecret {
        SigningSecret::from_bytes([42; 32])
    }

    /// Headers exactly as Hookline would send them, names lower-cased as many
    /// HTTP stacks deliver them.
    fn signed_headers(parent: &[u8]) -> Vec<(String, String)> {
        let nonces = vobiz::Nonces {
            v2: vobiz::nonce_from(1),
            v3: vobiz::nonce_from(2),
        };
        let mut headers: Vec<(String, String)> = vobiz::headers(URL, TOKEN, parent, &nonces)
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
        headers.push((standard::ID.into(), "evt_1".into()));
        headers.push((standard::TIMESTAMP.into(), NOW.to_string()));
        headers.push((
            standard::SIGNATURE.into(),
            standard::signature_header(&[secret()], "evt_1", NOW, BODY),
        ));
        headers
    }

    fn check(headers: &[(String, String)], keys: &Keys<'_>) -> Report {
        let req = CapturedRequest {
            url: URL,
            headers,
            body: BODY,
        };
        verify_request(&req, keys, NOW, TOLERANCE)
    }

    fn report_of(check: Check) -> Report {
        Report {
            v2: check.clone(),
            v3: check.clone(),
            ma_v2: check.clone(),
            ma_v3: check.clone(),
            standard: check,
        }
    }

    #[test]
    fn a_fully_signed_request_from_a_main_account_is_all_valid() {
        let secrets = [secret()];
        let keys = Keys {
            auth_token: Some(TOKEN),
            parent_token: None,
            secrets: &secrets,
        };
        let report = check(&signed_headers(TOKEN), &keys);
        assert_eq!(report, report_of(Check::Valid));
        assert!(report.all_valid_or_skipped());
    }

    #[test]
    fn a_subaccount_request_is_all_valid_when_the_parent_token_is_given() {
        let secrets = [secret()];
        let keys = Keys {
            auth_token: Some(TOKEN),
            parent_token: Some(PARENT),
            secrets: &secrets,
        };
        assert_eq!(check(&signed_headers(PARENT), &keys), report_of(Check::Valid));
    }

    #[test]
    fn a_wrong_token_or_secret_is_reported_invalid() {
        let wrong = [SigningSecret::from_bytes([1; 32])];
        let keys = Keys {
            auth_token: Some(b"wrong-token"),
            parent_token: None,
            secrets: &wrong,
        };
        let report = check(&signed_headers(TOKEN), &keys);
        assert_eq!(report, report_of(Check::Invalid));
        assert!(!report.all_valid_or_skipped());
    }

    #[test]
    fn a_wrong_parent_token_fails_only_the_ma_checks() {
        let secrets = [secret()];
        let keys = Keys {
            auth_token: Some(TOKEN),
            parent_token: Some(b"wrong-parent"),
            secrets: &secrets,
        };
        let report = check(&signed_headers(PARENT), &keys);
        assert_eq!(report.v2, Check::Valid);
        assert_eq!(report.v3, Check::Valid);
        assert_eq!(report.ma_v2, Check::Invalid);
        assert_eq!(report.ma_v3, Check::Invalid);
        assert_eq!(report.standard, Check::Valid);
    }

    #[test]
    fn a_tampered_body_or_stale_timestamp_fails_only_the_standard_check() {
        let secrets = [secret()];
        let keys = Keys {
            auth_token: Some(TOKEN),
            parent_token: None,
            secrets: &secrets,
        };
        let headers = signed_headers(TOKEN);
        let req = CapturedRequest {
            url: URL,
            headers: &headers,
            body: b"{}",
        };
        let tampered = verify_request(&req, &keys, NOW, TOLERANCE);
        assert_eq!(tampered.standard, Check::Invalid);
        assert_eq!(tampered.v2, Check::Valid);

        let req = CapturedRequest { body: BODY, ..req };
        let stale = verify_request(&req, &keys, NOW + TOLERANCE + 1, TOLERANCE);
        assert_eq!(stale.standard, Check::Invalid);
        assert_eq!(stale.v3, Check::Valid);
    }

    #[test]
    fn an_unparseable_timestamp_is_invalid() {
        let secrets = [secret()];
        let keys = Keys {
            auth_token: None,
            parent_token: None,
            secrets: &secrets,
        };
        let mut headers = signed_headers(TOKEN);
        for (name, value) in &mut headers {
            if name == standard::TIMESTAMP {
                *value = "yesterday".into();
            }
        }
        assert_eq!(check(&headers, &keys).standard, Check::Invalid);
    }

    #[test]
    fn a_request_without_signature_headers_reports_them_missing() {
        let secrets = [secret()];
        let keys = Keys {
            auth_token: Some(TOKEN),
            parent_token: None,
            secrets: &secrets,
        };
        assert_eq!(check(&[], &keys), report_of(Check::Missing));

        // Dropping only the V3 nonce leaves V2 intact but breaks both V3 checks.
        let without_v3_nonce: Vec<_> = signed_headers(TOKEN)
            .into_iter()
            .filter(|(name, _)| !name.eq_ignore_ascii_case(vobiz::V3_NONCE))
            .collect();
        let report = check(&without_v3_nonce, &keys);
        assert_eq!(report.v2, Check::Valid);
        assert_eq!(report.ma_v2, Check::Valid);
        assert_eq!(report.v3, Check::Missing);
        assert_eq!(report.ma_v3, Check::Missing);
        assert_eq!(report.standard, Check::Valid);
    }

    #[test]
    fn checks_without_a_key_are_skipped_even_if_headers_are_missing() {
        let keys = Keys {
            auth_token: None,
            parent_token: None,
            secrets: &[],
        };
        let report = check(&[], &keys);
        assert_eq!(report, report_of(Check::Skipped));
        assert!(report.all_valid_or_skipped());
    }

    #[test]
    fn a_parent_token_alone_enables_only_the_ma_checks() {
        let keys = Keys {
            auth_token: None,
            parent_token: Some(PARENT),
            secrets: &[],
        };
        let report = check(&signed_headers(PARENT), &keys);
        assert_eq!(report.v2, Check::Skipped);
        assert_eq!(report.v3, Check::Skipped);
        assert_eq!(report.ma_v2, Check::Valid);
        assert_eq!(report.ma_v3, Check::Valid);
        assert_eq!(report.standard, Check::Skipped);
    }

    #[test]
    fn header_names_match_case_insensitively_and_values_are_trimmed() {
        let secrets = [secret()];
        let keys = Keys {
            auth_token: Some(TOKEN),
            parent_token: None,
            secrets: &secrets,
        };
        let shouted: Vec<_> = signed_headers(TOKEN)
            .into_iter()
            .map(|(name, value)| (name.to_ascii_uppercase(), format!(" {value} ")))
            .collect();
        assert_eq!(check(&shouted, &keys), report_of(Check::Valid));
    }
}

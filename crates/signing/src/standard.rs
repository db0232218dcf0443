//! Standard Webhooks (svix-style) signatures: `webhook-id`,
//! `webhook-timestamp` and a `webhook-signature` header that covers the id,
//! the timestamp and the body, with one `v1,` entry per active secret.
//!
//! This module does not read the clock or generate secrets: `now` and the
//! secret's random bytes are arguments. It only implements the symmetric
//! `v1` scheme; other versions (e.g. asymmetric `v1a`) are ignored when
//! verifying, never produced.

use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use subtle::ConstantTimeEq as _;

use crate::{hmac_sha256, SecretError, VerifyError};

pub const ID: &str = "webhook-id";
pub const TIMESTAMP: &str = "webhook-timestamp";
pub const SIGNATURE: &str = "webhook-signature";

const PREFIX: &str = "whsec_";
const MIN_SECRET_LEN: usize = 24;
const MAX_SECRET_LEN: usize = 64;

/// Secrets get pasted from dashboards and config files with or without the
/// trailing `=`, so decoding must not care; encoding always pads.
const LENIENT_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A Standard Webhooks signing secret (the raw key bytes, without `whsec_`).
///
/// `Debug` is redacted so a secret inside a logged struct cannot leak;
/// use [`SigningSecret::expose`] when the secret really must be shown.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(Vec<u8>);

impl SigningSecret {
    /// Parses `whsec_<standard base64>`, padded or not. Surrounding
    /// whitespace is ignored because secrets read from files or environment
    /// variables often carry a trailing newline.
    pub fn parse(s: &str) -> Result<Self, SecretError> {
        let encoded = s.trim().strip_prefix(PREFIX).ok_or(SecretError::MissingPrefix)?;
        let bytes = LENIENT_STANDARD
            .decode(encoded)
            .map_err(|_| SecretError::NotBase64)?;
        if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&bytes.len()) {
            return Err(SecretError::Length(bytes.len()));
        }
        Ok(Self(bytes))
    }

    /// Wraps 32 caller-supplied random bytes, for generating new secrets.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes.to_vec())
    }

    /// The shareable form, `whsec_<padded standard base64>`; round-trips
    /// through [`SigningSecret::parse`].
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(REDACTED)")
    }
}

/// One signature entry, `v1,<base64 HMAC-SHA256(secret, id.timestamp.body)>`.
///
/// For a GET callback the caller passes an empty body.
pub fn sign(secret: &SigningSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    format!("v1,{}", v1_mac_base64(secret, id, timestamp, body))
}

fn v1_mac_base64(secret: &SigningSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let timestamp = timestamp.to_string();
    STANDARD.encode(hmac_sha256(
        secret.as_bytes(),
        &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
    ))
}

/// The `webhook-signature` value: one entry per secret, space-separated, so
/// receivers keep verifying while a secret is being rotated. An empty slice
/// gives an empty string.
pub fn signature_header(secrets: &[SigningSecret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|secret| sign(secret, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Accepts if any `v1,` entry of `header` matches any of `secrets` and
/// `timestamp` is within `tolerance_secs` of `now` in either direction.
///
/// Errors are checked in this order: [`VerifyError::Malformed`] (header empty,
/// or an entry without a `<version>,` prefix), [`VerifyError::Timestamp`],
/// [`VerifyError::NoMatch`] (including when `secrets` is empty or the header
/// has no `v1` entries). A negative tolerance is treated as zero.
pub fn verify(
    secrets: &[SigningSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    if header.trim().is_empty() {
        return Err(VerifyError::Malformed);
    }
    let mut entries = Vec::new();
    for entry in header.split_ascii_whitespace() {
        let (version, signature) = entry.split_once(',').ok_or(VerifyError::Malformed)?;
        if version.is_empty() {
            return Err(VerifyError::Malformed);
        }
        // Unknown versions are skipped, not rejected, so a sender can add
        // newer schemes alongside v1 without breaking v1-only receivers.
        if version == "v1" {
            entries.push(signature);
        }
    }

    let tolerance = u64::try_from(tolerance_secs).unwrap_or(0);
    if now.abs_diff(timestamp) > tolerance {
        return Err(VerifyError::Timestamp);
    }

    // Every pair is compared without early exit so the time taken does not
    // reveal which secret or entry matched.
    let mut matched = subtle::Choice::from(0);
    for secret in secrets {
        let expected = v1_mac_base64(secret, id, timestamp, body);
        for given in &entries {
            matched |= expected.as_bytes().ct_eq(given.as_bytes());
        }
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TS: i64 = 1_614_265_330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    const TOLERANCE: i64 = 300;

    fn spec_secret() -> SigningSecret {
        SigningSecret::parse(SPEC_SECRET).expect("spec secret is valid")
    }

    fn secret_from(seed: u8) -> SigningSecret {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = seed.wrapping_mul(31).wrapping_add(i as u8);
        }
        SigningSecret::from_bytes(bytes)
    }

    fn verify_spec(
        secrets: &[SigningSecret],
        id: &str,
        ts: i64,
        body: &[u8],
        header: &str,
    ) -> Result<(), VerifyError> {
        verify(secrets, id, ts, body, header, SPEC_TS, TOLERANCE)
    }

    #[test]
    fn signing_matches_the_standard_webhooks_spec_vector() {
        assert_eq!(sign(&spec_secret(), SPEC_ID, SPEC_TS, SPEC_BODY), SPEC_SIG);
    }

    #[test]
    fn the_spec_vector_verifies() {
        assert_eq!(
            verify_spec(&[spec_secret()], SPEC_ID, SPEC_TS, SPEC_BODY, SPEC_SIG),
            Ok(())
        );
    }

    #[test]
    fn verify_accepts_what_sign_produced_across_varied_inputs() {
        let ids = ["msg_1", "evt_ünïcode", ""];
        let bodies: [&[u8]; 4] = [b"", b"{}", SPEC_BODY, &[0, 255, 10, 13]];
        for seed in 0..4u8 {
            let secret = secret_from(seed);
            for id in ids {
                for (k, body) in bodies.iter().enumerate() {
                    let ts = SPEC_TS + i64::from(seed) * 1_000 + k as i64;
                    let header = sign(&secret, id, ts, body);
                    assert_eq!(
                        verify(std::slice::from_ref(&secret), id, ts, body, &header, ts, 0),
                        Ok(())
                    );
                }
            }
        }
    }

    #[test]
    fn a_tampered_body_id_timestamp_or_signature_fails() {
        let secrets = [spec_secret()];
        let no_match = Err(VerifyError::NoMatch);
        assert_eq!(
            verify_spec(&secrets, SPEC_ID, SPEC_TS, br#"{"test": 2432232315}"#, SPEC_SIG),
            no_match
        );
        assert_eq!(
            verify_spec(&secrets, "msg_other", SPEC_TS, SPEC_BODY, SPEC_SIG),
            no_match
        );
        assert_eq!(
            verify_spec(&secrets, SPEC_ID, SPEC_TS + 1, SPEC_BODY, SPEC_SIG),
            no_match
        );
        let tampered = SPEC_SIG.replace("g0hM", "g0hN");
        assert_eq!(
            verify_spec(&secrets, SPEC_ID, SPEC_TS, SPEC_BODY, &tampered),
            no_match
        );
        assert_eq!(
            verify_spec(&[secret_from(9)], SPEC_ID, SPEC_TS, SPEC_BODY, SPEC_SIG),
            no_match
        );
    }

    #[test]
    fn a_header_with_two_secrets_verifies_with_either_secret_alone() {
        let (old, new) = (secret_from(1), secret_from(2));
        let header = signature_header(&[old.clone(), new.clone()], SPEC_ID, SPEC_TS, SPEC_BODY);
        assert_eq!(header.split(' ').count(), 2);
        for secret in [old, new] {
            assert_eq!(
                verify_spec(&[secret], SPEC_ID, SPEC_TS, SPEC_BODY, &header),
                Ok(())
            );
        }
        assert_eq!(
            verify_spec(&[secret_from(3)], SPEC_ID, SPEC_TS, SPEC_BODY, &header),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn verification_succeeds_if_any_of_several_given_secrets_matches() {
        let secrets = [secret_from(7), spec_secret()];
        assert_eq!(
            verify_spec(&secrets, SPEC_ID, SPEC_TS, SPEC_BODY, SPEC_SIG),
            Ok(())
        );
    }

    #[test]
    fn a_timestamp_outside_the_tolerance_fails_in_both_directions() {
        let secrets = [spec_secret()];
        for now in [SPEC_TS + TOLERANCE + 1, SPEC_TS - TOLERANCE - 1] {
            assert_eq!(
                verify(&secrets, SPEC_ID, SPEC_TS, SPEC_BODY, SPEC_SIG, now, TOLERANCE),
                Err(VerifyError::Timestamp)
            );
        }
        for now in [SPEC_TS + TOLERANCE, SPEC_TS - TOLERANCE] {
            assert_eq!(
                verify(&secrets, SPEC_ID, SPEC_TS, SPEC_BODY, SPEC_SIG, now, TOLERANCE),
                Ok(())
            );
        }
    }

    #[test]
    fn extreme_timestamps_do_not_overflow_and_negative_tolerance_means_zero() {
        let secret = spec_secret();
        let header = sign(&secret, SPEC_ID, i64::MIN, b"");
        assert_eq!(
            verify(
                std::slice::from_ref(&secret),
                SPEC_ID,
                i64::MIN,
                b"",
                &header,
                i64::MAX,
                i64::MAX
            ),
            Err(VerifyError::Timestamp)
        );
        assert_eq!(
            verify(&[secret], SPEC_ID, SPEC_TS, SPEC_BODY, SPEC_SIG, SPEC_TS, -5),
            Ok(())
        );
    }

    #[test]
    fn entries_with_unknown_version_prefixes_are_ignored() {
        let secrets = [spec_secret()];
        let valid_sig = &SPEC_SIG[3..];
        let header = format!("v1a,{valid_sig} v2,garbage {SPEC_SIG}");
        assert_eq!(
            verify_spec(&secrets, SPEC_ID, SPEC_TS, SPEC_BODY, &header),
            Ok(())
        );
        // A correct MAC under the wrong version label must not count as v1.
        let relabelled = format!("v2,{valid_sig}");
        assert_eq!(
            verify_spec(&secrets, SPEC_ID, SPEC_TS, SPEC_BODY, &relabelled),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn an_empty_or_unprefixed_header_is_malformed() {
        let secrets = [spec_secret()];
        for header in ["", "   ", "g0hM9SsE", &format!("{SPEC_SIG} nocomma"), ",abc"] {
            assert_eq!(
                verify_spec(&secrets, SPEC_ID, SPEC_TS, SPEC_BODY, header),
                Err(VerifyError::Malformed),
                "header {header:?}"
            );
        }
    }

    #[test]
    fn extra_whitespace_between_entries_is_tolerated() {
        let header = format!("  v1,AAAA   {SPEC_SIG}\t");
        assert_eq!(
            verify_spec(&[spec_secret()], SPEC_ID, SPEC_TS, SPEC_BODY, &header),
            Ok(())
        );
    }

    #[test]
    fn no_secrets_means_no_match_and_an_empty_header() {
        assert_eq!(signature_header(&[], SPEC_ID, SPEC_TS, SPEC_BODY), "");
        assert_eq!(
            verify_spec(&[], SPEC_ID, SPEC_TS, SPEC_BODY, SPEC_SIG),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn secret_parse_accepts_padded_unpadded_and_whitespace_wrapped_input() {
        let bytes = [7u8; 32];
        let padded = SigningSecret::from_bytes(bytes).expose();
        assert!(padded.ends_with('='));
        let unpadded = padded.trim_end_matches('=');
        for text in [padded.as_str(), unpadded, &format!(" {padded}\n")] {
            let parsed = SigningSecret::parse(text).expect("valid secret");
            assert_eq!(parsed.as_bytes(), bytes);
        }
    }

    #[test]
    fn an_exposed_secret_parses_back_to_itself() {
        let secret = secret_from(5);
        assert_eq!(SigningSecret::parse(&secret.expose()), Ok(secret));
        assert_eq!(spec_secret().expose(), SPEC_SECRET);
    }

    #[test]
    fn secret_parse_rejects_a_missing_prefix_bad_base64_and_bad_lengths() {
        assert_eq!(
            SigningSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Err(SecretError::MissingPrefix)
        );
        assert_eq!(
            SigningSecret::parse("WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Err(SecretError::MissingPrefix)
        );
        for bad in ["whsec_not base64!", "whsec_MfKQ9r8G-_", "whsec_A"] {
            assert_eq!(SigningSecret::parse(bad), Err(SecretError::NotBase64), "{bad}");
        }
        let too_short = format!("whsec_{}", STANDARD.encode([1u8; 23]));
        assert_eq!(SigningSecret::parse(&too_short), Err(SecretError::Length(23)));
        let too_long = format!("whsec_{}", STANDARD.encode([1u8; 65]));
        assert_eq!(SigningSecret::parse(&too_long), Err(SecretError::Length(65)));
        assert_eq!(SigningSecret::parse("whsec_"), Err(SecretError::Length(0)));
        for ok_len in [24, 64] {
            let text = format!("whsec_{}", STANDARD.encode(vec![1u8; ok_len]));
            assert!(SigningSecret::parse(&text).is_ok(), "{ok_len} bytes");
        }
    }

    #[test]
    fn secret_errors_say_what_to_fix() {
        assert!(SecretError::MissingPrefix.to_string().contains("whsec_"));
        assert!(SecretError::NotBase64.to_string().contains("base64"));
        let length = SecretError::Length(3).to_string();
        assert!(length.contains("24") && length.contains("64") && length.contains('3'));
    }

    #[test]
    fn debug_output_does_not_leak_the_secret() {
        let secret = spec_secret();
        let debug = format!("{secret:?} {:?}", vec![secret.clone()]);
        assert!(debug.contains("REDACTED"));
        assert!(!debug.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
        assert!(!debug.contains(&format!("{:?}", secret.as_bytes())));
        let pretty = format!("{secret:#?}");
        assert!(!pretty.contains("MfKQ"));
    }
}

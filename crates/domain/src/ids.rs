//! Typed ids, one newtype per kind, so an `AppId` can never be passed where a `TrunkId` belongs.
//!
//! Wire shapes follow PRODUCT.md §2: auth ids are `MA_`/`SA_` + 8 upper-case alphanumerics,
//! application ids are 17 digits (as in Vobiz examples), trunk and secret ids are UUIDs.
//! Generation takes the random bytes as an argument; the caller owns the random source.

use std::fmt;

use uuid::Uuid;

const AUTH_ID_ALPHABET: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// The id of an account: `MA_XXXXXXXX` for a main account, `SA_XXXXXXXX` for a sub-account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AuthId(String);

impl AuthId {
    /// Parses an auth id as it appears in paths and headers.
    pub fn parse(input: &str) -> Option<AuthId> {
        let rest = input.strip_prefix("MA_").or_else(|| input.strip_prefix("SA_"))?;
        let well_formed =
            rest.len() == 8 && rest.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        well_formed.then(|| AuthId(input.to_owned()))
    }

    /// Builds a new id from eight random bytes.
    pub fn generate(sub_account: bool, random: [u8; 8]) -> AuthId {
        let prefix = if sub_account { "SA_" } else { "MA_" };
        let body: String = random
            .iter()
            .map(|b| AUTH_ID_ALPHABET[usize::from(*b) % AUTH_ID_ALPHABET.len()] as char)
            .collect();
        AuthId(format!("{prefix}{body}"))
    }

    pub fn is_sub_account(&self) -> bool {
        self.0.starts_with("SA_")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The id of an application: 17 decimal digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AppId(String);

impl AppId {
    pub fn parse(input: &str) -> Option<AppId> {
        (input.len() == 17 && input.bytes().all(|b| b.is_ascii_digit()) && !input.starts_with('0'))
            .then(|| AppId(input.to_owned()))
    }

    /// Builds a new id from a random number; always 17 digits, never a leading zero.
    pub fn generate(random: u64) -> AppId {
        const LOW: u64 = 10_000_000_000_000_000;
        const SPAN: u64 = 90_000_000_000_000_000;
        AppId((LOW + random % SPAN).to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            pub fn parse(input: &str) -> Option<$name> {
                Uuid::parse_str(input).ok().map($name)
            }

            pub fn from_random(random: u128) -> $name {
                $name(uuid::Builder::from_random_bytes(random.to_le_bytes()).into_uuid())
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.as_hyphenated().fmt(f)
            }
        }
    };
}

uuid_id!(
    /// The id of a SIP trunk.
    TrunkId
);
uuid_id!(
    /// The id of a signing secret.
    SecretId
);
uuid_id!(
    /// The id of a call (`call_uuid`; also its `request_uuid`).
    CallUuid
);
uuid_id!(
    /// The id of an event: the receiver's idempotency key (`X-Hookline-Event-Id`), stable across
    /// retries, fallback and redelivery.
    EventId
);

impl EventId {
    /// A version 7 UUID: milliseconds since the Unix epoch, then random bits. New ids sort
    /// after older ones, so the database appends them to its indexes instead of touching a
    /// random page per event.
    pub fn time_ordered(unix_millis: u64, random: u128) -> EventId {
        let bytes = random.to_le_bytes();
        let mut tail = [0u8; 10];
        tail.copy_from_slice(&bytes[..10]);
        EventId(uuid::Builder::from_unix_timestamp_millis(unix_millis, &tail).into_uuid())
    }
}

impl fmt::Display for AuthId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_auth_ids_parse_back_and_carry_their_kind() {
        for seed in 0..=255u8 {
            let main = AuthId::generate(false, [seed; 8]);
            let sub = AuthId::generate(true, [seed.wrapping_mul(7); 8]);
            assert_eq!(AuthId::parse(main.as_str()), Some(main.clone()));
            assert_eq!(AuthId::parse(sub.as_str()), Some(sub.clone()));
            assert!(!main.is_sub_account());
            assert!(sub.is_sub_account());
        }
    }

    #[test]
    fn malformed_auth_ids_are_refused() {
        for bad in [
            "",
            "MA_",
            "MA_ABC",
            "MA_abcdefgh",
            "XA_ABCDEFGH",
            "MA_ABCDEFGHI",
            "MA_ABCD-FGH",
        ] {
            assert_eq!(AuthId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn generated_app_ids_have_seventeen_digits() {
        for random in [0, 1, u64::MAX, 89_999_999_999_999_999, 90_000_000_000_000_000] {
            let id = AppId::generate(random);
            assert_eq!(id.as_str().len(), 17, "{id}");
            assert_eq!(AppId::parse(id.as_str()), Some(id));
        }
        assert_eq!(AppId::parse("1234"), None);
    }

    #[test]
    fn uuid_ids_round_trip_through_their_text_form() {
        let earlier = EventId::time_ordered(1_800_000_000_000, u128::MAX);
        let later = EventId::time_ordered(1_800_000_000_001, 0);
        assert!(
            earlier.to_string() < later.to_string(),
            "text order is time order"
        );
        assert_eq!(later.as_uuid().get_version_num(), 7);
        let id = TrunkId::from_random(42);
        assert_eq!(TrunkId::parse(&id.to_string()), Some(id));
        assert_eq!(TrunkId::parse("not-a-uuid"), None);
    }
}

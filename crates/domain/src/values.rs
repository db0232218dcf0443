//! Small validated values of the configuration API: HTTP methods, time zones, trunk direction
//! and status. Each `parse` accepts what PRODUCT.md allows on write and nothing else.

use std::fmt;
use std::str::FromStr;

/// Why a value was refused; the API puts the message under the field's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("must be GET or POST")]
    Method,
    #[error("unknown time zone {0:?}; use an IANA name such as Europe/Berlin")]
    Timezone(String),
    #[error("must be one of inbound, outbound, both")]
    Direction,
    #[error("must be active or inactive")]
    Status,
    #[error("unknown event {0:?}")]
    UnknownEvent(String),
}

/// The method a callback is sent with. Accepted in any case, stored upper-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpMethod {
    Get,
    #[default]
    Post,
}

impl HttpMethod {
    pub fn parse(input: &str) -> Result<HttpMethod, ValueError> {
        if input.eq_ignore_ascii_case("GET") {
            Ok(HttpMethod::Get)
        } else if input.eq_ignore_ascii_case("POST") {
            Ok(HttpMethod::Post)
        } else {
            Err(ValueError::Method)
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
        }
    }
}

impl fmt::Display for HttpMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An IANA time zone: call times in callbacks and call records are shown in it (§4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timezone(chrono_tz::Tz);

impl Default for Timezone {
    fn default() -> Self {
        Timezone(chrono_tz::UTC)
    }
}

impl Timezone {
    pub fn parse(input: &str) -> Result<Timezone, ValueError> {
        chrono_tz::Tz::from_str(input)
            .map(Timezone)
            .map_err(|_| ValueError::Timezone(input.to_owned()))
    }

    pub fn tz(self) -> chrono_tz::Tz {
        self.0
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }
}

/// Which calls a trunk carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrunkDirection {
    Inbound,
    Outbound,
    /// The default: a trunk restricts nothing unless told to.
    #[default]
    Both,
}

impl TrunkDirection {
    /// Accepts the lower-case names and Vobiz's upper-case `trunk_type` spellings.
    pub fn parse(input: &str) -> Result<TrunkDirection, ValueError> {
        match input.to_ascii_lowercase().as_str() {
            "inbound" => Ok(TrunkDirection::Inbound),
            "outbound" => Ok(TrunkDirection::Outbound),
            "both" => Ok(TrunkDirection::Both),
            _ => Err(ValueError::Direction),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TrunkDirection::Inbound => "inbound",
            TrunkDirection::Outbound => "outbound",
            TrunkDirection::Both => "both",
        }
    }
}

/// Whether a trunk is in service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrunkStatus {
    #[default]
    Active,
    Inactive,
}

impl TrunkStatus {
    /// Accepts `active`/`inactive` and the SDK's `enabled`/`disabled`, in any case.
    pub fn parse(input: &str) -> Result<TrunkStatus, ValueError> {
        match input.to_ascii_lowercase().as_str() {
            "active" | "enabled" => Ok(TrunkStatus::Active),
            "inactive" | "disabled" => Ok(TrunkStatus::Inactive),
            _ => Err(ValueError::Status),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TrunkStatus::Active => "active",
            TrunkStatus::Inactive => "inactive",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_accepted_in_any_case_and_shown_upper_case() {
        for (input, expected) in [("get", "GET"), ("Post", "POST"), ("POST", "POST"), ("gEt", "GET")] {
            assert_eq!(HttpMethod::parse(input).map(HttpMethod::as_str), Ok(expected));
        }
        for bad in ["PUT", "", "POST ", "DELETE"] {
            assert_eq!(HttpMethod::parse(bad), Err(ValueError::Method), "{bad:?}");
        }
    }

    #[test]
    fn only_iana_time_zones_are_accepted() {
        assert_eq!(
            Timezone::parse("Asia/Kolkata").map(Timezone::name),
            Ok("Asia/Kolkata")
        );
        assert_eq!(Timezone::parse("UTC").map(Timezone::name), Ok("UTC"));
        assert!(Timezone::parse("Mars/Olympus").is_err());
        assert!(Timezone::parse("").is_err());
    }

    #[test]
    fn trunk_direction_and_status_accept_both_spellings() {
        assert_eq!(TrunkDirection::parse("OUTBOUND"), Ok(TrunkDirection::Outbound));
        assert_eq!(TrunkDirection::parse("both"), Ok(TrunkDirection::Both));
        assert_eq!(TrunkDirection::parse("sideways"), Err(ValueError::Direction));
        assert_eq!(TrunkStatus::parse("enabled"), Ok(TrunkStatus::Active));
        assert_eq!(TrunkStatus::parse("Disabled"), Ok(TrunkStatus::Inactive));
        assert_eq!(TrunkStatus::parse("paused"), Err(ValueError::Status));
    }
}

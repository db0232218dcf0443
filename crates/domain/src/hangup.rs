//! Hangup causes: the textual `HangupCause`, its numeric code and display name (Vobiz
//! hangup-cause table), and which `CallStatus` a cause means when the call was never answered.

/// A hangup cause with its code and name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HangupCause {
    pub cause: &'static str,
    pub code: u32,
    pub name: &'static str,
}

const CAUSES: &[HangupCause] = &[
    HangupCause {
        cause: "NORMAL_CLEARING",
        code: 4000,
        name: "Normal Hangup",
    },
    HangupCause {
        cause: "ALLOTTED_TIMEOUT",
        code: 6000,
        name: "Scheduled Hangup",
    },
    HangupCause {
        cause: "ORIGINATOR_CANCEL",
        code: 1000,
        name: "Canceled",
    },
    HangupCause {
        cause: "USER_BUSY",
        code: 3010,
        name: "Busy Line",
    },
    HangupCause {
        cause: "NO_ANSWER",
        code: 3000,
        name: "No Answer",
    },
    HangupCause {
        cause: "UNALLOCATED_NUMBER",
        code: 3050,
        name: "Unallocated number",
    },
    HangupCause {
        cause: "SERVICE_UNAVAILABLE",
        code: 2010,
        name: "Destination Out Of Service",
    },
    HangupCause {
        cause: "DESTINATION_OUT_OF_ORDER",
        code: 2010,
        name: "Destination Out Of Service",
    },
    HangupCause {
        cause: "INVALID_NUMBER",
        code: 2000,
        name: "Invalid Destination Address",
    },
    HangupCause {
        cause: "CALL_REJECTED",
        code: 3020,
        name: "Rejected",
    },
    HangupCause {
        cause: "REJECTED",
        code: 3020,
        name: "Rejected",
    },
    HangupCause {
        cause: "SERVER_ERROR",
        code: 5010,
        name: "Internal Error",
    },
    HangupCause {
        cause: "PROTOCOL_ERROR",
        code: 5000,
        name: "Network Error",
    },
    HangupCause {
        cause: "NETWORK_OUT_OF_ORDER",
        code: 5000,
        name: "Network Error",
    },
    HangupCause {
        cause: "NORMAL_TEMPORARY_FAILURE",
        code: 5000,
        name: "Network Error",
    },
    HangupCause {
        cause: "SWITCH_CONGESTION",
        code: 3090,
        name: "Network congestion from carrier",
    },
    HangupCause {
        cause: "MEDIA_TIMEOUT",
        code: 6020,
        name: "Media Timeout",
    },
    HangupCause {
        cause: "RING_TIMEOUT",
        code: 6010,
        name: "Ring Timeout Reached",
    },
    HangupCause {
        cause: "UNKNOWN",
        code: 0,
        name: "Unknown",
    },
];

impl HangupCause {
    /// Looks a textual cause up; `None` for names outside the table.
    pub fn parse(cause: &str) -> Option<HangupCause> {
        CAUSES.iter().copied().find(|c| c.cause == cause)
    }

    /// The one in the table for `cause`, for causes this crate itself produces.
    pub fn known(cause: &'static str) -> HangupCause {
        HangupCause::parse(cause).unwrap_or(HangupCause {
            cause,
            code: 0,
            name: "Unknown",
        })
    }

    pub fn all_names() -> impl Iterator<Item = &'static str> {
        CAUSES.iter().map(|c| c.cause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_causes_of_the_product_table_have_their_codes_and_names() {
        let table = [
            ("NORMAL_CLEARING", 4000, "Normal Hangup"),
            ("ALLOTTED_TIMEOUT", 6000, "Scheduled Hangup"),
            ("ORIGINATOR_CANCEL", 1000, "Canceled"),
            ("USER_BUSY", 3010, "Busy Line"),
            ("NO_ANSWER", 3000, "No Answer"),
            ("UNALLOCATED_NUMBER", 3050, "Unallocated number"),
            ("SERVICE_UNAVAILABLE", 2010, "Destination Out Of Service"),
        ];
        for (cause, code, name) in table {
            let found = HangupCause::parse(cause).expect("in the table");
            assert_eq!((found.code, found.name), (code, name), "{cause}");
        }
        assert_eq!(HangupCause::parse("NOT_A_CAUSE"), None);
    }
}

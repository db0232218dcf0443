//! The state of one delivery (an event on one channel), as the delivery log shows it.

/// `status` of a delivery (PRODUCT.md §2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    Delivered,
    /// Every attempt on the primary and the fallback failed; kept and redeliverable.
    Failed,
    /// The winning level's filter excluded the event; never sent.
    Filtered,
    /// No level had a URL; never sent.
    Unrouted,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 5] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
        DeliveryStatus::Filtered,
        DeliveryStatus::Unrouted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Filtered => "filtered",
            DeliveryStatus::Unrouted => "unrouted",
        }
    }

    pub fn parse(input: &str) -> Option<DeliveryStatus> {
        DeliveryStatus::ALL.into_iter().find(|s| s.as_str() == input)
    }
}

/// Which URL of a delivery an attempt went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Primary,
    Fallback,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Primary => "primary",
            TargetKind::Fallback => "fallback",
        }
    }

    pub fn parse(input: &str) -> Option<TargetKind> {
        match input {
            "primary" => Some(TargetKind::Primary),
            "fallback" => Some(TargetKind::Fallback),
            _ => None,
        }
    }
}

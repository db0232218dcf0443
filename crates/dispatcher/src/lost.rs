//! Leases that requests which failed while the database was away may have left behind, kept
//! until it answers (then put back by the engine instead of waiting for the lease to end).

use chrono::{DateTime, Utc};

/// Leases a failed request may have left behind.
pub enum Lost {
    /// Consecutive claims whose answers did not come (they may have been committed), by the
    /// range of their lease ends: no claim that succeeded has a lease in it.
    Claims { from: DateTime<Utc>, to: DateTime<Utc> },
    /// A release that failed.
    Release {
        ids: Vec<i64>,
        lease_until: DateTime<Utc>,
        at: DateTime<Utc>,
    },
}

impl Lost {
    pub fn lease_end(&self) -> DateTime<Utc> {
        match self {
            Lost::Claims { to, .. } => *to,
            Lost::Release { lease_until, .. } => *lease_until,
        }
    }
}

/// Adds a failed claim to `lost`: to the range of the claim before it if that one failed too
/// (one statement undoes an outage's claims), or as a range of its own.
pub fn lost_claim(lost: &mut Vec<Lost>, previous_lease: DateTime<Utc>, lease_until: DateTime<Utc>) {
    let run = lost.iter_mut().rev().find_map(|lost| match lost {
        Lost::Claims { to, .. } if *to == previous_lease => Some(to),
        _ => None,
    });
    match run {
        Some(to) => *to = lease_until,
        None => lost.push(Lost::Claims {
            from: lease_until,
            to: lease_until,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(us: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(1_800_000_000_000_000 + us).expect("valid")
    }

    fn ranges(lost: &[Lost]) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        lost.iter()
            .filter_map(|lost| match lost {
                Lost::Claims { from, to } => Some((*from, *to)),
                Lost::Release { .. } => None,
            })
            .collect()
    }

    #[test]
    fn consecutive_failed_claims_make_one_range_and_a_success_between_starts_another() {
        let mut lost = Vec::new();
        lost_claim(&mut lost, at(0), at(1));
        lost_claim(&mut lost, at(1), at(2));
        // A release failing meanwhile does not end the run of failed claims.
        lost.push(Lost::Release {
            ids: vec![7],
            lease_until: at(2),
            at: at(2),
        });
        lost_claim(&mut lost, at(2), at(3));
        assert_eq!(ranges(&lost), [(at(1), at(3))]);
        // The claim with lease 4 succeeded: 5 is a range of its own.
        lost_claim(&mut lost, at(4), at(5));
        assert_eq!(ranges(&lost), [(at(1), at(3)), (at(5), at(5))]);
        assert_eq!(lost.len(), 3);
        assert_eq!(lost[2].lease_end(), at(5));
        assert_eq!(lost[1].lease_end(), at(2));
    }
}

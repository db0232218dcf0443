//! The API's one wall-clock read, so handlers never call `Utc::now()` themselves.

use chrono::{DateTime, Utc};

#[allow(clippy::disallowed_methods)]
pub fn now() -> DateTime<Utc> {
    Utc::now()
}

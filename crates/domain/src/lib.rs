//! Hookline's pure core: typed ids, the resources that carry callback configuration (account,
//! application, SIP trunk), event names and filters, and the small value types they are made of.
//!
//! Nothing here does I/O, reads a clock or draws randomness: times and random values come in as
//! arguments, so every rule is table-testable. Wire shapes (JSON) live in `api`, SQL in `store`.

pub mod call;
pub mod delivery;
pub mod event;
pub mod fields;
pub mod hangup;
pub mod ids;
pub mod patch;
pub mod resolution;
pub mod resources;
pub mod retry;
pub mod simulated;
pub mod values;

pub use call::{Call, CallStatus, Direction, Engine, Report, Target, TransitionError};
pub use delivery::{DeliveryStatus, TargetKind};
pub use event::{EventFilter, EventKind, FilterName};
pub use hangup::HangupCause;
pub use ids::{AppId, AuthId, CallUuid, EventId, SecretId, TrunkId};
pub use patch::Patch;
pub use resolution::{Channel, Level, Resolution, Verdict};
pub use resources::{Account, AccountPatch, Application, ApplicationPatch, SipUri, Trunk, TrunkPatch};
pub use urlguard::{CallbackUrl, UrlError, UrlPolicy};
pub use values::{HttpMethod, Timezone, TrunkDirection, TrunkStatus, ValueError};

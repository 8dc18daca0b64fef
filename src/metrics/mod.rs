//! What the pool tells about itself: monotonic counters ([`Stats`],
//! striped per thread so the hot path pays one uncontended add) and sizes
//! read together ([`Status`]).
//!
//! Owns: the counters and the status snapshot. May touch: the pool's state,
//! read-only.

#[cfg(feature = "prometheus")]
pub(crate) mod prometheus;
pub(crate) mod stats;
pub(crate) mod status;

pub use stats::{ClosedCounts, Stats};
pub use status::Status;

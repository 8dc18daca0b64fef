//! Time for the pool: the clock (real or mocked), the timers that wake
//! futures and background work at their deadlines, and the sleeps built on
//! them.
//!
//! Owns: [`Clock`], [`MockClock`], [`ClockDriver`], the timer map and its
//! thread, `Sleep`
//! and `with_deadline`. May touch: nothing else of the pool; every layer
//! reads time from here.
//!
//! Every instant is a `u64` count of nanoseconds since the clock's epoch,
//! so deadlines are plain integers and comparisons are free.

mod clock;
mod driver;
mod sleep;
mod timer;

pub use clock::{Clock, MockClock, RECENT_TIME_INTERVAL};
pub use driver::ClockDriver;
pub(crate) use sleep::{Raced, Sleep, with_deadline};

/// Converts a duration to nanoseconds, saturating at `u64::MAX`.
pub(crate) fn nanos(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

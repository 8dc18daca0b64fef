//! A point-in-time view of the pool's sizes.

use std::time::Duration;

use crate::manager::Manager;
use crate::pool::inner::Inner;

/// The pool's sizes, read together by [`Pool::status`](crate::Pool::status).
///
/// The numbers come from separate atomics, so under concurrent use they can
/// be a moment apart; each one is exact at the instant it was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// Connections the pool owns: idle + in use + being created.
    pub size: usize,
    /// Connections waiting in the idle queue.
    pub idle: usize,
    /// Connections checked out by callers.
    pub in_use: usize,
    /// Dials in progress.
    pub creating: usize,
    /// Gets queued for a connection.
    pub waiting: usize,
    /// The bound on `size`.
    pub max_size: usize,
    /// Connections maintenance keeps open: `min_idle`, or the recent peak
    /// of demand when `demand_half_life` is set.
    pub warm_target: usize,
    /// Dials that failed in a row (0 once one succeeds); the breaker opens
    /// at `breaker_threshold`.
    pub consecutive_dial_failures: u32,
    /// New connections that died young in a row (see
    /// [`Config::young_death_window`](crate::Config::young_death_window)):
    /// while it is not 0, dials are paced (never failed); 0 once a newer
    /// connection passes a liveness check after use.
    pub young_deaths_in_a_row: u32,
    /// How long background refills stay paused after a fatal connect error
    /// (`None`: not paused). A successful dial or a `reconfigure` lifts the
    /// pause.
    pub refills_paused_for: Option<Duration>,
}

/// The pool's sizes, read together.
pub(crate) fn status<M: Manager>(inner: &Inner<M>) -> Status {
    let size = inner.core.slots.size();
    let idle = inner.core.idle.len();
    let creating = inner.gate.creating();
    let now = inner.clock.now();
    Status {
        size,
        idle,
        in_use: size.saturating_sub(idle + creating),
        creating,
        waiting: inner.core.waiters.count(),
        max_size: inner.core.slots.max(),
        warm_target: inner.lifecycle.warm_target(),
        consecutive_dial_failures: inner.gate.consecutive_failures(),
        young_deaths_in_a_row: inner.gate.young_deaths(),
        refills_paused_for: inner
            .gate
            .refills_paused_until(now)
            .map(|until| Duration::from_nanos(until - now)),
    }
}

//! A point-in-time view of the pool's sizes.

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
}

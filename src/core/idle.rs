//! One pooled connection with the timestamps its policies need.

/// A connection plus its bookkeeping (instants in ns since the clock's
/// epoch). It travels between the idle queue, waiters and guards as a unit.
///
/// The lifetime deadline is not stored: it is derived from `created`, this
/// connection's jitter draw and the `max_lifetime` in force, so a
/// reconfigured lifetime reaches connections that already exist.
pub(crate) struct Entry<C> {
    pub(crate) conn: C,
    /// When it was dialed.
    pub(crate) created: u64,
    /// When it was last handed back (or dialed).
    pub(crate) last_used: u64,
    /// This connection's draw in `[0, 1)` of the lifetime jitter: its
    /// lifetime is `max_lifetime * (1 - lifetime_jitter * jitter_draw)`.
    pub(crate) jitter_draw: f64,
}

impl<C> Entry<C> {
    /// A connection dialed at `now`.
    pub(crate) fn new(conn: C, now: u64, last_used: u64) -> Self {
        Entry {
            conn,
            created: now,
            last_used,
            jitter_draw: fastrand::f64(),
        }
    }
}

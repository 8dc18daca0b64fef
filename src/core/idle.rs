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
    pub(crate) jitter_draw: f32,
    /// It passed a liveness check after being used. A connection that
    /// dies after that served its peer; one that dies young before it may
    /// never have been served at all (see `DialGate::died_young`).
    pub(crate) seen_alive: bool,
}

impl<C> Entry<C> {
    /// A connection dialed at `now`.
    pub(crate) fn new(conn: C, now: u64, last_used: u64) -> Self {
        Entry {
            conn,
            created: now,
            last_used,
            jitter_draw: fastrand::f32(),
            seen_alive: false,
        }
    }
}

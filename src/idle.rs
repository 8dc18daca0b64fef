//! One pooled connection with the timestamps its policies need.

/// A connection plus its bookkeeping (all instants in ns since the clock's
/// epoch). It travels between the idle queue, waiters and guards as a unit.
pub(crate) struct Entry<C> {
    pub(crate) conn: C,
    /// When it was dialed.
    pub(crate) created: u64,
    /// When its jittered lifetime ends (`u64::MAX` for never).
    pub(crate) expires: u64,
    /// When it was last handed back (or dialed).
    pub(crate) last_used: u64,
}

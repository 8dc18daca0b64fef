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
    /// This connection's draw in `[0, 1)` of the lifetime jitter (its
    /// magnitude: see [`Entry::jitter_draw`]), whose sign bit records
    /// whether it was seen alive (see [`Entry::seen_alive`]). One field for
    /// both keeps the entry at four words: a fifth, or a narrower draw and a
    /// flag, changed how the entry is copied between the queue and the
    /// guard and cost about 13 ns a checkout (`docs/benchmarks.md`).
    draw_and_seen: f64,
}

impl<C> Entry<C> {
    /// A connection dialed at `now`.
    pub(crate) fn new(conn: C, now: u64, last_used: u64) -> Self {
        Entry {
            conn,
            created: now,
            last_used,
            draw_and_seen: fastrand::f64(),
        }
    }

    /// This connection's draw in `[0, 1)` of the lifetime jitter: its
    /// lifetime is `max_lifetime * (1 - lifetime_jitter * jitter_draw)`.
    #[inline]
    pub(crate) fn jitter_draw(&self) -> f64 {
        self.draw_and_seen.abs()
    }

    /// Whether it passed a liveness check after being used. A connection
    /// that dies after that served its peer; one that dies young before it
    /// may never have been served at all (see `DialGate::died_young`).
    #[inline]
    pub(crate) fn seen_alive(&self) -> bool {
        self.draw_and_seen.is_sign_negative()
    }

    /// Records that it passed a liveness check after being used.
    pub(crate) fn mark_seen_alive(&mut self) {
        self.draw_and_seen = -self.draw_and_seen.abs();
    }

    /// Runs `call` on the connection with the rest of the entry held
    /// apart, so only the connection goes to memory for the call's
    /// reference and the timestamps stay in registers. Called with the
    /// whole entry in memory, an out-of-line call (a hook) came back to a
    /// wide read of the entry right after the narrow stores that put it
    /// there: a store-forwarding stall on every hooked checkout.
    #[inline(always)]
    pub(crate) fn with_conn<R>(self, call: impl FnOnce(&mut C) -> R) -> (Self, R) {
        let Entry {
            mut conn,
            created,
            last_used,
            draw_and_seen,
        } = self;
        let verdict = call(&mut conn);
        let entry = Entry {
            conn,
            created,
            last_used,
            draw_and_seen,
        };
        (entry, verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::Entry;

    #[test]
    fn the_seen_flag_leaves_the_jitter_draw_alone() {
        for _ in 0..100 {
            let mut entry = Entry::new((), 1, 1);
            let draw = entry.jitter_draw();
            assert!((0.0..1.0).contains(&draw));
            assert!(!entry.seen_alive());
            entry.mark_seen_alive();
            assert!(entry.seen_alive());
            assert_eq!(entry.jitter_draw(), draw);
        }
    }
}

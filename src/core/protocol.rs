//! The concurrent protocol as one type: [`Core`] holds the slot counter,
//! the idle store, the parked connections, the waiter list and the closed
//! flag, and runs every step of the lost-wake-up handshake (`core/mod.rs`)
//! itself. It knows nothing of managers, hooks, policies or statistics:
//! each operation hands back a decision ([`Stored`], [`Then`]) and the pool
//! above carries out the side effects (closing a connection, calling a
//! hook, telling the idle watch, counting).
//!
//! Its loom models (`core/protocol/tests.rs`) check the handshake on this
//! type alone, with no manager; the models in `loom-tests/` check the pool
//! built on it.

use crossbeam_utils::CachePadded;

use super::entry::Entry;
use super::grant::{Grant, Outcome};
use super::idle_store::{IdleStore, Landed};
use super::parked::Parked;
use super::slots::Slots;
use super::waiters::{Waiters, flags_in, waiting_in};
use crate::sync::{AtomicBool, Ordering, fence};

/// The state-word flag the core itself owns: the pool is closed. The pool
/// layer defines its other flags above it (`pool::inner::path`).
pub(crate) const CLOSED: u32 = 1;

/// The shared state of one pool's connections, and the protocol over it.
pub(crate) struct Core<C, E> {
    /// Written on dial and close only; padded so waiter traffic does not
    /// evict it from the readers' caches.
    pub(crate) slots: CachePadded<Slots>,
    pub(crate) idle: IdleStore<Entry<C>>,
    /// Returned connections waiting for the manager's recycle step.
    pub(crate) parked: Parked<Entry<C>>,
    pub(crate) waiters: Waiters<C, E>,
    closed: AtomicBool,
}

/// What the returner's half of the handshake saw once its resource was
/// published: what the caller must do next.
#[must_use = "a waiter or a close may be left waiting"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Then {
    /// The pool is closed: close what is idle (a close may have missed the
    /// resource just published) and wake a drain.
    pub(crate) closed: bool,
    /// Somebody waits: serve them ([`Core::serve`]).
    pub(crate) waiting: bool,
}

/// A connection [`Core::take_fast`] took.
pub(crate) struct FastTake<C> {
    pub(crate) entry: Entry<C>,
    /// The state word it read: the caller decides its optional steps from
    /// the same load.
    pub(crate) word: usize,
    /// The take is counted already (`IdleStore::pop_counted`).
    pub(crate) counted: bool,
    /// The taking thread's number (`thread_number`), for whatever else
    /// the checkout keeps per thread: looked up once.
    pub(crate) thread: usize,
}

/// What became of a connection offered to [`Core::store`].
#[must_use = "a connection handed back must be closed or stored"]
pub(crate) enum Stored<C> {
    /// In the idle store; carry out `Then`.
    Kept(Then),
    /// The pool is closed: close it and give its slot back
    /// ([`Core::release_slot`]).
    Closed(Entry<C>),
    /// Over a lowered `max_size`: its slot is already given back; close it.
    Surplus(Entry<C>),
    /// Somebody waits, or a flag of `slow_if` is set (in `word`, the state
    /// word it read): the caller takes the general route
    /// ([`Core::hand_over`], then [`Core::store_idle`]).
    Slow { entry: Entry<C>, word: usize },
    /// The idle store is full (unreachable while `max_size` is at most its
    /// capacity): close it and give its slot back.
    Full(Entry<C>),
}

impl<C, E> Core<C, E> {
    /// A core bounded by `max_size`, with room for `idle_capacity` idle
    /// connections, in last-in-first-out order if `lifo`, and the pool's
    /// own state-word flags `flags` set.
    pub(crate) fn new(max_size: usize, idle_capacity: usize, lifo: bool, flags: u32) -> Self {
        let waiters = Waiters::new();
        waiters.set_flags(u32::MAX, flags & !CLOSED);
        Core {
            slots: CachePadded::new(Slots::new(max_size)),
            idle: IdleStore::new(idle_capacity, lifo),
            parked: Parked::new(),
            waiters,
            closed: AtomicBool::new(false),
        }
    }

    /// The state word: waiters and flags, 0 on the plain path.
    #[inline]
    pub(crate) fn word(&self) -> usize {
        self.waiters.word()
    }

    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The lock-free checkout: an idle connection if nobody waits (first
    /// come, first served) and the pool is open.
    #[inline]
    pub(crate) fn take_fast(&self) -> Option<FastTake<C>> {
        let word = self.word();
        if waiting_in(word) || flags_in(word, CLOSED) {
            return None;
        }
        let thread = crate::thread_number::thread_number();
        let (entry, counted) = self.idle.pop_counted(thread)?;
        Some(FastTake {
            entry,
            word,
            counted,
            thread,
        })
    }

    /// Offers a connection the pool keeps: into the idle store (into this
    /// thread's slot and stamped last used at `returned` when its user gave
    /// it back), then the returner's half of the handshake. Anything else
    /// (closed, surplus, somebody waits, a flag of `slow_if` set) is handed
    /// back with what to do.
    #[inline]
    pub(crate) fn store(
        &self,
        mut entry: Entry<C>,
        returned: Option<u64>,
        slow_if: u32,
    ) -> Stored<C> {
        // One load for closed, waiters and the caller's flags.
        let word = self.word();
        if flags_in(word, CLOSED) {
            return Stored::Closed(entry);
        }
        if self.slots.try_shed() {
            return Stored::Surplus(entry);
        }
        if waiting_in(word) || flags_in(word, slow_if) {
            // Stamped now, off the common path.
            if let Some(now) = returned {
                entry.last_used = now;
            }
            return Stored::Slow { entry, word };
        }
        let pushed = match returned {
            // Stamped where it lands: see `IdleStore::push_returned`.
            Some(now) => self
                .idle
                .push_returned(entry, |entry| entry.last_used = now),
            None => self.idle.push(entry).map(|()| Landed::Shared),
        };
        self.after_push(pushed)
    }

    /// Gives `entry` to the oldest waiter (`None`: one took it), or hands
    /// it back if nobody waits.
    #[inline]
    pub(crate) fn hand_over(&self, entry: Entry<C>) -> Option<Entry<C>> {
        match self.waiters.count() {
            0 => Some(entry),
            _ => self.waiters.hand_over(entry),
        }
    }

    /// The general route's end: `entry` (already stamped) into the idle
    /// store, as a return if `returned`, then the handshake. Never
    /// [`Stored::Slow`].
    pub(crate) fn store_idle(&self, entry: Entry<C>, returned: bool) -> Stored<C> {
        let pushed = match returned {
            true => self.idle.push_returned(entry, |_| {}),
            false => self.idle.push(entry).map(|()| Landed::Shared),
        };
        self.after_push(pushed)
    }

    #[inline]
    fn after_push(&self, pushed: Result<Landed, Entry<C>>) -> Stored<C> {
        match pushed {
            Ok(Landed::Filled) => Stored::Kept(self.published_by_fill()),
            Ok(Landed::Shared) => Stored::Kept(self.published()),
            Err(entry) => Stored::Full(entry),
        }
    }

    /// Parks a connection for its recycle step (the caller checked the
    /// pool is open), then the handshake, as after a push to idle.
    pub(crate) fn park(&self, entry: Entry<C>) -> Then {
        self.parked.push(entry);
        self.published()
    }

    /// Gives a slot back, then the handshake.
    #[inline]
    pub(crate) fn release_slot(&self) -> Then {
        self.slots.release();
        self.published()
    }

    /// The returner's half of the handshake, after a resource (an idle or
    /// parked connection, a free slot, entries a pass put back) was
    /// published: pairs with the fence in
    /// `Waiters::register` (a waiter that came after our count check) and
    /// with the one in [`close`](Core::close) (a close that missed our
    /// publication). The other side sees our resource, or we see its count
    /// or flag.
    #[inline]
    pub(crate) fn published(&self) -> Then {
        // Left out only to prove the models catch its absence (`.ci/run`).
        #[cfg(not(ringpool_broken_handshake))]
        fence(Ordering::SeqCst);
        Then {
            closed: self.closed.load(Ordering::Relaxed),
            waiting: self.waiters.count() != 0,
        }
    }

    /// The returner's half of the handshake after a fill of its thread's
    /// slot: that fill's compare-and-swap is `SeqCst`, and so are these
    /// loads, so the `SeqCst` order that forbids both sides missing each
    /// other holds without a fence (see `core/mod.rs`). A new waiter or a
    /// close that scans after its own fence sees the slot at least `BUSY`
    /// and waits the fill out (`IdleStore::pop_settled`), or we see its
    /// count or flag here.
    #[inline]
    pub(crate) fn published_by_fill(&self) -> Then {
        Then {
            closed: self.closed.load(Ordering::SeqCst),
            waiting: self.waiters.count_seq_cst() != 0,
        }
    }

    /// The handshake after publishing what only a waiter can use (a dial
    /// ended, the dial gate reopened): no connection was stored, so a close
    /// has nothing to miss and only the waiters are read. Whether somebody
    /// waits.
    #[inline]
    pub(crate) fn published_to_waiters(&self) -> bool {
        fence(Ordering::SeqCst);
        self.waiters.count() != 0
    }

    /// Serves waiters in arrival order: idle connections first, then
    /// parked ones (their takers run the recycle step), then free slots
    /// while `may_dial` says a dial may start.
    pub(crate) fn serve(&self, mut may_dial: impl FnMut() -> bool) {
        self.waiters.serve(|| self.next_grant(&mut may_dial));
    }

    /// An idle connection, else a parked one, else a free slot if
    /// `may_dial`.
    pub(crate) fn next_grant(&self, may_dial: impl FnOnce() -> bool) -> Option<Grant<C>> {
        if let Some(entry) = self.take_idle() {
            return Some(Grant::Conn(entry));
        }
        (may_dial() && self.slots.try_reserve()).then_some(Grant::Slot)
    }

    /// Any idle connection, else a parked one.
    #[inline]
    pub(crate) fn take_idle(&self) -> Option<Entry<C>> {
        // Settled: this is the scan of a new waiter or of a close, which
        // must not skip a slot a returner is filling (`published_by_fill`).
        self.idle.pop_settled().or_else(|| self.parked.pop())
    }

    /// Closes the core: sets the flag (true the first time), fails every
    /// waiter with `Outcome::Closed`. The caller then closes what is idle
    /// ([`take_idle`](Core::take_idle)): a returner that published before
    /// the flag was visible is seen there, or sees the flag itself.
    pub(crate) fn close(&self) -> bool {
        // SeqCst with the fence below.
        let first = !self.closed.swap(true, Ordering::SeqCst);
        // The hot paths' view of it (they meet the flag itself where it
        // counts).
        self.waiters.set_flags(CLOSED, CLOSED);
        fence(Ordering::SeqCst);
        self.waiters.settle_all(|| Outcome::Closed);
        first
    }

    /// Marks the core closed without the handshake, for a pool being
    /// dropped (nothing else can reach it).
    pub(crate) fn mark_closed(&mut self) {
        self.closed.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;

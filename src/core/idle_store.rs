//! Where idle connections live: a small set of per-thread slots in front of
//! the shared lock-free queue, so a thread that returns a connection gets
//! that same warm connection back at its next checkout (last in, first
//! out), while the others wait in the shared queue from the cold end.
//!
//! Each thread is assigned one slot (threads beyond the slot count share
//! them). A slot is one entry behind a state word, `EMPTY`, `BUSY` or
//! `FULL`: a return fills its thread's slot by a compare-and-swap from
//! `EMPTY` to `BUSY`, writes the entry and stores `FULL`; a checkout empties
//! it by a compare-and-swap from `FULL` to `BUSY`, reads the entry and
//! stores `EMPTY`. Neither ever waits: a slot in the other state (or busy)
//! sends the caller to the shared queue. That is one atomic
//! read-modify-write per fill and per take, where a lock would cost two and
//! a count of fills a third; the checkout fast path's hit count is a plain
//! load and store beside the state, by the thread that holds the slot.
//! Every other reader (waiters, maintenance, close, `len`) can reach every
//! slot, so the store as a whole is still the
//! single source of truth: `pop` takes the caller's own slot, then the
//! shared queue, then any other slot.
//!
//! The lost-wake-up handshake (`core/mod.rs`) covers the slots as it covers
//! the queue, with the fill's `SeqCst` compare-and-swap as the returner's
//! store: a returner fills its slot, then reads the waiter count (`SeqCst`,
//! no fence); a waiter raises the count, fences, then scans
//! ([`IdleStore::pop_settled`]). If the waiter's scan comes before the
//! compare-and-swap, the returner sees its count and dispatches. Otherwise
//! the scan sees the slot `BUSY` or later; it waits out a `BUSY` slot (its
//! filler stores `FULL`, or its taker `EMPTY`, without blocking) and then
//! takes the entry or finds it taken.

use crossbeam_utils::CachePadded;

use super::idle_stack::{IdleStack, List};
use crate::sync::plain::AtomicU64 as PlainU64;
use crate::sync::{AtomicBool, AtomicU32, AtomicUsize, IdleQueue, Ordering, UnsafeCell};

/// Slots per pool: enough for the cores of a typical server; threads beyond
/// share them.
#[cfg(not(ringpool_loom))]
const SLOTS: usize = 16;
/// Two under loom: the models' threads then share and steal slots, and
/// every scan stays within the model checker's branch budget.
#[cfg(ringpool_loom)]
const SLOTS: usize = 2;

/// Holds no entry.
const EMPTY: u32 = 0;
/// Being filled or emptied by the thread that set it.
const BUSY: u32 = 1;
/// Holds an entry.
const FULL: u32 = 2;

struct Slot<T> {
    /// `EMPTY`, `BUSY` or `FULL`.
    state: AtomicU32,
    /// Takes the checkout fast path counted here ([`IdleStore::pop_counted`]):
    /// written only by the thread that holds the slot `BUSY`, so a load and
    /// a store, not a read-modify-write, on the line the take just won.
    /// Statistics, outside the protocol: a plain atomic, not the model
    /// checker's.
    takes: PlainU64,
    /// Written only by the thread that moved `state` to `BUSY`.
    entry: UnsafeCell<Option<T>>,
}

// SAFETY: the entry is only reached by the one thread that won the slot's
// `BUSY` state, and handed between threads through the `Release` stores and
// `Acquire` swaps of that state, so sharing a slot moves a `T` between
// threads, which `T: Send` allows.
unsafe impl<T: Send> Sync for Slot<T> {}

impl<T> Slot<T> {
    /// Puts `value` in if the slot is empty and not busy, and runs
    /// `finish` on it there; else gives both back.
    #[inline]
    fn fill<F: FnOnce(&mut T)>(&self, value: T, finish: F) -> Result<(), (T, F)> {
        // `SeqCst`: this compare-and-swap is the filler's store in the
        // lost-wake-up handshake (see the module doc), so no fence follows.
        if self.state.load(Ordering::Relaxed) != EMPTY
            || self
                .state
                .compare_exchange(EMPTY, BUSY, Ordering::SeqCst, Ordering::Relaxed)
                .is_err()
        {
            return Err((value, finish));
        }
        // The model checker treats a `SeqCst` read-modify-write as
        // acquire-release only; the fence gives its models the order the
        // shipping build has from the `SeqCst` above (and on x86 from the
        // locked instruction itself). Left out only to prove the models
        // catch its absence (`.ci/run`).
        #[cfg(all(ringpool_loom, not(ringpool_broken_handshake)))]
        crate::sync::fence(Ordering::SeqCst);
        // SAFETY: `BUSY` is ours: no other thread reads or writes the
        // entry until we store a new state; the `Acquire` part of the
        // compare-and-swap saw the last taker's `Release`, so its read is
        // done.
        self.entry
            .with_mut(|entry| finish(unsafe { (*entry).insert(value) }));
        self.state.store(FULL, Ordering::Release);
        Ok(())
    }

    /// Takes the entry out if the slot is full and not busy, adding one to
    /// its count of takes if `counted`.
    #[inline]
    fn take(&self, counted: bool) -> Option<T> {
        if self.state.load(Ordering::Relaxed) != FULL
            || self
                .state
                .compare_exchange(FULL, BUSY, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
        {
            return None;
        }
        // SAFETY: `BUSY` is ours, and the `Acquire` above saw the filler's
        // `Release`, so its write is visible and done.
        let value = self.entry.with_mut(|entry| unsafe { (*entry).take() });
        if counted {
            // Ours while `BUSY`; the next holder's `Acquire` sees it.
            let takes = self.takes.load(Ordering::Relaxed);
            self.takes.store(takes + 1, Ordering::Relaxed);
        }
        self.state.store(EMPTY, Ordering::Release);
        value
    }

    /// Takes the entry out if the slot is full, waiting out a `BUSY` state
    /// first: a filler between its compare-and-swap and its `FULL` (or a
    /// taker between its two steps) finishes without blocking. For the
    /// readers the handshake must not let miss a fill (a new waiter's
    /// scan, a close's).
    fn take_settled(&self) -> Option<T> {
        let backoff = crossbeam_utils::Backoff::new();
        loop {
            match self.state.load(Ordering::Acquire) {
                EMPTY => return None,
                // Skipped only to prove the models catch it (`.ci/run`).
                BUSY if cfg!(ringpool_broken_settle) => return None,
                BUSY => crate::sync::snooze(&backoff),
                _ => {
                    if let Some(value) = self.take(false) {
                        return Some(value);
                    }
                }
            }
        }
    }

    /// Puts `value` in place of the entry a full, not busy slot holds, runs
    /// `finish` on it there, and hands the displaced entry back; else gives
    /// `value` and `finish` back.
    #[inline]
    fn replace<F: FnOnce(&mut T)>(&self, value: T, finish: F) -> Result<T, (T, F)> {
        if self
            .state
            .compare_exchange(FULL, BUSY, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err((value, finish));
        }
        let old = self.entry.with_mut(|entry| {
            // SAFETY: `BUSY` is ours, and the `Acquire` above saw the
            // filler's `Release`, so its write is visible and done; nobody
            // else reads or writes the entry until we store `FULL` again.
            let entry = unsafe { &mut *entry };
            let old = entry.take();
            finish(entry.insert(value));
            old
        });
        self.state.store(FULL, Ordering::Release);
        Ok(old.expect("a full slot holds an entry"))
    }

    /// Whether it holds an entry now (a snapshot).
    #[inline]
    fn is_full(&self) -> bool {
        self.state.load(Ordering::Acquire) == FULL
    }

    /// Its counted takes so far (a snapshot).
    fn takes(&self) -> u64 {
        self.takes.load(Ordering::Relaxed)
    }
}

/// Where [`IdleStore::push_returned`] put a connection: what the
/// returner's half of the handshake then needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Landed {
    /// In this thread's slot, by a `SeqCst` compare-and-swap: the
    /// handshake needs no fence (`Core::published_by_fill`).
    Filled,
    /// In a shared store (or in the slot in place of another entry, which
    /// went to a shared store): the handshake fences (`Core::published`).
    Shared,
}

/// Idle connections: per-thread slots in front of the shared stores.
pub(crate) struct IdleStore<T> {
    slots: Box<[CachePadded<Slot<T>>]>,
    /// First in, first out: every return when the order is so; otherwise
    /// the cold end, below the stack (refills, connections maintenance
    /// checked and gave back).
    queue: IdleQueue<T>,
    /// Last in, first out ([`List::Top`]): what a return displaced from its
    /// thread's slot (or could not put there), when the order is so; and
    /// ([`List::Aside`]) what a pass keeps from the slots and the stack,
    /// until the pass ends and puts it back on top in its order (see
    /// [`Pass`]).
    stack: IdleStack<T>,
    /// Whether returns fill their thread's slot (`IdleOrder::Lifo`); when
    /// not, every return goes to the shared queue (first in, first out).
    lifo: AtomicBool,
    /// Passes now taking from the slots and the stack: while any is, what
    /// is put back goes aside, not to the queue (see [`Pass`]).
    sorting: AtomicUsize,
}

/// This thread's slot index (the same in every pool).
#[inline]
fn own_slot() -> usize {
    slot_of(crate::thread_number::thread_number())
}

/// The slot index of the thread numbered `thread`.
#[inline]
fn slot_of(thread: usize) -> usize {
    thread % SLOTS
}

impl<T> IdleStore<T> {
    pub(crate) fn new(capacity: usize, lifo: bool) -> Self {
        IdleStore {
            slots: (0..SLOTS)
                .map(|_| {
                    CachePadded::new(Slot {
                        state: AtomicU32::new(EMPTY),
                        takes: PlainU64::new(0),
                        entry: UnsafeCell::new(None),
                    })
                })
                .collect(),
            queue: IdleQueue::new(capacity),
            stack: IdleStack::new(capacity),
            lifo: AtomicBool::new(lifo),
            sorting: AtomicUsize::new(0),
        }
    }

    /// Switches the idle order (hot-swapped with the config). Entries
    /// already stored stay reachable either way.
    pub(crate) fn set_lifo(&self, lifo: bool) {
        self.lifo.store(lifo, Ordering::Relaxed);
    }

    /// A connection given back by its user: if the order is last in, first
    /// out, into this thread's slot (displacing the one the slot held onto
    /// the shared stack: the thread's next checkouts get the connections it
    /// returned last, newest first), else the shared queue. `finish` runs
    /// on the entry where it lands, before anybody else can see it (the
    /// return stamps it there: written before the move, the stamp would
    /// stall the move's wider loads). `Err` gives back what could not be
    /// stored if the store is full.
    #[inline]
    pub(crate) fn push_returned(&self, value: T, finish: impl FnOnce(&mut T)) -> Result<Landed, T> {
        let mut value = value;
        if self.lifo.load(Ordering::Relaxed) {
            let slot = &self.slots[own_slot()];
            return match slot.fill(value, finish) {
                Ok(()) => Ok(Landed::Filled),
                Err((back, finish)) => match slot.replace(back, finish) {
                    // The displaced entry was stamped when it went in.
                    Ok(displaced) => self
                        .stack
                        .push(List::Top, displaced)
                        .map(|()| Landed::Shared),
                    Err((mut back, finish)) => {
                        // Busy: another thread is at this slot right now.
                        finish(&mut back);
                        self.stack.push(List::Top, back).map(|()| Landed::Shared)
                    }
                },
            };
        }
        finish(&mut value);
        self.queue.push(value).map(|()| Landed::Shared)
    }

    /// A connection that was not just used (a refill, one maintenance
    /// checked): it must not displace a thread's warm connection, so it
    /// goes to the cold end, the shared queue (or aside while a pass takes
    /// from the slots and the stack: see [`Pass`]).
    #[inline]
    pub(crate) fn push(&self, value: T) -> Result<(), T> {
        if self.sorting.load(Ordering::Relaxed) != 0 {
            return self.stack.push(List::Aside, value);
        }
        self.queue.push(value)
    }

    /// [`pop`](IdleStore::pop) for the readers the handshake must not let
    /// miss a fill (a new waiter's scan, a close's): a slot caught `BUSY`
    /// is waited out (see `Slot::take_settled`), not skipped.
    pub(crate) fn pop_settled(&self) -> Option<T> {
        let own = own_slot();
        if let Some(value) = self.slots[own].take_settled() {
            return Some(value);
        }
        self.pop_past(own, Slot::take_settled)
    }

    /// This thread's slot first; then, last in first out, the shared stack
    /// and then the queue, or, first in first out, the queue and then the
    /// stack; then any other slot.
    #[inline]
    pub(crate) fn pop(&self) -> Option<T> {
        let own = own_slot();
        if let Some(value) = self.take(own) {
            return Some(value);
        }
        self.pop_shared(own)
    }

    /// [`pop`](IdleStore::pop) that counts a take from the caller's own
    /// slot in the slot itself (see [`taken_from_slots`]); `true` with an
    /// entry taken so, `false` with one from anywhere else (the caller
    /// counts it). The checkout fast path's pop, on the thread numbered
    /// `thread` (`thread_number`, looked up once by the caller for the
    /// whole checkout).
    ///
    /// [`taken_from_slots`]: IdleStore::taken_from_slots
    #[inline]
    pub(crate) fn pop_counted(&self, thread: usize) -> Option<(T, bool)> {
        let own = slot_of(thread);
        if let Some(value) = self.slots[own].take(true) {
            return Some((value, true));
        }
        self.pop_shared(own).map(|value| (value, false))
    }

    /// The counted takes of every slot so far (a snapshot).
    pub(crate) fn taken_from_slots(&self) -> u64 {
        self.slots.iter().map(|slot| slot.takes()).sum()
    }

    /// `pop` past the caller's own slot (`own`).
    #[inline]
    fn pop_shared(&self, own: usize) -> Option<T> {
        self.pop_past(own, |slot| slot.take(false))
    }

    /// The shared stores in the idle order, then every slot but `own`,
    /// each emptied by `take`.
    #[inline]
    fn pop_past(&self, own: usize, take: impl Fn(&Slot<T>) -> Option<T>) -> Option<T> {
        let shared = if self.lifo.load(Ordering::Relaxed) {
            self.stack
                .pop(List::Top)
                .or_else(|| self.stack.pop(List::Aside))
                .or_else(|| self.queue.pop())
        } else {
            self.queue
                .pop()
                .or_else(|| self.stack.pop(List::Top))
                .or_else(|| self.stack.pop(List::Aside))
        };
        if shared.is_some() {
            return shared;
        }
        (1..SLOTS).find_map(|offset| take(&self.slots[(own + offset) % SLOTS]))
    }

    /// A pass over every entry held now, each taken once, for the caller
    /// to close or put back with [`push`](IdleStore::push) at once (so
    /// concurrent gets keep finding it) in a way that keeps the store's
    /// order: see [`Pass`].
    pub(crate) fn pass(&self) -> Pass<'_, T> {
        Pass {
            store: self,
            queued: self.queue.len(),
            next_slot: 0,
            sorting: false,
        }
    }

    /// Empties slot `index` if it holds an entry and is not busy.
    #[inline]
    fn take(&self, index: usize) -> Option<T> {
        self.slots[index].take(false)
    }

    /// Entries held: the shared stores' plus the full slots' (a snapshot,
    /// exact when nothing moves).
    pub(crate) fn len(&self) -> usize {
        let cached = self.slots.iter().filter(|slot| slot.is_full()).count();
        self.queue.len() + self.stack.len(List::Top) + self.stack.len(List::Aside) + cached
    }

    pub(crate) fn capacity(&self) -> usize {
        self.queue.capacity()
    }
}

/// A pass over an [`IdleStore`] (see [`IdleStore::pass`]).
///
/// While it moves entries from aside back to the stack as it ends, an
/// entry is in neither for a moment: the pool layer runs the returner's
/// half of the lost-wake-up handshake after it drops
/// (`pool::pass::IdlePass`).
///
/// It takes the queue's entries first, as many as it held when the pass
/// began, oldest first: each kept one goes back to the queue's tail, so the
/// queue comes out of the pass in its order. Then it takes from the slots
/// and the stack, the newest first; while it does, what is put back goes
/// aside, onto a second stack, which reverses it; when the pass ends it
/// moves the aside entries back onto the stack, which reverses them again,
/// so the newest is back on top. Entries stay reachable by checkouts
/// throughout. A pass of [`len`](IdleStore::len) steps meets every entry
/// once when nothing else moves.
pub(crate) struct Pass<'a, T> {
    store: &'a IdleStore<T>,
    /// Queue entries still to take before the slots and the stack.
    queued: usize,
    next_slot: usize,
    /// Whether this pass raised `sorting`.
    sorting: bool,
}

impl<T> Pass<'_, T> {
    /// The next entry of the pass, if any is left.
    pub(crate) fn take(&mut self) -> Option<T> {
        let store = self.store;
        while self.queued > 0 {
            self.queued -= 1;
            if let Some(value) = store.queue.pop() {
                return Some(value);
            }
        }
        if !self.sorting && store.lifo.load(Ordering::Relaxed) {
            // First in, first out, what is kept goes to the queue's tail,
            // behind what this pass took from it already.
            self.sorting = true;
            store.sorting.fetch_add(1, Ordering::Relaxed);
        }
        while self.next_slot < SLOTS {
            let index = self.next_slot;
            self.next_slot += 1;
            if let Some(value) = store.take(index) {
                return Some(value);
            }
        }
        store.stack.pop(List::Top)
    }
}

impl<T> Pass<'_, T> {
    /// Ends the pass: moves what it kept aside back onto the stack, in its
    /// order. Whether it moved anything (each such entry was out of the
    /// store for a moment). Called again, or by `Drop`, it does nothing.
    pub(crate) fn finish(&mut self) -> bool {
        if !self.sorting {
            return false;
        }
        self.sorting = false;
        let store = self.store;
        store.sorting.fetch_sub(1, Ordering::Relaxed);
        let mut moved = false;
        while let Some(value) = store.stack.pop(List::Aside) {
            moved = true;
            // The node the pop freed is there for the push (or another
            // push took it, and then the queue has room: the store never
            // holds more than its capacity); never lose an entry anyway.
            if let Err(value) = store.stack.push(List::Top, value)
                && let Err(value) = store.queue.push(value)
            {
                let _ = store.stack.push(List::Aside, value);
                break;
            }
        }
        moved
    }
}

impl<T> Drop for Pass<'_, T> {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests;

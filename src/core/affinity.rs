//! Where idle connections live: a small set of per-thread slots in front of
//! the shared lock-free queue, so a thread that returns a connection gets
//! that same warm connection back at its next checkout (last in, first
//! out), while the others wait in the shared queue from the cold end.
//!
//! Each thread is assigned one slot (threads beyond the slot count share
//! them). A slot is a try-lock over one entry: a return fills its thread's
//! slot if it is empty, a checkout empties it, and neither ever waits: a
//! slot that is busy or in the other state sends the caller to the shared
//! queue. Every other reader (waiters, maintenance, close, `len`) can reach
//! every slot, so the store as a whole is still the single source of truth:
//! `pop` takes the caller's own slot, then the shared queue, then any other
//! slot.
//!
//! The lost-wake-up handshake (`core/mod.rs`) covers the slots as it covers
//! the queue: a returner fills the slot and *then* counts the fill
//! (`Release`, after the lock is released), then fences and reads the
//! waiter count; a waiter that sees the fill (`Acquire`) also sees the lock
//! released, so its try-lock fails only if another thread holds the lock
//! at that moment: a taker (which then has the entry) or a returner
//! probing a full slot (which then publishes its own connection and, seeing
//! the waiter, dispatches, its own slot first).
//!
//! A slot counts its fills and its takes instead of keeping a flag: a take
//! can land between a fill and the fill's count, and a flag lowered by the
//! take would then be raised after it, for good. The counts only disagree
//! while a fill is being counted.

use crossbeam_utils::CachePadded;

use super::sync::{AtomicBool, AtomicUsize, IdleQueue, Mutex, Ordering};

/// Slots per pool: enough for the cores of a typical server; threads beyond
/// share them.
#[cfg(not(ringpool_loom))]
const SLOTS: usize = 16;
/// Two under loom: the models' threads then share and steal slots, and
/// every scan stays within the model checker's branch budget.
#[cfg(ringpool_loom)]
const SLOTS: usize = 2;

struct Slot<T> {
    /// Entries put in, counted after the lock is released.
    fills: AtomicUsize,
    /// Entries taken out, counted under the lock.
    takes: AtomicUsize,
    entry: Mutex<Option<T>>,
}

impl<T> Slot<T> {
    /// Whether it may hold an entry: a hint for scans; the lock decides.
    #[inline]
    fn maybe_full(&self) -> bool {
        self.fills.load(Ordering::Acquire) != self.takes.load(Ordering::Relaxed)
    }
}

/// Idle connections: per-thread slots in front of the shared queue.
pub(crate) struct IdleStore<T> {
    slots: Box<[CachePadded<Slot<T>>]>,
    queue: IdleQueue<T>,
    /// Whether returns fill their thread's slot (`IdleOrder::Lifo`); when
    /// not, every return goes to the shared queue (first in, first out).
    lifo: AtomicBool,
}

/// This thread's slot index (the same in every pool).
#[inline]
fn own_slot() -> usize {
    crate::thread_number::thread_number() % SLOTS
}

impl<T> IdleStore<T> {
    pub(crate) fn new(capacity: usize, lifo: bool) -> Self {
        IdleStore {
            slots: (0..SLOTS)
                .map(|_| {
                    CachePadded::new(Slot {
                        fills: AtomicUsize::new(0),
                        takes: AtomicUsize::new(0),
                        entry: Mutex::new(None),
                    })
                })
                .collect(),
            queue: IdleQueue::new(capacity),
            lifo: AtomicBool::new(lifo),
        }
    }

    /// Switches the idle order (hot-swapped with the config). Entries
    /// already in slots stay reachable either way.
    pub(crate) fn set_lifo(&self, lifo: bool) {
        self.lifo.store(lifo, Ordering::Relaxed);
    }

    /// A connection given back by its user: into this thread's slot if the
    /// order is last in, first out and the slot is free, else the shared
    /// queue. `Err` gives it back if the queue is full.
    #[inline]
    pub(crate) fn push_returned(&self, value: T) -> Result<(), T> {
        if !self.lifo.load(Ordering::Relaxed) {
            return self.queue.push(value);
        }
        let slot = &self.slots[own_slot()];
        if slot.maybe_full() {
            return self.queue.push(value);
        }
        let Some(mut held) = slot.entry.try_lock() else {
            return self.queue.push(value);
        };
        if held.is_some() {
            drop(held);
            return self.queue.push(value);
        }
        *held = Some(value);
        drop(held);
        // After the lock is released: see the module documentation.
        slot.fills.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// Into the shared queue, whatever the order (maintenance giving back
    /// what it checked, a refill): those must not displace a thread's warm
    /// connection, nor be found again by the same scan.
    #[inline]
    pub(crate) fn push(&self, value: T) -> Result<(), T> {
        self.queue.push(value)
    }

    /// This thread's slot, then the shared queue, then any other slot.
    #[inline]
    pub(crate) fn pop(&self) -> Option<T> {
        let own = own_slot();
        if let Some(value) = self.take(own) {
            return Some(value);
        }
        if let Some(value) = self.queue.pop() {
            return Some(value);
        }
        (1..SLOTS).find_map(|offset| self.take((own + offset) % SLOTS))
    }

    /// A pass over every entry held now, each taken once: the thread slots
    /// first (each visited once), then the shared queue, from its oldest.
    /// The caller puts what it keeps back with [`push`](IdleStore::push),
    /// at the queue's tail, so a pass of [`len`](IdleStore::len) steps
    /// meets every entry once when nothing else moves. (Plain `pop` takes
    /// from the queue first: while a pass keeps the queue filled, it never
    /// reaches the slots.)
    pub(crate) fn pass(&self) -> Pass<'_, T> {
        Pass {
            store: self,
            next_slot: 0,
        }
    }

    /// Empties slot `index` if it holds an entry and is not busy.
    #[inline]
    fn take(&self, index: usize) -> Option<T> {
        let slot = &self.slots[index];
        if !slot.maybe_full() {
            return None;
        }
        let mut held = slot.entry.try_lock()?;
        let value = held.take()?;
        slot.takes.fetch_add(1, Ordering::Relaxed);
        Some(value)
    }

    /// Entries held: the queue's plus the full slots' (a snapshot, exact
    /// when nothing moves).
    pub(crate) fn len(&self) -> usize {
        let cached = self.slots.iter().filter(|slot| slot.maybe_full()).count();
        self.queue.len() + cached
    }

    pub(crate) fn capacity(&self) -> usize {
        self.queue.capacity()
    }
}

/// A pass over an [`IdleStore`] (see [`IdleStore::pass`]).
pub(crate) struct Pass<'a, T> {
    store: &'a IdleStore<T>,
    next_slot: usize,
}

impl<T> Pass<'_, T> {
    /// The next entry of the pass, if any is left.
    pub(crate) fn take(&mut self) -> Option<T> {
        while self.next_slot < SLOTS {
            let index = self.next_slot;
            self.next_slot += 1;
            if let Some(value) = self.store.take(index) {
                return Some(value);
            }
        }
        self.store.queue.pop()
    }
}

#[cfg(test)]
mod tests {
    use super::IdleStore;
    use crate::core::sync::model;

    #[test]
    fn a_thread_gets_back_what_it_returned_last_and_scans_reach_every_slot() {
        model::check(|| {
            let store = IdleStore::new(8, true);
            store.push(1).unwrap();
            store.push(2).unwrap();
            store.push_returned(3).unwrap();
            assert_eq!(store.len(), 3);
            assert_eq!(store.pop(), Some(3), "its own slot first");
            assert_eq!(store.pop(), Some(1), "then the shared queue, oldest first");
            store.push_returned(4).unwrap();
            assert_eq!(store.pop(), Some(4));
            assert_eq!(store.pop(), Some(2));
            assert_eq!(store.pop(), None);
        });
    }

    #[test]
    fn a_pass_that_puts_back_what_it_keeps_meets_every_entry_once() {
        model::check(|| {
            let store = std::sync::Arc::new(IdleStore::new(8, true));
            // One entry in another thread's slot, three in the queue.
            let other = model::spawn({
                let store = std::sync::Arc::clone(&store);
                move || store.push_returned(9).unwrap()
            });
            other.join().unwrap();
            for value in 1..=3 {
                store.push(value).unwrap();
            }
            let mut met = Vec::new();
            let mut pass = store.pass();
            for _ in 0..store.len() {
                let value = pass.take().unwrap();
                met.push(value);
                store.push(value).unwrap(); // kept
            }
            met.sort();
            // `pop` alone would have cycled the queue and never reached 9.
            assert_eq!(met, [1, 2, 3, 9]);
        });
    }

    #[test]
    fn fifo_order_uses_the_shared_queue_alone() {
        model::check(|| {
            let store = IdleStore::new(8, false);
            store.push_returned(1).unwrap();
            store.push_returned(2).unwrap();
            assert_eq!(store.pop(), Some(1));
            assert_eq!(store.pop(), Some(2));
        });
    }

    #[test]
    fn an_entry_in_one_threads_slot_is_taken_by_another_exactly_once() {
        model::check(|| {
            let store = std::sync::Arc::new(IdleStore::new(4, true));
            let returner = model::spawn({
                let store = std::sync::Arc::clone(&store);
                move || store.push_returned(7).unwrap()
            });
            let taker = model::spawn({
                let store = std::sync::Arc::clone(&store);
                move || store.pop()
            });
            returner.join().unwrap();
            let taken = taker.join().unwrap();
            let rest = store.pop();
            // Exactly one of them has it; nothing is lost or duplicated.
            assert_eq!([taken, rest].iter().filter(|v| **v == Some(7)).count(), 1);
            assert_eq!(store.pop(), None);
        });
    }
}

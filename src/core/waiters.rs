//! The first-in, first-out queue of gets waiting for a connection.
//!
//! Invariants:
//! - `count` equals the number of waiters in `queue` (both change under the
//!   queue lock); the hot path reads `count` to see whether anybody waits.
//! - A waiter is in `queue` exactly until it is served, failed, closed, timed
//!   out or withdrawn; whoever removes it decides its outcome, under the
//!   queue lock, so a resource handed to a waiter is owned by exactly one
//!   party: the waiter's `get`, or (if that `get` was dropped) the withdrawer,
//!   which gives it back to the pool.
//! - Waiters are served strictly in arrival order: only the front is served.
//! - Wakers are invoked after the queue lock is released.

use std::collections::VecDeque;
use std::sync::Arc as StdArc;
use std::task::{Context, Poll, Waker};

use crossbeam_utils::CachePadded;

use super::idle::Entry;
use super::sync::{Arc, AtomicUsize, Mutex, Ordering, fence};

/// What a waiter (or any get) holds the right to: an idle connection, or an
/// empty slot it may dial into.
pub(crate) enum Grant<C> {
    Conn(Entry<C>),
    Slot,
}

/// How a wait ended.
pub(crate) enum Outcome<C, E> {
    Granted(Grant<C>),
    /// A dial failed fatally with this error.
    Failed(StdArc<E>),
    /// The breaker opened: the target is down.
    Unavailable,
    Closed,
    TimedOut,
}

pub(crate) struct Waiter<C, E> {
    /// When this waiter's acquire timeout expires (ns since the epoch).
    deadline: u64,
    cell: Mutex<Cell<C, E>>,
}

struct Cell<C, E> {
    outcome: Option<Outcome<C, E>>,
    waker: Option<Waker>,
}

impl<C, E> Waiter<C, E> {
    fn new(deadline: u64) -> Self {
        Waiter {
            deadline,
            cell: Mutex::new(Cell {
                outcome: None,
                waker: None,
            }),
        }
    }

    /// Records the outcome; returns the waker to call once locks are released.
    #[must_use]
    fn settle(&self, outcome: Outcome<C, E>) -> Option<Waker> {
        let mut cell = self.cell.lock();
        debug_assert!(cell.outcome.is_none(), "waiter settled twice");
        cell.outcome = Some(outcome);
        cell.waker.take()
    }

    /// Ready once the waiter has been settled.
    pub(crate) fn poll(&self, cx: &mut Context<'_>) -> Poll<Outcome<C, E>> {
        let mut cell = self.cell.lock();
        match cell.outcome.take() {
            Some(outcome) => Poll::Ready(outcome),
            None => {
                match &mut cell.waker {
                    Some(waker) if waker.will_wake(cx.waker()) => {}
                    slot => *slot = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }

    fn take_outcome(&self) -> Option<Outcome<C, E>> {
        self.cell.lock().outcome.take()
    }
}

/// Wakers collected under the lock and invoked after it is released.
#[derive(Default)]
struct Wakeups {
    first: Option<Waker>,
    rest: Vec<Waker>,
}

impl Wakeups {
    fn push(&mut self, waker: Option<Waker>) {
        let Some(waker) = waker else { return };
        match self.first {
            None => self.first = Some(waker),
            Some(_) => self.rest.push(waker),
        }
    }

    fn wake(self) {
        self.first
            .into_iter()
            .chain(self.rest)
            .for_each(Waker::wake);
    }
}

type Queue<C, E> = Mutex<VecDeque<Arc<Waiter<C, E>>>>;

pub(crate) struct Waiters<C, E> {
    queue: CachePadded<Queue<C, E>>,
    /// Read by every checkout: kept off the queue lock's cache line.
    /// Raised in `register` before the handshake's fence; lowered under the
    /// queue lock when a waiter leaves. A lowering pairs with nothing: a
    /// returner that misses it only dispatches to a queue with one waiter
    /// fewer, which the lock makes harmless.
    count: CachePadded<AtomicUsize>,
}

impl<C, E> Waiters<C, E> {
    pub(crate) fn new() -> Self {
        Waiters {
            queue: CachePadded::new(Mutex::new(VecDeque::new())),
            count: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    /// How many gets wait. `Relaxed` is enough for the fast path's FIFO
    /// check; the lost-wakeup argument pairs a `SeqCst` fence with it.
    #[inline]
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Queues a new waiter at the back (unless `refuse()` says the pool is
    /// closed, checked under the lock so `settle_all` cannot miss it), then,
    /// still under the lock, serves the queue from resources `next_grant`
    /// finds: the waiter's half of the lost-wakeup handshake.
    pub(crate) fn register(
        &self,
        deadline: u64,
        refuse: impl FnOnce() -> bool,
        next_grant: impl FnMut() -> Option<Grant<C>>,
    ) -> Option<Arc<Waiter<C, E>>> {
        let waiter = Arc::new(Waiter::new(deadline));
        let queued = Arc::clone(&waiter);
        let mut queue = self.queue.lock();
        if refuse() {
            return None;
        }
        queue.push_back(queued);
        self.count.fetch_add(1, Ordering::SeqCst);
        // The waiter's half of the lost-wake-up handshake (core/mod.rs):
        // pairs with the fence in `handoff::after_publish` and
        // `handoff::reinsert`. Our raised count, or their published
        // resource, is seen by the other side.
        fence(Ordering::SeqCst);
        let wakeups = self.serve_locked(&mut queue, next_grant);
        drop(queue);
        wakeups.wake();
        Some(waiter)
    }

    /// Serves waiters from the front while `next_grant` yields resources.
    pub(crate) fn serve(&self, next_grant: impl FnMut() -> Option<Grant<C>>) {
        let mut queue = self.queue.lock();
        let wakeups = self.serve_locked(&mut queue, next_grant);
        drop(queue);
        wakeups.wake();
    }

    fn serve_locked(
        &self,
        queue: &mut VecDeque<Arc<Waiter<C, E>>>,
        mut next_grant: impl FnMut() -> Option<Grant<C>>,
    ) -> Wakeups {
        let mut wakeups = Wakeups::default();
        while !queue.is_empty() {
            let Some(grant) = next_grant() else { break };
            let waiter = queue.pop_front().expect("queue is not empty");
            self.count.fetch_sub(1, Ordering::SeqCst);
            wakeups.push(waiter.settle(Outcome::Granted(grant)));
        }
        wakeups
    }

    /// Gives `entry` to the front waiter, or returns it if nobody waits.
    pub(crate) fn hand_over(&self, entry: Entry<C>) -> Option<Entry<C>> {
        let mut queue = self.queue.lock();
        let Some(waiter) = queue.pop_front() else {
            return Some(entry);
        };
        self.count.fetch_sub(1, Ordering::SeqCst);
        let waker = waiter.settle(Outcome::Granted(Grant::Conn(entry)));
        drop(queue);
        if let Some(waker) = waker {
            waker.wake();
        }
        None
    }

    /// Settles every waiter with `outcome()` and empties the queue.
    pub(crate) fn settle_all(&self, mut outcome: impl FnMut() -> Outcome<C, E>) {
        let mut queue = self.queue.lock();
        let mut wakeups = Wakeups::default();
        for waiter in queue.drain(..) {
            self.count.fetch_sub(1, Ordering::SeqCst);
            wakeups.push(waiter.settle(outcome()));
        }
        drop(queue);
        wakeups.wake();
    }

    /// Times out every waiter whose deadline is at or before `now`; returns
    /// the earliest deadline still queued.
    pub(crate) fn expire(&self, now: u64) -> Option<u64> {
        let mut queue = self.queue.lock();
        let mut wakeups = Wakeups::default();
        let mut earliest = None::<u64>;
        queue.retain(|waiter| {
            if waiter.deadline <= now {
                self.count.fetch_sub(1, Ordering::SeqCst);
                wakeups.push(waiter.settle(Outcome::TimedOut));
                false
            } else {
                earliest = Some(earliest.map_or(waiter.deadline, |e| e.min(waiter.deadline)));
                true
            }
        });
        drop(queue);
        wakeups.wake();
        earliest
    }

    /// Wakes every waiter so it re-reads the pool's state (for example to
    /// arm its timer for the dial gate's reopening).
    pub(crate) fn wake_all(&self) {
        let queue = self.queue.lock();
        let mut wakeups = Wakeups::default();
        for waiter in queue.iter() {
            wakeups.push(waiter.cell.lock().waker.clone());
        }
        drop(queue);
        wakeups.wake();
    }

    /// Withdraws `waiter`. If it was still queued it leaves the queue and
    /// `None` is returned; if it had already been settled, its outcome is
    /// returned so the caller can use or give back what it was handed.
    pub(crate) fn withdraw(&self, waiter: &Arc<Waiter<C, E>>) -> Option<Outcome<C, E>> {
        let mut queue = self.queue.lock();
        if let Some(at) = queue.iter().position(|queued| Arc::ptr_eq(queued, waiter)) {
            queue.remove(at);
            self.count.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        drop(queue);
        waiter.take_outcome()
    }
}

#[cfg(test)]
mod tests {
    use super::{Grant, Outcome, Waiters};
    use crate::core::sync::model;
    use std::task::{Context, Poll, Waker};

    type Queue = Waiters<u32, std::io::Error>;

    fn poll(waiter: &super::Waiter<u32, std::io::Error>) -> Poll<Outcome<u32, std::io::Error>> {
        waiter.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn the_front_waiter_is_served_first() {
        model::check(|| {
            let queue = Queue::new();
            let first = queue.register(10, || false, || None).unwrap();
            let second = queue.register(10, || false, || None).unwrap();
            assert_eq!(queue.count(), 2);
            let mut grants = vec![Grant::Slot];
            queue.serve(|| grants.pop());
            assert!(matches!(
                poll(&first),
                Poll::Ready(Outcome::Granted(Grant::Slot))
            ));
            assert!(poll(&second).is_pending());
            assert_eq!(queue.count(), 1);
            assert!(
                queue.withdraw(&second).is_none(),
                "still queued: simply leaves"
            );
            assert_eq!(queue.count(), 0);
        });
    }

    #[test]
    fn withdrawing_a_served_waiter_hands_back_its_grant() {
        model::check(|| {
            let queue = Queue::new();
            let waiter = queue.register(10, || false, || None).unwrap();
            let mut grants = vec![Grant::Slot];
            queue.serve(|| grants.pop());
            assert!(matches!(
                queue.withdraw(&waiter),
                Some(Outcome::Granted(Grant::Slot))
            ));
        });
    }

    #[test]
    fn expiry_times_out_only_due_waiters() {
        model::check(|| {
            let queue = Queue::new();
            let early = queue.register(5, || false, || None).unwrap();
            let late = queue.register(9, || false, || None).unwrap();
            assert_eq!(queue.expire(5), Some(9));
            assert!(matches!(poll(&early), Poll::Ready(Outcome::TimedOut)));
            assert!(poll(&late).is_pending());
            assert_eq!(queue.count(), 1);
            assert_eq!(queue.expire(9), None);
        });
    }

    #[test]
    fn a_closed_queue_refuses_new_waiters() {
        model::check(|| {
            let queue = Queue::new();
            assert!(queue.register(10, || true, || None).is_none());
            assert_eq!(queue.count(), 0);
        });
    }

    #[test]
    fn a_waiter_registered_while_a_grant_races_in_is_served() {
        // Registration serves from what is available under the same lock.
        model::check(|| {
            let queue = Queue::new();
            let mut grants = vec![Grant::Slot];
            let waiter = queue.register(10, || false, || grants.pop()).unwrap();
            assert!(matches!(
                poll(&waiter),
                Poll::Ready(Outcome::Granted(Grant::Slot))
            ));
            assert_eq!(queue.count(), 0);
        });
    }
}

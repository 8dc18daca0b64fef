//! The first-in, first-out queue of gets waiting for a connection.
//!
//! Invariants:
//! - `count` equals the number of waiters in `queue` (both change under the
//!   queue lock); the hot path reads `count` to see whether anybody waits.
//! - A waiter is in `queue` exactly until it is served, failed, closed or
//!   cancelled; whoever removes it decides its outcome, under the queue lock,
//!   so a resource handed to a waiter is owned by exactly one party: the
//!   waiter's `get`, or (if that `get` was dropped) the canceller, which
//!   gives it back to the pool.
//! - Waiters are served strictly in arrival order: only the front is served.

use std::collections::VecDeque;
use std::sync::Arc as StdArc;
use std::task::{Context, Poll, Waker};

use crate::idle::Entry;
use crate::sync::{Arc, AtomicUsize, Mutex, Ordering, lock};

/// What a waiter (or any get) holds the right to: an idle connection, or an
/// empty slot it may dial into.
pub(crate) enum Grant<C> {
    Conn(Entry<C>),
    Slot,
}

/// How a wait ended.
pub(crate) enum Outcome<C, E> {
    Granted(Grant<C>),
    Failed(StdArc<E>),
    Closed,
}

pub(crate) struct Waiter<C, E> {
    cell: Mutex<Cell<C, E>>,
}

struct Cell<C, E> {
    outcome: Option<Outcome<C, E>>,
    waker: Option<Waker>,
}

impl<C, E> Waiter<C, E> {
    fn new() -> Self {
        Waiter {
            cell: Mutex::new(Cell {
                outcome: None,
                waker: None,
            }),
        }
    }

    fn settle(&self, outcome: Outcome<C, E>) {
        let waker = {
            let mut cell = lock(&self.cell);
            debug_assert!(cell.outcome.is_none(), "waiter settled twice");
            cell.outcome = Some(outcome);
            cell.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Ready once the waiter has been settled.
    pub(crate) fn poll(&self, cx: &mut Context<'_>) -> Poll<Outcome<C, E>> {
        let mut cell = lock(&self.cell);
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
        lock(&self.cell).outcome.take()
    }
}

pub(crate) struct Waiters<C, E> {
    queue: Mutex<VecDeque<Arc<Waiter<C, E>>>>,
    count: AtomicUsize,
}

impl<C, E> Waiters<C, E> {
    pub(crate) fn new() -> Self {
        Waiters {
            queue: Mutex::new(VecDeque::new()),
            count: AtomicUsize::new(0),
        }
    }

    /// How many gets wait. `Relaxed` is enough for the fast path's FIFO
    /// check; the lost-wakeup argument pairs a `SeqCst` fence with it.
    #[inline]
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Queues a new waiter at the back, unless `refuse()` says the pool is
    /// closed (checked under the queue lock, so `close_all` cannot miss it).
    pub(crate) fn register(&self, refuse: impl FnOnce() -> bool) -> Option<Arc<Waiter<C, E>>> {
        let mut queue = lock(&self.queue);
        if refuse() {
            return None;
        }
        let waiter = Arc::new(Waiter::new());
        queue.push_back(Arc::clone(&waiter));
        self.count.fetch_add(1, Ordering::SeqCst);
        Some(waiter)
    }

    /// Serves waiters from the front while `next_grant` yields resources.
    /// Returns how many were served.
    pub(crate) fn serve(&self, mut next_grant: impl FnMut() -> Option<Grant<C>>) -> usize {
        let mut queue = lock(&self.queue);
        let mut served = 0;
        while !queue.is_empty() {
            let Some(grant) = next_grant() else { break };
            let waiter = queue.pop_front().expect("queue is not empty");
            self.count.fetch_sub(1, Ordering::SeqCst);
            waiter.settle(Outcome::Granted(grant));
            served += 1;
        }
        served
    }

    /// Settles every waiter with `outcome()` and empties the queue.
    pub(crate) fn settle_all(&self, mut outcome: impl FnMut() -> Outcome<C, E>) {
        let mut queue = lock(&self.queue);
        for waiter in queue.drain(..) {
            self.count.fetch_sub(1, Ordering::SeqCst);
            waiter.settle(outcome());
        }
    }

    /// Wakes every waiter so it re-reads the pool's state (for example to
    /// arm its timer for the dial gate's reopening).
    pub(crate) fn wake_all(&self) {
        let queue = lock(&self.queue);
        for waiter in queue.iter() {
            if let Some(waker) = &lock(&waiter.cell).waker {
                waker.wake_by_ref();
            }
        }
    }

    /// Withdraws `waiter`. If it was still queued it leaves the queue and
    /// `None` is returned; if it had already been settled, its outcome is
    /// returned so the caller can use or give back what it was handed.
    pub(crate) fn cancel(&self, waiter: &Arc<Waiter<C, E>>) -> Option<Outcome<C, E>> {
        let mut queue = lock(&self.queue);
        if let Some(at) = queue.iter().position(|queued| Arc::ptr_eq(queued, waiter)) {
            queue.remove(at);
            self.count.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        drop(queue);
        waiter.take_outcome()
    }
}

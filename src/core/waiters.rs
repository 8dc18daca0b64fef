//! The first-in, first-out queue of gets waiting for a connection.
//!
//! Waiting allocates nothing: each waiter is a [`Node`] inside its get's
//! (pinned) future, linked into an intrusive doubly linked list under the
//! queue lock, and unlinked in O(1) when the get leaves.
//!
//! Invariants:
//! - The state word's count (its low half) equals the number of nodes in
//!   the list (both change under the queue lock). Its high half holds
//!   flags the owner sets (`set_flags`: for the pool, whether it is closed
//!   and which optional steps its checkout and return must run), so the
//!   hot path answers "anybody waiting, closed, or anything to do beyond
//!   the plain path?" with one load (`word() == 0`), the way tokio keeps
//!   `CLOSED` in its semaphore's permits word.
//! - A node is in the list exactly while its state is `QUEUED`; whoever
//!   takes it out (a server, a close, the timeout sweep, or its own get
//!   withdrawing) does so under the queue lock and decides its outcome, so
//!   a resource handed to a waiter is owned by exactly one party: the
//!   waiter's get, or (if that get was dropped) its withdrawal, which gives
//!   it back to the pool.
//! - A node's links and waker are touched only under the queue lock. Its
//!   outcome is written under the lock by whoever settles it, before the
//!   `Release` store of `SETTLED`; after that store the settler never
//!   touches the node again, and the owner reads the outcome after an
//!   `Acquire` load of `SETTLED`. So a get may free its node (return or be
//!   dropped) the moment it sees `SETTLED`, without the lock.
//! - A node is never freed while `QUEUED`: its owner withdraws it first
//!   (`Drop` of the get's place in `checkout::wait`), under the lock.
//! - Waiters are served strictly in arrival order: only the front is served.
//! - Wakers are invoked after the queue lock is released.

use std::marker::PhantomPinned;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll, Waker};

use crossbeam_utils::CachePadded;

use crate::core::entry::Entry;
pub(crate) use crate::core::grant::{Grant, Outcome};
use crate::sync::{AtomicU32, AtomicUsize, Mutex, Ordering, UnsafeCell, fence};

/// Not in the list, and no outcome to collect.
const IDLE: u32 = 0;
/// In the list, waiting.
const QUEUED: u32 = 1;
/// Taken out of the list with an outcome its owner has not collected yet.
const SETTLED: u32 = 2;

type Link<C, E> = Option<NonNull<Node<C, E>>>;

struct Links<C, E> {
    prev: Link<C, E>,
    next: Link<C, E>,
}

/// One waiting get, embedded in its future.
pub(crate) struct Node<C, E> {
    /// When this waiter's acquire timeout expires (ns since the epoch).
    deadline: u64,
    /// `IDLE`, `QUEUED` or `SETTLED` (see the module's invariants).
    state: AtomicU32,
    /// Under the queue lock.
    links: UnsafeCell<Links<C, E>>,
    /// Under the queue lock.
    waker: UnsafeCell<Option<Waker>>,
    /// Written by the settler under the lock, read by the owner once settled.
    outcome: UnsafeCell<Option<Outcome<C, E>>>,
    /// The list points at this node: it must not move while queued.
    _pinned: PhantomPinned,
}

// SAFETY: the raw links and the waker are only read or written under the
// queue lock; the outcome moves from the settler (under the lock, before a
// `Release` store) to the owner (after an `Acquire` load), one party at a
// time. So sharing or sending a node moves a `C` and an `Arc<E>` between
// threads, which the bounds allow.
unsafe impl<C: Send, E: Send + Sync> Send for Node<C, E> {}
// SAFETY: as for `Send`: every shared access is serialised by the queue
// lock or by the `SETTLED` hand-over.
unsafe impl<C: Send, E: Send + Sync> Sync for Node<C, E> {}

impl<C, E> Node<C, E> {
    /// A node for a get whose acquire timeout expires at `deadline`.
    pub(crate) fn new(deadline: u64) -> Self {
        Node {
            deadline,
            state: AtomicU32::new(IDLE),
            links: UnsafeCell::new(Links {
                prev: None,
                next: None,
            }),
            waker: UnsafeCell::new(None),
            outcome: UnsafeCell::new(None),
            _pinned: PhantomPinned,
        }
    }

    /// The outcome, if the node was settled; the node is idle again after.
    /// Lock-free: only the owner calls it.
    pub(crate) fn take_settled(&self) -> Option<Outcome<C, E>> {
        // Pairs with the `Release` store in `settle`.
        if self.state.load(Ordering::Acquire) != SETTLED {
            return None;
        }
        self.state.store(IDLE, Ordering::Relaxed);
        // SAFETY: settled means out of the list, and the settler wrote the
        // outcome before its `Release` store and never touches the node
        // after it: only the owner (us) reaches the outcome now.
        self.outcome
            .with_mut(|outcome| unsafe { (*outcome).take() })
    }
}

/// The intrusive list of queued nodes; lives inside the queue lock.
struct List<C, E> {
    head: Link<C, E>,
    tail: Link<C, E>,
}

// SAFETY: the list only holds pointers to nodes, which are `Send` and `Sync`
// under the same bounds; it is only reached under its mutex.
unsafe impl<C: Send, E: Send + Sync> Send for List<C, E> {}

impl<C, E> List<C, E> {
    /// Appends `node`.
    ///
    /// # Safety
    ///
    /// `node` is pinned, alive, and not in any list; it stays alive until
    /// it is unlinked (the caller holds the queue lock, `&mut self`).
    unsafe fn push_back(&mut self, node: NonNull<Node<C, E>>) {
        let tail = self.tail;
        // SAFETY: the caller guarantees `node` is alive; the lock is held.
        unsafe { node.as_ref() }.links.with_mut(|links| {
            // SAFETY: links are only touched under the queue lock, held.
            unsafe {
                (*links).prev = tail;
                (*links).next = None;
            }
        });
        match tail {
            // SAFETY: a queued node is alive until unlinked (module docs).
            Some(tail) => unsafe { tail.as_ref() }
                .links
                // SAFETY: under the queue lock.
                .with_mut(|links| unsafe { (*links).next = Some(node) }),
            None => self.head = Some(node),
        }
        self.tail = Some(node);
    }

    /// Unlinks `node`.
    ///
    /// # Safety
    ///
    /// `node` is in this list (so alive), and the queue lock is held.
    unsafe fn unlink(&mut self, node: NonNull<Node<C, E>>) {
        // SAFETY: in the list, so alive; the lock is held.
        let (prev, next) = unsafe { node.as_ref() }.links.with_mut(|links| {
            // SAFETY: under the queue lock.
            let links = unsafe { &mut *links };
            (links.prev.take(), links.next.take())
        });
        match prev {
            // SAFETY: a neighbour in the list is alive; under the lock.
            Some(prev) => unsafe { prev.as_ref() }
                .links
                // SAFETY: under the queue lock.
                .with_mut(|links| unsafe { (*links).next = next }),
            None => self.head = next,
        }
        match next {
            // SAFETY: a neighbour in the list is alive; under the lock.
            Some(next) => unsafe { next.as_ref() }
                .links
                // SAFETY: under the queue lock.
                .with_mut(|links| unsafe { (*links).prev = prev }),
            None => self.tail = prev,
        }
    }

    /// The node after `node`.
    ///
    /// # Safety
    ///
    /// `node` is in this list, and the queue lock is held.
    unsafe fn next(&self, node: NonNull<Node<C, E>>) -> Link<C, E> {
        // SAFETY: in the list, so alive; under the lock.
        unsafe { node.as_ref() }
            .links
            // SAFETY: under the queue lock.
            .with(|links| unsafe { (*links).next })
    }
}

/// Settles a node just unlinked: records the outcome and returns the waker
/// to call once the lock is released.
///
/// # Safety
///
/// `node` was unlinked under the queue lock, which is still held, so its
/// owner cannot have freed it (it would have to take that lock first).
#[must_use]
unsafe fn settle<C, E>(node: NonNull<Node<C, E>>, outcome: Outcome<C, E>) -> Option<Waker> {
    // SAFETY: alive, as the caller guarantees.
    let node = unsafe { node.as_ref() };
    debug_assert_eq!(node.state.load(Ordering::Relaxed), QUEUED);
    // SAFETY: a queued node's outcome is only written by its settler, under
    // the lock we hold; the owner reads it only after `SETTLED`.
    node.outcome
        .with_mut(|cell| unsafe { *cell = Some(outcome) });
    // SAFETY: the waker is only touched under the queue lock, held.
    let waker = node.waker.with_mut(|waker| unsafe { (*waker).take() });
    // The owner may free the node as soon as it sees this: nothing after.
    node.state.store(SETTLED, Ordering::Release);
    waker
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

pub(crate) struct Waiters<C, E> {
    queue: CachePadded<Mutex<List<C, E>>>,
    /// The waiter count (low half) and the owner's flags (high half). Read
    /// by every checkout: kept off the queue lock's cache line. The count
    /// is raised in `register` before the handshake's fence; lowered under
    /// the queue lock when a waiter leaves. A lowering pairs with nothing:
    /// a returner that misses it only dispatches to a queue with one waiter
    /// fewer, which the lock makes harmless.
    count: CachePadded<AtomicUsize>,
}

/// Where the owner's flags start in the state word.
const FLAG_SHIFT: u32 = usize::BITS / 2;
/// The waiter count's part of the state word.
const COUNT_MASK: usize = (1 << FLAG_SHIFT) - 1;

/// Whether a state word (from [`Waiters::word`]) says somebody waits.
#[inline]
pub(crate) fn waiting_in(word: usize) -> bool {
    word & COUNT_MASK != 0
}

/// Whether a state word has any of `flags` set.
#[inline]
pub(crate) fn flags_in(word: usize, flags: u32) -> bool {
    word & ((flags as usize) << FLAG_SHIFT) != 0
}

impl<C, E> Waiters<C, E> {
    pub(crate) fn new() -> Self {
        Waiters {
            queue: CachePadded::new(Mutex::new(List {
                head: None,
                tail: None,
            })),
            count: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    /// How many gets wait. `Relaxed` is enough for the fast path's FIFO
    /// check; the lost-wakeup argument pairs a `SeqCst` fence with it.
    #[inline]
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed) & COUNT_MASK
    }

    /// [`count`](Waiters::count) as a `SeqCst` load: the returner's read
    /// after a `SeqCst` fill (`Core::published_by_fill`).
    #[inline]
    pub(crate) fn count_seq_cst(&self) -> usize {
        self.count.load(Ordering::SeqCst) & COUNT_MASK
    }

    /// The state word: 0 when nobody waits and no flag is set.
    #[inline]
    pub(crate) fn word(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Sets the flags in `mask` to those of `flags`, leaving the count and
    /// the other flags alone.
    pub(crate) fn set_flags(&self, mask: u32, flags: u32) {
        let (mask, flags) = (
            (mask as usize) << FLAG_SHIFT,
            (flags as usize) << FLAG_SHIFT,
        );
        let _ = self
            .count
            .fetch_update(Ordering::SeqCst, Ordering::Relaxed, |word| {
                Some((word & !mask) | (flags & mask))
            });
    }

    /// Queues `node` at the back (unless `refuse()` says the pool is
    /// closed, checked under the lock so `settle_all` cannot miss it), then,
    /// still under the lock, serves the queue from resources `next_grant`
    /// finds: the waiter's half of the lost-wakeup handshake. Returns
    /// `false` if refused. If `node` is still queued after that, `waker`
    /// is woken when it is settled; if it was served at once,
    /// [`Node::take_settled`] has its outcome.
    ///
    /// The node must be idle; once queued its owner must
    /// [`withdraw`](Waiters::withdraw) it (or collect its outcome) before
    /// freeing it.
    pub(crate) fn register(
        &self,
        node: Pin<&Node<C, E>>,
        waker: &Waker,
        refuse: impl FnOnce() -> bool,
        next_grant: impl FnMut() -> Option<Grant<C>>,
    ) -> bool {
        debug_assert_eq!(node.state.load(Ordering::Relaxed), IDLE);
        let mut queue = self.queue.lock();
        if refuse() {
            return false;
        }
        node.state.store(QUEUED, Ordering::Relaxed);
        // SAFETY: pinned, alive, not in the list (idle), and its owner
        // withdraws it under this lock before freeing it; the lock is held.
        unsafe { queue.push_back(NonNull::from(node.get_ref())) };
        self.count.fetch_add(1, Ordering::SeqCst);
        // The waiter's half of the lost-wake-up handshake (core/mod.rs):
        // pairs with the fence in `Core::published` (run by every
        // return, release and pass). Our raised count, or their published
        // resource, is seen by the other side.
        fence(Ordering::SeqCst);
        let wakeups = self.serve_locked(&mut queue, next_grant);
        if node.state.load(Ordering::Relaxed) == QUEUED {
            // SAFETY: under the queue lock, and the node is queued.
            node.waker
                .with_mut(|slot| unsafe { *slot = Some(waker.clone()) });
        }
        drop(queue);
        wakeups.wake();
        true
    }

    /// Ready with the outcome once `node` (registered) has been settled;
    /// otherwise makes sure `cx`'s waker is the one woken.
    pub(crate) fn poll(&self, node: &Node<C, E>, cx: &mut Context<'_>) -> Poll<Outcome<C, E>> {
        if let Some(outcome) = node.take_settled() {
            return Poll::Ready(outcome);
        }
        let queue = self.queue.lock();
        if let Some(outcome) = node.take_settled() {
            return Poll::Ready(outcome);
        }
        debug_assert_eq!(node.state.load(Ordering::Relaxed), QUEUED);
        // SAFETY: under the queue lock, and the node is queued.
        let stale = node.waker.with_mut(|slot| unsafe {
            match &*slot {
                Some(waker) if waker.will_wake(cx.waker()) => None,
                _ => (*slot).replace(cx.waker().clone()),
            }
        });
        drop(queue);
        drop(stale);
        Poll::Pending
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
        queue: &mut List<C, E>,
        mut next_grant: impl FnMut() -> Option<Grant<C>>,
    ) -> Wakeups {
        let mut wakeups = Wakeups::default();
        while let Some(front) = queue.head {
            let Some(grant) = next_grant() else { break };
            // SAFETY: the front is in the list; the lock is held; settled
            // right after, still under the lock.
            unsafe {
                queue.unlink(front);
                self.count.fetch_sub(1, Ordering::SeqCst);
                wakeups.push(settle(front, Outcome::Granted(grant)));
            }
        }
        wakeups
    }

    /// Gives `entry` to the front waiter, or returns it if nobody waits.
    pub(crate) fn hand_over(&self, entry: Entry<C>) -> Option<Entry<C>> {
        let mut queue = self.queue.lock();
        let Some(front) = queue.head else {
            return Some(entry);
        };
        // SAFETY: the front is in the list; the lock is held until after
        // the node is settled.
        let waker = unsafe {
            queue.unlink(front);
            self.count.fetch_sub(1, Ordering::SeqCst);
            settle(front, Outcome::Granted(Grant::Conn(entry)))
        };
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
        while let Some(front) = queue.head {
            // SAFETY: as in `serve_locked`.
            unsafe {
                queue.unlink(front);
                self.count.fetch_sub(1, Ordering::SeqCst);
                wakeups.push(settle(front, outcome()));
            }
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
        let mut cursor = queue.head;
        while let Some(node) = cursor {
            // SAFETY: `node` is in the list (read before any unlink of it);
            // the lock is held throughout.
            unsafe {
                cursor = queue.next(node);
                let deadline = node.as_ref().deadline;
                if deadline <= now {
                    queue.unlink(node);
                    self.count.fetch_sub(1, Ordering::SeqCst);
                    wakeups.push(settle(node, Outcome::TimedOut));
                } else {
                    earliest = Some(earliest.map_or(deadline, |e| e.min(deadline)));
                }
            }
        }
        drop(queue);
        wakeups.wake();
        earliest
    }

    /// Wakes every waiter so it re-reads the pool's state (for example to
    /// arm its timer for the dial gate's reopening).
    pub(crate) fn wake_all(&self) {
        let queue = self.queue.lock();
        let mut wakeups = Wakeups::default();
        let mut cursor = queue.head;
        while let Some(node) = cursor {
            // SAFETY: in the list, so alive; the lock is held.
            unsafe {
                cursor = queue.next(node);
                wakeups.push(node.as_ref().waker.with(|waker| (*waker).clone()));
            }
        }
        drop(queue);
        wakeups.wake();
    }

    /// Withdraws `node`. If it was still queued it leaves the queue and
    /// `None` is returned; if it had been settled, its outcome is returned
    /// so the caller can use or give back what it was handed. An idle node
    /// (never queued, or already collected) gives `None`. Afterwards the
    /// node is idle and may be freed.
    pub(crate) fn withdraw(&self, node: &Node<C, E>) -> Option<Outcome<C, E>> {
        match node.state.load(Ordering::Acquire) {
            IDLE => return None,
            SETTLED => return node.take_settled(),
            _ => {}
        }
        let mut queue = self.queue.lock();
        // Settled between the load and the lock?
        if let Some(outcome) = node.take_settled() {
            return Some(outcome);
        }
        // SAFETY: queued (the state says so under the lock), so in this
        // list; the lock is held.
        let waker = unsafe {
            queue.unlink(NonNull::from(node));
            node.waker.with_mut(|waker| (*waker).take())
        };
        self.count.fetch_sub(1, Ordering::SeqCst);
        node.state.store(IDLE, Ordering::Relaxed);
        drop(queue);
        drop(waker);
        None
    }
}

#[cfg(test)]
mod tests;

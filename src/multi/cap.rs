//! The global cap: one count of connections shared by every endpoint's
//! sub-pool, next to each sub-pool's own `max_size`.
//!
//! Owns: the count (`used`, never above `max`), the dials waiting for a
//! unit of it, and [`Unit`], the token a connection holds from its dial to
//! its close. A unit is taken before the manager dials and given back when
//! the connection is dropped, however it ends (closed by its pool, detached,
//! or its dial failed), so the count cannot drift.
//!
//! Invariant: `used <= max`; `waiting` is the number of registered wakers.
//! A release wakes every registered dial; each retries `try_take` after
//! registering, so a release between a failed take and the registration is
//! never lost.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Poll, Waker};

use crate::sync::plain;
use crate::sync::{AtomicU64, AtomicUsize, Ordering};

/// The shared count. `max == usize::MAX` when there is no global cap.
pub(crate) struct Cap {
    max: usize,
    used: AtomicUsize,
    waiting: AtomicUsize,
    next_id: AtomicU64,
    wakers: plain::Mutex<Vec<(u64, Waker)>>,
}

/// One connection's share of the global cap; given back on drop.
pub(crate) struct Unit {
    cap: Arc<Cap>,
}

impl Drop for Unit {
    fn drop(&mut self) {
        self.cap.used.fetch_sub(1, Ordering::AcqRel);
        if self.cap.waiting.load(Ordering::Acquire) != 0 {
            let wakers: Vec<Waker> = self
                .cap
                .wakers
                .lock()
                .iter()
                .map(|(_, waker)| waker.clone())
                .collect();
            wakers.into_iter().for_each(Waker::wake);
        }
    }
}

/// Removes a waiting dial's registration when it is served or dropped.
struct Registration<'a> {
    cap: &'a Cap,
    id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut wakers = self.cap.wakers.lock();
        if let Some(at) = wakers.iter().position(|(id, _)| *id == self.id) {
            wakers.swap_remove(at);
            self.cap.waiting.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Cap {
    pub(crate) fn new(max: Option<usize>) -> Arc<Self> {
        Arc::new(Cap {
            max: max.unwrap_or(usize::MAX),
            used: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
            wakers: plain::Mutex::new(Vec::new()),
        })
    }

    /// The bound (`None`: no global cap).
    pub(crate) fn max(&self) -> Option<usize> {
        (self.max != usize::MAX).then_some(self.max)
    }

    /// Connections holding a unit now (across every endpoint).
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Whether a dial waits for a unit: connections given back anywhere are
    /// then closed instead of kept idle, to make room.
    pub(crate) fn has_waiters(&self) -> bool {
        self.waiting.load(Ordering::Acquire) != 0
    }

    /// A unit, if the cap has room.
    pub(crate) fn try_take(self: &Arc<Self>) -> Option<Unit> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used < self.max).then_some(used + 1)
            })
            .ok()
            .map(|_| Unit {
                cap: Arc::clone(self),
            })
    }

    /// A unit, waiting for one if the cap is full; `make_room` is asked
    /// first each time (it closes an idle connection of another endpoint,
    /// if any, and says whether it did).
    pub(crate) async fn take(self: &Arc<Self>, make_room: impl Fn() -> bool) -> Unit {
        if let Some(unit) = self.try_take() {
            return unit;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let _registration = Registration { cap: self, id };
        poll_fn(|cx| {
            loop {
                if let Some(unit) = self.try_take() {
                    return Poll::Ready(unit);
                }
                if !make_room() {
                    break;
                }
            }
            {
                let mut wakers = self.wakers.lock();
                match wakers.iter_mut().find(|(mine, _)| *mine == id) {
                    Some((_, waker)) => waker.clone_from(cx.waker()),
                    None => {
                        wakers.push((id, cx.waker().clone()));
                        self.waiting.fetch_add(1, Ordering::AcqRel);
                    }
                }
            }
            // A unit given back before the registration: take it now.
            match self.try_take() {
                Some(unit) => Poll::Ready(unit),
                None => Poll::Pending,
            }
        })
        .await
    }
}

// Plain unit tests: their atomics are the loom facade's, which work only
// inside a loom model, so they do not run in the loom build.
#[cfg(all(test, not(ringpool_loom)))]
mod tests {
    use super::Cap;

    #[test]
    fn units_are_bounded_and_given_back_on_drop() {
        let cap = Cap::new(Some(2));
        let (a, b) = (cap.try_take(), cap.try_take());
        assert!(a.is_some() && b.is_some());
        assert!(cap.try_take().is_none(), "the cap is full");
        assert_eq!(cap.used(), 2);
        drop(a);
        assert_eq!(cap.used(), 1);
        assert!(cap.try_take().is_some());
    }

    #[test]
    fn a_waiting_take_is_served_by_a_release() {
        let cap = Cap::new(Some(1));
        let held = cap.try_take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        let waiter_cap = std::sync::Arc::clone(&cap);
        let waiter = std::thread::spawn(move || {
            let unit = futures_executor::block_on(waiter_cap.take(|| false));
            sender.send(()).unwrap();
            drop(unit);
        });
        crate::multi::cap::tests::wait_until(|| cap.has_waiters());
        assert!(receiver.try_recv().is_err(), "still waiting while full");
        drop(held);
        receiver
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("served by the release");
        waiter.join().unwrap();
        assert_eq!(cap.used(), 0);
        assert!(!cap.has_waiters(), "the registration is gone");
    }

    pub(crate) fn wait_until(mut done: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "condition never held");
            std::thread::yield_now();
        }
    }

    #[test]
    fn no_cap_never_waits() {
        let cap = Cap::new(None);
        let units: Vec<_> = (0..1000).map(|_| cap.try_take().unwrap()).collect();
        assert_eq!(cap.used(), 1000);
        assert_eq!(cap.max(), None);
        drop(units);
    }
}

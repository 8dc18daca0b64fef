//! The one switch between the shipping synchronisation primitives and their
//! loom-visible stand-ins.
//!
//! Everything that takes part in the pool's concurrent protocol (the slot
//! counter, the waiter count, the closed flag, the idle queue, the waiter
//! queue and the live config) is imported from here and nowhere else. Under
//! `--cfg ringpool_loom` the atomics, mutexes and fences become loom's, the
//! lock-free `ArrayQueue` becomes a loom `Mutex<VecDeque>` and the `ArcSwap`
//! becomes a loom `RwLock<Arc<_>>`: same interface, but every step is visible
//! to the model checker. Bookkeeping outside the protocol (statistics, the
//! timer wheel) uses `std` directly on purpose, so models stay small.

#[cfg(not(ringpool_loom))]
pub(crate) use std::sync::{
    Mutex, MutexGuard,
    atomic::{AtomicBool, AtomicUsize, Ordering, fence},
};

#[cfg(ringpool_loom)]
pub(crate) use loom::sync::{
    Mutex, MutexGuard,
    atomic::{AtomicBool, AtomicUsize, Ordering, fence},
};

pub(crate) use std::sync::Arc;

/// Locks `mutex`, recovering the data if a panicking thread poisoned it.
///
/// Every critical section in the pool leaves its data consistent before any
/// call that could panic, so a poisoned lock carries no broken invariant.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

#[cfg(not(ringpool_loom))]
mod shipping {
    use std::sync::Arc;

    /// Bounded lock-free MPMC queue of idle connections.
    pub(crate) struct IdleQueue<T>(crossbeam_queue::ArrayQueue<T>);

    impl<T> IdleQueue<T> {
        pub(crate) fn new(capacity: usize) -> Self {
            Self(crossbeam_queue::ArrayQueue::new(capacity))
        }
        #[inline]
        pub(crate) fn push(&self, value: T) -> Result<(), T> {
            self.0.push(value)
        }
        #[inline]
        pub(crate) fn pop(&self) -> Option<T> {
            self.0.pop()
        }
        #[inline]
        pub(crate) fn len(&self) -> usize {
            self.0.len()
        }
        pub(crate) fn capacity(&self) -> usize {
            self.0.capacity()
        }
    }

    /// The live config: wait-free reads, atomic replacement.
    pub(crate) struct SwapCell<T>(arc_swap::ArcSwap<T>);

    impl<T> SwapCell<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(arc_swap::ArcSwap::from_pointee(value))
        }
        #[inline]
        pub(crate) fn load(&self) -> arc_swap::Guard<Arc<T>> {
            self.0.load()
        }
        pub(crate) fn store(&self, value: T) {
            self.0.store(Arc::new(value));
        }
    }
}

#[cfg(ringpool_loom)]
mod shipping {
    use loom::sync::{Mutex, RwLock};
    use std::collections::VecDeque;
    use std::sync::Arc;

    /// Loom stand-in for the idle `ArrayQueue`: same interface, modelled lock.
    pub(crate) struct IdleQueue<T> {
        items: Mutex<VecDeque<T>>,
        capacity: usize,
    }

    impl<T> IdleQueue<T> {
        pub(crate) fn new(capacity: usize) -> Self {
            Self {
                items: Mutex::new(VecDeque::with_capacity(capacity)),
                capacity,
            }
        }
        pub(crate) fn push(&self, value: T) -> Result<(), T> {
            let mut items = self.items.lock().unwrap();
            if items.len() == self.capacity {
                return Err(value);
            }
            items.push_back(value);
            Ok(())
        }
        pub(crate) fn pop(&self) -> Option<T> {
            self.items.lock().unwrap().pop_front()
        }
        pub(crate) fn len(&self) -> usize {
            self.items.lock().unwrap().len()
        }
        pub(crate) fn capacity(&self) -> usize {
            self.capacity
        }
    }

    /// Loom stand-in for `ArcSwap`: a modelled `RwLock<Arc<T>>`.
    pub(crate) struct SwapCell<T>(RwLock<Arc<T>>);

    impl<T> SwapCell<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(RwLock::new(Arc::new(value)))
        }
        pub(crate) fn load(&self) -> Arc<T> {
            self.0.read().unwrap().clone()
        }
        pub(crate) fn store(&self, value: T) {
            *self.0.write().unwrap() = Arc::new(value);
        }
    }
}

pub(crate) use shipping::{IdleQueue, SwapCell};

/// Runs a unit test as a loom model under `ringpool_loom`, or once otherwise,
/// so the core's own tests exercise the same facade in both builds.
#[cfg(test)]
pub(crate) mod model {
    #[cfg(not(ringpool_loom))]
    pub(crate) use std::thread::spawn;

    #[cfg(ringpool_loom)]
    pub(crate) use loom::thread::spawn;

    pub(crate) fn check(test: impl Fn() + Sync + Send + 'static) {
        #[cfg(ringpool_loom)]
        loom::model(test);
        #[cfg(not(ringpool_loom))]
        test();
    }
}

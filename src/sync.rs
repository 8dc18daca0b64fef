//! The one switch between the shipping synchronisation primitives and their
//! loom-visible stand-ins.
//!
//! Everything the pool's protocol reads or writes goes through here: the
//! slot counter, the waiter count and queue, the closed flag, the idle
//! queue, the live config, the dial gate (failures, reopening time, probe,
//! dials in flight) and the mirrored hot limits. Under `--cfg ringpool_loom`
//! the atomics, mutexes and fences become loom's, the lock-free `ArrayQueue`
//! becomes a loom `Mutex<VecDeque>` and the `ArcSwap` a loom
//! `RwLock<Arc<_>>`: same interface, every step visible to the model
//! checker.
//!
//! Bookkeeping outside the protocol (statistics, the timer wheel, the ring
//! thread, lifecycle wake-ups) uses [`plain::Mutex`], which is always `std`,
//! so models stay small. Both mutexes recover from poisoning in one place:
//! every critical section in the pool leaves its data consistent before any
//! call that could panic, so a poisoned lock carries no broken invariant.

#[cfg(not(ringpool_loom))]
pub(crate) use std::sync::atomic::{
    AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
};

#[cfg(ringpool_loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
};

/// Waits a moment for another thread to finish a step that cannot block
/// (a slot it holds `BUSY`): spins, then yields the thread, as `backoff`
/// grows. Under `ringpool_loom`, a yield the model checker sees, so a
/// model that waits on another thread explores that thread's progress.
#[inline]
pub(crate) fn snooze(backoff: &crossbeam_utils::Backoff) {
    #[cfg(not(ringpool_loom))]
    backoff.snooze();
    #[cfg(ringpool_loom)]
    {
        let _ = backoff;
        loom::thread::yield_now();
    }
}

/// Interior mutability for data whose exclusive access a protocol, not the
/// type system, guarantees (the waiter nodes' links, waker and outcome).
/// Under `ringpool_loom` it is loom's, which checks every access for races.
#[cfg(not(ringpool_loom))]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(ringpool_loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    /// Calls `f` with a pointer for reading (loom's interface).
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Calls `f` with a pointer for writing (loom's interface).
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(ringpool_loom)]
pub(crate) use loom::cell::UnsafeCell;

/// Declares a mutex wrapper over `$inner` whose `lock` never fails.
macro_rules! poison_free_mutex {
    ($(#[$meta:meta])* $inner:ident, $guard:ident) => {
        $(#[$meta])*
        pub(crate) struct Mutex<T>($inner<T>);

        impl<T> Mutex<T> {
            pub(crate) fn new(value: T) -> Self {
                Mutex($inner::new(value))
            }

            /// Locks, recovering the data if a panicking thread poisoned it.
            pub(crate) fn lock(&self) -> $guard<'_, T> {
                self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
            }

            /// The lock if it is free now; never waits.
            #[allow(dead_code)]
            pub(crate) fn try_lock(&self) -> Option<$guard<'_, T>> {
                match self.0.try_lock() {
                    Ok(guard) => Some(guard),
                    Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                    Err(std::sync::TryLockError::WouldBlock) => None,
                }
            }
        }
    };
}

#[cfg(not(ringpool_loom))]
use std::sync::{Mutex as ProtocolMutex, MutexGuard};

#[cfg(ringpool_loom)]
use loom::sync::{Mutex as ProtocolMutex, MutexGuard};

poison_free_mutex!(
    /// A mutex of the modelled protocol (loom's under `ringpool_loom`).
    ProtocolMutex,
    MutexGuard
);

/// Primitives for bookkeeping outside the modelled protocol: always `std`,
/// so loom models stay small (statistics, timers, the ring thread, wake-ups,
/// the client managers' flags).
pub(crate) mod plain {
    use std::sync::{Mutex as StdMutex, MutexGuard};

    /// An unbounded lock-free queue (the ring thread's watch tickets).
    #[cfg(target_os = "linux")]
    pub(crate) use crossbeam_queue::SegQueue;
    // Some are used only by optional features (the clients' flags).
    #[allow(unused_imports)]
    pub(crate) use std::sync::atomic::{
        AtomicBool, AtomicI64, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering,
    };

    poison_free_mutex!(
        /// A `std` mutex whose `lock` never fails.
        StdMutex,
        MutexGuard
    );

    /// Waits on `condvar` for at most `timeout` (forever if `None`),
    /// recovering from poisoning like [`Mutex::lock`].
    pub(crate) fn wait<'a, T>(
        condvar: &std::sync::Condvar,
        guard: MutexGuard<'a, T>,
        timeout: Option<std::time::Duration>,
    ) -> MutexGuard<'a, T> {
        match timeout {
            Some(timeout) => {
                condvar
                    .wait_timeout(guard, timeout)
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .0
            }
            None => condvar
                .wait(guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        }
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
        /// The current value as an owned handle, to keep across awaits.
        pub(crate) fn load_full(&self) -> Arc<T> {
            self.0.load_full()
        }
        pub(crate) fn store(&self, value: T) {
            self.0.store(Arc::new(value));
        }
    }
}

#[cfg(ringpool_loom)]
mod shipping {
    use loom::sync::RwLock;
    use std::collections::VecDeque;
    use std::sync::Arc;

    use super::Mutex;

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
            let mut items = self.items.lock();
            if items.len() == self.capacity {
                return Err(value);
            }
            items.push_back(value);
            Ok(())
        }
        pub(crate) fn pop(&self) -> Option<T> {
            self.items.lock().pop_front()
        }
        pub(crate) fn len(&self) -> usize {
            self.items.lock().len()
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
        pub(crate) fn load_full(&self) -> Arc<T> {
            self.load()
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

    /// `check` with at most `preemptions` preemptions a run, for models
    /// whose retry loops make the full space too large (bugs need few).
    pub(crate) fn check_bounded(preemptions: usize, test: impl Fn() + Sync + Send + 'static) {
        #[cfg(ringpool_loom)]
        {
            let mut builder = loom::model::Builder::new();
            builder.preemption_bound = Some(preemptions);
            builder.check(test);
        }
        #[cfg(not(ringpool_loom))]
        {
            let _ = preemptions;
            test();
        }
    }
}

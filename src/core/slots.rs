//! The slot counter: the single number that bounds everything the pool owns.
//!
//! Invariant: `size` counts idle + in-use + being-created connections, and
//! `size <= max` holds whenever `max` has not just been lowered. A slot is
//! taken only by a compare-and-swap that sees `size < max`, so concurrent
//! reservations can never overshoot; after `max` is lowered, slots are given
//! back one by one (`try_shed`) until `size <= max` again.

use crate::sync::{AtomicUsize, Ordering};

pub(crate) struct Slots {
    size: AtomicUsize,
    max: AtomicUsize,
}

impl Slots {
    pub(crate) fn new(max: usize) -> Self {
        Slots {
            size: AtomicUsize::new(0),
            max: AtomicUsize::new(max),
        }
    }

    /// Takes a slot if the pool is below its bound.
    #[cfg(not(ringpool_broken_slot_counter))]
    pub(crate) fn try_reserve(&self) -> bool {
        let max = self.max.load(Ordering::Acquire);
        let mut size = self.size.load(Ordering::Relaxed);
        loop {
            if size >= max {
                return false;
            }
            match self.size.compare_exchange_weak(
                size,
                size + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => size = actual,
            }
        }
    }

    /// A deliberately broken variant (check, then increment) that the loom
    /// models must catch; see docs/testing.md. Never built by default.
    #[cfg(ringpool_broken_slot_counter)]
    pub(crate) fn try_reserve(&self) -> bool {
        if self.size.load(Ordering::Acquire) < self.max.load(Ordering::Acquire) {
            self.size.fetch_add(1, Ordering::AcqRel);
            return true;
        }
        false
    }

    /// Gives a slot back.
    pub(crate) fn release(&self) {
        let before = self.size.fetch_sub(1, Ordering::AcqRel);
        debug_assert!(before > 0, "slot released twice");
    }

    /// Gives a slot back only if the pool is above its bound; `true` means
    /// the caller's connection is surplus and must be closed.
    pub(crate) fn try_shed(&self) -> bool {
        let max = self.max.load(Ordering::Acquire);
        let mut size = self.size.load(Ordering::Relaxed);
        loop {
            if size <= max {
                return false;
            }
            match self.size.compare_exchange_weak(
                size,
                size - 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => size = actual,
            }
        }
    }

    pub(crate) fn size(&self) -> usize {
        self.size.load(Ordering::Acquire)
    }

    pub(crate) fn max(&self) -> usize {
        self.max.load(Ordering::Acquire)
    }

    pub(crate) fn set_max(&self, max: usize) {
        self.max.store(max, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::Slots;
    use crate::sync::model;
    use std::sync::Arc;

    #[test]
    fn racing_reservations_never_overshoot() {
        model::check(|| {
            let slots = Arc::new(Slots::new(1));
            let other = Arc::clone(&slots);
            let racer = model::spawn(move || other.try_reserve());
            let mine = slots.try_reserve();
            let theirs = racer.join().unwrap();
            assert!(
                mine ^ theirs,
                "exactly one of two racers gets the only slot"
            );
            assert_eq!(slots.size(), 1);
        });
    }

    #[test]
    fn shedding_gives_back_only_the_surplus() {
        model::check(|| {
            let slots = Slots::new(3);
            assert!(slots.try_reserve() && slots.try_reserve() && slots.try_reserve());
            assert!(!slots.try_reserve());
            slots.set_max(1);
            assert!(slots.try_shed());
            assert!(slots.try_shed());
            assert!(!slots.try_shed(), "at the bound nothing more is shed");
            assert_eq!(slots.size(), 1);
            slots.release();
            assert_eq!(slots.size(), 0);
        });
    }
}

//! The ledger of checkouts leak detection watches: a fixed array of
//! places, one per checkout out, each holding when it was checked out and
//! where. A checkout claims a free place (one compare-and-swap, no
//! allocation, starting from a place its thread favours); its return frees
//! it (two stores). A sweep, every quarter threshold on the pool's clock,
//! reports each place held since before the cutoff, once.

use crate::sync::plain::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::panic::Location;
use std::sync::OnceLock;

/// A pool's leak-detection state: its ledger (made at the first watched
/// checkout, sized by the bound then), whether a sweep is scheduled, and
/// the generation of sweeps (a reconfigure starts a new one, and the
/// sweeps of older generations stop at their next turn).
#[derive(Default)]
pub(crate) struct LeakLedger {
    pub(crate) ledger: OnceLock<Ledger>,
    pub(crate) sweeping: AtomicBool,
    pub(crate) generation: AtomicU64,
}

/// A place's word once its checkout has been reported (the high bit; the
/// rest is still the checkout's time).
const REPORTED: u64 = 1 << 63;

/// One checkout's place. `since` is 0 while free, else the checkout's time
/// plus one (so a clock at 0 still reads as taken).
struct Place {
    since: AtomicU64,
    caller: AtomicPtr<Location<'static>>,
}

/// A fixed number of places, a power of two (an index wraps with a mask,
/// not a division).
pub(crate) struct Ledger {
    places: Box<[Place]>,
}

impl Ledger {
    /// A ledger of at least `capacity` places.
    pub(crate) fn new(capacity: usize) -> Self {
        Ledger {
            places: (0..capacity.max(1).next_power_of_two())
                .map(|_| Place {
                    since: AtomicU64::new(0),
                    caller: AtomicPtr::new(std::ptr::null_mut()),
                })
                .collect(),
        }
    }

    /// Claims a free place for a checkout at `now` from `caller`, trying
    /// from place `hint` (any number: it wraps) on; `None` if every place
    /// is taken.
    pub(crate) fn claim(
        &self,
        hint: usize,
        now: u64,
        caller: &'static Location<'static>,
    ) -> Option<u32> {
        let count = self.places.len();
        let since = now.saturating_add(1) & !REPORTED;
        (0..count)
            .map(|step| hint.wrapping_add(step) & (count - 1))
            .find(|&index| {
                let place = &self.places[index];
                let free = place.since.load(Ordering::Relaxed) == 0
                    && place
                        .since
                        .compare_exchange(0, since, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok();
                if free {
                    let caller = std::ptr::from_ref(caller).cast_mut();
                    place.caller.store(caller, Ordering::Release);
                }
                free
            })
            .map(|index| index as u32)
    }

    /// Frees a place `claim` gave.
    pub(crate) fn release(&self, index: u32) {
        let place = &self.places[index as usize];
        place.caller.store(std::ptr::null_mut(), Ordering::Relaxed);
        place.since.store(0, Ordering::Release);
    }

    /// Calls `report(caller, checked_out_at)` once for every checkout held
    /// for `threshold` or longer at `now`, not reported yet. A place
    /// claimed a moment ago whose caller is not written yet is left for the
    /// next sweep.
    pub(crate) fn sweep(
        &self,
        now: u64,
        threshold: u64,
        mut report: impl FnMut(&'static Location<'static>, u64),
    ) {
        for place in &*self.places {
            let since = place.since.load(Ordering::Acquire);
            if since == 0 || since & REPORTED != 0 || now.saturating_sub(since - 1) < threshold {
                continue;
            }
            let caller = place.caller.load(Ordering::Acquire);
            if caller.is_null() {
                continue;
            }
            if place
                .since
                .compare_exchange(since, since | REPORTED, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                // SAFETY: every non-null pointer stored in `caller` came
                // from a `&'static Location<'static>` (`claim`), so it is
                // valid for reads for ever. Should the place have been
                // freed and claimed again at the very same time in between,
                // the caller read is the new checkout's, and so is the
                // time: the report is still true.
                report(unsafe { &*caller }, since - 1);
            }
        }
    }

    /// How many places it has (a power of two).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.places.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn here() -> &'static Location<'static> {
        Location::caller()
    }

    #[test]
    fn a_checkout_older_than_the_cutoff_is_reported_once_and_a_returned_one_never() {
        let ledger = Ledger::new(4);
        let (old, young, returned) = (here(), here(), here());
        let a = ledger.claim(0, 0, old).unwrap();
        let b = ledger.claim(0, 50, young).unwrap();
        let c = ledger.claim(0, 0, returned).unwrap();
        assert_eq!([a, b, c], [0, 1, 2], "free places from the hint on");
        ledger.release(c);
        let mut seen = Vec::new();
        ledger.sweep(9, 10, |caller, at| seen.push((caller.line(), at)));
        assert!(seen.is_empty(), "held 9 of 10");
        ledger.sweep(10, 10, |caller, at| seen.push((caller.line(), at)));
        assert_eq!(seen, [(old.line(), 0)]);
        ledger.sweep(100, 50, |caller, at| seen.push((caller.line(), at)));
        assert_eq!(seen, [(old.line(), 0), (young.line(), 50)], "each once");
        ledger.release(a);
        ledger.release(b);
        assert_eq!(ledger.claim(3, 7, here()), Some(3), "from the hint");
        assert_eq!(ledger.claim(3, 7, here()), Some(0), "wrapping around");
    }

    #[test]
    fn a_full_ledger_gives_no_place_until_one_is_freed() {
        let ledger = Ledger::new(2);
        let first = ledger.claim(1, 0, here()).unwrap();
        ledger.claim(1, 0, here()).unwrap();
        assert_eq!(ledger.claim(0, 0, here()), None);
        ledger.release(first);
        assert_eq!(ledger.claim(0, 0, here()), Some(first));
        assert_eq!(ledger.capacity(), 2);
    }

    #[test]
    fn places_round_up_to_a_power_of_two_and_any_hint_wraps() {
        let ledger = Ledger::new(5);
        assert_eq!(ledger.capacity(), 8);
        assert_eq!(ledger.claim(usize::MAX, 0, here()), Some(7));
        assert_eq!(ledger.claim(usize::MAX, 0, here()), Some(0), "past the end");
        assert_eq!(ledger.claim(13, 0, here()), Some(5), "13 wraps to 5");
    }
}

//! The ledger of checkouts leak detection watches: a fixed array of
//! places, one per checkout out, each holding when it was checked out and
//! where. Its return frees the place (two stores). A sweep, every quarter
//! threshold on the pool's clock, reports each place held since before the
//! cutoff, once.
//!
//! A checkout claims a free place without allocating. The first
//! [`OWNED_THREADS`] threads of the process (by [`thread_number`]) each
//! have [`PLACES_PER_THREAD`] places that only they claim, so they claim
//! with a load and two stores, no read-modify-write: no other thread ever
//! writes a free place of theirs (a return writes only the place it
//! holds, a sweep only a taken one, by compare-and-swap). When those are
//! taken, and for every other thread, a claim takes a place of the shared
//! part by compare-and-swap, starting from a place its thread favours. The
//! shared part alone has a place for every connection the pool can hold,
//! so a claim always finds one.
//!
//! [`thread_number`]: crate::thread_number::thread_number

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

impl Place {
    /// Records where the checkout that just claimed this place was made.
    #[inline]
    fn write_caller(&self, caller: &'static Location<'static>) {
        let caller = std::ptr::from_ref(caller).cast_mut();
        self.caller.store(caller, Ordering::Release);
    }
}

/// Threads with places of their own: the cores of a typical server.
const OWNED_THREADS: usize = 16;

/// Places each of the first [`OWNED_THREADS`] threads claims alone.
const PLACES_PER_THREAD: usize = 4;

/// Places of a thread's own, in front of the shared part.
const OWNED: usize = OWNED_THREADS * PLACES_PER_THREAD;

/// The places: [`OWNED`] of single threads, then the shared part, a power
/// of two (an index into it wraps with a mask, not a division).
pub(crate) struct Ledger {
    places: Box<[Place]>,
}

impl Ledger {
    /// A ledger whose shared part has at least `capacity` places.
    pub(crate) fn new(capacity: usize) -> Self {
        Ledger {
            places: (0..OWNED + capacity.max(1).next_power_of_two())
                .map(|_| Place {
                    since: AtomicU64::new(0),
                    caller: AtomicPtr::new(std::ptr::null_mut()),
                })
                .collect(),
        }
    }

    /// Claims a free place for a checkout at `now` from `caller` on the
    /// thread numbered `thread`: one of that thread's own if it has a free
    /// one, else one of the shared part, trying from a place the thread
    /// favours on; `None` if every place it may take is taken.
    #[inline]
    pub(crate) fn claim(
        &self,
        thread: usize,
        now: u64,
        caller: &'static Location<'static>,
    ) -> Option<u32> {
        let since = now.saturating_add(1) & !REPORTED;
        if thread < OWNED_THREADS {
            let first = thread * PLACES_PER_THREAD;
            for index in first..first + PLACES_PER_THREAD {
                let place = &self.places[index];
                // Only this thread writes a free place of its own, so no
                // other claim can come between the load and the store.
                // `Acquire`: the last holder's return (its clearing of the
                // caller) comes before the writes below.
                // `Release`: a sweep that reads this claim's time reads
                // a caller no older than that return's clearing, so never
                // the last holder's call site.
                if place.since.load(Ordering::Acquire) == 0 {
                    place.since.store(since, Ordering::Release);
                    place.write_caller(caller);
                    return Some(index as u32);
                }
            }
        }
        self.claim_shared(thread.wrapping_mul(8), since, caller)
    }

    /// Claims a free place of the shared part by compare-and-swap, trying
    /// from place `hint` (any number: it wraps) on.
    fn claim_shared(
        &self,
        hint: usize,
        since: u64,
        caller: &'static Location<'static>,
    ) -> Option<u32> {
        let shared = &self.places[OWNED..];
        let count = shared.len();
        (0..count)
            .map(|step| hint.wrapping_add(step) & (count - 1))
            .find(|&index| {
                let place = &shared[index];
                // `AcqRel`, for the reason an own place's claim is
                // `Release` (above).
                let free = place.since.load(Ordering::Relaxed) == 0
                    && place
                        .since
                        .compare_exchange(0, since, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok();
                if free {
                    place.write_caller(caller);
                }
                free
            })
            .map(|index| (OWNED + index) as u32)
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

    /// How many places its shared part has (a power of two).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.places.len() - OWNED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn here() -> &'static Location<'static> {
        Location::caller()
    }

    /// A thread number with no places of its own.
    const SHARED_ONLY: usize = OWNED_THREADS;

    /// `claim_shared` at `now` from `hint`, as an index into the shared
    /// part.
    fn shared(ledger: &Ledger, hint: usize, now: u64) -> Option<u32> {
        let index = ledger.claim_shared(hint, now + 1, here())?;
        Some(index - OWNED as u32)
    }

    #[test]
    fn a_checkout_older_than_the_cutoff_is_reported_once_and_a_returned_one_never() {
        let ledger = Ledger::new(4);
        let (old, young, returned) = (here(), here(), here());
        let a = ledger.claim(SHARED_ONLY, 0, old).unwrap();
        let b = ledger.claim(3, 50, young).unwrap();
        let c = ledger.claim(SHARED_ONLY, 0, returned).unwrap();
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
        ledger.sweep(1_000, 50, |caller, at| seen.push((caller.line(), at)));
        assert_eq!(seen.len(), 2, "returned: never again");
    }

    #[test]
    fn a_thread_claims_its_own_places_first_then_shared_ones() {
        let ledger = Ledger::new(2);
        let thread = 5;
        let own: Vec<u32> = (0..PLACES_PER_THREAD)
            .map(|_| ledger.claim(thread, 0, here()).unwrap())
            .collect();
        let first = (thread * PLACES_PER_THREAD) as u32;
        assert_eq!(
            own,
            (first..first + PLACES_PER_THREAD as u32).collect::<Vec<_>>()
        );
        let overflow = ledger.claim(thread, 0, here()).unwrap();
        assert!(overflow as usize >= OWNED, "then the shared part");
        ledger.release(own[1]);
        assert_eq!(
            ledger.claim(thread, 0, here()),
            Some(own[1]),
            "its own again"
        );
        // Another thread never takes this one's places.
        let other = ledger.claim(thread + 1, 0, here()).unwrap();
        assert!(!own.contains(&other));
    }

    #[test]
    fn a_full_shared_part_gives_no_place_until_one_is_freed() {
        let ledger = Ledger::new(2);
        let first = ledger.claim(SHARED_ONLY, 0, here()).unwrap();
        ledger.claim(SHARED_ONLY, 0, here()).unwrap();
        assert_eq!(ledger.claim(SHARED_ONLY, 0, here()), None);
        ledger.release(first);
        assert_eq!(ledger.claim(SHARED_ONLY, 0, here()), Some(first));
        assert_eq!(ledger.capacity(), 2);
    }

    #[test]
    fn shared_places_round_up_to_a_power_of_two_and_any_hint_wraps() {
        let ledger = Ledger::new(5);
        assert_eq!(ledger.capacity(), 8);
        assert_eq!(shared(&ledger, 3, 7), Some(3), "from the hint");
        assert_eq!(shared(&ledger, usize::MAX, 0), Some(7));
        assert_eq!(shared(&ledger, usize::MAX, 0), Some(0), "past the end");
        assert_eq!(shared(&ledger, 13, 0), Some(5), "13 wraps to 5");
    }

    #[test]
    fn concurrent_claims_never_share_a_place() {
        // Threads with places of their own and threads without, claiming
        // and returning at once: a place is never held twice, and every
        // place is free at the end. A stress run: a race in a claim is a
        // few instructions wide and seldom hit here, so the exclusivity of
        // a thread's own places is pinned by the deterministic tests above
        // (another thread never takes them; a thread without its own never
        // takes any).
        let ledger = Ledger::new(64);
        let held: Vec<AtomicU64> = (0..ledger.places.len())
            .map(|_| AtomicU64::new(0))
            .collect();
        std::thread::scope(|scope| {
            for thread in [0, 1, OWNED_THREADS, OWNED_THREADS + 1] {
                let (ledger, held) = (&ledger, &held);
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    for round in 0..200_000u64 {
                        if round % 3 == 2 {
                            if let Some(index) = mine.pop() {
                                held[index as usize].fetch_sub(1, Ordering::SeqCst);
                                ledger.release(index);
                            }
                            continue;
                        }
                        if mine.len() < 12 {
                            let index = ledger.claim(thread, round, here()).unwrap();
                            let before = held[index as usize].fetch_add(1, Ordering::SeqCst);
                            assert_eq!(before, 0, "place {index} held twice");
                            mine.push(index);
                        }
                    }
                    for index in mine {
                        held[index as usize].fetch_sub(1, Ordering::SeqCst);
                        ledger.release(index);
                    }
                });
            }
        });
        let mut seen = 0;
        ledger.sweep(u64::MAX, 0, |_, _| seen += 1);
        assert_eq!(seen, 0, "every place free again");
    }
}

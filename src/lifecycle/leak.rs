//! Leak detection: with `leak_threshold` set, every checkout is written in
//! the pool's ledger, with no allocation (one of the thread's own places,
//! claimed with a load and two stores, on the process's first 16
//! threads; a shared place, claimed by compare-and-swap, on the others:
//! `leak_ledger.rs`); a sweep on the pool's clock, every quarter threshold,
//! reports each checkout held longer than the threshold once (a `tracing`
//! warning naming the call site, and `Stats::leaks`), so a report comes
//! between one and one and a quarter thresholds after the checkout.
//! Returning the connection later is still normal. The ledger has a place
//! for every connection the idle queue can hold, which bounds `max_size`
//! for the pool's life, so every checkout finds one. With the threshold
//! unset, a checkout reads the pool's state word and nothing else.

use crate::sync::plain::Ordering;
use std::panic::Location;
use std::sync::{Arc, Weak};
use std::task::{Wake, Waker};
use std::time::Duration;

use super::leak_ledger::Ledger;
use crate::manager::Manager;
use crate::metrics::stats::Counter;
use crate::pool::inner::Inner;
use crate::thread_number::thread_number;

/// What a watched checkout holds until it comes back: its place in the
/// ledger.
pub(crate) type LeakWatch = u32;

/// Counts and logs one checkout held longer than `threshold`.
fn report<M: Manager>(
    inner: &Inner<M>,
    checked_out_at: &'static Location<'static>,
    threshold: Duration,
) {
    inner.stats.incr(Counter::Leaks);
    tracing::warn!(
        pool = %inner.name, endpoint = %inner.endpoint, checked_out_at = %checked_out_at,
        held_longer_than = ?threshold,
        "possible connection leak: a connection has not been returned"
    );
}

/// The threshold in nanoseconds, `u64::MAX` when leak detection is off.
fn threshold_ns<M: Manager>(inner: &Inner<M>) -> u64 {
    inner
        .hot
        .leak_threshold_ns
        .load(crate::sync::Ordering::Relaxed)
}

/// Whether a new guard's checkout is watched for leaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Track {
    /// Not watched: the pool's state word said leak detection is off.
    Off,
    /// Watched if leak detection is on; made on the thread with this
    /// number (`thread_number`, looked up once for the checkout).
    OnThread(usize),
    /// Watched if leak detection is on; the thread not looked up yet.
    Unknown,
}

/// Watches a checkout at `caller`, if `track` and leak detection say so.
#[inline]
pub(crate) fn watch_for_leak<M: Manager>(
    inner: &Inner<M>,
    caller: &'static Location<'static>,
    track: Track,
) -> Option<LeakWatch> {
    if track == Track::Off {
        return None;
    }
    let threshold = threshold_ns(inner);
    if threshold == u64::MAX {
        return None;
    }
    let thread = match track {
        Track::OnThread(thread) => thread,
        _ => thread_number(),
    };
    write_down(inner, caller, threshold, thread)
}

#[cold]
fn write_down<M: Manager>(
    inner: &Inner<M>,
    caller: &'static Location<'static>,
    threshold: u64,
    thread: usize,
) -> Option<LeakWatch> {
    // A place for every connection the idle queue can hold: `max_size`
    // can never be raised past it, so connections out never outnumber it.
    let ledger = inner
        .leaks
        .ledger
        .get_or_init(|| Ledger::new(inner.core.idle.capacity().max(16)));
    // The first threads claim places of their own without a
    // read-modify-write; the others start at a shared place their thread
    // favours, so claims rarely meet.
    let place = ledger.claim(thread, inner.clock.recent(), caller);
    debug_assert!(place.is_some(), "more checkouts out than the idle capacity");
    // Read before it is swapped: once the sweep runs, checkouts only read.
    if place.is_some()
        && !inner.leaks.sweeping.load(Ordering::Acquire)
        && !inner.leaks.sweeping.swap(true, Ordering::AcqRel)
    {
        schedule_sweep(inner, threshold);
    }
    place
}

/// The sweep: reports what is due, then schedules the next one, until
/// leak detection is turned off, a reconfigure starts a newer generation,
/// or the pool is gone.
struct Sweep<M: Manager> {
    pool: Weak<Inner<M>>,
    generation: u64,
}

impl<M: Manager> Wake for Sweep<M> {
    fn wake(self: Arc<Self>) {
        let Some(inner) = self.pool.upgrade() else {
            return;
        };
        let Some(ledger) = inner.leaks.ledger.get() else {
            return;
        };
        if inner.leaks.generation.load(Ordering::Acquire) != self.generation {
            return;
        }
        let mut threshold = threshold_ns(&inner);
        if threshold == u64::MAX {
            inner.leaks.sweeping.store(false, Ordering::Release);
            // Turned on again meanwhile, by a checkout that saw the sweep
            // still scheduled: keep sweeping for it.
            threshold = threshold_ns(&inner);
            if threshold == u64::MAX || inner.leaks.sweeping.swap(true, Ordering::AcqRel) {
                return;
            }
        }
        ledger.sweep(inner.clock.recent(), threshold, |caller, _| {
            report(&inner, caller, Duration::from_nanos(threshold));
        });
        let next = inner.clock.recent().saturating_add(period(threshold));
        inner.clock.timers().arm_detached(next, &Waker::from(self));
    }
}

/// How often the ledger is swept: a quarter threshold, at least 1 ms.
fn period(threshold: u64) -> u64 {
    (threshold / 4).max(1_000_000)
}

/// Schedules the first sweep of the current generation.
fn schedule_sweep<M: Manager>(inner: &Inner<M>, threshold: u64) {
    let sweep = Waker::from(Arc::new(Sweep {
        pool: inner.self_ref.clone(),
        generation: inner.leaks.generation.load(Ordering::Acquire),
    }));
    let next = inner.clock.recent().saturating_add(period(threshold));
    inner.clock.timers().arm_detached(next, &sweep);
}

/// The config was replaced: sweeps keep to the new `threshold` from now
/// on, for the checkouts already out too. A pool that never watched a
/// checkout has nothing to sweep, and this reads nothing shared.
pub(crate) fn reconfigured<M: Manager>(inner: &Inner<M>, threshold: Option<Duration>) {
    if inner.leaks.ledger.get().is_none() {
        return;
    }
    inner.leaks.generation.fetch_add(1, Ordering::AcqRel);
    inner.leaks.sweeping.store(false, Ordering::Release);
    if let Some(threshold) = threshold
        && !inner.leaks.sweeping.swap(true, Ordering::AcqRel)
    {
        schedule_sweep(inner, crate::time::nanos(threshold));
    }
}

/// The connection came back: it will not be reported.
pub(crate) fn unwatch<M: Manager>(inner: &Inner<M>, place: LeakWatch) {
    if let Some(ledger) = inner.leaks.ledger.get() {
        ledger.release(place);
    }
}

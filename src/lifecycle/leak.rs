//! Leak detection: with `leak_threshold` set, every checkout is written in
//! the pool's ledger (a place claimed with one compare-and-swap, no
//! allocation); a sweep on the pool's clock, every quarter threshold,
//! reports each checkout held longer than the threshold once (a `tracing`
//! warning naming the call site, and `Stats::leaks`), so a report comes
//! between one and one and a quarter thresholds after the checkout.
//! Returning the connection later is still normal. Should every place be
//! taken (`max_size` raised past twice the size the ledger was made for),
//! the checkout arms a timer of its own instead. With the threshold unset,
//! a checkout reads the pool's state word and nothing else.

use crate::sync::plain::{AtomicBool, Ordering};
use std::panic::Location;
use std::sync::{Arc, Weak};
use std::task::{Wake, Waker};
use std::time::Duration;

use super::leak_ledger::Ledger;
use crate::manager::Manager;
use crate::metrics::stats::Counter;
use crate::pool::inner::Inner;
use crate::thread_number::thread_number;
use crate::time::TimerKey as Key;

/// What a watched checkout holds until it comes back.
pub(crate) enum LeakWatch {
    /// Its place in the ledger.
    Place(u32),
    /// A timer of its own (the ledger was full).
    Timer(Box<TimerWatch>),
}

/// A checkout's own alarm, for when the ledger has no free place.
pub(crate) struct TimerWatch {
    key: Key,
    returned: Arc<AtomicBool>,
}

struct LeakAlarm<M: Manager> {
    pool: Weak<Inner<M>>,
    returned: Arc<AtomicBool>,
    checked_out_at: &'static Location<'static>,
    threshold: Duration,
}

impl<M: Manager> Wake for LeakAlarm<M> {
    fn wake(self: Arc<Self>) {
        if self.returned.load(Ordering::Acquire) {
            return;
        }
        if let Some(inner) = self.pool.upgrade() {
            report(&inner, self.checked_out_at, self.threshold);
        }
    }
}

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

/// Watches a checkout at `caller`, if leak detection is on.
#[inline]
pub(crate) fn watch_for_leak<M: Manager>(
    inner: &Inner<M>,
    caller: &'static Location<'static>,
) -> Option<LeakWatch> {
    let threshold = threshold_ns(inner);
    if threshold == u64::MAX {
        return None;
    }
    Some(write_down(inner, caller, threshold))
}

#[cold]
fn write_down<M: Manager>(
    inner: &Inner<M>,
    caller: &'static Location<'static>,
    threshold: u64,
) -> LeakWatch {
    let ledger = inner.leaks.ledger.get_or_init(|| {
        // Twice the bound: room for every checkout, and free places close
        // to where each thread starts looking.
        Ledger::new(inner.slots.max().saturating_mul(2).max(16))
    });
    // Each thread starts at a place of its own, so claims rarely meet.
    let hint = thread_number().wrapping_mul(8) % ledger.capacity();
    match ledger.claim(hint, inner.clock.recent(), caller) {
        Some(place) => {
            if !inner.leaks.sweeping.swap(true, Ordering::AcqRel) {
                schedule_sweep(inner, threshold);
            }
            LeakWatch::Place(place)
        }
        None => LeakWatch::Timer(Box::new(arm_alarm(inner, caller, threshold))),
    }
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

/// The config was replaced: sweeps keep to the new threshold from now on,
/// for the checkouts already out too.
pub(crate) fn reconfigured<M: Manager>(inner: &Inner<M>) {
    inner.leaks.generation.fetch_add(1, Ordering::AcqRel);
    inner.leaks.sweeping.store(false, Ordering::Release);
    let threshold = threshold_ns(inner);
    if threshold != u64::MAX
        && inner.leaks.ledger.get().is_some()
        && !inner.leaks.sweeping.swap(true, Ordering::AcqRel)
    {
        schedule_sweep(inner, threshold);
    }
}

fn arm_alarm<M: Manager>(
    inner: &Inner<M>,
    caller: &'static Location<'static>,
    threshold: u64,
) -> TimerWatch {
    let returned = Arc::new(AtomicBool::new(false));
    let alarm = Waker::from(Arc::new(LeakAlarm {
        pool: inner.self_ref.clone(),
        returned: Arc::clone(&returned),
        checked_out_at: caller,
        threshold: Duration::from_nanos(threshold),
    }));
    let deadline = inner.clock.now().saturating_add(threshold);
    let key = inner.clock.timers().arm_keyed(deadline, &alarm);
    TimerWatch { key, returned }
}

/// The connection came back: it will not be reported.
pub(crate) fn unwatch<M: Manager>(inner: &Inner<M>, watch: LeakWatch) {
    match watch {
        LeakWatch::Place(place) => {
            if let Some(ledger) = inner.leaks.ledger.get() {
                ledger.release(place);
            }
        }
        LeakWatch::Timer(watch) => {
            watch.returned.store(true, Ordering::Release);
            inner.clock.timers().disarm(watch.key);
        }
    }
}

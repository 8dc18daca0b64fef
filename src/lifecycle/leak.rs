//! Leak detection: with `leak_threshold` set, every checkout arms a timer;
//! if the guard is still out when it fires, the checkout is reported once
//! (a `tracing` warning naming the call site, and `Stats::leaks`). Returning
//! the connection later is still normal. With the threshold unset, a
//! checkout pays one relaxed load and nothing else.

use crate::sync::plain::{AtomicBool, Ordering};
use std::panic::Location;
use std::sync::{Arc, Weak};
use std::task::{Wake, Waker};
use std::time::Duration;

use crate::manager::Manager;
use crate::metrics::stats::Counter;
use crate::pool::inner::Inner;
use crate::time::TimerKey as Key;

/// Armed for one checked-out connection; disarmed when it comes back.
pub(crate) struct LeakWatch {
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
        let Some(inner) = self.pool.upgrade() else {
            return;
        };
        inner.stats.incr(Counter::Leaks);
        tracing::warn!(
            pool = %inner.name, endpoint = %inner.endpoint, checked_out_at = %self.checked_out_at,
            held_longer_than = ?self.threshold,
            "possible connection leak: a connection has not been returned"
        );
    }
}

/// Arms a leak alarm for a checkout at `caller`, if leak detection is on.
#[inline]
pub(crate) fn watch_for_leak<M: Manager>(
    inner: &Inner<M>,
    caller: &'static Location<'static>,
) -> Option<Box<LeakWatch>> {
    let threshold = inner
        .hot
        .leak_threshold_ns
        .load(crate::sync::Ordering::Relaxed);
    if threshold == u64::MAX {
        return None;
    }
    Some(arm_leak_alarm(inner, caller, threshold))
}

#[cold]
fn arm_leak_alarm<M: Manager>(
    inner: &Inner<M>,
    caller: &'static Location<'static>,
    threshold: u64,
) -> Box<LeakWatch> {
    let returned = Arc::new(AtomicBool::new(false));
    let alarm = Waker::from(Arc::new(LeakAlarm {
        pool: inner.self_ref.clone(),
        returned: Arc::clone(&returned),
        checked_out_at: caller,
        threshold: Duration::from_nanos(threshold),
    }));
    let deadline = inner.clock.now().saturating_add(threshold);
    let key = inner.clock.timers().arm_keyed(deadline, &alarm);
    Box::new(LeakWatch { key, returned })
}

/// The connection came back: the alarm will not fire.
pub(crate) fn unwatch<M: Manager>(inner: &Inner<M>, watch: &LeakWatch) {
    watch.returned.store(true, Ordering::Release);
    inner.clock.timers().disarm(watch.key);
}

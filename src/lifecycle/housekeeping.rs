//! Housekeeping: the synchronous half of background maintenance, run on the
//! clock's timer thread every `maintenance_interval` (jittered by up to
//! 10 %) with no task to spawn. It updates the warm size from recent demand,
//! closes idle connections the close policy retires, and wakes the
//! maintenance task when the pool is below target.

use std::sync::{Arc, Weak};
use std::task::{Wake, Waker};

use crate::manager::Manager;
use crate::metrics::status::status;
use crate::pool::handoff::reinsert_watched;
use crate::pool::inner::Inner;
use crate::pool::policy;
use crate::pool::release::release_slot;
use crate::time::nanos;

/// The housekeeping timer's waker: runs a round on the timer thread.
struct Housekeeping<M: Manager>(Weak<Inner<M>>);

impl<M: Manager> Wake for Housekeeping<M> {
    fn wake(self: Arc<Self>) {
        if let Some(inner) = self.0.upgrade() {
            housekeep(&inner);
        }
    }
}

/// Arms the next housekeeping round.
fn schedule<M: Manager>(inner: &Inner<M>) {
    if inner.is_closed() {
        return;
    }
    let interval = nanos(inner.settings.load().config.maintenance_interval);
    let jitter = (interval as f64 * 0.1 * fastrand::f64()) as u64;
    let at = inner.clock.now().saturating_add(interval - jitter);
    let waker = Waker::from(Arc::new(Housekeeping(inner.self_ref.clone())));
    inner.clock.timers().arm_detached(at, &waker);
}

/// One housekeeping round, then the next one is armed.
pub(crate) fn housekeep<M: Manager>(inner: &Inner<M>) {
    if inner.is_closed() {
        return;
    }
    update_warm_target(inner);
    expire_idle(inner);
    if needs_refill(inner) {
        inner.lifecycle.wake_maintenance();
    }
    schedule(inner);
}

fn update_warm_target<M: Manager>(inner: &Inner<M>) {
    let settings = inner.settings.load();
    let status = status(inner);
    let demand = status.size.saturating_sub(status.idle) + status.waiting;
    inner.lifecycle.update_warm_target(
        inner.clock.now(),
        demand,
        settings.config.demand_half_life.map(nanos),
        settings.config.min_idle,
        settings.config.max_size,
    );
}

/// Closes the idle connections the close policy retires: past their
/// lifetime, or idle past `idle_timeout` while they are spare (the others
/// keep `min_idle`, and the pool stays above `warm_target`).
fn expire_idle<M: Manager>(inner: &Inner<M>) {
    let recent = inner.clock.recent();
    // Each kept entry goes back at once (to the queue's tail, so the pass
    // still visits each entry once): holding them all until the end would
    // show concurrent gets an empty pool, and they would dial.
    let mut pass = crate::pool::pass::IdlePass::new(inner);
    for _ in 0..inner.core.idle.len() {
        let Some(entry) = pass.take() else { break };
        let idle_others = inner.core.idle.len();
        let spare = || policy::is_spare(inner, idle_others);
        match policy::expiry(&inner.hot, &entry, recent, spare) {
            Some(reason) => {
                inner.close_conn(entry, reason);
                release_slot(inner);
            }
            None => reinsert_watched(inner, entry),
        }
    }
}

/// Whether the pool is below `min_idle` idle or its warm size.
pub(crate) fn needs_refill<M: Manager>(inner: &Inner<M>) -> bool {
    needs_refill_beyond(inner, 0)
}

/// As `needs_refill`, counting `dialing` refills as idle already.
pub(crate) fn needs_refill_beyond<M: Manager>(inner: &Inner<M>, dialing: usize) -> bool {
    let min_idle = inner.hot.min_idle.load(crate::sync::Ordering::Relaxed);
    let size = inner.core.slots.size();
    size < inner.core.slots.max()
        && (inner.core.idle.len() + dialing < min_idle
            || size < inner.lifecycle.warm_target()
            || inner.lifecycle.owed_dials() > dialing)
}

/// After a checkout: if it left fewer than `min_idle` idle, wake the
/// maintenance task to refill now rather than at its next round. One
/// relaxed load when `min_idle` is 0.
#[inline]
pub(crate) fn refill_if_below_min_idle<M: Manager>(inner: &Inner<M>) {
    let min_idle = inner.hot.min_idle.load(crate::sync::Ordering::Relaxed);
    if min_idle != 0 && inner.core.idle.len() < min_idle {
        inner.lifecycle.request_refill();
    }
}

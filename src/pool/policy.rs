//! Why a connection is closed rather than used again: the one close policy,
//! applied at checkout, on return and by background expiry alike.

use crate::config::HotLimits;
use crate::core::entry::Entry;
use crate::manager::{CloseReason, Manager};
use crate::pool::inner::Inner;

/// Whether `entry` has outlived its lifetime at `now`, under the
/// `max_lifetime` in force (so a reconfigured lifetime reaches it).
#[inline]
pub(crate) fn outlived<C>(hot: &HotLimits, entry: &Entry<C>, now: u64) -> bool {
    let age = now.saturating_sub(entry.created);
    // One relaxed load for every connection younger than the shortest
    // possible lifetime; the exact, jittered one only past it.
    age >= hot.lifetime_floor_ns.load(crate::sync::Ordering::Relaxed)
        && age >= hot.lifetime_ns(entry.jitter_draw())
}

/// Whether a connection passes on the pool's quick checks alone at `now`:
/// used recently, past its young-death window (or proven alive inside it)
/// and not near its end of life. Three loads and three compares: the
/// checkout hot path.
#[inline(always)]
pub(crate) fn is_quick<C>(hot: &HotLimits, entry: &Entry<C>, now: u64) -> bool {
    let relaxed = crate::sync::Ordering::Relaxed;
    let idle_for = now.saturating_sub(entry.last_used);
    let age = now.saturating_sub(entry.created);
    idle_for < hot.quick_ns.load(relaxed)
        && age < hot.lifetime_floor_ns.load(relaxed)
        && (age >= hot.young_death_window_ns.load(relaxed) || entry.seen_alive())
}

/// The time-based reason to close `entry` at `now`, if any: its lifetime,
/// or its idle timeout if it is `spare` (asked only then: it reads shared
/// counters).
pub(crate) fn expiry<C>(
    hot: &HotLimits,
    entry: &Entry<C>,
    now: u64,
    spare: impl FnOnce() -> bool,
) -> Option<CloseReason> {
    let idle_timeout = hot.idle_timeout_ns.load(crate::sync::Ordering::Relaxed);
    if outlived(hot, entry, now) {
        Some(CloseReason::Lifetime)
    } else if now.saturating_sub(entry.last_used) >= idle_timeout && spare() {
        Some(CloseReason::IdleTimeout)
    } else {
        None
    }
}

/// Whether one connection out of the idle queue, with `idle_others` still
/// idle, may be closed for idleness: the others keep `min_idle`, and the
/// pool stays above its warm size.
pub(crate) fn is_spare<M: Manager>(inner: &Inner<M>, idle_others: usize) -> bool {
    let min_idle = inner.hot.min_idle.load(crate::sync::Ordering::Relaxed);
    idle_others >= min_idle && inner.core.slots.size() > inner.lifecycle.warm_target()
}

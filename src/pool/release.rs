//! Giving slots back and serving waiters: the returner's half of the
//! lost-wake-up handshake (`core/mod.rs`), and the closes that free a slot.

use crate::core::entry::Entry;
use crate::core::waiters::Grant;
use crate::drop_guard::Unwinding;
use crate::manager::{CloseReason, Manager};
use crate::pool::inner::Inner;
use crate::sync::{Ordering, fence};

/// A connection whose check panicked: closed (dropped, if the thread is
/// unwinding, so no more user code runs) and its slot freed.
pub(crate) fn close_after_panic<M: Manager>(
    inner: &Inner<M>,
    entry: Entry<M::Connection>,
    unwinding: Unwinding,
) {
    match unwinding {
        Unwinding(true) => {
            inner.stats.closed(CloseReason::Broken);
            drop(entry);
        }
        Unwinding(false) => inner.close_conn(entry, CloseReason::Broken),
    }
    release_slot(inner);
}

/// Closes a connection and frees its slot (the uncommon return paths).
#[cold]
pub(crate) fn close_and_release<M: Manager>(
    inner: &Inner<M>,
    entry: Entry<M::Connection>,
    reason: CloseReason,
) {
    inner.close_conn(entry, reason);
    release_slot(inner);
}

/// Gives a slot back and lets a waiter have it.
pub(crate) fn release_slot<M: Manager>(inner: &Inner<M>) {
    inner.slots.release();
    after_publish(inner);
    if inner.is_closed() {
        inner.lifecycle.wake_drain();
    }
}

/// The returner's half of the lost-wake-up handshake.
#[inline]
pub(crate) fn after_publish<M: Manager>(inner: &Inner<M>) {
    // Pairs with the fence in `Waiters::register`: our published resource,
    // or the waiter's raised count, is seen by the other side.
    fence(Ordering::SeqCst);
    if inner.waiters.count() != 0 {
        dispatch(inner);
    }
}

/// Hands idle connections, then free slots, to waiters in arrival order.
pub(crate) fn dispatch<M: Manager>(inner: &Inner<M>) {
    let now = inner.clock.now();
    inner.waiters.serve(|| next_grant(inner, now));
}

/// An idle connection, else a free slot if a dial may start at `now`.
pub(crate) fn next_grant<M: Manager>(inner: &Inner<M>, now: u64) -> Option<Grant<M::Connection>> {
    // A parked connection comes after the idle ones: its taker runs its
    // recycle step first.
    if let Some(entry) = inner.idle.pop().or_else(|| inner.parked.pop()) {
        return Some(Grant::Conn(entry));
    }
    (inner.gate.can_dial(now) && !inner.gate.breaker_open() && inner.slots.try_reserve())
        .then_some(Grant::Slot)
}

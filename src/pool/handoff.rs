//! The return path: giving used connections back, and handing them to
//! waiters in arrival order.
//!
//! Every function here publishes a resource and then runs the returner's
//! half of the lost-wake-up handshake described in `core/mod.rs`.

use super::policy;
use super::release::{
    carry_out, close_and_release, guarded, guarded_in_place, held_entry, release_slot,
};
use super::watch;
use crate::core::entry::Entry;
use crate::core::protocol::Stored;
use crate::core::waiters::{Grant, Outcome, flags_in};
use crate::hooks;
use crate::manager::{CloseReason, Manager};
use crate::pool::inner::{Inner, path};

/// Returns a used connection to the pool, or closes it if it cannot stay:
/// the manager refuses it (`check_return`), the `on_return` hook does, or
/// it has outlived its lifetime.
#[inline]
pub(crate) fn put<M: Manager>(inner: &Inner<M>, entry: Entry<M::Connection>) {
    put_from(inner, &mut Some(entry));
}

/// [`put`] of the connection a guard holds in `held` (left `None`); a
/// `None` there does nothing. The hooked path takes it out itself: moved
/// out here and handed over by value, the entry went through the stack as
/// words and the out-of-line path read it back wide, a store-forwarding
/// stall on every hooked return.
#[inline]
pub(crate) fn put_from<M: Manager>(inner: &Inner<M>, held: &mut Option<Entry<M::Connection>>) {
    if flags_in(inner.core.waiters.word(), path::ON_RETURN) {
        // Its own path, out of line, so a pool without the hook does not
        // carry its code.
        return put_through_hook(inner, held);
    }
    let Some(entry) = held.take() else {
        return;
    };
    // User code, each call panic-safe (`guarded`).
    let (entry, checked) = guarded(inner, entry, |conn| inner.manager.check_return(conn));
    if let Err(reason) = checked {
        return close_and_release(inner, entry, reason);
    }
    let (entry, dirty) = guarded(inner, entry, |conn| inner.manager.needs_recycle(conn));
    keep(inner, entry, dirty);
}

/// `put` for a pool with an `on_return` hook: the manager's check, then
/// the hook, each on the connection in place in the guard's `held`, which
/// is read out whole only after the user calls: read out first, right
/// after the guard's narrow stores of it, the wide read stalled every
/// hooked return on store forwarding.
#[inline(never)]
fn put_through_hook<M: Manager>(inner: &Inner<M>, held: &mut Option<Entry<M::Connection>>) {
    if held.is_none() {
        return;
    }
    if let Err(reason) = guarded_in_place(inner, held, |conn| inner.manager.check_return(conn)) {
        return close_and_release(inner, held_entry(held), reason);
    }
    let hook = inner.hooks.on_return.as_ref().expect("checked by put");
    if let Err(error) = guarded_in_place(inner, held, |conn| hook(conn)) {
        return refused_on_return(inner, held_entry(held), &error);
    }
    let dirty = guarded_in_place(inner, held, |conn| inner.manager.needs_recycle(conn));
    keep(inner, held_entry(held), dirty);
}

/// A connection the `on_return` hook refused: closed, its slot freed.
#[cold]
#[inline(never)]
fn refused_on_return<M: Manager>(inner: &Inner<M>, entry: Entry<M::Connection>, error: &M::Error) {
    hooks::refused::<M>((&inner.name, &inner.endpoint), "return", error);
    close_and_release(inner, entry, CloseReason::Rejected);
}

/// A returned connection that passed its checks: back to idle (or a
/// waiter) unless it outlived its lifetime, or parked for its recycle step
/// if the manager wants one (`dirty`). Always inlined: called out of line
/// from the hooked return, it took the entry by value and copied it wide
/// right after the checkout's narrow stores of it, a store-forwarding
/// stall of about 4 ns on every hooked get + drop.
#[inline(always)]
fn keep<M: Manager>(inner: &Inner<M>, entry: Entry<M::Connection>, dirty: bool) {
    let now = inner.clock.recent();
    if policy::outlived(&inner.hot, &entry, now) {
        return close_and_release(inner, entry, CloseReason::Lifetime);
    }
    if dirty {
        return park(inner, entry, now);
    }
    publish(inner, entry, Some(now), true);
}

/// A returned connection the manager's recycle step must run on first:
/// parked, the maintenance task woken to run the step, and a waiter (who
/// will run it in its own get) served, all off the returner's path.
#[cold]
#[inline(never)]
fn park<M: Manager>(inner: &Inner<M>, mut entry: Entry<M::Connection>, now: u64) {
    entry.last_used = now;
    if inner.is_closed() {
        return close_and_release(inner, entry, CloseReason::PoolClosed);
    }
    let then = inner.core.park(entry);
    inner.lifecycle.request_refill();
    carry_out(inner, then);
}

/// A connection whose recycle step succeeded, back into use as a return
/// at `now` would be (to a waiter, else idle).
pub(crate) fn recycled<M: Manager>(inner: &Inner<M>, entry: Entry<M::Connection>) {
    let now = inner.clock.recent();
    publish(inner, entry, Some(now), true);
}

/// Puts a connection back without marking it used (maintenance, for
/// example, checks idle connections without resetting their idle time),
/// into the shared queue.
#[inline]
pub(crate) fn reinsert<M: Manager>(inner: &Inner<M>, entry: Entry<M::Connection>) {
    publish(inner, entry, None, true);
}

/// `reinsert` for a connection that never left the manager's idle watch
/// (taken out by a pass in memory): the manager is not told it went idle.
#[inline]
pub(crate) fn reinsert_watched<M: Manager>(inner: &Inner<M>, entry: Entry<M::Connection>) {
    publish(inner, entry, None, false);
}

/// Publishes an idle connection: to the oldest waiter if any, else into
/// the idle store (into this thread's slot when `returned` by its user,
/// stamped last used at that time, and the order is last in, first out),
/// then the returner's half of the handshake; the core decides, this
/// carries it out.
#[inline]
fn publish<M: Manager>(
    inner: &Inner<M>,
    entry: Entry<M::Connection>,
    returned: Option<u64>,
    went_idle: bool,
) {
    let slow_if = match went_idle {
        true => path::WATCH,
        false => 0,
    };
    match inner.core.store(entry, returned, slow_if) {
        Stored::Slow { entry, word } => {
            let watched = went_idle && flags_in(word, path::WATCH);
            publish_slow(inner, entry, returned.is_some(), watched)
        }
        stored => settle(inner, stored),
    }
}

/// Carries out what the core made of a stored connection (the general
/// route is the caller's).
#[inline]
fn settle<M: Manager>(inner: &Inner<M>, stored: Stored<M::Connection>) {
    match stored {
        Stored::Kept(then) => carry_out(inner, then),
        Stored::Slow { .. } => unreachable!("the caller takes the general route"),
        Stored::Closed(entry) => close_and_release(inner, entry, CloseReason::PoolClosed),
        // Over a lowered max_size: this connection is the surplus.
        Stored::Surplus(entry) => inner.close_conn(entry, CloseReason::Resize),
        // Unreachable while max_size <= capacity; never lose it anyway.
        Stored::Full(entry) => close_and_release(inner, entry, CloseReason::Resize),
    }
}

/// `publish` with somebody waiting or the idle watch on: to the oldest
/// waiter, else (told to the watch) into the idle store.
#[cold]
fn publish_slow<M: Manager>(
    inner: &Inner<M>,
    entry: Entry<M::Connection>,
    returned: bool,
    watched: bool,
) {
    let Some(entry) = inner.core.hand_over(entry) else {
        return;
    };
    let entry = match watched {
        true => watch::going_idle(inner, entry),
        false => entry,
    };
    settle(inner, inner.core.store_idle(entry, returned));
}

/// Gives back whatever a withdrawn waiter had been handed.
pub(crate) fn give_back<M: Manager>(inner: &Inner<M>, outcome: Outcome<M::Connection, M::Error>) {
    if let Outcome::Granted(grant) = outcome {
        give_back_grant(inner, grant);
    }
}

/// Gives back a connection (as a return) or a slot.
pub(crate) fn give_back_grant<M: Manager>(inner: &Inner<M>, grant: Grant<M::Connection>) {
    match grant {
        Grant::Conn(entry) => put(inner, entry),
        Grant::Slot => release_slot(inner),
    }
}

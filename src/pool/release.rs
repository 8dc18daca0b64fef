//! Giving slots back and serving waiters: the returner's half of the
//! lost-wake-up handshake (`core/mod.rs`), and the closes that free a slot.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use crate::core::entry::Entry;
use crate::core::protocol::Then;
use crate::core::waiters::Grant;
use crate::drop_guard::{DropGuard, Unwinding};
use crate::manager::{CloseReason, Manager};
use crate::pool::inner::Inner;

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

/// Runs synchronous user code (a hook, a manager's check) on the
/// connection of `entry`, which the pool owns and a slot counts. If it
/// panics, the connection is dropped (no more user code runs on it),
/// counted as broken, its slot freed, and the panic goes on.
///
/// The connection stays where it is while `check` runs: a guard that owns
/// it moves it in and out of an `Option`, and those copies (at other widths
/// than the stores that wrote them) stalled every hooked checkout and
/// return on store forwarding.
#[inline(always)]
pub(crate) fn guarded<M: Manager, R>(
    inner: &Inner<M>,
    mut entry: Entry<M::Connection>,
    check: impl FnOnce(&mut M::Connection) -> R,
) -> (Entry<M::Connection>, R) {
    match catch_unwind(AssertUnwindSafe(|| check(&mut entry.conn))) {
        Ok(verdict) => (entry, verdict),
        Err(panic) => abandon_after_panic(inner, entry, panic),
    }
}

/// [`guarded`] on the connection in place in `held`, which holds one: on
/// a panic, it is taken out and abandoned. For a guard's connection,
/// read out whole only after the calls (read out first, right after the
/// guard's narrow stores of it, the wide read stalled).
#[inline(always)]
pub(crate) fn guarded_in_place<M: Manager, R>(
    inner: &Inner<M>,
    held: &mut Option<Entry<M::Connection>>,
    check: impl FnOnce(&mut M::Connection) -> R,
) -> R {
    let conn = &mut held.as_mut().expect("a held connection").conn;
    match catch_unwind(AssertUnwindSafe(|| check(conn))) {
        Ok(verdict) => verdict,
        Err(panic) => abandon_after_panic(inner, held_entry(held), panic),
    }
}

/// The connection `held` holds, taken out.
#[inline(always)]
pub(crate) fn held_entry<C>(held: &mut Option<Entry<C>>) -> Entry<C> {
    held.take().expect("a held connection")
}

/// Runs a user hook on `conn` where it lies, catching a panic: for a
/// caller that holds the rest of the entry in registers and carries out
/// the verdict itself ([`abandon_after_panic`] on a panic). Out of line,
/// so the paths that call it carry no landing pad (inlined, the
/// `catch_unwind` cost the hooked checkout about 7 ns), and handed only
/// the connection: handed the whole entry, the callee read it back wide
/// right after the caller's narrow stores of it (a store-forwarding stall
/// on every hooked checkout).
#[inline(never)]
pub(crate) fn call_hook<C, E>(
    hook: &(dyn Fn(&mut C) -> Result<(), E> + Send + Sync),
    conn: &mut C,
) -> std::thread::Result<Result<(), E>> {
    catch_unwind(AssertUnwindSafe(|| hook(conn)))
}

/// A connection whose check panicked: dropped, counted, its slot freed
/// (even if its own drop panics), and the check's panic resumed.
#[cold]
#[inline(never)]
pub(crate) fn abandon_after_panic<M: Manager>(
    inner: &Inner<M>,
    entry: Entry<M::Connection>,
    panic: Box<dyn Any + Send>,
) -> ! {
    let slot = DropGuard::new(inner, (), |inner, (), _| release_slot(inner));
    inner.stats.closed(CloseReason::Broken);
    drop(entry);
    drop(slot);
    resume_unwind(panic)
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
    let then = inner.core.release_slot();
    carry_out(inner, then);
}

/// The returner's half of the lost-wake-up handshake, after a resource the
/// core does not hold (a dial ended, the dial gate reopened) was published.
#[inline]
pub(crate) fn after_publish<M: Manager>(inner: &Inner<M>) {
    if inner.core.published_to_waiters() {
        dispatch(inner);
    }
}

/// Does what the core's handshake asked: close what is idle in a closed
/// pool (a close may have missed what was just published) and wake a
/// drain; serve waiters.
#[inline]
pub(crate) fn carry_out<M: Manager>(inner: &Inner<M>, then: Then) {
    if then.closed {
        closed_after_publish(inner);
    }
    if then.waiting {
        dispatch(inner);
    }
}

#[cold]
fn closed_after_publish<M: Manager>(inner: &Inner<M>) {
    inner.close_idle(CloseReason::PoolClosed);
    inner.lifecycle.wake_drain();
}

/// Hands idle connections, then free slots, to waiters in arrival order.
pub(crate) fn dispatch<M: Manager>(inner: &Inner<M>) {
    let now = inner.clock.now();
    inner.core.serve(|| may_dial(inner, now));
}

/// An idle connection, else a free slot if a dial may start at `now`.
pub(crate) fn next_grant<M: Manager>(inner: &Inner<M>, now: u64) -> Option<Grant<M::Connection>> {
    inner.core.next_grant(|| may_dial(inner, now))
}

/// Whether a dial may start at `now`: the gate is open and the breaker
/// closed (a parked connection comes before it: its taker runs its recycle
/// step first).
fn may_dial<M: Manager>(inner: &Inner<M>, now: u64) -> bool {
    inner.gate.can_dial(now) && !inner.gate.breaker_open()
}

//! The pool's half of a manager's idle watch ([`Manager::watch_idle`]):
//! telling the manager when a connection goes idle and when it leaves idle
//! for use, and reaping the connections the watch saw die.
//!
//! Every call into the manager here runs under a guard: if it panics, the
//! connection is closed and its slot freed as the panic passes.

use crate::core::handoff::{close_after_panic, reinsert_watched, release_slot};
use crate::core::idle::Entry;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use crate::drop_guard::{DropGuard, Unwinding};
use crate::manager::{CloseReason, IdleWatch, Manager};
use crate::pool::inner::Inner;

/// Whether the manager watches idle connections.
#[inline]
pub(crate) fn is_on<M: Manager>(inner: &Inner<M>) -> bool {
    inner.watch != IdleWatch::Off
}

/// `entry` goes into the idle store: the manager may start watching it.
/// Runs on every return, so the call is guarded by `catch_unwind` (free
/// when nothing panics) rather than a drop guard: if the manager panics,
/// the connection is closed and its slot freed before the panic goes on.
#[inline]
pub(crate) fn going_idle<M: Manager>(
    inner: &Inner<M>,
    entry: Entry<M::Connection>,
) -> Entry<M::Connection> {
    let mut entry = entry;
    match catch_unwind(AssertUnwindSafe(|| inner.manager.idle(&mut entry.conn))) {
        Ok(()) => entry,
        Err(panic) => {
            close_after_panic(inner, entry, Unwinding(false));
            resume_unwind(panic)
        }
    }
}

/// `entry` leaves the idle store to be used: the watch stops. `None` if the
/// watch saw it die: it is closed (as [`CloseReason::Hangup`]) and its
/// slot stays with the caller, who may dial into it. A panicking manager
/// is handled as in `going_idle`.
#[inline]
pub(crate) fn leaving_idle<M: Manager>(
    inner: &Inner<M>,
    entry: Entry<M::Connection>,
) -> Option<Entry<M::Connection>> {
    let mut entry = entry;
    match catch_unwind(AssertUnwindSafe(|| inner.manager.unwatch(&mut entry.conn))) {
        Ok(false) => Some(entry),
        Ok(true) => {
            inner.close_conn(entry, CloseReason::Hangup);
            None
        }
        Err(panic) => {
            close_after_panic(inner, entry, Unwinding(false));
            resume_unwind(panic)
        }
    }
}

/// Closes every idle connection the watch saw die and frees their slots;
/// the living go back as they were, still watched. Runs after
/// `IdleDeaths::notify`: a pass over the idle store in memory, with no
/// system call for the living, that stops once it has found the `reported`
/// deaths (a checkout may have closed some already: then it goes through).
pub(crate) fn reap<M: Manager>(inner: &Inner<M>, reported: u64) -> u64 {
    let mut reaped = 0;
    let mut pass = inner.idle.pass();
    for _ in 0..inner.idle.len() {
        if reaped >= reported {
            break;
        }
        let Some(entry) = pass.take() else { break };
        let held = DropGuard::new(inner, entry, close_after_panic);
        let died = inner.manager.died_idle(&held.conn);
        let entry = held.disarm();
        if !died {
            // Never left the watch: back without telling the manager.
            reinsert_watched(inner, entry);
            continue;
        }
        match leaving_idle(inner, entry) {
            None => {
                release_slot(inner);
                reaped += 1;
            }
            Some(entry) => reinsert_watched(inner, entry),
        }
    }
    reaped
}

//! The pool's half of a manager's idle watch ([`Manager::idle_watcher`]):
//! telling the manager when a connection goes idle and when it leaves idle
//! for use. (Reaping the connections the watch saw die is
//! `lifecycle::reap`.)
//!
//! Every call into the manager here runs under a guard: if it panics, the
//! connection is closed and its slot freed as the panic passes.

use super::release::close_after_panic;
use crate::core::entry::Entry;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use crate::drop_guard::Unwinding;
use crate::manager::{CloseReason, IdleWatcher, Manager};
use crate::pool::inner::Inner;

/// The manager's watcher; the pool calls it only while the watch is on,
/// which that watcher turned on as the pool was built.
#[inline]
pub(crate) fn watcher<M: Manager>(inner: &Inner<M>) -> Option<&dyn IdleWatcher<M::Connection>> {
    inner.manager.idle_watcher()
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
    match catch_unwind(AssertUnwindSafe(|| {
        if let Some(watcher) = watcher(inner) {
            watcher.idle(&mut entry.conn)
        }
    })) {
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
    match catch_unwind(AssertUnwindSafe(|| {
        watcher(inner).is_some_and(|watcher| watcher.unwatch(&mut entry.conn))
    })) {
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

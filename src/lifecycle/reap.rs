//! Reaping the idle connections a manager's idle watch saw die
//! ([`IdleDeaths::notify`](crate::IdleDeaths::notify)): a pass over the idle
//! store in memory that closes the dead and frees their slots.

use crate::drop_guard::DropGuard;
use crate::manager::Manager;
use crate::pool::handoff::reinsert_watched;
use crate::pool::inner::Inner;
use crate::pool::release::{close_after_panic, release_slot};
use crate::pool::watch::{leaving_idle, watcher};

/// Closes every idle connection the watch saw die and frees their slots;
/// the living go back as they were, still watched. Runs after
/// `IdleDeaths::notify`: a pass over the idle store in memory, with no
/// system call for the living, that stops once it has found the `reported`
/// deaths (a checkout may have closed some already: then it goes through).
pub(crate) fn reap<M: Manager>(inner: &Inner<M>, reported: u64) -> u64 {
    let mut reaped = 0;
    let mut pass = crate::pool::pass::IdlePass::new(inner);
    for _ in 0..inner.core.idle.len() {
        if reaped >= reported {
            break;
        }
        let Some(entry) = pass.take() else { break };
        let held = DropGuard::new(inner, entry, close_after_panic);
        let died = watcher(inner).is_some_and(|watcher| watcher.died_idle(&held.conn));
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

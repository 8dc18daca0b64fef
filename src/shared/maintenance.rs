//! A shared pool's maintenance round: connections past `max_lifetime`,
//! closed by their peer, or idle for `idle_timeout` are drained.

use std::sync::Weak;

use crate::time::nanos;

use super::inner::Inner;
use super::manager::SharedManager;
use super::table::DrainCause;

/// One round, if the pool still exists.
pub(super) fn sweep<M: SharedManager>(pool: &Weak<Inner<M>>) -> bool {
    match pool.upgrade() {
        Some(inner) => {
            round(&inner);
            true
        }
        None => false,
    }
}

pub(super) fn round<M: SharedManager>(inner: &Inner<M>) {
    let now = inner.clock.now();
    let (entries, _) = inner.table.connections();
    let mut idle_since = inner.idle_since.lock();
    idle_since.retain(|id, _| entries.iter().any(|entry| entry.id == *id));
    for entry in entries.iter().filter(|entry| !entry.is_draining()) {
        let expired = inner
            .settings
            .max_lifetime
            .is_some_and(|lifetime| now.saturating_sub(entry.born) >= nanos(lifetime));
        if expired {
            inner.table.drain(entry, DrainCause::Lifetime);
            continue;
        }
        // User code: a panic is caught, logged, and the connection is
        // taken as closed; maintenance goes on.
        let open = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            inner.manager.is_open(&entry.conn)
        }));
        if !open.unwrap_or_else(|_| {
            tracing::error!(
                id = entry.id,
                "shared pool: the manager's is_open panicked in maintenance; the connection drains"
            );
            false
        }) {
            tracing::debug!(id = entry.id, "shared pool: a connection closed while idle");
            inner.table.drain(entry, DrainCause::Closed);
            continue;
        }
        let Some(timeout) = inner.settings.idle_timeout else {
            continue;
        };
        if entry.load() != 0 {
            idle_since.remove(&entry.id);
            continue;
        }
        let started = entry.started();
        match idle_since.get(&entry.id) {
            Some(&(seen, since)) if seen == started => {
                if now.saturating_sub(since) >= nanos(timeout) {
                    tracing::debug!(id = entry.id, "shared pool: an idle connection drains");
                    inner.table.drain(entry, DrainCause::Idle);
                }
            }
            _ => {
                idle_since.insert(entry.id, (started, now));
            }
        }
    }
}

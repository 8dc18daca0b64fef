//! The manager's asynchronous recycle step (`Manager::recycle`) on a
//! returned connection, run by whoever takes it from the parked queue: the
//! maintenance task, or a get that found nothing idle.

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::core::entry::Entry;
use crate::drop_guard::DropGuard;
use crate::manager::{CloseReason, Manager};
use crate::metrics::stats::Counter;
use crate::pool::handoff::recycled;
use crate::pool::inner::Inner;
use crate::pool::release::{close_after_panic, release_slot};
use crate::time::{Raced, with_deadline};

/// Whether `entry` still needs its recycle step (a connection taken from
/// the parked queue does; one taken from idle does not). The manager's
/// answer is user code: if it panics, the connection is closed and its
/// slot freed as the panic passes.
pub(crate) fn is_dirty<M: Manager>(
    inner: &Inner<M>,
    entry: Entry<M::Connection>,
) -> (Entry<M::Connection>, bool) {
    let mut held = DropGuard::new(inner, entry, close_after_panic);
    let dirty = inner.manager.needs_recycle(&mut held.conn);
    (held.disarm(), dirty)
}

/// Runs the recycle step on `entry` under `recycle_timeout` (and
/// `deadline`). Done: the entry comes back, ready for use. Failed or timed
/// out: the connection is closed and `None` returned, its slot still the
/// caller's. Dropped mid-step (or the step panicked): its state is
/// unknown, so it is closed and its slot freed.
pub(crate) async fn recycle_entry<M: Manager>(
    inner: &Inner<M>,
    entry: Entry<M::Connection>,
    deadline: u64,
) -> Option<Entry<M::Connection>> {
    let mut held = DropGuard::new(inner, entry, close_after_panic);
    let limit = inner
        .clock
        .now()
        .saturating_add(inner.settings.load().recycle_timeout_ns)
        .min(deadline);
    let done = matches!(
        with_deadline(&inner.clock, limit, inner.manager.recycle(&mut held.conn)).await,
        Raced::Done(Ok(()))
    );
    let entry = held.disarm();
    if done {
        inner.stats.incr(Counter::Recycled);
        return Some(entry);
    }
    inner.stats.incr(Counter::RecycleFailures);
    tracing::debug!(pool = %inner.name, endpoint = %inner.endpoint, "a returned connection failed its recycle step");
    inner.close_conn(entry, CloseReason::Broken);
    None
}

/// Runs the recycle step on every connection parked now, all at once (a
/// reset is a round trip: one at a time, a burst of returns would wait
/// for each other's), and puts each back into use (or closes it and frees
/// its slot): the maintenance task's share, woken by every park.
pub(crate) async fn recycle_parked<M: Manager>(inner: &Inner<M>) {
    let parked = inner.core.parked.len();
    if parked == 0 {
        // Every maintenance round asks; most find nothing (and the set
        // below allocates).
        return;
    }
    let mut running = FuturesUnordered::new();
    for _ in 0..parked {
        let Some(entry) = inner.core.parked.pop() else {
            break;
        };
        running.push(recycle_entry(inner, entry, u64::MAX));
    }
    while let Some(outcome) = running.next().await {
        match outcome {
            Some(entry) => recycled(inner, entry),
            None => release_slot(inner),
        }
    }
}

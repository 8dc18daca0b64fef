//! The checks a connection passes before it is handed out: the close
//! policy, the manager's liveness check, and the ping.

use crate::core::handoff::close_after_panic;
use crate::core::idle::Entry;
use crate::drop_guard::DropGuard;
use crate::lifecycle::policy;
use crate::manager::{CloseReason, Manager};
use crate::pool::inner::Inner;
use crate::time::{Raced, with_deadline};

/// What the checkout checks made of an idle connection.
pub(crate) enum Checked<C> {
    /// Good to hand out.
    Ready(Entry<C>),
    /// Passed the synchronous checks, but idle past `ping_after`.
    NeedsPing(Entry<C>),
    /// Closed; its slot stays with the caller.
    Closed,
}

/// Checks a connection taken from idle. A bad one is closed and its slot
/// stays with the caller, who may dial into it.
#[inline]
pub(crate) fn validate<M: Manager>(
    inner: &Inner<M>,
    entry: Entry<M::Connection>,
    now: u64,
) -> Checked<M::Connection> {
    let hot = &inner.hot;
    let relaxed = crate::core::sync::Ordering::Relaxed;
    let idle_for = now.saturating_sub(entry.last_used);
    // Two loads and two compares for a connection used recently and young
    // enough: the checkout hot path.
    if idle_for < hot.quick_ns.load(relaxed)
        && now.saturating_sub(entry.created) < hot.lifetime_floor_ns.load(relaxed)
    {
        return Checked::Ready(entry);
    }
    validate_idle(inner, entry, now, idle_for)
}

/// The full checks, for a connection idle or old enough to need one.
fn validate_idle<M: Manager>(
    inner: &Inner<M>,
    entry: Entry<M::Connection>,
    now: u64,
    idle_for: u64,
) -> Checked<M::Connection> {
    let relaxed = crate::core::sync::Ordering::Relaxed;
    let spare = policy::is_spare(inner, inner.idle.len());
    let mut reason = policy::expiry(&inner.hot, &entry, now, spare);
    // `is_broken` is user code: if it panics, the guard closes the
    // connection and frees its slot as the panic passes.
    let mut held = DropGuard::new(inner, entry, close_after_panic);
    if reason.is_none()
        && idle_for >= inner.hot.check_after_ns.load(relaxed)
        && inner.manager.is_broken(&mut held.conn)
    {
        reason = Some(CloseReason::Broken);
    }
    let entry = held.disarm();
    match reason {
        None if idle_for >= inner.hot.ping_after_ns.load(relaxed) => Checked::NeedsPing(entry),
        None => Checked::Ready(entry),
        Some(reason) => {
            inner.close_conn(entry.conn, reason);
            Checked::Closed
        }
    }
}

/// Pings `entry` under the ping timeout (and `deadline`). Healthy: the entry
/// comes back. Failed or timed out: the connection is closed and `None`
/// returned, its slot still the caller's. Dropped mid-ping (or the ping
/// panicked): the connection's state is unknown, so it is closed and its
/// slot freed.
pub(crate) async fn ping_entry<M: Manager>(
    inner: &Inner<M>,
    entry: Entry<M::Connection>,
    deadline: u64,
) -> Option<Entry<M::Connection>> {
    let mut pinging = DropGuard::new(inner, entry, close_after_panic);
    let limit = inner
        .clock
        .now()
        .saturating_add(inner.settings.load().ping_timeout_ns)
        .min(deadline);
    let healthy = matches!(
        with_deadline(&inner.clock, limit, inner.manager.ping(&mut pinging.conn)).await,
        Raced::Done(Ok(()))
    );
    let entry = pinging.disarm();
    if healthy {
        return Some(entry);
    }
    tracing::debug!("connection failed its ping");
    inner.close_conn(entry.conn, CloseReason::Broken);
    None
}

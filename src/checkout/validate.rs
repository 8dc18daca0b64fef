//! The checks a connection passes before it is handed out: the close
//! policy, the manager's liveness check, and the ping.

use crate::core::entry::Entry;
use crate::core::waiters::flags_in;
use crate::drop_guard::DropGuard;
use crate::hooks;
use crate::manager::{CloseReason, Manager};
use crate::pool::inner::{Inner, path};
use crate::pool::release::{abandon_after_panic, call_hook, close_after_panic};
use crate::pool::{policy, watch};
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
    validate_in(inner, entry, now, inner.core.waiters.word())
}

/// `validate` with the pool's state word already read: a pool whose word
/// has no flag set runs no step for the watch or the hook. Inlined always,
/// as `vet` is, so the entry reaches the caller's outcome in registers
/// where it can.
#[inline(always)]
pub(crate) fn validate_in<M: Manager>(
    inner: &Inner<M>,
    entry: Entry<M::Connection>,
    now: u64,
    word: usize,
) -> Checked<M::Connection> {
    let entry = match flags_in(word, path::WATCH) {
        false => entry,
        true => match watch::leaving_idle(inner, entry) {
            Some(entry) => entry,
            None => return Checked::Closed,
        },
    };
    if policy::is_quick(&inner.hot, &entry, now) {
        return match flags_in(word, path::BEFORE_CHECKOUT) {
            false => Checked::Ready(entry),
            true => vet(inner, entry, Passed::Ready),
        };
    }
    validate_idle(inner, entry, now)
}

/// What a connection that passed the pool's checks is if the hook accepts
/// it too. (A value, not the `Checked` constructor passed as a function:
/// called through a pointer, that was an indirect call and a copy of the
/// entry on every hooked checkout.)
#[derive(Clone, Copy)]
enum Passed {
    Ready,
    NeedsPing,
}

impl Passed {
    #[inline(always)]
    fn checked<C>(self, entry: Entry<C>) -> Checked<C> {
        match self {
            Passed::Ready => Checked::Ready(entry),
            Passed::NeedsPing => Checked::NeedsPing(entry),
        }
    }
}

/// Runs the `before_checkout` hook, if any, on a connection that passed the
/// pool's checks; `passed` says what it is if the hook accepts it too. A
/// refused connection is closed and its slot stays with the caller. A pool
/// without the hook pays the test of one pointer. The hook is user code,
/// run panic-safe (`call_hook`) on the connection in place. Inlined
/// always, so the entry goes from the take to the caller's outcome in
/// registers (returned through memory, it was stored narrow and read back
/// wide: a stall).
#[inline(always)]
fn vet<M: Manager>(
    inner: &Inner<M>,
    entry: Entry<M::Connection>,
    passed: Passed,
) -> Checked<M::Connection> {
    let Some(hook) = &inner.hooks.before_checkout else {
        return passed.checked(entry);
    };
    let (entry, verdict) = entry.with_conn(|conn| call_hook(&**hook, conn));
    match verdict {
        Ok(Ok(())) => passed.checked(entry),
        Ok(Err(error)) => refused_at_checkout(inner, entry, &error),
        Err(panic) => abandon_after_panic(inner, entry, panic),
    }
}

/// A connection the `before_checkout` hook refused: closed; its slot stays
/// with the caller.
#[cold]
#[inline(never)]
fn refused_at_checkout<M: Manager>(
    inner: &Inner<M>,
    entry: Entry<M::Connection>,
    error: &M::Error,
) -> Checked<M::Connection> {
    hooks::refused::<M>((&inner.name, &inner.endpoint), "checkout", error);
    inner.close_conn(entry, CloseReason::Rejected);
    Checked::Closed
}

/// The full checks, for a connection idle or old enough to need one.
///
/// A connection still inside its young-death window, and not yet seen
/// alive after use, gets the liveness check whatever `check_after` says:
/// a server at its client limit accepts
/// and then closes, and that must be seen (and counted) before the
/// connection is handed out again.
#[cold]
/// How old a young connection must be for a check that finds it alive
/// to prove it: a tenth of `young_death_window`. A server at its client
/// limit answers with an error and closes; on a busy server the close can
/// come well after the reply, and a check in between finds the
/// connection alive. Counted as proof, such a check would forget the
/// young deaths (the pacing with them) and exempt the connection's own
/// death from counting: against a starved `redis-server --maxclients`
/// that let the pool dial at 90-150 a second instead of about 50.
fn proof_age(window: u64) -> u64 {
    window / 10
}

#[inline(never)]
fn validate_idle<M: Manager>(
    inner: &Inner<M>,
    entry: Entry<M::Connection>,
    now: u64,
) -> Checked<M::Connection> {
    let relaxed = crate::sync::Ordering::Relaxed;
    let idle_for = now.saturating_sub(entry.last_used);
    let age = now.saturating_sub(entry.created);
    // Young and not yet proven alive after use: checked at every checkout.
    let young = age < inner.hot.young_death_window_ns.load(relaxed) && !entry.seen_alive();
    let spare = || policy::is_spare(inner, inner.core.idle.len());
    let mut reason = policy::expiry(&inner.hot, &entry, now, spare);
    // `is_broken` is user code: if it panics, the guard closes the
    // connection and frees its slot as the panic passes.
    let mut held = DropGuard::new(inner, entry, close_after_panic);
    if reason.is_none() && (young || idle_for >= inner.hot.check_after_ns.load(relaxed)) {
        let broken = inner.manager.is_broken(&mut held.conn);
        inner.stats.health_checks(1, u64::from(broken));
        if broken {
            reason = Some(CloseReason::Broken);
        } else if young && age >= proof_age(inner.hot.young_death_window_ns.load(relaxed)) {
            // A young connection used and still alive: the target keeps the
            // connections it accepts (see `DialGate::proven`).
            held.mark_seen_alive();
            inner.proven(held.created);
        }
    }
    let entry = held.disarm();
    match reason {
        None if idle_for >= inner.hot.ping_after_ns.load(relaxed) => {
            vet(inner, entry, Passed::NeedsPing)
        }
        None => vet(inner, entry, Passed::Ready),
        Some(reason) => {
            inner.close_conn(entry, reason);
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
    inner.stats.health_checks(1, u64::from(!healthy));
    if healthy {
        return Some(entry);
    }
    tracing::debug!(pool = %inner.name, endpoint = %inner.endpoint, "connection failed its ping");
    inner.close_conn(entry, CloseReason::Broken);
    None
}

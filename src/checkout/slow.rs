//! The slow path: queue, dial, retry, until served or out of time.
//!
//! The get holds at most one claim (a connection or a slot) at a time; each
//! is given back by `Drop` if the get is cancelled at any await point, so a
//! dropped get never leaks.

use super::failure;
use super::validate::{Checked, ping_entry, validate};
use super::wait::{WaitEnd, take_or_wait};
use crate::checkout::claim::{Claim, claim};
use crate::core::entry::Entry;
use crate::core::waiters::Grant;
use crate::dial::connect::{DialEnd, dial};
use crate::dial::permit::{DialPermit, permit};
use crate::error::Error;
use crate::lifecycle::housekeeping::refill_if_below_min_idle;
use crate::manager::Manager;
use crate::metrics::stats::Counter;
use crate::pool::inner::Inner;
use crate::pool::recycle::{is_dirty, recycle_entry};

type ConnOf<M> = <M as Manager>::Connection;
type ErrOf<M> = <M as Manager>::Error;

/// The slow path, starting from what the fast path handed over; it waits
/// up to `timeout_ns` (the acquire timeout in force if `None`).
pub(crate) async fn acquire<M: Manager>(
    inner: &Inner<M>,
    first: Option<Grant<ConnOf<M>>>,
    timeout_ns: Option<u64>,
) -> Result<Entry<ConnOf<M>>, Error<ErrOf<M>>> {
    inner.stats.incr(Counter::SlowGets);
    if inner.hot.track_demand.load(crate::sync::Ordering::Relaxed) {
        let in_use_or_dialing = inner
            .core
            .slots
            .size()
            .saturating_sub(inner.core.idle.len());
        inner
            .lifecycle
            .observe_demand(in_use_or_dialing + inner.core.waiters.count() + 1);
    }
    let start = inner.clock.now();
    // The live config, not a mirrored atomic: this load orders the get
    // after any earlier reconfigure, so the limits it reads next are the
    // new ones (docs/design.md, "Hot limits mirrored in atomics").
    let timeout = timeout_ns.unwrap_or_else(|| inner.settings.load().acquire_timeout_ns);
    let deadline = start.saturating_add(timeout);
    let mut waited = false;
    let result = match wait_first(inner, first, start, deadline, &mut waited).await {
        Waited::Ready(result) => result,
        // A dial or a ping (rare, and far dearer than an allocation) runs
        // in a boxed future, so the get's own future stays small.
        Waited::Go(first) => {
            Box::pin(acquire_until(inner, first, start, deadline, &mut waited)).await
        }
    };
    refill_if_below_min_idle(inner);
    if waited {
        inner.stats.waited(inner.clock.now().saturating_sub(start));
    }
    if matches!(&result, Err(error) if !matches!(error, Error::Timeout(_))) {
        inner.stats.incr(Counter::GetFailures);
    }
    result
}

/// What the inline first round of the slow path left to do.
enum Waited<'a, M: Manager> {
    Ready(Result<Entry<ConnOf<M>>, Error<ErrOf<M>>>),
    /// Go on in the boxed loop, holding this (or nothing).
    Go(Option<Claim<'a, M>>),
}

/// The slow path's commonest round, a get that queues and is handed a
/// returned connection, inline in the get's future: waiting allocates
/// nothing. A connection due a ping (the fast path's, already checked, or
/// one handed over and checked here) is pinged here, boxed like a dial; a
/// slot to dial into goes on to the boxed loop.
async fn wait_first<'a, M: Manager>(
    inner: &'a Inner<M>,
    first: Option<Grant<ConnOf<M>>>,
    start: u64,
    deadline: u64,
    waited: &mut bool,
) -> Waited<'a, M> {
    // The fast path hands over a connection only once it passed its checks
    // and is due a ping.
    let checked = first.is_some();
    let claimed = match first {
        Some(grant) => claim(inner, grant),
        None if inner.is_closed() => return Waited::Ready(Err(Error::Closed)),
        None => match ended(
            inner,
            take_or_wait(inner, start, deadline, waited).await,
            start,
        ) {
            Ok(claimed) => claimed,
            Err(error) => return Waited::Ready(Err(error)),
        },
    };
    if inner.is_closed() {
        // What we hold goes back (and is closed there); a closed pool
        // hands nothing out.
        drop(claimed);
        return Waited::Ready(Err(Error::Closed));
    }
    let entry = match claimed.disarm() {
        Grant::Conn(entry) if checked => entry,
        Grant::Conn(entry) => match is_dirty(inner, entry) {
            // Parked for its recycle step: run in the boxed loop, like a dial.
            (entry, true) => return Waited::Go(Some(claim(inner, Grant::Conn(entry)))),
            (entry, false) => match validate(inner, entry, inner.clock.recent()) {
                Checked::Ready(entry) => {
                    inner.stats.incr(Counter::SlowReuse);
                    return Waited::Ready(Ok(entry));
                }
                Checked::NeedsPing(entry) => entry,
                Checked::Closed => return Waited::Go(Some(claim(inner, Grant::Slot))),
            },
        },
        Grant::Slot => return Waited::Go(Some(claim(inner, Grant::Slot))),
    };
    match Box::pin(ping_entry(inner, entry, deadline)).await {
        Some(entry) => {
            inner.stats.incr(Counter::SlowReuse);
            Waited::Ready(Ok(entry))
        }
        // Failed and closed: its slot is still ours to dial into.
        None => Waited::Go(Some(claim(inner, Grant::Slot))),
    }
}

/// What a get whose wait ended holds, or the error it ends with.
fn ended<'a, M: Manager>(
    inner: &'a Inner<M>,
    end: WaitEnd<'a, M>,
    start: u64,
) -> Result<Claim<'a, M>, Error<ErrOf<M>>> {
    match end {
        WaitEnd::Granted(claimed) => Ok(claimed),
        WaitEnd::Failed(error) => Err(Error::Connect(error)),
        WaitEnd::Unavailable => Err(failure::unavailable(inner)),
        WaitEnd::Closed => Err(Error::Closed),
        WaitEnd::TimedOut => Err(failure::timed_out(inner, start)),
    }
}

async fn acquire_until<'a, M: Manager>(
    inner: &'a Inner<M>,
    mut held: Option<Claim<'a, M>>,
    start: u64,
    deadline: u64,
    waited: &mut bool,
) -> Result<Entry<ConnOf<M>>, Error<ErrOf<M>>> {
    loop {
        if inner.is_closed() {
            return Err(Error::Closed);
        }
        let Some(claimed) = held.take() else {
            held = Some(ended(
                inner,
                take_or_wait(inner, inner.clock.now(), deadline, waited).await,
                start,
            )?);
            continue;
        };
        match claimed.disarm() {
            Grant::Conn(entry) => match check(inner, entry, deadline).await {
                Grant::Conn(entry) => {
                    inner.stats.incr(Counter::SlowReuse);
                    return Ok(entry);
                }
                slot => held = Some(claim(inner, slot)),
            },
            Grant::Slot => match dial_into(inner, claim(inner, Grant::Slot), deadline).await {
                Dialed::Conn(entry) => {
                    inner.stats.incr(Counter::DialedGets);
                    return Ok(entry);
                }
                Dialed::Again(next) => held = next,
                Dialed::Failed(error) => return Err(error),
                Dialed::TimedOut => return Err(failure::timed_out(inner, start)),
            },
        }
    }
}

/// Runs the recycle step if the connection was parked for one, then
/// validates (and if due, pings) it; a bad one leaves its slot.
async fn check<M: Manager>(
    inner: &Inner<M>,
    entry: Entry<ConnOf<M>>,
    deadline: u64,
) -> Grant<ConnOf<M>> {
    let entry = match is_dirty(inner, entry) {
        (entry, false) => entry,
        (entry, true) => match recycle_entry(inner, entry, deadline).await {
            Some(entry) => entry,
            None => return Grant::Slot,
        },
    };
    match validate(inner, entry, inner.clock.recent()) {
        Checked::Ready(entry) => Grant::Conn(entry),
        Checked::NeedsPing(entry) => match ping_entry(inner, entry, deadline).await {
            Some(entry) => Grant::Conn(entry),
            None => Grant::Slot,
        },
        Checked::Closed => Grant::Slot,
    }
}

/// What a get holding a slot got from trying to dial into it.
enum Dialed<'a, M: Manager> {
    Conn(Entry<ConnOf<M>>),
    /// Go round again, holding this (or nothing: queue).
    Again(Option<Claim<'a, M>>),
    Failed(Error<ErrOf<M>>),
    TimedOut,
}

async fn dial_into<'a, M: Manager>(
    inner: &'a Inner<M>,
    slot: Claim<'a, M>,
    deadline: u64,
) -> Dialed<'a, M> {
    if let Some(entry) = inner.core.idle.pop() {
        // A connection came back meanwhile: cheaper than a dial.
        drop(slot);
        return Dialed::Again(Some(claim(inner, Grant::Conn(entry))));
    }
    let dialing = match permit(inner, inner.clock.now()) {
        DialPermit::Granted(dialing) => dialing,
        DialPermit::Wait => return Dialed::Again(None),
        DialPermit::Unavailable => return Dialed::Failed(failure::unavailable(inner)),
    };
    match dial(inner, slot, dialing, deadline).await {
        // Closed while dialing: the new connection is not handed out; the
        // claim closes it on the next turn.
        Ok(entry) if inner.is_closed() => Dialed::Again(Some(claim(inner, Grant::Conn(entry)))),
        Ok(entry) => Dialed::Conn(entry),
        Err(DialEnd::Fatal(error)) => Dialed::Failed(Error::Connect(error)),
        Err(DialEnd::TimedOut) => Dialed::TimedOut,
        Err(DialEnd::Retry) => Dialed::Again(None),
    }
}

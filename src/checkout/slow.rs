//! The slow path: queue, dial, retry, until served or out of time.
//!
//! The get holds at most one claim (a connection or a slot) at a time; each
//! is given back by `Drop` if the get is cancelled at any await point, so a
//! dropped get never leaks.

use super::failure;
use super::validate::{Checked, ping_entry, validate};
use super::wait::{WaitEnd, take_or_wait};
use crate::core::claim::{Claim, claim};
use crate::core::idle::Entry;
use crate::core::waiters::Grant;
use crate::dial::connect::{DialEnd, dial};
use crate::dial::permit::{DialPermit, permit};
use crate::error::Error;
use crate::lifecycle::housekeeping::refill_if_below_min_idle;
use crate::manager::Manager;
use crate::metrics::stats::Counter;
use crate::pool::inner::Inner;

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
    if inner
        .hot
        .track_demand
        .load(crate::core::sync::Ordering::Relaxed)
    {
        let in_use_or_dialing = inner.slots.size().saturating_sub(inner.idle.len());
        inner
            .lifecycle
            .observe_demand(in_use_or_dialing + inner.waiters.count() + 1);
    }
    let start = inner.clock.now();
    let timeout = timeout_ns.unwrap_or_else(|| inner.settings.load().acquire_timeout_ns);
    let deadline = start.saturating_add(timeout);
    let mut waited = false;
    let result = acquire_until(inner, first, start, deadline, &mut waited).await;
    refill_if_below_min_idle(inner);
    if waited {
        inner.stats.waited(inner.clock.now().saturating_sub(start));
    }
    if matches!(&result, Err(error) if !matches!(error, Error::Timeout(_))) {
        inner.stats.incr(Counter::GetFailures);
    }
    result
}

async fn acquire_until<M: Manager>(
    inner: &Inner<M>,
    first: Option<Grant<ConnOf<M>>>,
    start: u64,
    deadline: u64,
    waited: &mut bool,
) -> Result<Entry<ConnOf<M>>, Error<ErrOf<M>>> {
    let mut held = first.map(|grant| claim(inner, grant));
    loop {
        if inner.is_closed() {
            return Err(Error::Closed);
        }
        let Some(claimed) = held.take() else {
            held = match take_or_wait(inner, deadline, waited).await {
                WaitEnd::Granted(claimed) => Some(claimed),
                WaitEnd::Failed(error) => return Err(Error::Connect(error)),
                WaitEnd::Unavailable => return Err(failure::unavailable(inner)),
                WaitEnd::Closed => return Err(Error::Closed),
                WaitEnd::TimedOut => return Err(failure::timed_out(inner, start)),
            };
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

/// Validates (and if due, pings) a connection; a bad one leaves its slot.
async fn check<M: Manager>(
    inner: &Inner<M>,
    entry: Entry<ConnOf<M>>,
    deadline: u64,
) -> Grant<ConnOf<M>> {
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
    if let Some(entry) = inner.idle.pop() {
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

//! Waiting for a connection: taking one (or a slot) if nobody waits ahead,
//! else queueing; and the one timer that times out every due waiter.

use crate::sync::plain::Ordering as StdOrdering;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc as StdArc;
use std::task::{Poll, Wake, Waker};

use crate::checkout::claim::{Claim, claim};
use crate::core::waiters::{Grant, Node, Outcome};
use crate::manager::Manager;
use crate::pool::handoff::give_back;
use crate::pool::inner::Inner;
use crate::pool::release::{dispatch, next_grant};
use crate::time::Sleep;

type ConnOf<M> = <M as Manager>::Connection;
type ErrOf<M> = <M as Manager>::Error;

/// How a wait ended.
pub(crate) enum WaitEnd<'a, M: Manager> {
    Granted(Claim<'a, M>),
    Failed(StdArc<ErrOf<M>>),
    Unavailable,
    Closed,
    TimedOut,
}

/// A get's place in the waiter queue, inside its future: withdrawn if the
/// get is dropped while queued, and anything it was handed given back.
struct Place<'a, M: Manager> {
    inner: &'a Inner<M>,
    node: Node<ConnOf<M>, ErrOf<M>>,
}

impl<'a, M: Manager> Place<'a, M> {
    /// The node, pinned with its place.
    fn node(self: Pin<&Self>) -> Pin<&Node<ConnOf<M>, ErrOf<M>>> {
        // SAFETY: the node is structurally pinned: `Place` never moves it
        // out or hands out `&mut` to it, and its `Drop` only reads it.
        unsafe { self.map_unchecked(|place| &place.node) }
    }
}

impl<M: Manager> Drop for Place<'_, M> {
    fn drop(&mut self) {
        // Unlinked before anything else runs: the node's memory is freed
        // right after this, and a panic in `give_back` cannot leave it queued.
        if let Some(outcome) = self.inner.core.waiters.withdraw(&self.node) {
            give_back(self.inner, outcome);
        }
    }
}

/// Takes an idle connection or a slot if nobody waits ahead; otherwise
/// queues and waits to be served. `now` is a time read just before (each
/// clock read costs a waiting get about 20 ns here).
pub(crate) async fn take_or_wait<'a, M: Manager>(
    inner: &'a Inner<M>,
    now: u64,
    deadline: u64,
    waited: &mut bool,
) -> WaitEnd<'a, M> {
    let gate = &inner.gate;
    if inner.core.waiters.count() == 0 {
        if let Some(entry) = inner.core.idle.pop().or_else(|| inner.core.parked.pop()) {
            return WaitEnd::Granted(claim(inner, Grant::Conn(entry)));
        }
        if gate.breaker_open() {
            // Only the probe dials; everybody else fails fast.
            return match gate.is_open(now) && inner.core.slots.try_reserve() {
                true => WaitEnd::Granted(claim(inner, Grant::Slot)),
                false => WaitEnd::Unavailable,
            };
        }
        if gate.can_dial(now) && inner.core.slots.try_reserve() {
            return WaitEnd::Granted(claim(inner, Grant::Slot));
        }
    } else if gate.breaker_open() {
        return WaitEnd::Unavailable;
    }
    *waited = true;
    wait(inner, now, deadline).await
}

async fn wait<M: Manager>(inner: &Inner<M>, now: u64, deadline: u64) -> WaitEnd<'_, M> {
    let place = pin!(Place {
        inner,
        node: Node::new(deadline),
    });
    let node = place.into_ref().node();
    let mut registered = false;
    // Only while the dial gate is closed: wake when it reopens, to dispatch
    // slots. The acquire timeout itself is the sweep's job.
    let mut gate_sleep: Option<Sleep<'_>> = None;
    // If the gate was closed when our registration tried for a grant, it
    // may reopen before our next poll with nobody to dispatch for us: the
    // first poll that finds it open dispatches once. (Open at that time,
    // the try saw it open; a later slot or return dispatches as usual.)
    let mut dispatched_open = inner.gate.closed_until(now).is_none();
    poll_fn(|cx| {
        loop {
            let (settled, now) = match registered {
                true => match inner.core.waiters.poll(&node, cx) {
                    Poll::Ready(outcome) => return Poll::Ready(wait_end(inner, outcome)),
                    // Read only now: a served get needs no clock.
                    Poll::Pending => (Poll::Pending, inner.clock.now()),
                },
                false => {
                    let queued = inner.core.waiters.register(
                        node,
                        cx.waker(),
                        || inner.is_closed(),
                        || next_grant(inner, now),
                    );
                    if !queued {
                        return Poll::Ready(WaitEnd::Closed);
                    }
                    registered = true;
                    arm_timeout_sweep(inner, deadline);
                    // Registered with this waker: no lock to take again,
                    // and the time read just before serves this round.
                    (node.take_settled().map_or(Poll::Pending, Poll::Ready), now)
                }
            };
            if let Poll::Ready(outcome) = settled {
                return Poll::Ready(wait_end(inner, outcome));
            }
            if now >= deadline {
                return Poll::Ready(match inner.core.waiters.withdraw(&node) {
                    None => WaitEnd::TimedOut,
                    Some(outcome) => wait_end(inner, outcome),
                });
            }
            match inner.gate.closed_until(now) {
                // Open, and we were waiting for it to reopen: dispatch.
                None if gate_sleep.take().is_some() => {}
                None if !dispatched_open => dispatched_open = true,
                None => return Poll::Pending,
                Some(reopen) => {
                    let sleep =
                        gate_sleep.get_or_insert_with(|| Sleep::until(&inner.clock, reopen));
                    sleep.reset(reopen);
                    if Pin::new(sleep).poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    gate_sleep = None;
                }
            }
            dispatch(inner);
        }
    })
    .await
}

fn wait_end<M: Manager>(inner: &Inner<M>, outcome: Outcome<ConnOf<M>, ErrOf<M>>) -> WaitEnd<'_, M> {
    match outcome {
        Outcome::Granted(grant) => WaitEnd::Granted(claim(inner, grant)),
        Outcome::Failed(error) => WaitEnd::Failed(error),
        Outcome::Unavailable => WaitEnd::Unavailable,
        Outcome::Closed => WaitEnd::Closed,
        Outcome::TimedOut => WaitEnd::TimedOut,
    }
}

/// Wakes up at the earliest waiter deadline and times out what is due, so a
/// waiting get needs no timer of its own.
struct TimeoutSweep<M: Manager>(std::sync::Weak<Inner<M>>);

impl<M: Manager> Wake for TimeoutSweep<M> {
    fn wake(self: std::sync::Arc<Self>) {
        if let Some(inner) = self.0.upgrade() {
            sweep_timeouts(&inner);
        }
    }
}

/// Makes sure the timeout sweep runs at or before `deadline`.
fn arm_timeout_sweep<M: Manager>(inner: &Inner<M>, deadline: u64) {
    // Usually an earlier waiter armed it already: a load, no write. SeqCst
    // pairs with the reset in `sweep_timeouts`, so a sweep that cleared
    // `sweep_at` is either seen here or sees our waiter.
    if inner.sweep_at.load(StdOrdering::SeqCst) <= deadline
        || inner.sweep_at.fetch_min(deadline, StdOrdering::SeqCst) <= deadline
    {
        return;
    }
    let sweep = Waker::from(std::sync::Arc::new(TimeoutSweep(inner.self_ref.clone())));
    inner.clock.timers().arm_detached(deadline, &sweep);
}

fn sweep_timeouts<M: Manager>(inner: &Inner<M>) {
    // Pairs with the loads in `arm_timeout_sweep` (see there).
    inner.sweep_at.store(u64::MAX, StdOrdering::SeqCst);
    if let Some(next) = inner.core.waiters.expire(inner.clock.now()) {
        arm_timeout_sweep(inner, next);
    }
}

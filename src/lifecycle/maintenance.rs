//! The maintenance task: the asynchronous half of background maintenance.
//!
//! [`Pool::maintenance`] dials refills (at most `max_concurrent_dials` at
//! once, through the dial gate and breaker, paused after a fatal connect
//! error; one for each dial a get gave up on, so the next user finds the
//! connection) and checks idle connections (the manager's batched liveness
//! check, then its ping under `ping_timeout`). Spawn it on the runtime your
//! manager needs, or run it on its own thread with
//! [`Pool::spawn_maintenance_thread`] when the manager needs none. It sleeps
//! until the next round, the dial gate's reopening, or a wake-up (a
//! connection closed, a checkout below `min_idle`, a config change, close),
//! never polling, and stops when the pool is closed or its last handle
//! dropped. A round that panics (a panic in the manager) is caught,
//! counted in [`Stats::manager_panics`](crate::Stats::manager_panics) and
//! logged, and the next round runs as usual.

use crate::lifecycle::reconfigure::shed_idle;
use crate::pool::recycle::recycle_parked;
use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::sync::{Arc, Weak};
use std::task::Poll;

use futures_util::stream::{FuturesUnordered, StreamExt};

use super::housekeeping::{needs_refill, needs_refill_beyond};
use crate::checkout::claim::claim;
use crate::checkout::failure;
use crate::checkout::validate::ping_entry;
use crate::core::entry::Entry;
use crate::core::waiters::Grant;
use crate::dial::connect::{DialEnd, dial};
use crate::dial::permit::{DialPermit, permit};
use crate::drop_guard::{DropGuard, Unwinding};
use crate::error::Error;
use crate::lifecycle::reap::reap;
use crate::manager::{CloseReason, IdleWatch, Manager};
use crate::metrics::stats::Counter;
use crate::pool::Pool;
use crate::pool::handoff::{reinsert, reinsert_watched};
use crate::pool::inner::Inner;
use crate::pool::release::release_slot;
use crate::pool::watch;
use crate::time::{Clock, Sleep, nanos};

/// When background refills may next dial, if they may not at `now`: the
/// dial gate's backoff, or the pause after a fatal connect error.
fn refill_blocked_until<M: Manager>(inner: &Inner<M>, now: u64) -> Option<u64> {
    let gate = inner.gate.closed_until(now);
    let paused = inner.gate.refills_paused_until(now);
    gate.max(paused)
}

/// Dials until the pool reaches its targets, a dial fails, or no dial may
/// start (gate, pause, breaker, concurrency). Waits for its dials.
async fn refill<M: Manager>(inner: &Inner<M>) -> Result<usize, Error<M::Error>> {
    let mut dials = FuturesUnordered::new();
    let mut opened = 0;
    let mut failure = None;
    loop {
        while failure.is_none()
            && !inner.is_closed()
            && refill_blocked_until(inner, inner.clock.now()).is_none()
            && needs_refill_beyond(inner, dials.len())
        {
            if !inner.core.slots.try_reserve() {
                break;
            }
            let slot = claim(inner, Grant::Slot);
            let dialing = match permit(inner, inner.clock.now()) {
                DialPermit::Granted(dialing) => dialing,
                DialPermit::Wait | DialPermit::Unavailable => break,
            };
            // Bounded by `create_timeout` alone: no caller waits on it.
            dials.push(dial(inner, slot, dialing, u64::MAX));
        }
        match dials.next().await {
            None => break,
            Some(Ok(entry)) => {
                inner.lifecycle.pay_dial();
                opened += 1;
                reinsert(inner, entry);
            }
            Some(Err(DialEnd::Fatal(error))) => {
                inner.lifecycle.pay_dial();
                failure = Some(Error::Connect(error));
            }
            Some(Err(DialEnd::Retry | DialEnd::TimedOut)) => inner.lifecycle.pay_dial(),
        }
    }
    match failure {
        Some(error) => Err(error),
        None => Ok(opened),
    }
}

/// An idle connection lent to maintenance: goes back into the pool, without
/// being marked used, if the maintenance task is dropped (or the batched
/// check panics).
type Loan<'a, M> = DropGuard<'a, Inner<M>, Entry<<M as Manager>::Connection>>;

fn give_back_loan<M: Manager>(inner: &Inner<M>, entry: Entry<M::Connection>, _: Unwinding) {
    // Never out of the manager's idle watch: back as it was.
    reinsert_watched(inner, entry);
}

/// `give_back_loan` for a connection taken out of the idle watch (to be
/// pinged): it goes idle again.
fn give_back_unwatched<M: Manager>(inner: &Inner<M>, entry: Entry<M::Connection>, _: Unwinding) {
    reinsert(inner, entry);
}

/// Checks every connection idle longer than `check_after`: the manager's
/// batched liveness check on all of them at once, then its ping on each
/// survivor under `ping_timeout`. A connection that fails either is closed;
/// the others go back without being marked used.
async fn check_idle<M: Manager>(inner: &Inner<M>) {
    let check_after = inner
        .hot
        .check_after_ns
        .load(crate::sync::Ordering::Relaxed);
    let recent = inner.clock.recent();
    let watched = inner.watch == IdleWatch::WatchedAndPinged;
    let mut due: Vec<Loan<'_, M>> = Vec::new();
    let mut pinged: Vec<Loan<'_, M>> = Vec::new();
    let mut pass = crate::pool::pass::IdlePass::new(inner);
    for _ in 0..inner.core.idle.len() {
        let Some(entry) = pass.take() else { break };
        let loan = DropGuard::new(inner, entry, give_back_loan);
        if recent.saturating_sub(loan.last_used) < check_after {
            continue; // dropped: back into the pool as it was
        }
        if !watched {
            due.push(loan);
            continue;
        }
        // Watched, so known alive (or reaped): no liveness check, but out
        // of the watch to be pinged, and watched again when it goes back.
        match watch::leaving_idle(inner, loan.disarm()) {
            Some(entry) => pinged.push(DropGuard::new(inner, entry, give_back_unwatched)),
            None => release_slot(inner),
        }
    }
    // Ends the pass before any await: what it kept is back in its order.
    drop(pass);
    if watched {
        return ping_all(inner, pinged).await;
    }
    if due.is_empty() {
        return;
    }
    let broken = {
        let mut conns: Vec<&mut M::Connection> =
            due.iter_mut().map(|loan| &mut loan.conn).collect();
        inner.manager.is_broken_batch(&mut conns)
    };
    let dead = broken.iter().filter(|&&dead| dead).count() as u64;
    inner.stats.health_checks(due.len() as u64, dead);
    let mut alive = Vec::with_capacity(due.len());
    let young_window = inner
        .hot
        .young_death_window_ns
        .load(crate::sync::Ordering::Relaxed);
    for (mut loan, dead) in due.into_iter().zip(broken) {
        if !dead && recent.saturating_sub(loan.created) < young_window {
            // A young connection alive after use proves the target.
            loan.mark_seen_alive();
            inner.proven(loan.created);
        }
        if dead {
            let entry = loan.disarm();
            inner.close_conn(entry, CloseReason::Broken);
            release_slot(inner);
        } else {
            alive.push(loan);
        }
    }
    ping_all(inner, alive).await;
}

/// Pings each lent connection in turn; the healthy go back.
async fn ping_all<M: Manager>(inner: &Inner<M>, loans: Vec<Loan<'_, M>>) {
    for loan in loans {
        if inner.is_closed() {
            return; // the loans go back (and are closed) as they drop
        }
        // Mid-ping the connection's state is unknown: if this task is
        // dropped now, it is closed rather than returned.
        match ping_entry(inner, loan.disarm(), u64::MAX).await {
            Some(entry) => reinsert(inner, entry),
            None => release_slot(inner),
        }
    }
}

/// When the maintenance task should next run on its own.
fn next_maintenance<M: Manager>(inner: &Inner<M>) -> u64 {
    let now = inner.clock.now();
    let interval = nanos(inner.settings.load().config.maintenance_interval);
    let next_round = now.saturating_add(interval);
    match refill_blocked_until(inner, now) {
        Some(resume) if needs_refill(inner) => resume.min(next_round),
        _ => next_round,
    }
}

/// One maintenance round (refill, then check idle connections), with a
/// panic in the manager caught, counted and logged.
async fn round<M: Manager>(inner: &Inner<M>) {
    inner.lifecycle.refill_started();
    let mut work = pin!(async {
        recycle_parked(inner).await;
        // An idle connection that was moving between a thread's slot and
        // the shared stack as `max_size` was lowered can miss that shed.
        shed_idle(inner);
        if inner.lifecycle.deaths_to_reap() {
            let reported = inner.lifecycle.reap_started();
            reap(inner, reported);
        }
        // Errors are logged where they happen; keep going.
        let _ = refill(inner).await;
        if inner.watch != IdleWatch::Watched {
            check_idle(inner).await;
        }
    });
    let outcome = poll_fn(
        |cx| match catch_unwind(AssertUnwindSafe(|| work.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(())) => Poll::Ready(Ok(())),
            Err(panic) => Poll::Ready(Err(panic)),
        },
    )
    .await;
    if outcome.is_err() {
        inner.stats.incr(Counter::ManagerPanics);
        tracing::error!(
            pool = %inner.name, endpoint = %inner.endpoint, "a maintenance round panicked (in the manager); the next round runs as usual"
        );
    }
}

/// The maintenance loop; it holds the pool only weakly between rounds.
async fn maintenance_task<M: Manager>(pool: Weak<Inner<M>>, clock: Clock) {
    loop {
        let wake_at = {
            let Some(inner) = pool.upgrade() else { return };
            if inner.is_closed() {
                return;
            }
            round(&inner).await;
            if inner.is_closed() {
                return;
            }
            next_maintenance(&inner)
        };
        // Sleep without keeping the pool alive.
        let mut sleep = Sleep::until(&clock, wake_at);
        let mut registered = false;
        poll_fn(|cx| {
            if Pin::new(&mut sleep).poll(cx).is_ready() {
                return Poll::Ready(());
            }
            let Some(inner) = pool.upgrade() else {
                return Poll::Ready(());
            };
            if registered {
                // Woken by the pool (close, config, a closed connection).
                return Poll::Ready(());
            }
            inner.lifecycle.register_maintenance(cx.waker());
            registered = true;
            // A wake-up may have come before the registration: run now if a
            // refill would make progress.
            let now = inner.clock.now();
            let refill_now = needs_refill(&inner)
                && refill_blocked_until(&inner, now).is_none()
                && inner.gate.can_dial(now)
                && !inner.gate.breaker_open();
            if inner.is_closed() || refill_now || inner.lifecycle.deaths_to_reap() {
                return Poll::Ready(());
            }
            Poll::Pending
        })
        .await;
    }
}

impl<M: Manager> Pool<M> {
    /// The maintenance task: refills to `min_idle` and the warm size, and
    /// pings idle connections, until the pool is closed or dropped (it holds
    /// only a weak reference). Spawn it on the runtime the manager needs:
    ///
    /// ```
    /// # use ringpool::{Manager, Pool};
    /// # struct Numbers;
    /// # impl Manager for Numbers {
    /// #     type Connection = u64;
    /// #     type Error = std::io::Error;
    /// #     async fn connect(&self) -> Result<u64, std::io::Error> { Ok(7) }
    /// # }
    /// let pool = Pool::builder(Numbers).min_idle(2).build().unwrap();
    /// let maintenance = std::thread::spawn({
    ///     let task = pool.maintenance();
    ///     move || futures_executor::block_on(task)
    /// });
    /// # while pool.status().idle < 2 { std::thread::yield_now(); }
    /// // Refilled in the background, and no further than `min_idle`. (The
    /// // idle count dips while a round checks its connections; the size
    /// // does not.)
    /// assert_eq!(pool.status().size, 2);
    /// pool.close();
    /// maintenance.join().unwrap(); // the task ends with the pool
    /// ```
    pub fn maintenance(&self) -> impl Future<Output = ()> + use<M> {
        tracing::Instrument::instrument(
            maintenance_task(Arc::downgrade(&self.inner), self.inner.clock.clone()),
            self.inner.span.clone(),
        )
    }

    /// Runs one maintenance round now: closes the idle connections the
    /// manager's idle watch saw die, refills to `min_idle` and the warm
    /// size, and checks the idle connections due. For applications that
    /// schedule maintenance themselves instead of running
    /// [`maintenance`](Pool::maintenance); a panic in the manager is
    /// caught, counted and logged as there.
    ///
    /// ```
    /// # use ringpool::{Manager, Pool};
    /// # struct Numbers;
    /// # impl Manager for Numbers {
    /// #     type Connection = u64;
    /// #     type Error = std::io::Error;
    /// #     async fn connect(&self) -> Result<u64, std::io::Error> { Ok(7) }
    /// # }
    /// let pool = Pool::builder(Numbers).min_idle(3).build().unwrap();
    /// futures_executor::block_on(pool.run_maintenance());
    /// assert_eq!(pool.status().idle, 3);
    /// ```
    pub async fn run_maintenance(&self) {
        if !self.inner.is_closed() {
            round(&self.inner).await;
        }
    }

    /// Runs [`maintenance`](Pool::maintenance) on a thread of its own
    /// (named `ringpool-maintenance`), for managers whose `connect` needs no
    /// runtime (blocking or io_uring managers). The thread ends when the
    /// pool is closed or dropped.
    ///
    /// # Errors
    ///
    /// The OS error if the thread cannot be spawned.
    pub fn spawn_maintenance_thread(&self) -> std::io::Result<std::thread::JoinHandle<()>> {
        // The task is made on the thread: the manager's futures need not be Send.
        let (pool, clock) = (Arc::downgrade(&self.inner), self.inner.clock.clone());
        let span = self.inner.span.clone();
        std::thread::Builder::new()
            .name("ringpool-maintenance".into())
            .spawn(move || {
                futures_executor::block_on(tracing::Instrument::instrument(
                    maintenance_task(pool, clock),
                    span,
                ))
            })
    }

    /// Opens connections until `min_idle` (and the warm size) are met, at
    /// most `max_concurrent_dials` at once, and returns how many it opened.
    /// A pool can be used before, during or without this: call it after
    /// `build` when a service should not take traffic until it is warm.
    ///
    /// # Errors
    ///
    /// The first fatal connect error; [`Error::Unavailable`] if the breaker
    /// opened; [`Error::Timeout`] if the targets are not met within the
    /// acquire timeout; [`Error::Closed`].
    pub async fn warm_up(&self) -> Result<usize, Error<M::Error>> {
        let inner = &*self.inner;
        let start = inner.clock.now();
        let deadline = start.saturating_add(inner.settings.load().acquire_timeout_ns);
        let mut opened = 0;
        loop {
            opened += refill(inner).await?;
            if inner.is_closed() {
                return Err(Error::Closed);
            }
            if !needs_refill(inner) {
                return Ok(opened);
            }
            if inner.gate.breaker_open() {
                return Err(failure::unavailable(inner));
            }
            let now = inner.clock.now();
            if now >= deadline {
                return Err(failure::timed_out(inner, start));
            }
            let retry_at = inner.gate.closed_until(now).unwrap_or(now).min(deadline);
            Sleep::until(&inner.clock, retry_at.max(now + 1)).await;
        }
    }
}

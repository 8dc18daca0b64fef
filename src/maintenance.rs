//! Background maintenance.
//!
//! Two halves, both stopping when the pool is closed or its last handle
//! dropped:
//! - **Housekeeping** (synchronous) runs on the clock's timer thread every
//!   `maintenance_interval` (jittered by up to 10 %), with no task to spawn:
//!   it updates the warm size from recent demand, closes idle connections
//!   past their lifetime or idle timeout (down to `min_idle` and the warm
//!   size), and wakes the maintenance task when the pool is below target.
//! - **The maintenance task** ([`Pool::maintenance`], asynchronous) dials
//!   refills (at most `max_concurrent_dials` at once, through the dial gate
//!   and breaker) and pings idle connections under a timeout. Spawn it on
//!   the runtime your manager needs, or run it on its own thread with
//!   [`Pool::spawn_maintenance_thread`] when the manager needs none. It
//!   sleeps until the next round, the dial gate's reopening, or a wake-up
//!   (a connection closed, a config change, close), never polling.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Poll, Wake, Waker};

use futures_util::stream::{FuturesUnordered, StreamExt};

use crate::acquire::Claim;
use crate::clock::{Clock, nanos};
use crate::dial::{DialEnd, DialPermit};
use crate::error::Error;
use crate::idle::Entry;
use crate::manager::{CloseReason, Manager};
use crate::pool::{Inner, Pool};
use crate::timer::Sleep;
use crate::waiters::Grant;

/// The housekeeping timer's waker: runs a round on the timer thread.
struct Housekeeping<M: Manager>(Weak<Inner<M>>);

impl<M: Manager> Wake for Housekeeping<M> {
    fn wake(self: Arc<Self>) {
        if let Some(inner) = self.0.upgrade() {
            inner.housekeep();
        }
    }
}

/// An idle connection lent to maintenance (for a ping): goes back into the
/// pool, without being marked used, if the maintenance task is dropped.
struct Loan<'a, M: Manager> {
    inner: &'a Inner<M>,
    entry: Option<Entry<M::Connection>>,
}

impl<M: Manager> Drop for Loan<'_, M> {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            self.inner.reinsert(entry);
        }
    }
}

impl<M: Manager> Inner<M> {
    /// Arms the next housekeeping round.
    pub(crate) fn schedule_housekeeping(&self) {
        if self.is_closed() {
            return;
        }
        let interval = nanos(self.settings.load().config.maintenance_interval);
        let jitter = (interval as f64 * 0.1 * fastrand::f64()) as u64;
        let at = self.clock.now().saturating_add(interval - jitter);
        let waker = Waker::from(Arc::new(Housekeeping(self.self_ref.clone())));
        self.clock.timers().arm_detached(&self.clock, at, &waker);
    }

    /// One housekeeping round, then the next one is armed.
    pub(crate) fn housekeep(&self) {
        if self.is_closed() {
            return;
        }
        let target = self.update_warm_target();
        self.expire_idle(target);
        if self.needs_refill() {
            self.lifecycle.wake_maintenance();
        }
        self.schedule_housekeeping();
    }

    fn update_warm_target(&self) -> usize {
        let settings = self.settings.load();
        let status = self.status();
        let demand = status.size.saturating_sub(status.idle) + status.waiting;
        self.lifecycle.update_warm_target(
            self.clock.now(),
            demand,
            settings.config.demand_half_life.map(nanos),
            settings.config.min_idle,
            settings.config.max_size,
        )
    }

    /// Closes idle connections past their lifetime, and those idle longer
    /// than `idle_timeout` while more than `min_idle` are idle and more than
    /// `warm_target` are open.
    pub(crate) fn expire_idle(&self, warm_target: usize) {
        let settings = self.settings.load();
        let (now, recent) = (self.clock.now(), self.clock.recent());
        let min_idle = settings.config.min_idle;
        let mut kept = Vec::new();
        for _ in 0..self.idle.len() {
            let Some(entry) = self.idle.pop() else { break };
            let idle_others = self.idle.len() + kept.len();
            let reason = if now >= entry.expires {
                Some(CloseReason::Lifetime)
            } else if recent.saturating_sub(entry.last_used) >= settings.idle_timeout_ns
                && idle_others >= min_idle
                && self.slots.size() > warm_target
            {
                Some(CloseReason::IdleTimeout)
            } else {
                None
            };
            match reason {
                Some(reason) => {
                    self.close_conn(entry.conn, reason);
                    self.release_slot();
                }
                None => kept.push(entry),
            }
        }
        for entry in kept {
            self.reinsert(entry);
        }
    }

    /// Whether the pool is below `min_idle` idle or its warm size.
    pub(crate) fn needs_refill(&self) -> bool {
        self.needs_refill_beyond(0)
    }

    /// As `needs_refill`, counting `dialing` refills as idle already.
    fn needs_refill_beyond(&self, dialing: usize) -> bool {
        let min_idle = self.hot.min_idle.load(std::sync::atomic::Ordering::Relaxed);
        let size = self.slots.size();
        size < self.slots.max()
            && (self.idle.len() + dialing < min_idle || size < self.lifecycle.warm_target())
    }

    /// Dials until the pool reaches its targets, a dial fails, or no dial
    /// may start (gate, breaker, concurrency). Waits for its dials.
    pub(crate) async fn refill(&self) -> Result<usize, Error<M::Error>> {
        let mut dials = FuturesUnordered::new();
        let mut opened = 0;
        let mut failure = None;
        loop {
            while failure.is_none() && !self.is_closed() && self.needs_refill_beyond(dials.len()) {
                if !self.slots.try_reserve() {
                    break;
                }
                let slot = Claim::new(self, Grant::Slot);
                let dialing = match self.permit_dial(self.clock.now()) {
                    DialPermit::Granted(dialing) => dialing,
                    DialPermit::Wait | DialPermit::Unavailable => break,
                };
                let deadline = self
                    .clock
                    .now()
                    .saturating_add(self.settings.load().acquire_timeout_ns);
                dials.push(self.dial(slot, dialing, deadline));
            }
            match dials.next().await {
                None => break,
                Some(Ok(entry)) => {
                    opened += 1;
                    self.reinsert(entry);
                }
                Some(Err(DialEnd::Fatal(error))) => failure = Some(Error::Connect(error)),
                Some(Err(DialEnd::Retry | DialEnd::TimedOut)) => {}
            }
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(opened),
        }
    }

    /// Checks every connection idle longer than `check_after`: the
    /// manager's batched liveness check on all of them at once, then its
    /// ping on each survivor under the acquire timeout. A connection that
    /// fails either is closed; the others go back without being marked used.
    async fn check_idle(&self) {
        let check_after = self
            .hot
            .check_after_ns
            .load(std::sync::atomic::Ordering::Relaxed);
        let recent = self.clock.recent();
        let mut due = Vec::new();
        for _ in 0..self.idle.len() {
            let Some(entry) = self.idle.pop() else { break };
            let loan = Loan {
                inner: self,
                entry: Some(entry),
            };
            if recent.saturating_sub(loan.entry.as_ref().map_or(0, |e| e.last_used)) >= check_after
            {
                due.push(loan);
            } // else dropped: back into the pool as it was
        }
        if due.is_empty() {
            return;
        }
        let broken = {
            let mut conns: Vec<&mut M::Connection> = due
                .iter_mut()
                .map(|loan| &mut loan.entry.as_mut().expect("lent until returned").conn)
                .collect();
            self.manager.is_broken_batch(&mut conns)
        };
        let mut alive = Vec::with_capacity(due.len());
        for (mut loan, dead) in due.into_iter().zip(broken) {
            if dead {
                let entry = loan.entry.take().expect("lent until returned");
                self.close_conn(entry.conn, CloseReason::Broken);
                self.release_slot();
            } else {
                alive.push(loan);
            }
        }
        for mut loan in alive {
            if self.is_closed() {
                return; // the loans go back (and are closed) as they drop
            }
            // Mid-ping the connection's state is unknown: if this task is
            // dropped now, it is closed rather than returned.
            let entry = loan.entry.take().expect("lent until returned");
            match self.ping_entry(entry, u64::MAX).await {
                Some(entry) => self.reinsert(entry),
                None => self.release_slot(),
            }
        }
    }

    /// When the maintenance task should next run on its own.
    fn next_maintenance(&self) -> u64 {
        let now = self.clock.now();
        let interval = nanos(self.settings.load().config.maintenance_interval);
        let next_round = now.saturating_add(interval);
        match self.gate.closed_until(now) {
            Some(reopen) if self.needs_refill() => reopen.min(next_round),
            _ => next_round,
        }
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
    /// assert_eq!(pool.status().idle, 2); // refilled in the background
    /// pool.close();
    /// maintenance.join().unwrap(); // the task ends with the pool
    /// ```
    pub fn maintenance(&self) -> impl Future<Output = ()> + 'static {
        maintenance_task(Arc::downgrade(&self.inner), self.inner.clock.clone())
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
        std::thread::Builder::new()
            .name("ringpool-maintenance".into())
            .spawn(move || futures_executor::block_on(maintenance_task(pool, clock)))
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
            opened += inner.refill().await?;
            if inner.is_closed() {
                return Err(Error::Closed);
            }
            if !inner.needs_refill() {
                return Ok(opened);
            }
            if inner.breaker_open() {
                return Err(inner.unavailable_error());
            }
            let now = inner.clock.now();
            if now >= deadline {
                return Err(inner.timeout_error(start));
            }
            let retry_at = inner.gate.closed_until(now).unwrap_or(now).min(deadline);
            Sleep::until(&inner.clock, retry_at.max(now + 1)).await;
        }
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
            // Errors are logged where they happen; keep going.
            let _ = inner.refill().await;
            inner.check_idle().await;
            if inner.is_closed() {
                return;
            }
            inner.next_maintenance()
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
            // A wake-up may have come before the registration: run
            // now if a refill would make progress.
            let now = inner.clock.now();
            let refill_now = inner.needs_refill() && inner.can_dial(now) && !inner.breaker_open();
            if inner.is_closed() || refill_now {
                return Poll::Ready(());
            }
            Poll::Pending
        })
        .await;
    }
}

//! Checkout: the lock-free fast path and the waiting slow path.
//!
//! Fast path: nobody waits, an idle connection is there, it passes its
//! checks: one pop, no lock. Slow path: the get holds at most one `Claim`
//! (a connection or a slot) at a time; each one is given back by `Drop` if
//! the get is cancelled at any await point, so a dropped get never leaks.

use std::future::{Future, poll_fn};
use std::panic::Location;
use std::pin::Pin;
use std::sync::Arc as StdArc;
use std::task::Poll;

use crate::Pooled;
use crate::dial::{DialEnd, DialPermit};
use crate::error::{Error, TimeoutError, UnavailableError};
use crate::idle::Entry;
use crate::manager::CloseReason;
use crate::manager::Manager;
use crate::pool::{Checked, Inner, Pool};
use crate::stats::Counter;
use crate::sync::Arc;
use crate::timer::{Raced, Sleep, with_deadline};
use crate::waiters::{Grant, Outcome, Waiter};

type ConnOf<M> = <M as Manager>::Connection;
type ErrOf<M> = <M as Manager>::Error;

/// A connection or slot held by a get; given back if the get is dropped.
pub(crate) struct Claim<'a, M: Manager> {
    inner: &'a Inner<M>,
    grant: Option<Grant<ConnOf<M>>>,
}

impl<'a, M: Manager> Claim<'a, M> {
    pub(crate) fn new(inner: &'a Inner<M>, grant: Grant<ConnOf<M>>) -> Self {
        Claim {
            inner,
            grant: Some(grant),
        }
    }

    pub(crate) fn take(mut self) -> Grant<ConnOf<M>> {
        self.grant
            .take()
            .expect("a claim holds its grant until taken")
    }
}

impl<M: Manager> Drop for Claim<'_, M> {
    fn drop(&mut self) {
        if let Some(grant) = self.grant.take() {
            self.inner.give_back_grant(grant);
        }
    }
}

/// A connection being pinged at checkout: if the get is dropped mid-ping,
/// the connection's state is unknown, so it is closed (its slot freed).
pub(crate) struct Pinging<'a, M: Manager> {
    pub(crate) inner: &'a Inner<M>,
    pub(crate) entry: Option<Entry<ConnOf<M>>>,
}

impl<M: Manager> Drop for Pinging<'_, M> {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            self.inner.close_conn(entry.conn, CloseReason::Broken);
            self.inner.release_slot();
        }
    }
}

/// A place in the waiter queue; withdrawn (and anything it was handed given
/// back) if the get is dropped while queued.
struct Queued<'a, M: Manager> {
    inner: &'a Inner<M>,
    waiter: Option<Arc<Waiter<ConnOf<M>, ErrOf<M>>>>,
}

impl<M: Manager> Queued<'_, M> {
    fn withdraw(&mut self) -> Option<Outcome<ConnOf<M>, ErrOf<M>>> {
        let waiter = self.waiter.take()?;
        self.inner.waiters.withdraw(&waiter)
    }
}

impl<M: Manager> Drop for Queued<'_, M> {
    fn drop(&mut self) {
        if let Some(outcome) = self.withdraw() {
            self.inner.give_back(outcome);
        }
    }
}

enum WaitEnd<'a, M: Manager> {
    Granted(Claim<'a, M>),
    Failed(StdArc<ErrOf<M>>),
    Unavailable,
    Closed,
    TimedOut,
}

/// What the fast path found.
pub(crate) enum Fast<C> {
    Hit(Entry<C>),
    /// Go slow; a slot freed by closing a bad idle connection comes along.
    Miss(Option<Grant<C>>),
}

impl<M: Manager> Inner<M> {
    /// One lock-free attempt: only when nobody waits (FIFO).
    #[inline]
    pub(crate) fn try_fast(&self) -> Fast<ConnOf<M>> {
        if self.waiters.count() != 0 || self.is_closed() {
            return Fast::Miss(None);
        }
        let Some(entry) = self.idle.pop() else {
            return Fast::Miss(None);
        };
        match self.validate(entry, self.clock.recent()) {
            Checked::Ready(entry) => {
                self.stats.incr(Counter::FastReuse);
                Fast::Hit(entry)
            }
            // The slow path pings it.
            Checked::NeedsPing(entry) => Fast::Miss(Some(Grant::Conn(entry))),
            Checked::Closed => Fast::Miss(Some(Grant::Slot)),
        }
    }

    /// Pings `entry` under the ping timeout (and the get's deadline). A
    /// failed, timed-out or cancelled ping closes the connection; its slot
    /// stays with the caller.
    async fn ping_checkout(&self, entry: Entry<ConnOf<M>>, deadline: u64) -> Grant<ConnOf<M>> {
        match self.ping_entry(entry, deadline).await {
            Some(entry) => Grant::Conn(entry),
            None => Grant::Slot,
        }
    }

    /// Pings `entry` under the ping timeout (and `deadline`). Healthy: the
    /// entry comes back. Failed or timed out: the connection is closed and
    /// `None` returned, its slot still the caller's. Dropped mid-ping: the
    /// connection is closed and its slot freed (`Pinging`).
    pub(crate) async fn ping_entry(
        &self,
        entry: Entry<ConnOf<M>>,
        deadline: u64,
    ) -> Option<Entry<ConnOf<M>>> {
        let mut pinging = Pinging {
            inner: self,
            entry: Some(entry),
        };
        let limit = self
            .clock
            .now()
            .saturating_add(self.settings.load().ping_timeout_ns)
            .min(deadline);
        let conn = &mut pinging.entry.as_mut().expect("held while pinging").conn;
        let healthy = matches!(
            with_deadline(&self.clock, limit, self.manager.ping(conn)).await,
            Raced::Done(Ok(()))
        );
        let entry = pinging.entry.take().expect("held while pinging");
        if healthy {
            return Some(entry);
        }
        tracing::debug!("ringpool: connection failed its ping");
        self.close_conn(entry.conn, CloseReason::Broken);
        None
    }

    /// The slow path: queue, dial, retry, until served or out of time.
    pub(crate) async fn acquire(
        &self,
        first: Option<Grant<ConnOf<M>>>,
    ) -> Result<Entry<ConnOf<M>>, Error<ErrOf<M>>> {
        self.stats.incr(Counter::SlowGets);
        if self
            .hot
            .track_demand
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            let in_use_or_dialing = self.slots.size().saturating_sub(self.idle.len());
            self.lifecycle
                .observe_demand(in_use_or_dialing + self.waiters.count() + 1);
        }
        let start = self.clock.now();
        let deadline = start.saturating_add(self.settings.load().acquire_timeout_ns);
        let mut waited = false;
        let result = self
            .acquire_until(first, start, deadline, &mut waited)
            .await;
        if waited {
            self.stats.incr(Counter::Waited);
            self.stats
                .add(Counter::WaitNanos, self.clock.now().saturating_sub(start));
        }
        result
    }

    async fn acquire_until(
        &self,
        first: Option<Grant<ConnOf<M>>>,
        start: u64,
        deadline: u64,
        waited: &mut bool,
    ) -> Result<Entry<ConnOf<M>>, Error<ErrOf<M>>> {
        let mut claim = first.map(|grant| Claim::new(self, grant));
        loop {
            if self.is_closed() {
                return Err(Error::Closed);
            }
            let Some(held) = claim.take() else {
                claim = match self.take_or_wait(deadline, waited).await {
                    WaitEnd::Granted(claim) => Some(claim),
                    WaitEnd::Failed(error) => return Err(Error::Connect(error)),
                    WaitEnd::Unavailable => return Err(self.unavailable_error()),
                    WaitEnd::Closed => return Err(Error::Closed),
                    WaitEnd::TimedOut => return Err(self.timeout_error(start)),
                };
                continue;
            };
            match held.take() {
                Grant::Conn(entry) => {
                    let checked = match self.validate(entry, self.clock.recent()) {
                        Checked::Ready(entry) => Grant::Conn(entry),
                        Checked::NeedsPing(entry) => self.ping_checkout(entry, deadline).await,
                        Checked::Closed => Grant::Slot,
                    };
                    match checked {
                        Grant::Conn(entry) => {
                            self.stats.incr(Counter::SlowReuse);
                            return Ok(entry);
                        }
                        slot => claim = Some(Claim::new(self, slot)),
                    }
                }
                Grant::Slot => {
                    let slot = Claim::new(self, Grant::Slot);
                    if let Some(entry) = self.idle.pop() {
                        // A connection came back meanwhile: cheaper than a dial.
                        drop(slot);
                        claim = Some(Claim::new(self, Grant::Conn(entry)));
                        continue;
                    }
                    let dialing = match self.permit_dial(self.clock.now()) {
                        DialPermit::Granted(dialing) => dialing,
                        DialPermit::Wait => {
                            drop(slot);
                            continue;
                        }
                        DialPermit::Unavailable => return Err(self.unavailable_error()),
                    };
                    match self.dial(slot, dialing, deadline).await {
                        // Closed while dialing: the new connection is not
                        // handed out; the claim closes it on the next turn.
                        Ok(entry) if self.is_closed() => {
                            claim = Some(Claim::new(self, Grant::Conn(entry)))
                        }
                        Ok(entry) => return Ok(entry),
                        Err(DialEnd::Fatal(error)) => return Err(Error::Connect(error)),
                        Err(DialEnd::TimedOut) => return Err(self.timeout_error(start)),
                        Err(DialEnd::Retry) => {}
                    }
                }
            }
        }
    }

    /// Takes an idle connection or a slot if nobody waits ahead; otherwise
    /// queues and waits to be served.
    async fn take_or_wait(&self, deadline: u64, waited: &mut bool) -> WaitEnd<'_, M> {
        if self.waiters.count() == 0 {
            if let Some(entry) = self.idle.pop() {
                return WaitEnd::Granted(Claim::new(self, Grant::Conn(entry)));
            }
            let now = self.clock.now();
            if self.breaker_open() {
                // Only the probe dials; everybody else fails fast.
                return match self.gate.is_open(now) && self.slots.try_reserve() {
                    true => WaitEnd::Granted(Claim::new(self, Grant::Slot)),
                    false => WaitEnd::Unavailable,
                };
            }
            if self.can_dial(now) && self.slots.try_reserve() {
                return WaitEnd::Granted(Claim::new(self, Grant::Slot));
            }
        } else if self.breaker_open() {
            return WaitEnd::Unavailable;
        }
        *waited = true;
        self.wait(deadline).await
    }

    async fn wait(&self, deadline: u64) -> WaitEnd<'_, M> {
        let now = self.clock.now();
        let registered =
            self.waiters
                .register(deadline, || self.is_closed(), || self.next_grant(now));
        let Some(waiter) = registered else {
            return WaitEnd::Closed;
        };
        let mut queued = Queued {
            inner: self,
            waiter: Some(waiter),
        };
        self.arm_timeout_sweep(deadline);
        // Only while the dial gate is closed: wake when it reopens, to
        // dispatch slots. The acquire timeout itself is the sweep's job.
        let mut gate_sleep: Option<Sleep<'_>> = None;
        poll_fn(|cx| {
            loop {
                let waiter = queued.waiter.as_ref().expect("queued until settled");
                if let Poll::Ready(outcome) = waiter.poll(cx) {
                    queued.waiter = None;
                    return Poll::Ready(self.wait_end(outcome));
                }
                let now = self.clock.now();
                if now >= deadline {
                    return Poll::Ready(match queued.withdraw() {
                        None => WaitEnd::TimedOut,
                        Some(outcome) => self.wait_end(outcome),
                    });
                }
                match self.gate.closed_until(now) {
                    // Open, and we were waiting for it to reopen: dispatch.
                    None if gate_sleep.take().is_some() => {}
                    None => return Poll::Pending,
                    Some(reopen) => {
                        let sleep =
                            gate_sleep.get_or_insert_with(|| Sleep::until(&self.clock, reopen));
                        sleep.reset(reopen);
                        if Pin::new(sleep).poll(cx).is_pending() {
                            return Poll::Pending;
                        }
                        gate_sleep = None;
                    }
                }
                self.dispatch();
            }
        })
        .await
    }

    fn wait_end(&self, outcome: Outcome<ConnOf<M>, ErrOf<M>>) -> WaitEnd<'_, M> {
        match outcome {
            Outcome::Granted(grant) => WaitEnd::Granted(Claim::new(self, grant)),
            Outcome::Failed(error) => WaitEnd::Failed(error),
            Outcome::Unavailable => WaitEnd::Unavailable,
            Outcome::Closed => WaitEnd::Closed,
            Outcome::TimedOut => WaitEnd::TimedOut,
        }
    }

    pub(crate) fn unavailable_error(&self) -> Error<ErrOf<M>> {
        let now = self.clock.now();
        Error::Unavailable(UnavailableError {
            consecutive_failures: self.gate.consecutive_failures(),
            retry_in: std::time::Duration::from_nanos(
                self.gate.closed_until(now).unwrap_or(now) - now,
            ),
            last_connect_error: self.last_connect_error(),
        })
    }

    pub(crate) fn timeout_error(&self, start: u64) -> Error<ErrOf<M>> {
        self.stats.incr(Counter::Timeouts);
        let status = self.status();
        let waited = std::time::Duration::from_nanos(self.clock.now().saturating_sub(start));
        tracing::debug!(?waited, ?status, "ringpool: acquire timed out");
        Error::Timeout(TimeoutError {
            waited,
            size: status.size,
            in_use: status.in_use,
            waiting: status.waiting,
            max_size: status.max_size,
            last_connect_error: self.last_connect_error(),
        })
    }
}

impl<M: Manager> Pool<M> {
    /// Checks out a connection, waiting up to the acquire timeout.
    ///
    /// Served first from idle connections, then by dialing into a free slot,
    /// else by queueing: waiters are served strictly in arrival order, and a
    /// new call never overtakes a queued one. Dropping the future at any
    /// point gives back whatever it held.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] with the pool's state and the last connect error;
    /// [`Error::Connect`] when a dial failed fatally; [`Error::Closed`].
    ///
    /// # Examples
    ///
    /// ```
    /// # use ringpool::{Manager, Pool};
    /// # struct Numbers;
    /// # impl Manager for Numbers {
    /// #     type Connection = u64;
    /// #     type Error = std::io::Error;
    /// #     async fn connect(&self) -> Result<u64, std::io::Error> { Ok(7) }
    /// # }
    /// # futures_executor::block_on(async {
    /// let pool = Pool::builder(Numbers).build().unwrap();
    /// let conn = pool.get().await.unwrap();
    /// assert_eq!(*conn, 7);
    /// # });
    /// ```
    #[track_caller]
    pub fn get(&self) -> impl Future<Output = Result<Pooled<'_, M>, Error<ErrOf<M>>>> + '_ {
        // Where the connection was checked out, for leak reports.
        let caller = Location::caller();
        async move {
            let inner = &*self.inner;
            match inner.try_fast() {
                Fast::Hit(entry) => Ok(Pooled::new(self, entry, caller)),
                // Boxed so the common, fast-path future stays a few words.
                Fast::Miss(first) => Box::pin(inner.acquire(first))
                    .await
                    .map(|entry| Pooled::new(self, entry, caller)),
            }
        }
    }

    /// [`get`](Pool::get) for synchronous callers: blocks the thread.
    ///
    /// The manager's `connect` runs on this thread, so it must not need a
    /// runtime context (a blocking or io_uring manager is fine).
    #[track_caller]
    pub fn get_blocking(&self) -> Result<Pooled<'_, M>, Error<ErrOf<M>>> {
        futures_executor::block_on(self.get())
    }

    /// Checks out an idle connection without waiting or dialing.
    ///
    /// # Errors
    ///
    /// [`Error::Exhausted`] when no idle connection is free or gets are
    /// queued (it never overtakes them); [`Error::Closed`].
    #[track_caller]
    pub fn try_get(&self) -> Result<Pooled<'_, M>, Error<ErrOf<M>>> {
        let inner = &*self.inner;
        if inner.is_closed() {
            inner.stats.incr(Counter::SlowGets);
            return Err(Error::Closed);
        }
        if inner.waiters.count() == 0 {
            let now = inner.clock.recent();
            while let Some(entry) = inner.idle.pop() {
                match inner.validate(entry, now) {
                    // try_get never waits, so it cannot ping: a connection
                    // due a ping is handed out after the synchronous checks.
                    Checked::Ready(entry) | Checked::NeedsPing(entry) => {
                        inner.stats.incr(Counter::FastReuse);
                        return Ok(Pooled::new(self, entry, Location::caller()));
                    }
                    Checked::Closed => inner.release_slot(),
                }
            }
        }
        inner.stats.incr(Counter::SlowGets);
        let status = inner.status();
        Err(Error::Exhausted {
            size: status.size,
            in_use: status.in_use,
            waiting: status.waiting,
            max_size: status.max_size,
        })
    }
}

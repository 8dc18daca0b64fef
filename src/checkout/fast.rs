//! The public checkout calls and their lock-free fast path.
//!
//! Fast path: nobody waits, an idle connection is there, it passes its
//! checks: one pop, no lock, no allocation. Anything else goes to the slow
//! path (`slow::acquire`), which waits inline (a waiting get allocates
//! nothing) and boxes only a dial or a ping, so the get's future stays
//! small whatever the manager's futures are.

use std::future::Future;
use std::panic::Location;
use std::time::Duration;

use super::guard::Pooled;
use super::slow::acquire;
use super::validate::{Checked, validate, validate_in};
use crate::core::entry::Entry;
use crate::core::protocol::FastTake;
use crate::core::waiters::{Grant, flags_in};
use crate::error::Error;
use crate::lifecycle::housekeeping::refill_if_below_min_idle;
use crate::lifecycle::leak::Track;
use crate::manager::Manager;
use crate::metrics::stats::Counter;
use crate::metrics::status::status;
use crate::pool::Pool;
use crate::pool::inner::{Inner, path};
use crate::pool::policy;
use crate::pool::release::release_slot;
use crate::time::nanos;

type ErrOf<M> = <M as Manager>::Error;

/// What the fast path found.
pub(crate) enum Fast<C> {
    /// A connection ready to hand out, and whether it is watched for leaks.
    Hit(Entry<C>, Track),
    /// Go slow; a slot freed by closing a bad idle connection comes along.
    Miss(Option<Grant<C>>),
}

/// One lock-free attempt: only when nobody waits (FIFO). One load of the
/// pool's state word decides what it runs: nothing but the pop and the
/// connection's timestamps when no checkout step is on.
#[inline]
pub(crate) fn try_fast<M: Manager>(inner: &Inner<M>) -> Fast<M::Connection> {
    let Some(FastTake {
        entry,
        word,
        counted,
        thread,
    }) = inner.core.take_fast()
    else {
        return Fast::Miss(None);
    };
    let now = inner.clock.recent();
    // The plain pool's hit returns here, on its own: merged with the
    // other outcomes, the entry went through the stack as words and was
    // read back as wider loads, a store-forwarding stall on every
    // checkout. So does a leak-tracked one: tracking needs nothing of the
    // connection, only the thread (the guard writes the ledger), and
    // through the steps' call it paid for a call and the entry's trip
    // through memory (about 3 ns).
    if !flags_in(word, path::CHECKOUT_STEPS) && policy::is_quick(&inner.hot, &entry, now) {
        if !counted {
            inner.stats.incr(Counter::FastReuse);
        }
        return Fast::Hit(entry, tracked(word, thread));
    }
    try_fast_with_steps(inner, entry, word, counted, thread, now)
}

/// Whether a fast hit on the thread numbered `thread` is leak-tracked, as
/// the pool's state word `word` says.
#[inline(always)]
fn tracked(word: usize, thread: usize) -> Track {
    match flags_in(word, path::LEAK) {
        true => Track::OnThread(thread),
        false => Track::Off,
    }
}

/// The rest of [`try_fast`]: a connection that needs more than the quick
/// checks, or a pool with a checkout step on the connection or beside it
/// (the watch, the `before_checkout` hook, a `min_idle` refill; leak
/// tracking only comes along).
#[inline(never)]
fn try_fast_with_steps<M: Manager>(
    inner: &Inner<M>,
    entry: Entry<M::Connection>,
    word: usize,
    counted: bool,
    thread: usize,
    now: u64,
) -> Fast<M::Connection> {
    match validate_in(inner, entry, now, word) {
        Checked::Ready(mut entry) => {
            // The side steps, when there are any, take the entry through
            // their call: held across it, the entry went to memory on
            // every hooked checkout, stored narrow and read back wide (a
            // store-forwarding stall).
            if !counted || flags_in(word, path::MIN_IDLE) {
                entry = hit_side_steps(inner, word, counted, entry);
            }
            Fast::Hit(entry, tracked(word, thread))
        }
        // The slow path pings it.
        Checked::NeedsPing(entry) => {
            not_served_fast(inner, counted);
            Fast::Miss(Some(Grant::Conn(entry)))
        }
        Checked::Closed => {
            not_served_fast(inner, counted);
            Fast::Miss(Some(Grant::Slot))
        }
    }
}

/// What a fast hit does besides handing out its connection: counting it
/// (unless the idle store counted it) and topping `min_idle` up. The
/// entry passes through.
#[inline(never)]
fn hit_side_steps<M: Manager>(
    inner: &Inner<M>,
    word: usize,
    counted: bool,
    entry: Entry<M::Connection>,
) -> Entry<M::Connection> {
    if !counted {
        inner.stats.incr(Counter::FastReuse);
    }
    if flags_in(word, path::MIN_IDLE) {
        refill_if_below_min_idle(inner);
    }
    entry
}

/// A take the idle store counted as a fast hit was not one after all.
#[cold]
fn not_served_fast<M: Manager>(inner: &Inner<M>, counted: bool) {
    if counted {
        inner.stats.incr(Counter::FastRefund);
    }
}

/// A checkout waiting up to `timeout_ns` (the acquire timeout if `None`).
///
/// A plain function returning an `async` block, not an `async fn`, so the
/// block is the caller's future itself. ([`Pool::get`] spells the same
/// block out: there even this call measured a few nanoseconds a checkout.)
#[inline]
#[allow(clippy::manual_async_fn)]
fn checkout<'a, M: Manager>(
    pool: &'a Pool<M>,
    timeout_ns: Option<u64>,
    caller: &'static Location<'static>,
) -> impl Future<Output = Result<Pooled<'a, M>, Error<ErrOf<M>>>> + 'a {
    async move {
        let inner = &*pool.inner;
        match try_fast(inner) {
            Fast::Hit(entry, track) => Ok(Pooled::hit(pool, entry, caller, track)),
            Fast::Miss(first) => acquire(inner, first, timeout_ns)
                .await
                .map(|entry| Pooled::new(pool, entry, caller)),
        }
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
    /// [`Error::Connect`] when a dial failed fatally; [`Error::Unavailable`]
    /// while the breaker is open; [`Error::Closed`].
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
        // `checkout(self, None, caller)`, written out: the hot path.
        async move {
            let inner = &*self.inner;
            match try_fast(inner) {
                Fast::Hit(entry, track) => Ok(Pooled::hit(self, entry, caller, track)),
                Fast::Miss(first) => acquire(inner, first, None)
                    .await
                    .map(|entry| Pooled::new(self, entry, caller)),
            }
        }
    }

    /// [`get`](Pool::get) with its own timeout instead of the pool's
    /// `acquire_timeout` (for a request whose deadline is nearer).
    ///
    /// # Errors
    ///
    /// As [`get`](Pool::get); [`Error::Timeout`] after `timeout`.
    #[track_caller]
    pub fn get_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<Pooled<'_, M>, Error<ErrOf<M>>>> + '_ {
        checkout(self, Some(nanos(timeout)), Location::caller())
    }

    /// [`get`](Pool::get) for a guard that owns a handle to the pool: it
    /// can be moved into a spawned task, stored in a struct or returned
    /// from a function. It costs one handle clone (an atomic increment and
    /// decrement) more than [`get`](Pool::get); the future is `'static`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ringpool::{Manager, Pool, Pooled};
    /// # struct Numbers;
    /// # impl Manager for Numbers {
    /// #     type Connection = u64;
    /// #     type Error = std::io::Error;
    /// #     async fn connect(&self) -> Result<u64, std::io::Error> { Ok(7) }
    /// # }
    /// fn checked_out(pool: &Pool<Numbers>) -> Pooled<'static, Numbers> {
    ///     futures_executor::block_on(pool.get_owned()).unwrap()
    /// }
    /// let pool = Pool::builder(Numbers).build().unwrap();
    /// let conn = checked_out(&pool);
    /// let worker = std::thread::spawn(move || *conn + 1);
    /// assert_eq!(worker.join().unwrap(), 8);
    /// ```
    #[track_caller]
    pub fn get_owned(
        &self,
    ) -> impl Future<Output = Result<Pooled<'static, M>, Error<ErrOf<M>>>> + 'static {
        let (pool, caller) = (self.clone(), Location::caller());
        async move {
            // The guard takes over the handle cloned for the future: one
            // clone in all. Built straight from the checkout, not from a
            // borrowing guard's parts: that moved the whole guard through
            // the future's state, and the wide read of it after narrow
            // writes stalled every owned checkout.
            match try_fast(&pool.inner) {
                Fast::Hit(entry, track) => Ok(Pooled::hit_owning(pool, entry, caller, track)),
                Fast::Miss(first) => {
                    let entry = acquire(&pool.inner, first, None).await?;
                    Ok(Pooled::hit_owning(pool, entry, caller, Track::Unknown))
                }
            }
        }
    }

    /// [`try_get`](Pool::try_get) for a guard that owns a handle to the
    /// pool, as [`get_owned`](Pool::get_owned).
    ///
    /// # Errors
    ///
    /// As [`try_get`](Pool::try_get).
    #[track_caller]
    pub fn try_get_owned(&self) -> Result<Pooled<'static, M>, Error<ErrOf<M>>> {
        self.try_get().map(Pooled::into_owned)
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
        if inner.core.waiters.count() == 0 {
            let now = inner.clock.recent();
            while let Some(entry) = inner.core.idle.pop() {
                match validate(inner, entry, now) {
                    // try_get never waits, so it cannot ping: a connection
                    // due a ping is handed out after the synchronous checks.
                    Checked::Ready(entry) | Checked::NeedsPing(entry) => {
                        inner.stats.incr(Counter::FastReuse);
                        return Ok(Pooled::new(self, entry, Location::caller()));
                    }
                    Checked::Closed => release_slot(inner),
                }
            }
        }
        inner.stats.incr(Counter::SlowGets);
        let status = status(inner);
        Err(Error::Exhausted {
            size: status.size,
            in_use: status.in_use,
            waiting: status.waiting,
            max_size: status.max_size,
        })
    }
}

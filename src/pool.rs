//! The pool's shared state and every operation that changes it outside a
//! checkout: giving connections back, handing resources to waiters,
//! reconfiguring and closing.
//!
//! The protocol in one paragraph (the full statement with its invariants is
//! `docs/design.md`): a connection is either idle in `idle`, held by exactly
//! one guard or get, or being dialed under a reserved slot; `slots` counts all
//! three. Whoever gives a connection or a slot back first publishes it (push
//! to `idle`, decrement `slots`), then issues a `SeqCst` fence and reads the
//! waiter count; a new waiter first raises that count, fences, and then looks
//! for a connection or a slot itself (`dispatch`). One of the two always sees
//! the other, so no waiter sleeps while a resource sits unused.

use std::sync::Mutex as StdMutex;
use std::sync::Weak;
use std::sync::atomic::{
    AtomicU64 as StdAtomicU64, AtomicUsize as StdAtomicUsize, Ordering as StdOrdering,
};
use std::task::{Wake, Waker};

use crate::clock::Clock;
use crate::config::{Config, ConfigError, Settings};
use crate::dial_gate::DialGate;
use crate::idle::Entry;
use crate::manager::{CloseReason, Manager};
use crate::stats::{Stats, StatsCells};
use crate::status::Status;
use crate::sync::{AtomicBool, IdleQueue, Ordering, SwapCell, fence};
use crate::waiters::{Grant, Outcome, Waiters};

/// A pool of connections made by `M`.
///
/// Cheap to clone: clones share one pool. `Send + Sync` when the manager's
/// connection type is `Send`.
///
/// # Examples
///
/// ```
/// use ringpool::{Manager, Pool};
///
/// struct Numbers;
/// impl Manager for Numbers {
///     type Connection = u64;
///     type Error = std::io::Error;
///     async fn connect(&self) -> Result<u64, std::io::Error> {
///         Ok(7)
///     }
/// }
///
/// let pool = Pool::builder(Numbers).max_size(4).build().unwrap();
/// let conn = pool.get_blocking().unwrap();
/// assert_eq!(*conn, 7);
/// drop(conn);
/// assert_eq!(pool.status().idle, 1);
/// ```
pub struct Pool<M: Manager> {
    pub(crate) inner: std::sync::Arc<Inner<M>>,
}

impl<M: Manager> Clone for Pool<M> {
    fn clone(&self) -> Self {
        Pool {
            inner: std::sync::Arc::clone(&self.inner),
        }
    }
}

/// What the checkout checks made of an idle connection.
pub(crate) enum Checked<C> {
    /// Good to hand out.
    Ready(Entry<C>),
    /// Passed the synchronous checks, but idle past `ping_after`.
    NeedsPing(Entry<C>),
    /// Closed; its slot stays with the caller.
    Closed,
}

/// Settings read on every checkout, mirrored from the live config so the hot
/// path does a few relaxed loads instead of an `ArcSwap` load.
pub(crate) struct HotLimits {
    pub(crate) idle_timeout_ns: StdAtomicU64,
    pub(crate) check_after_ns: StdAtomicU64,
    pub(crate) min_idle: StdAtomicUsize,
    pub(crate) max_dials: StdAtomicUsize,
    /// 0 when the breaker is disabled.
    pub(crate) breaker_threshold: std::sync::atomic::AtomicU32,
    /// `u64::MAX` when leak detection is off.
    pub(crate) leak_threshold_ns: StdAtomicU64,
    /// `u64::MAX` when checkout pings are off.
    pub(crate) ping_after_ns: StdAtomicU64,
    /// The least of the idle-time thresholds (`idle_timeout`,
    /// `check_after`, `ping_after`): below it a checkout needs no check.
    pub(crate) quick_ns: StdAtomicU64,
    /// Whether slow-path gets record demand (`demand_half_life` is set).
    pub(crate) track_demand: std::sync::atomic::AtomicBool,
}

impl HotLimits {
    fn new(settings: &Settings) -> Self {
        let hot = HotLimits {
            idle_timeout_ns: StdAtomicU64::new(0),
            check_after_ns: StdAtomicU64::new(0),
            min_idle: StdAtomicUsize::new(0),
            max_dials: StdAtomicUsize::new(0),
            breaker_threshold: std::sync::atomic::AtomicU32::new(0),
            leak_threshold_ns: StdAtomicU64::new(u64::MAX),
            ping_after_ns: StdAtomicU64::new(u64::MAX),
            track_demand: std::sync::atomic::AtomicBool::new(false),
            quick_ns: StdAtomicU64::new(0),
        };
        hot.update(settings);
        hot
    }

    fn update(&self, settings: &Settings) {
        self.idle_timeout_ns
            .store(settings.idle_timeout_ns, StdOrdering::Relaxed);
        self.check_after_ns
            .store(settings.check_after_ns, StdOrdering::Relaxed);
        self.min_idle
            .store(settings.config.min_idle, StdOrdering::Relaxed);
        self.max_dials
            .store(settings.config.max_concurrent_dials, StdOrdering::Relaxed);
        self.breaker_threshold.store(
            settings.config.breaker_threshold.unwrap_or(0),
            StdOrdering::Relaxed,
        );
        self.leak_threshold_ns
            .store(settings.leak_threshold_ns, StdOrdering::Relaxed);
        self.ping_after_ns
            .store(settings.ping_after_ns, StdOrdering::Relaxed);
        self.track_demand.store(
            settings.config.demand_half_life.is_some(),
            StdOrdering::Relaxed,
        );
        let quick = settings
            .idle_timeout_ns
            .min(settings.check_after_ns)
            .min(settings.ping_after_ns);
        self.quick_ns.store(quick, StdOrdering::Relaxed);
    }
}

pub(crate) struct Inner<M: Manager> {
    pub(crate) manager: M,
    pub(crate) clock: Clock,
    pub(crate) settings: SwapCell<Settings>,
    pub(crate) hot: HotLimits,
    /// Written on dial and close only; padded so waiter traffic does not
    /// evict it from the readers' caches.
    pub(crate) slots: crossbeam_utils::CachePadded<crate::slots::Slots>,
    pub(crate) idle: IdleQueue<Entry<M::Connection>>,
    pub(crate) waiters: Waiters<M::Connection, M::Error>,
    pub(crate) closed: AtomicBool,
    pub(crate) gate: DialGate,
    pub(crate) stats: StatsCells,
    pub(crate) creating: StdAtomicUsize,
    pub(crate) last_error: StdMutex<Option<std::sync::Arc<M::Error>>>,
    reconfiguring: StdMutex<()>,
    /// The deadline the waiter-timeout sweep is armed for (`u64::MAX`: none).
    sweep_at: StdAtomicU64,
    /// Warm size, maintenance and drain wake-ups.
    pub(crate) lifecycle: crate::lifecycle::Lifecycle,
    /// This pool, for timers that act on it (timeout sweep, housekeeping,
    /// leak alarms).
    pub(crate) self_ref: Weak<Inner<M>>,
}

/// Wakes up at the earliest waiter deadline and times out what is due, so a
/// waiting get needs no timer of its own.
struct TimeoutSweep<M: Manager>(Weak<Inner<M>>);

impl<M: Manager> Wake for TimeoutSweep<M> {
    fn wake(self: std::sync::Arc<Self>) {
        if let Some(inner) = self.0.upgrade() {
            inner.sweep_timeouts();
        }
    }
}

impl<M: Manager> Inner<M> {
    pub(crate) fn new(
        manager: M,
        config: Config,
        idle_capacity: usize,
        clock: Clock,
        self_ref: Weak<Inner<M>>,
    ) -> Self {
        let settings = Settings::new(config);
        Inner {
            manager,
            clock,
            hot: HotLimits::new(&settings),
            slots: crossbeam_utils::CachePadded::new(crate::slots::Slots::new(
                settings.config.max_size,
            )),
            settings: SwapCell::new(settings),
            idle: IdleQueue::new(idle_capacity),
            waiters: Waiters::new(),
            closed: AtomicBool::new(false),
            gate: DialGate::new(),
            stats: StatsCells::new(),
            creating: StdAtomicUsize::new(0),
            last_error: StdMutex::new(None),
            reconfiguring: StdMutex::new(()),
            sweep_at: StdAtomicU64::new(u64::MAX),
            lifecycle: crate::lifecycle::Lifecycle::new(),
            self_ref,
        }
    }

    /// Makes sure the timeout sweep runs at or before `deadline`.
    pub(crate) fn arm_timeout_sweep(&self, deadline: u64) {
        // Usually an earlier waiter armed it already: a load, no write.
        if self.sweep_at.load(StdOrdering::SeqCst) <= deadline
            || self.sweep_at.fetch_min(deadline, StdOrdering::SeqCst) <= deadline
        {
            return;
        }
        let sweep = Waker::from(std::sync::Arc::new(TimeoutSweep(self.self_ref.clone())));
        self.clock
            .timers()
            .arm_detached(&self.clock, deadline, &sweep);
    }

    fn sweep_timeouts(&self) {
        self.sweep_at.store(u64::MAX, StdOrdering::SeqCst);
        if let Some(next) = self.waiters.expire(self.clock.now()) {
            self.arm_timeout_sweep(next);
        }
    }

    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn close_conn(&self, conn: M::Connection, reason: CloseReason) {
        self.stats.closed(reason);
        tracing::debug!(?reason, "ringpool: closing connection");
        self.manager.close(conn, reason);
        // The pool shrank: maintenance may need to refill.
        self.lifecycle.wake_maintenance();
    }

    /// Gives a slot back and lets a waiter have it.
    pub(crate) fn release_slot(&self) {
        self.slots.release();
        self.after_publish();
        if self.is_closed() {
            self.lifecycle.wake_drain();
        }
    }

    /// The returner's half of the lost-wakeup handshake.
    #[inline]
    pub(crate) fn after_publish(&self) {
        fence(Ordering::SeqCst);
        if self.waiters.count() != 0 {
            self.dispatch();
        }
    }

    /// Returns a used connection to the pool (or closes it if it cannot stay).
    #[inline]
    pub(crate) fn put(&self, mut entry: Entry<M::Connection>) {
        if !self.manager.can_recycle(&mut entry.conn) {
            return self.close_and_release(entry.conn, CloseReason::Broken);
        }
        entry.last_used = self.clock.recent();
        self.reinsert(entry);
    }

    /// Closes a connection and frees its slot (the uncommon return paths).
    #[cold]
    fn close_and_release(&self, conn: M::Connection, reason: CloseReason) {
        self.close_conn(conn, reason);
        self.release_slot();
    }

    /// Puts a connection back without marking it used (maintenance, for
    /// example, pings idle connections without resetting their idle time).
    #[inline]
    pub(crate) fn reinsert(&self, entry: Entry<M::Connection>) {
        if self.is_closed() {
            return self.close_and_release(entry.conn, CloseReason::PoolClosed);
        }
        if self.slots.try_shed() {
            // Over a lowered max_size: this connection is the surplus.
            return self.close_conn(entry.conn, CloseReason::Resize);
        }
        // Somebody waits: hand the connection straight to the oldest waiter.
        let entry = match self.waiters.count() {
            0 => entry,
            _ => match self.waiters.hand_over(entry) {
                None => return,
                Some(entry) => entry,
            },
        };
        if let Err(entry) = self.idle.push(entry) {
            // Unreachable while max_size <= capacity; never lose it anyway.
            return self.close_and_release(entry.conn, CloseReason::Resize);
        }
        fence(Ordering::SeqCst);
        if self.closed.load(Ordering::Relaxed) {
            self.close_idle();
        }
        if self.waiters.count() != 0 {
            self.dispatch();
        }
    }

    /// Hands idle connections, then free slots, to waiters in arrival order.
    pub(crate) fn dispatch(&self) {
        let now = self.clock.now();
        self.waiters.serve(|| self.next_grant(now));
    }

    /// An idle connection, else a free slot if dialing is allowed at `now`.
    pub(crate) fn next_grant(&self, now: u64) -> Option<Grant<M::Connection>> {
        if let Some(entry) = self.idle.pop() {
            return Some(Grant::Conn(entry));
        }
        (self.can_dial(now) && !self.breaker_open() && self.slots.try_reserve())
            .then_some(Grant::Slot)
    }

    /// Checks a connection taken from idle. A bad one is closed and its slot
    /// stays with the caller (`Grant::Slot`), who may dial into it.
    #[inline]
    pub(crate) fn validate(&self, entry: Entry<M::Connection>, now: u64) -> Checked<M::Connection> {
        let idle_for = now.saturating_sub(entry.last_used);
        // One load and two compares for a connection used recently and
        // not near its end of life: the checkout hot path.
        if idle_for < self.hot.quick_ns.load(StdOrdering::Relaxed) && now < entry.expires {
            return Checked::Ready(entry);
        }
        self.validate_idle(entry, now, idle_for)
    }

    /// The full checks, for a connection idle long enough to need one.
    fn validate_idle(
        &self,
        mut entry: Entry<M::Connection>,
        now: u64,
        idle_for: u64,
    ) -> Checked<M::Connection> {
        let reason = if now >= entry.expires {
            Some(CloseReason::Lifetime)
        } else if idle_for >= self.hot.idle_timeout_ns.load(StdOrdering::Relaxed)
            && self.idle.len() >= self.hot.min_idle.load(StdOrdering::Relaxed)
        {
            Some(CloseReason::IdleTimeout)
        } else if idle_for >= self.hot.check_after_ns.load(StdOrdering::Relaxed)
            && self.manager.is_broken(&mut entry.conn)
        {
            Some(CloseReason::Broken)
        } else {
            None
        };
        match reason {
            None if idle_for >= self.hot.ping_after_ns.load(StdOrdering::Relaxed) => {
                Checked::NeedsPing(entry)
            }
            None => Checked::Ready(entry),
            Some(reason) => {
                self.close_conn(entry.conn, reason);
                Checked::Closed
            }
        }
    }

    /// Gives back whatever a withdrawn waiter had been handed.
    pub(crate) fn give_back(&self, outcome: Outcome<M::Connection, M::Error>) {
        if let Outcome::Granted(grant) = outcome {
            self.give_back_grant(grant);
        }
    }

    pub(crate) fn give_back_grant(&self, grant: Grant<M::Connection>) {
        match grant {
            Grant::Conn(entry) => self.put(entry),
            Grant::Slot => self.release_slot(),
        }
    }

    /// Closes idle connections while the pool is above its bound.
    fn shed_idle(&self) {
        while self.slots.size() > self.slots.max() {
            let Some(entry) = self.idle.pop() else { break };
            if self.slots.try_shed() {
                self.close_conn(entry.conn, CloseReason::Resize);
            } else {
                self.put(entry);
                break;
            }
        }
    }

    fn close_idle(&self) {
        while let Some(entry) = self.idle.pop() {
            self.close_conn(entry.conn, CloseReason::PoolClosed);
            self.slots.release();
        }
    }

    pub(crate) fn close(&self) {
        if !self.closed.swap(true, Ordering::SeqCst) {
            tracing::info!("ringpool: pool closed");
        }
        fence(Ordering::SeqCst);
        self.waiters.settle_all(|| Outcome::Closed);
        self.close_idle();
        self.lifecycle.wake_maintenance();
        self.lifecycle.wake_drain();
    }

    pub(crate) fn record_connect_error(&self, error: std::sync::Arc<M::Error>) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
    }

    pub(crate) fn last_connect_error(&self) -> Option<std::sync::Arc<M::Error>> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn status(&self) -> Status {
        let size = self.slots.size();
        let idle = self.idle.len();
        let creating = self.creating.load(StdOrdering::Relaxed);
        Status {
            size,
            idle,
            in_use: size.saturating_sub(idle + creating),
            creating,
            waiting: self.waiters.count(),
            max_size: self.slots.max(),
            warm_target: self.lifecycle.warm_target(),
        }
    }

    pub(crate) fn reconfigure(&self, config: Config) -> Result<(), ConfigError> {
        config.validate(self.idle.capacity())?;
        let _one_at_a_time = self.reconfiguring.lock().unwrap_or_else(|p| p.into_inner());
        let settings = Settings::new(config);
        self.hot.update(&settings);
        self.slots.set_max(settings.config.max_size);
        tracing::info!(config = ?settings.config, "ringpool: config replaced");
        self.settings.store(settings);
        fence(Ordering::SeqCst);
        self.shed_idle();
        self.dispatch();
        self.lifecycle.wake_maintenance();
        Ok(())
    }
}

impl<M: Manager> Drop for Inner<M> {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
        self.close_idle();
    }
}

impl<M: Manager> Pool<M> {
    /// Starts building a pool around `manager`.
    pub fn builder(manager: M) -> crate::Builder<M> {
        crate::Builder::new(manager)
    }

    /// Sizes of the pool, read together.
    pub fn status(&self) -> Status {
        self.inner.status()
    }

    /// Monotonic counters since the pool was built.
    pub fn stats(&self) -> Stats {
        self.inner.stats.snapshot()
    }

    /// The config in force.
    pub fn config(&self) -> Config {
        self.inner.settings.load().config.clone()
    }

    /// Validates `config` and, if it is good, makes it the live config.
    ///
    /// Raising `max_size` serves waiters at once. Lowering it never touches
    /// a connection in use: surplus idle connections are closed now, and
    /// returned ones are closed until the pool is within the new bound. A
    /// rejected config changes nothing.
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
    /// let pool = Pool::builder(Numbers).max_size(4).build().unwrap();
    /// let mut config = pool.config();
    /// config.max_size = 8;
    /// pool.reconfigure(config).unwrap();
    /// assert_eq!(pool.status().max_size, 8);
    ///
    /// let mut bad = pool.config();
    /// bad.max_size = 0;
    /// let error = pool.reconfigure(bad).unwrap_err();
    /// assert_eq!(error.field, "max_size");
    /// assert_eq!(pool.status().max_size, 8);
    /// ```
    pub fn reconfigure(&self, config: Config) -> Result<(), ConfigError> {
        self.inner.reconfigure(config)
    }

    /// Stops handing out connections: waiting and future gets fail with
    /// [`Error::Closed`](crate::Error::Closed), idle connections are closed
    /// now and checked-out ones when they come back. Idempotent.
    pub fn close(&self) {
        self.inner.close();
    }

    /// Whether [`close`](Pool::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// The manager that makes this pool's connections.
    pub fn manager(&self) -> &M {
        &self.inner.manager
    }

    /// The pool's clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }
}

impl<M: Manager> std::fmt::Debug for Pool<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

//! The pool's shared state, and the few operations every layer needs on it.

use crate::sync::plain::AtomicU64 as StdAtomicU64;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Weak;

use crate::config::IdleOrder;
use crate::config::{Config, HotLimits, Settings};
use crate::core::entry::Entry;
use crate::core::protocol::Core;
use crate::dial::gate::DialGate;
use crate::hooks::Hooks;
use crate::lifecycle::leak_ledger::LeakLedger;
use crate::lifecycle::warm::Lifecycle;
use crate::manager::{CloseReason, IdleDeaths, IdleWatch, Manager};
use crate::metrics::stats::{Counter, StatsCells};
use crate::sync::{Ordering, SwapCell, plain};
use crate::time::Clock;

/// The optional steps a pool's checkout and return must run, decided at
/// build and at `reconfigure`, and whether it is closed: flags kept in the
/// high half of its waiter state word (`Waiters::set_flags`), so the plain
/// path reads one word (`Waiters::word`) and, when it is 0 (nobody waits,
/// open, nothing turned on), runs no load or branch for a feature that is
/// off.
pub(crate) mod path {
    use crate::config::Config;

    // Bit 0 is the core's own: closed (`core::protocol::CLOSED`).

    /// The manager watches idle connections.
    pub(crate) const WATCH: u32 = 1 << 1;
    /// A `before_checkout` hook is set.
    pub(crate) const BEFORE_CHECKOUT: u32 = 1 << 2;
    /// An `on_return` hook is set.
    pub(crate) const ON_RETURN: u32 = 1 << 3;
    /// Leak detection is on (`leak_threshold`).
    pub(crate) const LEAK: u32 = 1 << 4;
    /// `min_idle` is above 0: a checkout may ask for a refill.
    pub(crate) const MIN_IDLE: u32 = 1 << 5;
    /// The flags that give a fast-path checkout a step beyond the pop and
    /// the quick checks (leak tracking is not one: the guard does it).
    pub(crate) const CHECKOUT_STEPS: u32 = WATCH | BEFORE_CHECKOUT | MIN_IDLE;
    /// The flags a config decides (the rest are fixed at build or close).
    pub(crate) const FROM_CONFIG: u32 = LEAK | MIN_IDLE;

    /// The flags `config` turns on.
    pub(crate) fn from_config(config: &Config) -> u32 {
        let leak = if config.leak_threshold.is_some() {
            LEAK
        } else {
            0
        };
        let min_idle = if config.min_idle > 0 { MIN_IDLE } else { 0 };
        leak | min_idle
    }
}

/// What a builder hands over to make a pool.
pub(crate) struct Parts<M: Manager> {
    pub(crate) name: std::sync::Arc<str>,
    pub(crate) manager: M,
    pub(crate) hooks: Hooks<M>,
    pub(crate) config: Config,
    pub(crate) idle_capacity: usize,
    pub(crate) clock: Clock,
}

/// Everything one pool owns, shared by its handles, guards, timers and
/// maintenance task.
pub(crate) struct Inner<M: Manager> {
    /// The pool's name in logs and metrics (`Builder::name`).
    pub(crate) name: std::sync::Arc<str>,
    /// What the manager connects to (`Manager::endpoint`; empty if it does
    /// not say), for logs and metrics.
    pub(crate) endpoint: std::sync::Arc<str>,
    /// The pool's span (`ringpool`, with `pool` and `endpoint`), entered
    /// by its dials and its maintenance, so the manager's own events are
    /// attributed to the pool too. Disabled (and free) when no subscriber
    /// listened as the pool was built.
    pub(crate) span: tracing::Span,
    pub(crate) manager: M,
    pub(crate) hooks: Hooks<M>,
    pub(crate) clock: Clock,
    pub(crate) settings: SwapCell<Settings>,
    pub(crate) hot: HotLimits,
    /// The concurrent protocol: slots, idle store, parked connections,
    /// waiters and the closed flag.
    pub(crate) core: Core<M::Connection, M::Error>,
    pub(crate) gate: DialGate,
    pub(crate) stats: StatsCells,
    pub(crate) last_error: plain::Mutex<Option<std::sync::Arc<M::Error>>>,
    /// Serialises `reconfigure` calls.
    pub(crate) reconfiguring: plain::Mutex<()>,
    /// The deadline the waiter-timeout sweep is armed for (`u64::MAX`:
    /// none). Bookkeeping outside the protocol: a waiter's timeout is also
    /// checked on every poll.
    pub(crate) sweep_at: StdAtomicU64,
    /// Warm size, maintenance and drain wake-ups.
    pub(crate) lifecycle: Lifecycle,
    /// The checkouts leak detection watches.
    pub(crate) leaks: LeakLedger,
    /// What the manager's idle watch covers (`Manager::idle_watcher`).
    pub(crate) watch: IdleWatch,
    /// This pool, for timers that act on it (timeout sweep, housekeeping,
    /// leak alarms).
    pub(crate) self_ref: Weak<Inner<M>>,
}

impl<M: Manager> Inner<M> {
    pub(crate) fn new(parts: Parts<M>, self_ref: Weak<Inner<M>>) -> Self {
        let Parts {
            name,
            manager,
            hooks,
            config,
            idle_capacity,
            clock,
        } = parts;
        let settings = Settings::new(config);
        let lifo = settings.config.idle_order == IdleOrder::Lifo;
        let pool = self_ref.clone();
        let deaths = IdleDeaths::new(move || {
            if let Some(inner) = pool.upgrade() {
                inner.lifecycle.note_idle_death();
            }
        });
        let watch = manager
            .idle_watcher()
            .map_or(IdleWatch::Off, |watcher| watcher.start(deaths));
        let endpoint: std::sync::Arc<str> = manager.endpoint().unwrap_or_default().into();
        let fixed = [
            (watch != IdleWatch::Off, path::WATCH),
            (hooks.before_checkout.is_some(), path::BEFORE_CHECKOUT),
            (hooks.on_return.is_some(), path::ON_RETURN),
        ]
        .into_iter()
        .fold(0, |flags, (on, flag)| if on { flags | flag } else { flags });
        let core = Core::new(
            settings.config.max_size,
            idle_capacity,
            lifo,
            fixed | path::from_config(&settings.config),
        );
        Inner {
            watch,
            span: tracing::info_span!("ringpool", pool = %name, endpoint = %endpoint),
            endpoint,
            name,
            manager,
            hooks,
            clock,
            hot: HotLimits::new(&settings.config),
            gate: DialGate::new(&settings.config),
            settings: SwapCell::new(settings),
            core,
            stats: StatsCells::new(),
            last_error: plain::Mutex::new(None),
            reconfiguring: plain::Mutex::new(()),
            sweep_at: StdAtomicU64::new(u64::MAX),
            lifecycle: Lifecycle::new(),
            leaks: LeakLedger::default(),
            self_ref,
        }
    }

    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.core.is_closed()
    }

    /// Hands a connection the pool is done with to `Manager::close`. A
    /// panicking `close` is caught, counted and logged: the connection was
    /// moved into it and is dropped by the unwinding, and the pool's books
    /// stay balanced. The caller frees the slot.
    ///
    /// A connection that ends badly while still young (found dead, or
    /// discarded by its user, as client code does after an error reply)
    /// paces the dials to its target (see [`DialGate::died_young`]). One
    /// its peer ended after serving it (`Finished`), or that the pool
    /// retires by policy, does not.
    pub(crate) fn close_conn(&self, entry: Entry<M::Connection>, reason: CloseReason) {
        self.stats.closed(reason);
        tracing::debug!(pool = %self.name, endpoint = %self.endpoint, ?reason, "closing connection");
        if matches!(
            reason,
            CloseReason::Broken | CloseReason::Hangup | CloseReason::Discarded
        ) {
            self.note_death(&entry);
        }
        let conn = entry.conn;
        if catch_unwind(AssertUnwindSafe(|| self.manager.close(conn, reason))).is_err() {
            self.stats.incr(Counter::ManagerPanics);
            tracing::error!(
                pool = %self.name, endpoint = %self.endpoint, ?reason,
                "Manager::close panicked; the connection was dropped"
            );
        }
        // The pool shrank: maintenance may need to refill.
        self.lifecycle.wake_maintenance();
    }

    /// A connection ended badly: if it was younger than
    /// `young_death_window` and never passed a liveness check after use,
    /// the target may be accepting connections it cannot serve (a server at
    /// its client limit answers and closes), and the dial gate paces dials
    /// (never the breaker: gets wait for a paced dial). A connection that
    /// was seen alive and dies later served its peer: a flaky network, not
    /// a refusal.
    fn note_death(&self, entry: &Entry<M::Connection>) {
        let window = self.hot.young_death_window_ns.load(Ordering::Relaxed);
        let now = self.clock.recent();
        if entry.seen_alive() || now.saturating_sub(entry.created) >= window {
            return;
        }
        let reopen = self.gate.died_young(
            now,
            self.clock.now(),
            entry.created,
            &self.settings.load().config,
        );
        self.stats.incr(Counter::YoungDeaths);
        tracing::warn!(
            pool = %self.name, endpoint = %self.endpoint, young_deaths = self.gate.young_deaths(),
            pace_ms = reopen.saturating_sub(self.clock.now()) / 1_000_000,
            "a new connection died young; pacing dials"
        );
    }

    /// A young connection dialed at `created` passed a liveness check after
    /// use: the dial gate may forget its young deaths (`DialGate::proven`).
    pub(crate) fn proven(&self, created: u64) {
        if self.gate.proven(created) {
            tracing::info!(
                pool = %self.name, endpoint = %self.endpoint,
                "a new connection passed its liveness check, young deaths forgotten"
            );
        }
    }

    /// The counters now, with the manager's TLS handshakes.
    pub(crate) fn stats_now(&self) -> crate::Stats {
        let mut stats = self.stats.snapshot(self.core.idle.taken_from_slots());
        stats.tls_handshakes = self.manager.tls_handshakes().unwrap_or_default();
        stats
    }

    /// Closes every idle connection, and every one parked for its recycle
    /// step, and frees their slots.
    pub(crate) fn close_idle(&self, reason: CloseReason) {
        while let Some(entry) = self.core.take_idle() {
            self.close_conn(entry, reason);
            self.core.slots.release();
        }
    }

    pub(crate) fn record_connect_error(&self, error: std::sync::Arc<M::Error>) {
        *self.last_error.lock() = Some(error);
    }

    pub(crate) fn last_connect_error(&self) -> Option<std::sync::Arc<M::Error>> {
        self.last_error.lock().clone()
    }
}

impl<M: Manager> Drop for Inner<M> {
    fn drop(&mut self) {
        // Nothing else can reach the pool any more (`&mut self`); the flag
        // only tells the closes below why they happen.
        self.core.mark_closed();
        self.close_idle(CloseReason::PoolClosed);
    }
}

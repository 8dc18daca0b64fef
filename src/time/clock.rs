//! The pool's clock, real or mocked.
//!
//! A real clock shares one process-wide epoch and one timer thread; a mock
//! clock has its own timers, fired synchronously by [`MockClock::advance`],
//! so tests of time-based behaviour never sleep.
//!
//! Two readings:
//! - `now`, for deadlines (acquire, ping and dial timeouts, backoff): on a
//!   real clock it is `std::time::Instant`, the operating system's monotonic
//!   clock, so a timeout never fires before its duration has passed by the
//!   clock every other program uses. (quanta's TSC-calibrated time runs a
//!   few hundred ppm off it, so a 1 s timeout measured on it ended up to
//!   0.7 ms early.)
//! - `recent`, quanta's coarse time, refreshed every
//!   [`RECENT_TIME_INTERVAL`] by quanta's upkeep thread: one atomic load,
//!   used on the checkout and return hot path for connection ages and idle
//!   times. Those timestamps are only ever compared with each other.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::nanos;
use super::timer::Timers;

/// The source of time for a pool.
///
/// Cheap to clone; clones share the same time source and timers. Use
/// [`Clock::new`] in production and [`Clock::mock`] in tests.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ringpool::Clock;
///
/// let (clock, mock) = Clock::mock();
/// assert_eq!(clock.elapsed(), Duration::ZERO);
/// mock.advance(Duration::from_secs(3));
/// assert_eq!(clock.elapsed(), Duration::from_secs(3));
/// ```
#[derive(Clone)]
pub struct Clock {
    inner: Arc<ClockInner>,
}

/// How often the coarse time used on the hot path is refreshed.
pub const RECENT_TIME_INTERVAL: Duration = Duration::from_millis(10);

pub(super) struct ClockInner {
    source: quanta::Clock,
    /// The epoch of `now` on a real clock.
    epoch_instant: Instant,
    /// The epoch of `recent` (and of `now` on a mock clock).
    epoch: quanta::Instant,
    timers: Timers,
    mock: Option<Arc<quanta::Mock>>,
}

impl Clock {
    /// The process-wide real clock (TSC-backed where the CPU allows it).
    pub fn new() -> Clock {
        static REAL: OnceLock<Clock> = OnceLock::new();
        REAL.get_or_init(|| {
            let source = quanta::Clock::new();
            start_recent_time_upkeep(&source);
            let epoch_instant = Instant::now();
            let epoch = source.now();
            let timers = Timers::threaded(Arc::new(move || nanos(epoch_instant.elapsed())));
            Clock {
                inner: Arc::new(ClockInner {
                    source,
                    epoch_instant,
                    epoch,
                    timers,
                    mock: None,
                }),
            }
        })
        .clone()
    }

    /// A real clock with manual timers and no upkeep thread, for
    /// [`Clock::driven`] (`time/driver.rs`), whose driver fires and
    /// refreshes them.
    pub(super) fn undriven() -> Clock {
        let source = quanta::Clock::new();
        let epoch_instant = Instant::now();
        let epoch = source.now();
        Clock {
            inner: Arc::new(ClockInner {
                source,
                epoch_instant,
                epoch,
                timers: Timers::manual(),
                mock: None,
            }),
        }
    }

    /// A mocked clock that only moves when the returned [`MockClock`] says so.
    pub fn mock() -> (Clock, MockClock) {
        let (source, mock) = quanta::Clock::mock();
        let epoch = source.now();
        let clock = Clock {
            inner: Arc::new(ClockInner {
                source,
                epoch_instant: Instant::now(),
                epoch,
                timers: Timers::manual(),
                mock: Some(mock),
            }),
        };
        let control = MockClock {
            clock: clock.clone(),
        };
        (clock, control)
    }

    /// Time elapsed since this clock's epoch.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.now())
    }

    /// Nanoseconds since the epoch.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        match self.inner.mock {
            None => nanos(self.inner.epoch_instant.elapsed()),
            Some(_) => nanos(
                self.inner
                    .source
                    .now()
                    .saturating_duration_since(self.inner.epoch),
            ),
        }
    }

    /// Coarse nanoseconds since the epoch (at most about
    /// [`RECENT_TIME_INTERVAL`] behind `now`; exact on a mock clock).
    #[inline]
    pub(crate) fn recent(&self) -> u64 {
        let recent = self.inner.source.recent();
        nanos(recent.saturating_duration_since(self.inner.epoch))
    }

    pub(crate) fn timers(&self) -> &Timers {
        &self.inner.timers
    }

    pub(super) fn shared(&self) -> &Arc<ClockInner> {
        &self.inner
    }

    /// Whether this is a mock clock.
    pub fn is_mock(&self) -> bool {
        self.inner.mock.is_some()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clock")
            .field("mock", &self.is_mock())
            .field("now_ns", &self.now())
            .finish()
    }
}

/// Keeps quanta's coarse time fresh for the life of the process. If another
/// component already runs quanta's upkeep thread, that one serves us too.
fn start_recent_time_upkeep(source: &quanta::Clock) {
    static UPKEEP: OnceLock<Option<quanta::Handle>> = OnceLock::new();
    UPKEEP.get_or_init(|| {
        match quanta::Upkeep::new_with_clock(RECENT_TIME_INTERVAL, source.clone()).start() {
            Ok(handle) => Some(handle),
            Err(error) => {
                tracing::debug!(%error, "quanta upkeep not started here");
                None
            }
        }
    });
}

/// The handle that moves a mock [`Clock`].
///
/// Advancing fires, before it returns, every timer whose deadline has been
/// reached, so a test that advances past an acquire timeout can simply await
/// the `get` and observe the timeout.
#[derive(Clone, Debug)]
pub struct MockClock {
    clock: Clock,
}

impl MockClock {
    /// Moves the clock forward by `by` and fires the timers that are due.
    pub fn advance(&self, by: Duration) {
        if let Some(mock) = &self.clock.inner.mock {
            mock.increment(by);
        }
        self.clock.timers().fire_due(self.clock.now());
    }

    /// The clock this handle moves.
    pub fn clock(&self) -> Clock {
        self.clock.clone()
    }

    /// How many timers are armed right now (a test can wait for a future to
    /// have gone to sleep before advancing).
    pub fn armed_timers(&self) -> usize {
        self.clock.timers().armed()
    }
}

impl ClockInner {
    /// Nanoseconds since the epoch, as [`Clock::now`].
    pub(super) fn now(&self) -> u64 {
        nanos(self.epoch_instant.elapsed())
    }

    /// The quanta source's current time (for its coarse-time refresh).
    pub(super) fn source_now(&self) -> quanta::Instant {
        self.source.now()
    }

    pub(super) fn timers(&self) -> &Timers {
        &self.timers
    }
}

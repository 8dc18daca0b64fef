//! Time for the pool: a `quanta` clock, real or mocked, plus the timers that
//! wake waiting futures at their deadlines.
//!
//! Internally every instant is a `u64` count of nanoseconds since the clock's
//! epoch, so deadlines are plain integers and comparisons are free. A real
//! clock shares one process-wide epoch and one timer thread; a mock clock has
//! its own timers, fired synchronously by [`MockClock::advance`], so tests of
//! time-based behaviour never sleep.
//!
//! Two readings: `now` (precise, for deadlines) and `recent` (quanta's
//! coarse time, refreshed every [`RECENT_TIME_INTERVAL`] by quanta's upkeep
//! thread, one atomic load), used by the checkout and return hot path for
//! idle and liveness-window timestamps.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::timer::Timers;

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

struct ClockInner {
    source: quanta::Clock,
    epoch_raw: u64,
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
            let epoch_raw = source.raw();
            let epoch = source.now();
            Clock {
                inner: Arc::new(ClockInner {
                    source,
                    epoch_raw,
                    epoch,
                    timers: Timers::threaded(),
                    mock: None,
                }),
            }
        })
        .clone()
    }

    /// A mocked clock that only moves when the returned [`MockClock`] says so.
    pub fn mock() -> (Clock, MockClock) {
        let (source, mock) = quanta::Clock::mock();
        let epoch = source.now();
        let clock = Clock {
            inner: Arc::new(ClockInner {
                source,
                epoch_raw: 0,
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
        let source = &self.inner.source;
        source.delta_as_nanos(self.inner.epoch_raw, source.raw())
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
                tracing::debug!(%error, "ringpool: quanta upkeep not started here");
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

/// Converts a duration to nanoseconds, saturating at `u64::MAX`.
pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

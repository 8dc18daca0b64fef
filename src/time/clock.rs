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
//! - `recent`, the coarse time: nanoseconds since the same epoch, stored
//!   in the clock by its upkeep (the `ringpool-clock` thread every
//!   [`RECENT_TIME_INTERVAL`], the [`ClockDriver`](super::ClockDriver) on a
//!   driven clock, [`MockClock::advance`] on a mock one). Reading it is one
//!   plain atomic load, with no conversion: it is what the checkout and
//!   return hot path reads for connection ages and idle times.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use super::nanos;
use super::timer::Timers;
use crate::sync::plain::{AtomicU64, Ordering};

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
    /// Coarse nanoseconds since the epoch, stored by the clock's upkeep;
    /// on a line of its own, so arming timers never evicts it from the
    /// readers' caches.
    recent: CachePadded<AtomicU64>,
    /// The epoch of a real clock.
    epoch_instant: Instant,
    timers: Timers,
    /// Set on a mock clock: its time is quanta's mock, moved by
    /// [`MockClock::advance`].
    mock: Option<MockSource>,
}

/// A mock clock's time source.
struct MockSource {
    source: quanta::Clock,
    epoch: quanta::Instant,
    control: Arc<quanta::Mock>,
}

impl Clock {
    /// The process-wide real clock, on the operating system's monotonic
    /// clock.
    pub fn new() -> Clock {
        static REAL: OnceLock<Clock> = OnceLock::new();
        REAL.get_or_init(|| {
            let epoch_instant = Instant::now();
            let timers = Timers::threaded(Arc::new(move || nanos(epoch_instant.elapsed())));
            let clock = Clock::with(epoch_instant, timers, None);
            start_recent_time_upkeep(Arc::clone(&clock.inner));
            clock
        })
        .clone()
    }

    /// A real clock with manual timers and no upkeep thread, for
    /// [`Clock::driven`] (`time/driver.rs`), whose driver fires and
    /// refreshes them.
    pub(super) fn undriven() -> Clock {
        Clock::with(Instant::now(), Timers::manual(), None)
    }

    /// A mocked clock that only moves when the returned [`MockClock`] says so.
    pub fn mock() -> (Clock, MockClock) {
        let (source, control) = quanta::Clock::mock();
        let epoch = source.now();
        let mock = MockSource {
            source,
            epoch,
            control,
        };
        let clock = Clock::with(Instant::now(), Timers::manual(), Some(mock));
        let control = MockClock {
            clock: clock.clone(),
        };
        (clock, control)
    }

    fn with(epoch_instant: Instant, timers: Timers, mock: Option<MockSource>) -> Clock {
        Clock {
            inner: Arc::new(ClockInner {
                recent: CachePadded::new(AtomicU64::new(0)),
                epoch_instant,
                timers,
                mock,
            }),
        }
    }

    /// Time elapsed since this clock's epoch.
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.now())
    }

    /// Nanoseconds since the epoch.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        self.inner.now()
    }

    /// Coarse nanoseconds since the epoch (at most about
    /// [`RECENT_TIME_INTERVAL`] behind `now` while the clock's upkeep runs;
    /// exact on a mock clock). One relaxed load: the value orders nothing,
    /// it is only compared with other readings of this clock.
    #[inline]
    pub(crate) fn recent(&self) -> u64 {
        self.inner.recent.load(Ordering::Relaxed)
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

/// Keeps the process-wide real clock's coarse time fresh for the life of
/// the process: the `ringpool-clock` thread stores `now` every
/// [`RECENT_TIME_INTERVAL`]. (Called once, from [`Clock::new`]'s
/// initialiser; the clock it refreshes is never dropped.)
fn start_recent_time_upkeep(clock: Arc<ClockInner>) {
    std::thread::Builder::new()
        .name("ringpool-clock".into())
        .spawn(move || {
            loop {
                clock.refresh_recent();
                std::thread::sleep(RECENT_TIME_INTERVAL);
            }
        })
        .expect("ringpool: cannot spawn the clock's upkeep thread");
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
            mock.control.increment(by);
        }
        let now = self.clock.now();
        self.clock.inner.recent.store(now, Ordering::Relaxed);
        self.clock.timers().fire_due(now);
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
    #[inline]
    pub(super) fn now(&self) -> u64 {
        match &self.mock {
            None => nanos(self.epoch_instant.elapsed()),
            Some(mock) => nanos(mock.source.now().saturating_duration_since(mock.epoch)),
        }
    }

    /// Stores `now` as the coarse time (a real clock's upkeep: its thread
    /// or its driver). Never moves it back, should two refreshes race.
    pub(super) fn refresh_recent(&self) {
        self.recent.fetch_max(self.now(), Ordering::Relaxed);
    }

    pub(super) fn timers(&self) -> &Timers {
        &self.timers
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Clock, RECENT_TIME_INTERVAL};

    #[test]
    fn a_mock_clocks_coarse_time_is_exact_after_each_advance() {
        let (clock, mock) = Clock::mock();
        assert_eq!(clock.recent(), 0);
        mock.advance(Duration::from_millis(3));
        assert_eq!(clock.recent(), 3_000_000);
        assert_eq!(clock.recent(), clock.now());
        mock.advance(Duration::from_nanos(1));
        assert_eq!(clock.recent(), 3_000_001);
    }

    #[test]
    fn a_real_clocks_coarse_time_follows_now_on_the_same_epoch() {
        let clock = Clock::new();
        let start = clock.now();
        // The upkeep thread refreshes it every RECENT_TIME_INTERVAL; wait
        // for a refresh after `start`, bounded so a dead thread fails.
        let give_up = std::time::Instant::now() + Duration::from_secs(10);
        while clock.recent() < start {
            assert!(
                std::time::Instant::now() < give_up,
                "the coarse time stayed at {} ns while now passed {start} ns",
                clock.recent()
            );
            std::thread::sleep(RECENT_TIME_INTERVAL / 4);
        }
        assert!(
            clock.recent() <= clock.now(),
            "never ahead of the precise time"
        );
    }

    #[test]
    fn refreshing_never_moves_the_coarse_time_back() {
        let (clock, _driver) = Clock::driven();
        clock
            .shared()
            .recent
            .store(u64::MAX - 1, super::Ordering::Relaxed);
        clock.shared().refresh_recent();
        assert_eq!(clock.recent(), u64::MAX - 1);
    }
}

//! A real clock whose timers run on the application's runtime: no
//! `ringpool-timer` thread, no `ringpool-clock` thread.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::{Arc, Weak};

use std::task::Poll;
use std::time::Duration;

use super::clock::{Clock, ClockInner, RECENT_TIME_INTERVAL};
use super::nanos;

/// The task that runs a [`Clock::driven`] clock: it fires the clock's
/// timers at their deadlines and keeps its coarse time fresh, sleeping in
/// between with the sleep of the application's runtime. Spawn
/// [`run`](ClockDriver::run) once; it ends when the last handle to the
/// clock (held by its pools) is dropped.
///
/// Until it runs, nothing that waits on the clock ends: an acquire timeout
/// does not fire, maintenance does not wake. Spawn it before the first get.
#[must_use = "a driven clock's timers fire only while its driver runs"]
#[derive(Debug)]
pub struct ClockDriver {
    clock: Weak<ClockInner>,
}

impl ClockDriver {
    pub(super) fn new(clock: &Clock) -> Self {
        ClockDriver {
            clock: Arc::downgrade(clock.shared()),
        }
    }

    /// Runs the clock with `sleep`, the runtime's own sleep (for tokio,
    /// `tokio::time::sleep`). It wakes at each timer's deadline and at
    /// least every [`RECENT_TIME_INTERVAL`] to refresh the coarse time the
    /// checkout path reads; a timer armed earlier than the one it sleeps
    /// for wakes it at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ringpool::{Clock, Manager, Pool};
    /// # struct Numbers;
    /// # impl Manager for Numbers {
    /// #     type Connection = u64;
    /// #     type Error = std::io::Error;
    /// #     async fn connect(&self) -> Result<u64, std::io::Error> { Ok(7) }
    /// # }
    ///
    /// let (clock, driver) = Clock::driven();
    /// let pool = Pool::builder(Numbers)
    ///     .max_size(1)
    ///     .acquire_timeout(Duration::from_millis(20))
    ///     .clock(clock)
    ///     .build()
    ///     .unwrap();
    /// // Any runtime: here a thread sleeping in steps stands in for one.
    /// std::thread::spawn(move || {
    ///     futures_executor::block_on(driver.run(|d| async move { std::thread::sleep(d) }))
    /// });
    /// let held = pool.get_blocking().unwrap();
    /// assert!(pool.get_blocking().is_err(), "timed out, fired by the driver");
    /// # drop(held);
    /// ```
    pub async fn run<S, F>(self, mut sleep: S)
    where
        S: FnMut(Duration) -> F,
        F: Future<Output = ()>,
    {
        loop {
            let Some((now, wait)) = self.fire_due() else {
                return;
            };
            let wake_at = now.saturating_add(nanos(wait));
            let mut nap = pin!(sleep(wait));
            poll_fn(|cx| {
                if nap.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
                let Some(clock) = self.clock.upgrade() else {
                    return Poll::Ready(());
                };
                // Registered first, then read: a timer armed after this
                // read wakes us.
                match clock.timers().next_deadline(cx.waker()) {
                    Some(deadline) if deadline < wake_at => Poll::Ready(()),
                    _ => Poll::Pending,
                }
            })
            .await;
        }
    }

    /// Fires the timers due now and refreshes the coarse time; then how
    /// long to sleep. `None` once the clock is gone.
    fn fire_due(&self) -> Option<(u64, Duration)> {
        let clock = self.clock.upgrade()?;
        let now = clock.now();
        clock.timers().fire_due(now);
        clock.refresh_recent();
        let next = clock.timers().earliest();
        let wait = next
            .map_or(RECENT_TIME_INTERVAL, |deadline| {
                Duration::from_nanos(deadline.saturating_sub(now))
            })
            .min(RECENT_TIME_INTERVAL);
        Some((now, wait))
    }
}

impl Clock {
    /// A real clock whose timers are fired by a task on the application's
    /// own runtime instead of the `ringpool-timer` thread, and whose coarse
    /// time is refreshed by that task instead of the `ringpool-clock`
    /// thread: for a thread-per-core service that starts no threads it does
    /// not own. Spawn the returned [`ClockDriver`]'s
    /// [`run`](ClockDriver::run) on the runtime, and give the clock to the
    /// pools' builders.
    pub fn driven() -> (Clock, ClockDriver) {
        let clock = Clock::undriven();
        let driver = ClockDriver::new(&clock);
        (clock, driver)
    }
}

#[cfg(test)]
mod tests {
    use crate::Clock;

    #[test]
    fn the_driver_refreshes_its_clocks_coarse_time() {
        let (clock, driver) = Clock::driven();
        while clock.now() == 0 {
            std::hint::spin_loop();
        }
        let before = clock.now();
        assert_eq!(clock.recent(), 0, "no thread refreshes a driven clock");
        driver.fire_due().expect("the clock is alive");
        assert!(clock.recent() >= before, "refreshed to the driver's now");
        assert!(clock.recent() <= clock.now());
    }
}

//! Futures that wait for a clock: a sleep, and a race against a deadline.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::clock::Clock;
use super::timer::Key;

/// A future that completes when `clock` reaches `deadline` (ns since epoch).
pub(crate) struct Sleep<'c> {
    clock: &'c Clock,
    deadline: u64,
    key: Option<Key>,
}

impl<'c> Sleep<'c> {
    pub(crate) fn until(clock: &'c Clock, deadline: u64) -> Self {
        Sleep {
            clock,
            deadline,
            key: None,
        }
    }

    /// Moves the deadline; the next poll re-arms the timer.
    pub(crate) fn reset(&mut self, deadline: u64) {
        if deadline != self.deadline {
            self.disarm();
            self.deadline = deadline;
        }
    }

    fn disarm(&mut self) {
        if let Some(key) = self.key.take() {
            self.clock.timers().disarm(key);
        }
    }
}

impl Future for Sleep<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.clock.now() >= this.deadline {
            this.disarm();
            return Poll::Ready(());
        }
        let (clock, deadline) = (this.clock, this.deadline);
        clock.timers().arm(deadline, &mut this.key, cx.waker());
        Poll::Pending
    }
}

impl Drop for Sleep<'_> {
    fn drop(&mut self) {
        self.disarm();
    }
}

/// Outcome of [`with_deadline`].
pub(crate) enum Raced<T> {
    Done(T),
    TimedOut,
}

/// Runs `future` until it completes or `clock` reaches `deadline`, whichever
/// comes first. The future is dropped (cancelled) on timeout.
pub(crate) async fn with_deadline<F: Future>(
    clock: &Clock,
    deadline: u64,
    future: F,
) -> Raced<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut sleep = Sleep::until(clock, deadline);
    std::future::poll_fn(move |cx| {
        if let Poll::Ready(out) = future.as_mut().poll(cx) {
            return Poll::Ready(Raced::Done(out));
        }
        match Pin::new(&mut sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Raced::TimedOut),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::{Raced, Sleep, with_deadline};
    use crate::time::Clock;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

    #[test]
    fn a_sleep_fires_when_the_mock_clock_passes_its_deadline() {
        let (clock, mock) = Clock::mock();
        let mut sleep = pin!(Sleep::until(&clock, 1_000));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        assert_eq!(mock.armed_timers(), 1);
        mock.advance(Duration::from_nanos(999));
        assert_eq!(mock.armed_timers(), 1);
        assert!(sleep.as_mut().poll(&mut cx).is_pending());
        mock.advance(Duration::from_nanos(1));
        assert_eq!(mock.armed_timers(), 0, "fired");
        assert!(sleep.as_mut().poll(&mut cx).is_ready());
    }

    #[test]
    fn a_dropped_sleep_disarms_its_timer() {
        let (clock, mock) = Clock::mock();
        {
            let mut sleep = pin!(Sleep::until(&clock, 1_000));
            let _ = sleep.as_mut().poll(&mut Context::from_waker(Waker::noop()));
            assert_eq!(mock.armed_timers(), 1);
        }
        assert_eq!(mock.armed_timers(), 0);
    }

    #[test]
    fn with_deadline_cancels_the_slow_future() {
        let (clock, mock) = Clock::mock();
        let mut raced = pin!(with_deadline(&clock, 10, std::future::pending::<()>()));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(raced.as_mut().poll(&mut cx).is_pending());
        mock.advance(Duration::from_nanos(10));
        assert!(matches!(
            raced.as_mut().poll(&mut cx),
            Poll::Ready(Raced::TimedOut)
        ));
    }

    #[test]
    fn the_real_timer_thread_wakes_a_blocked_thread() {
        let clock = Clock::new();
        let deadline = clock.elapsed() + Duration::from_millis(20);
        let deadline = u64::try_from(deadline.as_nanos()).unwrap();
        futures_executor::block_on(Sleep::until(&clock, deadline));
        assert!(clock.elapsed().as_nanos() as u64 >= deadline);
    }
}

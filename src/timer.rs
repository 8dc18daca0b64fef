//! Runtime-agnostic timers: a sorted map of deadlines to wakers.
//!
//! A real clock's timers are driven by one lazily started thread that sleeps
//! on a condition variable until the earliest deadline (no polling); a mock
//! clock's timers are fired by `MockClock::advance`. These timers sit outside
//! the pool's modelled protocol, so they use `std` primitives directly.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::clock::Clock;

/// Identifies an armed timer: (deadline, sequence number).
pub(crate) type Key = (u64, u64);

pub(crate) struct Timers {
    shared: Arc<Shared>,
    threaded: bool,
}

struct Shared {
    state: Mutex<State>,
    wakeup: Condvar,
}

#[derive(Default)]
struct State {
    armed: BTreeMap<Key, Waker>,
    next_id: u64,
    thread_started: bool,
}

impl Timers {
    pub(crate) fn threaded() -> Self {
        Self::with(true)
    }

    pub(crate) fn manual() -> Self {
        Self::with(false)
    }

    fn with(threaded: bool) -> Self {
        Timers {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                wakeup: Condvar::new(),
            }),
            threaded,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.lock()
    }

    /// Wakes every timer due at `now`.
    pub(crate) fn fire_due(&self, now: u64) {
        let due = self.state().take_due(now);
        due.into_iter().for_each(Waker::wake);
    }

    pub(crate) fn armed(&self) -> usize {
        self.state().armed.len()
    }

    /// Arms a timer nobody will disarm: `waker` is woken once at `deadline`.
    pub(crate) fn arm_detached(&self, clock: &Clock, deadline: u64, waker: &Waker) {
        self.arm(clock, deadline, &mut None, waker);
    }

    /// Arms a timer the caller may disarm with the returned key.
    pub(crate) fn arm_keyed(&self, clock: &Clock, deadline: u64, waker: &Waker) -> Key {
        let mut key = None;
        self.arm(clock, deadline, &mut key, waker);
        key.expect("arming assigns a key")
    }

    fn arm(&self, clock: &Clock, deadline: u64, key: &mut Option<Key>, waker: &Waker) {
        let mut state = self.state();
        if let Some(existing) = key.and_then(|k| state.armed.get_mut(&k)) {
            if !existing.will_wake(waker) {
                existing.clone_from(waker);
            }
            return;
        }
        let id = state.next_id;
        state.next_id += 1;
        let new_key = (deadline, id);
        *key = Some(new_key);
        let earliest = state
            .armed
            .keys()
            .next()
            .is_none_or(|first| new_key < *first);
        state.armed.insert(new_key, waker.clone());
        if self.threaded {
            if !state.thread_started {
                state.thread_started = true;
                let shared = Arc::clone(&self.shared);
                let clock = clock.clone();
                std::thread::Builder::new()
                    .name("ringpool-timer".into())
                    .spawn(move || shared.run(&clock))
                    .expect("ringpool: cannot spawn the timer thread");
            } else if earliest {
                self.shared.wakeup.notify_one();
            }
        }
    }

    pub(crate) fn disarm(&self, key: Key) {
        self.state().armed.remove(&key);
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The timer thread: fire what is due, then sleep until the next deadline.
    fn run(&self, clock: &Clock) {
        let mut state = self.lock();
        loop {
            let now = clock.now();
            let due = state.take_due(now);
            if !due.is_empty() {
                drop(state);
                due.into_iter().for_each(Waker::wake);
                state = self.lock();
                continue;
            }
            state = match state.armed.keys().next() {
                Some(&(deadline, _)) => {
                    let wait = Duration::from_nanos(deadline.saturating_sub(now));
                    self.wakeup
                        .wait_timeout(state, wait)
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .0
                }
                None => self
                    .wakeup
                    .wait(state)
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
            };
        }
    }
}

impl State {
    fn take_due(&mut self, now: u64) -> Vec<Waker> {
        let later = self.armed.split_off(&(now.saturating_add(1), 0));
        let due = std::mem::replace(&mut self.armed, later);
        due.into_values().collect()
    }
}

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
        clock
            .timers()
            .arm(clock, deadline, &mut this.key, cx.waker());
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
    use crate::clock::Clock;
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

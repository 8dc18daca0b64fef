//! Runtime-agnostic timers: a sorted map of deadlines to wakers.
//!
//! A real clock's timers are driven by one lazily started thread
//! (`ringpool-timer`) that sleeps on a condition variable until the
//! earliest deadline (no polling), or by a task on the application's
//! runtime (`ClockDriver`), which registers a waker here to hear of earlier
//! deadlines; a mock clock's timers are fired by `MockClock::advance`. These timers sit outside the pool's modelled
//! protocol, so they use `std` primitives directly.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar};
use std::task::Waker;
use std::time::Duration;

use crate::sync::plain::{Mutex, wait};

/// Identifies an armed timer: (deadline, sequence number).
pub(crate) type Key = (u64, u64);

/// Reads the time the timers run on (ns since the clock's epoch).
pub(crate) type Now = Arc<dyn Fn() -> u64 + Send + Sync>;

pub(crate) struct Timers {
    shared: Arc<Shared>,
    /// The thread that fires due timers, for a real clock.
    thread_clock: Option<Now>,
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
    /// The driver task's waker, woken when a deadline earlier than every
    /// armed one is added.
    driver: Option<Waker>,
}

impl Timers {
    /// Timers fired by a thread of their own, reading time from `now`.
    pub(crate) fn threaded(now: Now) -> Self {
        Self::with(Some(now))
    }

    /// Timers fired only by [`Timers::fire_due`].
    pub(crate) fn manual() -> Self {
        Self::with(None)
    }

    fn with(thread_clock: Option<Now>) -> Self {
        Timers {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                wakeup: Condvar::new(),
            }),
            thread_clock,
        }
    }

    /// Wakes every timer due at `now`.
    pub(crate) fn fire_due(&self, now: u64) {
        let due = self.shared.state.lock().take_due(now);
        fire(due);
    }

    pub(crate) fn armed(&self) -> usize {
        self.shared.state.lock().armed.len()
    }

    /// Arms a timer nobody will disarm: `waker` is woken once at `deadline`.
    pub(crate) fn arm_detached(&self, deadline: u64, waker: &Waker) {
        self.arm(deadline, &mut None, waker);
    }

    /// Arms a timer at `deadline`, or updates the waker of the one `key`
    /// names if it is still armed.
    pub(crate) fn arm(&self, deadline: u64, key: &mut Option<Key>, waker: &Waker) {
        let mut state = self.shared.state.lock();
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
        let Some(now) = &self.thread_clock else {
            let driver = state.driver.clone().filter(|_| earliest);
            drop(state);
            if let Some(driver) = driver {
                driver.wake();
            }
            return;
        };
        if !state.thread_started {
            state.thread_started = true;
            let (shared, now) = (Arc::clone(&self.shared), Arc::clone(now));
            std::thread::Builder::new()
                .name("ringpool-timer".into())
                .spawn(move || shared.run(&*now))
                .expect("ringpool: cannot spawn the timer thread");
        } else if earliest {
            self.shared.wakeup.notify_one();
        }
    }

    /// The earliest armed deadline, after registering `driver` to be woken
    /// when an earlier one is armed.
    pub(crate) fn next_deadline(&self, driver: &Waker) -> Option<u64> {
        let mut state = self.shared.state.lock();
        match &mut state.driver {
            Some(existing) => existing.clone_from(driver),
            None => state.driver = Some(driver.clone()),
        }
        state.armed.keys().next().map(|&(deadline, _)| deadline)
    }

    /// The earliest armed deadline.
    pub(crate) fn earliest(&self) -> Option<u64> {
        let state = self.shared.state.lock();
        state.armed.keys().next().map(|&(deadline, _)| deadline)
    }

    pub(crate) fn disarm(&self, key: Key) {
        self.shared.state.lock().armed.remove(&key);
    }
}

/// Wakes each waker; a waker that panics (a bug in code it runs) is logged
/// and the others still fire, so one bad timer cannot stop the rest.
fn fire(due: Vec<Waker>) {
    for waker in due {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| waker.wake())).is_err() {
            tracing::error!("a timer's wake-up panicked; the other timers still run");
        }
    }
}

impl Shared {
    /// The timer thread: fire what is due, then sleep until the next deadline.
    fn run(&self, now: &dyn Fn() -> u64) {
        let mut state = self.state.lock();
        loop {
            let at = now();
            let due = state.take_due(at);
            if !due.is_empty() {
                drop(state);
                fire(due);
                state = self.state.lock();
                continue;
            }
            let timeout = state
                .armed
                .keys()
                .next()
                .map(|&(deadline, _)| Duration::from_nanos(deadline.saturating_sub(at)));
            state = wait(&self.wakeup, state, timeout);
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

//! Dialing: the concurrency permit, the breaker's probe, and what a dial's
//! outcome does to the pool (backoff, breaker, failing waiters).
//!
//! Invariants: at most `max_concurrent_dials` dials are in flight (the
//! `creating` gauge is taken by compare-and-swap below the limit); while the
//! breaker is open only one probe dial is in flight; a finished or abandoned
//! dial lets waiters have the capacity it held.

use std::sync::Arc as StdArc;
use std::sync::atomic::Ordering as StdOrdering;

use crate::acquire::Claim;
use crate::idle::Entry;
use crate::manager::{ErrorClass, Manager};
use crate::pool::Inner;
use crate::stats::Counter;
use crate::timer::{Raced, with_deadline};
use crate::waiters::Outcome;

/// A dial in flight: holds one unit of dial concurrency (and, while the
/// breaker is open, the probe), and counts the dial as cancelled unless it
/// finished.
pub(crate) struct Dialing<'a, M: Manager> {
    inner: &'a Inner<M>,
    probe: bool,
    finished: bool,
}

impl<M: Manager> Drop for Dialing<'_, M> {
    fn drop(&mut self) {
        let inner = self.inner;
        if self.probe {
            inner.gate.end_probe();
        }
        if !self.finished {
            inner.stats.incr(Counter::DialsCancelled);
        }
        inner.creating.fetch_sub(1, StdOrdering::AcqRel);
        // Capacity freed: a waiter may now dial.
        inner.after_publish();
    }
}

/// Whether a get holding a slot may dial now.
pub(crate) enum DialPermit<'a, M: Manager> {
    Granted(Dialing<'a, M>),
    /// Backoff or concurrency limit: give the slot back and wait.
    Wait,
    /// The breaker is open and another dial is the probe: fail fast.
    Unavailable,
}

/// How a dial ended, when it did not produce a connection.
pub(crate) enum DialEnd<E> {
    Fatal(StdArc<E>),
    Retry,
    TimedOut,
}

impl<M: Manager> Inner<M> {
    /// Whether the breaker is open (too many dials failed in a row).
    pub(crate) fn breaker_open(&self) -> bool {
        let threshold = self.hot.breaker_threshold.load(StdOrdering::Relaxed);
        threshold != 0 && self.gate.consecutive_failures() >= threshold
    }

    /// Whether a dial could start now (dial gate open, capacity left).
    pub(crate) fn can_dial(&self, now: u64) -> bool {
        self.gate.is_open(now)
            && self.creating.load(StdOrdering::Acquire)
                < self.hot.max_dials.load(StdOrdering::Relaxed)
    }

    fn try_start_dial(&self, probe: bool) -> Option<Dialing<'_, M>> {
        let limit = self.hot.max_dials.load(StdOrdering::Relaxed);
        self.creating
            .fetch_update(StdOrdering::AcqRel, StdOrdering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()?;
        Some(Dialing {
            inner: self,
            probe,
            finished: false,
        })
    }

    pub(crate) fn permit_dial(&self, now: u64) -> DialPermit<'_, M> {
        if self.breaker_open() {
            if !(self.gate.is_open(now) && self.gate.try_probe()) {
                return DialPermit::Unavailable;
            }
            return match self.try_start_dial(true) {
                Some(dialing) => DialPermit::Granted(dialing),
                None => {
                    self.gate.end_probe();
                    DialPermit::Unavailable
                }
            };
        }
        if !self.gate.is_open(now) {
            return DialPermit::Wait;
        }
        match self.try_start_dial(false) {
            Some(dialing) => DialPermit::Granted(dialing),
            None => DialPermit::Wait,
        }
    }

    /// Dials into `slot` until `deadline`. On success the slot becomes the
    /// new connection's; otherwise it is given back.
    pub(crate) async fn dial(
        &self,
        slot: Claim<'_, M>,
        mut dialing: Dialing<'_, M>,
        deadline: u64,
    ) -> Result<Entry<M::Connection>, DialEnd<M::Error>> {
        let outcome = with_deadline(&self.clock, deadline, self.manager.connect()).await;
        let now = self.clock.now();
        if let Raced::Done(_) = outcome {
            dialing.finished = true;
        }
        match outcome {
            Raced::TimedOut => Err(DialEnd::TimedOut),
            Raced::Done(Ok(conn)) => {
                self.stats.incr(Counter::Connects);
                if self.gate.on_success() {
                    tracing::info!("ringpool: dial succeeded, breaker closed");
                }
                let expires = self.settings.load().lifetime_deadline(now, fastrand::f64());
                let _ = slot.take();
                Ok(Entry {
                    conn,
                    created: now,
                    expires,
                    last_used: self.clock.recent(),
                })
            }
            Raced::Done(Err(error)) => {
                self.stats.incr(Counter::ConnectErrors);
                let class = self.manager.classify(&error);
                let error = StdArc::new(error);
                self.record_connect_error(StdArc::clone(&error));
                match class {
                    ErrorClass::Fatal => {
                        tracing::error!(error = %error, "ringpool: connect failed fatally");
                        // Fail the queue before the slot is freed, or the
                        // slot would be handed to a waiter to dial again.
                        self.waiters
                            .settle_all(|| Outcome::Failed(StdArc::clone(&error)));
                        drop(slot);
                        Err(DialEnd::Fatal(error))
                    }
                    ErrorClass::Retryable => {
                        let reopen = self.gate.on_failure(now, &self.settings.load().config);
                        let failures = self.gate.consecutive_failures();
                        tracing::warn!(
                            error = %error,
                            failures,
                            backoff_ms = (reopen - now) / 1_000_000,
                            "ringpool: connect failed, backing off"
                        );
                        if self.breaker_open() {
                            // Nobody should wait out a timeout for a target
                            // that is down: fail the queue now.
                            self.waiters.settle_all(|| Outcome::Unavailable);
                        }
                        drop(slot);
                        self.waiters.wake_all();
                        Err(DialEnd::Retry)
                    }
                }
            }
        }
    }
}

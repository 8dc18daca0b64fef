//! The permit a dial holds while in flight.

use crate::manager::Manager;
use crate::metrics::stats::Counter;
use crate::pool::inner::Inner;
use crate::pool::release::after_publish;

/// A dial in flight: holds one unit of dial capacity (and, while the
/// breaker is open, the probe), and counts the dial as cancelled unless it
/// finished. A dial that panicked (in the manager's `connect` or an
/// `after_connect` hook) counts as a failed dial and backs off like one,
/// so a manager that panics on every connect cannot make a refill spin.
pub(crate) struct Dialing<'a, M: Manager> {
    inner: &'a Inner<M>,
    probe: bool,
    pub(super) finished: bool,
}

impl<M: Manager> Drop for Dialing<'_, M> {
    fn drop(&mut self) {
        let inner = self.inner;
        if self.probe {
            inner.gate.end_probe();
        }
        if !self.finished && std::thread::panicking() {
            inner.stats.incr(Counter::ConnectErrors);
            let config = &inner.settings.load().config;
            inner.gate.on_failure(inner.clock.now(), config);
        } else if !self.finished {
            inner.stats.incr(Counter::DialsCancelled);
            // Its get gave up (timed out, or was dropped): the handshake is
            // lost, but maintenance dials again for the next user, bounded
            // by `create_timeout` alone.
            let cap = inner.settings.load().config.max_concurrent_dials;
            inner.lifecycle.owe_dial(cap);
        }
        inner.gate.end();
        // Capacity freed: a waiter may now dial.
        after_publish(inner);
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

fn start<M: Manager>(inner: &Inner<M>, probe: bool) -> Option<Dialing<'_, M>> {
    // Lazily: a `Dialing` made for nothing would give back capacity it
    // never took when dropped.
    inner.gate.try_start().then(|| Dialing {
        inner,
        probe,
        finished: false,
    })
}

/// Asks the gate for a dial at `now`.
pub(crate) fn permit<M: Manager>(inner: &Inner<M>, now: u64) -> DialPermit<'_, M> {
    let gate = &inner.gate;
    if gate.breaker_open() {
        if !(gate.is_open(now) && gate.try_probe()) {
            return DialPermit::Unavailable;
        }
        return match start(inner, true) {
            Some(dialing) => DialPermit::Granted(dialing),
            None => {
                gate.end_probe();
                DialPermit::Unavailable
            }
        };
    }
    if !gate.is_open(now) {
        return DialPermit::Wait;
    }
    match start(inner, false) {
        Some(dialing) => DialPermit::Granted(dialing),
        None => DialPermit::Wait,
    }
}

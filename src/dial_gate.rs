//! Paces dials after failures: exponential backoff with jitter, shared by
//! every get and refill of one pool, so a down target sees a bounded dial
//! rate however many callers wait.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::clock::nanos;
use crate::config::Config;

pub(crate) struct DialGate {
    consecutive_failures: AtomicU32,
    /// No dial may start before this instant (ns since the clock's epoch).
    reopen_at: AtomicU64,
    /// A probe dial is in flight while the breaker is open.
    probing: AtomicBool,
}

impl DialGate {
    pub(crate) fn new() -> Self {
        DialGate {
            consecutive_failures: AtomicU32::new(0),
            reopen_at: AtomicU64::new(0),
            probing: AtomicBool::new(false),
        }
    }

    #[inline]
    pub(crate) fn is_open(&self, now: u64) -> bool {
        self.reopen_at.load(Ordering::Acquire) <= now
    }

    /// When the gate reopens, if it is closed at `now`.
    pub(crate) fn closed_until(&self, now: u64) -> Option<u64> {
        let at = self.reopen_at.load(Ordering::Acquire);
        (at > now).then_some(at)
    }

    /// Records a successful dial; `true` if failures had been recorded.
    pub(crate) fn on_success(&self) -> bool {
        let failures = self.consecutive_failures.swap(0, Ordering::AcqRel);
        self.reopen_at.store(0, Ordering::Release);
        failures > 0
    }

    pub(crate) fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures.load(Ordering::Acquire)
    }

    /// Claims the one probe dial allowed while the breaker is open.
    pub(crate) fn try_probe(&self) -> bool {
        !self.probing.swap(true, Ordering::AcqRel)
    }

    pub(crate) fn end_probe(&self) {
        self.probing.store(false, Ordering::Release);
    }

    /// Records a failure at `now` and closes the gate for the backoff, drawn
    /// uniformly from the upper half of the exponential step.
    pub(crate) fn on_failure(&self, now: u64, config: &Config) -> u64 {
        let failures = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        let base = nanos(config.connect_backoff);
        let cap = nanos(config.connect_backoff_max);
        let step = base.saturating_mul(1u64 << (failures - 1).min(32)).min(cap);
        let backoff = step / 2 + fastrand::u64(0..=step / 2);
        let reopen = now.saturating_add(backoff.max(1));
        self.reopen_at.fetch_max(reopen, Ordering::AcqRel);
        reopen
    }
}

#[cfg(test)]
mod tests {
    use super::DialGate;
    use crate::config::Config;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        let config = Config {
            connect_backoff: Duration::from_millis(100),
            connect_backoff_max: Duration::from_millis(400),
            ..Config::default()
        };
        let gate = DialGate::new();
        assert!(gate.is_open(0));
        let ms = 1_000_000;
        let mut now = 0;
        for (step, expected_max) in [100, 200, 400, 400, 400].into_iter().enumerate() {
            let reopen = gate.on_failure(now, &config);
            let backoff = (reopen - now) / ms;
            assert!(
                (expected_max / 2..=expected_max).contains(&backoff),
                "failure {step}: backoff {backoff} ms, expected within [{}, {expected_max}]",
                expected_max / 2
            );
            assert!(!gate.is_open(reopen - 1) && gate.is_open(reopen));
            now = reopen;
        }
        gate.on_success();
        assert!(gate.is_open(now), "a success reopens the gate");
        let reopen = gate.on_failure(now, &config);
        assert!(reopen - now <= 100 * ms, "and resets the backoff");
    }
}

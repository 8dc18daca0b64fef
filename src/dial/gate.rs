//! The dial gate: when a dial may start. Exponential backoff with jitter
//! after failures, the breaker with its single probe, and the number of
//! dials in flight against `max_concurrent_dials`, shared by every get and
//! refill of one pool so a down target sees a bounded dial rate however
//! many callers wait.
//!
//! Every field is read by `next_grant` in the middle of the lost-wake-up
//! handshake, so all of them go through the loom facade.

use crate::config::Config;
use crate::sync::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use crate::time::nanos;

pub(crate) struct DialGate {
    /// Dials that failed in a row: backoff and the breaker.
    consecutive_failures: AtomicU32,
    /// New connections that died young in a row (see `died_young`): they
    /// pace dials (backoff), never the breaker, until a newer connection
    /// proves the target.
    young_deaths: AtomicU32,
    /// When (on the coarse clock) the last new connection died young: only
    /// a connection dialed after it can prove the target serves again.
    last_young_death: AtomicU64,
    /// No dial may start before this instant (ns since the clock's epoch).
    reopen_at: AtomicU64,
    /// A probe dial is in flight while the breaker is open.
    probing: AtomicBool,
    /// Dials in flight.
    creating: AtomicUsize,
    /// `max_concurrent_dials`, mirrored from the live config.
    max_dials: AtomicUsize,
    /// `breaker_threshold`, mirrored; 0 when the breaker is disabled.
    breaker_threshold: AtomicU32,
    /// After a fatal connect error, background refills wait until this
    /// instant (0: not paused).
    refills_paused_until: AtomicU64,
}

impl DialGate {
    pub(crate) fn new(config: &Config) -> Self {
        let gate = DialGate {
            consecutive_failures: AtomicU32::new(0),
            young_deaths: AtomicU32::new(0),
            last_young_death: AtomicU64::new(0),
            reopen_at: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            creating: AtomicUsize::new(0),
            max_dials: AtomicUsize::new(0),
            breaker_threshold: AtomicU32::new(0),
            refills_paused_until: AtomicU64::new(0),
        };
        gate.set_limits(config);
        gate
    }

    /// Mirrors the limits of `config` (called by `reconfigure`, which also
    /// lifts a pause of refills: the config that failed fatally may be
    /// fixed).
    pub(crate) fn set_limits(&self, config: &Config) {
        self.refills_paused_until.store(0, Ordering::Release);
        self.max_dials
            .store(config.max_concurrent_dials, Ordering::Release);
        self.breaker_threshold
            .store(config.breaker_threshold.unwrap_or(0), Ordering::Release);
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

    /// Whether a dial could start now: the gate is open and dial capacity
    /// is left.
    pub(crate) fn can_dial(&self, now: u64) -> bool {
        self.is_open(now)
            && self.creating.load(Ordering::Acquire) < self.max_dials.load(Ordering::Acquire)
    }

    /// Whether the breaker is open (too many dials failed in a row, or too
    /// many new connections died young).
    pub(crate) fn breaker_open(&self) -> bool {
        let threshold = self.breaker_threshold.load(Ordering::Acquire);
        threshold != 0 && self.consecutive_failures() >= threshold
    }

    /// Takes one unit of dial capacity, if any is left.
    pub(crate) fn try_start(&self) -> bool {
        let limit = self.max_dials.load(Ordering::Acquire);
        self.creating
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives back the capacity `try_start` took. The caller publishes it to
    /// waiters (`release::after_publish`).
    pub(crate) fn end(&self) {
        self.creating.fetch_sub(1, Ordering::AcqRel);
    }

    /// Dials in flight.
    pub(crate) fn creating(&self) -> usize {
        self.creating.load(Ordering::Acquire)
    }

    /// Records a successful dial; `true` if failed dials had been recorded.
    ///
    /// The dial failures are forgotten (the breaker closes). The pacing of
    /// young deaths is not: a dial that succeeds proves nothing while new
    /// connections keep dying young, so it stands until a newer connection
    /// passes a liveness check (`proven`).
    pub(crate) fn on_success(&self) -> bool {
        self.refills_paused_until.store(0, Ordering::Release);
        let failures = self.consecutive_failures.swap(0, Ordering::AcqRel);
        if self.young_deaths.load(Ordering::Acquire) == 0 {
            self.reopen_at.store(0, Ordering::Release);
        }
        failures > 0
    }

    /// Records that a new connection died young (ended within
    /// `young_death_window` of its dial, before any liveness check found it
    /// alive after use; `recent` is the coarse time of its death, `now` the
    /// precise one; `created` the coarse time it was dialed). It paces
    /// dials: the next dial may start no sooner than a spacing after this
    /// connection's own dial, a spacing that grows with the young deaths in
    /// a row from `connect_backoff` up to `connect_backoff_max`. Against a
    /// target that accepts and then drops connections the pool dials at
    /// most about once per `connect_backoff_max / 2`; a connection that
    /// lived longer than the spacing delays nothing (gets spread out in
    /// time are never held back). It never opens the breaker: gets wait for
    /// a paced dial within their own timeout. Returns when the gate
    /// reopens (`now` or earlier if it does not close).
    pub(crate) fn died_young(&self, recent: u64, now: u64, created: u64, config: &Config) -> u64 {
        self.last_young_death.fetch_max(recent, Ordering::AcqRel);
        let deaths = self.young_deaths.fetch_add(1, Ordering::AcqRel) + 1;
        let due = created
            .saturating_add(backoff_step(deaths, config))
            .saturating_sub(recent);
        if due == 0 {
            return now;
        }
        let reopen = now.saturating_add(due);
        self.reopen_at.fetch_max(reopen, Ordering::AcqRel);
        reopen
    }

    /// New connections that died young in a row.
    #[inline]
    pub(crate) fn young_deaths(&self) -> u32 {
        self.young_deaths.load(Ordering::Relaxed)
    }

    /// A connection dialed at `created`, still young, passed a liveness
    /// check after being used (at checkout or in maintenance): if it
    /// was dialed after the last young death, the target keeps the
    /// connections it accepts again, and the young deaths and failures are
    /// forgotten. (Older connections prove nothing: a server at its client
    /// limit keeps serving the clients it has.)
    #[inline]
    pub(crate) fn proven(&self, created: u64) -> bool {
        if self.young_deaths() != 0
            && created > self.last_young_death.load(Ordering::Acquire)
            && self.young_deaths.swap(0, Ordering::AcqRel) != 0
        {
            self.consecutive_failures.store(0, Ordering::Release);
            self.reopen_at.store(0, Ordering::Release);
            return true;
        }
        false
    }

    /// Stops background refills until `until` (a fatal connect error).
    pub(crate) fn pause_refills(&self, until: u64) {
        self.refills_paused_until.fetch_max(until, Ordering::AcqRel);
    }

    /// When refills resume, if they are paused at `now`.
    pub(crate) fn refills_paused_until(&self, now: u64) -> Option<u64> {
        let until = self.refills_paused_until.load(Ordering::Acquire);
        (until > now).then_some(until)
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
        let failures = self.consecutive_failures.fetch_add(1, Ordering::AcqRel) + 1;
        self.close_for(failures, now, config)
    }

    /// Closes the gate at `now` for the backoff of the `failures`-th
    /// dial failure in a row.
    fn close_for(&self, failures: u32, now: u64, config: &Config) -> u64 {
        let reopen = now.saturating_add(backoff_step(failures, config).max(1));
        self.reopen_at.fetch_max(reopen, Ordering::AcqRel);
        reopen
    }
}

/// The backoff after the `failures`-th failure in a row: the exponential
/// step from `connect_backoff`, capped at `connect_backoff_max`, drawn
/// uniformly from its upper half.
fn backoff_step(failures: u32, config: &Config) -> u64 {
    let base = nanos(config.connect_backoff);
    let cap = nanos(config.connect_backoff_max);
    let step = base
        .saturating_mul(1u64 << failures.saturating_sub(1).min(32))
        .min(cap);
    step / 2 + fastrand::u64(0..=step / 2)
}

#[cfg(test)]
mod tests {
    use super::DialGate;
    use crate::config::Config;
    use crate::sync::model;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        model::check(backoff_doubles);
    }

    fn backoff_doubles() {
        let config = Config {
            connect_backoff: Duration::from_millis(100),
            connect_backoff_max: Duration::from_millis(400),
            ..Config::default()
        };
        let gate = DialGate::new(&config);
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

    #[test]
    fn dial_capacity_is_bounded_and_given_back() {
        model::check(dial_capacity_is_bounded);
    }

    fn dial_capacity_is_bounded() {
        let config = Config {
            max_concurrent_dials: 2,
            ..Config::default()
        };
        let gate = DialGate::new(&config);
        assert!(gate.try_start() && gate.try_start());
        assert!(!gate.try_start() && !gate.can_dial(0));
        gate.end();
        assert!(gate.can_dial(0) && gate.try_start());
    }
}

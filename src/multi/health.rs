//! Outlier ejection: when an endpoint stops getting traffic, and the probe
//! that decides when it gets traffic again.
//!
//! Owns: one endpoint's failure counts and ejection state. Everything else
//! asks it (`admit`) and tells it (`failure`, `success`); the policy lives
//! here only, but for the share of the set that may be ejected at once,
//! which the caller decides (`may_eject`: it needs the whole set).
//!
//! Two counts of failures in a row, either of which ejects at `after`:
//! dials (every dial at the endpoint, a get's or a background refill's;
//! reset by a dial that works) and uses (gets the endpoint could not
//! serve, failed health-check pings; reset by a get served or a ping that
//! works). Kept apart so a server that accepts connections but never
//! answers is ejected although its dials keep working, and so failed dials
//! count as failures in a row although pings on older connections work.
//!
//! The states: in rotation (`ejected_until == 0`); ejected until a moment
//! on the pool's clock; and, once that moment has passed, waiting for its
//! probe: the first get that asks claims it (`probing`), the others still
//! skip the endpoint. The probe's success puts the endpoint back in
//! rotation; its failure ejects it again for twice as long (up to the
//! maximum). Modelled on Envoy's outlier detection (consecutive failures,
//! a base ejection time that grows with each ejection in a row, a cap),
//! with an explicit probe where Envoy lets traffic back at once.

use std::time::Duration;

use crate::sync::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use crate::time::nanos;

/// When an endpoint is ejected and for how long (set on the builder).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ejection {
    /// Failures in a row that eject an endpoint.
    pub(crate) after: u32,
    /// The first ejection's length; it doubles with each ejection in a row.
    pub(crate) base: Duration,
    /// The longest ejection.
    pub(crate) max: Duration,
}

impl Default for Ejection {
    fn default() -> Self {
        Ejection {
            after: 3,
            base: Duration::from_secs(5),
            max: Duration::from_secs(120),
        }
    }
}

/// What failed or worked at an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A dial (a get's or a background refill's).
    Dial,
    /// A get it could not serve, or a health-check ping.
    Use,
}

/// Whether a get may use an endpoint now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    /// In rotation.
    Yes,
    /// Ejected and due: this get is its probe.
    Probe,
    /// Ejected, or another get is probing it.
    No,
}

/// One endpoint's health.
#[derive(Default)]
pub(crate) struct Health {
    /// Gets and health checks failed in a row.
    failures: AtomicU32,
    /// Dials failed in a row.
    dial_failures: AtomicU32,
    /// When the ejection ends (ns on the pool's clock); 0 in rotation.
    ejected_until: AtomicU64,
    /// A get holds the probe.
    probing: AtomicBool,
    /// Ejections in a row (the probe failed each time); sets the backoff.
    ejections_in_row: AtomicU32,
    /// Ejections over the endpoint's life.
    ejections: AtomicU64,
}

impl Health {
    /// Whether a get may use the endpoint at `now`.
    pub(crate) fn admit(&self, now: u64) -> Admit {
        let until = self.ejected_until.load(Ordering::Acquire);
        if until == 0 {
            return Admit::Yes;
        }
        if now < until || self.probing.swap(true, Ordering::AcqRel) {
            return Admit::No;
        }
        Admit::Probe
    }

    /// Whether the endpoint is out of rotation (ejected, or due its probe).
    pub(crate) fn is_ejected(&self) -> bool {
        self.ejected_until.load(Ordering::Acquire) != 0
    }

    /// How long until the ejection ends, if ejected (zero once the probe is
    /// due).
    pub(crate) fn ejected_for(&self, now: u64) -> Option<Duration> {
        match self.ejected_until.load(Ordering::Acquire) {
            0 => None,
            until => Some(Duration::from_nanos(until.saturating_sub(now))),
        }
    }

    /// Failures in a row: the larger of the two counts.
    pub(crate) fn consecutive_failures(&self) -> u32 {
        self.failures
            .load(Ordering::Acquire)
            .max(self.dial_failures.load(Ordering::Acquire))
    }

    fn count(&self, kind: Kind) -> &AtomicU32 {
        match kind {
            Kind::Dial => &self.dial_failures,
            Kind::Use => &self.failures,
        }
    }

    /// Ejections over the endpoint's life.
    pub(crate) fn ejections(&self) -> u64 {
        self.ejections.load(Ordering::Acquire)
    }

    /// A failure of `kind` at `now`; `probe` if it was the probe's. When it
    /// makes `after` in a row and the endpoint is in rotation, `may_eject`
    /// (told the count) decides whether it may leave rotation. Returns the
    /// ejection's length if this failure ejected the endpoint. The caller
    /// serialises calls that may eject (the share of the set ejected is
    /// checked and changed as one step).
    pub(crate) fn failure(
        &self,
        now: u64,
        policy: &Ejection,
        kind: Kind,
        probe: bool,
        may_eject: impl FnOnce(u32) -> bool,
    ) -> Option<Duration> {
        let failures = self
            .count(kind)
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        if probe {
            let length = self.backoff(policy);
            self.ejected_until
                .store(now.saturating_add(nanos(length)).max(1), Ordering::Release);
            self.probing.store(false, Ordering::Release);
            self.ejections.fetch_add(1, Ordering::AcqRel);
            return Some(length);
        }
        // Only the failure that takes it out of rotation ejects; stragglers
        // from gets started before the ejection do not extend it.
        if failures < policy.after.max(1) || self.is_ejected() || !may_eject(failures) {
            return None;
        }
        let length = self.backoff(policy);
        let until = now.saturating_add(nanos(length)).max(1);
        match self
            .ejected_until
            .compare_exchange(0, until, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {
                self.ejections.fetch_add(1, Ordering::AcqRel);
                Some(length)
            }
            Err(_) => None,
        }
    }

    /// The next ejection's length, counting it as one more in a row.
    fn backoff(&self, policy: &Ejection) -> Duration {
        let in_row = self.ejections_in_row.fetch_add(1, Ordering::AcqRel);
        let factor = 1u32 << in_row.min(16);
        policy.base.saturating_mul(factor).min(policy.max)
    }

    /// A success of `kind` (a dial, a get served, a health check that
    /// worked): resets that kind's count; `probe` if it was the probe's.
    /// Returns whether it put the endpoint back in rotation.
    pub(crate) fn success(&self, kind: Kind, probe: bool) -> bool {
        // A load first: every successful get lands here, and a store would
        // bounce the line between the threads that share the endpoint.
        let count = self.count(kind);
        if count.load(Ordering::Acquire) != 0 {
            count.store(0, Ordering::Release);
        }
        if !probe {
            return false;
        }
        self.failures.store(0, Ordering::Release);
        self.dial_failures.store(0, Ordering::Release);
        self.ejections_in_row.store(0, Ordering::Release);
        self.ejected_until.store(0, Ordering::Release);
        self.probing.store(false, Ordering::Release);
        true
    }

    /// The probe ended with no verdict (its get timed out or was dropped):
    /// the next get probes instead.
    pub(crate) fn release_probe(&self) {
        self.probing.store(false, Ordering::Release);
    }
}

// Plain unit tests: their atomics are the loom facade's, which work only
// inside a loom model, so they do not run in the loom build.
#[cfg(all(test, not(ringpool_loom)))]
mod tests {
    use super::{Admit, Ejection, Health, Kind};
    use std::time::Duration;

    const S: u64 = 1_000_000_000;

    fn policy() -> Ejection {
        Ejection {
            after: 3,
            base: Duration::from_secs(1),
            max: Duration::from_secs(4),
        }
    }

    #[test]
    fn consecutive_failures_eject_and_a_success_in_between_resets_them() {
        let (health, policy) = (Health::default(), policy());
        assert_eq!(health.failure(0, &policy, Kind::Use, false, |_| true), None);
        assert_eq!(health.failure(0, &policy, Kind::Use, false, |_| true), None);
        health.success(Kind::Use, false);
        assert_eq!(health.failure(0, &policy, Kind::Use, false, |_| true), None);
        assert_eq!(health.failure(0, &policy, Kind::Use, false, |_| true), None);
        assert_eq!(
            health.failure(0, &policy, Kind::Use, false, |_| true),
            Some(Duration::from_secs(1))
        );
        assert_eq!(health.admit(0), Admit::No);
        assert_eq!(
            health.failure(0, &policy, Kind::Use, false, |_| true),
            None,
            "not extended"
        );
        assert_eq!(health.ejected_for(0), Some(Duration::from_secs(1)));
    }

    #[test]
    fn one_probe_when_due_and_its_failure_doubles_the_ejection_up_to_the_cap() {
        let (health, policy) = (Health::default(), policy());
        for _ in 0..3 {
            health.failure(0, &policy, Kind::Use, false, |_| true);
        }
        let mut now = S;
        for expected in [2, 4, 4] {
            assert_eq!(health.admit(now - 1), Admit::No, "still ejected");
            assert_eq!(health.admit(now), Admit::Probe);
            assert_eq!(health.admit(now), Admit::No, "one probe at a time");
            let length = health
                .failure(now, &policy, Kind::Use, true, |_| true)
                .unwrap();
            assert_eq!(length, Duration::from_secs(expected));
            now += expected * S;
        }
        assert_eq!(health.admit(now), Admit::Probe);
        assert!(
            health.success(Kind::Use, true),
            "the probe's success restores it"
        );
        assert_eq!(health.admit(now), Admit::Yes);
        assert_eq!(health.ejections(), 4);
    }

    #[test]
    fn a_probe_without_verdict_lets_the_next_get_probe() {
        let (health, policy) = (Health::default(), policy());
        for _ in 0..3 {
            health.failure(0, &policy, Kind::Use, false, |_| true);
        }
        assert_eq!(health.admit(S), Admit::Probe);
        health.release_probe();
        assert_eq!(health.admit(S), Admit::Probe);
        assert!(
            !health.success(Kind::Use, false),
            "a straggler's success does not restore"
        );
        assert!(health.is_ejected());
    }

    #[test]
    fn dial_and_use_failures_count_apart_and_either_ejects() {
        let (health, policy) = (Health::default(), policy());
        // Dials that work do not hide pings that fail, and the reverse.
        for _ in 0..2 {
            assert_eq!(health.failure(0, &policy, Kind::Use, false, |_| true), None);
            assert_eq!(
                health.failure(0, &policy, Kind::Dial, false, |_| true),
                None
            );
            health.success(Kind::Dial, false);
        }
        assert_eq!(health.consecutive_failures(), 2);
        assert!(
            health
                .failure(0, &policy, Kind::Use, false, |_| true)
                .is_some()
        );
        let dials = Health::default();
        for _ in 0..2 {
            dials.failure(0, &policy, Kind::Dial, false, |_| true);
            dials.success(Kind::Use, false);
        }
        assert!(
            dials
                .failure(0, &policy, Kind::Dial, false, |_| true)
                .is_some()
        );
    }

    #[test]
    fn a_refused_ejection_keeps_it_in_rotation_and_a_later_failure_may_eject() {
        let (health, policy) = (Health::default(), policy());
        for _ in 0..2 {
            health.failure(0, &policy, Kind::Use, false, |_| panic!("not at 3 yet"));
        }
        let mut asked = Vec::new();
        let refused = health.failure(0, &policy, Kind::Use, false, |n| {
            asked.push(n);
            false
        });
        assert_eq!(refused, None);
        assert_eq!(health.admit(0), Admit::Yes, "still in rotation");
        assert_eq!(health.ejections(), 0);
        let length = health.failure(0, &policy, Kind::Use, false, |n| {
            asked.push(n);
            true
        });
        assert_eq!(
            length,
            Some(Duration::from_secs(1)),
            "the first ejection's length"
        );
        assert_eq!(asked, [3, 4]);
    }
}

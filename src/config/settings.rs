//! A validated config in the form the pool reads: durations in
//! nanoseconds, and the settings every checkout reads mirrored in atomics.

use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::time::nanos;

use super::fields::Config;

/// A validated config with its durations pre-converted.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) config: Config,
    pub(crate) acquire_timeout_ns: u64,
    pub(crate) create_timeout_ns: u64,
    pub(crate) ping_timeout_ns: u64,
    pub(crate) recycle_timeout_ns: u64,
}

impl Settings {
    pub(crate) fn new(config: Config) -> Self {
        Settings {
            acquire_timeout_ns: nanos(config.acquire_timeout),
            create_timeout_ns: nanos(config.create_timeout),
            ping_timeout_ns: nanos(config.ping_timeout),
            recycle_timeout_ns: nanos(config.recycle_timeout),
            config,
        }
    }
}

/// Settings read on every checkout and return, mirrored from the live
/// config so the hot path does a few relaxed loads instead of an `ArcSwap`
/// load. Written only by `reconfigure`, under its lock; through the loom
/// facade because `next_grant` and the checks read them mid-protocol.
pub(crate) struct HotLimits {
    pub(crate) idle_timeout_ns: AtomicU64,
    pub(crate) check_after_ns: AtomicU64,
    pub(crate) min_idle: AtomicUsize,
    /// `u64::MAX` when leak detection is off.
    pub(crate) leak_threshold_ns: AtomicU64,
    /// `u64::MAX` when checkout pings are off.
    pub(crate) ping_after_ns: AtomicU64,
    /// `u64::MAX` when connections live forever.
    pub(crate) max_lifetime_ns: AtomicU64,
    /// `lifetime_jitter` as `f64` bits.
    pub(crate) lifetime_jitter_bits: AtomicU64,
    /// The shortest lifetime any connection can have (`max_lifetime`
    /// shortened by the whole jitter): younger connections need no
    /// lifetime check.
    pub(crate) lifetime_floor_ns: AtomicU64,
    /// The least of the idle-time thresholds (`idle_timeout`,
    /// `check_after`, `ping_after`): below it a checkout needs no check.
    pub(crate) quick_ns: AtomicU64,
    /// Whether slow-path gets record demand (`demand_half_life` is set).
    pub(crate) track_demand: AtomicBool,
    /// 0 when no connection counts as dying young.
    pub(crate) young_death_window_ns: AtomicU64,
}

impl HotLimits {
    pub(crate) fn new(config: &Config) -> Self {
        let hot = HotLimits {
            idle_timeout_ns: AtomicU64::new(0),
            check_after_ns: AtomicU64::new(0),
            min_idle: AtomicUsize::new(0),
            leak_threshold_ns: AtomicU64::new(u64::MAX),
            ping_after_ns: AtomicU64::new(u64::MAX),
            max_lifetime_ns: AtomicU64::new(u64::MAX),
            lifetime_jitter_bits: AtomicU64::new(0),
            lifetime_floor_ns: AtomicU64::new(u64::MAX),
            track_demand: AtomicBool::new(false),
            quick_ns: AtomicU64::new(0),
            young_death_window_ns: AtomicU64::new(0),
        };
        hot.update(config);
        hot
    }

    /// Mirrors `config`. Each store is relaxed: a checkout that reads a mix
    /// of old and new limits applies a policy that was in force a moment
    /// ago, never one that was not validated.
    pub(crate) fn update(&self, config: &Config) {
        let relaxed = Ordering::Relaxed;
        let idle_timeout = config.idle_timeout.map_or(u64::MAX, nanos);
        let check_after = nanos(config.check_after);
        let ping_after = config.ping_after.map_or(u64::MAX, nanos);
        self.idle_timeout_ns.store(idle_timeout, relaxed);
        self.check_after_ns.store(check_after, relaxed);
        self.min_idle.store(config.min_idle, relaxed);
        self.leak_threshold_ns
            .store(config.leak_threshold.map_or(u64::MAX, nanos), relaxed);
        self.ping_after_ns.store(ping_after, relaxed);
        self.track_demand
            .store(config.demand_half_life.is_some(), relaxed);
        self.quick_ns
            .store(idle_timeout.min(check_after).min(ping_after), relaxed);
        self.young_death_window_ns
            .store(config.young_death_window.map_or(0, nanos), relaxed);
        let lifetime = config.max_lifetime.map_or(u64::MAX, nanos);
        self.max_lifetime_ns.store(lifetime, relaxed);
        self.lifetime_jitter_bits
            .store(config.lifetime_jitter.to_bits(), relaxed);
        let floor = match lifetime {
            u64::MAX => u64::MAX,
            lifetime => (lifetime as f64 * (1.0 - config.lifetime_jitter)) as u64,
        };
        self.lifetime_floor_ns.store(floor, relaxed);
    }

    /// The lifetime of a connection whose jitter draw is `draw`, under the
    /// `max_lifetime` and `lifetime_jitter` in force (`u64::MAX`: forever).
    pub(crate) fn lifetime_ns(&self, draw: f64) -> u64 {
        let lifetime = self.max_lifetime_ns.load(Ordering::Relaxed);
        if lifetime == u64::MAX {
            return u64::MAX;
        }
        let jitter = f64::from_bits(self.lifetime_jitter_bits.load(Ordering::Relaxed));
        (lifetime as f64 * (1.0 - jitter * draw)) as u64
    }
}

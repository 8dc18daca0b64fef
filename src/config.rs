//! The pool's settings: what each one means, its default, and the rules a
//! config must satisfy before the pool will run with it.
//!
//! A [`Config`] is validated as a whole at build and on every
//! [`Pool::reconfigure`](crate::Pool::reconfigure); a bad one is rejected with
//! a [`ConfigError`] that names the field, says what was wrong and how to fix
//! it, and the config in force stays in force.

use std::time::Duration;

use crate::clock::nanos;

/// The tunable settings of a pool. Every field can be changed at run time
/// with [`Pool::reconfigure`](crate::Pool::reconfigure).
///
/// See `docs/tuning.md` for how to pick each value.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ringpool::Config;
///
/// let mut config = Config::default();
/// config.max_size = 64;
/// config.acquire_timeout = Duration::from_millis(250);
/// assert!(config.validate(1024).is_ok());
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// Most connections the pool owns at once: idle + in use + being
    /// created. Default 16.
    pub max_size: usize,
    /// Idle connections the pool tries to keep ready. Default 0.
    pub min_idle: usize,
    /// How long `get` waits for a connection before failing. Default 5 s.
    pub acquire_timeout: Duration,
    /// Idle connections unused for longer are closed (down to `min_idle`).
    /// `None` keeps them forever. Default 30 s.
    pub idle_timeout: Option<Duration>,
    /// Connections older than this (shortened by up to `lifetime_jitter` of
    /// it, per connection) are closed instead of being handed out. `None`
    /// keeps them forever. Default 30 min.
    pub max_lifetime: Option<Duration>,
    /// Fraction in `[0, 1)` by which each connection's lifetime is randomly
    /// shortened, so connections opened together do not expire together.
    /// Default 0.025.
    pub lifetime_jitter: f64,
    /// A connection returned less than this long ago is handed out without
    /// the manager's liveness check (`Manager::is_broken`). Zero checks
    /// every checkout. Default 500 ms.
    pub check_after: Duration,
    /// Wait before the first retry after a failed dial; it doubles with each
    /// consecutive failure. Default 50 ms.
    pub connect_backoff: Duration,
    /// Upper bound of the dial backoff. Default 5 s.
    pub connect_backoff_max: Duration,
    /// Most dials in flight at once, for gets and refills together, so a
    /// cold start or a recovery is no dial storm. Default 8.
    pub max_concurrent_dials: usize,
    /// A connection idle at least this long is pinged (`Manager::ping`)
    /// before it is handed out; a failed or timed-out ping closes it and the
    /// get moves on. `None` never pings at checkout. Default `None`.
    pub ping_after: Option<Duration>,
    /// Every ping (at checkout and in maintenance) runs under this timeout,
    /// so a dead peer cannot hang a get or the maintenance task. Default 1 s.
    pub ping_timeout: Duration,
    /// After this many consecutive failed dials the breaker opens: gets that
    /// need a new connection fail at once with the last connect error, and
    /// one probe dial per backoff interval decides when to close it. Idle
    /// connections are still served. `None` disables it. Default 5.
    pub breaker_threshold: Option<u32>,
    /// How often the background maintenance runs (idle expiry, leak checks,
    /// refills, health checks), jittered by up to 10 %. Default 5 s.
    pub maintenance_interval: Duration,
    /// A connection held longer than this is reported once (a `tracing`
    /// warning naming where it was checked out, and a counter). `None`
    /// disables leak detection, which then costs nothing. Default `None`.
    pub leak_threshold: Option<Duration>,
    /// Keep the pool sized to the recent peak of concurrent use (in use plus
    /// waiting), decaying with this half-life, within `[min_idle,
    /// max_size]`: a burst finds connections ready and a quiet hour releases
    /// them. `None` keeps only `min_idle`. Default `None`.
    pub demand_half_life: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_size: 16,
            min_idle: 0,
            acquire_timeout: Duration::from_secs(5),
            idle_timeout: Some(Duration::from_secs(30)),
            max_lifetime: Some(Duration::from_secs(30 * 60)),
            lifetime_jitter: 0.025,
            check_after: Duration::from_millis(500),
            connect_backoff: Duration::from_millis(50),
            connect_backoff_max: Duration::from_secs(5),
            ping_after: None,
            ping_timeout: Duration::from_secs(1),
            max_concurrent_dials: 8,
            breaker_threshold: Some(5),
            maintenance_interval: Duration::from_secs(5),
            leak_threshold: None,
            demand_half_life: None,
        }
    }
}

/// A config value the pool refuses, with the field, the problem and the fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid ringpool config: `{field}` {problem}; {fix}")]
pub struct ConfigError {
    /// The offending field.
    pub field: &'static str,
    /// What is wrong with its value.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

impl ConfigError {
    pub(crate) fn new(
        field: &'static str,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        ConfigError {
            field,
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

impl Config {
    /// Checks every rule; `idle_capacity` is the pool's fixed idle queue
    /// capacity, which `max_size` may never exceed.
    pub fn validate(&self, idle_capacity: usize) -> Result<(), ConfigError> {
        if self.max_size == 0 {
            return Err(ConfigError::new("max_size", "is 0", "set it to at least 1"));
        }
        if self.max_size > idle_capacity {
            return Err(ConfigError::new(
                "max_size",
                format!(
                    "is {} but the idle queue holds only {idle_capacity}",
                    self.max_size
                ),
                "lower max_size, or build the pool with a larger Builder::idle_capacity",
            ));
        }
        if self.min_idle > self.max_size {
            return Err(ConfigError::new(
                "min_idle",
                format!("is {} but max_size is {}", self.min_idle, self.max_size),
                "keep min_idle <= max_size",
            ));
        }
        if self.acquire_timeout.is_zero() {
            return Err(ConfigError::new(
                "acquire_timeout",
                "is zero",
                "give it a positive duration; use try_get() for a checkout that never waits",
            ));
        }
        if self.idle_timeout == Some(Duration::ZERO) {
            return Err(ConfigError::new(
                "idle_timeout",
                "is zero, which would close every connection as soon as it is returned",
                "give it a positive duration, or None to keep idle connections",
            ));
        }
        if self.max_lifetime == Some(Duration::ZERO) {
            return Err(ConfigError::new(
                "max_lifetime",
                "is zero, which would close every connection as soon as it is made",
                "give it a positive duration, or None for no lifetime limit",
            ));
        }
        if !(0.0..1.0).contains(&self.lifetime_jitter) {
            return Err(ConfigError::new(
                "lifetime_jitter",
                format!("is {}", self.lifetime_jitter),
                "use a fraction in [0, 1), for example 0.025",
            ));
        }
        if self.connect_backoff.is_zero() {
            return Err(ConfigError::new(
                "connect_backoff",
                "is zero, which lets a down target be redialed in a tight loop",
                "give it a positive duration, for example 50 ms",
            ));
        }
        if self.connect_backoff_max < self.connect_backoff {
            return Err(ConfigError::new(
                "connect_backoff_max",
                format!(
                    "({:?}) is below connect_backoff ({:?})",
                    self.connect_backoff_max, self.connect_backoff
                ),
                "keep connect_backoff_max >= connect_backoff",
            ));
        }
        if self.ping_timeout.is_zero() {
            return Err(ConfigError::new(
                "ping_timeout",
                "is zero, which would fail every ping",
                "give it a positive duration, for example 1s",
            ));
        }
        if self.max_concurrent_dials == 0 {
            return Err(ConfigError::new(
                "max_concurrent_dials",
                "is 0, which would never dial",
                "set it to at least 1",
            ));
        }
        if self.breaker_threshold == Some(0) {
            return Err(ConfigError::new(
                "breaker_threshold",
                "is 0, which would open the breaker before any dial",
                "set it to at least 1, or None to disable the breaker",
            ));
        }
        if self.maintenance_interval.is_zero() {
            return Err(ConfigError::new(
                "maintenance_interval",
                "is zero, which would run maintenance in a tight loop",
                "give it a positive duration, for example 5s",
            ));
        }
        if self.leak_threshold == Some(Duration::ZERO) {
            return Err(ConfigError::new(
                "leak_threshold",
                "is zero, which would report every checkout as a leak",
                "give it a positive duration, or None to disable leak detection",
            ));
        }
        if self.demand_half_life == Some(Duration::ZERO) {
            return Err(ConfigError::new(
                "demand_half_life",
                "is zero",
                "give it a positive duration, or None to keep only min_idle warm",
            ));
        }
        Ok(())
    }
}

/// A validated config with its durations pre-converted for the hot path.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) config: Config,
    pub(crate) acquire_timeout_ns: u64,
    pub(crate) idle_timeout_ns: u64,
    pub(crate) check_after_ns: u64,
    pub(crate) leak_threshold_ns: u64,
    pub(crate) ping_after_ns: u64,
    pub(crate) ping_timeout_ns: u64,
}

impl Settings {
    pub(crate) fn new(config: Config) -> Self {
        Settings {
            acquire_timeout_ns: nanos(config.acquire_timeout),
            idle_timeout_ns: config.idle_timeout.map_or(u64::MAX, nanos),
            check_after_ns: nanos(config.check_after),
            leak_threshold_ns: config.leak_threshold.map_or(u64::MAX, nanos),
            ping_after_ns: config.ping_after.map_or(u64::MAX, nanos),
            ping_timeout_ns: nanos(config.ping_timeout),
            config,
        }
    }

    /// The lifetime deadline of a connection made at `now`, with jitter
    /// drawn from `unit` in `[0, 1)`.
    pub(crate) fn lifetime_deadline(&self, now: u64, unit: f64) -> u64 {
        match self.config.max_lifetime {
            None => u64::MAX,
            Some(lifetime) => {
                let shortened = lifetime.mul_f64(1.0 - self.config.lifetime_jitter * unit);
                now.saturating_add(nanos(shortened))
            }
        }
    }
}

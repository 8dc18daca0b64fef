//! Building a pool: settings, clock and idle queue capacity, checked once.

use std::time::Duration;

use crate::clock::Clock;
use crate::config::{Config, ConfigError};
use crate::manager::Manager;
use crate::pool::{Inner, Pool};

/// Builds a [`Pool`]; start with [`Pool::builder`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// # use ringpool::{Manager, Pool};
/// # struct Numbers;
/// # impl Manager for Numbers {
/// #     type Connection = u64;
/// #     type Error = std::io::Error;
/// #     async fn connect(&self) -> Result<u64, std::io::Error> { Ok(7) }
/// # }
/// let pool = Pool::builder(Numbers)
///     .max_size(32)
///     .acquire_timeout(Duration::from_millis(200))
///     .build()
///     .unwrap();
/// assert_eq!(pool.status().max_size, 32);
///
/// let error = Pool::builder(Numbers).max_size(0).build().unwrap_err();
/// assert_eq!(error.field, "max_size");
/// ```
#[must_use = "a builder does nothing until build() is called"]
pub struct Builder<M: Manager> {
    manager: M,
    config: Config,
    idle_capacity: Option<usize>,
    clock: Option<Clock>,
}

impl<M: Manager> Builder<M> {
    pub(crate) fn new(manager: M) -> Self {
        Builder {
            manager,
            config: Config::default(),
            idle_capacity: None,
            clock: None,
        }
    }

    /// Replaces every setting at once.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// See [`Config::max_size`].
    pub fn max_size(mut self, max_size: usize) -> Self {
        self.config.max_size = max_size;
        self
    }

    /// See [`Config::min_idle`].
    pub fn min_idle(mut self, min_idle: usize) -> Self {
        self.config.min_idle = min_idle;
        self
    }

    /// See [`Config::acquire_timeout`].
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.config.acquire_timeout = timeout;
        self
    }

    /// See [`Config::idle_timeout`].
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.idle_timeout = timeout;
        self
    }

    /// See [`Config::max_lifetime`].
    pub fn max_lifetime(mut self, lifetime: Option<Duration>) -> Self {
        self.config.max_lifetime = lifetime;
        self
    }

    /// See [`Config::lifetime_jitter`].
    pub fn lifetime_jitter(mut self, fraction: f64) -> Self {
        self.config.lifetime_jitter = fraction;
        self
    }

    /// See [`Config::check_after`].
    pub fn check_after(mut self, window: Duration) -> Self {
        self.config.check_after = window;
        self
    }

    /// See [`Config::connect_backoff`] and [`Config::connect_backoff_max`].
    pub fn connect_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.config.connect_backoff = first;
        self.config.connect_backoff_max = max;
        self
    }

    /// See [`Config::ping_after`] and [`Config::ping_timeout`].
    pub fn ping_after(mut self, idle: Option<Duration>, timeout: Duration) -> Self {
        self.config.ping_after = idle;
        self.config.ping_timeout = timeout;
        self
    }

    /// See [`Config::max_concurrent_dials`].
    pub fn max_concurrent_dials(mut self, dials: usize) -> Self {
        self.config.max_concurrent_dials = dials;
        self
    }

    /// See [`Config::breaker_threshold`].
    pub fn breaker_threshold(mut self, failures: Option<u32>) -> Self {
        self.config.breaker_threshold = failures;
        self
    }

    /// See [`Config::maintenance_interval`].
    pub fn maintenance_interval(mut self, interval: Duration) -> Self {
        self.config.maintenance_interval = interval;
        self
    }

    /// See [`Config::leak_threshold`].
    pub fn leak_threshold(mut self, threshold: Option<Duration>) -> Self {
        self.config.leak_threshold = threshold;
        self
    }

    /// See [`Config::demand_half_life`].
    pub fn demand_half_life(mut self, half_life: Option<Duration>) -> Self {
        self.config.demand_half_life = half_life;
        self
    }

    /// Capacity of the lock-free idle queue, fixed for the pool's life; it
    /// caps how far `max_size` can be raised later. Default:
    /// `max(4 * max_size, 64)`.
    pub fn idle_capacity(mut self, capacity: usize) -> Self {
        self.idle_capacity = Some(capacity);
        self
    }

    /// The clock (default: the real one). Tests pass [`Clock::mock`].
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Validates the settings and builds the pool.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first bad field, what is wrong with it
    /// and how to fix it.
    pub fn build(self) -> Result<Pool<M>, ConfigError> {
        let capacity = match self.idle_capacity {
            Some(capacity) if capacity < self.config.max_size.max(1) => {
                return Err(ConfigError::new(
                    "idle_capacity",
                    format!("is {capacity}, below max_size {}", self.config.max_size),
                    "make the idle queue at least as large as max_size",
                ));
            }
            Some(capacity) => capacity,
            None => self.config.max_size.saturating_mul(4).max(64),
        };
        self.config.validate(capacity)?;
        let clock = self.clock.unwrap_or_default();
        let (manager, config) = (self.manager, self.config);
        let pool = Pool {
            inner: std::sync::Arc::new_cyclic(|self_ref| {
                Inner::new(manager, config, capacity, clock, self_ref.clone())
            }),
        };
        pool.inner.housekeep();
        Ok(pool)
    }
}

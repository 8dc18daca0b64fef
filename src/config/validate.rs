//! The rules a config must satisfy before the pool will run with it.

use std::time::Duration;

use super::error::ConfigError;
use super::fields::Config;

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
        if self.recycle_timeout.is_zero() {
            return Err(ConfigError::new(
                "recycle_timeout",
                "is zero, which would close every connection that needs a recycle step",
                "give it a positive duration, for example 5s",
            ));
        }
        if self.create_timeout.is_zero() {
            return Err(ConfigError::new(
                "create_timeout",
                "is zero, which would cancel every dial before it starts",
                "give it a positive duration, for example 5s",
            ));
        }
        if self.young_death_window == Some(Duration::ZERO) {
            return Err(ConfigError::new(
                "young_death_window",
                "is zero",
                "give it a positive duration, or None to count no connection as dying young",
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

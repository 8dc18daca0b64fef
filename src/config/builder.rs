//! Building a pool: settings, clock and idle queue capacity, checked once.

use crate::config::{Config, ConfigError};
use crate::manager::Manager;
use crate::pool::Pool;
use crate::time::Clock;

/// Builds a [`Pool`]; start with [`Pool::builder`].
///
/// Besides the methods below it has one setter per [`Config`] field, named
/// after the field.
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
    pub(super) config: Config,
    idle_capacity: Option<usize>,
    clock: Option<Clock>,
}

impl<M: Manager> std::fmt::Debug for Builder<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
            .field("idle_capacity", &self.idle_capacity)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
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
        Ok(Pool::new(self.manager, self.config, capacity, clock))
    }
}

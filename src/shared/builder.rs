//! Building a shared pool: its settings, checked once.

use std::time::Duration;

use crate::config::ConfigError;
use crate::time::Clock;

use super::manager::SharedManager;
use super::pool::SharedPool;
use super::settings::SharedSettings;

/// Builds a [`SharedPool`]; start with [`SharedPool::builder`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// # use ringpool::shared::{SharedManager, SharedPool};
/// # struct Links;
/// # impl SharedManager for Links {
/// #     type Connection = ();
/// #     type Error = std::io::Error;
/// #     async fn connect(&self) -> Result<(), std::io::Error> { Ok(()) }
/// #     fn capacity(&self, _: &()) -> usize { 100 }
/// # }
/// let pool = SharedPool::builder(Links)
///     .max_size(8)
///     .max_streams(50)
///     .max_lifetime(Duration::from_secs(600))
///     .build()
///     .unwrap();
/// assert_eq!(pool.stats().open, 0);
///
/// let error = SharedPool::builder(Links).max_streams(0).build().unwrap_err();
/// assert_eq!(error.field, "max_streams");
/// ```
#[must_use = "a builder does nothing until build() is called"]
pub struct SharedBuilder<M: SharedManager> {
    manager: M,
    settings: SharedSettings,
    clock: Option<Clock>,
}

impl<M: SharedManager> std::fmt::Debug for SharedBuilder<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBuilder")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<M: SharedManager> SharedPool<M> {
    /// Starts building a pool over `manager`.
    pub fn builder(manager: M) -> SharedBuilder<M> {
        SharedBuilder::new(manager)
    }
}

impl<M: SharedManager> SharedBuilder<M> {
    fn new(manager: M) -> Self {
        SharedBuilder {
            manager,
            settings: SharedSettings::default(),
            clock: None,
        }
    }

    /// The pool's name (default `default`): the `pool` label of its
    /// metrics, so two pools in one process can be told apart.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.settings.name = name.into();
        self
    }

    /// Open connections the pool may own at most (16 by default).
    /// Draining connections, which take no new requests, are not counted:
    /// a replacement is dialed while one finishes its last requests.
    pub fn max_size(mut self, max_size: usize) -> Self {
        self.settings.max_size = max_size;
        self
    }

    /// Requests one connection carries at once at most (100 by default),
    /// whatever the manager's [`capacity`](SharedManager::capacity) says.
    pub fn max_streams(mut self, max_streams: usize) -> Self {
        self.settings.max_streams = max_streams;
        self
    }

    /// A connection drains after this many requests (never by default).
    pub fn max_requests_per_connection(mut self, max: u64) -> Self {
        self.settings.max_requests_per_connection = Some(max);
        self
    }

    /// A connection drains at this age (never by default).
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.settings.max_lifetime = Some(lifetime);
        self
    }

    /// How long a get waits for room, dial included (30 s by default).
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.settings.acquire_timeout = timeout;
        self
    }

    /// How long one dial may take (5 s by default), within the acquire
    /// timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// The wait after a failed dial before the next (50 ms by default);
    /// it doubles with each failure in a row, up to
    /// [`connect_backoff_max`](Self::connect_backoff_max). A get that must
    /// dial meanwhile waits for it, within its own acquire timeout.
    pub fn connect_backoff(mut self, backoff: Duration) -> Self {
        self.settings.connect_backoff = backoff;
        self
    }

    /// The longest backoff, and so the breaker's probe interval (200 ms by
    /// default): while the target is down the pool dials about once per
    /// half of it.
    pub fn connect_backoff_max(mut self, backoff: Duration) -> Self {
        self.settings.connect_backoff_max = backoff;
        self
    }

    /// After this many failed dials in a row the breaker opens (5 by
    /// default; `None` never): a get that needs a new connection fails at
    /// once with [`SharedError::Unavailable`](super::SharedError), naming
    /// the last connect error, while one probe dial per backoff decides
    /// when to close it. Connections already open keep serving.
    pub fn breaker_threshold(mut self, threshold: Option<u32>) -> Self {
        self.settings.breaker_threshold = threshold;
        self
    }

    /// A connection that carried no request for this long drains and
    /// closes (30 s by default, as for exclusive pools; `None` never).
    /// Applied by [`maintenance`](SharedPool::maintenance), to the
    /// precision of its interval.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.settings.idle_timeout = timeout;
        self
    }

    /// How often [`maintenance`](SharedPool::maintenance) runs (5 s by
    /// default).
    pub fn maintenance_interval(mut self, interval: Duration) -> Self {
        self.settings.maintenance_interval = interval;
        self
    }

    /// Numbers the pool's connections from `first_id` (a set's member).
    pub(crate) fn first_id(mut self, first_id: u64) -> Self {
        self.settings.first_id = first_id;
        self
    }

    /// The clock (a [`MockClock`](crate::MockClock)'s in tests); the real
    /// one by default.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Checks the settings and builds the pool.
    pub fn build(self) -> Result<SharedPool<M>, ConfigError> {
        let s = &self.settings;
        if s.max_size == 0 {
            return Err(ConfigError::new(
                "max_size",
                "is 0, so no connection could ever be opened",
                "set it to 1 or more",
            ));
        }
        if s.max_streams == 0 {
            return Err(ConfigError::new(
                "max_streams",
                "is 0, so no connection could carry a request",
                "set it to 1 or more (100 is HTTP/2's usual server limit)",
            ));
        }
        if s.max_requests_per_connection == Some(0) {
            return Err(ConfigError::new(
                "max_requests_per_connection",
                "is 0, so no connection could carry a request",
                "set it to 1 or more, or leave it unset for no limit",
            ));
        }
        for (field, value) in [
            ("acquire_timeout", s.acquire_timeout),
            ("connect_timeout", s.connect_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::new(
                    field,
                    "is 0, so every get would fail at once",
                    "give it a positive duration",
                ));
            }
        }
        if s.connect_backoff_max < s.connect_backoff {
            return Err(ConfigError::new(
                "connect_backoff_max",
                "is below connect_backoff, so the backoff could never grow",
                "set it to connect_backoff or more",
            ));
        }
        if s.maintenance_interval.is_zero() {
            return Err(ConfigError::new(
                "maintenance_interval",
                "is 0, so maintenance would run without pause",
                "give it a positive duration (5 s is the default)",
            ));
        }
        if s.idle_timeout == Some(Duration::ZERO) {
            return Err(ConfigError::new(
                "idle_timeout",
                "is 0, so every connection would close between two requests",
                "give it a positive duration, or None to keep idle connections",
            ));
        }
        if s.breaker_threshold == Some(0) {
            return Err(ConfigError::new(
                "breaker_threshold",
                "is 0, so the breaker would be open before any dial",
                "set it to 1 or more, or None to disable the breaker",
            ));
        }
        if s.max_lifetime == Some(Duration::ZERO) {
            return Err(ConfigError::new(
                "max_lifetime",
                "is 0, so every connection would drain as it opens",
                "give it a positive duration, or leave it unset for no limit",
            ));
        }
        Ok(SharedPool::from_parts(
            self.manager,
            self.settings,
            self.clock.unwrap_or_default(),
        ))
    }
}

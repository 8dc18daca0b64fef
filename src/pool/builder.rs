//! Building a pool: settings, clock and idle queue capacity, checked once.

use std::time::Duration;

use crate::config::{Config, ConfigError, IdleOrder};
use crate::hooks::Hooks;
use crate::manager::Manager;
use crate::pool::Pool;
use crate::pool::inner::Parts;
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
    core: BuilderCore<M>,
}

/// What every pool builder sets: the settings, the idle queue's capacity,
/// the clock, the hooks and the name. [`Builder`] and
/// [`MultiBuilder`](crate::multi::MultiBuilder) each hold one and share
/// its setters (`core_setters!`), so the two cannot drift apart.
pub(crate) struct BuilderCore<M: Manager> {
    pub(crate) config: Config,
    pub(crate) idle_capacity: Option<usize>,
    pub(crate) clock: Option<Clock>,
    pub(crate) hooks: Hooks<M>,
    pub(crate) name: String,
}

impl<M: Manager> BuilderCore<M> {
    pub(crate) fn new() -> Self {
        BuilderCore {
            config: Config::default(),
            idle_capacity: None,
            clock: None,
            hooks: Hooks::default(),
            name: String::from("default"),
        }
    }

    /// The idle queue's capacity (given, or `max(4 * max_size, 64)`),
    /// with the settings validated against it.
    pub(crate) fn checked_capacity(&self) -> Result<usize, ConfigError> {
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
        Ok(capacity)
    }
}

impl<M: Manager> std::fmt::Debug for BuilderCore<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuilderCore")
            .field("config", &self.config)
            .field("idle_capacity", &self.idle_capacity)
            .field("clock", &self.clock)
            .field("hooks", &self.hooks)
            .field("name", &self.name)
            .finish()
    }
}

impl<M: Manager> std::fmt::Debug for Builder<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("core", &self.core)
            .finish_non_exhaustive()
    }
}

/// The setters every pool builder has, over its `core` (a
/// [`BuilderCore`]): one per [`Config`] field, then the idle capacity, the
/// name, the clock and the hooks.
macro_rules! core_setters {
    ($manager:ty) => {
        $crate::config::builder_setters!();

        fn config_mut(&mut self) -> &mut $crate::config::Config {
            &mut self.core.config
        }

        /// Capacity of the lock-free idle queue (each sub-pool's, for a
        /// multi-endpoint pool), fixed for the pool's life; it caps how far
        /// `max_size` can be raised later. Default: `max(4 * max_size, 64)`.
        pub fn idle_capacity(mut self, capacity: usize) -> Self {
            self.core.idle_capacity = Some(capacity);
            self
        }

        /// The pool's name (default `default`): a field of every log event the
        /// pool emits and the `pool` label of its metrics, so two pools in one
        /// process can be told apart (a multi-endpoint pool's sub-pools all
        /// carry it, told apart by their `endpoint`).
        pub fn name(mut self, name: impl Into<String>) -> Self {
            self.core.name = name.into();
            self
        }

        /// The clock (default: the real one; a multi-endpoint pool's
        /// sub-pools and its ejection run on it). Tests pass
        /// [`Clock::mock`](crate::Clock::mock).
        pub fn clock(mut self, clock: $crate::time::Clock) -> Self {
            self.core.clock = Some(clock);
            self
        }

        /// Runs `hook` on every new connection, after the manager's `connect`
        /// and before the pool uses it: to authenticate, select a database,
        /// set session state. It is part of the dial: bounded by
        /// `create_timeout`, and an error is a failed dial (classified by the
        /// manager, backed off as any other). See the [hooks](crate::hooks)
        /// module. On a multi-endpoint pool it runs on every endpoint's
        /// connections.
        ///
        /// # Examples
        ///
        /// ```
        /// # use ringpool::{Manager, Pool};
        /// # struct Numbers;
        /// # impl Manager for Numbers {
        /// #     type Connection = u64;
        /// #     type Error = std::io::Error;
        /// #     async fn connect(&self) -> Result<u64, std::io::Error> { Ok(7) }
        /// # }
        /// let pool = Pool::builder(Numbers)
        ///     .after_connect(|conn| Box::pin(async move {
        ///         *conn += 100; // e.g. send AUTH and read its reply
        ///         Ok(())
        ///     }))
        ///     .build()
        ///     .unwrap();
        /// assert_eq!(*pool.get_blocking().unwrap(), 107);
        /// ```
        pub fn after_connect<F>(mut self, hook: F) -> Self
        where
            F: for<'a> Fn(
                    &'a mut <$manager as $crate::manager::Manager>::Connection,
                ) -> $crate::hooks::HookFuture<
                    'a,
                    <$manager as $crate::manager::Manager>::Error,
                > + Send
                + Sync
                + 'static,
        {
            self.core.hooks.after_connect = Some(Box::new(hook));
            self
        }

        /// Runs `hook` on an idle connection before a get hands it out, after
        /// the pool's own checks. An error closes the connection
        /// ([`CloseReason::Rejected`](crate::CloseReason::Rejected)) and the get
        /// moves on, unseen by its caller. Synchronous, because it runs on the
        /// checkout fast path and in [`try_get`](crate::Pool::try_get): keep it cheap.
        ///
        /// # Examples
        ///
        /// ```
        /// # use ringpool::{Manager, Pool};
        /// # struct Numbers;
        /// # impl Manager for Numbers {
        /// #     type Connection = u64;
        /// #     type Error = std::io::Error;
        /// #     async fn connect(&self) -> Result<u64, std::io::Error> { Ok(7) }
        /// # }
        /// let pool = Pool::builder(Numbers)
        ///     .before_checkout(|conn| match *conn {
        ///         7 => Ok(()),
        ///         _ => Err(std::io::Error::other("changed while idle")),
        ///     })
        ///     .build()
        ///     .unwrap();
        /// *pool.get_blocking().unwrap() = 8; // back in the pool, changed
        /// assert_eq!(*pool.get_blocking().unwrap(), 7, "a fresh one instead");
        /// assert_eq!(pool.stats().closed.rejected, 1);
        /// ```
        pub fn before_checkout<F>(mut self, hook: F) -> Self
        where
            F: Fn(
                    &mut <$manager as $crate::manager::Manager>::Connection,
                ) -> Result<(), <$manager as $crate::manager::Manager>::Error>
                + Send
                + Sync
                + 'static,
        {
            self.core.hooks.before_checkout = Some(Box::new(hook));
            self
        }

        /// Runs `hook` on a connection given back, after the manager's
        /// `check_return`. An error closes it
        /// ([`CloseReason::Rejected`](crate::CloseReason::Rejected)) instead of
        /// keeping it idle: for a session left in a state the next user must
        /// not inherit. Synchronous, because it runs in the guard's `Drop`.
        ///
        /// # Examples
        ///
        /// ```
        /// # use ringpool::{Manager, Pool};
        /// # struct Numbers;
        /// # impl Manager for Numbers {
        /// #     type Connection = u64;
        /// #     type Error = std::io::Error;
        /// #     async fn connect(&self) -> Result<u64, std::io::Error> { Ok(7) }
        /// # }
        /// let pool = Pool::builder(Numbers)
        ///     .on_return(|conn| match *conn {
        ///         7 => Ok(()),
        ///         _ => Err(std::io::Error::other("left mid-transaction")),
        ///     })
        ///     .build()
        ///     .unwrap();
        /// *pool.get_blocking().unwrap() = 8;
        /// assert_eq!(pool.status().idle, 0, "closed on return");
        /// assert_eq!(pool.stats().closed.rejected, 1);
        /// ```
        pub fn on_return<F>(mut self, hook: F) -> Self
        where
            F: Fn(
                    &mut <$manager as $crate::manager::Manager>::Connection,
                ) -> Result<(), <$manager as $crate::manager::Manager>::Error>
                + Send
                + Sync
                + 'static,
        {
            self.core.hooks.on_return = Some(Box::new(hook));
            self
        }
    };
}
pub(crate) use core_setters;

impl<M: Manager> Pool<M> {
    /// Starts building a pool around `manager`.
    pub fn builder(manager: M) -> Builder<M> {
        Builder::new(manager)
    }
}

impl<M: Manager> Builder<M> {
    core_setters!(M);

    pub(crate) fn new(manager: M) -> Self {
        Builder {
            manager,
            core: BuilderCore::new(),
        }
    }

    /// Replaces every setting at once.
    pub fn config(mut self, config: Config) -> Self {
        self.core.config = config;
        self
    }

    /// The hooks, all at once (a multi-endpoint pool's, adapted to a
    /// sub-pool).
    pub(crate) fn hooks(mut self, hooks: Hooks<M>) -> Self {
        self.core.hooks = hooks;
        self
    }

    /// Validates the settings and builds the pool.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first bad field, what is wrong with it
    /// and how to fix it.
    pub fn build(self) -> Result<Pool<M>, ConfigError> {
        let capacity = self.core.checked_capacity()?;
        let core = self.core;
        Ok(Pool::new(Parts {
            name: core.name.into(),
            manager: self.manager,
            hooks: core.hooks,
            config: core.config,
            idle_capacity: capacity,
            clock: core.clock.unwrap_or_default(),
        }))
    }
}

//! The pool handle and the state it shares.
//!
//! Owns: [`Pool`] (the cheap-to-clone public handle) and `Inner` (the state
//! every layer works on). Each layer adds the public methods of its concern
//! to `Pool` in its own module: checkout (`get`, `try_get`, ...), lifecycle
//! (`maintenance`, `warm_up`, `close`, `drain`, `reconfigure`), metrics
//! (`status`, `stats`).

pub(crate) mod builder;
pub(crate) mod handoff;
pub(crate) mod inner;
pub(crate) mod pass;
pub(crate) mod policy;
pub(crate) mod recycle;
pub(crate) mod release;
pub(crate) mod watch;

use crate::config::Config;
use crate::manager::Manager;
use crate::time::Clock;
use inner::{Inner, Parts};

/// A pool of connections made by `M`.
///
/// Cheap to clone: clones share one pool. `Send + Sync` when the manager's
/// connection type is `Send`.
///
/// # Examples
///
/// ```
/// use ringpool::{Manager, Pool};
///
/// struct Numbers;
/// impl Manager for Numbers {
///     type Connection = u64;
///     type Error = std::io::Error;
///     async fn connect(&self) -> Result<u64, std::io::Error> {
///         Ok(7)
///     }
/// }
///
/// let pool = Pool::builder(Numbers).max_size(4).build().unwrap();
/// let conn = pool.get_blocking().unwrap();
/// assert_eq!(*conn, 7);
/// drop(conn);
/// assert_eq!(pool.status().idle, 1);
/// ```
pub struct Pool<M: Manager> {
    pub(crate) inner: std::sync::Arc<Inner<M>>,
}

impl<M: Manager> Clone for Pool<M> {
    fn clone(&self) -> Self {
        Pool {
            inner: std::sync::Arc::clone(&self.inner),
        }
    }
}

impl<M: Manager> Pool<M> {
    /// A pool over validated settings; housekeeping starts at once.
    pub(crate) fn new(parts: Parts<M>) -> Self {
        let pool = Pool {
            inner: std::sync::Arc::new_cyclic(|self_ref| Inner::new(parts, self_ref.clone())),
        };
        crate::lifecycle::housekeeping::housekeep(&pool.inner);
        pool
    }

    /// The pool's name in logs and metrics ([`Builder::name`](crate::Builder::name)).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The config in force.
    pub fn config(&self) -> Config {
        self.inner.settings.load().config.clone()
    }

    /// Whether [`close`](Pool::close) was called.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// The manager that makes this pool's connections.
    pub fn manager(&self) -> &M {
        &self.inner.manager
    }

    /// Monotonic counters since the pool was built.
    pub fn stats(&self) -> crate::Stats {
        self.inner.stats_now()
    }

    /// Sizes of the pool, read together.
    pub fn status(&self) -> crate::Status {
        crate::metrics::status::status(&self.inner)
    }

    /// The pool's clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }
}

impl<M: Manager> std::fmt::Debug for Pool<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

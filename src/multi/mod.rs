//! A pool over a set of endpoints (the replicas of one service), each with
//! its own sub-pool, under a per-endpoint and a global cap.
//!
//! Owns: [`MultiPool`] and its parts, one job a file: the endpoint set and
//! its hot swap (`shared`), selection (`select`), outlier ejection
//! (`health`), the global cap (`cap`), the sub-pools' manager (`member`),
//! checkout with failover (`checkout`), the guard (`guard`), discovery
//! (`discovery`), the sub-pools' maintenance (`maintenance`), the metrics
//! (`metrics`, with the `prometheus` feature) and the errors (`error`). May touch: the single-endpoint
//! [`Pool`](crate::Pool) through its crate API, its clock and its config.
//!
//! Each endpoint is served by an ordinary [`Pool`](crate::Pool), built from
//! the application's manager for that endpoint (the factory's), wrapped so
//! every connection holds a unit of the global cap. Every sub-pool carries
//! the multi-pool's name; logs and metrics tell them apart by their
//! `endpoint` field and label. See `docs/design.md`, "Multi-endpoint
//! pools".

mod builder;
mod cap;
mod checkout;
pub(crate) mod discovery;
mod endpoint;
mod error;
mod guard;
mod health;
mod maintenance;
mod member;
#[cfg(feature = "prometheus")]
mod metrics;
mod node;
mod select;
pub(crate) mod shared;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use builder::{DEFAULT_MAX_EJECTED_SHARE, MultiBuilder};
pub use discovery::{Discovery, DnsSource, EndpointSource};
pub use endpoint::Endpoint;
pub use error::{FactoryError, MultiError};
pub use guard::MultiPooled;
pub use select::Selection;
pub use shared::SetChange;

use crate::config::ConfigError;
use crate::manager::Manager;
use crate::metrics::{Stats, Status};
use crate::sync::Ordering;
use shared::Shared;

/// A pool of connections to a set of endpoints: one sub-pool per
/// endpoint, round-robin or least-in-use selection, failover, outlier
/// ejection, a global cap and a hot-swapped endpoint set that discovery
/// can keep up to date.
///
/// Cheap to clone: clones share one pool.
///
/// # Examples
///
/// ```
/// use ringpool::multi::MultiPool;
/// # use ringpool::Manager;
/// # struct Named(String);
/// # impl Manager for Named {
/// #     type Connection = String;
/// #     type Error = std::io::Error;
/// #     async fn connect(&self) -> Result<String, std::io::Error> { Ok(self.0.clone()) }
/// # }
///
/// let pool = MultiPool::builder(|endpoint| Named(endpoint.to_string()))
///     .endpoints(["a:1", "b:1"])
///     .build()
///     .unwrap();
/// futures_executor::block_on(async {
///     let first = pool.get().await.unwrap();
///     let second = pool.get().await.unwrap();
///     assert_eq!(*first, "a:1", "round-robin: one each");
///     assert_eq!(*second, "b:1");
///     assert_eq!(second.endpoint().as_str(), "b:1");
/// });
///
/// let change = pool.set_endpoints(["b:1", "c:1"]).unwrap();
/// assert_eq!(change.added[0].as_str(), "c:1");
/// assert_eq!(change.removed[0].as_str(), "a:1");
/// ```
pub struct MultiPool<M: Manager> {
    shared: Arc<Shared<M>>,
}

impl<M: Manager> Clone for MultiPool<M> {
    fn clone(&self) -> Self {
        MultiPool {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// One endpoint's state, from [`MultiPool::endpoints`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointStatus {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Its sub-pool's sizes.
    pub status: Status,
    /// Its sub-pool's counters (dials, reuse, waits, closes by reason).
    pub stats: Stats,
    /// How long it stays ejected (`None`: in rotation; zero: its probe is
    /// due).
    pub ejected_for: Option<Duration>,
    /// Failures in a row: the larger of the dials that failed in a row
    /// (a get's or a background refill's) and the gets it could not serve
    /// and failed health checks in a row.
    pub consecutive_failures: u32,
    /// Times it was ejected.
    pub ejections: u64,
}

impl<M: Manager> MultiPool<M> {
    /// Checks out a connection: from the endpoint the selection picks, or,
    /// if that one cannot connect, from the next endpoint in rotation, and
    /// so on; ejected endpoints are skipped. One `acquire_timeout` bounds
    /// the whole get.
    ///
    /// # Errors
    ///
    /// [`MultiError::Failed`] when every endpoint tried failed (with the
    /// last one's error) or the get timed out; [`MultiError::AllEjected`];
    /// [`MultiError::NoEndpoints`]; [`MultiError::Closed`].
    pub fn get(&self) -> impl Future<Output = Result<MultiPooled<M>, MultiError<M::Error>>> + '_ {
        checkout::checkout(&self.shared)
    }

    /// [`get`](MultiPool::get) for synchronous callers: blocks the thread.
    /// The manager's `connect` runs on this thread, so it must not need a
    /// runtime context.
    ///
    /// # Errors
    ///
    /// As [`get`](MultiPool::get).
    pub fn get_blocking(&self) -> Result<MultiPooled<M>, MultiError<M::Error>> {
        futures_executor::block_on(self.get())
    }

    /// Makes `endpoints` the endpoint set: new endpoints are used at once;
    /// endpoints no longer listed get no new gets, their idle connections
    /// close now and their connections in use as they come back. An
    /// endpoint whose manager the factory cannot make is left out and
    /// listed in [`SetChange::failed`].
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] if a new endpoint's sub-pool could not be built
    /// (the settings were checked at build, so only a bug makes one).
    pub fn set_endpoints<E: Into<Endpoint>>(
        &self,
        endpoints: impl IntoIterator<Item = E>,
    ) -> Result<SetChange, ConfigError> {
        self.shared.update(endpoints.into_iter().map(Into::into))
    }

    /// Polls `source` once, now, on this thread, and applies its answer.
    ///
    /// # Errors
    ///
    /// The source's error, or `NotFound` if it answered with no endpoints;
    /// either way the set is left as it was.
    pub fn refresh(&self, source: &mut impl EndpointSource) -> std::io::Result<SetChange> {
        discovery::refresh(&*self.shared, source)
    }

    /// Polls `source` every `interval` on a thread of its own (a name
    /// lookup may block) and applies each answer, until the returned
    /// [`Discovery`] is stopped or dropped, or the pool is closed or
    /// dropped. The first poll runs at once.
    ///
    /// # Errors
    ///
    /// The thread could not be started.
    pub fn discover(
        &self,
        source: impl EndpointSource,
        interval: Duration,
    ) -> std::io::Result<Discovery> {
        Discovery::spawn(Arc::downgrade(&self.shared), source, interval)
    }

    /// The maintenance of every endpoint's sub-pool (see
    /// [`Pool::maintenance`](crate::Pool::maintenance)): refills to
    /// `min_idle` and pings idle connections, so health checks run with no
    /// get asking and their failures, and the refills' failed dials, eject
    /// endpoints. Endpoints that join later get theirs as they join; a
    /// removed endpoint's stops as it leaves; the whole ends when the pool
    /// is closed or dropped (it holds the pool weakly). Spawn it on the
    /// runtime the managers need:
    ///
    /// ```no_run
    /// # #[cfg(feature = "tokio")]
    /// # async fn demo() {
    /// use ringpool::multi::MultiPool;
    /// use ringpool::tcp::TokioTcpManager;
    ///
    /// let pool = MultiPool::builder(|endpoint| TokioTcpManager::new(endpoint.as_str()))
    ///     .endpoints(["10.0.0.1:6379", "10.0.0.2:6379"])
    ///     .build()
    ///     .unwrap();
    /// tokio::spawn(pool.maintenance());
    /// # }
    /// ```
    ///
    /// Health checks need idle connections to ping: give the endpoints a
    /// `min_idle` of at least 1 ([`MultiBuilder::endpoint_config`]) for
    /// every endpoint to be checked while no traffic reaches it.
    pub fn maintenance(&self) -> impl Future<Output = ()> + use<M> {
        maintenance::run(Arc::downgrade(&self.shared))
    }

    /// Runs [`maintenance`](MultiPool::maintenance) on a thread of its own
    /// (named `ringpool-maintenance`), for managers whose `connect` and
    /// `ping` need no runtime. The thread ends when the pool is closed or
    /// dropped.
    ///
    /// # Errors
    ///
    /// The OS error if the thread cannot be spawned.
    pub fn spawn_maintenance_thread(&self) -> std::io::Result<std::thread::JoinHandle<()>> {
        // The task is made on the thread: the manager's futures need not be Send.
        let shared = Arc::downgrade(&self.shared);
        std::thread::Builder::new()
            .name("ringpool-maintenance".into())
            .spawn(move || futures_executor::block_on(maintenance::run(shared)))
    }

    /// Runs one maintenance round of every endpoint's sub-pool now,
    /// together (see [`Pool::run_maintenance`](crate::Pool::run_maintenance)),
    /// for applications that schedule maintenance themselves.
    pub async fn run_maintenance(&self) {
        if !self.is_closed() {
            maintenance::round(&self.shared).await;
        }
    }

    /// Every endpoint's state, in the set's order.
    pub fn endpoints(&self) -> Vec<EndpointStatus> {
        let now = self.shared.clock.now();
        self.shared
            .set
            .load_full()
            .nodes
            .iter()
            .map(|node| EndpointStatus {
                endpoint: node.endpoint.clone(),
                status: node.pool.status(),
                stats: node.pool.stats(),
                ejected_for: node.health.ejected_for(now),
                consecutive_failures: node.health.consecutive_failures(),
                ejections: node.health.ejections(),
            })
            .collect()
    }

    /// Connections across every endpoint (those of removed endpoints still
    /// draining included): what the global cap bounds.
    pub fn total_size(&self) -> usize {
        self.shared.cap.used()
    }

    /// The global cap (`None`: none).
    pub fn max_total(&self) -> Option<usize> {
        self.shared.cap.max()
    }

    /// The pool's name in logs and metrics.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Closes every endpoint's sub-pool (see [`Pool::close`](crate::Pool::close))
    /// and stops discovery. Idempotent.
    pub fn close(&self) {
        self.shared.close();
    }

    /// Whether [`close`](MultiPool::close) was called.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }
}

impl<M: Manager> std::fmt::Debug for MultiPool<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiPool")
            .field("name", &self.name())
            .field("endpoints", &self.endpoints())
            .field("total_size", &self.total_size())
            .finish_non_exhaustive()
    }
}

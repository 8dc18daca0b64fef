//! Building a multi-endpoint pool: the factory, the endpoints, the caps,
//! selection and ejection, checked once.

use std::sync::Arc;
use std::time::Duration;

use super::MultiPool;
use super::cap::Cap;
use super::endpoint::Endpoint;
use super::health::Ejection;
use super::select::Selection;
use super::shared::{EndpointSet, Factory, Shared};
use crate::config::{Config, ConfigError, IdleOrder};
use crate::manager::Manager;
use crate::pool::builder::{BuilderCore, core_setters};
use crate::sync::{AtomicBool, AtomicUsize, SwapCell, plain};

/// Builds a [`MultiPool`]; start with [`MultiPool::builder`].
///
/// It has the single pool's [`Builder`](crate::Builder) setters: one per
/// [`Config`] field (each endpoint's sub-pool's setting: `max_size` is the
/// per-endpoint cap, and `breaker_threshold` is always 1 there, see
/// [`endpoint_config`](MultiBuilder::endpoint_config)), the idle
/// capacity, the name, the clock and the hooks (run on every endpoint's
/// connections); and the methods below.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ringpool::multi::{MultiPool, Selection};
/// # use ringpool::Manager;
/// # struct Numbers(u64);
/// # impl Manager for Numbers {
/// #     type Connection = u64;
/// #     type Error = std::io::Error;
/// #     async fn connect(&self) -> Result<u64, std::io::Error> { Ok(self.0) }
/// # }
///
/// let pool = MultiPool::builder(|endpoint| Numbers(endpoint.as_str().len() as u64))
///     .endpoints(["10.0.0.1:80", "10.0.0.2:80"])
///     .max_per_endpoint(8)
///     .max_total(12)
///     .selection(Selection::LeastInUse)
///     .eject_after(3)
///     .ejection_time(Duration::from_secs(5), Duration::from_secs(120))
///     .build()
///     .unwrap();
/// assert_eq!(pool.endpoints().len(), 2);
/// assert_eq!(pool.max_total(), Some(12));
/// ```
#[must_use = "a builder does nothing until build() is called"]
pub struct MultiBuilder<M: Manager> {
    factory: Factory<M>,
    endpoints: Vec<Endpoint>,
    /// The settings, idle capacity, clock, hooks and name, as a single
    /// pool's builder has them (every sub-pool's).
    core: BuilderCore<M>,
    max_total: Option<usize>,
    selection: Selection,
    ejection: Ejection,
    max_ejected_share: f64,
}

/// The default [`MultiBuilder::max_ejected_share`].
pub const DEFAULT_MAX_EJECTED_SHARE: f64 = 0.5;

impl<M: Manager> std::fmt::Debug for MultiBuilder<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiBuilder")
            .field("endpoints", &self.endpoints)
            .field("core", &self.core)
            .field("max_total", &self.max_total)
            .field("selection", &self.selection)
            .field("ejection", &self.ejection)
            .field("max_ejected_share", &self.max_ejected_share)
            .finish_non_exhaustive()
    }
}

impl<M: Manager> MultiBuilder<M> {
    core_setters!(M);

    pub(crate) fn new(factory: Factory<M>) -> Self {
        MultiBuilder {
            factory,
            endpoints: Vec::new(),
            core: BuilderCore::new(),
            max_total: None,
            selection: Selection::default(),
            ejection: Ejection::default(),
            max_ejected_share: DEFAULT_MAX_EJECTED_SHARE,
        }
    }

    /// The endpoints to start with (none by default: discovery or
    /// [`MultiPool::set_endpoints`] can add them later).
    pub fn endpoints<E: Into<Endpoint>>(mut self, endpoints: impl IntoIterator<Item = E>) -> Self {
        self.endpoints = endpoints.into_iter().map(Into::into).collect();
        self
    }

    /// Every endpoint's sub-pool config: its `max_size` is the
    /// per-endpoint cap, its `acquire_timeout` bounds a whole get, failover
    /// included. `breaker_threshold` is always 1 in a sub-pool: its first
    /// failed dial fails its gets at once, so they move on to another
    /// endpoint, and ejection takes the breaker's place.
    pub fn endpoint_config(mut self, config: Config) -> Self {
        self.core.config = config;
        self
    }

    /// The per-endpoint cap (the sub-pools' `max_size`). Default 16.
    pub fn max_per_endpoint(mut self, max: usize) -> Self {
        self.core.config.max_size = max;
        self
    }

    /// The most connections across every endpoint (default: no global
    /// cap, only the per-endpoint one). When it is full, a dial closes an
    /// idle connection of another endpoint to make room, or waits (within
    /// the get's timeout) for one to close.
    pub fn max_total(mut self, max: usize) -> Self {
        self.max_total = Some(max);
        self
    }

    /// How a get picks its endpoint (default round-robin).
    pub fn selection(mut self, selection: Selection) -> Self {
        self.selection = selection;
        self
    }

    /// Failures in a row (gets whose endpoint could not connect, failed
    /// health-check pings) that eject an endpoint. Default 3.
    pub fn eject_after(mut self, failures: u32) -> Self {
        self.ejection.after = failures;
        self
    }

    /// How long an ejection lasts: `base` the first time, doubling with
    /// each failed probe, at most `max`. Default 5 s and 120 s.
    pub fn ejection_time(mut self, base: Duration, max: Duration) -> Self {
        self.ejection.base = base;
        self.ejection.max = max;
        self
    }

    /// The largest share of the endpoints ejected at once, from 0 (never
    /// eject) to 1 (eject every failing endpoint). Default 0.5. Once that
    /// many are ejected, further failing endpoints stay in rotation (and
    /// their gets fail over as usual) until one comes back: when most of a
    /// service fails at once, the fault is more likely in the network or
    /// this client than in every replica, and ejecting them all would leave
    /// nothing to send to, or pile the whole load on the last few.
    ///
    /// The share is rounded down, but at least one endpoint may be ejected
    /// when there are two or more (so `0.1` of 3 endpoints is one, as in
    /// Envoy's `max_ejection_percent`); a pool of a single endpoint never
    /// ejects it unless the share is 1. The default is above Envoy's 10 %
    /// because a pool usually spans a few replicas, not a hundred: with
    /// three, 10 % would keep a second bad replica (a lost zone, a bad
    /// rollout wave) in rotation, failing a third of the gets' first tries.
    pub fn max_ejected_share(mut self, share: f64) -> Self {
        self.max_ejected_share = share;
        self
    }

    /// Validates the settings; the sub-pools' idle capacity.
    fn validate(&self) -> Result<usize, ConfigError> {
        let idle_capacity = self.core.checked_capacity()?;
        if self.max_total == Some(0) {
            return Err(ConfigError::new(
                "max_total",
                "is 0",
                "allow at least one connection, or leave it unset for no global cap",
            ));
        }
        if self.ejection.after == 0 {
            return Err(ConfigError::new(
                "eject_after",
                "is 0",
                "eject after at least one failure",
            ));
        }
        if !(0.0..=1.0).contains(&self.max_ejected_share) {
            return Err(ConfigError::new(
                "max_ejected_share",
                format!("is {}", self.max_ejected_share),
                "give a share from 0 (never eject) to 1 (eject every failing endpoint)",
            ));
        }
        if self.ejection.base.is_zero() || self.ejection.base > self.ejection.max {
            return Err(ConfigError::new(
                "ejection_time",
                format!(
                    "base {:?} is zero or above max {:?}",
                    self.ejection.base, self.ejection.max
                ),
                "give a base above zero and no larger than max",
            ));
        }
        Ok(idle_capacity)
    }

    /// Validates the settings and builds the pool, with a sub-pool for each
    /// endpoint given. An endpoint whose manager the factory cannot make
    /// (an error from a [`try_builder`](MultiPool::try_builder) factory,
    /// or a panic) is logged and left out; [`MultiPool::endpoints`] lists
    /// those in, and the next [`set_endpoints`](MultiPool::set_endpoints)
    /// or discovery poll that lists it tries it again.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first bad setting, what is wrong with
    /// it and how to fix it.
    pub fn build(mut self) -> Result<MultiPool<M>, ConfigError> {
        let idle_capacity = self.validate()?;
        self.core.config.breaker_threshold = Some(1);
        let core = self.core;
        let shared = Arc::new_cyclic(|self_ref| Shared {
            name: core.name.into(),
            factory: self.factory,
            config: core.config,
            idle_capacity,
            hooks: Arc::new(core.hooks),
            clock: core.clock.unwrap_or_default(),
            cap: Cap::new(self.max_total),
            selection: self.selection,
            ejection: self.ejection,
            max_ejected_share: self.max_ejected_share,
            ejecting: plain::Mutex::new(()),
            maintainers: plain::Mutex::new(Vec::new()),
            set: SwapCell::new(EndpointSet { nodes: Vec::new() }),
            updating: plain::Mutex::new(()),
            next: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            self_ref: self_ref.clone(),
        });
        shared.update(self.endpoints)?;
        Ok(MultiPool { shared })
    }
}

impl<M: Manager> MultiPool<M> {
    /// Starts building a pool whose endpoints' managers `factory` makes
    /// (called once per endpoint, as it joins). A factory that can fail
    /// (an address that does not parse) goes to
    /// [`try_builder`](MultiPool::try_builder) instead.
    pub fn builder(factory: impl Fn(&Endpoint) -> M + Send + Sync + 'static) -> MultiBuilder<M> {
        MultiBuilder::new(Box::new(move |endpoint: &Endpoint| Ok(factory(endpoint))))
    }

    /// Starts building a pool whose endpoints' managers `factory` makes,
    /// or fails to: an endpoint whose manager it cannot make (its error, or
    /// a panic) is logged and left out of the set, listed in
    /// [`SetChange::failed`](crate::multi::SetChange::failed), and tried again at the next update that lists
    /// it. A bad address from discovery costs that endpoint, never the
    /// pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use ringpool::multi::MultiPool;
    /// use ringpool::tcp::TcpManager;
    ///
    /// let pool = MultiPool::try_builder(|endpoint| TcpManager::new(endpoint))
    ///     .endpoints(["127.0.0.1:6379"])
    ///     .build()
    ///     .unwrap();
    /// let change = pool.set_endpoints(["127.0.0.1:6379", "not an address"]).unwrap();
    /// assert_eq!(change.failed[0].endpoint.as_str(), "not an address");
    /// assert_eq!(pool.endpoints().len(), 1, "left out");
    /// ```
    pub fn try_builder<E>(
        factory: impl Fn(&Endpoint) -> Result<M, E> + Send + Sync + 'static,
    ) -> MultiBuilder<M>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        MultiBuilder::new(Box::new(move |endpoint: &Endpoint| {
            factory(endpoint).map_err(Into::into)
        }))
    }
}

//! A set of shared pools, one per endpoint of a service: each get goes to
//! the endpoint with the fewest requests in flight, fails over past one
//! that cannot be reached, and the set follows discovery.
//!
//! Owns: the member list (an immutable list, replaced whole: gets load it
//! without a lock), the factory that makes each new endpoint's manager,
//! the choice of endpoint, and the set's maintenance. Each member is a
//! whole [`SharedPool`] with its own connections, backoff and breaker; its
//! connection ids are numbered apart from the others' (`first_id`), so an
//! id names one connection across the set.
//!
//! Invariants: an endpoint is in the set at most once; a removed endpoint's
//! pool leaves the list at once (no new request goes to it) while the
//! requests in flight on it finish; its connections close with the last.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::builder::SharedBuilder;
use super::error::SharedError;
use super::manager::SharedManager;
use super::pool::{Lease, SharedPool};
use crate::config::ConfigError;
use crate::multi::discovery::{Discovered, Discovery};
use crate::multi::shared::{Factory, SetChange, make};
use crate::multi::{Endpoint, EndpointSource};
use crate::sync::SwapCell;
use crate::sync::plain::{AtomicU64, AtomicUsize, Mutex, Ordering};
use crate::time::{Clock, Sleep, nanos};

/// How far apart two members' connection ids start.
const ID_SPAN: u64 = 1 << 40;

/// Applied to each member's builder: the settings every endpoint's pool
/// shares.
type Configure<M> = Box<dyn Fn(SharedBuilder<M>) -> SharedBuilder<M> + Send + Sync>;

/// A set of [`SharedPool`]s, one per endpoint of a service, for a gRPC or
/// HTTP/2 client that talks to every replica
/// ([`Channel::balanced`](crate::clients::grpc::Channel::balanced)).
///
/// A [`get`](SharedSet::get) takes a place on the endpoint with the fewest
/// requests in flight (ties taken in turn), trying endpoints whose last
/// dial failed last; if that endpoint cannot be reached (a failed dial, an
/// open breaker) it moves on to the next. The set changes at run time
/// ([`set_endpoints`](SharedSet::set_endpoints), or
/// [`discover`](SharedSet::discover) with a DNS name): a new endpoint
/// takes requests at once, a removed one takes no more and its
/// connections close as their last requests end.
///
/// # Examples
///
/// ```
/// # use ringpool::shared::{SharedManager, SharedSet};
/// # use ringpool::multi::Endpoint;
/// # struct Link(String);
/// # struct Links(String);
/// # impl SharedManager for Links {
/// #     type Connection = Link;
/// #     type Error = std::io::Error;
/// #     async fn connect(&self) -> Result<Link, std::io::Error> { Ok(Link(self.0.clone())) }
/// #     fn capacity(&self, _: &Link) -> usize { 100 }
/// # }
/// # futures_executor::block_on(async {
/// let set = SharedSet::builder(|endpoint: &Endpoint| Links(endpoint.to_string()))
///     .endpoints(["10.0.0.1:50051", "10.0.0.2:50051"])
///     .configure(|pool| pool.max_size(4))
///     .build()
///     .unwrap();
/// let a = set.get().await.unwrap();
/// let b = set.get().await.unwrap();
/// // The second request went to the endpoint with none in flight.
/// assert_ne!(a.0, b.0);
/// # });
/// ```
pub struct SharedSet<M: SharedManager> {
    inner: Arc<SetInner<M>>,
}

impl<M: SharedManager> Clone for SharedSet<M> {
    fn clone(&self) -> Self {
        SharedSet {
            inner: Arc::clone(&self.inner),
        }
    }
}

/// One endpoint and its pool.
pub(crate) struct Member<M: SharedManager> {
    endpoint: Endpoint,
    pool: SharedPool<M>,
    first_id: u64,
}

struct SetInner<M: SharedManager> {
    name: String,
    factory: Factory<M>,
    configure: Configure<M>,
    clock: Clock,
    maintenance_interval: Duration,
    members: SwapCell<Vec<Arc<Member<M>>>>,
    /// Updates one at a time.
    updating: Mutex<()>,
    /// The next member's id range.
    next_range: AtomicU64,
    /// Whose turn it is among endpoints with as many requests in flight.
    turn: AtomicUsize,
}

impl<M: SharedManager> fmt::Debug for SharedSet<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedSet")
            .field("name", &self.inner.name)
            .field("endpoints", &self.endpoints())
            .finish_non_exhaustive()
    }
}

/// Builds a [`SharedSet`]; start with [`SharedSet::builder`].
#[must_use = "a builder does nothing until build() is called"]
pub struct SharedSetBuilder<M: SharedManager> {
    factory: Factory<M>,
    configure: Configure<M>,
    endpoints: Vec<Endpoint>,
    name: String,
    clock: Option<Clock>,
    maintenance_interval: Duration,
}

impl<M: SharedManager> fmt::Debug for SharedSetBuilder<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedSetBuilder")
            .field("endpoints", &self.endpoints)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<M: SharedManager> SharedSet<M> {
    /// Starts building a set whose endpoints' managers `factory` makes
    /// (once per endpoint, as it joins).
    pub fn builder(
        factory: impl Fn(&Endpoint) -> M + Send + Sync + 'static,
    ) -> SharedSetBuilder<M> {
        SharedSetBuilder::new(Box::new(move |endpoint: &Endpoint| Ok(factory(endpoint))))
    }

    /// Starts building a set whose endpoints' managers `factory` makes, or
    /// fails to: such an endpoint is left out (logged, and listed in
    /// [`SetChange::failed`]) and tried again at the next update that
    /// lists it.
    pub fn try_builder<E>(
        factory: impl Fn(&Endpoint) -> Result<M, E> + Send + Sync + 'static,
    ) -> SharedSetBuilder<M>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        SharedSetBuilder::new(Box::new(move |endpoint: &Endpoint| {
            factory(endpoint).map_err(Into::into)
        }))
    }
}

impl<M: SharedManager> SharedSetBuilder<M> {
    fn new(factory: Factory<M>) -> Self {
        SharedSetBuilder {
            factory,
            configure: Box::new(|builder| builder),
            endpoints: Vec::new(),
            name: "default".to_string(),
            clock: None,
            maintenance_interval: Duration::from_secs(5),
        }
    }

    /// The endpoints to start with (none by default: discovery, or
    /// [`SharedSet::set_endpoints`], brings them).
    pub fn endpoints<E: Into<Endpoint>>(mut self, endpoints: impl IntoIterator<Item = E>) -> Self {
        self.endpoints = endpoints.into_iter().map(Into::into).collect();
        self
    }

    /// The settings of every endpoint's pool: `configure` is applied to
    /// each one's [`SharedBuilder`] (`|pool| pool.max_size(4)`).
    pub fn configure(
        mut self,
        configure: impl Fn(SharedBuilder<M>) -> SharedBuilder<M> + Send + Sync + 'static,
    ) -> Self {
        self.configure = Box::new(configure);
        self
    }

    /// The set's name, and each endpoint pool's (default `default`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The clock of the set and of every endpoint's pool.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// How often [`SharedSet::maintenance`] runs each pool's round (5 s by
    /// default).
    pub fn maintenance_interval(mut self, interval: Duration) -> Self {
        self.maintenance_interval = interval;
        self
    }

    /// Builds the set and its first endpoints' pools.
    ///
    /// # Errors
    ///
    /// A setting `configure` gave that a pool refuses, or a zero
    /// `maintenance_interval`.
    pub fn build(self) -> Result<SharedSet<M>, ConfigError> {
        if self.maintenance_interval.is_zero() {
            return Err(ConfigError::new(
                "maintenance_interval",
                "is 0, so maintenance would run without pause",
                "give it a positive duration (5 s is the default)",
            ));
        }
        let set = SharedSet {
            inner: Arc::new(SetInner {
                name: self.name,
                factory: self.factory,
                configure: self.configure,
                clock: self.clock.unwrap_or_default(),
                maintenance_interval: self.maintenance_interval,
                members: SwapCell::new(Vec::new()),
                updating: Mutex::new(()),
                next_range: AtomicU64::new(0),
                turn: AtomicUsize::new(0),
            }),
        };
        set.inner.update(self.endpoints)?;
        Ok(set)
    }
}

impl<M: SharedManager> SharedSet<M> {
    /// A place for one request on the endpoint with the fewest requests
    /// in flight, failing over to the next when one cannot be reached.
    ///
    /// # Errors
    ///
    /// [`SharedError::NoEndpoints`] on an empty set; the last endpoint's
    /// error when none could be reached; a timeout when the chosen
    /// endpoint had no room in time.
    pub async fn get(&self) -> Result<Lease<M>, SharedError<M::Error>> {
        self.get_except(None).await
    }

    /// [`get`](SharedSet::get), on another connection than `avoid` (an id
    /// from [`Lease::connection_id`]) if any has room or may be dialed,
    /// another endpoint's first.
    pub async fn get_other_than(&self, avoid: u64) -> Result<Lease<M>, SharedError<M::Error>> {
        self.get_except(Some(avoid)).await
    }

    async fn get_except(&self, avoid: Option<u64>) -> Result<Lease<M>, SharedError<M::Error>> {
        let members = self.inner.members.load_full();
        let mut last_error = None;
        for member in self.inner.order(&members, avoid) {
            let got = match avoid {
                Some(id) if member.owns(id) => member.pool.get_other_than(id).await,
                _ => member.pool.get().await,
            };
            match got {
                Ok(lease) => return Ok(lease),
                Err(error) if error.fails_over() => {
                    tracing::debug!(set = %self.inner.name, endpoint = %member.endpoint, %error, "endpoint unreachable; trying the next");
                    last_error = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or(SharedError::NoEndpoints))
    }

    /// The endpoints now, in the order they joined.
    pub fn endpoints(&self) -> Vec<Endpoint> {
        self.inner
            .members
            .load_full()
            .iter()
            .map(|member| member.endpoint.clone())
            .collect()
    }

    /// The pool of `endpoint`, if it is in the set (its stats, its
    /// metrics).
    pub fn pool(&self, endpoint: &Endpoint) -> Option<SharedPool<M>> {
        self.inner
            .members
            .load_full()
            .iter()
            .find(|member| &member.endpoint == endpoint)
            .map(|member| member.pool.clone())
    }

    /// Makes `endpoints` the set: new ones get a pool and take requests at
    /// once; ones no longer listed take no new request and their
    /// connections close as their last requests end.
    ///
    /// # Errors
    ///
    /// A setting `configure` gave that a pool refuses; the set is left as
    /// it was.
    pub fn set_endpoints<E: Into<Endpoint>>(
        &self,
        endpoints: impl IntoIterator<Item = E>,
    ) -> Result<SetChange, ConfigError> {
        self.inner.update(endpoints.into_iter().map(Into::into))
    }

    /// Polls `source` every `interval` on a thread of its own and applies
    /// each answer (an error or an empty answer keeps the set), until the
    /// returned [`Discovery`] is stopped or dropped or the set is dropped.
    ///
    /// # Errors
    ///
    /// The thread could not be started.
    pub fn discover(
        &self,
        source: impl EndpointSource,
        interval: Duration,
    ) -> std::io::Result<Discovery> {
        Discovery::spawn(Arc::downgrade(&self.inner), source, interval)
    }

    /// Every endpoint pool's maintenance round (see
    /// [`SharedPool::maintenance`]) each `maintenance_interval`, endpoints
    /// that join later included, until the set is dropped (it holds the
    /// set weakly).
    pub fn maintenance(&self) -> impl Future<Output = ()> + Send + use<M> {
        let set: Weak<SetInner<M>> = Arc::downgrade(&self.inner);
        let clock = self.inner.clock.clone();
        let interval = nanos(self.inner.maintenance_interval);
        async move {
            loop {
                let next = clock.now().saturating_add(interval);
                match set.upgrade() {
                    Some(inner) => inner.run_maintenance(),
                    None => return,
                }
                Sleep::until(&clock, next).await;
            }
        }
    }

    /// One maintenance round of every endpoint's pool, now.
    pub fn run_maintenance(&self) {
        self.inner.run_maintenance();
    }

    /// The set's name ([`SharedSetBuilder::name`]).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// A handle that does not keep the set alive (for a metrics registry).
    #[cfg(feature = "prometheus")]
    pub(crate) fn downgrade(&self) -> WeakSet<M> {
        WeakSet(Arc::downgrade(&self.inner))
    }

    /// Each endpoint and its pool, now.
    #[cfg(feature = "prometheus")]
    pub(crate) fn members(&self) -> Vec<(Endpoint, SharedPool<M>)> {
        self.inner
            .members
            .load_full()
            .iter()
            .map(|member| (member.endpoint.clone(), member.pool.clone()))
            .collect()
    }
}

/// A set held weakly.
#[cfg(feature = "prometheus")]
pub(crate) struct WeakSet<M: SharedManager>(Weak<SetInner<M>>);

#[cfg(feature = "prometheus")]
impl<M: SharedManager> WeakSet<M> {
    pub(crate) fn upgrade(&self) -> Option<SharedSet<M>> {
        self.0.upgrade().map(|inner| SharedSet { inner })
    }
}

impl<M: SharedManager> Member<M> {
    fn owns(&self, id: u64) -> bool {
        (self.first_id..self.first_id + ID_SPAN).contains(&id)
    }
}

impl<M: SharedManager> SetInner<M> {
    /// The members in the order a get tries them: reachable before those
    /// whose last dial failed, then fewest requests in flight or queued,
    /// ties taken in turn; the one holding `avoid` last.
    fn order<'a>(&self, members: &'a [Arc<Member<M>>], avoid: Option<u64>) -> Vec<&'a Member<M>> {
        let n = members.len();
        if n == 0 {
            return Vec::new();
        }
        let start = self.turn.fetch_add(1, Ordering::Relaxed) % n;
        let mut order: Vec<(bool, bool, usize, &Member<M>)> = (0..n)
            .map(|i| {
                let member = &*members[(start + i) % n];
                let avoided = avoid.is_some_and(|id| member.owns(id));
                (
                    avoided,
                    member.pool.backing_off(),
                    member.pool.demand(),
                    member,
                )
            })
            .collect();
        // Stable: members alike stay in turn order.
        order
            .sort_by_key(|&(avoided, backing_off, in_flight, _)| (avoided, backing_off, in_flight));
        order.into_iter().map(|(_, _, _, member)| member).collect()
    }

    fn update(
        &self,
        endpoints: impl IntoIterator<Item = Endpoint>,
    ) -> Result<SetChange, ConfigError> {
        let _one_at_a_time = self.updating.lock();
        let mut wanted: Vec<Endpoint> = Vec::new();
        for endpoint in endpoints {
            if !wanted.contains(&endpoint) {
                wanted.push(endpoint);
            }
        }
        let current = self.members.load_full();
        let mut change = SetChange::default();
        let mut members: Vec<Arc<Member<M>>> = current
            .iter()
            .filter(|member| wanted.contains(&member.endpoint))
            .cloned()
            .collect();
        change.removed = current
            .iter()
            .filter(|member| !wanted.contains(&member.endpoint))
            .map(|member| member.endpoint.clone())
            .collect();
        for endpoint in wanted {
            if current.iter().any(|member| member.endpoint == endpoint) {
                continue;
            }
            let manager = match make(&self.factory, &endpoint) {
                Ok(manager) => manager,
                Err(error) => {
                    tracing::warn!(set = %self.name, %error, "endpoint left out");
                    change.failed.push(error);
                    continue;
                }
            };
            let first_id = self.next_range.fetch_add(1, Ordering::Relaxed) * ID_SPAN;
            let builder = SharedPool::builder(manager)
                .name(self.name.clone())
                .clock(self.clock.clone());
            let pool = (self.configure)(builder).first_id(first_id).build()?;
            members.push(Arc::new(Member {
                endpoint: endpoint.clone(),
                pool,
                first_id,
            }));
            change.added.push(endpoint);
        }
        self.members.store(members);
        if !change.added.is_empty() || !change.removed.is_empty() {
            tracing::info!(set = %self.name, added = ?change.added, removed = ?change.removed, "endpoints changed");
        }
        Ok(change)
    }

    fn run_maintenance(&self) {
        for member in self.members.load_full().iter() {
            member.pool.run_maintenance();
        }
    }
}

impl<M: SharedManager> Discovered for SetInner<M> {
    fn name(&self) -> &str {
        &self.name
    }

    /// A set is never closed: its discovery ends when it is dropped.
    fn is_closed(&self) -> bool {
        false
    }

    fn apply(&self, endpoints: Vec<Endpoint>) -> Result<SetChange, ConfigError> {
        self.update(endpoints)
    }
}

//! The state a multi-endpoint pool shares with its sub-pools' managers and
//! its discovery thread, and the endpoint set it swaps.
//!
//! Owns: the endpoint set (an immutable list, replaced whole: gets load it
//! without a lock and keep the one they loaded), the factory that makes
//! each new endpoint's manager, what happens to an endpoint when it
//! joins, leaves, fails or is ejected, the share of the set that may be
//! ejected at once, and the wake-up of the maintenance tasks when the set
//! changes.
//!
//! Invariants: an endpoint is in the set at most once; a removed
//! endpoint's sub-pool is closed as it leaves, so its idle connections
//! close at once and its connections in use close as they come back; a
//! get that loaded the old set and picks it fails over
//! ([`Error::Closed`](crate::Error::Closed) from the sub-pool).

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Weak};
use std::task::Waker;

use super::cap::Cap;
use super::endpoint::Endpoint;
use super::error::FactoryError;
use super::health::{Ejection, Health, Kind};
use super::member::{Member, SetEvents, member_hooks};
use super::node::Node;
use super::select::Selection;
use crate::config::{Config, ConfigError};
use crate::hooks::Hooks;
use crate::manager::{CloseReason, Manager};
use crate::pool::Pool;
use crate::sync::{AtomicBool, AtomicUsize, Ordering, SwapCell, fence, plain};
use crate::time::Clock;

/// Why the factory could not make an endpoint's manager.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Makes the manager of a new endpoint.
pub(crate) type Factory<M> = Box<dyn Fn(&Endpoint) -> Result<M, BoxError> + Send + Sync>;

/// The endpoints in use, in the order they were added.
pub(crate) struct EndpointSet<M: Manager> {
    pub(crate) nodes: Vec<Arc<Node<M>>>,
}

/// What one update of the endpoint set changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SetChange {
    /// Endpoints that joined.
    pub added: Vec<Endpoint>,
    /// Endpoints that left (their sub-pools are draining).
    pub removed: Vec<Endpoint>,
    /// Endpoints listed but left out: the factory could not make their
    /// manager (it returned an error or panicked). Each is tried again at
    /// the next update that lists it.
    pub failed: Vec<FactoryError>,
}

impl SetChange {
    /// Whether the update changed nothing (and left nothing out).
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.failed.is_empty()
    }
}

/// How many of `endpoints` endpoints may be ejected at once under
/// `share`: its share rounded down, but at least one when there are two
/// or more and `share` is above zero (Envoy's rule), and never the only
/// endpoint unless `share` is 1.
pub(crate) fn ejection_limit(endpoints: usize, share: f64) -> usize {
    let limit = (share * endpoints as f64).floor() as usize;
    if endpoints >= 2 && share > 0.0 {
        limit.max(1)
    } else {
        limit
    }
}

/// The panic's message, if it has one.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

pub(crate) struct Shared<M: Manager> {
    pub(crate) name: Arc<str>,
    pub(crate) factory: Factory<M>,
    /// Every sub-pool's config (`max_size` is the per-endpoint cap).
    pub(crate) config: Config,
    /// Every sub-pool's idle queue capacity.
    pub(crate) idle_capacity: usize,
    /// The hooks, run on every endpoint's connections.
    pub(crate) hooks: Arc<Hooks<M>>,
    pub(crate) clock: Clock,
    pub(crate) cap: Arc<Cap>,
    pub(crate) selection: Selection,
    pub(crate) ejection: Ejection,
    /// The largest share of the set ejected at once.
    pub(crate) max_ejected_share: f64,
    /// Serialises the failures that may eject (the share is checked and
    /// changed as one step); only failures take it.
    pub(crate) ejecting: plain::Mutex<()>,
    /// The maintenance tasks, woken when the set changes or the pool
    /// closes (or drops).
    pub(crate) maintainers: plain::Mutex<Vec<Waker>>,
    pub(crate) set: SwapCell<EndpointSet<M>>,
    /// Serialises updates of the set (a get never takes it).
    pub(crate) updating: plain::Mutex<()>,
    /// The round-robin position.
    pub(crate) next: AtomicUsize,
    pub(crate) closed: AtomicBool,
    pub(crate) self_ref: Weak<Shared<M>>,
}

impl<M: Manager> Shared<M> {
    /// The manager of `endpoint`, from the factory: its error, or its
    /// panic (caught: nothing was made, so nothing leaks), as a
    /// [`FactoryError`].
    fn make_manager(&self, endpoint: &Endpoint) -> Result<M, FactoryError> {
        make(&self.factory, endpoint)
    }
}

/// The manager of `endpoint`, from `factory`: its error, or its panic,
/// becomes a [`FactoryError`] that names the endpoint.
pub(crate) fn make<M>(factory: &Factory<M>, endpoint: &Endpoint) -> Result<M, FactoryError> {
    let made = catch_unwind(AssertUnwindSafe(|| factory(endpoint)));
    let reason = match made {
        Ok(Ok(manager)) => return Ok(manager),
        Ok(Err(error)) => {
            let mut reason = error.to_string();
            let mut source = error.source();
            while let Some(cause) = source {
                reason.push_str(": ");
                reason.push_str(&cause.to_string());
                source = cause.source();
            }
            reason
        }
        Err(panic) => format!("the factory panicked: {}", panic_message(&*panic)),
    };
    Err(FactoryError {
        endpoint: endpoint.clone(),
        reason,
    })
}

impl<M: Manager> Shared<M> {
    fn node(&self, endpoint: Endpoint, inner: M) -> Result<Arc<Node<M>>, ConfigError> {
        let health = Arc::new(Health::default());
        let member = Member {
            inner,
            endpoint: endpoint.clone(),
            health: Arc::clone(&health),
            cap: Arc::clone(&self.cap),
            clock: self.clock.clone(),
            create_timeout: self.config.create_timeout,
            ping_timeout: self.config.ping_timeout,
            shared: self.self_ref.clone() as Weak<dyn SetEvents>,
        };
        let pool = Pool::builder(member)
            .config(self.config.clone())
            .idle_capacity(self.idle_capacity)
            .name(&*self.name)
            .clock(self.clock.clone())
            .hooks(member_hooks(&self.hooks))
            .build()?;
        Ok(Arc::new(Node {
            endpoint,
            pool,
            health,
        }))
    }

    /// Makes `endpoints` the set: new ones get a sub-pool and are used at
    /// once, ones no longer listed are closed and drain.
    pub(crate) fn update(
        &self,
        endpoints: impl IntoIterator<Item = Endpoint>,
    ) -> Result<SetChange, ConfigError> {
        let _one_at_a_time = self.updating.lock();
        if self.closed.load(Ordering::Acquire) {
            return Ok(SetChange::default());
        }
        let wanted: Vec<Endpoint> = {
            let mut seen = BTreeSet::new();
            endpoints
                .into_iter()
                .filter(|endpoint| seen.insert(endpoint.clone()))
                .collect()
        };
        let current = self.set.load_full();
        let mut change = SetChange::default();
        let mut nodes = Vec::with_capacity(wanted.len());
        for node in &current.nodes {
            if wanted.contains(&node.endpoint) {
                nodes.push(Arc::clone(node));
            }
        }
        for endpoint in wanted {
            if current.nodes.iter().any(|node| node.endpoint == endpoint) {
                continue;
            }
            match self.make_manager(&endpoint) {
                Ok(manager) => {
                    nodes.push(self.node(endpoint.clone(), manager)?);
                    change.added.push(endpoint);
                }
                Err(error) => {
                    tracing::warn!(
                        pool = %self.name, endpoint = %endpoint, reason = %error.reason,
                        "endpoint left out: the factory could not make its manager"
                    );
                    change.failed.push(error);
                }
            }
        }
        let removed: Vec<Arc<Node<M>>> = current
            .nodes
            .iter()
            .filter(|node| !nodes.iter().any(|kept| kept.endpoint == node.endpoint))
            .cloned()
            .collect();
        self.set.store(EndpointSet { nodes });
        for node in removed {
            // Closed after the swap: a get that still picks it from the old
            // set finds it closed and moves on.
            node.pool.close();
            change.removed.push(node.endpoint.clone());
        }
        if !change.added.is_empty() || !change.removed.is_empty() {
            self.wake_maintainers();
            tracing::info!(
                pool = %self.name, added = ?change.added, removed = ?change.removed,
                "endpoint set changed"
            );
        }
        Ok(change)
    }

    /// Closes one idle connection of an endpoint other than `except`, to
    /// make room under the global cap; whether it found one.
    pub(crate) fn evict_one_idle(&self, except: &Endpoint) -> bool {
        let set = self.set.load_full();
        for node in set.nodes.iter().filter(|node| node.endpoint != *except) {
            if node.pool.status().idle == 0 {
                continue;
            }
            if let Ok(conn) = node.pool.try_get() {
                tracing::debug!(
                    pool = %self.name, endpoint = %node.endpoint, "closing an idle connection to make room under the global cap"
                );
                conn.close(CloseReason::Evicted);
                return true;
            }
        }
        false
    }

    /// A failure of `kind` at `endpoint` (`probe` if it was its probe's),
    /// counted towards its ejection under the cap on the share ejected.
    /// If it ejected the endpoint, its idle connections are closed (they go
    /// to a target that fails) and the ejection is logged.
    pub(crate) fn failed(
        &self,
        endpoint: &Endpoint,
        health: &Health,
        kind: Kind,
        probe: bool,
        cause: &str,
    ) {
        let ejected = {
            let _one_at_a_time = self.ejecting.lock();
            health.failure(self.clock.now(), &self.ejection, kind, probe, |failures| {
                self.may_eject(endpoint, failures, cause)
            })
        };
        let Some(length) = ejected else { return };
        // Pairs with the fence a returning guard runs before it reads the
        // ejection (`multi::guard`): a connection pushed back idle as we
        // ejected is closed by us or by that guard.
        fence(Ordering::SeqCst);
        let set = self.set.load_full();
        let node = set.nodes.iter().find(|node| node.endpoint == *endpoint);
        let closed = node.map_or(0, |node| node.pool.retain(|_| false));
        tracing::warn!(
            pool = %self.name, endpoint = %endpoint, %cause, ejected_ms = length.as_millis() as u64,
            idle_closed = closed,
            "endpoint ejected: no traffic until its probe succeeds"
        );
    }

    /// Whether one more endpoint may be ejected, with `failures` failures
    /// in a row at `endpoint`; says why not (once per run of failures at
    /// warn level) if not.
    fn may_eject(&self, endpoint: &Endpoint, failures: u32, cause: &str) -> bool {
        let set = self.set.load();
        let ejected = set
            .nodes
            .iter()
            .filter(|node| node.health.is_ejected())
            .count();
        let limit = ejection_limit(set.nodes.len(), self.max_ejected_share);
        if ejected < limit {
            return true;
        }
        let (endpoints, share) = (set.nodes.len(), self.max_ejected_share);
        if failures == self.ejection.after {
            tracing::warn!(
                pool = %self.name, %endpoint, %cause, failures, ejected, endpoints, max_ejected_share = share,
                "endpoint failing but kept in rotation: ejecting it would exceed max_ejected_share; a fault this wide is more likely in the network or this client than in the endpoints"
            );
        } else {
            tracing::debug!(
                pool = %self.name, %endpoint, %cause, failures, ejected, endpoints,
                "endpoint failing, kept in rotation by max_ejected_share"
            );
        }
        false
    }

    /// Wakes every maintenance task: the set changed or the pool closed.
    pub(crate) fn wake_maintainers(&self) {
        for waker in std::mem::take(&mut *self.maintainers.lock()) {
            waker.wake();
        }
    }

    /// Registers a maintenance task's waker.
    pub(crate) fn register_maintainer(&self, waker: &Waker) {
        let mut wakers = self.maintainers.lock();
        if !wakers.iter().any(|known| known.will_wake(waker)) {
            wakers.push(waker.clone());
        }
    }

    /// Closes every sub-pool.
    pub(crate) fn close(&self) {
        let _one_at_a_time = self.updating.lock();
        if !self.closed.swap(true, Ordering::AcqRel) {
            tracing::info!(pool = %self.name, "multi-endpoint pool closed");
        }
        for node in &self.set.load_full().nodes {
            node.pool.close();
        }
        self.wake_maintainers();
    }
}

impl<M: Manager> SetEvents for Shared<M> {
    fn evict_one_idle(&self, except: &Endpoint) -> bool {
        Shared::evict_one_idle(self, except)
    }

    fn failed(&self, endpoint: &Endpoint, health: &Health, kind: Kind, probe: bool, cause: &str) {
        Shared::failed(self, endpoint, health, kind, probe, cause);
    }
}

impl<M: Manager> Drop for Shared<M> {
    fn drop(&mut self) {
        // The maintenance tasks hold the pool weakly: they end when woken.
        self.wake_maintainers();
    }
}

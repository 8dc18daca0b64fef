//! The state a multi-endpoint pool shares with its sub-pools' managers and
//! its discovery thread, and the endpoint set it swaps.
//!
//! Owns: the endpoint set (an immutable list, replaced whole: gets load it
//! without a lock and keep the one they loaded), the factory that makes
//! each new endpoint's manager, and what happens to an endpoint when it
//! joins, leaves or is ejected.
//!
//! Invariants: an endpoint is in the set at most once; a removed
//! endpoint's sub-pool is closed as it leaves, so its idle connections
//! close at once and its connections in use close as they come back; a
//! get that loaded the old set and picks it fails over
//! ([`Error::Closed`](crate::Error::Closed) from the sub-pool).

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::cap::Cap;
use super::endpoint::Endpoint;
use super::health::{Ejection, Health};
use super::member::Member;
use super::select::Selection;
use crate::config::{Config, ConfigError};
use crate::core::sync::{AtomicBool, AtomicUsize, Ordering, SwapCell, plain};
use crate::manager::{CloseReason, Manager};
use crate::pool::Pool;
use crate::time::Clock;

/// Makes the manager of a new endpoint.
pub(crate) type Factory<M> = Box<dyn Fn(&Endpoint) -> M + Send + Sync>;

/// One endpoint: its sub-pool and its health.
pub(crate) struct Node<M: Manager> {
    pub(crate) endpoint: Endpoint,
    pub(crate) pool: Pool<Member<M>>,
    pub(crate) health: Arc<Health>,
}

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
}

impl SetChange {
    /// Whether the update changed nothing.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

pub(crate) struct Shared<M: Manager> {
    pub(crate) name: Arc<str>,
    pub(crate) factory: Factory<M>,
    /// Every sub-pool's config (`max_size` is the per-endpoint cap).
    pub(crate) config: Config,
    pub(crate) clock: Clock,
    pub(crate) cap: Arc<Cap>,
    pub(crate) selection: Selection,
    pub(crate) ejection: Ejection,
    pub(crate) set: SwapCell<EndpointSet<M>>,
    /// Serialises updates of the set (a get never takes it).
    pub(crate) updating: plain::Mutex<()>,
    /// The round-robin position.
    pub(crate) next: AtomicUsize,
    pub(crate) closed: AtomicBool,
    pub(crate) self_ref: Weak<Shared<M>>,
}

impl<M: Manager> Shared<M> {
    fn node(&self, endpoint: Endpoint) -> Result<Arc<Node<M>>, ConfigError> {
        let health = Arc::new(Health::default());
        let member = Member {
            inner: (self.factory)(&endpoint),
            endpoint: endpoint.clone(),
            health: Arc::clone(&health),
            cap: Arc::clone(&self.cap),
            ejection: self.ejection,
            clock: self.clock.clone(),
            shared: self.self_ref.clone(),
        };
        let pool = Pool::builder(member)
            .config(self.config.clone())
            .name(&*self.name)
            .clock(self.clock.clone())
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
            if !current.nodes.iter().any(|node| node.endpoint == endpoint) {
                nodes.push(self.node(endpoint.clone())?);
                change.added.push(endpoint);
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
        if !change.is_empty() {
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

    /// An endpoint failed; `ejected` is the ejection's length if the
    /// failure ejected it: its idle connections are closed (they go to a
    /// target that fails) and the ejection is logged.
    pub(crate) fn after_failure(
        &self,
        endpoint: &Endpoint,
        ejected: Option<Duration>,
        cause: &str,
    ) {
        let Some(length) = ejected else { return };
        let set = self.set.load_full();
        let node = set.nodes.iter().find(|node| node.endpoint == *endpoint);
        let closed = node.map_or(0, |node| node.pool.retain(|_| false));
        tracing::warn!(
            pool = %self.name, endpoint = %endpoint, %cause, ejected_ms = length.as_millis() as u64,
            idle_closed = closed,
            "endpoint ejected: no traffic until its probe succeeds"
        );
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
    }
}

//! The shared pool: a checkout that lends a place on a connection, dials
//! when every open connection is full, and queues callers first in, first
//! out when nothing has room.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use crate::dial::gate::DialGate;
use crate::drop_guard::{DropGuard, Unwinding};
use crate::error::UnavailableError;
use crate::sync::plain::{AtomicU64, Mutex, Ordering};
use crate::time::{Clock, Raced, Sleep, nanos, with_deadline};

use super::error::SharedError;
use super::handoff::{Handoff, Message};
use super::inner::Inner;
pub use super::lease::Lease;
use super::maintenance::{round, sweep};
use super::manager::SharedManager;
use super::settings::SharedSettings;
use super::table::{DrainCause, Grant, Plan, Table};

/// A pool that lends each connection to many callers at once.
///
/// For protocols whose connections carry many requests at once (HTTP/2,
/// gRPC, Redis' multiplexed connections): a [`get`](SharedPool::get) takes
/// one place on the least loaded open connection with room, dials another
/// (up to `max_size`) when all are full, and otherwise queues, first in,
/// first out, until a request ends. A connection whose manager says it is
/// closing, or that reaches `max_lifetime` or
/// `max_requests_per_connection`, drains: it takes no new request, its
/// requests in flight finish, then it is dropped; it no longer counts
/// toward `max_size`, so a replacement is dialed as soon as callers need
/// one.
///
/// It is its own checkout path beside [`Pool`](crate::Pool)'s: a pool of
/// exclusive connections pays nothing for it. Cloning is cheap; clones
/// share the pool.
///
/// # Examples
///
/// ```
/// # use ringpool::shared::{SharedManager, SharedPool};
/// # struct Links;
/// # impl SharedManager for Links {
/// #     type Connection = ();
/// #     type Error = std::io::Error;
/// #     async fn connect(&self) -> Result<(), std::io::Error> { Ok(()) }
/// #     fn capacity(&self, _: &()) -> usize { 2 }
/// # }
/// # futures_executor::block_on(async {
/// let pool = SharedPool::builder(Links).max_size(2).build().unwrap();
/// let a = pool.get().await.unwrap();
/// let b = pool.get().await.unwrap();
/// let c = pool.get().await.unwrap();
/// // Two places a connection: the third request needed a second one.
/// assert_eq!(a.connection_id(), b.connection_id());
/// assert_ne!(a.connection_id(), c.connection_id());
/// assert_eq!(pool.stats().in_flight, 3);
/// # });
/// ```
pub struct SharedPool<M: SharedManager> {
    inner: Arc<Inner<M>>,
}

impl<M: SharedManager> Clone for SharedPool<M> {
    fn clone(&self) -> Self {
        SharedPool {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<M: SharedManager> fmt::Debug for SharedPool<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedPool")
            .field("settings", &self.inner.settings)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// A shared pool's numbers: a snapshot of its state and its counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SharedStats {
    /// Connections taking requests.
    pub open: usize,
    /// Connections finishing their last requests.
    pub draining: usize,
    /// Dials in flight.
    pub dialing: usize,
    /// Requests in flight on all connections.
    pub in_flight: usize,
    /// Callers queued for room.
    pub waiting: usize,
    /// Requests in flight on each connection taking requests, by
    /// connection id.
    pub per_connection: Vec<(u64, usize)>,
    /// Dials that succeeded.
    pub connects: u64,
    /// Dials that failed or timed out.
    pub connect_failures: u64,
    /// Places handed out.
    pub leases: u64,
    /// Connections drained because their manager said they were closing.
    pub drained_closed: u64,
    /// Connections drained at `max_lifetime`.
    pub drained_lifetime: u64,
    /// Connections drained at `max_requests_per_connection`.
    pub drained_requests: u64,
    /// Connections drained after `idle_timeout` with no request.
    pub drained_idle: u64,
    /// Dials that failed in a row (0 after a success): new dials back
    /// off, and the breaker is open at `breaker_threshold`.
    pub failed_dials_in_a_row: u32,
}

impl<M: SharedManager> SharedPool<M> {
    pub(crate) fn from_parts(manager: M, settings: SharedSettings, clock: Clock) -> Self {
        SharedPool {
            inner: Arc::new(Inner {
                manager,
                table: Table::new(settings.max_requests_per_connection, settings.first_id),
                gate: DialGate::new(&settings.gate_config()),
                gate_config: settings.gate_config(),
                last_connect_error: Mutex::new(None),
                idle_since: Mutex::new(HashMap::new()),
                settings,
                clock,
                connects: AtomicU64::new(0),
                connect_failures: AtomicU64::new(0),
                leases: AtomicU64::new(0),
            }),
        }
    }

    /// The manager.
    pub fn manager(&self) -> &M {
        &self.inner.manager
    }

    /// Requests in flight or queued now (cheap: no lock): what a set of
    /// pools balances on.
    pub(crate) fn demand(&self) -> usize {
        self.inner.table.in_flight() + self.inner.table.waiting()
    }

    /// Whether its last dial failed: new dials back off (or the breaker is
    /// open), so a set of pools tries the others first.
    pub(crate) fn backing_off(&self) -> bool {
        self.inner.gate.consecutive_failures() != 0
    }

    /// The pool's name ([`SharedBuilder::name`](super::SharedBuilder::name)).
    pub fn name(&self) -> &str {
        &self.inner.settings.name
    }

    /// The limits a scrape reports beside the stats: `max_size` and
    /// `max_streams`.
    #[cfg(feature = "prometheus")]
    pub(crate) fn limits(&self) -> (usize, usize) {
        let settings = &self.inner.settings;
        (settings.max_size, settings.max_streams)
    }

    /// A handle that does not keep the pool alive (for a metrics registry).
    #[cfg(feature = "prometheus")]
    pub(crate) fn downgrade(&self) -> WeakPool<M> {
        WeakPool(Arc::downgrade(&self.inner))
    }

    /// A place on a connection for one request: on the least loaded open
    /// connection with room, on a new one if all are full and `max_size`
    /// allows, or, queued first in first out, on the first that makes
    /// room within `acquire_timeout`.
    ///
    /// Cancel-safe: a get dropped while it waits or dials leaves nothing
    /// behind (a place handed to it as it was dropped goes to the next
    /// caller; its dial's place under `max_size` is given back).
    pub async fn get(&self) -> Result<Lease<M>, SharedError<M::Error>> {
        self.get_except(None).await
    }

    /// [`get`](SharedPool::get), on another connection than `avoid` if
    /// one has room or may be dialed; on `avoid` itself otherwise (for a
    /// request its server refused, to be sent again elsewhere).
    pub async fn get_other_than(&self, avoid: u64) -> Result<Lease<M>, SharedError<M::Error>> {
        self.get_except(Some(avoid)).await
    }

    async fn get_except(&self, mut avoid: Option<u64>) -> Result<Lease<M>, SharedError<M::Error>> {
        let inner = &*self.inner;
        let start = inner.clock.now();
        let deadline = start.saturating_add(nanos(inner.settings.acquire_timeout));
        loop {
            let quick = match (inner.table.waiting(), avoid) {
                (0, _) | (_, Some(_)) => inner.table.try_lease_except(avoid),
                _ => None,
            };
            let mut dial_for_avoid = false;
            if quick.is_none() && avoid.is_some() {
                // No other connection has room: another one is dialed if
                // the pool may own it, else the avoided one is better
                // than a wait.
                dial_for_avoid = inner.table.reserve_dial(inner.settings.max_size);
                if !dial_for_avoid {
                    avoid = None;
                    continue;
                }
            }
            let grant = match quick {
                Some(grant) => grant,
                None if dial_for_avoid => self.dial(start, deadline).await?,
                None => match inner
                    .table
                    .plan(inner.settings.max_size, inner.settings.max_streams)
                {
                    Plan::Dial => self.dial(start, deadline).await?,
                    Plan::Wait(cell) => match self.wait(cell, deadline).await {
                        Some(Message::Lease(grant)) => grant,
                        Some(Message::Retry) => continue,
                        None => return Err(self.timeout(start)),
                    },
                },
            };
            if let Some(lease) = self.vet(grant) {
                inner.leases.fetch_add(1, Ordering::Relaxed);
                return Ok(lease);
            }
        }
    }

    /// Keeps a place only on a connection that still takes requests, and
    /// refreshes the connection's limit from its manager.
    fn vet(&self, grant: Grant<M::Connection>) -> Option<Lease<M>> {
        let inner = &*self.inner;
        let entry = grant.entry();
        let expired = inner.settings.max_lifetime.is_some_and(|lifetime| {
            inner.clock.now().saturating_sub(entry.born) >= nanos(lifetime)
        });
        if expired {
            grant.drain(DrainCause::Lifetime);
            return None;
        }
        // User code: a panic drops the grant, which gives the place back.
        if !inner.manager.is_open(&entry.conn) {
            grant.drain(DrainCause::Closed);
            return None;
        }
        entry.set_limit(self.limit(&entry.conn));
        Some(Lease::new(grant))
    }

    fn limit(&self, conn: &M::Connection) -> usize {
        self.inner
            .manager
            .capacity(conn)
            .min(self.inner.settings.max_streams)
    }

    /// Dials under the place `plan` reserved, once the gate lets it; the
    /// place is given back if the dial fails, times out, panics or is
    /// cancelled, or the breaker refuses it.
    async fn dial(
        &self,
        start: u64,
        deadline: u64,
    ) -> Result<Grant<M::Connection>, SharedError<M::Error>> {
        let inner = &*self.inner;
        let place = DropGuard::new(&*inner.table, (), give_back_dial);
        let probe = self.pass_gate(start, deadline).await?;
        let now = inner.clock.now();
        let limit = deadline.min(now.saturating_add(nanos(inner.settings.connect_timeout)));
        let outcome = with_deadline(&inner.clock, limit, inner.manager.connect()).await;
        let conn = match outcome {
            Raced::Done(Ok(conn)) => conn,
            Raced::Done(Err(error)) => {
                let error = Arc::new(error);
                self.dial_failed(Some(Arc::clone(&error)));
                tracing::debug!(%error, "shared pool: dial failed");
                return Err(SharedError::Connect(error));
            }
            Raced::TimedOut => {
                self.dial_failed(None);
                let waited = std::time::Duration::from_nanos(inner.clock.now() - now);
                return Err(SharedError::ConnectTimeout(waited));
            }
        };
        drop(probe);
        if inner.gate.on_success() {
            tracing::info!("shared pool: a dial succeeded after failures; dials resume");
        }
        let streams = self.limit(&conn);
        place.disarm();
        inner.connects.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(streams, "shared pool: connection opened");
        Ok(inner.table.add(conn, streams, inner.clock.now()))
    }

    /// Waits until a dial may start: at once, after the backoff of the
    /// failed dials before it (within `deadline`), or as the breaker's
    /// probe. Fails at once while the breaker is open and this get may not
    /// probe; fails with a timeout if the backoff outlasts the get.
    async fn pass_gate(
        &self,
        start: u64,
        deadline: u64,
    ) -> Result<Option<DropGuard<'_, DialGate, ()>>, SharedError<M::Error>> {
        let inner = &*self.inner;
        loop {
            let now = inner.clock.now();
            let closed_until = inner.gate.closed_until(now);
            if inner.gate.breaker_open() {
                if closed_until.is_none() && inner.gate.try_probe() {
                    return Ok(Some(DropGuard::new(&inner.gate, (), end_probe)));
                }
                let retry_in = closed_until.map_or(0, |at| at - now);
                return Err(SharedError::Unavailable(UnavailableError {
                    consecutive_failures: inner.gate.consecutive_failures(),
                    retry_in: std::time::Duration::from_nanos(retry_in),
                    last_connect_error: inner.last_connect_error.lock().clone(),
                }));
            }
            let Some(at) = closed_until else {
                return Ok(None);
            };
            if now >= deadline {
                return Err(self.timeout(start));
            }
            Sleep::until(&inner.clock, at.min(deadline)).await;
        }
    }

    fn dial_failed(&self, error: Option<Arc<M::Error>>) {
        let inner = &*self.inner;
        inner.connect_failures.fetch_add(1, Ordering::Relaxed);
        if error.is_some() {
            *inner.last_connect_error.lock() = error;
        }
        inner.gate.on_failure(inner.clock.now(), &inner.gate_config);
    }

    /// Waits on `cell` until told or until `deadline`; withdraws from the
    /// queue on timeout or cancellation.
    async fn wait(
        &self,
        cell: Arc<Handoff<Grant<M::Connection>>>,
        deadline: u64,
    ) -> Option<Message<Grant<M::Connection>>> {
        let inner = &*self.inner;
        let queued = DropGuard::new(&*inner.table, cell, withdraw);
        match with_deadline(&inner.clock, deadline, queued.wait()).await {
            Raced::Done(message) => {
                queued.disarm();
                Some(message)
            }
            Raced::TimedOut => {
                // Told just as time ran out: keep what it was told.
                let cell = queued.disarm();
                inner.table.withdraw(&cell)
            }
        }
    }

    fn timeout(&self, start: u64) -> SharedError<M::Error> {
        let stats = self.stats();
        SharedError::Timeout {
            waited: std::time::Duration::from_nanos(self.inner.clock.now().saturating_sub(start)),
            open: stats.open,
            in_flight: stats.in_flight,
            waiting: stats.waiting,
            failed_dials: self.inner.gate.consecutive_failures(),
        }
    }

    /// The maintenance task: every `maintenance_interval`, drains the
    /// connections idle for `idle_timeout`, those past `max_lifetime`, and
    /// those whose manager says they take no more requests (an HTTP/2
    /// connection the server closed or reset: its connection task saw it
    /// at once), so none waits for a get to find it. It holds only a weak
    /// reference and ends when the pool is dropped. Spawn it on the
    /// runtime the manager uses.
    ///
    /// ```
    /// # use ringpool::shared::{SharedManager, SharedPool};
    /// # struct Links;
    /// # impl SharedManager for Links {
    /// #     type Connection = ();
    /// #     type Error = std::io::Error;
    /// #     async fn connect(&self) -> Result<(), std::io::Error> { Ok(()) }
    /// #     fn capacity(&self, _: &()) -> usize { 100 }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = SharedPool::builder(Links).build().unwrap();
    /// let maintenance = tokio::spawn(pool.maintenance());
    /// drop(pool);
    /// maintenance.await.unwrap(); // ends with the pool
    /// # }
    /// ```
    pub fn maintenance(&self) -> impl Future<Output = ()> + Send + use<M> {
        let pool = Arc::downgrade(&self.inner);
        let clock = self.inner.clock.clone();
        let interval = nanos(self.inner.settings.maintenance_interval);
        async move {
            loop {
                let next = clock.now().saturating_add(interval);
                if !sweep(&pool) {
                    return;
                }
                Sleep::until(&clock, next).await;
            }
        }
    }

    /// Runs one maintenance round now (see
    /// [`maintenance`](SharedPool::maintenance)), for applications that
    /// schedule it themselves.
    pub fn run_maintenance(&self) {
        round(&self.inner);
    }

    /// The pool's numbers now.
    pub fn stats(&self) -> SharedStats {
        let inner = &*self.inner;
        let (entries, dialing) = inner.table.connections();
        let mut stats = SharedStats {
            dialing,
            waiting: inner.table.waiting(),
            connects: inner.connects.load(Ordering::Relaxed),
            connect_failures: inner.connect_failures.load(Ordering::Relaxed),
            leases: inner.leases.load(Ordering::Relaxed),
            drained_closed: inner.table.drained(DrainCause::Closed),
            drained_lifetime: inner.table.drained(DrainCause::Lifetime),
            drained_requests: inner.table.drained(DrainCause::Requests),
            drained_idle: inner.table.drained(DrainCause::Idle),
            failed_dials_in_a_row: inner.gate.consecutive_failures(),
            ..SharedStats::default()
        };
        for entry in &entries {
            let load = entry.load();
            stats.in_flight += load;
            if entry.is_draining() {
                stats.draining += 1;
            } else {
                stats.open += 1;
                stats.per_connection.push((entry.id, load));
            }
        }
        stats
    }
}

/// A pool held weakly.
#[cfg(feature = "prometheus")]
pub(crate) struct WeakPool<M: SharedManager>(std::sync::Weak<Inner<M>>);

#[cfg(feature = "prometheus")]
impl<M: SharedManager> WeakPool<M> {
    pub(crate) fn upgrade(&self) -> Option<SharedPool<M>> {
        self.0.upgrade().map(|inner| SharedPool { inner })
    }
}

fn end_probe(gate: &DialGate, (): (), _: Unwinding) {
    gate.end_probe();
}

fn give_back_dial<C: Send + Sync + 'static>(table: &Table<C>, (): (), _: Unwinding) {
    table.dial_failed();
}

fn withdraw<C: Send + Sync + 'static>(
    table: &Table<C>,
    cell: Arc<Handoff<Grant<C>>>,
    _: Unwinding,
) {
    // A place handed over as the caller gave up is dropped here, which
    // passes it to the next caller.
    drop(table.withdraw(&cell));
}

//! The manager of one endpoint's sub-pool: the application's manager for
//! that endpoint, wrapped so every connection holds a unit of the global
//! cap and every dial and health check tells the endpoint's health.
//!
//! Owns: [`Member`] (a [`Manager`] over the factory's manager) and
//! [`Counted`] (a connection and its unit). The wrapper adds three things
//! and delegates the rest:
//! - `connect` takes a unit of the global cap before dialing (closing an
//!   idle connection of another endpoint to make room, or waiting for one
//!   to close), and gives it back if the dial fails;
//! - every dial's result (a get's or a background refill's) and every
//!   ping's (a checkout's check or a maintenance health check) counts
//!   towards the endpoint's ejection, a dial or ping cut off by its
//!   timeout as a failure;
//! - `check_return` closes a returning connection, instead of keeping it
//!   idle, while its endpoint is ejected or a dial elsewhere waits for a
//!   unit of the global cap.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::cap::{Cap, Unit};
use super::endpoint::Endpoint;
use super::health::{Health, Kind};
use crate::drop_guard::{DropGuard, Unwinding};
use crate::hooks::{AsyncHook, HookFuture, Hooks};
use crate::manager::{CloseReason, ErrorClass, IdleDeaths, IdleWatch, IdleWatcher, Manager};
use crate::time::{Clock, nanos};

/// A connection of a sub-pool: the manager's connection and its unit of
/// the global cap, given back when this is dropped.
pub(crate) struct Counted<C> {
    pub(crate) conn: C,
    _unit: Unit,
}

impl<C> Deref for Counted<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.conn
    }
}

impl<C> DerefMut for Counted<C> {
    fn deref_mut(&mut self) -> &mut C {
        &mut self.conn
    }
}

/// The manager of one endpoint's sub-pool.
pub(crate) struct Member<M: Manager> {
    pub(crate) inner: M,
    pub(crate) endpoint: Endpoint,
    pub(crate) health: Arc<Health>,
    pub(crate) cap: Arc<Cap>,
    pub(crate) clock: Clock,
    /// A dial cut off after this long (the sub-pool's `create_timeout`)
    /// timed out: a failure.
    pub(crate) create_timeout: Duration,
    /// Likewise for a ping (`ping_timeout`).
    pub(crate) ping_timeout: Duration,
    /// The multi-pool, to close idle connections of other endpoints when
    /// the global cap is full. Weak: the multi-pool owns this member.
    pub(crate) shared: Weak<dyn SetEvents>,
}

/// What a member tells the endpoint set it belongs to (implemented by
/// `shared::Shared`; named here so a member needs nothing of the set).
pub(crate) trait SetEvents: Send + Sync {
    /// Closes one idle connection of an endpoint other than `except`;
    /// whether it did.
    fn evict_one_idle(&self, except: &Endpoint) -> bool;
    /// A failure of `kind` at `endpoint`, counted towards its ejection.
    fn failed(&self, endpoint: &Endpoint, health: &Health, kind: Kind, probe: bool, cause: &str);
}

impl<M: Manager> Member<M> {
    /// Closes one idle connection of another endpoint; whether it did.
    fn make_room(&self) -> bool {
        match self.shared.upgrade() {
            Some(shared) => shared.evict_one_idle(&self.endpoint),
            None => false,
        }
    }

    /// A failure of `kind` here, counted towards ejection.
    fn failed(&self, kind: Kind, cause: &str) {
        if let Some(shared) = self.shared.upgrade() {
            shared.failed(&self.endpoint, &self.health, kind, false, cause);
        }
    }
}

/// What a dial or ping in flight was, and since when.
struct InFlight {
    kind: Kind,
    started: u64,
}

/// A dial or ping dropped before it ended: cut off by its timeout (a
/// failure), or its caller went away (no verdict). A panic in the manager
/// is no verdict on the endpoint either. The timeout's deadline was set a
/// moment before the call began, so an eighth of it is allowed as slack.
fn cut_off<M: Manager>(member: &Member<M>, flight: InFlight, unwinding: Unwinding) {
    if unwinding.0 {
        return;
    }
    let (limit, cause) = match flight.kind {
        Kind::Dial => (member.create_timeout, "dial timed out"),
        Kind::Use => (member.ping_timeout, "health check timed out"),
    };
    let elapsed = member.clock.now().saturating_sub(flight.started);
    let limit = nanos(limit);
    if elapsed.saturating_add(limit / 8) >= limit {
        member.failed(flight.kind, cause);
    }
}

/// The inner manager's watch, on the inner connection.
impl<M: Manager> IdleWatcher<Counted<M::Connection>> for Member<M> {
    fn start(&self, deaths: IdleDeaths) -> IdleWatch {
        self.inner
            .idle_watcher()
            .map_or(IdleWatch::Off, |watcher| watcher.start(deaths))
    }

    fn idle(&self, conn: &mut Counted<M::Connection>) {
        if let Some(watcher) = self.inner.idle_watcher() {
            watcher.idle(&mut conn.conn);
        }
    }

    fn unwatch(&self, conn: &mut Counted<M::Connection>) -> bool {
        self.inner
            .idle_watcher()
            .is_some_and(|watcher| watcher.unwatch(&mut conn.conn))
    }

    fn died_idle(&self, conn: &Counted<M::Connection>) -> bool {
        self.inner
            .idle_watcher()
            .is_some_and(|watcher| watcher.died_idle(&conn.conn))
    }
}

impl<M: Manager> Manager for Member<M> {
    type Connection = Counted<M::Connection>;
    type Error = M::Error;

    async fn connect(&self) -> Result<Self::Connection, M::Error> {
        let unit = self.cap.take(|| self.make_room()).await;
        let flight = InFlight {
            kind: Kind::Dial,
            started: self.clock.now(),
        };
        let dialing = DropGuard::new(self, flight, cut_off);
        let dialed = self.inner.connect().await;
        dialing.disarm();
        match dialed {
            Ok(conn) => {
                self.health.success(Kind::Dial, false);
                Ok(Counted { conn, _unit: unit })
            }
            Err(error) => {
                self.failed(Kind::Dial, "dial failed");
                Err(error)
            }
        }
    }

    fn is_broken(&self, conn: &mut Self::Connection) -> bool {
        self.inner.is_broken(&mut conn.conn)
    }

    fn is_broken_batch(&self, conns: &mut [&mut Self::Connection]) -> Vec<bool> {
        let mut inner: Vec<&mut M::Connection> =
            conns.iter_mut().map(|counted| &mut counted.conn).collect();
        self.inner.is_broken_batch(&mut inner)
    }

    fn check_return(&self, conn: &mut Self::Connection) -> Result<(), CloseReason> {
        self.inner.check_return(&mut conn.conn)?;
        if self.health.is_ejected() || self.cap.has_waiters() {
            return Err(CloseReason::Evicted);
        }
        Ok(())
    }

    fn needs_recycle(&self, conn: &mut Self::Connection) -> bool {
        self.inner.needs_recycle(&mut conn.conn)
    }

    async fn recycle(&self, conn: &mut Self::Connection) -> Result<(), M::Error> {
        self.inner.recycle(&mut conn.conn).await
    }

    async fn ping(&self, conn: &mut Self::Connection) -> Result<(), M::Error> {
        let flight = InFlight {
            kind: Kind::Use,
            started: self.clock.now(),
        };
        let pinging = DropGuard::new(self, flight, cut_off);
        let result = self.inner.ping(&mut conn.conn).await;
        pinging.disarm();
        match &result {
            Ok(()) => {
                self.health.success(Kind::Use, false);
            }
            Err(_) => self.failed(Kind::Use, "health check failed"),
        }
        result
    }

    fn classify(&self, error: &M::Error) -> ErrorClass {
        self.inner.classify(error)
    }

    fn endpoint(&self) -> Option<String> {
        Some(self.endpoint.to_string())
    }

    fn tls_handshakes(&self) -> Option<crate::TlsHandshakes> {
        self.inner.tls_handshakes()
    }

    fn idle_watcher(&self) -> Option<&dyn IdleWatcher<Self::Connection>> {
        self.inner.idle_watcher().map(|_| self as _)
    }

    fn close(&self, conn: Self::Connection, reason: CloseReason) {
        let Counted { conn, _unit } = conn;
        self.inner.close(conn, reason);
    }
}

/// A sub-pool's hooks: the multi-endpoint pool's, each given the
/// connection inside the member's (shared by every sub-pool).
pub(crate) fn member_hooks<M: Manager>(hooks: &Arc<Hooks<M>>) -> Hooks<Member<M>> {
    let mut member = Hooks::default();
    if hooks.after_connect.is_some() {
        let hooks = Arc::clone(hooks);
        member.after_connect = Some(async_hook::<M>(move |conn| match &hooks.after_connect {
            Some(hook) => hook(&mut conn.conn),
            None => Box::pin(std::future::ready(Ok(()))),
        }));
    }
    if hooks.before_checkout.is_some() {
        let hooks = Arc::clone(hooks);
        member.before_checkout = Some(Box::new(move |conn: &mut Counted<M::Connection>| {
            hooks
                .before_checkout
                .as_ref()
                .map_or(Ok(()), |hook| hook(&mut conn.conn))
        }));
    }
    if hooks.on_return.is_some() {
        let hooks = Arc::clone(hooks);
        member.on_return = Some(Box::new(move |conn: &mut Counted<M::Connection>| {
            hooks
                .on_return
                .as_ref()
                .map_or(Ok(()), |hook| hook(&mut conn.conn))
        }));
    }
    member
}

/// Boxes an asynchronous hook over a member's connection (the bound makes
/// the closure's signature hold for every borrow).
fn async_hook<M: Manager>(
    hook: impl for<'a> Fn(&'a mut Counted<M::Connection>) -> HookFuture<'a, M::Error>
    + Send
    + Sync
    + 'static,
) -> AsyncHook<Member<M>> {
    Box::new(hook)
}

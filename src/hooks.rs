//! Hooks: a service's own code at three points of a connection's life,
//! added to any manager from the builder, without writing a manager.
//!
//! - [`after_connect`](crate::Builder::after_connect) (async) prepares a
//!   new connection (`AUTH`, `SELECT 2`, `SET search_path`). It is part of
//!   the dial: it runs within `create_timeout`, and an error is a failed
//!   dial (classified by the manager, backed off, counted in
//!   `connect_errors`).
//! - [`before_checkout`](crate::Builder::before_checkout) vets an idle
//!   connection before it is handed out. An error closes it
//!   ([`CloseReason::Rejected`](crate::CloseReason::Rejected)) and the get
//!   moves on to another connection or a dial; the caller sees no error.
//! - [`on_return`](crate::Builder::on_return) vets a connection given back.
//!   An error closes it ([`CloseReason::Rejected`](crate::CloseReason::Rejected))
//!   instead of keeping it idle.
//!
//! The checkout and return hooks are synchronous: they run on the checkout
//! fast path (and in `try_get` and `Drop`, which cannot wait). Work that
//! needs a round trip belongs in `after_connect` or the manager's `ping`,
//! which runs on connections idle past `ping_after`.
//!
//! A hook that panics is handled like a panicking manager: the connection
//! is dropped, its slot freed, and the panic goes on to the caller that
//! triggered it (or, on a background refill, is caught, counted in
//! `manager_panics` and logged).

use std::future::Future;
use std::pin::Pin;

use crate::manager::Manager;

/// The future an [`after_connect`](crate::Builder::after_connect) hook
/// returns: boxed, because the pool stores the hook, and `Send`, so a pool
/// whose manager is a [`SendManager`](crate::SendManager) keeps `Send` gets.
pub type HookFuture<'a, E> = Pin<Box<dyn Future<Output = Result<(), E>> + Send + 'a>>;

pub(crate) type AsyncHook<M> = Box<
    dyn for<'a> Fn(&'a mut <M as Manager>::Connection) -> HookFuture<'a, <M as Manager>::Error>
        + Send
        + Sync,
>;
pub(crate) type SyncHook<M> =
    Box<dyn Fn(&mut <M as Manager>::Connection) -> Result<(), <M as Manager>::Error> + Send + Sync>;

/// The hooks one pool runs; none by default.
pub(crate) struct Hooks<M: Manager> {
    pub(crate) after_connect: Option<AsyncHook<M>>,
    pub(crate) before_checkout: Option<SyncHook<M>>,
    pub(crate) on_return: Option<SyncHook<M>>,
}

impl<M: Manager> Default for Hooks<M> {
    fn default() -> Self {
        Hooks {
            after_connect: None,
            before_checkout: None,
            on_return: None,
        }
    }
}

impl<M: Manager> std::fmt::Debug for Hooks<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("after_connect", &self.after_connect.is_some())
            .field("before_checkout", &self.before_checkout.is_some())
            .field("on_return", &self.on_return.is_some())
            .finish()
    }
}

impl<M: Manager> Hooks<M> {
    /// The manager's connect followed by the `after_connect` hook: one dial.
    /// A connection the hook refuses is handed to `Manager::close` (it was
    /// never the pool's, so no close is counted) and the hook's error is
    /// the dial's.
    pub(crate) async fn connect(&self, manager: &M, pool: &str) -> Result<M::Connection, M::Error> {
        let mut conn = manager.connect().await?;
        if let Some(hook) = &self.after_connect
            && let Err(error) = hook(&mut conn).await
        {
            tracing::debug!(pool, %error, "after_connect hook refused a new connection");
            close_unowned(manager, conn, pool);
            return Err(error);
        }
        Ok(conn)
    }
}

/// Logs a synchronous hook's refusal (`before_checkout` at `point`
/// "checkout", `on_return` at "return") with the pool's and endpoint's
/// names; the caller closes the connection. Out of line: the names are
/// read only when a hook refuses.
#[cold]
#[inline(never)]
pub(crate) fn refused<M: Manager>(
    (pool, endpoint): (&str, &str),
    point: &'static str,
    error: &M::Error,
) {
    tracing::debug!(pool = %pool, endpoint = %endpoint, point, %error, "a hook refused a connection");
}

/// Closes a connection the pool never counted as its own; a panicking
/// `close` is logged, the connection having been dropped by the unwinding.
fn close_unowned<M: Manager>(manager: &M, conn: M::Connection, pool: &str) {
    let close =
        std::panic::AssertUnwindSafe(|| manager.close(conn, crate::manager::CloseReason::Rejected));
    if std::panic::catch_unwind(close).is_err() {
        tracing::error!(pool, "Manager::close panicked; the connection was dropped");
    }
}

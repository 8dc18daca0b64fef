//! The contract between a shared pool and what makes its connections.

use std::future::Future;

/// Makes connections that carry several requests at once, for a
/// [`SharedPool`](super::SharedPool).
///
/// The pool lends one connection to many callers at once, up to what
/// [`capacity`](SharedManager::capacity) says, and stops lending it once
/// [`is_open`](SharedManager::is_open) says no. Both are asked outside the
/// pool's locks, on every checkout, so they must be cheap and must not
/// block; a panic in either propagates to the caller of `get` and leaks
/// nothing (the request's place is given back as the stack unwinds).
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use ringpool::shared::SharedManager;
///
/// /// A stand-in for a multiplexed connection.
/// struct Link {
///     open: AtomicBool,
/// }
///
/// struct Links;
///
/// impl SharedManager for Links {
///     type Connection = Link;
///     type Error = std::io::Error;
///
///     async fn connect(&self) -> Result<Link, std::io::Error> {
///         Ok(Link { open: AtomicBool::new(true) })
///     }
///     fn capacity(&self, _link: &Link) -> usize {
///         16
///     }
///     fn is_open(&self, link: &Link) -> bool {
///         link.open.load(Ordering::Acquire)
///     }
/// }
/// ```
pub trait SharedManager: Send + Sync + 'static {
    /// What the pool lends: shared by every request on it, so `Sync`.
    type Connection: Send + Sync + 'static;
    /// What `connect` fails with.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Opens a new connection.
    fn connect(&self) -> impl Future<Output = Result<Self::Connection, Self::Error>> + Send;

    /// How many requests `conn` may carry at once now: for HTTP/2, the
    /// server's `SETTINGS_MAX_CONCURRENT_STREAMS` as it stands. The pool
    /// caps it with its `max_streams` setting.
    fn capacity(&self, conn: &Self::Connection) -> usize;

    /// Whether `conn` takes new requests: `false` once the server is
    /// closing it (HTTP/2 `GOAWAY`) or it broke. A connection that says no
    /// drains: its requests in flight finish, then it is dropped.
    fn is_open(&self, _conn: &Self::Connection) -> bool {
        true
    }
}

//! The contract between the pool and whatever makes its connections.

use std::future::Future;

/// Whether a connect error is worth retrying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorClass {
    /// The target may come back (refused, reset, timed out): the pool backs
    /// off and dials again while gets wait.
    Retryable,
    /// Retrying cannot help (bad credentials, protocol mismatch): waiting
    /// gets fail at once with this error.
    Fatal,
}

/// Why the pool closed a connection; each reason has its own counter in
/// [`Stats`](crate::Stats).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The liveness check or a ping found it dead, or it was returned in a
    /// state that cannot be reused.
    Broken,
    /// It sat idle longer than `idle_timeout`.
    IdleTimeout,
    /// It outlived its (jittered) `max_lifetime`.
    Lifetime,
    /// `max_size` was lowered below the number of connections.
    Resize,
    /// Its user called [`Pooled::discard`](crate::Pooled::discard).
    Discarded,
    /// It was given back mid-request (an operation left pending, a reply
    /// not read), so its next user could read someone else's reply.
    Abandoned,
    /// [`Pool::retain`](crate::Pool::retain) evicted it.
    Evicted,
    /// A `before_checkout` or `on_return` hook refused it (see
    /// [`hooks`](crate::hooks)).
    Rejected,
    /// The pool was closed or dropped.
    PoolClosed,
}

/// Makes, checks and closes connections for a [`Pool`](crate::Pool).
///
/// The futures it returns need not be `Send`: a manager for a thread-per-core
/// runtime (tokio-uring) works as it is. When they are `Send`, so are the
/// pool's `get` futures.
///
/// # Examples
///
/// ```
/// use ringpool::Manager;
///
/// struct Numbers;
///
/// impl Manager for Numbers {
///     type Connection = u64;
///     type Error = std::io::Error;
///
///     async fn connect(&self) -> Result<u64, std::io::Error> {
///         Ok(42)
///     }
/// }
/// ```
pub trait Manager: Send + Sync + 'static {
    /// What the pool hands out. `Send`, because idle connections are shared
    /// by every thread that uses the pool and closed by whichever thread
    /// finds them expired.
    type Connection: Send + 'static;
    /// What `connect` and `ping` fail with.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Opens a new connection.
    fn connect(&self) -> impl Future<Output = Result<Self::Connection, Self::Error>>;

    /// Cheap synchronous liveness check run at checkout (for TCP: a
    /// non-blocking peek). `true` means the connection is dead; it is closed
    /// and the get moves on without the caller seeing an error.
    fn is_broken(&self, _conn: &mut Self::Connection) -> bool {
        false
    }

    /// The liveness check of many idle connections at once, used by
    /// background maintenance; `result[i]` is `true` when `conns[i]` is
    /// dead. The default runs [`is_broken`](Manager::is_broken) on each; the
    /// TCP manager checks them all in one io_uring submission.
    fn is_broken_batch(&self, conns: &mut [&mut Self::Connection]) -> Vec<bool> {
        conns.iter_mut().map(|conn| self.is_broken(conn)).collect()
    }

    /// Whether a connection given back to the pool may be reused. Must not
    /// block or do I/O; `false` closes it with [`CloseReason::Broken`].
    fn can_recycle(&self, _conn: &mut Self::Connection) -> bool {
        true
    }

    /// Why a connection given back may not be reused, if it may not: the
    /// reason it is closed with. The default asks
    /// [`can_recycle`](Manager::can_recycle) and answers
    /// [`CloseReason::Broken`] when it says no. A manager whose connections
    /// know they were given back mid-request answers
    /// [`CloseReason::Abandoned`]. Must not block or do I/O.
    fn check_return(&self, conn: &mut Self::Connection) -> Result<(), CloseReason> {
        match self.can_recycle(conn) {
            true => Ok(()),
            false => Err(CloseReason::Broken),
        }
    }

    /// Protocol-level health check used by health checks (for Redis, `PING`).
    fn ping(&self, _conn: &mut Self::Connection) -> impl Future<Output = Result<(), Self::Error>> {
        std::future::ready(Ok(()))
    }

    /// Classifies a connect error. Everything is retryable by default.
    fn classify(&self, _error: &Self::Error) -> ErrorClass {
        ErrorClass::Retryable
    }

    /// What this manager connects to (for TCP, the target as given), for
    /// the pool's logs and metrics: every event the pool emits carries it
    /// as the `endpoint` field. `None` (the default) leaves it empty.
    fn endpoint(&self) -> Option<String> {
        None
    }

    /// Closes a connection the pool is done with. Dropping it is the default.
    ///
    /// Background expiry calls it from the clock's timer thread, so it must
    /// not block for long (the TCP manager hands the close to io_uring).
    fn close(&self, conn: Self::Connection, _reason: CloseReason) {
        drop(conn);
    }
}

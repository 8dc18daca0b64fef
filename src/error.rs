//! What a checkout can fail with.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Why a checkout failed. `E` is the manager's connect error.
#[derive(Debug, thiserror::Error)]
pub enum Error<E: std::error::Error + 'static> {
    /// No connection became available within the acquire timeout.
    #[error("{0}")]
    Timeout(TimeoutError<E>),
    /// Dialing failed with an error the manager classified as fatal.
    #[error("connect failed (fatal, not retried): {0}")]
    Connect(#[source] Arc<E>),
    /// The target is down: the breaker opened after consecutive dial
    /// failures and no idle connection was available.
    #[error("{0}")]
    Unavailable(UnavailableError<E>),
    /// The pool is closed.
    #[error("the pool is closed: close() or drain() was called, or its last handle was dropped")]
    Closed,
    /// `try_get` found no idle connection it could take without waiting.
    #[error(
        "no idle connection available without waiting (size {size}, in use {in_use}, waiting {waiting}, max_size {max_size})"
    )]
    Exhausted {
        /// Connections owned by the pool.
        size: usize,
        /// Connections checked out.
        in_use: usize,
        /// Gets queued for a connection.
        waiting: usize,
        /// The pool's bound.
        max_size: usize,
    },
}

impl<E: std::error::Error + 'static> Error<E> {
    /// Whether this is an acquire timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout(_))
    }
}

/// Why the breaker refused to dial.
#[derive(Debug)]
pub struct UnavailableError<E> {
    /// Dials that failed in a row.
    pub consecutive_failures: u32,
    /// When the breaker lets the next probe dial through.
    pub retry_in: Duration,
    /// The most recent connect error.
    pub last_connect_error: Option<Arc<E>>,
}

impl<E: fmt::Display> fmt::Display for UnavailableError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "target unavailable: {} dials failed in a row, so the pool fails fast; the next probe dial is in {:?}",
            self.consecutive_failures, self.retry_in
        )?;
        match &self.last_connect_error {
            Some(error) => write!(f, "; last connect error: {error}"),
            None => Ok(()),
        }
    }
}

/// The state of the pool when an acquire timed out.
#[derive(Debug)]
pub struct TimeoutError<E> {
    /// How long the get waited.
    pub waited: Duration,
    /// Connections owned by the pool at that moment.
    pub size: usize,
    /// Connections checked out at that moment.
    pub in_use: usize,
    /// Gets queued at that moment (this one included).
    pub waiting: usize,
    /// The pool's bound.
    pub max_size: usize,
    /// The most recent connect error, if any dial has failed.
    pub last_connect_error: Option<Arc<E>>,
}

impl<E: fmt::Display> fmt::Display for TimeoutError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {:?} waiting for a connection (size {}, in use {}, waiting {}, max_size {})",
            self.waited, self.size, self.in_use, self.waiting, self.max_size
        )?;
        match &self.last_connect_error {
            Some(error) => write!(f, "; last connect error: {error}"),
            None => Ok(()),
        }
    }
}

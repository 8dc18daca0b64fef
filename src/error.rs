//! What a checkout can fail with.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Why a checkout failed. `E` is the manager's connect error.
///
/// Each error's `Display` says what happened to the checkout; the connect
/// error behind it, if any, is its [`source`](std::error::Error::source),
/// so a report that walks the chain prints each cause once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error<E: std::error::Error + 'static> {
    /// No connection became available within the acquire timeout.
    #[error(transparent)]
    Timeout(TimeoutError<E>),
    /// Dialing failed with an error the manager classified as fatal.
    #[error("connect failed (fatal, not retried)")]
    Connect(#[source] Arc<E>),
    /// The target is down: the breaker opened after consecutive dial
    /// failures and no idle connection was available.
    #[error(transparent)]
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

    /// The connect error behind this one, if a dial failed.
    pub fn connect_error(&self) -> Option<&E> {
        match self {
            Error::Connect(error) => Some(error),
            Error::Timeout(timeout) => timeout.last_connect_error.as_deref(),
            Error::Unavailable(unavailable) => unavailable.last_connect_error.as_deref(),
            _ => None,
        }
    }
}

fn as_source<E: std::error::Error + 'static>(
    error: &Option<Arc<E>>,
) -> Option<&(dyn std::error::Error + 'static)> {
    error
        .as_deref()
        .map(|error| error as &(dyn std::error::Error + 'static))
}

/// Why the breaker refused to dial.
#[derive(Debug)]
#[non_exhaustive]
pub struct UnavailableError<E> {
    /// Dials that failed in a row.
    pub consecutive_failures: u32,
    /// When the breaker lets the next probe dial through.
    pub retry_in: Duration,
    /// The most recent connect error.
    pub last_connect_error: Option<Arc<E>>,
}

impl<E> fmt::Display for UnavailableError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "target unavailable: {} dials failed in a row, so the pool fails fast; the next probe dial is in {:?}",
            self.consecutive_failures, self.retry_in
        )
    }
}

/// The last connect error is the source.
impl<E: std::error::Error + 'static> std::error::Error for UnavailableError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        as_source(&self.last_connect_error)
    }
}

/// The state of the pool when an acquire timed out.
#[derive(Debug)]
#[non_exhaustive]
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
    /// New connections that died young in a row (the target accepts
    /// connections and drops them): while not 0, dials are paced.
    pub young_deaths_in_a_row: u32,
}

impl<E> fmt::Display for TimeoutError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {:?} waiting for a connection (size {}, in use {}, waiting {}, max_size {})",
            self.waited, self.size, self.in_use, self.waiting, self.max_size
        )?;
        if self.last_connect_error.is_some() {
            write!(f, "; dials are failing (see the source error)")?;
        }
        if self.young_deaths_in_a_row != 0 {
            write!(
                f,
                "; {} new connections in a row were dropped soon after they were made (a server at its client limit does this), so dials are paced",
                self.young_deaths_in_a_row
            )?;
        }
        Ok(())
    }
}

/// The last connect error, if any dial failed, is the source.
impl<E: std::error::Error + 'static> std::error::Error for TimeoutError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        as_source(&self.last_connect_error)
    }
}

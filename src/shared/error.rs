//! What a shared checkout can fail with.

use std::sync::Arc;
use std::time::Duration;

/// Why a [`SharedPool::get`](super::SharedPool::get) failed. `E` is the
/// manager's connect error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SharedError<E: std::error::Error + 'static> {
    /// No connection had room within the acquire timeout, and the pool
    /// could not dial another (it owns `max_size` open connections, or
    /// dials in flight already promise room for every caller queued).
    #[error(
        "no connection had room within {waited:?} ({open} open, {in_flight} requests in flight, {waiting} callers queued){}",
        advice(*failed_dials)
    )]
    #[non_exhaustive]
    Timeout {
        /// How long the get waited.
        waited: Duration,
        /// Open connections (not draining) when it gave up.
        open: usize,
        /// Requests in flight on all connections.
        in_flight: usize,
        /// Callers queued.
        waiting: usize,
        /// Dials that had failed in a row: new dials were waiting out
        /// their backoff.
        failed_dials: u32,
    },
    /// The dial this get made failed.
    #[error("connect failed")]
    Connect(#[source] Arc<E>),
    /// The dial this get made did not finish within `connect_timeout` (or
    /// what was left of the acquire timeout).
    #[error("connect timed out after {0:?}; is the server up and reachable?")]
    ConnectTimeout(Duration),
    /// The breaker is open: dials failed `breaker_threshold` times in a
    /// row, so a get that needs a new connection fails at once; its source
    /// is the last connect error.
    #[error(transparent)]
    Unavailable(crate::UnavailableError<E>),
    /// A set of pools has no endpoint: discovery found none yet, or every
    /// endpoint's manager failed to be made.
    #[error("no endpoint to send to: the set is empty; give it endpoints or check discovery")]
    NoEndpoints,
}

fn advice(failed_dials: u32) -> String {
    match failed_dials {
        0 => "; raise max_size or max_streams, or acquire_timeout".to_string(),
        n => format!(
            "; the last {n} dials failed, so new dials wait out a backoff: is the server up and reachable?"
        ),
    }
}

impl<E: std::error::Error + 'static> SharedError<E> {
    /// Whether another endpoint may serve what this one could not: it
    /// could not be reached (a failed or timed-out dial, the breaker).
    pub(crate) fn fails_over(&self) -> bool {
        matches!(
            self,
            SharedError::Connect(_) | SharedError::ConnectTimeout(_) | SharedError::Unavailable(_)
        )
    }

    /// Whether the get gave up waiting (for room or for a dial).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            SharedError::Timeout { .. } | SharedError::ConnectTimeout(_)
        )
    }
}

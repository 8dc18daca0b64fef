//! What a checkout from a multi-endpoint pool can fail with.

use std::time::Duration;

use super::endpoint::Endpoint;
use crate::error::Error;

/// Why a [`MultiPool`](super::MultiPool) checkout failed. `E` is the
/// manager's connect error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MultiError<E: std::error::Error + 'static> {
    /// The endpoint set is empty.
    #[error(
        "the pool has no endpoints: give it some with set_endpoints(), or check that discovery finds the service"
    )]
    NoEndpoints,
    /// Every endpoint is ejected and none is due its probe.
    #[error(
        "all {ejected} endpoints are ejected after repeated failures; the next probe is in {retry_in:?} (check that the service's backends are up)"
    )]
    AllEjected {
        /// Endpoints in the set, all ejected.
        ejected: usize,
        /// When the first ejection ends.
        retry_in: Duration,
    },
    /// Every endpoint the get tried failed; `error` is the last one's.
    #[error("{tried} endpoint(s) tried, none could serve; the last, {endpoint}, failed")]
    Failed {
        /// How many endpoints were tried.
        tried: usize,
        /// The last endpoint tried.
        endpoint: Endpoint,
        /// Its error.
        #[source]
        error: Error<E>,
    },
    /// The pool is closed.
    #[error("the multi-endpoint pool is closed: close() was called")]
    Closed,
}

impl<E: std::error::Error + 'static> MultiError<E> {
    /// Whether the get ran out of time (its last endpoint's acquire
    /// timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use ringpool::multi::MultiError;
    ///
    /// let error: MultiError<std::io::Error> = MultiError::NoEndpoints;
    /// assert!(!error.is_timeout());
    /// assert!(error.to_string().contains("no endpoints"));
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, MultiError::Failed { error, .. } if error.is_timeout())
    }
}

/// An endpoint left out of the set because the factory could not make its
/// manager (it returned an error, or panicked); listed in
/// [`SetChange::failed`](super::SetChange::failed).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "could not make the manager for endpoint {endpoint}: {reason}; the endpoint is left out and tried again at the next update that lists it (check its address and the factory)"
)]
#[non_exhaustive]
pub struct FactoryError {
    /// The endpoint left out.
    pub endpoint: Endpoint,
    /// What the factory said (its error and their sources, or its panic's
    /// message).
    pub reason: String,
}

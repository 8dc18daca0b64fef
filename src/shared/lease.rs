//! One request's place on a shared connection.

use std::fmt;
use std::ops::Deref;

use super::manager::SharedManager;
use super::table::{DrainCause, Grant};

/// One request's place on a shared connection; the place is given back
/// when it is dropped. It owns its share of the connection, so it can move
/// into a response body that outlives the call that made it.
pub struct Lease<M: SharedManager> {
    grant: Grant<M::Connection>,
}

impl<M: SharedManager> Lease<M> {
    pub(super) fn new(grant: Grant<M::Connection>) -> Self {
        Lease { grant }
    }

    /// The connection's id within its pool (for logs and tests).
    pub fn connection_id(&self) -> u64 {
        self.grant.entry().id
    }

    /// Stops new requests on this connection: the server is closing it, or
    /// it broke. Requests in flight on it finish; then it is dropped, and
    /// callers that need room get a new one.
    pub fn drain(&self) {
        self.grant.drain(DrainCause::Closed);
    }
}

impl<M: SharedManager> Deref for Lease<M> {
    type Target = M::Connection;

    fn deref(&self) -> &M::Connection {
        &self.grant.entry().conn
    }
}

impl<M: SharedManager> fmt::Debug for Lease<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("connection_id", &self.connection_id())
            .finish_non_exhaustive()
    }
}

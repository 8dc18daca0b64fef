//! The connection a multi-endpoint checkout hands out.

use std::ops::{Deref, DerefMut};

use super::endpoint::Endpoint;
use super::member::Member;
use crate::checkout::Pooled;
use crate::manager::{CloseReason, Manager};

/// A connection checked out of a [`MultiPool`](super::MultiPool), to the
/// endpoint [`endpoint`](MultiPooled::endpoint) names. Dereferences to the
/// connection; dropping it gives the connection back to that endpoint's
/// sub-pool (or closes it, if the endpoint has left the set or is ejected).
///
/// It holds its own handle to the sub-pool, so it can be moved into a
/// spawned task or kept in a struct.
pub struct MultiPooled<M: Manager> {
    conn: Pooled<'static, Member<M>>,
    endpoint: Endpoint,
}

impl<M: Manager> MultiPooled<M> {
    pub(crate) fn new(conn: Pooled<'static, Member<M>>, endpoint: Endpoint) -> Self {
        MultiPooled { conn, endpoint }
    }

    /// The endpoint this connection goes to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Closes the connection instead of returning it (for example after a
    /// protocol error left it in an unknown state).
    pub fn discard(self) {
        self.conn.close(CloseReason::Discarded);
    }

    /// How long ago the connection was dialed.
    pub fn age(&self) -> std::time::Duration {
        self.conn.age()
    }
}

impl<M: Manager> Deref for MultiPooled<M> {
    type Target = M::Connection;

    #[inline]
    fn deref(&self) -> &M::Connection {
        &self.conn.conn
    }
}

impl<M: Manager> DerefMut for MultiPooled<M> {
    #[inline]
    fn deref_mut(&mut self) -> &mut M::Connection {
        &mut self.conn.conn
    }
}

impl<M: Manager> std::fmt::Debug for MultiPooled<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiPooled")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

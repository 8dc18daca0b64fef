//! The connection a multi-endpoint checkout hands out.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use super::endpoint::Endpoint;
use super::member::Member;
use super::node::Node;
use crate::checkout::Pooled;
use crate::manager::{CloseReason, Manager};
use crate::sync::{Ordering, fence};

/// A connection checked out of a [`MultiPool`](super::MultiPool), to the
/// endpoint [`endpoint`](MultiPooled::endpoint) names. Dereferences to the
/// connection; dropping it gives the connection back to that endpoint's
/// sub-pool (or closes it, if the endpoint has left the set or is ejected).
///
/// It holds its own handle to the sub-pool, so it can be moved into a
/// spawned task or kept in a struct.
pub struct MultiPooled<M: Manager> {
    // Declared first: dropped (returned) before `node` re-checks.
    conn: Pooled<'static, Member<M>>,
    node: Returned<M>,
}

/// The endpoint a guard's connection goes back to. Dropped after the
/// connection went back: if the endpoint was ejected meanwhile, the
/// connection may have landed idle after the ejection closed its idle
/// connections, so they are closed again here.
///
/// The two sides of that race each fence (`SeqCst`) between their write
/// and their read: the returner pushes the connection, fences, reads the
/// ejection; the ejector sets the ejection, fences, then closes what is
/// idle (`Shared::failed`). Both reads cannot miss both writes, so either
/// the ejector closes the connection or this drop sees the ejection.
struct Returned<M: Manager>(Arc<Node<M>>);

impl<M: Manager> Drop for Returned<M> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        fence(Ordering::SeqCst);
        if self.0.health.is_ejected() {
            self.0.pool.retain(|_| false);
        }
    }
}

impl<M: Manager> MultiPooled<M> {
    pub(crate) fn new(conn: Pooled<'static, Member<M>>, node: Arc<Node<M>>) -> Self {
        MultiPooled {
            conn,
            node: Returned(node),
        }
    }

    /// The endpoint this connection goes to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.node.0.endpoint
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
            .field("endpoint", self.endpoint())
            .finish_non_exhaustive()
    }
}

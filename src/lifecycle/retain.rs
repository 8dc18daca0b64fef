//! Evicting idle connections by a predicate (after a failover, a
//! credentials rotation, a topology change).

use crate::core::entry::Entry;
use crate::drop_guard::{DropGuard, Unwinding};
use crate::manager::{CloseReason, Manager};
use crate::pool::Pool;
use crate::pool::handoff::reinsert_watched;
use crate::pool::inner::Inner;
use crate::pool::release::close_and_release;

fn give_back<M: Manager>(inner: &Inner<M>, entry: Entry<M::Connection>, _: Unwinding) {
    // Never out of the manager's idle watch: back as it was.
    reinsert_watched(inner, entry);
}

impl<M: Manager> Pool<M> {
    /// Closes every idle connection for which `keep` returns `false`, and
    /// returns how many it closed (counted as
    /// [`ClosedCounts::evicted`](crate::ClosedCounts::evicted)).
    /// Connections in use are not seen; to retire those too, lower
    /// `max_lifetime` with [`reconfigure`](Pool::reconfigure), which reaches
    /// them at their return. If `keep` panics, the connections it had not
    /// judged go back as they were and the panic reaches the caller.
    ///
    /// # Examples
    ///
    /// ```
    /// # use ringpool::{Manager, Pool};
    /// # struct Numbers;
    /// # impl Manager for Numbers {
    /// #     type Connection = u64;
    /// #     type Error = std::io::Error;
    /// #     async fn connect(&self) -> Result<u64, std::io::Error> { Ok(7) }
    /// # }
    /// let pool = Pool::builder(Numbers).build().unwrap();
    /// drop(pool.get_blocking().unwrap());
    /// assert_eq!(pool.retain(|conn| *conn != 7), 1);
    /// assert_eq!(pool.status().size, 0);
    /// ```
    pub fn retain(&self, mut keep: impl FnMut(&M::Connection) -> bool) -> usize {
        let inner = &*self.inner;
        let mut closed = 0;
        let mut pass = crate::pool::pass::IdlePass::new(inner);
        for _ in 0..inner.core.idle.len() {
            let Some(entry) = pass.take() else { break };
            let judged = DropGuard::new(inner, entry, give_back);
            if keep(&judged.conn) {
                // Back at once, where the pass keeps the store's order.
                drop(judged);
            } else {
                close_and_release(inner, judged.disarm(), CloseReason::Evicted);
                closed += 1;
            }
        }
        closed
    }
}

//! A pass over the idle store for the pool's own sweeps (expiry, the idle
//! watch's reap, health checks, `retain`), which publishes what the pass
//! moved when it ends.

use crate::core::idle_store::Pass;
use crate::manager::Manager;
use crate::pool::inner::Inner;
use crate::pool::release::carry_out;

/// [`Pass`] over `inner`'s idle store: take entries with `take`, close them
/// or put them back with `reinsert_watched` / `reinsert` at once.
pub(crate) struct IdlePass<'a, M: Manager> {
    inner: &'a Inner<M>,
    pass: Pass<'a, crate::core::entry::Entry<M::Connection>>,
}

impl<'a, M: Manager> IdlePass<'a, M> {
    pub(crate) fn new(inner: &'a Inner<M>) -> Self {
        IdlePass {
            inner,
            pass: inner.core.idle.pass(),
        }
    }

    /// The next entry of the pass, if any is left.
    pub(crate) fn take(&mut self) -> Option<crate::core::entry::Entry<M::Connection>> {
        self.pass.take()
    }
}

impl<M: Manager> Drop for IdlePass<'_, M> {
    fn drop(&mut self) {
        // Ends the pass: what it kept aside goes back onto the stack.
        if !self.pass.finish() {
            return;
        }
        // Those entries were out of the store for a moment: the returner's
        // half of the handshake, for a waiter or a close that looked then
        // (pairs with `Waiters::register` and `lifecycle::close`).
        let then = self.inner.core.published();
        carry_out(self.inner, then);
    }
}

//! What a get holds between its await points: a connection or a slot,
//! given back if the get is dropped (or panics) before it is done.

use crate::core::waiters::Grant;
use crate::drop_guard::{DropGuard, Unwinding};
use crate::manager::Manager;
use crate::pool::handoff::give_back_grant;
use crate::pool::inner::Inner;
use crate::pool::release::close_after_panic;

/// A connection or slot held by a get; given back unless disarmed.
pub(crate) type Claim<'a, M> = DropGuard<'a, Inner<M>, Grant<<M as Manager>::Connection>>;

/// Arms a claim over `grant`.
#[inline]
pub(crate) fn claim<M: Manager>(inner: &Inner<M>, grant: Grant<M::Connection>) -> Claim<'_, M> {
    DropGuard::new(inner, grant, give_back)
}

fn give_back<M: Manager>(inner: &Inner<M>, grant: Grant<M::Connection>, unwinding: Unwinding) {
    match (grant, unwinding) {
        // A panic is in flight: no more user code (`can_recycle`) runs.
        (Grant::Conn(entry), Unwinding(true)) => close_after_panic(inner, entry, unwinding),
        (grant, _) => give_back_grant(inner, grant),
    }
}

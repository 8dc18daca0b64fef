//! What a get is given (a connection or a slot to dial into), and how a
//! wait ends.

use std::sync::Arc as StdArc;

use crate::core::entry::Entry;

/// What a waiter (or any get) holds the right to: an idle connection, or an
/// empty slot it may dial into.
pub(crate) enum Grant<C> {
    Conn(Entry<C>),
    Slot,
}

/// How a wait ended.
pub(crate) enum Outcome<C, E> {
    Granted(Grant<C>),
    /// A dial failed fatally with this error.
    Failed(StdArc<E>),
    /// The breaker opened: the target is down.
    Unavailable,
    Closed,
    TimedOut,
}

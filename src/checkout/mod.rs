//! Checkout: handing a connection to a caller.
//!
//! Owns: the public `get`, `get_blocking` and `try_get`, their lock-free
//! fast path (`fast`), the slow path that queues, dials and retries
//! (`slow`), waiting in the FIFO queue and its timeout sweep (`wait`), the
//! checks a connection passes on its way out (`validate`), the errors a
//! checkout fails with (`failure`), and the guard it returns
//! ([`Pooled`], in `guard`). May touch: the core (claims, handoff, the
//! waiter queue), the dial layer (a permit and a dial), the close policy,
//! stats and time.

pub(crate) mod claim;
pub(crate) mod failure;
mod fast;
pub(crate) mod guard;
mod slow;
pub(crate) mod validate;
mod wait;

pub use guard::Pooled;

//! Dialing: when a dial may start, and what its outcome does to the pool.
//!
//! Owns: the dial gate (backoff, breaker and its probe, dials in flight
//! against `max_concurrent_dials`, the pause of refills after a fatal
//! error), the permit a dial holds while in flight, and the dial itself
//! (`connect::dial`). May touch: the core (a dial's slot is a claim; a
//! finished dial publishes its capacity to waiters), the config, the
//! stats.
//!
//! Invariants: at most `max_concurrent_dials` dials are in flight; while
//! the breaker is open only one probe dial is in flight; no dial starts
//! before the gate reopens; a finished or abandoned dial lets waiters have
//! the capacity it held.

pub(crate) mod connect;
pub(crate) mod gate;
pub(crate) mod permit;

//! The life of connections and of the pool itself, beyond one checkout.
//!
//! Owns: the one close policy (`policy`: lifetime, idle timeout, what is
//! spare), housekeeping on the timer thread (`housekeeping`: warm size,
//! background expiry), the maintenance task (`maintenance`: refills, idle
//! checks, warm-up), the warm size and wake-ups (`warm`), leak detection
//! (`leak`), reconfiguration (`reconfigure`), eviction by a predicate
//! (`retain`), closing and draining (`close`), and the pool's half of a
//! manager's idle watch (`watch`). May touch: the core (handoff), the dial layer, the checkout's
//! validation (for pings), time and stats.

pub(crate) mod close;
pub(crate) mod housekeeping;
pub(crate) mod leak;
pub(crate) mod leak_ledger;
pub(crate) mod maintenance;
pub(crate) mod reap;
pub(crate) mod reconfigure;
pub(crate) mod retain;
pub(crate) mod warm;

pub use close::DrainReport;

//! The io_uring backend: one ring thread per process that dials and closes
//! sockets for every [`TcpManager`](crate::tcp::TcpManager) (`driver`, with
//! its operations and their `user_data` codec in `op`), a detection step
//! that explains why io_uring is unavailable and how to fix it (`probe`),
//! and the batched liveness check of idle connections in one submission
//! (`sweep`).
//!
//! Owns: rings, operations and the buffers the kernel sees. May touch:
//! nothing of the pool; the TCP layer calls it.

mod driver;
mod op;
mod probe;
mod submit;
mod sweep;
mod watch;

pub(crate) use driver::Driver;
pub(crate) use probe::multishot_poll;
pub use probe::{BackendError, probe};
pub(crate) use sweep::peek_all;
pub(crate) use watch::{WatchCell, WatchSink};

//! The io_uring backend: one ring thread per process that dials and closes
//! sockets for every [`TcpManager`](crate::tcp::TcpManager), a detection step
//! that explains why io_uring is unavailable and how to fix it, and the bulk
//! liveness checks of idle connections (one io_uring submission, one
//! `poll(2)` call, or one `recv` each; see `TcpOptions::idle_check`).

mod driver;
mod probe;
mod sweep;

pub(crate) use driver::Driver;
pub use probe::{BackendError, probe};
pub(crate) use sweep::{peek_all, peek_one as peek_says_broken_fd, poll_all};

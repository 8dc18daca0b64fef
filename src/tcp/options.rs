//! How the TCP manager dials, closes and checks connections.

use std::time::Duration;

/// How dials, closes and batched checks are done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// io_uring (Linux 5.19+, not blocked by seccomp).
    IoUring,
    /// Plain system calls. `connect` blocks the calling thread, so use it
    /// with `get_blocking` or the maintenance thread.
    Blocking,
}

/// How background maintenance checks many idle connections at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdleCheck {
    /// One `poll(2)` call over all of them with a zero timeout. The fastest
    /// measured here (see `docs/benchmarks.md`), so the default.
    Poll,
    /// One io_uring submission of non-blocking `MSG_PEEK` receives.
    IoUring,
    /// One non-blocking `MSG_PEEK` `recv` per connection.
    PerSocket,
}

/// Socket options applied to every new connection.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TcpOptions {
    /// Longest a dial may take. Default 1 s.
    pub connect_timeout: Duration,
    /// `TCP_NODELAY`. Default on: pooled connections carry small requests
    /// whose latency matters more than packet count.
    pub nodelay: bool,
    /// TCP keepalive idle time (`None`: the system default, usually off).
    pub keepalive: Option<Duration>,
    /// How maintenance checks idle connections in bulk. Default
    /// [`IdleCheck::Poll`].
    pub idle_check: IdleCheck,
}

impl Default for TcpOptions {
    fn default() -> Self {
        TcpOptions {
            connect_timeout: Duration::from_secs(1),
            nodelay: true,
            keepalive: None,
            idle_check: IdleCheck::Poll,
        }
    }
}

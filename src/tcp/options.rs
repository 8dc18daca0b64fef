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

/// How idle connections are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdleCheck {
    /// The idle watch, the default: a connection idle for
    /// [`TcpOptions::watch_after`] gets a multishot poll on io_uring for
    /// hang-up, error and unsolicited bytes, so when the peer closes or
    /// resets it the pool closes it and frees its slot at once, and
    /// maintenance sweeps nothing. Needs the io_uring backend and Linux
    /// 5.13 or newer (multishot poll); elsewhere the manager uses
    /// [`IdleCheck::Poll`] and logs why.
    Watch,
    /// Maintenance checks the idle connections due (after the pool's
    /// `check_after`) with one `poll(2)` call over all of them and a zero
    /// timeout: the fastest sweep measured here (see `docs/benchmarks.md`).
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
    /// How idle connections are checked. Default [`IdleCheck::Watch`].
    pub idle_check: IdleCheck,
    /// How long a connection stays idle before the idle watch arms a poll
    /// on it (rounded up to the ring's 25 ms tick; zero arms at once), so
    /// connections recycled within milliseconds never pay for the watch.
    /// Default 100 ms.
    pub watch_after: Duration,
}

impl Default for TcpOptions {
    fn default() -> Self {
        TcpOptions {
            connect_timeout: Duration::from_secs(1),
            nodelay: true,
            keepalive: None,
            idle_check: IdleCheck::Watch,
            watch_after: Duration::from_millis(100),
        }
    }
}

//! The TCP manager: dials a target with a timeout, sets socket options, and
//! checks liveness without reading a byte the protocol did not ask for.
//!
//! With [`Backend::IoUring`] (the default) dials and closes run on the
//! process's io_uring thread and the background check of idle connections
//! is one io_uring submission for all of them; [`Backend::Blocking`] uses
//! plain system calls, for hosts where io_uring is blocked. Both hand out the
//! same [`TcpConn`]: a `std::net::TcpStream` that an application drives from
//! any runtime (its raw descriptor, or ownership through
//! [`Pooled::detach`](crate::Pooled::detach)).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};

use crate::manager::{CloseReason, ErrorClass, Manager};
use crate::uring::{BackendError, Driver, peek_all, poll_all};

/// How dials, closes and batched checks are done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// io_uring (Linux 5.19+, not blocked by seccomp).
    IoUring,
    /// Plain system calls. `connect` blocks the calling thread, so use it
    /// with `get_blocking` or the maintenance thread.
    Blocking,
}

/// How background maintenance checks many idle connections at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

enum Engine {
    Uring(Driver),
    Blocking,
}

/// Makes TCP connections to one target for a [`Pool`](crate::Pool).
///
/// # Examples
///
/// ```no_run
/// use ringpool::Pool;
/// use ringpool::tcp::TcpManager;
///
/// let manager = TcpManager::new("127.0.0.1:6379")?; // fails with the cause if io_uring is blocked
/// let pool = Pool::builder(manager).max_size(32).build()?;
/// let conn = pool.get_blocking()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TcpManager {
    target: SocketAddr,
    options: TcpOptions,
    engine: Engine,
    ping: Option<ProtocolPing>,
}

/// A request the protocol itself defines as a health check, and its reply.
struct ProtocolPing {
    request: Vec<u8>,
    reply: Vec<u8>,
}

impl TcpManager {
    /// A manager for `target` on io_uring.
    ///
    /// # Errors
    ///
    /// [`BackendError`] if the address does not resolve or io_uring is
    /// unavailable; the error says why and how to fix it (or to fall back
    /// with [`TcpManager::with_backend`]).
    pub fn new(target: impl ToSocketAddrs) -> Result<Self, BackendError> {
        Self::with_backend(target, Backend::IoUring)
    }

    /// A manager for `target` on the chosen backend.
    ///
    /// # Errors
    ///
    /// As [`TcpManager::new`]; never an io_uring error for
    /// [`Backend::Blocking`].
    pub fn with_backend(
        target: impl ToSocketAddrs,
        backend: Backend,
    ) -> Result<Self, BackendError> {
        let target = target
            .to_socket_addrs()
            .map_err(BackendError::Address)?
            .next()
            .ok_or_else(|| {
                BackendError::Address(io::Error::other("the name resolved to no address"))
            })?;
        let engine = match backend {
            Backend::IoUring => Engine::Uring(Driver::get()?),
            Backend::Blocking => Engine::Blocking,
        };
        Ok(TcpManager {
            target,
            options: TcpOptions::default(),
            engine,
            ping: None,
        })
    }

    /// io_uring if it works here, else plain system calls (logged).
    pub fn with_best_backend(target: impl ToSocketAddrs + Clone) -> Result<Self, BackendError> {
        match Self::with_backend(target.clone(), Backend::IoUring) {
            Err(error @ (BackendError::Setup { .. } | BackendError::MissingOpcode { .. })) => {
                tracing::warn!(%error, "ringpool: falling back to blocking sockets");
                Self::with_backend(target, Backend::Blocking)
            }
            other => other,
        }
    }

    /// Replaces the socket options.
    pub fn options(mut self, options: TcpOptions) -> Self {
        self.options = options;
        self
    }

    /// Health-checks idle connections with a request the protocol defines
    /// and the exact reply it must get, for example Redis
    /// `ping_with(b"PING\r\n", b"+PONG\r\n")`. Maintenance sends it to
    /// connections idle longer than `check_after`, under a timeout of the
    /// connect timeout; a wrong or missing reply closes the connection.
    /// Without it, health checks only peek and never write a byte.
    pub fn ping_with(mut self, request: impl Into<Vec<u8>>, reply: impl Into<Vec<u8>>) -> Self {
        self.ping = Some(ProtocolPing {
            request: request.into(),
            reply: reply.into(),
        });
        self
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        match self.engine {
            Engine::Uring(_) => Backend::IoUring,
            Engine::Blocking => Backend::Blocking,
        }
    }

    /// Waits until every close this process submitted to the io_uring thread
    /// so far has completed (at once for [`Backend::Blocking`], whose closes
    /// are synchronous). For an orderly shutdown, and for tests that count
    /// descriptors.
    pub async fn wait_for_closes(&self) {
        if let Engine::Uring(driver) = &self.engine {
            driver.barrier().await;
        }
    }

    /// The target address.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    fn configure(&self, stream: TcpStream) -> io::Result<TcpConn> {
        stream.set_nodelay(self.options.nodelay)?;
        if let Some(idle) = self.options.keepalive {
            SockRef::from(&stream).set_tcp_keepalive(&TcpKeepalive::new().with_time(idle))?;
        }
        Ok(TcpConn { stream })
    }
}

impl Manager for TcpManager {
    type Connection = TcpConn;
    type Error = io::Error;

    async fn connect(&self) -> io::Result<TcpConn> {
        let stream = match &self.engine {
            Engine::Uring(driver) => {
                let fd: OwnedFd = driver
                    .connect(self.target, self.options.connect_timeout)
                    .await?;
                TcpStream::from(fd)
            }
            Engine::Blocking => {
                TcpStream::connect_timeout(&self.target, self.options.connect_timeout)?
            }
        };
        self.configure(stream)
    }

    /// The protocol ping set with [`TcpManager::ping_with`], if any: write
    /// the request, read exactly the expected reply, under the connect
    /// timeout.
    async fn ping(&self, conn: &mut TcpConn) -> io::Result<()> {
        let Some(ping) = &self.ping else {
            return Ok(());
        };
        let stream = &mut conn.stream;
        let limit = Some(self.options.connect_timeout);
        stream.set_read_timeout(limit)?;
        stream.set_write_timeout(limit)?;
        let outcome = (|| {
            stream.write_all(&ping.request)?;
            let mut reply = vec![0u8; ping.reply.len()];
            stream.read_exact(&mut reply)?;
            match reply == ping.reply {
                true => Ok(()),
                false => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "ping reply {:?}, expected {:?}",
                        String::from_utf8_lossy(&reply),
                        String::from_utf8_lossy(&ping.reply)
                    ),
                )),
            }
        })();
        stream.set_read_timeout(None)?;
        stream.set_write_timeout(None)?;
        outcome
    }

    /// A non-blocking one-byte `MSG_PEEK`: end of file, a reset, an error or
    /// unread bytes (a reply nobody asked for) all mean broken. Nothing is
    /// written and nothing is consumed.
    fn is_broken(&self, conn: &mut TcpConn) -> bool {
        crate::uring::peek_says_broken_fd(conn.as_raw_fd())
    }

    fn is_broken_batch(&self, conns: &mut [&mut TcpConn]) -> Vec<bool> {
        let fds: Vec<RawFd> = conns.iter().map(|conn| conn.as_raw_fd()).collect();
        match self.options.idle_check {
            IdleCheck::Poll => poll_all(&fds),
            IdleCheck::IoUring => peek_all(&fds),
            IdleCheck::PerSocket => fds
                .into_iter()
                .map(crate::uring::peek_says_broken_fd)
                .collect(),
        }
    }

    /// Refused, reset, unreachable and timed-out dials are worth retrying;
    /// a dial the host forbids (`EACCES`, `EPERM`) is not.
    fn classify(&self, error: &io::Error) -> ErrorClass {
        match error.kind() {
            io::ErrorKind::PermissionDenied => ErrorClass::Fatal,
            _ => ErrorClass::Retryable,
        }
    }

    fn close(&self, conn: TcpConn, _reason: CloseReason) {
        match &self.engine {
            Engine::Uring(driver) => driver.close(OwnedFd::from(conn.stream)),
            Engine::Blocking => drop(conn),
        }
    }
}

/// A pooled TCP connection: a `std::net::TcpStream` in blocking mode.
#[derive(Debug)]
pub struct TcpConn {
    stream: TcpStream,
}

impl TcpConn {
    /// The stream, for I/O from any runtime.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// The stream, mutably.
    pub fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Ownership of the stream (after [`Pooled::detach`](crate::Pooled::detach)).
    pub fn into_std(self) -> TcpStream {
        self.stream
    }
}

/// Wraps a stream made elsewhere (for example one taken out with
/// [`TcpConn::into_std`] and used by a custom runtime).
impl From<TcpStream> for TcpConn {
    fn from(stream: TcpStream) -> Self {
        TcpConn { stream }
    }
}

impl AsRawFd for TcpConn {
    fn as_raw_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }
}

impl AsFd for TcpConn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

impl Read for TcpConn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

impl Write for TcpConn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

//! The TCP manager for tokio services (feature `tokio`): connections are
//! `tokio::net::TcpStream`s used with `AsyncRead`/`AsyncWrite` through the
//! guard.
//!
//! Where the dial runs: on tokio's own non-blocking connect, in the calling
//! task, under `connect_timeout`. The name is resolved on every dial with
//! `tokio::net::lookup_host` (on tokio's blocking pool, never on a worker),
//! and every address it returns is tried in order, so a changed DNS record
//! reaches the next dial. (Dialing on ringpool's io_uring thread and then
//! registering the socket with tokio would add a cross-thread hand-off to
//! every dial and a second registration; a loopback dial on tokio takes a
//! few tens of microseconds, so there is nothing for the ring to win here.)

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::liveness::peek_says_broken;
use super::options::TcpOptions;
use super::ping::{ProtocolPing, classify};
use super::tokio_conn::TokioConn;
use crate::manager::{CloseReason, ErrorClass};
use crate::send_manager::SendManager;

/// Makes tokio TCP connections to one target for a [`Pool`](crate::Pool).
///
/// # Examples
///
/// ```no_run
/// use ringpool::Pool;
/// use ringpool::tcp::TokioTcpManager;
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = Pool::builder(TokioTcpManager::new("127.0.0.1:6379")).build()?;
/// let mut conn = pool.get().await?;
/// conn.write_all(b"PING\r\n").await?;
/// let mut reply = [0u8; 7];
/// conn.read_exact(&mut reply).await?;
/// # Ok(())
/// # }
/// ```
pub struct TokioTcpManager {
    target: String,
    resolver: Option<Arc<Resolver>>,
    options: TcpOptions,
    ping: Option<ProtocolPing>,
}

/// A name lookup of the application's own (a service-discovery client, a
/// test's changing answer).
type Resolver = dyn Fn() -> io::Result<Vec<SocketAddr>> + Send + Sync;

impl std::fmt::Debug for TokioTcpManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokioTcpManager")
            .field("target", &self.target)
            .field("own_resolver", &self.resolver.is_some())
            .field("options", &self.options)
            .field("ping", &self.ping)
            .finish()
    }
}

impl TokioTcpManager {
    /// A manager for `target` (`host:port`), resolved on every dial.
    pub fn new(target: impl Into<String>) -> Self {
        TokioTcpManager {
            target: target.into(),
            resolver: None,
            options: TcpOptions::default(),
            ping: None,
        }
    }

    /// A manager whose every dial asks `resolve` for the addresses to try,
    /// in order (run on tokio's blocking pool, so it may block). `name`
    /// labels the target in errors.
    pub fn with_resolver(
        name: impl Into<String>,
        resolve: impl Fn() -> io::Result<Vec<SocketAddr>> + Send + Sync + 'static,
    ) -> Self {
        TokioTcpManager {
            resolver: Some(Arc::new(resolve)),
            ..TokioTcpManager::new(name)
        }
    }

    /// The addresses to try for the next dial.
    async fn resolve(&self) -> io::Result<Vec<SocketAddr>> {
        match &self.resolver {
            None => Ok(tokio::net::lookup_host(self.target.as_str())
                .await?
                .collect()),
            Some(resolve) => {
                let resolve = Arc::clone(resolve);
                tokio::task::spawn_blocking(move || resolve())
                    .await
                    .map_err(io::Error::other)?
            }
        }
    }

    /// Replaces the socket options (`connect_timeout`, `nodelay`,
    /// `keepalive`; `idle_check` does not apply here).
    pub fn options(mut self, options: TcpOptions) -> Self {
        self.options = options;
        self
    }

    /// Health-checks connections with a request the protocol defines and
    /// the exact reply it must get, for example Redis
    /// `ping_with(b"PING\r\n", b"+PONG\r\n")`; the pool runs it under
    /// `ping_timeout`, without blocking the runtime. Without it, health
    /// checks only peek and never write a byte.
    pub fn ping_with(mut self, request: impl Into<Vec<u8>>, reply: impl Into<Vec<u8>>) -> Self {
        self.ping = Some(ProtocolPing::new(request, reply));
        self
    }

    /// The target as given.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Resolves the target, then tries each address in order until one
    /// connects; the error is the last address's. (The TLS manager's dial
    /// starts with it.)
    pub(crate) async fn connect_stream(&self) -> io::Result<TcpStream> {
        let mut last = None;
        for addr in self.resolve().await? {
            match self.dial(addr).await {
                Ok(stream) => return Ok(stream),
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} resolved to no address", self.target),
            )
        }))
    }

    /// The socket options in use.
    #[cfg(feature = "tls")]
    pub(crate) fn tcp_options(&self) -> &TcpOptions {
        &self.options
    }

    /// The protocol ping, if one was set.
    #[cfg(feature = "tls")]
    pub(crate) fn protocol_ping(&self) -> Option<&ProtocolPing> {
        self.ping.as_ref()
    }

    async fn dial(&self, addr: std::net::SocketAddr) -> io::Result<TcpStream> {
        let timeout = self.options.connect_timeout;
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(connected) => connected?,
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connect to {addr} timed out after {timeout:?}"),
                ));
            }
        };
        stream.set_nodelay(self.options.nodelay)?;
        if let Some(idle) = self.options.keepalive {
            SockRef::from(&stream).set_tcp_keepalive(&TcpKeepalive::new().with_time(idle))?;
        }
        Ok(stream)
    }
}

/// A [`SendManager`]: its futures are `Send`, so code generic over the
/// manager can spawn gets on a multi-threaded runtime.
impl SendManager for TokioTcpManager {
    fn endpoint(&self) -> Option<String> {
        Some(self.target.clone())
    }

    type Connection = TokioConn;
    type Error = io::Error;

    /// Resolves the target, then tries each address in order until one
    /// connects; the error is the last address's.
    async fn connect(&self) -> io::Result<TokioConn> {
        Ok(TokioConn::new(self.connect_stream().await?))
    }

    /// The protocol ping set with [`TokioTcpManager::ping_with`], if any.
    async fn ping(&self, conn: &mut TokioConn) -> io::Result<()> {
        let Some(ping) = &self.ping else {
            return Ok(());
        };
        conn.write_all(&ping.request).await?;
        let mut reply = vec![0u8; ping.reply.len()];
        conn.read_exact(&mut reply).await?;
        ping.check(&reply)
    }

    /// Dirty (mid-request), or a non-blocking one-byte `MSG_PEEK` says end
    /// of file, a reset, an error or unread bytes.
    fn is_broken(&self, conn: &mut TokioConn) -> bool {
        conn.is_dirty() || peek_says_broken(conn.stream().as_raw_fd())
    }

    /// A connection given back mid-request (a cancelled request, a reply
    /// not read) is closed as abandoned, never handed to the next user.
    fn check_return(&self, conn: &mut TokioConn) -> Result<(), CloseReason> {
        match conn.is_dirty() {
            true => Err(CloseReason::Abandoned),
            false => Ok(()),
        }
    }

    fn classify(&self, error: &io::Error) -> ErrorClass {
        classify(error)
    }
}

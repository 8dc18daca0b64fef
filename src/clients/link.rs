//! What the pool knows of a client library's connection without a round
//! trip: the socket, wrapped so that the end of the library's task (which
//! owns it) is seen at once, and polled for a peer that hung up.

// The gRPC manager (feature `grpc` alone) reads a link's end, not its
// idle-watch half.
#![cfg_attr(
    not(any(feature = "postgres", feature = "redis", feature = "http")),
    allow(dead_code)
)]

use crate::sync::plain::{AtomicBool, Ordering};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::runtime::Handle;

use crate::manager::IdleDeaths;
use crate::tcp::Dialer;

/// The state a pooled client connection shares with its socket.
#[derive(Debug)]
pub(crate) struct Link {
    fd: RawFd,
    /// The socket was dropped: the library's task ended.
    ended: AtomicBool,
    /// The connection sits in the pool's idle store.
    idle: AtomicBool,
}

impl Link {
    /// Whether the connection is dead: its socket's peer hung up, or the
    /// library's task ended. The poll comes first: once the socket is
    /// dropped its descriptor may belong to another socket, and `ended` is
    /// set before the drop, so a poll of a reused descriptor is always
    /// followed by a load that sees `ended`.
    #[cfg(any(feature = "postgres", feature = "redis", feature = "http"))]
    pub(crate) fn is_dead(&self) -> bool {
        crate::tcp::liveness::peer_closed_raw(self.fd) || self.ended()
    }

    /// Whether the library's task ended (a load).
    pub(crate) fn ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// The connection went into the idle store.
    pub(crate) fn went_idle(&self) {
        self.idle.store(true, Ordering::Release);
    }

    /// The connection left the idle store; whether it died while there.
    pub(crate) fn left_idle(&self) -> bool {
        self.idle.store(false, Ordering::Release);
        self.ended()
    }
}

/// Bytes a protocol's observer sees pass on the socket (the PostgreSQL
/// manager reads its transaction status from them).
pub(crate) trait Observer: Unpin + Send + 'static {
    fn read(&mut self, bytes: &[u8]);
    fn wrote(&mut self, bytes: &[u8]);
}

impl Observer for () {
    #[inline]
    fn read(&mut self, _: &[u8]) {}
    #[inline]
    fn wrote(&mut self, _: &[u8]) {}
}

/// A stream whose bytes an observer sees as they pass: on the socket for
/// a plain connection, above TLS for an encrypted one.
#[derive(Debug)]
pub(crate) struct Observed<S, O: Observer> {
    stream: S,
    observer: O,
}

impl<S, O: Observer> Observed<S, O> {
    pub(crate) fn new(stream: S, observer: O) -> Self {
        Observed { stream, observer }
    }
}

impl<S: AsyncRead + Unpin, O: Observer> AsyncRead for Observed<S, O> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.observer.read(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin, O: Observer> AsyncWrite for Observed<S, O> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = polled {
            this.observer.wrote(&buf[..written]);
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(written)) = polled {
            let mut left = written;
            for buf in bufs {
                let seen = left.min(buf.len());
                this.observer.wrote(&buf[..seen]);
                left -= seen;
                if left == 0 {
                    break;
                }
            }
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// A tokio TCP stream owned by a client library's task; dropping it (the
/// task ended) marks the link ended and, if the connection was idle,
/// tells the pool.
#[derive(Debug)]
pub(crate) struct Tracked<O: Observer> {
    io: Observed<tokio::net::TcpStream, O>,
    link: Arc<Link>,
    deaths: Option<IdleDeaths>,
}

impl<O: Observer> Drop for Tracked<O> {
    fn drop(&mut self) {
        self.link.ended.store(true, Ordering::Release);
        if self.link.idle.load(Ordering::Acquire)
            && let Some(deaths) = &self.deaths
        {
            deaths.notify();
        }
    }
}

impl<O: Observer> AsyncRead for Tracked<O> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<O: Observer> AsyncWrite for Tracked<O> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// A client manager's TCP dial failed (or no tokio runtime was there to
/// run its library on).
#[derive(Debug, thiserror::Error)]
#[error("dial {target}: {source}")]
pub struct DialError {
    /// The target dialed.
    pub target: String,
    /// What the dial failed with.
    #[source]
    pub source: io::Error,
}

/// What every client manager shares: the dialer, the runtime its
/// libraries' tasks run on, and the pool's idle-death channel.
#[derive(Debug)]
pub(crate) struct ClientBase {
    pub(crate) dialer: Dialer,
    runtime: Option<Handle>,
    deaths: OnceLock<IdleDeaths>,
    /// Every dial's TLS, if the manager has it (PostgreSQL negotiates
    /// its own).
    #[cfg(feature = "tls")]
    #[cfg_attr(
        not(any(feature = "redis", feature = "http", feature = "grpc")),
        allow(dead_code)
    )]
    tls: Option<crate::tcp::TlsConnector>,
}

impl ClientBase {
    /// Remembers the tokio runtime the manager is made in, if any, for
    /// dials made from outside one (the pool's maintenance thread).
    pub(crate) fn new(dialer: Dialer) -> Self {
        ClientBase {
            dialer,
            runtime: Handle::try_current().ok(),
            deaths: OnceLock::new(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Sets the TLS every dial runs.
    #[cfg(feature = "tls")]
    #[cfg_attr(
        not(any(feature = "redis", feature = "http", feature = "grpc")),
        allow(dead_code)
    )]
    pub(crate) fn set_tls(&mut self, connector: crate::tcp::TlsConnector) {
        self.tls = Some(connector);
    }

    /// The TLS every dial runs, if any.
    #[cfg(feature = "tls")]
    #[cfg_attr(
        not(any(feature = "redis", feature = "http", feature = "grpc")),
        allow(dead_code)
    )]
    pub(crate) fn tls(&self) -> Option<&crate::tcp::TlsConnector> {
        self.tls.as_ref()
    }

    /// The pool turned the idle watch on.
    pub(crate) fn watch(&self, deaths: IdleDeaths) {
        let _ = self.deaths.set(deaths);
    }

    /// Runs `work` (a TLS negotiation and handshake after a dial that
    /// began at `started`) within what is left of `connect_timeout`.
    #[cfg(feature = "tls")]
    pub(crate) async fn within_connect_timeout<T, E>(
        &self,
        started: std::time::Instant,
        work: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, E>
    where
        E: From<crate::tcp::TlsError>,
    {
        let limit = self.dialer.tcp_options().connect_timeout;
        let left = limit.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, work).await {
            Ok(done) => done,
            Err(_) => Err(E::from(crate::tcp::TlsError::Handshake {
                target: self.dialer.target(),
                source: io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the TCP connect and TLS handshake took longer than connect_timeout \
                         ({limit:?})"
                    ),
                ),
            })),
        }
    }

    /// The runtime to register the socket with and spawn the library's
    /// task on: the current one, else the one the manager was made in.
    pub(crate) fn runtime(&self) -> io::Result<Handle> {
        Handle::try_current()
            .ok()
            .or_else(|| self.runtime.clone())
            .ok_or_else(|| {
                io::Error::other(
                    "no tokio runtime: dial from inside one, or make the manager inside one \
                     so dials from other threads can use it",
                )
            })
    }

    /// Dials, and wraps the socket for the library with `observer`.
    pub(crate) async fn dial<O: Observer>(
        &self,
        observer: O,
    ) -> Result<(Tracked<O>, Arc<Link>, Handle), DialError> {
        self.dial_io(observer).await.map_err(|source| DialError {
            target: self.dialer.target(),
            source,
        })
    }

    async fn dial_io<O: Observer>(
        &self,
        observer: O,
    ) -> io::Result<(Tracked<O>, Arc<Link>, Handle)> {
        let handle = self.runtime()?;
        let stream = self.dialer.dial().await?;
        stream.set_nonblocking(true)?;
        let fd = stream.as_raw_fd();
        let stream = {
            let _entered = handle.enter();
            tokio::net::TcpStream::from_std(stream)?
        };
        let link = Arc::new(Link {
            fd,
            ended: AtomicBool::new(false),
            idle: AtomicBool::new(false),
        });
        let tracked = Tracked {
            io: Observed::new(stream, observer),
            link: Arc::clone(&link),
            deaths: self.deaths.get().cloned(),
        };
        Ok((tracked, link, handle))
    }
}

/// The idle watch every client manager has, through its connections'
/// [`Link`]: `endpoint` and `idle_watcher` inside the manager's
/// `SendManager` implementation, for a manager with a `base: ClientBase`.
#[cfg(any(feature = "postgres", feature = "redis", feature = "http"))]
macro_rules! link_watch {
    ($conn:ty) => {
        fn endpoint(&self) -> Option<String> {
            Some(self.base.dialer.target())
        }

        fn idle_watcher(&self) -> Option<&dyn $crate::manager::IdleWatcher<$conn>> {
            Some(self)
        }
    };
}
#[cfg(any(feature = "postgres", feature = "redis", feature = "http"))]
pub(crate) use link_watch;

/// The watcher itself, for `$manager` (with generics `[$(...)*]`) whose
/// connection type `$conn` has a `link: Arc<Link>`, answering `$watch`:
/// idle connections are watched through the library's task, and when it
/// ends, the pool closes the connection at once.
#[cfg(any(feature = "postgres", feature = "redis", feature = "http"))]
macro_rules! link_watcher {
    ([$($generics:tt)*] $manager:ty, $conn:ty, $watch:expr $(, where $($bounds:tt)*)?) => {
        impl<$($generics)*> $crate::manager::IdleWatcher<$conn> for $manager
        $(where $($bounds)*)?
        {
            fn start(&self, deaths: $crate::manager::IdleDeaths) -> $crate::manager::IdleWatch {
                self.base.watch(deaths);
                $watch
            }

            #[inline]
            fn idle(&self, conn: &mut $conn) {
                conn.link.went_idle();
            }

            #[inline]
            fn unwatch(&self, conn: &mut $conn) -> bool {
                conn.link.left_idle()
            }

            fn died_idle(&self, conn: &$conn) -> bool {
                conn.link.ended()
            }
        }
    };
}
#[cfg(any(feature = "postgres", feature = "redis", feature = "http"))]
pub(crate) use link_watcher;

//! The TCP manager's dial as a building block of its own: resolve the
//! target (again on every dial), connect on io_uring under a timeout, try
//! every address in order, set the socket options. A manager for a
//! protocol (PostgreSQL, Redis, HTTP) is this dial, its handshake and its
//! ping; the [`liveness`](super::liveness) checks are the other half.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::OwnedFd;

use socket2::{SockRef, TcpKeepalive};

use super::options::{Backend, TcpOptions};
use super::ping::classify;
use super::target::Target;
use crate::manager::ErrorClass;
use crate::uring::{BackendError, Driver};

#[derive(Debug, Clone)]
pub(crate) enum Engine {
    Uring(Driver),
    Blocking,
}

/// Dials TCP connections to one target: on the process's io_uring thread
/// (or with plain system calls on [`Backend::Blocking`]), under
/// [`TcpOptions::connect_timeout`], the name resolved again on every dial
/// off the calling thread and every address it returns tried in order,
/// with `TCP_NODELAY` and keepalive set as the options say.
///
/// [`TcpManager`](super::TcpManager) is built on it; so are the protocol
/// managers in [`clients`](crate::clients). A manager of your own uses it
/// the same way: dial, then run the protocol's handshake on the stream.
///
/// # Examples
///
/// ```no_run
/// use ringpool::tcp::Dialer;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let dialer = Dialer::new("127.0.0.1:6379")?;
/// let stream: std::net::TcpStream = dialer.dial().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Dialer {
    pub(crate) target: Target,
    pub(crate) options: TcpOptions,
    pub(crate) engine: Engine,
}

impl Dialer {
    /// A dialer for `target` (a socket address, or `host:port` resolved
    /// again on every dial) on io_uring.
    ///
    /// # Errors
    ///
    /// [`BackendError`] if `target` is not an address or `host:port`, or
    /// io_uring is unavailable; the error says why and how to fix it.
    pub fn new(target: impl std::fmt::Display) -> Result<Self, BackendError> {
        Self::with_backend(target, Backend::IoUring)
    }

    /// A dialer for `target` on the chosen backend. On
    /// [`Backend::Blocking`] a dial blocks the calling thread.
    ///
    /// # Errors
    ///
    /// As [`Dialer::new`]; never an io_uring error for
    /// [`Backend::Blocking`].
    pub fn with_backend(
        target: impl std::fmt::Display,
        backend: Backend,
    ) -> Result<Self, BackendError> {
        let target = Target::parse(&target.to_string())?;
        let engine = match backend {
            Backend::IoUring => Engine::Uring(Driver::get()?),
            Backend::Blocking => Engine::Blocking,
        };
        Ok(Dialer {
            target,
            options: TcpOptions::default(),
            engine,
        })
    }

    /// A dialer on io_uring whose every dial asks `resolve` for the
    /// addresses to try, in order (a service-discovery client, a resolver
    /// of the application's own). It runs on a thread of its own, so it may
    /// block; `name` labels the target in errors and logs.
    ///
    /// # Errors
    ///
    /// [`BackendError`] if io_uring is unavailable.
    pub fn with_resolver(
        name: impl Into<String>,
        resolve: impl Fn() -> io::Result<Vec<SocketAddr>> + Send + Sync + 'static,
    ) -> Result<Self, BackendError> {
        Ok(Dialer {
            target: Target::Resolved(name.into(), std::sync::Arc::new(resolve)),
            options: TcpOptions::default(),
            engine: Engine::Uring(Driver::get()?),
        })
    }

    /// Replaces the socket options.
    pub fn options(mut self, options: TcpOptions) -> Self {
        self.options = options;
        self
    }

    /// The socket options in use.
    pub fn tcp_options(&self) -> &TcpOptions {
        &self.options
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        match self.engine {
            Engine::Uring(_) => Backend::IoUring,
            Engine::Blocking => Backend::Blocking,
        }
    }

    /// The target, as given.
    pub fn target(&self) -> String {
        self.target.to_string()
    }

    /// Resolves the target, then tries each address in order until one
    /// connects, and sets the socket options on it. The stream is in
    /// blocking mode, as `std` makes them.
    ///
    /// # Errors
    ///
    /// The last address's error (a refused, reset or timed-out dial: see
    /// [`Dialer::classify`]), or the resolution's.
    pub async fn dial(&self) -> io::Result<TcpStream> {
        let off_thread = matches!(self.engine, Engine::Uring(_));
        let mut last = None;
        for addr in self.target.resolve(off_thread).await? {
            match self.dial_addr(addr).await {
                Ok(stream) => {
                    self.configure(&stream)?;
                    return Ok(stream);
                }
                Err(error) => last = Some(error),
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    /// [`dial`](Dialer::dial), then registers the stream with the current
    /// tokio runtime (feature `tokio`).
    ///
    /// # Errors
    ///
    /// As [`dial`](Dialer::dial); and if called outside a tokio runtime.
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub async fn dial_tokio(&self) -> io::Result<tokio::net::TcpStream> {
        let stream = self.dial().await?;
        stream.set_nonblocking(true)?;
        tokio::net::TcpStream::from_std(stream)
    }

    /// Whether a dial error is worth retrying: refused, reset, unreachable
    /// and timed-out dials are; a dial the host forbids (`EACCES`, `EPERM`)
    /// is not.
    pub fn classify(&self, error: &io::Error) -> ErrorClass {
        classify(error)
    }

    async fn dial_addr(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        match &self.engine {
            Engine::Uring(driver) => {
                let fd: OwnedFd = driver.connect(addr, self.options.connect_timeout).await?;
                Ok(TcpStream::from(fd))
            }
            Engine::Blocking => TcpStream::connect_timeout(&addr, self.options.connect_timeout),
        }
    }

    fn configure(&self, stream: &TcpStream) -> io::Result<()> {
        stream.set_nodelay(self.options.nodelay)?;
        if let Some(idle) = self.options.keepalive {
            SockRef::from(stream).set_tcp_keepalive(&TcpKeepalive::new().with_time(idle))?;
        }
        Ok(())
    }
}

//! Dials HTTP/2 connections for a shared pool: a ringpool dial, TLS if
//! asked (ALPN `h2`), then h2's handshake, its connection task spawned on
//! the tokio runtime, and a ping answered, by which time the server's
//! settings (its stream limit) are in.

use std::sync::Arc;

use bytes::Bytes;
use h2::client::SendRequest;

use crate::clients::link::{ClientBase, DialError, Link};
use crate::shared::SharedManager;
use crate::sync::plain::{AtomicBool, Ordering};
use crate::tcp::Dialer;

/// Why an HTTP/2 connection could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum H2ConnectError {
    /// The TCP dial failed.
    #[error(transparent)]
    Dial(#[from] DialError),
    /// The HTTP/2 handshake failed (the server does not speak HTTP/2 with
    /// prior knowledge on this port, or it closed the connection).
    #[error("HTTP/2 handshake with {target} failed")]
    Handshake {
        /// The target dialed.
        target: String,
        /// What h2 reported.
        #[source]
        source: h2::Error,
    },
    /// The TLS handshake failed.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    #[error(transparent)]
    Tls(#[from] crate::tcp::TlsError),
}

/// One HTTP/2 connection: h2's handle for new streams, and whether its
/// connection task has ended.
#[derive(Debug)]
pub struct H2Connection {
    pub(crate) sender: SendRequest<Bytes>,
    /// The connection task ended, or a stream found it refusing new ones
    /// (the server's `GOAWAY`).
    closed: Arc<AtomicBool>,
    link: Arc<Link>,
}

impl H2Connection {
    /// Marks it as taking no new streams (a send found it closing).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    fn is_open(&self) -> bool {
        !self.closed.load(Ordering::Acquire) && !self.link.ended()
    }
}

/// Makes the HTTP/2 connections a [`SharedPool`](crate::shared::SharedPool) lends, for the gRPC
/// channel (`clients::grpc`, feature `grpc`) and the HTTP/2 client
/// (`clients::http::Http2Client`, feature `http2`).
///
/// ```no_run
/// use ringpool::clients::h2::H2Manager;
/// use ringpool::shared::SharedPool;
/// use ringpool::tcp::Dialer;
///
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = SharedPool::builder(H2Manager::new(Dialer::new("127.0.0.1:8080")?))
///     .max_size(8)
///     .build()?;
/// # let _ = pool;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct H2Manager {
    base: ClientBase,
}

impl H2Manager {
    /// A manager whose connections `dialer` makes, speaking HTTP/2 with
    /// prior knowledge (plain `http://`).
    ///
    /// Made inside a tokio runtime, it keeps a handle to it, so dials from
    /// outside one run their connection tasks there.
    pub fn new(dialer: Dialer) -> Self {
        H2Manager {
            base: ClientBase::new(dialer),
        }
    }

    /// Over TLS (feature `tls`): every dial is followed by `connector`'s
    /// handshake, offering ALPN `h2` unless the connector offers protocols
    /// of its own, within what is left of the dialer's `connect_timeout`.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(mut self, connector: crate::tcp::TlsConnector) -> Self {
        self.base.set_tls(connector.with_default_alpn(b"h2"));
        self
    }

    /// The dialer.
    pub fn dialer(&self) -> &Dialer {
        &self.base.dialer
    }

    /// `https` over TLS, `http` otherwise.
    pub(crate) fn scheme(&self) -> http::uri::Scheme {
        #[cfg(feature = "tls")]
        if self.base.tls().is_some() {
            return http::uri::Scheme::HTTPS;
        }
        http::uri::Scheme::HTTP
    }

    async fn handshake<IO>(
        &self,
        io: IO,
        link: Arc<Link>,
        runtime: &tokio::runtime::Handle,
    ) -> Result<H2Connection, H2ConnectError>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let target = self.base.dialer.target();
        let failed = |source| H2ConnectError::Handshake {
            target: target.clone(),
            source,
        };
        let (sender, mut connection) = h2::client::handshake(io).await.map_err(failed)?;
        let mut ping_pong = connection
            .ping_pong()
            .expect("a new connection's ping handle is there to take");
        let closed = Arc::new(AtomicBool::new(false));
        let ended = Arc::clone(&closed);
        let endpoint = target.clone();
        runtime.spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%endpoint, %error, "HTTP/2 connection ended");
            }
            ended.store(true, Ordering::Release);
        });
        // A server's SETTINGS come before its answer to a ping: once the
        // pong is in, its stream limit is known, and no stream is sent
        // past it (to be refused) while it was still unknown.
        ping_pong.ping(h2::Ping::opaque()).await.map_err(failed)?;
        Ok(H2Connection {
            sender,
            closed,
            link,
        })
    }
}

impl SharedManager for H2Manager {
    type Connection = H2Connection;
    type Error = H2ConnectError;

    async fn connect(&self) -> Result<H2Connection, H2ConnectError> {
        let (stream, link, runtime) = self.base.dial_secured::<H2ConnectError>().await?;
        self.handshake(stream, link, &runtime).await
    }

    /// The server's `SETTINGS_MAX_CONCURRENT_STREAMS` as it stands.
    fn capacity(&self, conn: &H2Connection) -> usize {
        conn.sender.current_max_send_streams()
    }

    /// False once its connection task ended (the server closed it, it
    /// broke) or a stream found it refusing new streams (`GOAWAY`).
    fn is_open(&self, conn: &H2Connection) -> bool {
        conn.is_open()
    }
}

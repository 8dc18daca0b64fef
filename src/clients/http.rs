//! HTTP/1.1 through `hyper` (feature `http`): the pool hands out an
//! [`HttpConn`], a `hyper::client::conn::http1` connection made over a
//! socket ringpool dialed, kept alive across requests.
//!
//! Keep-alive is the server's to end: a response with `Connection: close`
//! (or an HTTP/1.0 one without keep-alive) makes hyper close the
//! connection after it, and the pool never hands it out again (its end is
//! seen the moment hyper's task drops the socket). A connection given back
//! while a request sent with [`HttpConn::send`] is unanswered, or before
//! its response body was read to the end, is closed
//! ([`CloseReason::Abandoned`]): hyper would have to drain the rest or
//! close it, and the next user must not find out which.
//!
//! HTTP/2 (feature `http2`) is shared, not exclusive: `Http2Client` sends
//! many requests at once on each connection of a
//! [`SharedPool`](crate::shared::SharedPool).
//!
//! With the `tls` feature, [`HttpManager::tls`] makes it HTTPS: the
//! connector's handshake on the dialed socket (offering ALPN `http/1.1`
//! unless the connector offers something else), its sessions resumed
//! across the pool's dials.
//!
//! # Examples
//!
//! ```no_run
//! use ringpool::Pool;
//! use ringpool::clients::http::HttpManager;
//! use ringpool::tcp::Dialer;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = Pool::builder(HttpManager::<String>::new(Dialer::new("127.0.0.1:8080")?)).build()?;
//! let mut conn = pool.get().await?;
//! let request = hyper::Request::get("/health")
//!     .header("host", "127.0.0.1")
//!     .body(String::new())?;
//! let response = conn.send(request).await?;
//! assert!(response.status().is_success());
//! # Ok(())
//! # }
//! ```

use crate::sync::plain::{AtomicBool, Ordering};
use std::error::Error as StdError;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

#[cfg(feature = "http2")]
#[cfg_attr(docsrs, doc(cfg(feature = "http2")))]
pub use super::http2::{Http2Client, Http2Error};
use super::link::{ClientBase, DialError, Link};
use crate::manager::{CloseReason, ErrorClass, IdleWatch};
use crate::send_manager::SendManager;
use crate::tcp::Dialer;

/// Why an HTTP connection could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The TCP dial failed.
    #[error(transparent)]
    Dial(#[from] DialError),
    /// The HTTP/1.1 handshake failed.
    #[error(transparent)]
    Hyper(#[from] hyper::Error),
    /// The TLS handshake failed (feature `tls`).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    #[error(transparent)]
    Tls(#[from] crate::tcp::TlsError),
}

/// A pooled HTTP/1.1 connection: hyper's `SendRequest` (it derefs to one)
/// with [`send`](HttpConn::send), which waits until the connection can
/// take a request and sends it.
#[derive(Debug)]
pub struct HttpConn<B> {
    sender: SendRequest<B>,
    link: Arc<Link>,
    /// A request sent with `send` whose response body has not ended.
    pending: Arc<AtomicBool>,
    /// A response said the server will close the connection after it.
    closing: bool,
}

impl<B: Body + 'static> HttpConn<B> {
    /// Sends `request` once the connection is ready for it. The response's
    /// body streams from the connection and must be read to its end before
    /// the connection is given back, or it is closed then.
    ///
    /// # Errors
    ///
    /// hyper's: the connection closed, the server broke the protocol.
    pub async fn send(&mut self, request: Request<B>) -> hyper::Result<Response<ResponseBody>> {
        self.pending.store(true, Ordering::Release);
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        if !keeps_alive(&response) {
            self.closing = true;
        }
        if response.body().is_end_stream() {
            self.pending.store(false, Ordering::Release);
        }
        let pending = Arc::clone(&self.pending);
        Ok(response.map(|body| ResponseBody { body, pending }))
    }
}

/// Whether the server keeps the connection open after `response`: HTTP/1.1
/// unless it says `Connection: close`, HTTP/1.0 only if it says
/// `keep-alive`.
fn keeps_alive<T>(response: &Response<T>) -> bool {
    let says = |token: &str| {
        response
            .headers()
            .get_all(hyper::header::CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|item| item.trim().eq_ignore_ascii_case(token))
    };
    match response.version() {
        hyper::Version::HTTP_10 => says("keep-alive"),
        _ => !says("close"),
    }
}

/// A response body from [`HttpConn::send`]: hyper's `Incoming`, which tells
/// the connection when it has been read to its end.
#[derive(Debug)]
pub struct ResponseBody {
    body: Incoming,
    pending: Arc<AtomicBool>,
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || this.body.is_end_stream() {
            this.pending.store(false, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl<B> std::ops::Deref for HttpConn<B> {
    type Target = SendRequest<B>;

    fn deref(&self) -> &SendRequest<B> {
        &self.sender
    }
}

impl<B> std::ops::DerefMut for HttpConn<B> {
    fn deref_mut(&mut self) -> &mut SendRequest<B> {
        &mut self.sender
    }
}

/// Makes [`HttpConn`]s whose request bodies are `B` (`String`,
/// `http_body_util::Full<Bytes>`, ...): a ringpool dial, then hyper's
/// HTTP/1.1 handshake, its connection task spawned on the tokio runtime.
#[derive(Debug)]
pub struct HttpManager<B> {
    base: ClientBase,
    body: std::marker::PhantomData<fn() -> B>,
}

impl<B> HttpManager<B> {
    /// A manager whose connections `dialer` makes.
    ///
    /// Made inside a tokio runtime, it keeps a handle to it, so dials from
    /// outside one (the maintenance thread) run their connection tasks
    /// there.
    pub fn new(dialer: Dialer) -> Self {
        HttpManager {
            base: ClientBase::new(dialer),
            body: std::marker::PhantomData,
        }
    }

    /// HTTPS (feature `tls`): every dial is followed by `connector`'s
    /// handshake, within what is left of the dialer's `connect_timeout`.
    /// ALPN offers `http/1.1` unless the connector offers protocols of its
    /// own.
    ///
    /// ```no_run
    /// use ringpool::Pool;
    /// use ringpool::clients::http::HttpManager;
    /// use ringpool::tcp::{Dialer, TlsConnector};
    ///
    /// # fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let https = HttpManager::<String>::new(Dialer::new("api.example.com:443")?)
    ///     .tls(TlsConnector::webpki());
    /// let pool = Pool::builder(https).build()?;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(mut self, connector: crate::tcp::TlsConnector) -> Self {
        self.base.set_tls(connector.with_default_alpn(b"http/1.1"));
        self
    }

    /// The TLS connector, if the manager speaks HTTPS (its
    /// [`handshakes`](crate::tcp::TlsConnector::handshakes) counts).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_connector(&self) -> Option<&crate::tcp::TlsConnector> {
        self.base.tls()
    }

    /// The dialer.
    pub fn dialer(&self) -> &Dialer {
        &self.base.dialer
    }
}

impl<B> HttpConn<B> {
    fn new(sender: SendRequest<B>, link: Arc<Link>) -> Self {
        HttpConn {
            sender,
            link,
            pending: Arc::new(AtomicBool::new(false)),
            closing: false,
        }
    }
}

/// hyper's HTTP/1.1 handshake on `io`, its connection task spawned on
/// `runtime`.
async fn start<B, IO>(
    io: IO,
    runtime: &tokio::runtime::Handle,
    target: String,
) -> Result<SendRequest<B>, hyper::Error>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(TokioIo::new(io)).await?;
    runtime.spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(endpoint = %target, %error, "http connection ended");
        }
    });
    Ok(sender)
}

impl<B> SendManager for HttpManager<B>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type Connection = HttpConn<B>;
    type Error = HttpError;

    async fn connect(&self) -> Result<HttpConn<B>, HttpError> {
        let (stream, link, runtime) = self.base.dial_secured::<HttpError>().await?;
        let sender = start(stream, &runtime, self.base.dialer.target()).await?;
        Ok(HttpConn::new(sender, link))
    }

    /// hyper closed the connection, or the socket's peer hung up.
    fn is_broken(&self, conn: &mut HttpConn<B>) -> bool {
        conn.sender.is_closed() || conn.link.is_dead()
    }

    /// Closed if the server said it closes it (`Connection: close`) or
    /// hyper closed it;
    /// abandoned if a request sent with [`HttpConn::send`] is unanswered or
    /// its response body was not read to its end.
    fn check_return(&self, conn: &mut HttpConn<B>) -> Result<(), CloseReason> {
        if conn.closing {
            // The server said so with its reply: a use served, not a death.
            return Err(CloseReason::Finished);
        }
        if conn.sender.is_closed() || conn.link.ended() {
            return Err(CloseReason::Broken);
        }
        match conn.pending.load(Ordering::Acquire) {
            false => Ok(()),
            true => Err(CloseReason::Abandoned),
        }
    }

    fn classify(&self, error: &HttpError) -> ErrorClass {
        match error {
            HttpError::Dial(error) => self.base.dialer.classify(&error.source),
            HttpError::Hyper(_) => ErrorClass::Retryable,
            #[cfg(feature = "tls")]
            HttpError::Tls(error) => error.class(),
        }
    }

    #[cfg(feature = "tls")]
    fn tls_handshakes(&self) -> Option<crate::TlsHandshakes> {
        self.base.tls().map(crate::tcp::TlsConnector::handshakes)
    }

    super::link::link_watch!(HttpConn<B>);
}

super::link::link_watcher!([B] HttpManager<B>, HttpConn<B>, IdleWatch::Watched, where B: Body + Send + 'static, B::Data: Send, B::Error: Into<Box<dyn StdError + Send + Sync>>);

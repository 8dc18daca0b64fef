//! HTTP/1.1 through `hyper` (feature `http`): the pool hands out an
//! [`HttpConn`], a `hyper::client::conn::http1` connection made over a
//! socket ringpool dialed, kept alive across requests.
//!
//! Keep-alive is the server's to end: a response with `Connection: close`
//! (or an HTTP/1.0 one without keep-alive) makes hyper close the
//! connection after it, and the pool never hands it out again (its end is
//! seen the moment hyper's task drops the socket). A connection given back
//! before its response was read to the end cannot carry another request
//! and is closed ([`CloseReason::Abandoned`]).
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

use std::error::Error as StdError;
use std::io;
use std::sync::Arc;

use hyper::body::{Body, Incoming};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use super::link::{ClientBase, Link};
use crate::manager::{CloseReason, ErrorClass, IdleDeaths, IdleWatch};
use crate::send_manager::SendManager;
use crate::tcp::Dialer;

/// Why an HTTP connection could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The TCP dial failed.
    #[error("dial {target}: {source}")]
    Dial {
        /// The target dialed.
        target: String,
        /// What the dial failed with.
        #[source]
        source: io::Error,
    },
    /// The HTTP/1.1 handshake failed.
    #[error(transparent)]
    Hyper(#[from] hyper::Error),
}

/// A pooled HTTP/1.1 connection: hyper's `SendRequest` (it derefs to one)
/// with [`send`](HttpConn::send), which waits until the connection can
/// take a request and sends it.
#[derive(Debug)]
pub struct HttpConn<B> {
    sender: SendRequest<B>,
    link: Arc<Link>,
}

impl<B: Body + 'static> HttpConn<B> {
    /// Sends `request` once the connection is ready for it; the response's
    /// body streams from the connection and must be read to its end (or
    /// the connection is closed when given back).
    ///
    /// # Errors
    ///
    /// hyper's: the connection closed, the server broke the protocol.
    pub async fn send(&mut self, request: Request<B>) -> hyper::Result<Response<Incoming>> {
        self.sender.ready().await?;
        self.sender.send_request(request).await
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

    /// The dialer.
    pub fn dialer(&self) -> &Dialer {
        &self.base.dialer
    }
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
        let (stream, link, runtime) =
            self.base.dial(()).await.map_err(|source| HttpError::Dial {
                target: self.base.dialer.target(),
                source,
            })?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        let target = self.base.dialer.target();
        runtime.spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(endpoint = %target, %error, "http connection ended");
            }
        });
        Ok(HttpConn { sender, link })
    }

    /// hyper closed the connection, or the socket's peer hung up.
    fn is_broken(&self, conn: &mut HttpConn<B>) -> bool {
        conn.sender.is_closed() || conn.link.is_dead()
    }

    /// Closed if hyper closed it (the server said `Connection: close`);
    /// abandoned if it cannot take a request (a response not read to its
    /// end).
    fn check_return(&self, conn: &mut HttpConn<B>) -> Result<(), CloseReason> {
        if conn.sender.is_closed() || conn.link.ended() {
            return Err(CloseReason::Broken);
        }
        match conn.sender.is_ready() {
            true => Ok(()),
            false => Err(CloseReason::Abandoned),
        }
    }

    fn classify(&self, error: &HttpError) -> ErrorClass {
        match error {
            HttpError::Dial { source, .. } => self.base.dialer.classify(source),
            HttpError::Hyper(_) => ErrorClass::Retryable,
        }
    }

    fn endpoint(&self) -> Option<String> {
        Some(self.base.dialer.target())
    }

    /// Idle connections are watched through hyper's connection task: when
    /// it ends, the pool closes the connection at once.
    fn watch_idle(&self, deaths: IdleDeaths) -> IdleWatch {
        self.base.watch(deaths);
        IdleWatch::Watched
    }

    #[inline]
    fn idle(&self, conn: &mut HttpConn<B>) {
        conn.link.went_idle();
    }

    #[inline]
    fn unwatch(&self, conn: &mut HttpConn<B>) -> bool {
        conn.link.left_idle()
    }

    fn died_idle(&self, conn: &HttpConn<B>) -> bool {
        conn.link.ended()
    }
}

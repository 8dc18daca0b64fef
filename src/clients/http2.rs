//! HTTP/2 over a shared pool (feature `http2`): many requests at once on
//! each connection, re-exported as `clients::http::Http2Client`.

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;

use super::h2::call::{self, CallError, Origin};
use super::h2::outgoing::Outgoing;
use super::h2::{H2Body, H2ConnectError, H2Manager, InvalidAuthority};
use crate::shared::{SharedError, SharedPool};

/// Why an HTTP/2 request got no response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Http2Error {
    /// The pool had no connection with room for it (it timed out, or the
    /// dial it made failed: the source says which).
    #[error("no HTTP/2 connection to {authority}")]
    NoConnection {
        /// The server's authority.
        authority: String,
        /// What the pool said.
        #[source]
        source: SharedError<H2ConnectError>,
    },
    /// The request's own body failed before it was sent.
    #[error("the request body failed")]
    Body(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The stream failed: the server reset it, or the connection broke (a
    /// connection that broke takes no more requests). A request the server
    /// refused unprocessed was sent once more on another connection first.
    #[error("the HTTP/2 request failed")]
    Stream(#[source] h2::Error),
}

/// An HTTP/2 client over a [`SharedPool`] of connections: each request is a
/// stream on the least loaded connection with room, which it keeps until
/// its response body ends ([`H2Body`]); the pool dials another connection
/// when all are at the server's stream limit. HTTP/1.1 stays exclusive
/// (`HttpManager` with a [`Pool`](crate::Pool)).
///
/// Plain `http://` speaks HTTP/2 with prior knowledge (the server must
/// accept it on that port, as nginx's `listen ... http2` does); over TLS
/// ([`H2Manager::tls`], feature `tls`) ALPN offers `h2`.
///
/// ```no_run
/// use ringpool::clients::h2::H2Manager;
/// use ringpool::clients::http::Http2Client;
/// use ringpool::shared::SharedPool;
/// use ringpool::tcp::Dialer;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = SharedPool::builder(H2Manager::new(Dialer::new("127.0.0.1:8080")?)).build()?;
/// let client = Http2Client::new(pool)?;
/// let request = http::Request::get("/health").body(String::new())?;
/// let response = client.send(request).await?;
/// assert!(response.status().is_success());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Http2Client {
    pool: SharedPool<H2Manager>,
    origin: Origin,
}

impl Http2Client {
    /// A client over `pool`; its requests go to the dialer's target (as
    /// their `:authority`), whatever scheme and authority their URI names.
    pub fn new(pool: SharedPool<H2Manager>) -> Result<Self, InvalidAuthority> {
        Ok(Http2Client {
            origin: Origin::of(&pool)?,
            pool,
        })
    }

    /// The pool under it.
    pub fn pool(&self) -> &SharedPool<H2Manager> {
        &self.pool
    }

    /// Sends `request` and waits for the response headers; the body comes
    /// as it is read.
    pub async fn send<B>(&self, request: Request<B>) -> Result<Response<H2Body>, Http2Error>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (mut head, body) = request.into_parts();
        head.uri = self.origin.uri(&head.uri);
        let outgoing = Outgoing::new(body).map_err(|error| Http2Error::Body(error.into()))?;
        call::send(&self.pool, &head, outgoing)
            .await
            .map_err(|error| match error {
                CallError::NoConnection(source) => Http2Error::NoConnection {
                    authority: self.origin.authority().to_string(),
                    source,
                },
                CallError::Unopened(error) | CallError::Failed { error, .. } => {
                    Http2Error::Stream(error)
                }
            })
    }
}

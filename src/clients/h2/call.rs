//! One request over a shared pool of HTTP/2 connections: a place on a
//! connection, the stream opened, the body sent, the response headers
//! awaited; a request that never reached the server is sent again.

use std::future::Future;

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Uri};
use http_body::Body;

use super::body::H2Body;
use super::manager::{H2ConnectError, H2Manager};
use super::outgoing::Outgoing;
use crate::shared::{Lease, SharedError, SharedPool, SharedSet};

/// How many times a request whose stream could not even be opened (the
/// connection was closing) moves to another connection. Nothing was sent,
/// and each such connection is drained as it is found, so it is never
/// found twice; the bound only stops a server that closes every new
/// connection at once from keeping a request forever. Connections dialed
/// together reach a server's `max_connection_age` together, so several can
/// close under one request in a row.
const UNSENT_RETRIES: usize = 10;

/// The dialer's target is not a valid HTTP authority (`host:port`).
#[derive(Debug, thiserror::Error)]
#[error("the target {target:?} is not a valid HTTP authority: give the dialer host:port")]
pub struct InvalidAuthority {
    /// The dialer's target.
    pub target: String,
    #[source]
    source: http::uri::InvalidUri,
}

/// Where requests take their place: one [`SharedPool`] of HTTP/2
/// connections, or a [`SharedSet`] of them over several endpoints. Sealed:
/// those two are the implementations.
pub trait Lend: sealed::Sealed + Clone + Send + Sync + 'static {
    /// A place on a connection (not `avoid`, if another has room or may be
    /// dialed).
    #[doc(hidden)]
    fn lease(
        &self,
        avoid: Option<u64>,
    ) -> impl Future<Output = Result<Lease<H2Manager>, SharedError<H2ConnectError>>> + Send;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::shared::SharedPool<super::H2Manager> {}
    impl Sealed for crate::shared::SharedSet<super::H2Manager> {}
}

/// Both lend the same way: `get`, or `get_other_than` the avoided id.
macro_rules! lend_by_get {
    ($($lender:ty),*) => {$(
        impl Lend for $lender {
            async fn lease(
                &self,
                avoid: Option<u64>,
            ) -> Result<Lease<H2Manager>, SharedError<H2ConnectError>> {
                match avoid {
                    None => self.get().await,
                    Some(id) => self.get_other_than(id).await,
                }
            }
        }
    )*};
}

lend_by_get!(SharedPool<H2Manager>, SharedSet<H2Manager>);

/// The scheme and authority every request of a pool carries.
#[derive(Clone, Debug)]
pub(crate) struct Origin {
    scheme: Scheme,
    authority: Authority,
}

impl Origin {
    pub(crate) fn of(pool: &SharedPool<H2Manager>) -> Result<Self, InvalidAuthority> {
        let target = pool.manager().dialer().target();
        let authority = Authority::try_from(target.as_str())
            .map_err(|source| InvalidAuthority { target, source })?;
        Ok(Origin {
            scheme: pool.manager().scheme(),
            authority,
        })
    }

    /// From `origin`: `http://host:port`, `https://host:port`, or
    /// `host:port` (plain).
    #[cfg(feature = "grpc")]
    pub(crate) fn parse(origin: &str) -> Result<Self, InvalidAuthority> {
        let (scheme, authority) = match origin.split_once("://") {
            Some(("https", rest)) => (Scheme::HTTPS, rest),
            Some(("http", rest)) => (Scheme::HTTP, rest),
            _ => (Scheme::HTTP, origin),
        };
        let authority = Authority::try_from(authority.trim_end_matches('/')).map_err(|source| {
            InvalidAuthority {
                target: origin.to_string(),
                source,
            }
        })?;
        Ok(Origin { scheme, authority })
    }

    pub(crate) fn authority(&self) -> &Authority {
        &self.authority
    }

    /// `uri`'s path (and query) on this origin.
    pub(crate) fn uri(&self, uri: &Uri) -> Uri {
        let path = uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()
            .expect("scheme, authority and path are each valid")
    }
}

/// Why a request got no response headers.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The pool had no connection for it.
    NoConnection(SharedError<H2ConnectError>),
    /// No stream could be opened (every connection tried was closing).
    Unopened(h2::Error),
    /// The stream failed; `connection_ended` if its connection broke or is
    /// closing.
    Failed {
        error: h2::Error,
        // Read by the gRPC channel, for its status.
        #[cfg_attr(not(feature = "grpc"), allow(dead_code))]
        connection_ended: bool,
    },
}

/// Sends `head` (its URI already on the pool's origin) with `outgoing`,
/// and waits for the response headers.
pub(crate) async fn send<B>(
    pool: &impl Lend,
    head: &http::request::Parts,
    mut outgoing: Outgoing<B>,
) -> Result<http::Response<H2Body>, CallError>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut unsent_retries = UNSENT_RETRIES;
    let mut refused_retry = true;
    let mut avoid = None;
    loop {
        let lease = pool.lease(avoid).await.map_err(CallError::NoConnection)?;
        let mut request = Request::new(());
        *request.method_mut() = head.method.clone();
        *request.uri_mut() = head.uri.clone();
        *request.headers_mut() = head.headers.clone();
        let opened = match lease.sender.clone().ready().await {
            Ok(mut sender) => sender.send_request(request, outgoing.is_empty()),
            Err(error) => Err(error),
        };
        let (response, stream) = match opened {
            Ok(opened) => opened,
            Err(error) => {
                // Nothing was sent: the connection is closing or broke.
                // Another one takes the request.
                lease.close();
                lease.drain();
                if unsent_retries > 0 {
                    unsent_retries -= 1;
                    continue;
                }
                return Err(CallError::Unopened(error));
            }
        };
        // A whole body is handed to h2 at once; a streamed one is sent by a
        // task of its own while the response comes.
        let sender = match outgoing.is_empty() {
            true => None,
            false => outgoing
                .send_whole(stream)
                .map(|stream| tokio::spawn(outgoing.send_on(stream))),
        };
        match response.await {
            Ok(response) => {
                let (parts, recv) = response.into_parts();
                return Ok(http::Response::from_parts(
                    parts,
                    H2Body::new(recv, lease, sender),
                ));
            }
            Err(error) => {
                if let Some(sender) = sender {
                    sender.abort();
                }
                let connection_ended = error.is_io() || error.is_go_away();
                if connection_ended {
                    lease.close();
                    lease.drain();
                }
                // Never processed: refused, or above the last stream a
                // graceful GOAWAY let finish.
                let unprocessed = error.reason() == Some(h2::Reason::REFUSED_STREAM)
                    || (error.is_go_away()
                        && error.is_remote()
                        && error.reason() == Some(h2::Reason::NO_ERROR));
                if unprocessed && refused_retry && outgoing.can_resend() {
                    refused_retry = false;
                    avoid = Some(lease.connection_id());
                    tracing::debug!(%error, "HTTP/2 stream refused: sent again on another connection");
                    continue;
                }
                return Err(CallError::Failed {
                    error,
                    connection_ended,
                });
            }
        }
    }
}

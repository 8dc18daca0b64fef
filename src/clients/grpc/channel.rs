//! The transport tonic's clients run on: each call takes a place on the
//! least loaded HTTP/2 connection of a shared pool for as long as its
//! response lasts.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use http_body::Body;

use super::body::GrpcBody;
use super::manager::GrpcManager;
use super::outgoing::Outgoing;
use super::status::{Code, Failure, grpc_timeout};
use crate::shared::SharedPool;

/// How many times a call whose stream could not even be opened (the
/// connection was closing) moves to another connection.
const UNSENT_RETRIES: usize = 3;

/// A gRPC transport over a [`SharedPool`] of HTTP/2 connections: give it to
/// a tonic-generated client (`GreeterClient::new(channel)`), which is
/// generic over the tower `Service` it implements.
///
/// Each call takes one place (one stream) on the least loaded connection
/// with room, and keeps it until its response ends; the pool dials another
/// connection when every one is at the server's stream limit. A call whose
/// connection breaks gets a status that says so (`UNAVAILABLE`), and the
/// connection takes no more calls. A call the server refused without
/// processing it (`REFUSED_STREAM`, or a stream above a graceful `GOAWAY`'s
/// last one) is sent once more on another connection, if its request body
/// was complete when the call began (a unary call's is). A deadline set on
/// the request (`grpc-timeout`, tonic's `Request::set_timeout`) bounds the
/// wait for a connection and for the response headers; past it the call
/// ends with `DEADLINE_EXCEEDED` and its stream is cancelled. The server
/// sees the same header.
///
/// The channel's calls never fail as `Err`: every failure is a gRPC status,
/// as a server would send it.
///
/// # Examples
///
/// ```no_run
/// use ringpool::clients::grpc::{Channel, GrpcManager};
/// use ringpool::shared::SharedPool;
/// use ringpool::tcp::Dialer;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = SharedPool::builder(GrpcManager::new(Dialer::new("127.0.0.1:50051")?))
///     .max_size(8)
///     .build()?;
/// let channel = Channel::new(pool)?;
/// // let mut client = GreeterClient::new(channel);
/// # let _ = channel;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Channel {
    pool: SharedPool<GrpcManager>,
    scheme: Scheme,
    authority: Authority,
}

/// The dialer's target is not a valid HTTP authority (`host:port`).
#[derive(Debug, thiserror::Error)]
#[error("the target {target:?} is not a valid HTTP authority: give the dialer host:port")]
pub struct InvalidAuthority {
    /// The dialer's target.
    pub target: String,
    #[source]
    source: http::uri::InvalidUri,
}

impl Channel {
    /// A channel over `pool`; its requests name the dialer's target as
    /// their `:authority`.
    pub fn new(pool: SharedPool<GrpcManager>) -> Result<Self, InvalidAuthority> {
        let target = pool.manager().dialer().target();
        let authority = Authority::try_from(target.as_str())
            .map_err(|source| InvalidAuthority { target, source })?;
        Ok(Channel {
            scheme: pool.manager().scheme(),
            pool,
            authority,
        })
    }

    /// The pool under it (its [`stats`](SharedPool::stats) show how the
    /// calls spread).
    pub fn pool(&self) -> &SharedPool<GrpcManager> {
        &self.pool
    }

    async fn send<B>(self, request: Request<B>) -> Response<GrpcBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (head, body) = request.into_parts();
        let deadline = grpc_timeout(&head.headers);
        let path = head
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()
            .expect("scheme, authority and path are each valid");
        let outgoing = match Outgoing::new(body) {
            Ok(outgoing) => outgoing,
            Err(error) => {
                let error = error.into();
                let failure = Failure::new(Code::Internal, format!("request body failed: {error}"));
                return failure.response(GrpcBody::empty());
            }
        };
        let call = self.attempts(head, uri, outgoing);
        match deadline {
            None => call.await,
            Some(timeout) => match tokio::time::timeout(timeout, call).await {
                Ok(response) => response,
                // Dropping the call dropped its stream: h2 cancels it.
                Err(_) => Failure::new(
                    Code::DeadlineExceeded,
                    format!("deadline of {timeout:?} exceeded before the response came"),
                )
                .response(GrpcBody::empty()),
            },
        }
    }

    async fn attempts<B>(
        &self,
        head: http::request::Parts,
        uri: Uri,
        mut outgoing: Outgoing<B>,
    ) -> Response<GrpcBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut unsent_retries = UNSENT_RETRIES;
        let mut refused_retry = true;
        let mut avoid = None;
        loop {
            let lease = match avoid {
                None => self.pool.get().await,
                Some(id) => self.pool.get_other_than(id).await,
            };
            let lease = match lease {
                Ok(lease) => lease,
                Err(error) => {
                    let mut message =
                        format!("no HTTP/2 connection to {}: {error}", self.authority);
                    let mut source = std::error::Error::source(&error);
                    while let Some(cause) = source {
                        message.push_str(&format!(": {cause}"));
                        source = cause.source();
                    }
                    return Failure::new(Code::Unavailable, message).response(GrpcBody::empty());
                }
            };
            let mut request = Request::new(());
            *request.method_mut() = head.method.clone();
            *request.uri_mut() = uri.clone();
            *request.headers_mut() = head.headers.clone();
            let opened = match lease.sender.clone().ready().await {
                Ok(mut sender) => sender.send_request(request, outgoing.is_empty()),
                Err(error) => Err(error),
            };
            let (response, stream) = match opened {
                Ok(opened) => opened,
                Err(error) => {
                    // Nothing was sent: the connection is closing or
                    // broke. Another one takes the call.
                    lease.close();
                    lease.drain();
                    if unsent_retries > 0 {
                        unsent_retries -= 1;
                        continue;
                    }
                    return Failure::from_h2("no HTTP/2 stream could be opened", &error)
                        .response(GrpcBody::empty());
                }
            };
            // A whole body is handed to h2 at once; a streamed one is sent
            // by a task of its own while the response comes.
            let sender = match outgoing.is_empty() {
                true => None,
                false => outgoing
                    .send_whole(stream)
                    .map(|stream| tokio::spawn(outgoing.send_on(stream))),
            };
            match response.await {
                Ok(response) => {
                    let (parts, recv) = response.into_parts();
                    return Response::from_parts(parts, GrpcBody::stream(recv, lease, sender));
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
                        tracing::debug!(%error, "gRPC stream refused: sent again on another connection");
                        continue;
                    }
                    let context = match connection_ended {
                        true => "the HTTP/2 connection broke",
                        false => "the server reset the stream",
                    };
                    return Failure::from_h2(context, &error).response(GrpcBody::empty());
                }
            }
        }
    }
}

impl<B> tower_service::Service<Request<B>> for Channel
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<GrpcBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<GrpcBody>, Infallible>> + Send>>;

    /// Always ready: a call waits for room inside the pool, first in,
    /// first out.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let channel = self.clone();
        Box::pin(async move { Ok(channel.send(request).await) })
    }
}

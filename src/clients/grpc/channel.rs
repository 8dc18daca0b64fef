//! The transport tonic's clients run on: each call takes a place on the
//! least loaded HTTP/2 connection of a shared pool for as long as its
//! response lasts.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;

use super::body::GrpcBody;
use super::status::{Code, Failure, grpc_timeout};
use crate::clients::h2::call::{self, CallError, Origin};
use crate::clients::h2::outgoing::Outgoing;
use crate::clients::h2::{H2Manager, InvalidAuthority, Lend};
use crate::shared::{SharedPool, SharedSet};

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
/// Over several endpoints of one service (replicas, a headless service's
/// pods), [`Channel::balanced`] takes a [`SharedSet`]: each call goes to
/// the endpoint with the fewest calls in flight, past one that cannot be
/// reached, and the set follows discovery.
///
/// # Examples
///
/// ```no_run
/// use ringpool::clients::grpc::Channel;
/// use ringpool::clients::h2::H2Manager;
/// use ringpool::shared::SharedPool;
/// use ringpool::tcp::Dialer;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = SharedPool::builder(H2Manager::new(Dialer::new("127.0.0.1:50051")?))
///     .max_size(8)
///     .build()?;
/// let channel = Channel::new(pool)?;
/// // let mut client = GreeterClient::new(channel);
/// # let _ = channel;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Channel<L: Lend = SharedPool<H2Manager>> {
    pool: L,
    origin: Origin,
}

impl Channel<SharedSet<H2Manager>> {
    /// A channel over every endpoint of `set`; its requests name `origin`
    /// (`http://orders.internal:50051`, `https://...` over TLS, or
    /// `host:port`) as their scheme and `:authority`, whichever endpoint
    /// serves them.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use ringpool::clients::grpc::Channel;
    /// use ringpool::clients::h2::H2Manager;
    /// use ringpool::multi::DnsSource;
    /// use ringpool::shared::SharedSet;
    /// use ringpool::tcp::Dialer;
    ///
    /// # fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let set = SharedSet::try_builder(|endpoint| Dialer::new(endpoint).map(H2Manager::new))
    ///     .configure(|pool| pool.max_size(4))
    ///     .build()?;
    /// // A headless service: one address per ready pod, polled every 10 s.
    /// let _discovery = set.discover(DnsSource::new("orders.default.svc:50051"), Duration::from_secs(10))?;
    /// let channel = Channel::balanced(set, "http://orders.default.svc:50051")?;
    /// // let mut client = OrdersClient::new(channel);
    /// # let _ = channel;
    /// # Ok(())
    /// # }
    /// ```
    pub fn balanced(set: SharedSet<H2Manager>, origin: &str) -> Result<Self, InvalidAuthority> {
        Ok(Channel {
            origin: Origin::parse(origin)?,
            pool: set,
        })
    }

    /// The set under it.
    pub fn set(&self) -> &SharedSet<H2Manager> {
        &self.pool
    }
}

impl Channel {
    /// A channel over `pool`; its requests name the dialer's target as
    /// their `:authority`.
    pub fn new(pool: SharedPool<H2Manager>) -> Result<Self, InvalidAuthority> {
        Ok(Channel {
            origin: Origin::of(&pool)?,
            pool,
        })
    }

    /// The pool under it (its [`stats`](SharedPool::stats) show how the
    /// calls spread).
    pub fn pool(&self) -> &SharedPool<H2Manager> {
        &self.pool
    }
}

impl<L: Lend> Channel<L> {
    async fn send<B>(self, request: Request<B>) -> Response<GrpcBody>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (mut head, body) = request.into_parts();
        let deadline = grpc_timeout(&head.headers);
        head.uri = self.origin.uri(&head.uri);
        let outgoing = match Outgoing::new(body) {
            Ok(outgoing) => outgoing,
            Err(error) => {
                let error = error.into();
                let failure = Failure::new(Code::Internal, format!("request body failed: {error}"));
                return failure.response(GrpcBody::empty());
            }
        };
        let call = call::send(&self.pool, &head, outgoing);
        let sent = match deadline {
            None => call.await,
            Some(timeout) => match tokio::time::timeout(timeout, call).await {
                Ok(sent) => sent,
                // Dropping the call dropped its stream: h2 cancels it.
                Err(_) => {
                    return Failure::new(
                        Code::DeadlineExceeded,
                        format!("deadline of {timeout:?} exceeded before the response came"),
                    )
                    .response(GrpcBody::empty());
                }
            },
        };
        match sent {
            Ok(response) => response.map(GrpcBody::stream),
            Err(error) => self.failure(error).response(GrpcBody::empty()),
        }
    }

    /// The status a failed call ends with.
    fn failure(&self, error: CallError) -> Failure {
        match error {
            CallError::NoConnection(error) => {
                let mut message = format!(
                    "no HTTP/2 connection to {}: {error}",
                    self.origin.authority()
                );
                let mut source = std::error::Error::source(&error);
                while let Some(cause) = source {
                    message.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                Failure::new(Code::Unavailable, message)
            }
            CallError::Unopened(error) => {
                Failure::from_h2("no HTTP/2 stream could be opened", &error)
            }
            CallError::Failed {
                error,
                connection_ended,
            } => {
                let context = match connection_ended {
                    true => "the HTTP/2 connection broke",
                    false => "the server reset the stream",
                };
                Failure::from_h2(context, &error)
            }
        }
    }
}

impl<B, L: Lend> tower_service::Service<Request<B>> for Channel<L>
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

//! Managers for the client libraries services already use, over
//! ringpool's dials: a [`tcp::Dialer`](crate::tcp::Dialer) makes the
//! socket (on io_uring, under its timeout, resolved on every dial), the
//! library runs its handshake on it, and the pool hands out the library's
//! own client.
//!
//! - [`postgres`] (feature `postgres`): `tokio_postgres::Client`.
//! - [`redis`] (feature `redis`): a `redis` multiplexed connection.
//! - [`http`] (feature `http`): a `hyper` HTTP/1.1 client connection;
//!   with feature `http2`, [`http::Http2Client`] over a shared pool.
//! - [`h2`] (feature `grpc` or `http2`): HTTP/2 connections for a
//!   [`SharedPool`](crate::shared::SharedPool).
//! - [`grpc`] (feature `grpc`): a tonic transport over a
//!   [`SharedPool`](crate::shared::SharedPool) of HTTP/2 connections.
//! - [`mysql`] (feature `mysql`): a `mysql_async::Conn`, dialed by
//!   `mysql_async` itself (it cannot take a socket somebody else dialed:
//!   see its module for what that leaves out).
//!
//! Each library drives its socket from a task of its own (spawned on the
//! tokio runtime the first dial runs on). What the pool knows of such a
//! connection comes from that task and the socket, never from a round
//! trip: when the task ends (the server closed the connection, reset it,
//! or the pool dropped the client), the connection is reported dead at
//! once, and an idle one is closed and its slot freed without anyone
//! asking (the pool's idle watch, as for the TCP manager); a checkout loads
//! the task's flag, and one of a connection idle past `check_after` also
//! polls the socket for a peer that has hung up (`POLLRDHUP`). The
//! protocol's ping (`SELECT 1`, `PING`) runs in maintenance for idle
//! connections due, for servers that hang without closing.
//!
//! The managers are [`SendManager`](crate::SendManager)s: `pool.get()`
//! futures can be spawned on a multi-threaded runtime.

pub(crate) mod link;
#[cfg(any(
    feature = "redis",
    feature = "http",
    feature = "grpc",
    feature = "http2"
))]
mod secured;

pub use link::DialError;

#[cfg(feature = "grpc")]
#[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
pub mod grpc;
#[cfg(any(feature = "grpc", feature = "http2"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "grpc", feature = "http2"))))]
pub mod h2;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
#[cfg(feature = "http2")]
mod http2;
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub mod mysql;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;

//! HTTP/2 connections lent by a [`SharedPool`](crate::shared::SharedPool)
//! (feature `grpc` or `http2`): [`H2Manager`] dials them (plain, with prior
//! knowledge, or TLS with ALPN `h2`), and the gRPC channel
//! (`clients::grpc`) and the HTTP/2 client (`clients::http::Http2Client`)
//! send their requests over them, one stream per request.

mod body;
pub(crate) mod call;
mod manager;
pub(crate) mod outgoing;

pub use body::H2Body;
pub use call::{InvalidAuthority, Lend};
pub use manager::{H2ConnectError, H2Connection, H2Manager};

//! gRPC over a shared pool of HTTP/2 connections (feature `grpc`): a
//! [`Channel`] that tonic's generated clients take as their transport, so
//! a service's calls spread over as many connections as they need.
//!
//! tonic's own channel puts every call on one HTTP/2 connection, which
//! stalls at the server's `SETTINGS_MAX_CONCURRENT_STREAMS` (often 100) and
//! leaves the throughput of more connections unused. Here each call takes
//! one stream on the least loaded connection of a
//! [`SharedPool`](crate::shared::SharedPool): at its limit, the pool dials
//! another (up to `max_size`); a connection the server closes (`GOAWAY`)
//! drains, its calls in flight finish, and new calls go elsewhere.
//!
//! Connections are made by [`H2Manager`](crate::clients::h2::H2Manager):
//! ringpool dials ([`tcp::Dialer`](crate::tcp::Dialer)), HTTP/2 with prior
//! knowledge, or over TLS with ALPN `h2` (feature `tls`); h2 runs each
//! connection on a task spawned on the tokio runtime.
//!
//! # Examples
//!
//! ```no_run
//! use ringpool::clients::grpc::Channel;
//! use ringpool::clients::h2::H2Manager;
//! use ringpool::shared::SharedPool;
//! use ringpool::tcp::Dialer;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = H2Manager::new(Dialer::new("127.0.0.1:50051")?);
//! let channel = Channel::new(SharedPool::builder(manager).max_size(8).build()?)?;
//! // A tonic-generated client takes it as it is:
//! // let mut greeter = GreeterClient::new(channel.clone());
//! // let reply = greeter.say_hello(request).await?;
//! println!("{:?}", channel.pool().stats());
//! # Ok(())
//! # }
//! ```

mod body;
mod channel;
mod status;

pub use body::GrpcBody;
pub use channel::Channel;

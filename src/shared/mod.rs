//! Shared checkouts: a pool whose connections each carry many requests at
//! once (HTTP/2, gRPC), lent to many callers up to each one's capacity.
//!
//! [`Pool`](crate::Pool) lends a connection to one caller at a time, which
//! is right for PostgreSQL or HTTP/1.1. HTTP/2 and gRPC connections carry
//! many requests at once, up to the server's
//! `SETTINGS_MAX_CONCURRENT_STREAMS`; lending them exclusively wastes them,
//! and putting every request on one connection stalls at that limit.
//! [`SharedPool`] lends one place on a connection per request:
//!
//! - it picks the least loaded open connection with room, so requests
//!   spread evenly;
//! - it dials another, up to `max_size`, when every open one is full, and
//!   queues callers first in, first out, when it may not;
//! - a connection whose server says it is closing (HTTP/2 `GOAWAY`), or
//!   that reaches `max_lifetime` or `max_requests_per_connection`, drains:
//!   no new request, its requests in flight finish, then it goes, and a
//!   replacement is dialed when callers need one.
//!
//! The settings are fixed when the pool is built. [`SharedSet`] keeps one
//! pool per endpoint of a service and follows discovery. `clients::grpc`
//! builds a tonic transport on either.

mod builder;
mod error;
mod handoff;
mod inner;
mod lease;
mod maintenance;
mod manager;
#[cfg(feature = "prometheus")]
mod metrics;
mod pool;
mod set;
mod settings;
mod table;

pub use builder::SharedBuilder;
pub use error::SharedError;
pub use manager::SharedManager;
pub use pool::{Lease, SharedPool, SharedStats};
pub use set::{SharedSet, SharedSetBuilder};

#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![warn(
    rust_2018_idioms,
    unreachable_pub,
    missing_debug_implementations,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The layers, from the bottom up; each module's documentation says what it
// owns and what it may touch.
mod core;
mod drop_guard;
mod pool;
mod sync;
mod thread_number;
mod time;

mod config;
mod error;
pub mod hooks;
mod manager;
mod metrics;
mod send_manager;

pub mod multi;
pub mod shared;

mod checkout;
mod dial;
mod lifecycle;

#[cfg(all(
    target_os = "linux",
    any(
        feature = "postgres",
        feature = "redis",
        feature = "http",
        feature = "mysql",
        feature = "grpc"
    )
))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(
        feature = "postgres",
        feature = "redis",
        feature = "http",
        feature = "mysql",
        feature = "grpc"
    )))
)]
pub mod clients;
#[cfg(target_os = "linux")]
#[cfg_attr(docsrs, doc(cfg(target_os = "linux")))]
pub mod tcp;
#[cfg(target_os = "linux")]
mod uring;

pub use checkout::Pooled;
pub use config::{Config, ConfigError, IdleOrder, SETTINGS};
pub use error::{Error, TimeoutError, UnavailableError};
pub use lifecycle::DrainReport;
pub use manager::{
    CloseReason, ErrorClass, IdleDeaths, IdleWatch, IdleWatcher, Manager, TlsHandshakes,
};
pub use metrics::{ClosedCounts, Stats, Status};
pub use pool::Pool;
pub use pool::builder::Builder;
pub use send_manager::SendManager;
pub use time::{Clock, ClockDriver, MockClock, RECENT_TIME_INTERVAL};
#[cfg(target_os = "linux")]
#[cfg_attr(docsrs, doc(cfg(target_os = "linux")))]
pub use uring::{BackendError, probe as probe_io_uring};

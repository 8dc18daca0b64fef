#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub)]

mod acquire;
mod builder;
mod clock;
mod config;
mod config_text;
mod dial;
mod dial_gate;
mod drain;
mod error;
mod guard;
mod idle;
mod leak;
mod lifecycle;
mod maintenance;
mod manager;
mod pool;
mod slots;
mod stats;
mod status;
mod sync;
pub mod tcp;
mod timer;
mod uring;
#[cfg(feature = "tokio-uring")]
pub mod uring_io;
mod waiters;

pub use builder::Builder;
pub use clock::{Clock, MockClock, RECENT_TIME_INTERVAL};
pub use config::{Config, ConfigError};
pub use config_text::SETTINGS;
pub use drain::DrainReport;
pub use error::{Error, TimeoutError, UnavailableError};
pub use guard::Pooled;
pub use manager::{CloseReason, ErrorClass, Manager};
pub use pool::Pool;
pub use stats::{ClosedCounts, Stats};
pub use status::Status;
pub use uring::{BackendError, probe as probe_io_uring};

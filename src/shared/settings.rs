//! A shared pool's settings and their defaults.

use std::time::Duration;

/// The settings of a [`SharedPool`], fixed when it is built.
#[derive(Clone, Debug)]
pub(crate) struct SharedSettings {
    pub(crate) max_size: usize,
    pub(crate) max_streams: usize,
    pub(crate) max_requests_per_connection: Option<u64>,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) acquire_timeout: Duration,
    pub(crate) connect_timeout: Duration,
}

impl Default for SharedSettings {
    fn default() -> Self {
        SharedSettings {
            max_size: 16,
            max_streams: 100,
            max_requests_per_connection: None,
            max_lifetime: None,
            acquire_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

//! A shared pool's settings and their defaults.

use std::time::Duration;

/// The settings of a [`SharedPool`], fixed when it is built.
#[derive(Clone, Debug)]
pub(crate) struct SharedSettings {
    /// The `pool` field of its logs and label of its metrics.
    pub(crate) name: String,
    pub(crate) max_size: usize,
    pub(crate) max_streams: usize,
    pub(crate) max_requests_per_connection: Option<u64>,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) acquire_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    /// First backoff after a failed dial; it doubles with each failure in
    /// a row, up to `connect_backoff_max`.
    pub(crate) connect_backoff: Duration,
    pub(crate) connect_backoff_max: Duration,
    /// Failed dials in a row that open the breaker (`None`: never).
    pub(crate) breaker_threshold: Option<u32>,
    /// A connection that carried no request for this long drains
    /// (`None`: never); applied by maintenance.
    pub(crate) idle_timeout: Option<Duration>,
    /// How often maintenance runs.
    pub(crate) maintenance_interval: Duration,
    /// The first connection id (a set of pools numbers each pool's
    /// connections apart).
    pub(crate) first_id: u64,
}

impl SharedSettings {
    /// The dial gate's settings, in the exclusive pool's terms (the gate
    /// is the same).
    pub(crate) fn gate_config(&self) -> crate::Config {
        crate::Config {
            connect_backoff: self.connect_backoff,
            connect_backoff_max: self.connect_backoff_max,
            breaker_threshold: self.breaker_threshold,
            // Dials are bounded by the table (room for the callers queued).
            max_concurrent_dials: usize::MAX,
            ..crate::Config::default()
        }
    }
}

impl Default for SharedSettings {
    fn default() -> Self {
        SharedSettings {
            name: "default".to_string(),
            max_size: 16,
            max_streams: 100,
            max_requests_per_connection: None,
            max_lifetime: None,
            acquire_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            connect_backoff: Duration::from_millis(50),
            connect_backoff_max: Duration::from_millis(200),
            breaker_threshold: Some(5),
            idle_timeout: Some(Duration::from_secs(30)),
            maintenance_interval: Duration::from_secs(5),
            first_id: 0,
        }
    }
}

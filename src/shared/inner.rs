//! What a shared pool's handles share.

use std::collections::HashMap;
use std::sync::Arc;

use crate::dial::gate::DialGate;
use crate::sync::plain::{AtomicU64, Mutex};
use crate::time::Clock;

use super::manager::SharedManager;
use super::settings::SharedSettings;
use super::table::Table;

/// The state behind every clone of a [`SharedPool`](super::SharedPool).
pub(super) struct Inner<M: SharedManager> {
    pub(super) manager: M,
    pub(super) table: Arc<Table<M::Connection>>,
    pub(super) settings: SharedSettings,
    pub(super) clock: Clock,
    /// Backoff after failed dials, and the breaker with its probe: the
    /// exclusive pool's gate.
    pub(super) gate: DialGate,
    pub(super) gate_config: crate::Config,
    pub(super) last_connect_error: Mutex<Option<Arc<M::Error>>>,
    /// Maintenance's notes on connections with no load: id -> (requests
    /// started when first seen idle, when).
    pub(super) idle_since: Mutex<HashMap<u64, (u64, u64)>>,
    pub(super) connects: AtomicU64,
    pub(super) connect_failures: AtomicU64,
    pub(super) leases: AtomicU64,
}

//! One endpoint of a multi-endpoint pool: its sub-pool and its health.

use std::sync::Arc;

use super::endpoint::Endpoint;
use super::health::Health;
use super::member::Member;
use crate::manager::Manager;
use crate::pool::Pool;

/// One endpoint: its sub-pool and its health.
pub(crate) struct Node<M: Manager> {
    pub(crate) endpoint: Endpoint,
    pub(crate) pool: Pool<Member<M>>,
    pub(crate) health: Arc<Health>,
}

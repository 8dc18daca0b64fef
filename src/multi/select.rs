//! Which endpoint a get tries first, and in which order it fails over.

use std::sync::Arc;

use super::node::Node;
use crate::manager::Manager;
use crate::sync::{AtomicUsize, Ordering};

/// How a [`MultiPool`](super::MultiPool) picks the endpoint for a get.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Selection {
    /// Each get takes the next endpoint in turn: requests spread evenly
    /// whatever each endpoint's latency. The default.
    #[default]
    RoundRobin,
    /// Each get takes the endpoint with the fewest connections checked out
    /// (ties in turn): a slow endpoint holds its connections longer and so
    /// gets fewer requests.
    LeastInUse,
}

/// The order in which a get tries `nodes`: the selected one first, then
/// the others in turn after it, so a failover spreads over the rest too.
pub(crate) fn order<M: Manager>(
    selection: Selection,
    nodes: &[Arc<Node<M>>],
    next: &AtomicUsize,
) -> impl Iterator<Item = usize> {
    let len = nodes.len();
    let turn = match len {
        0 => 0,
        _ => next.fetch_add(1, Ordering::Relaxed) % len,
    };
    let first = match selection {
        Selection::RoundRobin => turn,
        Selection::LeastInUse => (0..len)
            .map(|offset| (turn + offset) % len)
            .filter(|&at| !nodes[at].health.is_ejected())
            .min_by_key(|&at| nodes[at].pool.status().in_use)
            .unwrap_or(turn),
    };
    (0..len).map(move |offset| (first + offset) % len)
}

//! Maintenance of a multi-endpoint pool: every sub-pool's maintenance task
//! ([`Pool::maintenance`](crate::Pool::maintenance)), run together as one
//! future.
//!
//! Owns: which sub-pools have a maintenance task running. The future
//! starts a task for each endpoint in the set, and for each one that joins
//! later (the set's update wakes it); a removed endpoint's task ends on its
//! own (its sub-pool is closed as it leaves), and the future ends when the
//! multi-endpoint pool is closed or dropped (it holds the pool weakly).
//! Through the sub-pools' tasks, refill dials and health-check pings run
//! with no get asking, and their failures count towards ejection.

use std::future::{Future, poll_fn};
use std::sync::Weak;
use std::task::Poll;

use futures_util::stream::{FuturesUnordered, StreamExt};

use super::node::Node;
use super::shared::Shared;
use crate::manager::Manager;
use crate::sync::Ordering;

/// Every sub-pool's maintenance, as they join, until the pool is closed or
/// dropped.
pub(crate) async fn run<M: Manager>(shared: Weak<Shared<M>>) {
    // The nodes with a task, weakly: a node dropped or gone from the set is
    // forgotten (its task ends with its sub-pool).
    let mut started: Vec<Weak<Node<M>>> = Vec::new();
    let mut tasks = FuturesUnordered::new();
    poll_fn(|cx| {
        {
            let Some(shared) = shared.upgrade() else {
                return Poll::Ready(());
            };
            if shared.closed.load(Ordering::Acquire) {
                return Poll::Ready(());
            }
            // Registered before the set is read: an update after the read
            // wakes this task.
            shared.register_maintainer(cx.waker());
            let set = shared.set.load_full();
            started.retain(|node| {
                node.upgrade()
                    .is_some_and(|node| set.nodes.iter().any(|n| std::ptr::eq(&**n, &*node)))
            });
            for node in &set.nodes {
                let known = started
                    .iter()
                    .any(|seen| std::ptr::eq(seen.as_ptr(), &**node));
                if !known {
                    started.push(std::sync::Arc::downgrade(node));
                    tasks.push(node.pool.maintenance());
                }
            }
            // The strong handle is dropped here: pending, this future
            // keeps nothing alive.
        }
        while let Poll::Ready(Some(())) = tasks.poll_next_unpin(cx) {}
        Poll::Pending
    })
    .await;
}

/// One maintenance round of every sub-pool, run together.
pub(crate) fn round<M: Manager>(shared: &Shared<M>) -> impl Future<Output = ()> + '_ {
    let set = shared.set.load_full();
    async move {
        let rounds: FuturesUnordered<_> = set
            .nodes
            .iter()
            .map(|node| node.pool.run_maintenance())
            .collect();
        rounds.collect::<Vec<()>>().await;
    }
}

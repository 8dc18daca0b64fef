//! A multi-endpoint checkout: pick an endpoint, and fail over to the next
//! healthy one when it cannot connect.
//!
//! A get tries the endpoints in the order `select::order` gives, skipping
//! the ejected, under one deadline (the sub-pools' `acquire_timeout`, from
//! the get's start). An endpoint that fails to serve it (its dial failed:
//! [`Error::Unavailable`] or [`Error::Connect`] from the sub-pool, whose
//! breaker opens at the first failed dial) counts a failure towards its
//! ejection and the get moves on; an endpoint removed meanwhile
//! ([`Error::Closed`]) is skipped. Only a timeout ends the get early: its
//! time is spent. A probe's connection is pinged before it is handed out
//! (under `ping_timeout`): an endpoint that accepts but does not answer
//! stays ejected, for twice as long.

use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use super::error::MultiError;
use super::guard::MultiPooled;
use super::health::{Admit, Health, Kind};
use super::member::Member;
use super::node::Node;
use super::select::order;
use super::shared::Shared;
use crate::checkout::Pooled;
use crate::drop_guard::{DropGuard, Unwinding};
use crate::error::Error;
use crate::manager::{CloseReason, Manager};
use crate::sync::Ordering;
use crate::time::{Raced, nanos, with_deadline};

/// A get whose endpoint set was swapped under it finds every endpoint it
/// loaded closed; it loads the set again this many times.
const RELOADS: usize = 3;

fn release_probe(health: &Health, (): (), _: Unwinding) {
    health.release_probe();
}

/// What a probe's health check said.
enum Verdict {
    Answered,
    /// The ping failed, or took `ping_timeout`.
    Failed,
    /// The get's deadline came first: no verdict.
    OutOfTime,
    /// The manager's ping panicked: no verdict either.
    Panicked(Box<dyn std::any::Any + Send>),
}

/// Pings the probe's connection, under `ping_timeout` and the get's
/// deadline: a probe proves the endpoint answers, not only that it accepts
/// connections (a hung server does), so a hung endpoint stays ejected
/// instead of coming back for a round of failures at each probe.
async fn answers<M: Manager>(
    shared: &Shared<M>,
    node: &Node<M>,
    conn: &mut Pooled<'static, Member<M>>,
    deadline: u64,
) -> Verdict {
    let ping_limit = shared
        .clock
        .now()
        .saturating_add(nanos(shared.config.ping_timeout));
    let limit = ping_limit.min(deadline);
    let mut ping = pin!(with_deadline(
        &shared.clock,
        limit,
        node.pool.manager().ping(&mut **conn)
    ));
    // The manager's ping is user code: if it panics, the connection (in an
    // unknown state) is closed through the manager, not given back, and the
    // probe released, before the panic goes on to the caller.
    let raced = poll_fn(
        |cx| match catch_unwind(AssertUnwindSafe(|| ping.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(raced)) => Poll::Ready(Ok(raced)),
            Err(panic) => Poll::Ready(Err(panic)),
        },
    )
    .await;
    match raced {
        Ok(Raced::Done(Ok(()))) => Verdict::Answered,
        Ok(Raced::Done(Err(_))) => Verdict::Failed,
        Ok(Raced::TimedOut) if limit == ping_limit => Verdict::Failed,
        Ok(Raced::TimedOut) => Verdict::OutOfTime,
        Err(panic) => Verdict::Panicked(panic),
    }
}

pub(crate) async fn checkout<M: Manager>(
    shared: &Shared<M>,
) -> Result<MultiPooled<M>, MultiError<M::Error>> {
    let deadline = shared
        .clock
        .now()
        .saturating_add(nanos(shared.config.acquire_timeout));
    for _ in 0..RELOADS {
        if shared.closed.load(Ordering::Acquire) {
            return Err(MultiError::Closed);
        }
        let set = shared.set.load_full();
        if set.nodes.is_empty() {
            return Err(MultiError::NoEndpoints);
        }
        let (mut tried, mut last) = (0, None);
        for at in order(shared.selection, &set.nodes, &shared.next) {
            let node = &set.nodes[at];
            let now = shared.clock.now();
            let probe = match node.health.admit(now) {
                Admit::No => continue,
                Admit::Yes => false,
                Admit::Probe => true,
            };
            // Given back if the get ends with no verdict (timed out, dropped).
            let claim = probe.then(|| DropGuard::new(&*node.health, (), release_probe));
            tried += 1;
            let left = Duration::from_nanos(deadline.saturating_sub(now));
            match node.pool.get_timeout(left).await.map(Pooled::into_owned) {
                Ok(mut conn) => {
                    if probe {
                        match answers(shared, node, &mut conn, deadline).await {
                            Verdict::Answered => {}
                            Verdict::Failed => {
                                claim.map(DropGuard::disarm);
                                conn.close(CloseReason::Broken);
                                shared.failed(
                                    &node.endpoint,
                                    &node.health,
                                    Kind::Use,
                                    true,
                                    "the probe's health check failed",
                                );
                                // Ejected again, with nothing to report but
                                // that: as if it had not been tried.
                                tried -= 1;
                                continue;
                            }
                            Verdict::OutOfTime => {
                                conn.close(CloseReason::Broken);
                                continue; // the claim is given back as it drops
                            }
                            Verdict::Panicked(panic) => {
                                conn.close(CloseReason::Broken);
                                drop(claim); // the next get probes
                                std::panic::resume_unwind(panic);
                            }
                        }
                    }
                    claim.map(DropGuard::disarm);
                    if node.health.success(Kind::Use, probe) {
                        tracing::info!(
                            pool = %shared.name, endpoint = %node.endpoint,
                            "probe succeeded, endpoint back in rotation"
                        );
                    }
                    return Ok(MultiPooled::new(conn, Arc::clone(node)));
                }
                Err(Error::Closed) => {}
                Err(error) if error.is_timeout() => {
                    return Err(MultiError::Failed {
                        tried,
                        endpoint: node.endpoint.clone(),
                        error,
                    });
                }
                Err(error) => {
                    claim.map(DropGuard::disarm);
                    shared.failed(
                        &node.endpoint,
                        &node.health,
                        Kind::Use,
                        probe,
                        "could not connect",
                    );
                    tracing::debug!(
                        pool = %shared.name, endpoint = %node.endpoint, %error,
                        "endpoint failed a get, trying the next"
                    );
                    last = Some((node.endpoint.clone(), error));
                }
            }
        }
        if let Some((endpoint, error)) = last {
            return Err(MultiError::Failed {
                tried,
                endpoint,
                error,
            });
        }
        if tried == 0 {
            let now = shared.clock.now();
            let retry_in = set
                .nodes
                .iter()
                .filter_map(|node| node.health.ejected_for(now))
                .min()
                .unwrap_or_default();
            return Err(MultiError::AllEjected {
                ejected: set.nodes.len(),
                retry_in,
            });
        }
        // Every endpoint it tried was removed while it tried: the set has
        // changed, load it again.
    }
    Err(MultiError::NoEndpoints)
}

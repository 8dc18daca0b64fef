//! One dial, and what its outcome does to the pool: a new entry, or
//! backoff, breaker and failed waiters.

use std::sync::Arc as StdArc;

use super::permit::Dialing;
use crate::checkout::claim::Claim;
use crate::core::entry::Entry;
use crate::core::waiters::Outcome;
use crate::manager::{ErrorClass, Manager};
use crate::metrics::stats::Counter;
use crate::pool::inner::Inner;
use crate::time::{Raced, nanos, with_deadline};

/// How long background refills pause after a fatal connect error (bad
/// credentials, a forbidden address): long, because only a change (a fixed
/// config, a recovered server) can help. A `reconfigure` or a successful
/// dial lifts the pause at once.
pub(crate) const FATAL_REFILL_PAUSE: std::time::Duration = std::time::Duration::from_secs(30);

/// How a dial ended, when it did not produce a connection.
pub(crate) enum DialEnd<E> {
    Fatal(StdArc<E>),
    Retry,
    TimedOut,
}

/// Dials into `slot` until `deadline` (the caller's) or `create_timeout`,
/// whichever comes first. On success the slot becomes the new connection's;
/// otherwise it is given back.
pub(crate) async fn dial<'a, M: Manager>(
    inner: &'a Inner<M>,
    slot: Claim<'a, M>,
    mut dialing: Dialing<'a, M>,
    deadline: u64,
) -> Result<Entry<M::Connection>, DialEnd<M::Error>> {
    let started = inner.clock.now();
    let limit = started.saturating_add(inner.settings.load().create_timeout_ns);
    let outcome = with_deadline(
        &inner.clock,
        limit.min(deadline),
        tracing::Instrument::instrument(
            inner.hooks.connect(&inner.manager, &inner.name),
            inner.span.clone(),
        ),
    )
    .await;
    if let Raced::Done(_) = outcome {
        dialing.finished = true;
    }
    match outcome {
        // The caller's own deadline: it gave up; the dial is cancelled.
        Raced::TimedOut if limit > deadline => Err(DialEnd::TimedOut),
        Raced::TimedOut => {
            dialing.finished = true;
            Err(timed_out(inner, slot, started))
        }
        Raced::Done(Ok(conn)) => {
            inner.stats.incr(Counter::Connects);
            if inner.gate.on_success() {
                tracing::info!(pool = %inner.name, endpoint = %inner.endpoint, "dial succeeded, breaker closed");
            }
            let _slot_is_the_connections_now = slot.disarm();
            let recent = inner.clock.recent();
            Ok(Entry::new(conn, recent, recent))
        }
        Raced::Done(Err(error)) => Err(failed(inner, slot, error)),
    }
}

/// A dial ran past `create_timeout`: a failure for backoff and the
/// breaker, like a refused connect.
fn timed_out<M: Manager>(inner: &Inner<M>, slot: Claim<'_, M>, started: u64) -> DialEnd<M::Error> {
    let now = inner.clock.now();
    inner.stats.incr(Counter::ConnectErrors);
    let took_ms = (now - started) / 1_000_000;
    back_off(
        inner,
        slot,
        now,
        format_args!("no connection within create_timeout ({took_ms} ms)"),
    )
}

/// A retryable failure: close the gate for the backoff, fail the queue if
/// the breaker opened (nobody should wait out a timeout for a target that
/// is down), and wake the waiters so they wait for the gate.
fn back_off<M: Manager>(
    inner: &Inner<M>,
    slot: Claim<'_, M>,
    now: u64,
    cause: std::fmt::Arguments<'_>,
) -> DialEnd<M::Error> {
    let reopen = inner.gate.on_failure(now, &inner.settings.load().config);
    tracing::warn!(
        pool = %inner.name, endpoint = %inner.endpoint, %cause,
        failures = inner.gate.consecutive_failures(),
        backoff_ms = (reopen - now) / 1_000_000,
        "dial failed, backing off"
    );
    if inner.gate.breaker_open() {
        inner.core.waiters.settle_all(|| Outcome::Unavailable);
    }
    drop(slot);
    inner.core.waiters.wake_all();
    DialEnd::Retry
}

/// A dial failed with `error`: record it, back off, and fail the waiters
/// that cannot be served any more.
fn failed<M: Manager>(inner: &Inner<M>, slot: Claim<'_, M>, error: M::Error) -> DialEnd<M::Error> {
    let now = inner.clock.now();
    inner.stats.incr(Counter::ConnectErrors);
    let class = inner.manager.classify(&error);
    let error = StdArc::new(error);
    inner.record_connect_error(StdArc::clone(&error));
    match class {
        ErrorClass::Fatal => {
            // Refills stop until a dial succeeds, the config changes, or
            // the pause has passed: retrying at once cannot help.
            let resume = now.saturating_add(nanos(FATAL_REFILL_PAUSE));
            inner.gate.pause_refills(resume);
            tracing::error!(pool = %inner.name, endpoint = %inner.endpoint, error = %error, refills_paused_ms = (resume - now) / 1_000_000,
                "connect failed fatally");
            // Fail the queue before the slot is freed, or the slot would be
            // handed to a waiter to dial again.
            inner
                .core
                .waiters
                .settle_all(|| Outcome::Failed(StdArc::clone(&error)));
            drop(slot);
            DialEnd::Fatal(error)
        }
        ErrorClass::Retryable => back_off(inner, slot, now, format_args!("{error}")),
    }
}

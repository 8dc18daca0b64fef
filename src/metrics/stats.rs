//! Monotonic counters, striped per thread so the hot path pays one
//! uncontended atomic add and never a lock.
//!
//! Each thread adds to its own cache-padded stripe (threads beyond the stripe
//! count share stripes, which stays correct because adds are atomic); a
//! snapshot sums the stripes. Counters are bookkeeping, not protocol, so they
//! use `std` atomics even under loom.

use crate::sync::plain::{AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::manager::{CloseReason, TlsHandshakes};

/// One counter per variant.
#[derive(Clone, Copy, Debug)]
#[repr(usize)]
pub(crate) enum Counter {
    /// Gets served from idle without leaving the fast path, but for those
    /// served from their thread's own slot: the idle store counts these
    /// (`IdleStore::taken_from_slots`) with no write of ours.
    FastReuse,
    /// Of the fast path's takes the idle store counted, those whose
    /// connection then failed its checks (not served there).
    FastRefund,
    /// Gets that left the fast path (each is counted once).
    SlowGets,
    /// Slow-path gets served with an idle connection.
    SlowReuse,
    /// Nanoseconds waited by gets that waited (their count is the sum of
    /// the wait histogram's buckets).
    WaitNanos,
    Timeouts,
    Connects,
    ConnectErrors,
    DialsCancelled,
    ClosedBroken,
    ClosedIdleTimeout,
    ClosedLifetime,
    ClosedResize,
    ClosedDiscarded,
    ClosedAbandoned,
    ClosedEvicted,
    ClosedRejected,
    ClosedPoolClosed,
    ClosedHangup,
    ClosedFinished,
    Detached,
    Leaks,
    ManagerPanics,
    YoungDeaths,
    /// Gets that failed with an error other than a timeout.
    GetFailures,
    /// Gets served with a connection they dialed.
    DialedGets,
    /// Liveness checks and pings run.
    HealthChecks,
    /// Liveness checks and pings that found the connection dead.
    HealthCheckFailures,
    /// Returned connections put back into use by the manager's recycle step.
    Recycled,
    /// Recycle steps that failed, timed out or panicked.
    RecycleFailures,
}

const COUNTERS: usize = Counter::RecycleFailures as usize + 1;

/// Upper bounds, in nanoseconds, of the acquire-wait histogram's buckets
/// (a last bucket above them holds the rest): 100 µs to 5 s.
pub(crate) const WAIT_BUCKET_BOUNDS_NS: [u64; 10] = [
    100_000,
    500_000,
    1_000_000,
    5_000_000,
    10_000_000,
    50_000_000,
    100_000_000,
    500_000_000,
    1_000_000_000,
    5_000_000_000,
];
const STRIPES: usize = 8;

/// Buckets of the acquire-wait histogram, striped like the counters (a
/// shared line would bounce between the cores of waiting gets).
const WAIT_BUCKETS: usize = WAIT_BUCKET_BOUNDS_NS.len() + 1;

type Stripe = CachePadded<[AtomicU64; COUNTERS + WAIT_BUCKETS]>;

pub(crate) struct StatsCells {
    /// Each stripe: the counters, then how many gets that waited waited
    /// within each bucket of `WAIT_BUCKET_BOUNDS_NS`.
    stripes: Box<[Stripe]>,
}

#[inline]
fn stripe_index() -> usize {
    crate::thread_number::thread_number() % STRIPES
}

impl StatsCells {
    pub(crate) fn new() -> Self {
        let stripes = (0..STRIPES)
            .map(|_| CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0))))
            .collect();
        StatsCells { stripes }
    }

    /// Records a get that waited `nanos`: two adds to this thread's
    /// stripe (the count of such gets is the histogram's total).
    pub(crate) fn waited(&self, nanos: u64) {
        let bucket = WAIT_BUCKET_BOUNDS_NS
            .iter()
            .position(|&bound| nanos <= bound)
            .unwrap_or(WAIT_BUCKET_BOUNDS_NS.len());
        let stripe = &self.stripes[stripe_index()];
        stripe[Counter::WaitNanos as usize].fetch_add(nanos, Ordering::Relaxed);
        stripe[COUNTERS + bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// The acquire-wait histogram: a count per bucket (not cumulative).
    pub(crate) fn wait_buckets(&self) -> [u64; WAIT_BUCKETS] {
        std::array::from_fn(|i| {
            self.stripes
                .iter()
                .map(|stripe| stripe[COUNTERS + i].load(Ordering::Relaxed))
                .sum()
        })
    }

    /// Records health checks: `checked` run, `failed` of them found dead.
    pub(crate) fn health_checks(&self, checked: u64, failed: u64) {
        self.add(Counter::HealthChecks, checked);
        if failed != 0 {
            self.add(Counter::HealthCheckFailures, failed);
        }
    }

    #[inline]
    pub(crate) fn add(&self, counter: Counter, n: u64) {
        self.stripes[stripe_index()][counter as usize].fetch_add(n, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn incr(&self, counter: Counter) {
        self.add(counter, 1);
    }

    pub(crate) fn closed(&self, reason: CloseReason) {
        self.incr(match reason {
            CloseReason::Broken => Counter::ClosedBroken,
            CloseReason::IdleTimeout => Counter::ClosedIdleTimeout,
            CloseReason::Lifetime => Counter::ClosedLifetime,
            CloseReason::Resize => Counter::ClosedResize,
            CloseReason::Discarded => Counter::ClosedDiscarded,
            CloseReason::Abandoned => Counter::ClosedAbandoned,
            CloseReason::Evicted => Counter::ClosedEvicted,
            CloseReason::Rejected => Counter::ClosedRejected,
            CloseReason::PoolClosed => Counter::ClosedPoolClosed,
            CloseReason::Hangup => Counter::ClosedHangup,
            CloseReason::Finished => Counter::ClosedFinished,
        });
    }

    fn sum(&self, counter: Counter) -> u64 {
        self.stripes
            .iter()
            .map(|stripe| stripe[counter as usize].load(Ordering::Relaxed))
            .sum()
    }

    /// The counters now; `slot_takes` is the idle store's count of fast
    /// takes from threads' own slots (`IdleStore::taken_from_slots`).
    pub(crate) fn snapshot(&self, slot_takes: u64) -> Stats {
        use Counter::*;
        let s = |c| self.sum(c);
        // Each refund follows its take: read first, never more than them.
        let refunds = s(FastRefund);
        let fast = s(FastReuse) + slot_takes.saturating_sub(refunds);
        Stats {
            gets: fast + s(SlowGets),
            reused: fast + s(SlowReuse),
            waited: self.wait_buckets().iter().sum(),
            timeouts: s(Timeouts),
            connects: s(Connects),
            connect_errors: s(ConnectErrors),
            dials_cancelled: s(DialsCancelled),
            closed: ClosedCounts {
                broken: s(ClosedBroken),
                idle_timeout: s(ClosedIdleTimeout),
                lifetime: s(ClosedLifetime),
                resize: s(ClosedResize),
                discarded: s(ClosedDiscarded),
                abandoned: s(ClosedAbandoned),
                evicted: s(ClosedEvicted),
                rejected: s(ClosedRejected),
                pool_closed: s(ClosedPoolClosed),
                hangup: s(ClosedHangup),
                finished: s(ClosedFinished),
            },
            detached: s(Detached),
            leaks: s(Leaks),
            manager_panics: s(ManagerPanics),
            get_failures: s(GetFailures),
            dialed: s(DialedGets),
            health_checks: s(HealthChecks),
            health_check_failures: s(HealthCheckFailures),
            recycled: s(Recycled),
            recycle_failures: s(RecycleFailures),
            tls_handshakes: TlsHandshakes::default(),
            young_deaths: s(YoungDeaths),
            wait_time: Duration::from_nanos(s(WaitNanos)),
        }
    }
}

/// Monotonic counters since the pool was built. Read with
/// [`Pool::stats`](crate::Pool::stats); each field only ever grows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Calls to `get`, `get_blocking` and `try_get` that reached the pool.
    pub gets: u64,
    /// Gets served with a connection that was already open.
    pub reused: u64,
    /// Gets that had to queue behind others or wait for a connection.
    pub waited: u64,
    /// Gets that failed with an acquire timeout.
    pub timeouts: u64,
    /// Connections opened (successful dials). Once nothing is in flight,
    /// `connects = closed_total() + detached + Status::size`.
    pub connects: u64,
    /// Dials that failed.
    pub connect_errors: u64,
    /// Dials abandoned before they finished: the get was dropped, or its
    /// acquire timeout ran out mid-dial.
    pub dials_cancelled: u64,
    /// Connections closed, by reason.
    pub closed: ClosedCounts,
    /// Connections taken out of the pool for good with `Pooled::detach`.
    pub detached: u64,
    /// Checkouts held longer than `leak_threshold` (each reported once).
    pub leaks: u64,
    /// Panics in the manager that the pool caught: in `Manager::close`
    /// anywhere, and in any callback on a background path (maintenance,
    /// housekeeping). A panic in a callback a caller's own get or return
    /// ran propagates to that caller instead, after the pool has closed the
    /// connection and freed its slot.
    pub manager_panics: u64,
    /// Gets served with a connection they dialed themselves (the rest of
    /// the served gets were `reused`).
    pub dialed: u64,
    /// Gets that failed with an error other than a timeout (a fatal
    /// connect error, an open breaker, a closed pool).
    pub get_failures: u64,
    /// Health checks run: liveness checks (at checkout and in maintenance)
    /// and pings.
    pub health_checks: u64,
    /// Health checks that found the connection dead (it was closed).
    pub health_check_failures: u64,
    /// New connections that died within `young_death_window` of their
    /// dial (found dead, hung up, discarded): they pace dials, and never
    /// count as failed dials for the breaker.
    pub young_deaths: u64,
    /// Returned connections the manager's recycle step (`Manager::recycle`)
    /// put back into use.
    pub recycled: u64,
    /// Recycle steps that failed, timed out or panicked (their connections
    /// were closed as broken).
    pub recycle_failures: u64,
    /// TLS handshakes the manager's dials completed, full and resumed
    /// ([`Manager::tls_handshakes`](crate::Manager::tls_handshakes)); zero
    /// for a manager without TLS.
    pub tls_handshakes: TlsHandshakes,
    /// Total time spent waiting by gets that waited.
    pub wait_time: Duration,
}

impl Stats {
    /// Every connection the pool has closed, whatever the reason.
    pub fn closed_total(&self) -> u64 {
        let c = &self.closed;
        c.broken
            + c.idle_timeout
            + c.lifetime
            + c.resize
            + c.discarded
            + c.abandoned
            + c.evicted
            + c.rejected
            + c.pool_closed
            + c.hangup
            + c.finished
    }
}

/// Connections closed, by [`CloseReason`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClosedCounts {
    /// Found dead at checkout, by a ping, or not recyclable when returned.
    pub broken: u64,
    /// Idle longer than `idle_timeout`.
    pub idle_timeout: u64,
    /// Older than their `max_lifetime`.
    pub lifetime: u64,
    /// Surplus after `max_size` was lowered.
    pub resize: u64,
    /// Discarded by their user.
    pub discarded: u64,
    /// Given back mid-request (a cancelled request, a reply not read).
    pub abandoned: u64,
    /// Evicted by [`Pool::retain`](crate::Pool::retain).
    pub evicted: u64,
    /// Refused by a `before_checkout` or `on_return` hook.
    pub rejected: u64,
    /// Closed because the pool was closed or dropped.
    pub pool_closed: u64,
    /// Seen dying while idle by the manager's idle watch (the peer closed
    /// or reset them).
    pub hangup: u64,
    /// Ended by their peer after serving their use (HTTP
    /// `Connection: close`).
    pub finished: u64,
}

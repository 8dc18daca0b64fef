//! The errors a checkout fails with, filled from the pool's state.

use std::time::Duration;

use crate::error::{Error, TimeoutError, UnavailableError};
use crate::manager::Manager;
use crate::metrics::stats::Counter;
use crate::pool::inner::Inner;

/// The breaker refused to dial.
pub(crate) fn unavailable<M: Manager>(inner: &Inner<M>) -> Error<M::Error> {
    let now = inner.clock.now();
    Error::Unavailable(UnavailableError {
        consecutive_failures: inner.gate.consecutive_failures(),
        retry_in: Duration::from_nanos(inner.gate.closed_until(now).unwrap_or(now) - now),
        last_connect_error: inner.last_connect_error(),
    })
}

/// A get that started at `start` ran out of time.
pub(crate) fn timed_out<M: Manager>(inner: &Inner<M>, start: u64) -> Error<M::Error> {
    inner.stats.incr(Counter::Timeouts);
    let status = crate::metrics::status::status(inner);
    let waited = Duration::from_nanos(inner.clock.now().saturating_sub(start));
    tracing::debug!(pool = %inner.name, endpoint = %inner.endpoint, ?waited, ?status, "acquire timed out");
    Error::Timeout(TimeoutError {
        waited,
        size: status.size,
        in_use: status.in_use,
        // The caller has left the queue by now; it was waiting too.
        waiting: status.waiting + 1,
        max_size: status.max_size,
        last_connect_error: inner.last_connect_error(),
        young_deaths_in_a_row: status.young_deaths_in_a_row,
    })
}

//! Closing a pool, at once (`close`) or gracefully (`drain`: stop handing
//! out, wait for connections in use to come back, closing each as it
//! returns, until a deadline).

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use crate::manager::{CloseReason, Manager};
use crate::pool::Pool;
use crate::pool::inner::Inner;
use crate::time::{Sleep, nanos};

/// Closes the pool: fails every waiter, closes idle connections, and wakes
/// maintenance and a drain so they see it.
pub(crate) fn close<M: Manager>(inner: &Inner<M>) {
    // The close's half of the handshake (`Core::close`): a returner that
    // published before our flag was visible sees the flag, or we see what
    // it published below.
    if inner.core.close() {
        tracing::info!(pool = %inner.name, endpoint = %inner.endpoint, "pool closed");
    }
    inner.close_idle(CloseReason::PoolClosed);
    inner.lifecycle.wake_maintenance();
    inner.lifecycle.wake_drain();
}

/// What [`Pool::drain`] saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DrainReport {
    /// Connections still checked out (or dialing) at the deadline; each is
    /// closed when it comes back. Zero means the pool drained completely.
    pub still_in_use: usize,
    /// How long the drain waited.
    pub waited: Duration,
}

impl<M: Manager> Pool<M> {
    /// Stops handing out connections: waiting and future gets fail with
    /// [`Error::Closed`](crate::Error::Closed), idle connections are closed
    /// now and checked-out ones when they come back. Idempotent.
    pub fn close(&self) {
        close(&self.inner);
    }

    /// Closes the pool (see [`close`](Pool::close)) and waits up to
    /// `timeout` for every connection in use to come back, closing each as
    /// it does. Idempotent, and safe to call from any thread while gets run.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use ringpool::{Manager, Pool};
    /// # struct Numbers;
    /// # impl Manager for Numbers {
    /// #     type Connection = u64;
    /// #     type Error = std::io::Error;
    /// #     async fn connect(&self) -> Result<u64, std::io::Error> { Ok(7) }
    /// # }
    /// let pool = Pool::builder(Numbers).build().unwrap();
    /// drop(pool.get_blocking().unwrap());
    /// let report = futures_executor::block_on(pool.drain(Duration::from_secs(1)));
    /// assert_eq!(report.still_in_use, 0);
    /// assert_eq!(pool.status().size, 0);
    /// ```
    pub async fn drain(&self, timeout: Duration) -> DrainReport {
        let inner = &*self.inner;
        close(inner);
        let start = inner.clock.now();
        let mut sleep = Sleep::until(&inner.clock, start.saturating_add(nanos(timeout)));
        poll_fn(|cx| {
            if inner.core.slots.size() == 0 {
                return Poll::Ready(());
            }
            inner.lifecycle.register_drain(cx.waker());
            // A return may have come before the registration.
            if inner.core.slots.size() == 0 || Pin::new(&mut sleep).poll(cx).is_ready() {
                return Poll::Ready(());
            }
            Poll::Pending
        })
        .await;
        let report = DrainReport {
            still_in_use: inner.core.slots.size(),
            waited: Duration::from_nanos(inner.clock.now().saturating_sub(start)),
        };
        tracing::info!(pool = %inner.name, endpoint = %inner.endpoint, ?report, "drained");
        report
    }
}

//! Graceful drain: stop handing out, wait for connections in use to come
//! back (closing each as it returns) until a deadline.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use crate::clock::nanos;
use crate::manager::Manager;
use crate::pool::Pool;
use crate::timer::Sleep;

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
        inner.close();
        let start = inner.clock.now();
        let mut sleep = Sleep::until(&inner.clock, start.saturating_add(nanos(timeout)));
        poll_fn(|cx| {
            if inner.slots.size() == 0 {
                return Poll::Ready(());
            }
            inner.lifecycle.register_drain(cx.waker());
            // A return may have come before the registration.
            if inner.slots.size() == 0 || Pin::new(&mut sleep).poll(cx).is_ready() {
                return Poll::Ready(());
            }
            Poll::Pending
        })
        .await;
        let report = DrainReport {
            still_in_use: inner.slots.size(),
            waited: Duration::from_nanos(inner.clock.now().saturating_sub(start)),
        };
        tracing::info!(?report, "ringpool: drained");
        report
    }
}

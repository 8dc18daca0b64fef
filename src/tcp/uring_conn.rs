//! I/O on pooled TCP connections through tokio-uring (feature
//! `tokio-uring`).
//!
//! tokio-uring's `TcpStream` is `!Send` and cannot give its descriptor
//! back, so it cannot live in the shared idle queue. Connections stay in the
//! pool as `Send` [`TcpConn`](crate::tcp::TcpConn)s; [`Pool::get_uring`]
//! checks one out and wraps a duplicate of its descriptor in a tokio-uring
//! stream for the current thread. Each thread keeps the streams it made
//! (up to 64), so a connection checked out again on a thread that used it
//! before (the pool hands a thread the connection it returned last) reuses
//! that thread's stream: no duplicate, no close. A connection another
//! thread takes gets a stream of that thread's own; the first thread's
//! stays with it, idle (tokio-uring registers nothing while no operation
//! runs, so it never touches the socket under its new user). When the pool
//! closes a connection that has duplicates, it shuts the socket down first,
//! so the connection ends whatever thread holds one; a thread drops its
//! stale streams when it next needs a new one, and at exit.
//!
//! Dropping the [`UringConn`] keeps the stream and returns the connection,
//! unless an operation was still in flight: tokio-uring does not cancel a
//! dropped operation in the kernel (an orphaned read would swallow the next
//! bytes on the socket), so then the socket is shut down, which completes
//! the orphan, and closed instead of being returned.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Weak};

use tokio_uring::buf::fixed::FixedBuf;
use tokio_uring::buf::{BoundedBuf, BoundedBufMut};

use super::manager::TcpManager;
use crate::checkout::guard::Pooled;
use crate::drop_guard::{DropGuard, Unwinding};
use crate::error::Error;
use crate::manager::CloseReason;
use crate::pool::Pool;

/// How many tokio-uring streams a thread keeps for pooled connections.
const STREAMS_PER_THREAD: usize = 64;

/// A thread's tokio-uring stream for a pooled connection, tied to the
/// connection's mark: once the connection is gone, `owner` is dead.
struct Kept {
    owner: Weak<()>,
    stream: tokio_uring::net::TcpStream,
}

thread_local! {
    /// This thread's streams, the most recently returned last.
    static KEPT: RefCell<Vec<Kept>> = const { RefCell::new(Vec::new()) };
}

/// This thread's stream for the connection marked `mark`, taken out of the
/// thread's keeping while it is used; `None` if the thread has none.
fn take_kept(mark: &Arc<()>) -> Option<tokio_uring::net::TcpStream> {
    KEPT.with(|kept| {
        let mut kept = kept.borrow_mut();
        let at = kept
            .iter()
            .rposition(|entry| std::ptr::eq(entry.owner.as_ptr(), Arc::as_ptr(mark)))?;
        Some(kept.remove(at).stream)
    })
}

/// Keeps `stream` on this thread for the connection marked `mark`.
fn keep(mark: &Arc<()>, stream: tokio_uring::net::TcpStream) {
    KEPT.with(|kept| {
        let mut kept = kept.borrow_mut();
        // The oldest entry goes if its connection is gone: stale streams
        // drain one per return.
        if kept
            .first()
            .is_some_and(|oldest| oldest.owner.strong_count() == 0)
        {
            kept.remove(0);
        }
        if kept.len() >= STREAMS_PER_THREAD {
            kept.retain(|entry| entry.owner.strong_count() > 0);
            if kept.len() >= STREAMS_PER_THREAD {
                kept.remove(0);
            }
        }
        kept.push(Kept {
            owner: Arc::downgrade(mark),
            stream,
        });
    })
}

/// Drops this thread's streams whose connections are gone.
fn drop_stale() {
    KEPT.with(|kept| {
        kept.borrow_mut()
            .retain(|entry| entry.owner.strong_count() > 0)
    })
}

/// A pooled connection used through tokio-uring on the current thread.
pub struct UringConn<'a> {
    stream: Option<tokio_uring::net::TcpStream>,
    pooled: Option<Pooled<'a, TcpManager>>,
    /// The connection's mark, which ties this thread's stream to it.
    mark: Arc<()>,
    /// An operation was started and its future dropped before completion.
    orphaned: Cell<bool>,
}

/// Marks the connection orphaned unless the operation it guards finishes.
fn orphan(orphaned: &Cell<bool>, (): (), _: Unwinding) {
    orphaned.set(true);
}

impl<'a> UringConn<'a> {
    fn new(mut pooled: Pooled<'a, TcpManager>) -> io::Result<Self> {
        let mark = Arc::clone(pooled.duplicated.get_or_insert_with(|| Arc::new(())));
        let stream = match take_kept(&mark) {
            Some(stream) => stream,
            None => {
                drop_stale();
                tokio_uring::net::TcpStream::from_std(pooled.stream().try_clone()?)
            }
        };
        Ok(UringConn {
            stream: Some(stream),
            pooled: Some(pooled),
            mark,
            orphaned: Cell::new(false),
        })
    }

    /// How many tokio-uring streams this thread keeps for pooled
    /// connections, including those of connections since closed that it
    /// has not dropped yet (at most 64).
    pub fn streams_kept_on_this_thread() -> usize {
        KEPT.with(|kept| kept.borrow().len())
    }

    /// The tokio-uring stream, for what the methods here do not cover.
    /// Operations started on it directly are not tracked: one dropped
    /// mid-flight leaves the connection in an unknown state, so call
    /// [`discard`](UringConn::discard) after that.
    pub fn stream(&self) -> &tokio_uring::net::TcpStream {
        self.stream.as_ref().expect("present until drop")
    }

    /// How long ago the connection was dialed.
    pub fn age(&self) -> std::time::Duration {
        self.pooled.as_ref().expect("present until drop").age()
    }

    /// Takes the connection out of the pool for good, as a
    /// `std::net::TcpStream` (the tokio-uring wrapper of this thread is
    /// closed first); its slot is freed.
    pub fn detach(mut self) -> std::net::TcpStream {
        self.stream.take();
        let pooled = self.pooled.take().expect("present until drop");
        pooled.detach().into_std()
    }

    async fn guarded<T>(&self, operation: impl std::future::Future<Output = T>) -> T {
        let in_flight = DropGuard::new(&self.orphaned, (), orphan);
        let output = operation.await;
        in_flight.disarm();
        output
    }

    /// Reads into `buf`; returns the count and the buffer.
    pub async fn read<T: BoundedBufMut>(&self, buf: T) -> tokio_uring::BufResult<usize, T> {
        self.guarded(self.stream().read(buf)).await
    }

    /// Reads until `buf` is full (its whole capacity), or fails with
    /// `UnexpectedEof` if the peer closes first.
    pub async fn read_exact<T: tokio_uring::buf::IoBufMut>(
        &self,
        buf: T,
    ) -> tokio_uring::BufResult<(), T> {
        let total = buf.bytes_total();
        let (mut buf, mut filled) = (buf, 0);
        while filled < total {
            let (read, slice) = self.read(buf.slice(filled..)).await;
            buf = slice.into_inner();
            match read {
                Ok(0) => return (Err(io::ErrorKind::UnexpectedEof.into()), buf),
                Ok(n) => filled += n,
                Err(error) => return (Err(error), buf),
            }
        }
        (Ok(()), buf)
    }

    /// Writes from `buf` once; returns how much was written.
    pub async fn write<T: BoundedBuf>(&self, buf: T) -> tokio_uring::BufResult<usize, T> {
        self.guarded(self.stream().write(buf).submit()).await
    }

    /// Writes all of `buf`.
    pub async fn write_all<T: BoundedBuf>(&self, buf: T) -> tokio_uring::BufResult<(), T> {
        self.guarded(self.stream().write_all(buf)).await
    }

    /// Writes from several buffers at once.
    pub async fn writev<T: BoundedBuf>(
        &self,
        bufs: Vec<T>,
    ) -> tokio_uring::BufResult<usize, Vec<T>> {
        self.guarded(self.stream().writev(bufs)).await
    }

    /// Reads into a registered (fixed) buffer.
    pub async fn read_fixed<T>(&self, buf: T) -> tokio_uring::BufResult<usize, T>
    where
        T: BoundedBufMut<BufMut = FixedBuf>,
    {
        self.guarded(self.stream().read_fixed(buf)).await
    }

    /// Writes all of a registered (fixed) buffer.
    pub async fn write_fixed_all<T>(&self, buf: T) -> tokio_uring::BufResult<(), T>
    where
        T: BoundedBuf<Buf = FixedBuf>,
    {
        self.guarded(self.stream().write_fixed_all(buf)).await
    }

    /// Closes the connection instead of returning it.
    pub fn discard(mut self) {
        self.stream.take();
        if let Some(pooled) = self.pooled.take() {
            pooled.discard();
        }
    }
}

impl std::fmt::Debug for UringConn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringConn")
            .field("fd", &self.stream().as_raw_fd())
            .field("orphaned", &self.orphaned.get())
            .finish_non_exhaustive()
    }
}

impl Drop for UringConn<'_> {
    fn drop(&mut self) {
        let Some(pooled) = self.pooled.take() else {
            return;
        };
        if self.orphaned.get() {
            // Complete the orphaned operation (it sees end of file) before
            // the socket goes, and never hand this socket out again.
            let _ = pooled.stream().shutdown(Shutdown::Both);
            drop(self.stream.take());
            tracing::debug!(
                pool = pooled.pool().name(),
                target = %pooled.pool().manager().target(),
                fd = pooled.as_raw_fd(),
                "connection dropped mid-operation, closed"
            );
            pooled.close(CloseReason::Abandoned);
        } else {
            if let Some(stream) = self.stream.take() {
                keep(&self.mark, stream);
            }
            drop(pooled);
        }
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "tokio-uring")))]
impl Pool<TcpManager> {
    /// Checks out a connection for I/O through tokio-uring on this thread
    /// (call it inside `tokio_uring::start`).
    ///
    /// # Errors
    ///
    /// As [`Pool::get`]; a failure to duplicate the descriptor (the
    /// connection goes back to the pool) is reported as [`Error::Connect`].
    pub async fn get_uring(&self) -> Result<UringConn<'_>, Error<io::Error>> {
        let pooled = self.get().await?;
        let fd = pooled.as_raw_fd();
        UringConn::new(pooled).map_err(|error| {
            tracing::warn!(
                pool = self.name(),
                target = %self.manager().target(),
                fd,
                %error,
                "cannot duplicate a pooled descriptor"
            );
            Error::Connect(std::sync::Arc::new(error))
        })
    }
}

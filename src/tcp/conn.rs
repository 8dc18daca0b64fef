//! The connection the TCP manager hands out.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::Arc;

use crate::uring::WatchCell;

/// A pooled TCP connection: a `std::net::TcpStream` in blocking mode.
#[derive(Debug)]
pub struct TcpConn {
    stream: TcpStream,
    /// Its idle watch, when the manager watches idle connections.
    pub(crate) watch: Option<Watch>,
    /// Set once the connection is used through tokio-uring: threads keep
    /// duplicates of its descriptor, each tied to this mark by a `Weak`.
    pub(crate) duplicated: Option<Arc<()>>,
}

/// A connection's idle watch; dropping it (a detached connection, one
/// dropped without its manager) retires it and removes any poll the kernel
/// still holds, which would otherwise keep the socket open.
pub(crate) struct Watch(Option<Arc<WatchCell>>);

impl Watch {
    pub(crate) fn new(cell: Arc<WatchCell>) -> Self {
        Watch(Some(cell))
    }

    pub(crate) fn cell(&self) -> &Arc<WatchCell> {
        self.0.as_ref().expect("only taken by into_cell")
    }

    /// The cell, retired, for the close to remove its poll.
    pub(crate) fn into_cell(mut self) -> Arc<WatchCell> {
        let cell = self.0.take().expect("only taken here");
        cell.retire();
        cell
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let Some(cell) = self.0.take() else { return };
        if cell.retire() {
            cell.driver().unwatch(Arc::clone(&cell), 0);
        }
    }
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watch")
    }
}

impl TcpConn {
    /// The stream, for I/O from any runtime.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// The stream, mutably.
    pub fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Ownership of the stream (after [`Pooled::detach`](crate::Pooled::detach)).
    pub fn into_std(self) -> TcpStream {
        self.stream
    }

    /// The stream and its watch, apart.
    pub(crate) fn into_parts(self) -> (TcpStream, Option<Watch>) {
        (self.stream, self.watch)
    }

    /// Shuts the socket down if a thread still holds a duplicate of its
    /// descriptor, so closing this one ends the connection for real (a
    /// duplicate would keep it open).
    pub(crate) fn shut_down_if_duplicated(&self) {
        if self
            .duplicated
            .as_ref()
            .is_some_and(|mark| Arc::weak_count(mark) > 0)
        {
            let _ = self.stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Wraps a stream made elsewhere (for example one taken out with
/// [`TcpConn::into_std`] and used by a custom runtime).
impl From<TcpStream> for TcpConn {
    fn from(stream: TcpStream) -> Self {
        TcpConn {
            stream,
            watch: None,
            duplicated: None,
        }
    }
}

impl AsRawFd for TcpConn {
    fn as_raw_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }
}

impl AsFd for TcpConn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

impl Read for TcpConn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

impl Write for TcpConn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

//! The connection the TCP manager hands out.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

/// A pooled TCP connection: a `std::net::TcpStream` in blocking mode.
#[derive(Debug)]
pub struct TcpConn {
    stream: TcpStream,
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
}

/// Wraps a stream made elsewhere (for example one taken out with
/// [`TcpConn::into_std`] and used by a custom runtime).
impl From<TcpStream> for TcpConn {
    fn from(stream: TcpStream) -> Self {
        TcpConn { stream }
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

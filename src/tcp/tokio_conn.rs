//! The connection the tokio TCP manager hands out: a `tokio::net::TcpStream`
//! that remembers whether a request is half done.
//!
//! A request future dropped after its write and before its read completes
//! (a timeout, a `select!` branch that lost) leaves the reply in flight; the
//! next user of the connection would read it as its own. So the connection
//! tracks its I/O: a read or write left pending, or a completed write with
//! no completed read after it, makes it *dirty*, and the pool closes a
//! dirty connection when it comes back (counted as
//! [`CloseReason::Abandoned`](crate::CloseReason::Abandoned)) instead of
//! handing it to someone else. Protocols where the peer pushes unasked, or
//! the client pipelines, mark their own clean boundaries with
//! [`TokioConn::mark_clean`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A pooled TCP connection for tokio: use it with `AsyncReadExt` and
/// `AsyncWriteExt` straight through the guard.
#[derive(Debug)]
pub struct TokioConn {
    stream: TcpStream,
    /// A read returned `Pending` and has not completed since.
    read_pending: bool,
    /// A write (or flush) returned `Pending` and has not completed since.
    write_pending: bool,
    /// A write completed and no read has completed after it.
    awaiting_reply: bool,
    /// The peer closed its side (a read returned end of file).
    eof: bool,
}

impl TokioConn {
    pub(crate) fn new(stream: TcpStream) -> Self {
        TokioConn {
            stream,
            read_pending: false,
            write_pending: false,
            awaiting_reply: false,
            eof: false,
        }
    }

    /// Whether the connection is mid-request: an operation left pending, or
    /// a request written whose reply was not read. The pool closes such a
    /// connection when it comes back.
    pub fn is_dirty(&self) -> bool {
        self.read_pending || self.write_pending || self.awaiting_reply || self.eof
    }

    /// Declares a clean boundary: everything the application wrote has been
    /// answered as far as its protocol is concerned (for protocols with
    /// pushes or pipelining, which the write-then-read rule cannot see).
    pub fn mark_clean(&mut self) {
        self.read_pending = false;
        self.write_pending = false;
        self.awaiting_reply = false;
    }

    /// The stream, for what the `AsyncRead`/`AsyncWrite` impls do not cover
    /// (socket options, addresses). Reading or writing through it bypasses
    /// the request tracking.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Ownership of the stream (after [`Pooled::detach`](crate::Pooled::detach)).
    pub fn into_inner(self) -> TcpStream {
        self.stream
    }
}

impl AsyncRead for TokioConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let (before, had_room) = (buf.filled().len(), buf.remaining() > 0);
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        this.read_pending = polled.is_pending();
        let result = ready!(polled);
        if result.is_ok() && had_room {
            match buf.filled().len() - before {
                0 => this.eof = true,
                _ => this.awaiting_reply = false,
            }
        }
        Poll::Ready(result)
    }
}

impl AsyncWrite for TokioConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.write_pending = polled.is_pending();
        let written = ready!(polled);
        if matches!(written, Ok(n) if n > 0) {
            this.awaiting_reply = true;
        }
        Poll::Ready(written)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_flush(cx);
        this.write_pending = polled.is_pending();
        polled
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // A half-closed connection is not reusable.
        this.eof = true;
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

/// A guard over a tokio connection is itself an async stream, so it can be
/// passed wherever `AsyncRead`/`AsyncWrite` is expected (a codec, a
/// `copy`), not only used through method calls.
impl<M> AsyncRead for crate::Pooled<'_, M>
where
    M: crate::Manager,
    M::Connection: AsyncRead + Unpin,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut **self.get_mut()).poll_read(cx, buf)
    }
}

impl<M> AsyncWrite for crate::Pooled<'_, M>
where
    M: crate::Manager,
    M::Connection: AsyncWrite + Unpin,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut **self.get_mut()).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut **self.get_mut()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut **self.get_mut()).poll_shutdown(cx)
    }
}

//! The connection the TLS manager hands out: a tokio-rustls client stream
//! over a `tokio::net::TcpStream` that, like [`TokioConn`](super::TokioConn),
//! remembers whether a request is half done, so one given back mid-request
//! is closed instead of handed to the next user.
//!
//! Its liveness is judged on the socket underneath (see
//! [`TokioTlsManager`](super::TokioTlsManager)): encrypted records the
//! server sends unasked (a TLS 1.3 session ticket, right after the
//! handshake) are not a reply nobody asked for.

use std::io::{self, Read};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use rustls::ClientConnection;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A pooled TLS connection for tokio: use it with `AsyncReadExt` and
/// `AsyncWriteExt` straight through the guard, and `flush` after writing
/// (encrypted records may wait in rustls' buffer until then).
#[derive(Debug)]
pub struct TlsConn {
    stream: TlsStream<TcpStream>,
    /// A read returned `Pending` and has not completed since.
    read_pending: bool,
    /// A write (or flush) returned `Pending` and has not completed since.
    write_pending: bool,
    /// A write completed and no read has completed after it.
    awaiting_reply: bool,
    /// The peer closed its side (a read returned end of file).
    eof: bool,
}

impl TlsConn {
    pub(crate) fn new(stream: TlsStream<TcpStream>) -> Self {
        TlsConn {
            stream,
            read_pending: false,
            write_pending: false,
            awaiting_reply: false,
            eof: false,
        }
    }

    /// Whether the connection is mid-request: an operation left pending, or
    /// a request written whose reply was not read, or the peer closed it.
    pub fn is_dirty(&self) -> bool {
        self.read_pending || self.write_pending || self.awaiting_reply || self.eof
    }

    /// Declares a clean boundary (for protocols with pushes or pipelining,
    /// which the write-then-read rule cannot see).
    pub fn mark_clean(&mut self) {
        self.read_pending = false;
        self.write_pending = false;
        self.awaiting_reply = false;
    }

    /// The TCP socket underneath. Reading or writing it directly breaks the
    /// TLS session.
    pub fn tcp(&self) -> &TcpStream {
        self.stream.get_ref().0
    }

    /// The rustls session: the negotiated protocol version, ALPN protocol,
    /// peer certificates, whether the handshake was resumed.
    pub fn session(&self) -> &ClientConnection {
        self.stream.get_ref().1
    }

    /// Takes in, without waiting, the TLS records that arrived while the
    /// connection sat idle, and says whether it can still be used. A
    /// session ticket is stored in the connector's session store (so a
    /// connection dialed and never read still leaves one behind for the
    /// next dial to resume); a `close_notify`, an end of file, a reset, a
    /// record rustls rejects, or application data nobody asked for mean
    /// broken.
    pub(crate) fn absorb_idle_records(&mut self) -> bool {
        let (tcp, session) = self.stream.get_mut();
        // Read the socket itself, not through tokio's `try_read`, which
        // answers `WouldBlock` without a system call until the reactor has
        // seen the socket readable. The socket is non-blocking; a
        // readiness tokio still holds is only tried and cleared later.
        let socket = socket2::SockRef::from(&*tcp);
        let mut buf = [0u8; 4096];
        loop {
            let read = match (&*socket).read(&mut buf) {
                Ok(0) => return false,
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            };
            let mut records = &buf[..read];
            while !records.is_empty() {
                match session.read_tls(&mut records) {
                    Ok(0) | Err(_) => return false,
                    Ok(_) => {}
                }
                match session.process_new_packets() {
                    Ok(state)
                        if !state.peer_has_closed() && state.plaintext_bytes_to_read() == 0 => {}
                    _ => return false,
                }
            }
        }
    }

    /// Ownership of the TLS stream (after [`Pooled::detach`](crate::Pooled::detach)).
    pub fn into_inner(self) -> TlsStream<TcpStream> {
        self.stream
    }
}

impl AsyncRead for TlsConn {
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

impl AsyncWrite for TlsConn {
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

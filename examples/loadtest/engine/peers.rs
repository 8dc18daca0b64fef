//! Small managers for deadpool and bb8 over the same tokio `TcpStream`s the
//! other modes use: dial with the same options, and drop a connection whose
//! request did not finish cleanly. Both pools keep their defaults apart from
//! `max_size`.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::task::{Context, Poll};

use ringpool::tcp::TlsConnector;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::sessions::dial;

/// A pooled connection and whether a request on it is unfinished.
pub struct PeerConn {
    pub stream: PeerStream,
    pub dirty: bool,
}

/// A peer pool's socket: plain, or in TLS (`--tls`, the same connector
/// and so the same TLS stack as ringpool's).
pub enum PeerStream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// Dials for either pool, counting its dials.
pub struct PeerManager {
    pub target: Arc<str>,
    pub dials: Arc<AtomicU64>,
    pub tls: Option<TlsConnector>,
}

impl PeerManager {
    async fn open(&self) -> io::Result<PeerConn> {
        let stream = dial(&self.target, &self.dials).await?;
        let stream = match &self.tls {
            None => PeerStream::Plain(stream),
            Some(tls) => PeerStream::Tls(Box::new(
                tls.handshake(&self.target, stream)
                    .await
                    .map_err(io::Error::other)?,
            )),
        };
        Ok(PeerConn {
            stream,
            dirty: false,
        })
    }
}

impl AsyncRead for PeerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerStream::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            PeerStream::Tls(stream) => Pin::new(&mut **stream).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            PeerStream::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            PeerStream::Tls(stream) => Pin::new(&mut **stream).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerStream::Plain(stream) => Pin::new(stream).poll_flush(cx),
            PeerStream::Tls(stream) => Pin::new(&mut **stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            PeerStream::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            PeerStream::Tls(stream) => Pin::new(&mut **stream).poll_shutdown(cx),
        }
    }
}

impl deadpool::managed::Manager for PeerManager {
    type Type = PeerConn;
    type Error = std::io::Error;

    async fn create(&self) -> std::io::Result<PeerConn> {
        self.open().await
    }

    async fn recycle(
        &self,
        conn: &mut PeerConn,
        _metrics: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<std::io::Error> {
        match conn.dirty {
            true => Err(deadpool::managed::RecycleError::message(
                "a request on it did not finish",
            )),
            false => Ok(()),
        }
    }
}

impl bb8::ManageConnection for PeerManager {
    type Connection = PeerConn;
    type Error = std::io::Error;

    async fn connect(&self) -> std::io::Result<PeerConn> {
        self.open().await
    }

    async fn is_valid(&self, _conn: &mut PeerConn) -> std::io::Result<()> {
        Ok(())
    }

    fn has_broken(&self, conn: &mut PeerConn) -> bool {
        conn.dirty
    }
}

pub type DeadpoolPool = deadpool::managed::Pool<PeerManager>;
pub type Bb8Pool = bb8::Pool<PeerManager>;

/// A deadpool pool of `size`.
pub fn deadpool(manager: PeerManager, size: usize) -> Result<DeadpoolPool, String> {
    DeadpoolPool::builder(manager)
        .max_size(size)
        .build()
        .map_err(|error| error.to_string())
}

/// A bb8 pool of `size` (built without dialing).
pub fn bb8(manager: PeerManager, size: usize) -> Bb8Pool {
    bb8::Pool::builder()
        .max_size(u32::try_from(size).unwrap_or(u32::MAX))
        .build_unchecked(manager)
}

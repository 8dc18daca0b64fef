//! A client manager's socket after its dial: plain, or inside TLS when the
//! manager was given a connector, the handshake run within what is left
//! of `connect_timeout`. The managers whose protocol starts with TLS at
//! once (HTTP, Redis, HTTP/2) dial through [`ClientBase::dial_secured`];
//! PostgreSQL negotiates first and keeps its own path.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::runtime::Handle;

use super::link::{ClientBase, DialError, Link, Tracked};

/// What a manager's connect error must be made from: a failed dial, and
/// with the `tls` feature a failed handshake.
#[cfg(feature = "tls")]
pub(crate) trait SecuredError: From<DialError> + From<crate::tcp::TlsError> {}
#[cfg(feature = "tls")]
impl<E: From<DialError> + From<crate::tcp::TlsError>> SecuredError for E {}
/// What a manager's connect error must be made from: a failed dial.
#[cfg(not(feature = "tls"))]
pub(crate) trait SecuredError: From<DialError> {}
#[cfg(not(feature = "tls"))]
impl<E: From<DialError>> SecuredError for E {}

/// A dialed socket, plain or encrypted.
pub(crate) enum Secured {
    Plain(Tracked<()>),
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::client::TlsStream<Tracked<()>>>),
}

impl ClientBase {
    /// Dials, then, if the manager has a TLS connector, runs its handshake
    /// over the socket; both within `connect_timeout`.
    pub(crate) async fn dial_secured<E: SecuredError>(
        &self,
    ) -> Result<(Secured, Arc<Link>, Handle), E> {
        #[cfg(feature = "tls")]
        let started = std::time::Instant::now();
        let (stream, link, runtime) = self.dial(()).await?;
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls() {
            let target = self.dialer.target();
            let stream = self
                .within_connect_timeout(started, async {
                    Ok::<_, E>(tls.handshake(&target, stream).await?)
                })
                .await?;
            return Ok((Secured::Tls(Box::new(stream)), link, runtime));
        }
        Ok((Secured::Plain(stream), link, runtime))
    }
}

/// Runs `$op` on the socket, whichever it is.
macro_rules! on_stream {
    ($self:ident, $stream:ident => $op:expr) => {
        match $self.get_mut() {
            Secured::Plain($stream) => {
                let $stream = Pin::new($stream);
                $op
            }
            #[cfg(feature = "tls")]
            Secured::Tls($stream) => {
                let $stream = Pin::new(&mut **$stream);
                $op
            }
        }
    };
}

impl AsyncRead for Secured {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        on_stream!(self, stream => stream.poll_read(cx, buf))
    }
}

impl AsyncWrite for Secured {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        on_stream!(self, stream => stream.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        on_stream!(self, stream => stream.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Secured::Plain(stream) => stream.is_write_vectored(),
            #[cfg(feature = "tls")]
            Secured::Tls(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_stream!(self, stream => stream.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_stream!(self, stream => stream.poll_shutdown(cx))
    }
}

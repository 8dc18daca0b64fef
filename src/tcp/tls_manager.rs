//! The TLS manager for tokio services (feature `tls`): the tokio TCP
//! manager's dial, then a TLS handshake through a shared
//! [`TlsConnector`], under the same `connect_timeout`.
//!
//! Liveness at checkout is the socket's `POLLRDHUP` ([`peer_closed`]), not
//! the plain manager's byte peek: a TLS 1.3 server sends session tickets
//! just after the handshake, and they wait unread in the socket until the
//! connection's next read, so pending bytes are no sign of a dead
//! connection here. The check then takes those records in without waiting:
//! a ticket goes to the session store (a connection dialed and never used
//! still leaves one for the next dial to resume); a `close_notify` or data
//! nobody asked for means broken. A server's close or a reset is seen. The tokio managers have no idle watch (idle
//! connections are swept by maintenance with the same check).
//!
//! The blocking and io_uring [`TcpManager`](super::TcpManager) has no TLS:
//! its connections are plain `std::net::TcpStream`s that applications read
//! and write themselves (by descriptor, through tokio-uring, or after
//! `detach`), and its pings, idle watch and batched checks run on the
//! ring against the raw socket. A rustls `StreamOwned` would have to
//! become the connection type, which every one of those paths bypasses
//! (a ring ping on the raw descriptor would write plain text into the TLS
//! session), so TLS there needs kTLS, which this kernel does not offer.

use std::io;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::liveness::peer_closed;
use super::options::TcpOptions;
use super::tls::{TlsConnector, TlsError};
use super::tls_conn::TlsConn;
use super::tokio_manager::TokioTcpManager;
use crate::manager::TlsHandshakes;
use crate::manager::{CloseReason, ErrorClass};
use crate::send_manager::SendManager;

/// Makes TLS connections over tokio to one target for a
/// [`Pool`](crate::Pool): [`TokioTcpManager`]'s dial, then the
/// connector's handshake, the two together under `connect_timeout`.
///
/// # Examples
///
/// ```no_run
/// use ringpool::Pool;
/// use ringpool::tcp::{TlsConnector, TokioTcpManager};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = TokioTcpManager::new("127.0.0.1:6380").tls(
///     TlsConnector::builder()
///         .add_root_pem_file("ca.pem")?
///         .client_cert_pem(std::fs::read("client.pem")?, std::fs::read("client.key")?)?
///         .server_name("redis.internal")
///         .build()?,
/// );
/// let pool = Pool::builder(manager).build()?;
/// let conn = pool.get().await?;
/// assert!(conn.session().protocol_version().is_some());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct TokioTlsManager {
    tcp: TokioTcpManager,
    tls: TlsConnector,
}

impl TokioTcpManager {
    /// This manager's dials, each followed by a TLS handshake through
    /// `connector` within the same `connect_timeout`.
    pub fn tls(self, connector: TlsConnector) -> TokioTlsManager {
        TokioTlsManager {
            tcp: self,
            tls: connector,
        }
    }
}

impl TokioTlsManager {
    /// A manager for `target` (`host:port`), resolved on every dial, whose
    /// server name is the target's host unless the connector sets one.
    pub fn new(target: impl Into<String>, connector: TlsConnector) -> Self {
        TokioTcpManager::new(target).tls(connector)
    }

    /// Replaces the socket options (`connect_timeout` bounds the TCP
    /// connect and the handshake together).
    pub fn options(mut self, options: TcpOptions) -> Self {
        self.tcp = self.tcp.options(options);
        self
    }

    /// Health-checks connections with a request and the exact reply it must
    /// get, sent through TLS (see [`TokioTcpManager::ping_with`]).
    pub fn ping_with(mut self, request: impl Into<Vec<u8>>, reply: impl Into<Vec<u8>>) -> Self {
        self.tcp = self.tcp.ping_with(request, reply);
        self
    }

    /// The connector every dial shares.
    pub fn connector(&self) -> &TlsConnector {
        &self.tls
    }

    /// Handshakes completed so far, full and resumed.
    pub fn handshakes(&self) -> TlsHandshakes {
        self.tls.handshakes()
    }

    /// The target as given.
    pub fn target(&self) -> &str {
        self.tcp.target()
    }
}

/// A [`SendManager`]: its futures are `Send`.
impl SendManager for TokioTlsManager {
    fn endpoint(&self) -> Option<String> {
        Some(self.tcp.target().to_string())
    }

    fn tls_handshakes(&self) -> Option<TlsHandshakes> {
        Some(self.tls.handshakes())
    }

    type Connection = TlsConn;
    type Error = TlsError;

    /// The TCP dial (every address in order), then the handshake with what
    /// is left of `connect_timeout`.
    async fn connect(&self) -> Result<TlsConn, TlsError> {
        let started = Instant::now();
        let target = self.tcp.target();
        let stream = self
            .tcp
            .connect_stream()
            .await
            .map_err(|source| TlsError::Dial {
                target: target.to_string(),
                source,
            })?;
        let limit = self.tcp.tcp_options().connect_timeout;
        let left = limit.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, self.tls.handshake(target, stream)).await {
            Ok(handshaken) => Ok(TlsConn::new(handshaken?)),
            Err(_) => Err(TlsError::Handshake {
                target: target.to_string(),
                source: io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the TCP connect and TLS handshake took longer than connect_timeout ({limit:?})"
                    ),
                ),
            }),
        }
    }

    /// The protocol ping set with [`TokioTlsManager::ping_with`], if any,
    /// through TLS.
    async fn ping(&self, conn: &mut TlsConn) -> Result<(), TlsError> {
        let Some(ping) = self.tcp.protocol_ping() else {
            return Ok(());
        };
        let outcome: io::Result<()> = async {
            conn.write_all(&ping.request).await?;
            conn.flush().await?;
            let mut reply = vec![0u8; ping.reply.len()];
            conn.read_exact(&mut reply).await?;
            ping.check(&reply)
        }
        .await;
        outcome.map_err(|source| TlsError::Handshake {
            target: self.tcp.target().to_string(),
            source,
        })
    }

    /// Dirty (mid-request); or the peer closed or reset the socket
    /// underneath (`POLLRDHUP`); or the records that arrived while it was
    /// idle say it is over (`close_notify`, data nobody asked for). Those
    /// records are taken in without waiting: a session ticket is stored,
    /// not mistaken for a fault.
    fn is_broken(&self, conn: &mut TlsConn) -> bool {
        conn.is_dirty() || peer_closed(conn.tcp()) || !conn.absorb_idle_records()
    }

    /// A connection given back mid-request is closed as abandoned.
    fn check_return(&self, conn: &mut TlsConn) -> Result<(), CloseReason> {
        match conn.is_dirty() {
            true => Err(CloseReason::Abandoned),
            false => Ok(()),
        }
    }

    /// A refused handshake (a certificate, a protocol mismatch) is fatal; a
    /// cut-short one and most TCP dial errors are retryable.
    fn classify(&self, error: &TlsError) -> ErrorClass {
        error.class()
    }
}

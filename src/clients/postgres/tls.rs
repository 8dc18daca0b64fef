//! TLS for the PostgreSQL manager (feature `tls`): the `sslmode` of the
//! connection string, and PostgreSQL's own negotiation (an `SSLRequest`
//! on the plain socket, answered `S` or `N`, then the TLS handshake on the
//! same socket).
//!
//! The manager negotiates itself, before `tokio-postgres` sees the stream,
//! so the protocol reader that tracks each session's transaction status
//! sits above TLS and reads the same plain messages as without it.
//! (`tokio-postgres` therefore sees a plain stream: SCRAM's channel binding,
//! `SCRAM-SHA-256-PLUS`, is not offered; `SCRAM-SHA-256` and the other
//! methods work.)

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::client::TlsStream;

use super::error::PostgresError;
use crate::tcp::{TlsConnector, TlsError};

/// How a session is encrypted (`sslmode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// TLS if the server offers it, else plain.
    Prefer,
    /// TLS or nothing; the certificate is verified only with a connector
    /// the application gave (libpq's `require`).
    Require,
    /// TLS or nothing, the certificate verified against the roots and
    /// the server name (libpq's `verify-full`).
    VerifyFull,
}

/// A manager's TLS: the mode, and the connector every dial shares (one
/// `ClientConfig`, one session store: refills resume their sessions).
#[derive(Debug)]
pub(super) struct PgTls {
    pub(super) mode: Mode,
    pub(super) connector: TlsConnector,
}

/// What the negotiation left: an encrypted stream, or (with `prefer`, the
/// server declining) the plain one.
pub(super) enum Negotiated<S> {
    Encrypted(Box<TlsStream<S>>),
    Plain(S),
}

/// `SSLRequest`: length 8, then the request code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

impl PgTls {
    /// The TLS a connection string's `sslmode` asks for, with the default
    /// connector (`webpki-roots`; no verification for `require`).
    pub(super) fn for_mode(mode: Mode) -> Self {
        let connector = match mode {
            Mode::VerifyFull => TlsConnector::webpki(),
            Mode::Prefer | Mode::Require => crate::tcp::tls_unverified::unverified(),
        };
        PgTls { mode, connector }
    }

    /// Asks the server for TLS on `stream` and runs the handshake.
    pub(super) async fn negotiate<S>(
        &self,
        mut stream: S,
        target: &str,
    ) -> Result<Negotiated<S>, PostgresError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let asked = async {
            stream.write_all(&SSL_REQUEST).await?;
            stream.flush().await?;
            stream.read_u8().await
        };
        let answer = asked.await.map_err(|source| {
            PostgresError::Tls(TlsError::Handshake {
                target: target.to_string(),
                source,
            })
        })?;
        match (answer, self.mode) {
            (b'S', _) => Ok(Negotiated::Encrypted(Box::new(
                self.connector.handshake(target, stream).await?,
            ))),
            (b'N', Mode::Prefer) => Ok(Negotiated::Plain(stream)),
            (b'N', _) => Err(PostgresError::Config(format!(
                "{target} does not accept TLS (it answered the SSLRequest with N): turn \
                 `ssl = on` in its postgresql.conf, or connect with sslmode=prefer or disable"
            ))),
            (other, _) => Err(PostgresError::Config(format!(
                "{target} answered the SSLRequest with byte {other:#04x}, not S or N: is it \
                 a PostgreSQL server?"
            ))),
        }
    }
}

/// Takes `sslmode=verify-full` and `verify-ca` out of a connection string
/// (`tokio-postgres` parses only `disable`, `prefer` and `require`): the
/// string to parse, and whether it asked for full verification.
pub(super) fn take_verify_mode(url: &str) -> Result<(String, bool), PostgresError> {
    if url.contains("sslmode=verify-ca") {
        return Err(PostgresError::Config(format!(
            "`{url}`: sslmode=verify-ca is not offered (ringpool always checks the \
             certificate's name when it verifies): use sslmode=verify-full, with \
             TlsConnector::builder().server_name(..) for a certificate issued to another \
             name, or sslmode=require"
        )));
    }
    match url.contains("sslmode=verify-full") {
        true => Ok((url.replace("sslmode=verify-full", "sslmode=require"), true)),
        false => Ok((url.to_string(), false)),
    }
}

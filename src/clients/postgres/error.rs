//! What the PostgreSQL manager fails with.

use crate::clients::link::DialError;

/// Why a PostgreSQL connection could not be made or checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresError {
    /// The TCP dial failed.
    #[error(transparent)]
    Dial(#[from] DialError),
    /// The server or the protocol refused (authentication, an unknown
    /// database, a query that failed).
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    /// The connection settings cannot work.
    #[error("{0}")]
    Config(String),
    /// The TLS handshake failed (feature `tls`): its message says what and
    /// how to fix it.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    #[error(transparent)]
    Tls(#[from] crate::tcp::TlsError),
}

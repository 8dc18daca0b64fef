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
    /// database, a query that failed). Its message carries the server's
    /// own (severity, text, SQLSTATE, hint), which `tokio_postgres`
    /// leaves to the error's source.
    #[error("{}", server_says(.0))]
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

/// `error` with what the server said, or with its cause.
fn server_says(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut said = format!(
                "the server said {}: {} (SQLSTATE {})",
                db.severity(),
                db.message(),
                db.code().code()
            );
            if let Some(hint) = db.hint() {
                said.push_str(&format!("; hint: {hint}"));
            }
            said
        }
        None => match std::error::Error::source(error) {
            Some(cause) => format!("{error}: {cause}"),
            None => error.to_string(),
        },
    }
}

//! PostgreSQL through `tokio-postgres` (feature `postgres`): the pool hands
//! out a [`PostgresConn`], a `tokio_postgres::Client` made over a socket
//! ringpool dialed.
//!
//! # The rule for sessions given back mid-transaction
//!
//! The manager reads the transaction status of every `ReadyForQuery` as it
//! passes the socket (no round trip). A connection given back inside a
//! transaction block (`BEGIN` with no `COMMIT` or `ROLLBACK`, or a failed
//! one), or with a request still awaiting its reply (a query future
//! dropped mid-flight, or a `tokio_postgres::Transaction` dropped without
//! `commit`, whose `ROLLBACK` is queued), is never handed to the next user
//! as it is. By default it is rolled back and reused: the pool's recycle
//! step ([`Manager::recycle`](crate::Manager::recycle)) sends `ROLLBACK`
//! off the returning caller's path, waits for every reply the session
//! still owes, and puts the session back only if it is then idle; a step
//! that fails or outlasts the pool's `recycle_timeout` closes it. With
//! [`rollback_on_return(false)`](PostgresManager::rollback_on_return) such
//! a session is closed instead ([`CloseReason::Abandoned`]). Other session
//! state (`SET`, prepared statements, `LISTEN`) goes with the connection
//! to its next user, as with any pool; reset it in an
//! [`on_return`](crate::Builder::on_return) or `after_connect` hook if it
//! matters.
//!
//! TLS is not offered: connections use `NoTls` (`sslmode=disable`), for
//! servers on a private network or loopback.
//!
//! # Examples
//!
//! ```no_run
//! use ringpool::Pool;
//! use ringpool::clients::postgres::PostgresManager;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = PostgresManager::from_url("postgresql://app@127.0.0.1:5432/app")?;
//! let pool = Pool::builder(manager).max_size(16).build()?;
//! let client = pool.get().await?;
//! let row = client.query_one("SELECT 1 + 1", &[]).await?;
//! assert_eq!(row.get::<_, i32>(0), 2);
//! # Ok(())
//! # }
//! ```

mod wire;

use std::sync::Arc;

use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Client, Config, NoTls};

pub use wire::TransactionStatus;
use wire::{Wire, WireState};

use super::link::{ClientBase, DialError, Link};
use crate::manager::{CloseReason, ErrorClass, IdleWatch};
use crate::send_manager::SendManager;
use crate::tcp::Dialer;

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
}

/// A pooled PostgreSQL connection: a `tokio_postgres::Client` (it derefs
/// to one), with the session's transaction status as the wire last said.
#[derive(Debug)]
pub struct PostgresConn {
    client: Client,
    wire: Arc<WireState>,
    link: Arc<Link>,
}

impl PostgresConn {
    /// The transaction status of the last `ReadyForQuery` the server sent.
    pub fn transaction_status(&self) -> TransactionStatus {
        self.wire.status()
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Outside any transaction, with no reply owed.
    fn is_clean(&self) -> bool {
        matches!(
            (self.wire.status(), self.wire.awaiting()),
            (TransactionStatus::Idle, 0)
        )
    }

    /// The client, mutably (for `transaction()`).
    pub fn client_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

impl std::ops::Deref for PostgresConn {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl std::ops::DerefMut for PostgresConn {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// Makes [`PostgresConn`]s: a ringpool dial, then `tokio-postgres`'s
/// handshake on the socket (`connect_raw`), its connection task spawned on
/// the tokio runtime and torn down with the client.
#[derive(Debug)]
pub struct PostgresManager {
    base: ClientBase,
    config: Config,
    ping: String,
    rollback_on_return: bool,
}

impl PostgresManager {
    /// A manager that dials with `dialer` and logs in with `config` (user,
    /// password, database, application name; its hosts and ports are not
    /// used: the dialer's target is).
    ///
    /// Made inside a tokio runtime, it keeps a handle to it, so dials from
    /// outside one (the maintenance thread) run their connection tasks
    /// there.
    pub fn new(dialer: Dialer, mut config: Config) -> Self {
        if config.get_ssl_mode() == SslMode::Prefer {
            config.ssl_mode(SslMode::Disable);
        }
        PostgresManager {
            base: ClientBase::new(dialer),
            config,
            ping: "SELECT 1".to_string(),
            rollback_on_return: true,
        }
    }

    /// A manager from a connection string (`postgresql://user:secret@host:5432/db`
    /// or `host=... port=... user=...`), dialing its first host on io_uring.
    ///
    /// # Errors
    ///
    /// [`PostgresError::Config`] if the string does not parse, names no
    /// TCP host, or io_uring is unavailable.
    pub fn from_url(url: &str) -> Result<Self, PostgresError> {
        let config: Config = url
            .parse()
            .map_err(|error| PostgresError::Config(format!("`{url}`: {error}")))?;
        let host = match config.get_hosts().first() {
            Some(Host::Tcp(host)) => host.clone(),
            _ => {
                return Err(PostgresError::Config(format!(
                    "`{url}` names no TCP host; give one (host=127.0.0.1 or postgresql://user@host:port/db)"
                )));
            }
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let target = match host.contains(':') {
            true => format!("[{host}]:{port}"),
            false => format!("{host}:{port}"),
        };
        let dialer =
            Dialer::new(target).map_err(|error| PostgresError::Config(error.to_string()))?;
        Ok(Self::new(dialer, config))
    }

    /// The health check maintenance runs on idle connections due (after
    /// the pool's `check_after`), as a simple query. Default `SELECT 1`.
    pub fn ping_query(mut self, query: impl Into<String>) -> Self {
        self.ping = query.into();
        self
    }

    /// Whether a session given back inside a transaction (or with replies
    /// still owed) is rolled back and reused (`true`, the default) or
    /// closed as [`CloseReason::Abandoned`] (`false`). See the module's
    /// rule.
    ///
    /// ```
    /// use ringpool::clients::postgres::PostgresManager;
    ///
    /// let manager = PostgresManager::from_url("postgresql://app@127.0.0.1/app")
    ///     .unwrap()
    ///     .rollback_on_return(false);
    /// ```
    pub fn rollback_on_return(mut self, rollback: bool) -> Self {
        self.rollback_on_return = rollback;
        self
    }

    /// The dialer.
    pub fn dialer(&self) -> &Dialer {
        &self.base.dialer
    }
}

impl SendManager for PostgresManager {
    type Connection = PostgresConn;
    type Error = PostgresError;

    async fn connect(&self) -> Result<PostgresConn, PostgresError> {
        let (observer, wire) = Wire::new();
        let (stream, link, runtime) = self.base.dial(observer).await?;
        let (client, connection) = self.config.connect_raw(stream, NoTls).await?;
        let target = self.base.dialer.target();
        runtime.spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(endpoint = %target, %error, "postgres connection ended");
            }
        });
        Ok(PostgresConn { client, wire, link })
    }

    /// The ping query, as a simple query.
    async fn ping(&self, conn: &mut PostgresConn) -> Result<(), PostgresError> {
        conn.client.simple_query(&self.ping).await?;
        Ok(())
    }

    /// The client's connection task ended, or the socket's peer hung up.
    fn is_broken(&self, conn: &mut PostgresConn) -> bool {
        conn.client.is_closed() || conn.link.is_dead()
    }

    /// Closed if its connection task ended; if it comes back inside a
    /// transaction or with a request unanswered, rolled back (the recycle
    /// step) or, with `rollback_on_return(false)`, abandoned (the module's
    /// rule).
    fn check_return(&self, conn: &mut PostgresConn) -> Result<(), CloseReason> {
        if conn.client.is_closed() || conn.link.ended() {
            return Err(CloseReason::Broken);
        }
        match self.rollback_on_return || conn.is_clean() {
            true => Ok(()),
            false => Err(CloseReason::Abandoned),
        }
    }

    /// A session inside a transaction, or owed replies: roll it back.
    #[inline]
    fn needs_recycle(&self, conn: &mut PostgresConn) -> bool {
        !conn.is_clean()
    }

    /// `ROLLBACK`, after every reply the session still owes; the session
    /// must then be idle.
    async fn recycle(&self, conn: &mut PostgresConn) -> Result<(), PostgresError> {
        conn.client.simple_query("ROLLBACK").await?;
        match conn.is_clean() {
            true => Ok(()),
            false => Err(PostgresError::Config(format!(
                "the session is still {:?} after ROLLBACK",
                conn.wire.status()
            ))),
        }
    }

    /// Dial errors as the dialer classifies them; a refused login or an
    /// unknown database is fatal.
    fn classify(&self, error: &PostgresError) -> ErrorClass {
        match error {
            PostgresError::Dial(error) => self.base.dialer.classify(&error.source),
            PostgresError::Postgres(error) => match error.code().map(|code| code.code()) {
                Some(code) if code.starts_with("28") || code == "3D000" => ErrorClass::Fatal,
                _ => ErrorClass::Retryable,
            },
            PostgresError::Config(_) => ErrorClass::Fatal,
        }
    }

    super::link::link_watch!(PostgresConn);
}

super::link::link_watcher!([] PostgresManager, PostgresConn, IdleWatch::WatchedAndPinged);

//! MySQL and MariaDB through `mysql_async` (feature `mysql`): the pool hands
//! out a [`MysqlConn`], a `mysql_async::Conn` (it derefs to one, and is a
//! `mysql_async::prelude::Queryable` through it).
//!
//! # What differs from the other clients
//!
//! `mysql_async` opens its own sockets: it has no way to run its protocol
//! on a stream somebody else dialed. So this manager's dials are
//! `mysql_async`'s (tokio's TCP, its own TLS through rustls), not
//! ringpool's io_uring dialer, and the idle watch and the socket-level
//! liveness check are not available: a connection the server closed while
//! idle is found by maintenance's ping (`SELECT 1` as `COM_PING`) after
//! `check_after`, or at checkout if you set the pool's `ping_after`.
//! Everything else (the bound, waiters, lifetimes, the breaker, metrics)
//! is the pool's as usual. (`mysql_async` moves a connection to a loopback
//! server onto the server's Unix socket unless the URL says
//! `prefer_socket=false`.)
//!
//! # Sessions are reset on return
//!
//! Each connection given back is reset before its next user gets it
//! (`COM_RESET_CONNECTION`: an open transaction rolled back, user
//! variables, temporary tables and prepared statements dropped), through
//! the pool's recycle step ([`Manager::recycle`](crate::Manager::recycle)),
//! off the returning caller's path. That costs one round trip per return;
//! [`MysqlManager::reset_on_return`] turns it off for applications that
//! keep no session state.
//!
//! # TLS
//!
//! `mysql_async` reads TLS settings from the URL (`require_ssl=true`,
//! `verify_ca`, `verify_identity`, `built_in_roots`) and runs rustls itself:
//! ringpool's [`TlsConnector`](crate::tcp::TlsConnector) and its shared
//! session store are not used here.
//!
//! # Examples
//!
//! ```no_run
//! use mysql_async::prelude::Queryable;
//! use ringpool::Pool;
//! use ringpool::clients::mysql::MysqlManager;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = MysqlManager::from_url("mysql://app:secret@127.0.0.1:3306/app")?;
//! let pool = Pool::builder(manager).max_size(16).build()?;
//! let mut conn = pool.get().await?;
//! let two: Option<i64> = conn.query_first("SELECT 1 + 1").await?;
//! assert_eq!(two, Some(2));
//! # Ok(())
//! # }
//! ```

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use tokio::runtime::Handle;

use crate::manager::{CloseReason, ErrorClass};
use crate::send_manager::SendManager;

/// Why a MySQL connection could not be made or checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MysqlError {
    /// The server, the protocol or the network refused (a login, an
    /// unknown database, a reset connection, a failed statement).
    #[error(transparent)]
    Mysql(#[from] mysql_async::Error),
    /// The connection settings cannot work, or no runtime can run the
    /// dial.
    #[error("{0}")]
    Config(String),
}

/// A pooled MySQL connection: a `mysql_async::Conn` (it derefs to one).
#[derive(Debug)]
pub struct MysqlConn {
    conn: Conn,
}

impl std::ops::Deref for MysqlConn {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        &self.conn
    }
}

impl std::ops::DerefMut for MysqlConn {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.conn
    }
}

/// Makes [`MysqlConn`]s with `mysql_async`'s own connect, on the tokio
/// runtime the manager was made in (or the caller's).
#[derive(Debug)]
pub struct MysqlManager {
    opts: Opts,
    runtime: Option<Handle>,
    reset_on_return: bool,
}

impl MysqlManager {
    /// A manager for `opts`. Made inside a tokio runtime, it keeps a handle
    /// to it, so dials from outside one (the maintenance thread) run there.
    pub fn new(opts: Opts) -> Self {
        MysqlManager {
            opts,
            runtime: Handle::try_current().ok(),
            reset_on_return: true,
        }
    }

    /// A manager from a `mysql://user:password@host:port/db?...` URL (its
    /// parameters as `mysql_async` reads them, TLS included).
    ///
    /// # Errors
    ///
    /// [`MysqlError::Config`] if the URL does not parse.
    pub fn from_url(url: &str) -> Result<Self, MysqlError> {
        let opts =
            Opts::from_url(url).map_err(|error| MysqlError::Config(format!("`{url}`: {error}")))?;
        Ok(Self::new(opts))
    }

    /// Whether every connection given back is reset
    /// (`COM_RESET_CONNECTION`) before its next user gets it: `true` by
    /// default. See the module's docs.
    pub fn reset_on_return(mut self, reset: bool) -> Self {
        self.reset_on_return = reset;
        self
    }

    /// The runtime to run `mysql_async` on: the caller's, else the one the
    /// manager was made in.
    fn runtime(&self) -> Result<Handle, MysqlError> {
        Handle::try_current()
            .ok()
            .or_else(|| self.runtime.clone())
            .ok_or_else(|| {
                MysqlError::Config(
                    "no tokio runtime: dial from inside one, or make the manager inside one"
                        .to_string(),
                )
            })
    }
}

impl SendManager for MysqlManager {
    type Connection = MysqlConn;
    type Error = MysqlError;

    async fn connect(&self) -> Result<MysqlConn, MysqlError> {
        let runtime = self.runtime()?;
        let opts = self.opts.clone();
        // Spawned, so its sockets and timers live on the runtime whoever
        // polls this dial.
        let conn = runtime
            .spawn(async move { Conn::new(opts).await })
            .await
            .map_err(|error| MysqlError::Config(format!("the dial task failed: {error}")))??;
        Ok(MysqlConn { conn })
    }

    /// `COM_PING`.
    async fn ping(&self, conn: &mut MysqlConn) -> Result<(), MysqlError> {
        conn.conn.ping().await?;
        Ok(())
    }

    fn needs_recycle(&self, _conn: &mut MysqlConn) -> bool {
        self.reset_on_return
    }

    /// `COM_RESET_CONNECTION` (or `COM_CHANGE_USER` on servers without it).
    async fn recycle(&self, conn: &mut MysqlConn) -> Result<(), MysqlError> {
        conn.conn.reset().await?;
        Ok(())
    }

    /// A refused login, an unknown database or bad settings are fatal;
    /// network errors are not.
    fn classify(&self, error: &MysqlError) -> ErrorClass {
        match error {
            MysqlError::Mysql(mysql_async::Error::Server(error))
                if matches!(error.code, 1044 | 1045 | 1049 | 1698) =>
            {
                ErrorClass::Fatal
            }
            MysqlError::Mysql(mysql_async::Error::Url(_)) | MysqlError::Config(_) => {
                ErrorClass::Fatal
            }
            MysqlError::Mysql(_) => ErrorClass::Retryable,
        }
    }

    fn endpoint(&self) -> Option<String> {
        Some(format!(
            "{}:{}",
            self.opts.ip_or_hostname(),
            self.opts.tcp_port()
        ))
    }

    /// Dropped inside the runtime, so `mysql_async` says goodbye
    /// (`COM_QUIT`) instead of cutting the socket.
    fn close(&self, conn: MysqlConn, _reason: CloseReason) {
        match &self.runtime {
            Some(runtime) => {
                let _entered = runtime.enter();
                drop(conn);
            }
            None => drop(conn),
        }
    }
}

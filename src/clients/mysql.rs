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
//! off the returning caller's path. That costs one round trip per return.
//! Spawn the pool's [`maintenance`](crate::Pool::maintenance) task (as in
//! the example below): it resets every returned session at once, in the
//! background, so a get finds a clean session idle; without it, a get
//! that finds nothing idle resets a returned one itself, and waits that
//! round trip. [`MysqlManager::reset_on_return`] turns the reset off for
//! applications that keep no session state.
//!
//! # TLS
//!
//! `mysql_async` reads TLS settings from the URL (`require_ssl=true`,
//! `verify_ca`, `verify_identity`, `built_in_roots`) or from
//! `mysql_async::SslOpts` (a private CA with `with_root_certs`, a client
//! certificate for mutual TLS with `with_client_identity`), and runs rustls
//! itself: ringpool's [`TlsConnector`](crate::tcp::TlsConnector) and its
//! shared session store are not used here. A handshake refused for a
//! certificate (expired, for another name, from an unknown CA; a client
//! certificate missing or refused) is [`MysqlError::Tls`], fatal, saying
//! what failed and which setting fixes it.
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
//! // Resets returned sessions in the background (and refills, pings).
//! tokio::spawn(pool.maintenance());
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
use crate::tcp::tls_problem::{Knobs, explain_refusal};

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
    /// The TLS handshake was refused: a server certificate this client
    /// cannot accept (expired, for another name, from an unknown CA), or
    /// a client certificate the server refused. Fatal: retrying cannot
    /// help.
    #[error("TLS handshake with {endpoint} refused: {problem}")]
    Tls {
        /// The server dialed, `host:port`.
        endpoint: String,
        /// What failed and how to fix it.
        problem: String,
        /// `mysql_async`'s error.
        #[source]
        source: mysql_async::Error,
    },
}

/// `mysql_async`'s TLS settings, as a fix names them.
const SSL_OPTS_KNOBS: Knobs = Knobs {
    roots: "`SslOpts::with_root_certs` (or `verify_ca=false` in the URL to skip the check)",
    server_name: "`SslOpts::with_danger_tls_hostname_override`",
    client_cert: "`SslOpts::with_client_identity`",
    alpn: "the server's TLS settings",
};

/// The rustls error somewhere in `error`'s chain (`mysql_async` wraps it in
/// an `io::Error`, whose `source` skips what it wraps).
fn rustls_cause(error: &mysql_async::Error) -> Option<&rustls::Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = next {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(tls) = error
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(tls);
        }
        next = error.source();
    }
    None
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

    /// A dial's error, with a refused TLS handshake said as what failed
    /// and how to fix it.
    fn explain(&self, error: mysql_async::Error) -> MysqlError {
        let ssl = self.opts.ssl_opts();
        let has_client_cert = ssl.is_some_and(|ssl| ssl.client_identity().is_some());
        let name = ssl
            .and_then(|ssl| ssl.tls_hostname_override())
            .unwrap_or(self.opts.ip_or_hostname());
        let refusal = rustls_cause(&error)
            .map(|tls| explain_refusal(tls, name, has_client_cert, &SSL_OPTS_KNOBS));
        match refusal {
            Some((problem, true)) => MysqlError::Tls {
                endpoint: format!("{}:{}", self.opts.ip_or_hostname(), self.opts.tcp_port()),
                problem,
                source: error,
            },
            _ => MysqlError::Mysql(error),
        }
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
            .map_err(|error| MysqlError::Config(format!("the dial task failed: {error}")))?
            .map_err(|error| self.explain(error))?;
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

    /// A refused login, an unknown database, a refused TLS handshake or
    /// bad settings are fatal; network errors are not.
    fn classify(&self, error: &MysqlError) -> ErrorClass {
        match error {
            MysqlError::Mysql(mysql_async::Error::Server(error))
                if matches!(error.code, 1044 | 1045 | 1049 | 1698) =>
            {
                ErrorClass::Fatal
            }
            MysqlError::Mysql(mysql_async::Error::Url(_))
            | MysqlError::Config(_)
            | MysqlError::Tls { .. } => ErrorClass::Fatal,
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

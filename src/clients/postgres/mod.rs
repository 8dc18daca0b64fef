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
//! # TLS
//!
//! With the `tls` feature the connection string's `sslmode` holds as libpq
//! reads it: `disable`; `prefer` (the default), TLS when the server offers
//! it; `require`, TLS or nothing, the certificate not checked;
//! `verify-full`, TLS with the certificate verified against
//! `webpki-roots` and the host's name, or against the roots of the
//! connector given to [`PostgresManager::tls`]. The manager sends the
//! `SSLRequest` itself and reads the protocol above TLS, so the rule above
//! holds on encrypted sessions too. PostgreSQL servers turn TLS session
//! caching off on their side, so every dial is a full handshake: one more
//! reason to pool. Without the feature, sessions are plain.
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

mod error;
#[cfg(feature = "tls")]
mod tls;
mod wire;

use std::sync::Arc;

use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Client, Config, NoTls};

pub use error::PostgresError;
pub use wire::TransactionStatus;
use wire::{Wire, WireState};

use super::link::{ClientBase, Link};
use crate::manager::{CloseReason, ErrorClass, IdleWatch};
use crate::send_manager::SendManager;
use crate::tcp::Dialer;

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
    /// Encryption, as `sslmode` or [`PostgresManager::tls`] asked.
    #[cfg(feature = "tls")]
    tls: Option<tls::PgTls>,
}

impl PostgresManager {
    /// A manager that dials with `dialer` and logs in with `config` (user,
    /// password, database, application name; its hosts and ports are not
    /// used: the dialer's target is).
    ///
    /// Made inside a tokio runtime, it keeps a handle to it, so dials from
    /// outside one (the maintenance thread) run their connection tasks
    /// there.
    ///
    /// With the `tls` feature, the config's `sslmode` holds as libpq reads
    /// it: `disable`, plain; `prefer` (`tokio-postgres`' default), TLS when
    /// the server offers it; `require`, TLS or nothing (the certificate is
    /// not checked, as with libpq without a root file: pass a verifying
    /// connector with [`tls`](PostgresManager::tls) for that). Without the
    /// feature, `prefer` connects plain and `require` fails at the dial.
    pub fn new(dialer: Dialer, mut config: Config) -> Self {
        #[cfg(feature = "tls")]
        let tls = match config.get_ssl_mode() {
            SslMode::Prefer => Some(tls::PgTls::for_mode(tls::Mode::Prefer)),
            SslMode::Require => Some(tls::PgTls::for_mode(tls::Mode::Require)),
            _ => None,
        };
        #[cfg(feature = "tls")]
        config.ssl_mode(SslMode::Disable); // negotiated here, not by tokio-postgres
        #[cfg(not(feature = "tls"))]
        if config.get_ssl_mode() == SslMode::Prefer {
            config.ssl_mode(SslMode::Disable);
        }
        PostgresManager {
            base: ClientBase::new(dialer),
            config,
            ping: "SELECT 1".to_string(),
            rollback_on_return: true,
            #[cfg(feature = "tls")]
            tls,
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
        #[cfg(feature = "tls")]
        let (parsed, verify_full) = tls::take_verify_mode(url)?;
        #[cfg(feature = "tls")]
        let url = parsed.as_str();
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
        let manager = Self::new(dialer, config);
        #[cfg(feature = "tls")]
        if verify_full {
            return Ok(manager.tls(crate::tcp::TlsConnector::webpki()));
        }
        Ok(manager)
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

    /// Encrypts every session with `connector` and verifies the server's
    /// certificate with it (`sslmode=verify-full`; the default connector
    /// there trusts `webpki-roots`). Give it your provider's CA for a
    /// managed database:
    ///
    /// ```no_run
    /// use ringpool::clients::postgres::PostgresManager;
    /// use ringpool::tcp::TlsConnector;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let connector = TlsConnector::builder()
    ///     .add_root_pem_file("/etc/ssl/certs/db-ca.pem")?
    ///     .build()?;
    /// let manager =
    ///     PostgresManager::from_url("postgresql://app@db.internal:5432/app")?.tls(connector);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Every dial shares the connector's `ClientConfig` and session store,
    /// so a refill resumes the session of an earlier connection; the pool's
    /// [`Stats::tls_handshakes`](crate::Stats::tls_handshakes) counts full
    /// and resumed handshakes.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(mut self, connector: crate::tcp::TlsConnector) -> Self {
        self.tls = Some(tls::PgTls {
            mode: tls::Mode::VerifyFull,
            connector,
        });
        self
    }

    /// The dialer.
    pub fn dialer(&self) -> &Dialer {
        &self.base.dialer
    }

    /// Logs in on `stream` and runs the client's connection task on
    /// `runtime`.
    async fn session<S>(
        &self,
        stream: S,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Client, PostgresError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (client, connection) = self.config.connect_raw(stream, NoTls).await?;
        let target = self.base.dialer.target();
        runtime.spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(endpoint = %target, %error, "postgres connection ended");
            }
        });
        Ok(client)
    }

    /// A dial that negotiates TLS first, the negotiation and handshake
    /// within `connect_timeout`; the protocol reader sits above TLS.
    #[cfg(feature = "tls")]
    async fn connect_tls(&self, tls: &tls::PgTls) -> Result<PostgresConn, PostgresError> {
        use super::link::Observed;
        let started = std::time::Instant::now();
        let (stream, link, runtime) = self.base.dial(()).await?;
        let target = self.base.dialer.target();
        let negotiated = self
            .base
            .within_connect_timeout(started, tls.negotiate(stream, &target))
            .await?;
        let (observer, wire) = Wire::new();
        let client = match negotiated {
            tls::Negotiated::Encrypted(stream) => {
                self.session(Observed::new(stream, observer), &runtime)
                    .await?
            }
            tls::Negotiated::Plain(stream) => {
                self.session(Observed::new(stream, observer), &runtime)
                    .await?
            }
        };
        Ok(PostgresConn { client, wire, link })
    }
}

impl SendManager for PostgresManager {
    type Connection = PostgresConn;
    type Error = PostgresError;

    async fn connect(&self) -> Result<PostgresConn, PostgresError> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return self.connect_tls(tls).await;
        }
        let (observer, wire) = Wire::new();
        let (stream, link, runtime) = self.base.dial(observer).await?;
        let client = self.session(stream, &runtime).await?;
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
            #[cfg(feature = "tls")]
            PostgresError::Tls(error) => error.class(),
        }
    }

    #[cfg(feature = "tls")]
    fn tls_handshakes(&self) -> Option<crate::TlsHandshakes> {
        self.tls.as_ref().map(|tls| tls.connector.handshakes())
    }

    super::link::link_watch!(PostgresConn);
}

super::link::link_watcher!([] PostgresManager, PostgresConn, IdleWatch::WatchedAndPinged);

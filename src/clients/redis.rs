//! Redis through the `redis` crate (feature `redis`): the pool hands out a
//! [`RedisConn`], a `redis::aio::MultiplexedConnection` made over a socket
//! ringpool dialed, used with `query_async` as usual.
//!
//! A command whose future is dropped before its reply does not poison the
//! connection: the multiplexed connection matches replies to requests in
//! order and throws away those nobody waits for. State a command sets on
//! the session (`SELECT`, `CLIENT SETNAME`, a `MULTI` sent on its own
//! without `EXEC`) goes with the connection to its next user, as with any
//! pool; an atomic pipeline (`redis::pipe().atomic()`) sends `MULTI` and
//! `EXEC` in one write and never leaves one open.
//!
//! With the `tls` feature, `rediss://` URLs (and
//! [`RedisManager::tls`]) encrypt every connection through rustls; the
//! idle watch and the liveness checks see the socket under TLS as before.
//!
//! # Examples
//!
//! ```no_run
//! use ringpool::Pool;
//! use ringpool::clients::redis::RedisManager;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = Pool::builder(RedisManager::from_url("redis://127.0.0.1:6379/0")?).build()?;
//! let mut conn = pool.get().await?;
//! let () = redis::cmd("SET").arg("greeting").arg("hello").query_async(&mut *conn).await?;
//! let value: String = redis::cmd("GET").arg("greeting").query_async(&mut *conn).await?;
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Cmd, ConnectionAddr, RedisConnectionInfo, RedisFuture, Value};

use super::link::{ClientBase, DialError, Link};
use crate::manager::{CloseReason, ErrorClass, IdleWatch};
use crate::send_manager::SendManager;
use crate::tcp::Dialer;

/// Why a Redis connection could not be made or checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisError {
    /// The TCP dial failed.
    #[error(transparent)]
    Dial(#[from] DialError),
    /// The server refused (authentication, a database that does not
    /// exist), or a command failed.
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    /// `PING` was answered with something else.
    #[error("PING answered {0:?}, not PONG")]
    Ping(String),
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

/// A pooled Redis connection: a `redis::aio::MultiplexedConnection` (it
/// derefs to one, and is a `redis::aio::ConnectionLike` itself).
#[derive(Debug)]
pub struct RedisConn {
    conn: MultiplexedConnection,
    link: Arc<Link>,
}

impl std::ops::Deref for RedisConn {
    type Target = MultiplexedConnection;

    fn deref(&self) -> &MultiplexedConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for RedisConn {
    fn deref_mut(&mut self) -> &mut MultiplexedConnection {
        &mut self.conn
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        self.conn.req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.conn.req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}

/// Makes [`RedisConn`]s: a ringpool dial, then the `redis` crate's
/// handshake (`AUTH`, `SELECT`) on the socket, its driver task spawned on
/// the tokio runtime and ended with the connection.
#[derive(Debug)]
pub struct RedisManager {
    base: ClientBase,
    info: RedisConnectionInfo,
    response_timeout: Option<Duration>,
}

impl RedisManager {
    /// A manager that dials with `dialer` and sets up each connection with
    /// `info` (database, user, password, protocol).
    ///
    /// Made inside a tokio runtime, it keeps a handle to it, so dials from
    /// outside one (the maintenance thread) run their driver tasks there.
    pub fn new(dialer: Dialer, info: RedisConnectionInfo) -> Self {
        RedisManager {
            base: ClientBase::new(dialer),
            info,
            response_timeout: None,
        }
    }

    /// A manager from a `redis://[user:password@]host:port[/db]` URL,
    /// dialing on io_uring; with the `tls` feature, `rediss://` encrypts,
    /// verifying the server against `webpki-roots` (give your own roots
    /// with [`tls`](RedisManager::tls)), or not at all with the `redis`
    /// crate's `#insecure` suffix.
    ///
    /// # Errors
    ///
    /// [`RedisError::Config`] if the URL does not parse, is not TCP (Unix
    /// sockets are not offered), is `rediss://` without the `tls` feature,
    /// or io_uring is unavailable.
    pub fn from_url(url: &str) -> Result<Self, RedisError> {
        let (plain, tls) = match url.strip_prefix("rediss://") {
            None => (url.to_string(), None),
            Some(rest) => {
                let (rest, insecure) = match rest.strip_suffix("#insecure") {
                    Some(rest) => (rest, true),
                    None => (rest, false),
                };
                (format!("redis://{rest}"), Some(insecure))
            }
        };
        let info: redis::ConnectionInfo = plain
            .parse()
            .map_err(|error| RedisError::Config(format!("`{url}`: {error}")))?;
        let target = match &info.addr {
            ConnectionAddr::Tcp(host, port) if host.contains(':') => format!("[{host}]:{port}"),
            ConnectionAddr::Tcp(host, port) => format!("{host}:{port}"),
            _ => {
                return Err(RedisError::Config(format!(
                    "`{url}` is not plain TCP; give redis://host:port (TLS and Unix sockets are not offered)"
                )));
            }
        };
        let dialer = Dialer::new(target).map_err(|error| RedisError::Config(error.to_string()))?;
        let manager = Self::new(dialer, info.redis);
        match tls {
            None => Ok(manager),
            #[cfg(feature = "tls")]
            Some(false) => Ok(manager.tls(crate::tcp::TlsConnector::webpki())),
            #[cfg(feature = "tls")]
            Some(true) => Ok(manager.tls(crate::tcp::tls_unverified::unverified())),
            #[cfg(not(feature = "tls"))]
            Some(_) => Err(RedisError::Config(format!(
                "`{url}` asks for TLS: build ringpool with the `tls` feature, or give redis://"
            ))),
        }
    }

    /// Encrypts every connection with `connector` (TLS, as `rediss://`),
    /// verifying the server with its roots; every dial shares its
    /// `ClientConfig` and session store, so a refill resumes a session.
    ///
    /// ```no_run
    /// use ringpool::clients::redis::RedisManager;
    /// use ringpool::tcp::TlsConnector;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let connector = TlsConnector::builder()
    ///     .add_root_pem_file("/etc/ssl/certs/cache-ca.pem")?
    ///     .build()?;
    /// let manager = RedisManager::from_url("redis://cache.internal:6380")?.tls(connector);
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(mut self, connector: crate::tcp::TlsConnector) -> Self {
        self.base.set_tls(connector);
        self
    }

    /// How long a command may wait for its reply before it fails (none by
    /// default).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = Some(timeout);
        self
    }

    /// The dialer.
    pub fn dialer(&self) -> &Dialer {
        &self.base.dialer
    }
}

impl SendManager for RedisManager {
    type Connection = RedisConn;
    type Error = RedisError;

    async fn connect(&self) -> Result<RedisConn, RedisError> {
        let (stream, link, runtime) = self.base.dial_secured::<RedisError>().await?;
        let mut config = AsyncConnectionConfig::new();
        if let Some(timeout) = self.response_timeout {
            config = config.set_response_timeout(timeout);
        }
        let (conn, driver) =
            MultiplexedConnection::new_with_config(&self.info, stream, config).await?;
        runtime.spawn(driver);
        Ok(RedisConn { conn, link })
    }

    /// `PING`, answered `PONG`.
    async fn ping(&self, conn: &mut RedisConn) -> Result<(), RedisError> {
        let reply: String = redis::cmd("PING").query_async(&mut conn.conn).await?;
        match reply.as_str() {
            "PONG" => Ok(()),
            _ => Err(RedisError::Ping(reply)),
        }
    }

    /// The driver task ended, or the socket's peer hung up.
    fn is_broken(&self, conn: &mut RedisConn) -> bool {
        conn.link.is_dead()
    }

    fn check_return(&self, conn: &mut RedisConn) -> Result<(), CloseReason> {
        match conn.link.ended() {
            true => Err(CloseReason::Broken),
            false => Ok(()),
        }
    }

    /// Dial errors as the dialer classifies them; a refused login is fatal.
    fn classify(&self, error: &RedisError) -> ErrorClass {
        match error {
            RedisError::Dial(error) => self.base.dialer.classify(&error.source),
            RedisError::Redis(error) if error.kind() == redis::ErrorKind::AuthenticationFailed => {
                ErrorClass::Fatal
            }
            RedisError::Config(_) => ErrorClass::Fatal,
            #[cfg(feature = "tls")]
            RedisError::Tls(error) => error.class(),
            _ => ErrorClass::Retryable,
        }
    }

    #[cfg(feature = "tls")]
    fn tls_handshakes(&self) -> Option<crate::TlsHandshakes> {
        self.base.tls().map(crate::tcp::TlsConnector::handshakes)
    }

    super::link::link_watch!(RedisConn);
}

super::link::link_watcher!([] RedisManager, RedisConn, IdleWatch::WatchedAndPinged);

/// Redis' multiplexed connections shared by many callers at once, through
/// a [`SharedPool`](crate::shared::SharedPool): made by
/// [`RedisManager::shared`].
///
/// A `MultiplexedConnection` pipelines the commands of everyone holding a
/// clone of it, so one connection carries many requests in flight. Each
/// [`Lease`](crate::shared::Lease) is a place on one connection, up to
/// `max_in_flight` a connection: take a clone of the connection from it
/// (`(*lease).clone()`, cheap), run the command, and drop the lease when
/// the reply is in. Commands that need a connection of their own
/// (`MULTI`/`EXEC`, blocking pops, `SUBSCRIBE`, `WATCH`) belong on an
/// exclusive [`Pool`](crate::Pool) of [`RedisManager`] instead: on a shared
/// connection they would interleave with other callers' commands.
///
/// ```no_run
/// use ringpool::clients::redis::RedisManager;
/// use ringpool::shared::SharedPool;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = RedisManager::from_url("redis://127.0.0.1:6379/0")?.shared(64);
/// let pool = SharedPool::builder(manager).max_size(4).build()?;
/// let lease = pool.get().await?;
/// let mut conn = (*lease).clone();
/// let value: Option<String> = redis::cmd("GET").arg("key").query_async(&mut conn).await?;
/// drop(lease);
/// # let _ = value;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct SharedRedisManager {
    inner: RedisManager,
    max_in_flight: usize,
}

impl RedisManager {
    /// This manager's connections, shared: each carries up to
    /// `max_in_flight` requests at once (at least 1).
    pub fn shared(self, max_in_flight: usize) -> SharedRedisManager {
        SharedRedisManager {
            inner: self,
            max_in_flight: max_in_flight.max(1),
        }
    }
}

impl crate::shared::SharedManager for SharedRedisManager {
    type Connection = RedisConn;
    type Error = RedisError;

    async fn connect(&self) -> Result<RedisConn, RedisError> {
        SendManager::connect(&self.inner).await
    }

    /// The `max_in_flight` it was made with.
    fn capacity(&self, _conn: &RedisConn) -> usize {
        self.max_in_flight
    }

    /// False once the connection's driver task ended (the server closed
    /// it, `CLIENT KILL`, a reset).
    fn is_open(&self, conn: &RedisConn) -> bool {
        !conn.link.ended()
    }
}

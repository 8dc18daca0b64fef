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
    /// dialing on io_uring.
    ///
    /// # Errors
    ///
    /// [`RedisError::Config`] if the URL does not parse, is not plain TCP
    /// (`rediss://` and Unix sockets are not offered), or io_uring is
    /// unavailable.
    pub fn from_url(url: &str) -> Result<Self, RedisError> {
        let info: redis::ConnectionInfo = url
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
        Ok(Self::new(dialer, info.redis))
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
        let (stream, link, runtime) = self.base.dial(()).await?;
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
            _ => ErrorClass::Retryable,
        }
    }

    super::link::link_watch!(RedisConn);
}

super::link::link_watcher!([] RedisManager, RedisConn, IdleWatch::WatchedAndPinged);

//! The TCP manager: dials a target with a timeout, sets socket options, and
//! checks liveness without reading a byte the protocol did not ask for.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, OnceLock};

use super::conn::{TcpConn, Watch};
use super::dialer::{Dialer, Engine};
use super::liveness::{peek_says_broken, poll_says_broken};
use super::options::{Backend, IdleCheck, TcpOptions};
use super::ping::ProtocolPing;
use crate::manager::{CloseReason, ErrorClass, IdleDeaths, IdleWatch, IdleWatcher, Manager};
use crate::sync::plain::{AtomicBool, Ordering};
use crate::uring::{BackendError, WatchCell, WatchSink, multishot_poll, peek_all};

/// Makes TCP connections to one target for a [`Pool`](crate::Pool).
///
/// # Examples
///
/// ```no_run
/// use ringpool::Pool;
/// use ringpool::tcp::TcpManager;
///
/// let manager = TcpManager::new("127.0.0.1:6379")?; // fails with the cause if io_uring is blocked
/// let pool = Pool::builder(manager).max_size(32).build()?;
/// let conn = pool.get_blocking()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct TcpManager {
    dialer: Dialer,
    ping: Option<ProtocolPing>,
    /// The idle watch's shared state, once a pool turned it on.
    watch: OnceLock<Arc<WatchSink>>,
    /// Whether a pool asked for the idle watch ([`IdleWatcher::start`]);
    /// the first dial warns if none did (see `warn_if_watch_unasked`).
    watch_asked: AtomicBool,
    /// Whether that warning was logged.
    unasked_warned: AtomicBool,
}

impl TcpManager {
    /// A manager for `target` (a socket address, or `host:port` resolved
    /// again on every dial, off the calling thread, every address tried in
    /// order) on io_uring.
    ///
    /// # Errors
    ///
    /// [`BackendError`] if `target` is not an address or `host:port`, or
    /// io_uring is unavailable; the error says why and how to fix it (or to
    /// fall back with [`TcpManager::with_backend`] or
    /// [`TcpManager::with_best_backend`]).
    pub fn new(target: impl std::fmt::Display) -> Result<Self, BackendError> {
        Self::with_backend(target, Backend::IoUring)
    }

    /// A manager for `target` on the chosen backend.
    ///
    /// # Errors
    ///
    /// As [`TcpManager::new`]; never an io_uring error for
    /// [`Backend::Blocking`].
    pub fn with_backend(
        target: impl std::fmt::Display,
        backend: Backend,
    ) -> Result<Self, BackendError> {
        Ok(Self::with_dialer(Dialer::with_backend(target, backend)?))
    }

    /// A manager on io_uring whose every dial asks `resolve` for the
    /// addresses to try, in order (a service-discovery client, a resolver
    /// of the application's own). It runs on a thread of its own, so it may
    /// block; `name` labels the target in errors and logs.
    ///
    /// # Errors
    ///
    /// [`BackendError`] if io_uring is unavailable.
    pub fn with_resolver(
        name: impl Into<String>,
        resolve: impl Fn() -> io::Result<Vec<SocketAddr>> + Send + Sync + 'static,
    ) -> Result<Self, BackendError> {
        Ok(Self::with_dialer(Dialer::with_resolver(name, resolve)?))
    }

    /// io_uring if it works here, else plain system calls, whose dials
    /// block the calling thread (fine with `get_blocking` and the
    /// maintenance thread, not inside an async task). The second value is
    /// `Some(why)` when it fell back, so the caller decides whether that is
    /// acceptable instead of finding out from a log line.
    ///
    /// # Errors
    ///
    /// [`BackendError`] for a target that is not an address or
    /// `host:port`.
    pub fn with_best_backend(
        target: impl std::fmt::Display,
    ) -> Result<(Self, Option<BackendError>), BackendError> {
        let target = target.to_string();
        match Self::with_backend(&target, Backend::IoUring) {
            Err(error @ (BackendError::Setup { .. } | BackendError::MissingOpcode { .. })) => {
                Ok((Self::with_backend(target, Backend::Blocking)?, Some(error)))
            }
            other => other.map(|manager| (manager, None)),
        }
    }

    /// A manager whose connections `dialer` makes.
    pub fn with_dialer(dialer: Dialer) -> Self {
        TcpManager {
            dialer,
            ping: None,
            watch: OnceLock::new(),
            watch_asked: AtomicBool::new(false),
            unasked_warned: AtomicBool::new(false),
        }
    }

    /// Replaces the socket options.
    pub fn options(mut self, options: TcpOptions) -> Self {
        self.dialer = self.dialer.options(options);
        self
    }

    /// The dialer this manager's connections come from.
    pub fn dialer(&self) -> &Dialer {
        &self.dialer
    }

    /// Health-checks connections with a request the protocol defines and
    /// the exact reply it must get, for example Redis
    /// `ping_with(b"PING\r\n", b"+PONG\r\n")`: at checkout after the
    /// pool's `ping_after`, and in maintenance, under `ping_timeout`. A
    /// wrong or missing reply closes the connection. Without it, health
    /// checks only peek and never write a byte.
    pub fn ping_with(mut self, request: impl Into<Vec<u8>>, reply: impl Into<Vec<u8>>) -> Self {
        self.ping = Some(ProtocolPing::new(request, reply));
        self
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.dialer.backend()
    }

    /// Waits until every close this process submitted to the io_uring thread
    /// so far has completed (at once for [`Backend::Blocking`], whose closes
    /// are synchronous). For an orderly shutdown, and for tests that count
    /// descriptors.
    pub async fn wait_for_closes(&self) {
        if let Engine::Uring(driver) = &self.dialer.engine {
            driver.barrier().await;
        }
    }

    /// How idle connections are checked: the options' choice, or
    /// [`IdleCheck::Poll`] where the idle watch cannot run (the blocking
    /// backend, a kernel without multishot poll).
    pub fn idle_check(&self) -> IdleCheck {
        match self.dialer.options.idle_check {
            IdleCheck::Watch if self.watch_unavailable().is_some() => IdleCheck::Poll,
            chosen => chosen,
        }
    }

    /// Why the idle watch cannot run here, if it cannot.
    fn watch_unavailable(&self) -> Option<&'static str> {
        match &self.dialer.engine {
            Engine::Blocking => Some("the idle watch needs the io_uring backend"),
            Engine::Uring(_) => multishot_poll().err(),
        }
    }

    /// Idle connections the watch has a poll armed on right now.
    pub fn watched_connections(&self) -> usize {
        self.watch.get().map_or(0, |sink| sink.armed())
    }

    /// Polls of the watch the kernel still holds: the armed ones, and
    /// those of connections that left idle whose removal has not completed
    /// yet. Zero once the pool is closed and its closes are done.
    pub fn watch_polls(&self) -> usize {
        self.watch.get().map_or(0, |sink| sink.polls())
    }

    /// Idle connections the watch has seen die, since the pool was built.
    pub fn watch_deaths(&self) -> u64 {
        self.watch.get().map_or(0, |sink| sink.seen_dead())
    }

    /// The target, as given.
    pub fn target(&self) -> String {
        self.dialer.target.to_string()
    }

    /// The blocking backend's ping: write the request, read exactly the
    /// expected reply, under the connect timeout. The socket's own read and
    /// write timeouts are restored afterwards, whatever the outcome.
    fn blocking_ping(&self, ping: &ProtocolPing, conn: &mut TcpConn) -> io::Result<()> {
        let stream = conn.stream_mut();
        let (read_before, write_before) = (stream.read_timeout()?, stream.write_timeout()?);
        let limit = Some(self.dialer.options.connect_timeout);
        stream.set_read_timeout(limit)?;
        stream.set_write_timeout(limit)?;
        let outcome = (|| {
            stream.write_all(&ping.request)?;
            let mut reply = vec![0u8; ping.reply.len()];
            stream.read_exact(&mut reply)?;
            ping.check(&reply)
        })();
        stream.set_read_timeout(read_before)?;
        stream.set_write_timeout(write_before)?;
        outcome
    }

    fn configure(&self, stream: TcpStream) -> TcpConn {
        let fd = stream.as_raw_fd();
        let mut conn = TcpConn::from(stream);
        if let Some(sink) = self.watch.get() {
            conn.watch = Some(Watch::new(WatchCell::new(fd, Arc::clone(sink))));
        }
        conn
    }
}

impl Manager for TcpManager {
    fn endpoint(&self) -> Option<String> {
        Some(self.dialer.target.to_string())
    }

    type Connection = TcpConn;
    type Error = io::Error;

    /// Resolves the target (a name, again on every dial), then tries each
    /// address in order; the error is the last address's.
    async fn connect(&self) -> io::Result<TcpConn> {
        self.warn_if_watch_unasked();
        Ok(self.configure(self.dialer.dial().await?))
    }

    /// The protocol ping set with [`TcpManager::ping_with`], if any: send
    /// the request, receive exactly the expected reply. On io_uring both run
    /// on the ring (linked, under a kernel timeout of `connect_timeout`),
    /// so no thread blocks and no socket option changes; the pool bounds the
    /// whole by its `ping_timeout`. On [`Backend::Blocking`] they are
    /// blocking calls on the calling thread, for blocking users.
    async fn ping(&self, conn: &mut TcpConn) -> io::Result<()> {
        let Some(ping) = &self.ping else {
            return Ok(());
        };
        match &self.dialer.engine {
            Engine::Uring(driver) => {
                let reply = driver
                    .ping(
                        conn.as_raw_fd(),
                        &ping.request,
                        ping.reply.len(),
                        self.dialer.options.connect_timeout,
                    )
                    .await?;
                ping.check(&reply)
            }
            Engine::Blocking => self.blocking_ping(ping, conn),
        }
    }

    /// A non-blocking one-byte `MSG_PEEK`: end of file, a reset, an error or
    /// unread bytes (a reply nobody asked for) all mean broken. Nothing is
    /// written and nothing is consumed.
    fn is_broken(&self, conn: &mut TcpConn) -> bool {
        peek_says_broken(conn.as_raw_fd())
    }

    fn is_broken_batch(&self, conns: &mut [&mut TcpConn]) -> Vec<bool> {
        let fds: Vec<RawFd> = conns.iter().map(|conn| conn.as_raw_fd()).collect();
        match self.dialer.options.idle_check {
            IdleCheck::Poll | IdleCheck::Watch => poll_says_broken(&fds),
            IdleCheck::IoUring => peek_all(&fds),
            IdleCheck::PerSocket => fds.into_iter().map(peek_says_broken).collect(),
        }
    }

    /// Refused, reset, unreachable and timed-out dials are worth retrying;
    /// a dial the host forbids (`EACCES`, `EPERM`) is not.
    fn classify(&self, error: &io::Error) -> ErrorClass {
        self.dialer.classify(error)
    }

    fn close(&self, conn: TcpConn, _reason: CloseReason) {
        conn.shut_down_if_duplicated();
        match &self.dialer.engine {
            Engine::Uring(driver) => {
                let (stream, watch) = conn.into_parts();
                driver.close(OwnedFd::from(stream), watch.map(Watch::into_cell));
            }
            Engine::Blocking => drop(conn),
        }
    }

    fn idle_watcher(&self) -> Option<&dyn IdleWatcher<TcpConn>> {
        Some(self)
    }
}

impl TcpManager {
    /// A dial with the idle watch on in the options but never started: a
    /// manager wrapping this one did not forward
    /// [`Manager::idle_watcher`], so dead idle connections are only found
    /// at checkout. Said once, loudly, since nothing else shows it.
    #[inline]
    fn warn_if_watch_unasked(&self) {
        if self.watch_asked.load(Ordering::Relaxed)
            || self.dialer.options.idle_check != IdleCheck::Watch
            || !matches!(self.dialer.engine, Engine::Uring(_))
            || self.unasked_warned.swap(true, Ordering::Relaxed)
        {
            return;
        }
        tracing::warn!(
            target = %self.dialer.target,
            "this TcpManager dials for a pool that never asked for its idle watch, so \
             connections that die idle are only found at checkout: a manager that wraps \
             TcpManager must forward `Manager::idle_watcher` (one method carries the whole \
             watch); set TcpOptions::idle_check to IdleCheck::Poll if the watch is not wanted"
        );
    }

    /// Whether a pool turned this manager's idle watch on (for a wrapper's
    /// own tests: `false` after a pool is built means the watch was not
    /// forwarded or is not available).
    pub fn is_watching(&self) -> bool {
        self.watch.get().is_some()
    }
}

impl IdleWatcher<TcpConn> for TcpManager {
    /// With [`IdleCheck::Watch`] on io_uring (the default, where the kernel
    /// has multishot poll): watches idle connections and reports their
    /// deaths. Otherwise logs why not and leaves the sweep to maintenance.
    fn start(&self, deaths: IdleDeaths) -> IdleWatch {
        self.watch_asked.store(true, Ordering::Relaxed);
        if self.dialer.options.idle_check != IdleCheck::Watch {
            return IdleWatch::Off;
        }
        let Engine::Uring(driver) = &self.dialer.engine else {
            tracing::debug!(target = %self.dialer.target, "the idle watch needs io_uring; idle connections are swept with poll(2)");
            return IdleWatch::Off;
        };
        if let Err(why) = multishot_poll() {
            tracing::warn!(
                target = %self.dialer.target,
                "{why}: idle connections are swept with poll(2) instead of watched; \
                 set TcpOptions::idle_check to IdleCheck::Poll to silence this"
            );
            return IdleWatch::Off;
        }
        driver.start_watching();
        let sink = WatchSink::new(Box::new(driver.clone()), self.dialer.options.watch_after);
        sink.report_to(deaths);
        if self.watch.set(sink).is_err() {
            // A second pool over this manager cannot happen (the pool owns
            // it); keep the first.
            return IdleWatch::Off;
        }
        match self.ping {
            Some(_) => IdleWatch::WatchedAndPinged,
            None => IdleWatch::Watched,
        }
    }

    #[inline]
    fn idle(&self, conn: &mut TcpConn) {
        if let (Some(watch), Engine::Uring(driver)) = (&conn.watch, &self.dialer.engine) {
            driver.went_idle(watch.cell());
        }
    }

    #[inline]
    fn unwatch(&self, conn: &mut TcpConn) -> bool {
        let Some(watch) = &conn.watch else {
            return false;
        };
        let (dead, armed) = watch.cell().leave_idle();
        if let (Some(id), Engine::Uring(driver)) = (armed, &self.dialer.engine) {
            driver.unwatch_lazily(Arc::clone(watch.cell()), id);
        }
        dead
    }

    fn died_idle(&self, conn: &TcpConn) -> bool {
        conn.watch
            .as_ref()
            .is_some_and(|watch| watch.cell().is_dead())
    }
}

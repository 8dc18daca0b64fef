//! A mock payment API for the examples: one request line in, one reply line
//! out, like a card authorisation.
//!
//! ```text
//! AUTH <id> <amount>\n   ->   OK <id>\n
//! ```
//!
//! Each request is held for a simulated service time (a base plus a uniform
//! jitter either side) before it is answered. The delay is a kernel timer
//! (`timerfd`, armed per request and awaited through the server's reactor),
//! not a busy loop and not tokio's timer wheel, whose 1 ms tick would round
//! a 1 ms service time up to 1-2 ms. On loopback there is no network delay
//! to inject, so this timer is the only latency the server adds.
//!
//! The same API is also served over gRPC (`Protocol::Grpc`, see
//! `mock_api_grpc.rs`): one unary method with the same messages and the
//! same hold.
//!
//! The server runs on its own multi-thread tokio runtime on its own threads
//! (named `mock-api`), so a client in the same process cannot starve its
//! accept loop, and the CPU time of exactly those threads can be read
//! ([`MockApi::cpu_time`]) and told apart from the client's.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

#[path = "mock_api_grpc.rs"]
pub mod grpc;
#[path = "grpc_text.rs"]
pub mod grpc_text;

/// The listen backlog: Linux's default `somaxconn` (the kernel caps it at
/// that anyway), as Go's `net.Listen` uses, so a burst of dials is not
/// dropped by a short accept queue this server chose.
const BACKLOG: u32 = 4096;

/// Longest request line accepted.
const MAX_LINE: usize = 256;

/// How the mock API behaves.
#[derive(Clone, Copy, Debug)]
pub struct MockApiConfig {
    /// Mean time each request is held before its reply.
    pub service_time: Duration,
    /// Each request's time is drawn uniformly from `service_time ± jitter`.
    pub jitter: Duration,
    /// Worker threads of the server's own runtime.
    pub threads: usize,
    /// What the server speaks.
    pub protocol: Protocol,
}

/// The mock API's wire protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// One request line in, one reply line out, one at a time per
    /// connection.
    #[default]
    Line,
    /// gRPC over HTTP/2 ([`grpc::AUTHORIZE`]), at most `max_streams`
    /// requests at once per connection (the server's
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`).
    Grpc {
        /// The per-connection stream limit the server announces.
        max_streams: u32,
    },
}

/// Counters the server keeps while it runs.
#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    served: AtomicU64,
    delayed_nanos: AtomicU64,
}

/// A running mock payment API; dropping it stops the server.
pub struct MockApi {
    addr: SocketAddr,
    config: MockApiConfig,
    counters: Arc<Counters>,
    cpu_clocks: Arc<Mutex<Vec<libc::clockid_t>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// The TLS a line-protocol server terminates (feature `tls`).
#[cfg(feature = "tls")]
pub type Acceptor = tokio_rustls::TlsAcceptor;
/// No TLS without the `tls` feature.
#[cfg(not(feature = "tls"))]
pub type Acceptor = std::convert::Infallible;

impl MockApi {
    /// Starts the server on `bind` (`127.0.0.1:0` for any free port).
    #[allow(dead_code)] // the loadtest starts its servers with `start_with`
    pub fn start(bind: SocketAddr, config: MockApiConfig) -> io::Result<MockApi> {
        MockApi::start_with(bind, config, None)
    }

    /// Starts the server on `bind`, its line protocol over TLS when
    /// `tls` is given (every connection's handshake first).
    pub fn start_with(
        bind: SocketAddr,
        config: MockApiConfig,
        tls: Option<Acceptor>,
    ) -> io::Result<MockApi> {
        let cpu_clocks = Arc::new(Mutex::new(Vec::new()));
        let clocks = Arc::clone(&cpu_clocks);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads.max(1))
            .thread_name("mock-api")
            .on_thread_start(move || {
                if let Some(clock) = current_thread_cpu_clock()
                    && let Ok(mut clocks) = clocks.lock()
                {
                    clocks.push(clock);
                }
            })
            .enable_all()
            .build()?;
        let counters = Arc::new(Counters::default());
        let listener = runtime.block_on(async {
            let socket = match bind {
                SocketAddr::V4(_) => TcpSocket::new_v4()?,
                SocketAddr::V6(_) => TcpSocket::new_v6()?,
            };
            socket.set_reuseaddr(true)?;
            socket.bind(bind)?;
            socket.listen(BACKLOG)
        })?;
        let addr = listener.local_addr()?;
        let timers = Arc::new(Timers::default());
        match config.protocol {
            Protocol::Line => {
                runtime.spawn(accept_lines(
                    listener,
                    config,
                    Arc::clone(&counters),
                    timers,
                    tls,
                ));
            }
            Protocol::Grpc { max_streams } => {
                runtime.spawn(grpc::serve(
                    listener,
                    config,
                    Arc::clone(&counters),
                    timers,
                    max_streams,
                ));
            }
        }
        Ok(MockApi {
            addr,
            config,
            counters,
            cpu_clocks,
            runtime: Some(runtime),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its configuration.
    pub fn config(&self) -> MockApiConfig {
        self.config
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.counters.accepted.load(Ordering::Relaxed)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.counters.served.load(Ordering::Relaxed)
    }

    /// The time requests were held for so far, added up: from arming each
    /// request's timer until the server got back to it after it fired.
    pub fn held(&self) -> Duration {
        Duration::from_nanos(self.counters.delayed_nanos.load(Ordering::Relaxed))
    }

    /// The time requests were actually held for, on average (timer overshoot
    /// and the server's scheduling delay included).
    pub fn mean_service_time(&self) -> Option<Duration> {
        let served = self.requests();
        (served > 0).then(|| Duration::from_nanos(self.held().as_nanos() as u64 / served))
    }

    /// CPU time used so far by the server's threads.
    pub fn cpu_time(&self) -> Duration {
        let Ok(clocks) = self.cpu_clocks.lock() else {
            return Duration::ZERO;
        };
        clocks.iter().filter_map(|&clock| clock_time(clock)).sum()
    }
}

impl Drop for MockApi {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Accepts line-protocol connections, each served on a task of its own.
async fn accept_lines(
    listener: tokio::net::TcpListener,
    config: MockApiConfig,
    counters: Arc<Counters>,
    timers: Arc<Timers>,
    tls: Option<Acceptor>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                counters.accepted.fetch_add(1, Ordering::Relaxed);
                let (counters, timers) = (Arc::clone(&counters), Arc::clone(&timers));
                let tls = tls.clone();
                tokio::spawn(async move {
                    if stream.set_nodelay(true).is_err() {
                        return;
                    }
                    // A connection's errors end that connection only.
                    let _ = match tls {
                        None => serve(stream, config, &counters, &timers).await,
                        #[cfg(feature = "tls")]
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(stream) => serve(stream, config, &counters, &timers).await,
                            Err(error) => Err(error),
                        },
                        #[cfg(not(feature = "tls"))]
                        Some(never) => match never {},
                    };
                });
            }
            // Out of descriptors or a connection reset before it
            // was accepted: keep serving the others.
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

/// Serves one connection until the peer closes it.
async fn serve<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    config: MockApiConfig,
    counters: &Counters,
    timers: &Timers,
) -> io::Result<()> {
    let mut buf = vec![0u8; MAX_LINE];
    let mut filled = 0;
    let mut reply = Vec::with_capacity(32);
    loop {
        let read = stream.read(&mut buf[filled..]).await?;
        if read == 0 {
            return Ok(());
        }
        filled += read;
        // Answer every complete line, in order.
        while let Some(end) = buf[..filled].iter().position(|&b| b == b'\n') {
            reply.clear();
            match parse_auth(&buf[..end]) {
                Some(id) => {
                    let held = hold(config, timers).await?;
                    counters.served.fetch_add(1, Ordering::Relaxed);
                    counters
                        .delayed_nanos
                        .fetch_add(held.as_nanos() as u64, Ordering::Relaxed);
                    reply.extend_from_slice(b"OK ");
                    reply.extend_from_slice(id);
                    reply.push(b'\n');
                }
                None => reply.extend_from_slice(b"ERR bad request\n"),
            }
            stream.write_all(&reply).await?;
            buf.copy_within(end + 1..filled, 0);
            filled -= end + 1;
        }
        if filled == buf.len() {
            stream.write_all(b"ERR line too long\n").await?;
            return Ok(());
        }
    }
}

/// The id of `AUTH <id> <amount>`, as sent.
fn parse_auth(line: &[u8]) -> Option<&[u8]> {
    let mut fields = line.strip_prefix(b"AUTH ")?.split(|&b| b == b' ');
    let id = fields.next()?;
    let amount = fields.next()?;
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    (digits(id) && digits(amount) && fields.next().is_none()).then_some(id)
}

/// Holds the request for its simulated service time; returns how long it
/// was actually held.
async fn hold(config: MockApiConfig, timers: &Timers) -> io::Result<Duration> {
    let jitter = config.jitter.as_nanos() as u64;
    let base = config.service_time.as_nanos() as u64;
    let nanos = if jitter == 0 {
        base
    } else {
        (base + fastrand::u64(0..=2 * jitter)).saturating_sub(jitter)
    };
    if nanos == 0 {
        return Ok(Duration::ZERO);
    }
    let started = Instant::now();
    let timer = timers.take()?;
    let slept = timer.sleep(Duration::from_nanos(nanos)).await;
    timers.give_back(timer);
    slept?;
    Ok(started.elapsed())
}

/// Spare timers of the server, so a request (and a connection that carries
/// only one) pays no timer creation.
#[derive(Default)]
struct Timers {
    spare: Mutex<Vec<Timer>>,
}

impl Timers {
    fn take(&self) -> io::Result<Timer> {
        let spare = self.spare.lock().ok().and_then(|mut spare| spare.pop());
        match spare {
            Some(timer) => Ok(timer),
            None => Timer::new(),
        }
    }

    fn give_back(&self, timer: Timer) {
        if let Ok(mut spare) = self.spare.lock() {
            spare.push(timer);
        }
    }
}

/// A non-blocking `timerfd` registered with the server's reactor.
struct Timer(AsyncFd<OwnedFd>);

impl Timer {
    fn new() -> io::Result<Timer> {
        // SAFETY: timerfd_create takes no pointers; the descriptor it
        // returns is owned here and nowhere else.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor this function owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: the OwnedFd keeps this descriptor open, and the same, for
        // as long as the AsyncFd that owns it.
        let registered = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) };
        Ok(Timer(registered?))
    }

    /// Arms the timer for `delay` and waits until it fires.
    async fn sleep(&self, delay: Duration) -> io::Result<()> {
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: delay.as_secs() as libc::time_t,
                tv_nsec: delay.subsec_nanos() as libc::c_long,
            },
        };
        let fd = self.0.get_ref().as_raw_fd();
        // SAFETY: `spec` is a valid itimerspec for the call's duration; a
        // null old-value pointer is allowed.
        if unsafe { libc::timerfd_settime(fd, 0, &spec, std::ptr::null_mut()) } < 0 {
            return Err(io::Error::last_os_error());
        }
        loop {
            let mut ready = self.0.readable().await?;
            match ready.try_io(|fd| read_expirations(fd.get_ref().as_raw_fd())) {
                Ok(result) => {
                    // One expiry per arming: nothing is left to read, so the
                    // next request's wait goes straight to the reactor.
                    ready.clear_ready();
                    return result.map(drop);
                }
                Err(_would_block) => continue,
            }
        }
    }
}

/// Reads a timerfd's expiration count (`WouldBlock` before it fired).
fn read_expirations(fd: RawFd) -> io::Result<u64> {
    let mut count = 0u64;
    // SAFETY: reads 8 bytes into a live u64.
    let read = unsafe { libc::read(fd, (&raw mut count).cast(), 8) };
    match read {
        8 => Ok(count),
        _ => Err(io::Error::last_os_error()),
    }
}

/// The calling thread's CPU-time clock.
fn current_thread_cpu_clock() -> Option<libc::clockid_t> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: pthread_self is always valid for the calling thread and
    // `clock` is a live out-parameter.
    let status = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) };
    (status == 0).then_some(clock)
}

/// A clock's current time, or `None` if it is gone (its thread exited).
fn clock_time(clock: libc::clockid_t) -> Option<Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a live out-parameter.
    let status = unsafe { libc::clock_gettime(clock, &mut now) };
    (status == 0).then(|| Duration::new(now.tv_sec as u64, now.tv_nsec as u32))
}

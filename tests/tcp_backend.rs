//! The TCP manager against real loopback servers, on both backends: reuse,
//! servers that reset or close connections or send unsolicited bytes, a
//! server restart, connect timeouts, and no descriptor leaked across
//! thousands of cycles with failures and cancellations.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Waker};
use std::thread::JoinHandle;
use std::time::Duration;

use ringpool::tcp::{Backend, TcpManager, TcpOptions};
use ringpool::{Error, Pool};

const BACKENDS: [Backend; 2] = [Backend::IoUring, Backend::Blocking];

/// An echo server (64-byte messages) whose connections the test can reset,
/// close, or write to unasked.
struct Server {
    addr: SocketAddr,
    accepted: Arc<Accepted>,
    stop: Arc<AtomicBool>,
    acceptor: JoinHandle<()>,
}

/// Connections the server accepted (a handle to each) and their threads;
/// the condition variable signals each new one.
#[derive(Default)]
struct Accepted {
    conns: Mutex<(Vec<TcpStream>, Vec<JoinHandle<()>>, usize)>,
    changed: Condvar,
}

impl Server {
    fn start() -> Server {
        Server::start_on(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    fn start_on(listener: TcpListener) -> Server {
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(Accepted::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (record, stopping) = (Arc::clone(&accepted), Arc::clone(&stop));
        let acceptor = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return; // drops the listener
                }
                let Ok(stream) = stream else { continue };
                let handle = stream.try_clone().unwrap();
                let worker = std::thread::spawn(move || echo(stream));
                let mut conns = record.conns.lock().unwrap();
                conns.0.push(handle);
                conns.1.push(worker);
                conns.2 += 1;
                record.changed.notify_all();
            }
        });
        Server {
            addr,
            accepted,
            stop,
            acceptor,
        }
    }

    /// Waits until the server has accepted `count` connections in all.
    fn wait_accepted(&self, count: usize) {
        let conns = self.accepted.conns.lock().unwrap();
        drop(
            self.accepted
                .changed
                .wait_while(conns, |c| c.2 < count)
                .unwrap(),
        );
    }

    fn take_conns(&self) -> Vec<TcpStream> {
        std::mem::take(&mut self.accepted.conns.lock().unwrap().0)
    }

    /// Resets every connection (`SO_LINGER` 0).
    fn reset_all(&self) {
        for stream in self.take_conns() {
            socket2::SockRef::from(&stream)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Closes every connection gracefully (FIN).
    fn close_all(&self) {
        for stream in self.take_conns() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Writes bytes nobody asked for on every connection.
    fn babble(&self) {
        for mut stream in self.accepted.conns.lock().unwrap().0.iter() {
            stream.write_all(b"surprise").unwrap();
        }
    }

    /// Stops accepting, closes every connection and waits for the server's
    /// threads to end; returns the address it listened on.
    fn stop(self) -> SocketAddr {
        self.stop.store(true, Ordering::SeqCst);
        drop(TcpStream::connect(self.addr)); // unblocks accept
        self.close_all();
        let Server {
            addr,
            accepted,
            acceptor,
            ..
        } = self;
        acceptor.join().unwrap();
        for stream in std::mem::take(&mut accepted.conns.lock().unwrap().0) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        let workers = std::mem::take(&mut accepted.conns.lock().unwrap().1);
        for worker in workers {
            worker.join().unwrap();
        }
        addr
    }
}

fn echo(mut stream: TcpStream) {
    let mut buf = [0u8; 64];
    while stream.read_exact(&mut buf).is_ok() {
        if stream.write_all(&buf).is_err() {
            return;
        }
    }
}

fn request(conn: &mut impl ReadWrite) -> std::io::Result<()> {
    let mut buf = [42u8; 64];
    conn.write_all(&buf)?;
    conn.read_exact(&mut buf)?;
    assert_eq!(buf, [42u8; 64], "the response belongs to this request");
    Ok(())
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn pool_for(addr: SocketAddr, backend: Backend) -> Pool<TcpManager> {
    let manager = TcpManager::with_backend(addr, backend).expect("backend available");
    assert_eq!(manager.backend(), backend);
    Pool::builder(manager)
        .max_size(4)
        .check_after(Duration::ZERO)
        .build()
        .unwrap()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn requests_reuse_a_few_connections_on_each_backend() {
    for backend in BACKENDS {
        let server = Server::start();
        let pool = pool_for(server.addr, backend);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..250 {
                        let mut conn = pool.get_blocking().unwrap();
                        request(&mut *conn).unwrap();
                    }
                });
            }
        });
        let stats = pool.stats();
        assert!(stats.connects <= 4, "{backend:?}: {stats:?}");
        assert_eq!(stats.gets, 1000);
        assert!(stats.reused >= 996, "{backend:?}: {stats:?}");
    }
}

#[test]
fn a_reset_connection_is_never_handed_out() {
    for backend in BACKENDS {
        let server = Server::start();
        let pool = pool_for(server.addr, backend);
        drop(pool.get_blocking().unwrap());
        server.wait_accepted(1);
        server.reset_all();
        let mut conn = pool.get_blocking().unwrap();
        request(&mut *conn).expect("a working connection, not the reset one");
        assert_eq!(pool.stats().closed.broken, 1, "{backend:?}");
    }
}

#[test]
fn a_connection_the_server_closed_while_idle_is_never_handed_out() {
    for backend in BACKENDS {
        let server = Server::start();
        let pool = pool_for(server.addr, backend);
        let conns: Vec<_> = (0..3).map(|_| pool.get_blocking().unwrap()).collect();
        drop(conns);
        server.wait_accepted(3);
        server.close_all();
        for _ in 0..3 {
            let mut conn = pool.get_blocking().unwrap();
            request(&mut *conn).expect("a live connection");
        }
        assert_eq!(pool.stats().closed.broken, 3, "{backend:?}");
    }
}

#[test]
fn unread_bytes_mark_a_connection_broken() {
    // A stale reply in the socket would be read by the next request.
    for backend in BACKENDS {
        let server = Server::start();
        let pool = pool_for(server.addr, backend);
        drop(pool.get_blocking().unwrap());
        server.wait_accepted(1);
        server.babble();
        let mut conn = pool.get_blocking().unwrap();
        request(&mut *conn).expect("not the connection with unread bytes");
        assert_eq!(pool.stats().closed.broken, 1, "{backend:?}");
    }
}

#[test]
fn the_pool_recovers_when_the_server_restarts() {
    for backend in BACKENDS {
        let server = Server::start();
        let manager = TcpManager::with_backend(server.addr, backend).unwrap();
        let pool = Pool::builder(manager)
            .max_size(2)
            .check_after(Duration::ZERO)
            .acquire_timeout(Duration::from_millis(300))
            .connect_backoff(Duration::from_millis(5))
            .connect_backoff_max(Duration::from_millis(20))
            .breaker_threshold(None)
            .build()
            .unwrap();
        drop(pool.get_blocking().unwrap());
        let addr = server.stop();
        let error = pool.get_blocking().expect_err("the server is down");
        let cause = error.connect_error().expect("a dial failed");
        assert_eq!(
            cause.kind(),
            std::io::ErrorKind::ConnectionRefused,
            "{backend:?}: {error}"
        );
        let _server = Server::start_on(TcpListener::bind(addr).unwrap());
        let mut conn = pool.get_blocking().expect("recovered by itself");
        request(&mut *conn).unwrap();
    }
}

#[test]
fn a_dial_that_hangs_times_out() {
    for backend in BACKENDS {
        // A listener that never accepts, with its queue full: further SYNs
        // are dropped and a connect hangs.
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket
            .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        socket.listen(0).unwrap();
        let addr = socket.local_addr().unwrap().as_socket().unwrap();
        let _queued: Vec<_> = (0..4)
            .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(50)).ok())
            .collect();
        let mut options = TcpOptions::default();
        options.connect_timeout = Duration::from_millis(100);
        let manager = TcpManager::with_backend(addr, backend)
            .unwrap()
            .options(options);
        let started = std::time::Instant::now();
        let error =
            futures_executor::block_on(ringpool::Manager::connect(&manager)).expect_err("hangs");
        let took = started.elapsed();
        assert_eq!(
            error.kind(),
            std::io::ErrorKind::TimedOut,
            "{backend:?}: {error}"
        );
        assert!(
            took < Duration::from_secs(2),
            "{backend:?}: bounded by the connect timeout, took {took:?}"
        );
    }
}

#[test]
fn no_descriptor_leaks_across_cycles_failures_and_cancellations() {
    let refused = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap() // dropped: nobody listens there
    };
    // The io_uring thread's own descriptors (ring, eventfd) and this
    // thread's batch ring are process-wide and made once: make them first.
    ringpool::probe_io_uring().unwrap();
    drop(TcpManager::with_backend(refused, Backend::IoUring).unwrap());
    let before = open_fds();
    let server = Server::start();
    for backend in BACKENDS {
        let pool = pool_for(server.addr, backend);
        let dead_pool = Pool::builder(TcpManager::with_backend(refused, backend).unwrap())
            .acquire_timeout(Duration::from_millis(20))
            .connect_backoff(Duration::from_millis(1))
            .connect_backoff_max(Duration::from_millis(2))
            .build()
            .unwrap();
        let mut rng = fastrand::Rng::with_seed(7);
        for round in 0..2_000 {
            match rng.u8(0..10) {
                0 => {
                    // Cancel a get after one poll (mid-dial on io_uring).
                    let mut get = pin!(pool.get());
                    let _ = get.as_mut().poll(&mut Context::from_waker(Waker::noop()));
                }
                1 => pool.get_blocking().unwrap().discard(),
                2 if round % 50 == 0 => server.reset_all(),
                3 if round % 100 == 0 => assert!(matches!(
                    dead_pool.get_blocking(),
                    Err(Error::Timeout(_) | Error::Unavailable(_))
                )),
                _ => {
                    let mut conn = pool.get_blocking().unwrap();
                    if request(&mut *conn).is_err() {
                        conn.discard();
                    }
                }
            }
        }
        let manager_closes = pool.manager().backend();
        assert_eq!(manager_closes, backend);
        drop(dead_pool);
        let waiter = TcpManager::with_backend(server.addr, backend).unwrap();
        drop(pool);
        futures_executor::block_on(waiter.wait_for_closes());
    }
    server.stop();
    let after = open_fds();
    assert_eq!(after, before, "descriptors before and after");
}

#[test]
fn io_uring_is_detected_here() {
    ringpool::probe_io_uring().expect("this machine has io_uring");
}

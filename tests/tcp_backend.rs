//! The TCP manager against real loopback servers, on both backends: reuse,
//! servers that reset or close connections or send unsolicited bytes, a
//! server restart, connect timeouts. (The descriptor-leak test counts
//! process-wide descriptors, so it runs alone in `tests/fd_leak_tcp.rs`.)

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use ringpool::Pool;
use ringpool::tcp::{TcpManager, TcpOptions};

mod loopback;

use loopback::{BACKENDS, Server, pool_for, request};

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
fn io_uring_is_detected_here() {
    ringpool::probe_io_uring().expect("this machine has io_uring");
}

#[test]
fn an_io_uring_ping_to_a_silent_server_is_bounded_and_blocks_no_thread() {
    // Accepts, reads, never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut stream = stream;
        let mut sink = [0u8; 64];
        while matches!(std::io::Read::read(&mut stream, &mut sink), Ok(n) if n > 0) {}
    });
    let manager = TcpManager::with_backend(addr, ringpool::tcp::Backend::IoUring)
        .unwrap()
        .ping_with(b"PING\r\n".to_vec(), b"+PONG\r\n".to_vec());
    let pool = Pool::builder(manager)
        .max_size(1)
        .ping_after(Some(Duration::ZERO))
        .ping_timeout(Duration::from_millis(100))
        .young_death_window(None)
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        drop(pool.get().await.unwrap()); // dialed: no ping yet
        let ticks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let ticker = {
            let ticks = std::sync::Arc::clone(&ticks);
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(Duration::from_millis(10));
                loop {
                    interval.tick().await;
                    ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        };
        let started = std::time::Instant::now();
        // The unanswered ping closes the connection after 100 ms; the get
        // then redials, which the server (it accepted once) refuses, so the
        // get ends at its own 300 ms. Checked: the ping's bound held, and no
        // thread blocked (a blocking ping took the 1 s connect timeout and
        // stopped the ticker).
        let outcome = pool.get_timeout(Duration::from_millis(300)).await;
        let took = started.elapsed();
        let ticked = ticks.load(std::sync::atomic::Ordering::Relaxed);
        ticker.abort();
        drop(outcome);
        assert!(took >= Duration::from_millis(100), "{took:?}");
        assert!(took < Duration::from_millis(900), "{took:?}");
        assert!(
            ticked >= 8,
            "the runtime kept running: {ticked} ticks in {took:?}"
        );
        assert_eq!(
            pool.stats().closed.broken,
            1,
            "the silent connection was closed"
        );
    });
    drop(pool);
    silent.join().unwrap();
}

#[test]
fn a_changed_resolver_answer_reaches_the_next_io_uring_dial() {
    let (first, second) = (Server::start(), Server::start());
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap(); // closed at once: connects are refused
    let answer = std::sync::Arc::new(std::sync::Mutex::new(vec![first.addr]));
    let resolve = {
        let answer = std::sync::Arc::clone(&answer);
        move || Ok(answer.lock().unwrap().clone())
    };
    let manager = TcpManager::with_resolver("payments.internal:7000", resolve).unwrap();
    let pool = Pool::builder(manager).max_size(1).build().unwrap();
    let conn = pool.get_blocking().unwrap();
    assert_eq!(conn.stream().peer_addr().unwrap(), first.addr);
    conn.discard();
    // The record changes: a dead address first, then a live one.
    *answer.lock().unwrap() = vec![dead, second.addr];
    let conn = pool.get_blocking().unwrap();
    assert_eq!(
        conn.stream().peer_addr().unwrap(),
        second.addr,
        "the next dial used the new answer, past the dead address"
    );
    assert_eq!(pool.stats().connect_errors, 0, "one dial tried both");
}

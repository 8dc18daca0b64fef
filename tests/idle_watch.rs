//! The io_uring idle watch (`IdleCheck::Watch`): a connection the server
//! closes while it sits idle is closed by the pool at once, never handed
//! out, without a sweep and without a byte written.

mod loopback;

use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use loopback::{Server, request, wait_for};
use ringpool::tcp::{Backend, IdleCheck, TcpManager, TcpOptions};
use ringpool::{IdleDeaths, IdleWatch, IdleWatcher, Manager, Pool};

fn watching(watch_after: Duration) -> TcpOptions {
    let mut options = TcpOptions::default();
    options.idle_check = IdleCheck::Watch;
    options.watch_after = watch_after;
    options
}

/// A pool whose checkouts never peek (long `check_after`, no young-death
/// checks), so only the watch can keep a dead connection from a user.
fn pool_over(manager: TcpManager) -> Pool<TcpManager> {
    Pool::builder(manager)
        .max_size(8)
        .check_after(Duration::from_secs(3600))
        .young_death_window(None)
        .acquire_timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

/// `pool_over` a TCP manager to `addr` whose watch arms after `watch_after`.
fn watched_pool(addr: std::net::SocketAddr, watch_after: Duration) -> Pool<TcpManager> {
    pool_over(
        TcpManager::new(addr)
            .unwrap()
            .options(watching(watch_after)),
    )
}

/// Checks out `count` connections at once, uses each, and returns them.
fn warm(pool: &Pool<TcpManager>, count: usize) {
    let mut held: Vec<_> = (0..count).map(|_| pool.get_blocking().unwrap()).collect();
    for conn in &mut held {
        request(&mut **conn).unwrap();
    }
}

#[test]
fn the_watch_is_the_default_on_io_uring() {
    let server = Server::start();
    let manager = TcpManager::new(server.addr).unwrap();
    assert_eq!(manager.idle_check(), IdleCheck::Watch);
    let blocking = TcpManager::with_backend(server.addr, Backend::Blocking).unwrap();
    assert_eq!(
        blocking.idle_check(),
        IdleCheck::Poll,
        "no ring to watch on"
    );
}

#[test]
fn idle_connections_the_server_closes_are_closed_at_once_and_never_handed_out() {
    for (how, kill) in [
        ("closed", Server::close_all as fn(&Server)),
        ("reset", Server::reset_all),
    ] {
        let server = Server::start();
        let pool = watched_pool(server.addr, Duration::ZERO);
        let maintenance = pool.spawn_maintenance_thread().unwrap();
        warm(&pool, 8);
        wait_for("8 watched", || pool.manager().watched_connections() == 8);
        kill(&server);
        // Seen, closed and their slots freed, with nobody asking.
        wait_for(&format!("8 reaped and their slots freed ({how})"), || {
            pool.stats().closed.hangup == 8 && pool.status().size == 0
        });
        assert_eq!(pool.manager().watch_deaths(), 8);
        let mut failures = 0;
        for _ in 0..1_000 {
            let mut conn = pool.get_blocking().unwrap();
            if request(&mut *conn).is_err() {
                failures += 1;
                conn.discard();
            }
        }
        let stats = pool.stats();
        assert_eq!(failures, 0, "{how}: a dead connection was handed out");
        assert_eq!(stats.closed.broken, 0, "{how}: nothing found dead later");
        assert_eq!(
            stats.closed.hangup, 8,
            "{how}: counted under their own reason"
        );
        pool.close();
        maintenance.join().unwrap();
    }
}

#[test]
fn without_maintenance_a_checkout_still_never_gets_a_dead_connection() {
    let server = Server::start();
    let pool = watched_pool(server.addr, Duration::ZERO);
    warm(&pool, 4);
    wait_for("4 watched", || pool.manager().watched_connections() == 4);
    server.reset_all();
    wait_for("4 seen dead", || pool.manager().watch_deaths() == 4);
    for _ in 0..100 {
        let mut conn = pool.get_blocking().unwrap();
        request(&mut *conn).unwrap();
    }
    assert_eq!(pool.stats().closed.hangup, 4, "closed at checkout instead");
}

#[test]
fn a_connection_used_again_before_the_threshold_is_never_watched() {
    let server = Server::start();
    let pool = watched_pool(server.addr, Duration::from_secs(3600));
    for _ in 0..200 {
        let mut conn = pool.get_blocking().unwrap();
        request(&mut *conn).unwrap();
    }
    assert_eq!(pool.manager().watched_connections(), 0);
}

#[test]
fn a_watched_connection_checked_out_carries_requests_and_is_watched_again_when_idle() {
    let server = Server::start();
    let pool = watched_pool(server.addr, Duration::ZERO);
    warm(&pool, 1);
    for round in 0..50 {
        wait_for("watched again", || {
            pool.manager().watched_connections() >= 1
        });
        let mut conn = pool.get_blocking().unwrap();
        // The reply that wakes the (lazily removed) poll kills nothing.
        request(&mut *conn).unwrap();
        request(&mut *conn).unwrap();
        drop(conn);
        assert_eq!(pool.stats().closed.hangup, 0, "round {round}");
    }
    wait_for("the old polls removed", || {
        pool.manager().watched_connections() == 1
    });
    assert_eq!(pool.status().size, 1, "one connection all along");
}

#[test]
fn the_watch_never_writes_a_byte() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&received);
    // Counts every byte it reads, until each client closes.
    let server = std::thread::spawn(move || {
        let mut readers = Vec::new();
        for _ in 0..4 {
            let (mut stream, _) = listener.accept().unwrap();
            let counted = Arc::clone(&counted);
            readers.push(std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                while let Ok(n @ 1..) = stream.read(&mut buf) {
                    counted.fetch_add(n, Ordering::SeqCst);
                }
            }));
        }
        for reader in readers {
            reader.join().unwrap();
        }
    });
    let pool = watched_pool(addr, Duration::ZERO);
    for _ in 0..100 {
        let held: Vec<_> = (0..4).map(|_| pool.get_blocking().unwrap()).collect();
        drop(held);
        wait_for("4 watched", || pool.manager().watched_connections() >= 4);
    }
    pool.close();
    futures_executor::block_on(pool.manager().wait_for_closes());
    server.join().unwrap();
    assert_eq!(
        received.load(Ordering::SeqCst),
        0,
        "the watch wrote to the peer"
    );
    assert_eq!(pool.stats().closed.pool_closed, 4);
}

/// A manager whose watch calls panic on demand.
#[derive(Default)]
struct Panicky {
    in_idle: AtomicBool,
    in_unwatch: AtomicBool,
    dead: AtomicBool,
}

impl Manager for Panicky {
    type Connection = u32;
    type Error = std::io::Error;
    async fn connect(&self) -> std::io::Result<u32> {
        Ok(7)
    }
    fn idle_watcher(&self) -> Option<&dyn IdleWatcher<u32>> {
        Some(self)
    }
}

impl IdleWatcher<u32> for Panicky {
    fn start(&self, _deaths: IdleDeaths) -> IdleWatch {
        IdleWatch::Watched
    }
    fn idle(&self, _conn: &mut u32) {
        assert!(!self.in_idle.load(Ordering::SeqCst), "idle panics");
    }
    fn unwatch(&self, _conn: &mut u32) -> bool {
        assert!(!self.in_unwatch.load(Ordering::SeqCst), "unwatch panics");
        self.dead.load(Ordering::SeqCst)
    }
    fn died_idle(&self, _conn: &u32) -> bool {
        false
    }
}

#[test]
fn a_panicking_watch_leaks_no_slot() {
    let pool = Pool::builder(Panicky::default()).build().unwrap();
    let conn = pool.get_blocking().unwrap();
    pool.manager().in_idle.store(true, Ordering::SeqCst);
    let returned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(conn)));
    assert!(returned.is_err(), "the panic reaches the returner");
    assert_eq!(pool.status().size, 0, "closed, slot freed");
    pool.manager().in_idle.store(false, Ordering::SeqCst);
    drop(pool.get_blocking().unwrap());
    pool.manager().in_unwatch.store(true, Ordering::SeqCst);
    let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.get_blocking()));
    assert!(got.is_err(), "the panic reaches the caller");
    assert_eq!(pool.status().size, 0, "closed, slot freed");
    assert_eq!(pool.stats().closed.broken, 2);
}

#[test]
fn a_connection_the_watch_saw_die_is_closed_as_hangup_at_checkout() {
    let pool = Pool::builder(Panicky::default()).build().unwrap();
    drop(pool.get_blocking().unwrap());
    pool.manager().dead.store(true, Ordering::SeqCst);
    // The dead one is closed and the get dials a new one into its slot.
    drop(pool.get_blocking().unwrap());
    let stats = pool.stats();
    assert_eq!((stats.closed.hangup, stats.connects), (1, 2));
    assert_eq!(pool.status().size, 1);
}

/// The watch's tick bounds the ring thread's wait; it must never hold back
/// a dial. 512 dials, 64 at once, with every connection queued for the
/// watch. The listener's backlog holds every connection, so only the
/// client side could stall them (each would time out after 1 s).
#[test]
fn dials_keep_completing_while_the_watch_ticks() {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    socket.listen(1024).unwrap();
    let listener: TcpListener = socket.into();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let manager = TcpManager::new(addr)
        .unwrap()
        .options(watching(Duration::from_secs(3600)));
    let pool = Pool::builder(manager)
        .max_size(512)
        .min_idle(512)
        .max_concurrent_dials(64)
        .young_death_window(None)
        .build()
        .unwrap();
    let opened = futures_executor::block_on(pool.warm_up()).unwrap();
    assert_eq!(opened, 512);
    assert_eq!(pool.stats().connect_errors, 0);
}

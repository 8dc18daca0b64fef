//! A manager that wraps another (to count dials, to log, as a test double)
//! keeps the inner manager's idle watch by forwarding one method,
//! `Manager::idle_watcher`; a wrapper that forgets it is told so in the log
//! at its first dial, and `TcpManager::is_watching` says so too.

mod common;
mod loopback;

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::Captured;
use loopback::{Server, request, wait_for};
use ringpool::tcp::{TcpConn, TcpManager};
use ringpool::{CloseReason, ErrorClass, IdleWatcher, Manager, Pool};

/// Counts dials and forwards every method, as client code writes it; with
/// `FORWARD_WATCH` false it forgets the watch.
struct Counting<const FORWARD_WATCH: bool> {
    inner: TcpManager,
    dials: AtomicU64,
}

impl<const FORWARD_WATCH: bool> Manager for Counting<FORWARD_WATCH> {
    type Connection = TcpConn;
    type Error = io::Error;

    async fn connect(&self) -> io::Result<TcpConn> {
        self.dials.fetch_add(1, Ordering::Relaxed);
        self.inner.connect().await
    }
    fn is_broken(&self, conn: &mut TcpConn) -> bool {
        self.inner.is_broken(conn)
    }
    fn is_broken_batch(&self, conns: &mut [&mut TcpConn]) -> Vec<bool> {
        self.inner.is_broken_batch(conns)
    }
    fn can_recycle(&self, conn: &mut TcpConn) -> bool {
        self.inner.can_recycle(conn)
    }
    async fn ping(&self, conn: &mut TcpConn) -> io::Result<()> {
        self.inner.ping(conn).await
    }
    fn classify(&self, error: &io::Error) -> ErrorClass {
        self.inner.classify(error)
    }
    fn close(&self, conn: TcpConn, reason: CloseReason) {
        self.inner.close(conn, reason)
    }
    fn idle_watcher(&self) -> Option<&dyn IdleWatcher<TcpConn>> {
        match FORWARD_WATCH {
            true => self.inner.idle_watcher(),
            false => None,
        }
    }
}

fn pool_over<const FORWARD_WATCH: bool>(server: &Server) -> Pool<Counting<FORWARD_WATCH>> {
    let manager = Counting::<FORWARD_WATCH> {
        inner: TcpManager::new(server.addr).unwrap(),
        dials: AtomicU64::new(0),
    };
    // Checkouts never peek: only the watch keeps a dead connection away.
    Pool::builder(manager)
        .max_size(8)
        .check_after(Duration::from_secs(3600))
        .young_death_window(None)
        .acquire_timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

#[test]
fn a_wrapper_that_forwards_idle_watcher_keeps_the_whole_watch() {
    let server = Server::start();
    let pool = pool_over::<true>(&server);
    assert!(pool.manager().inner.is_watching());
    let mut held: Vec<_> = (0..4).map(|_| pool.get_blocking().unwrap()).collect();
    for conn in &mut held {
        request(&mut **conn).unwrap();
    }
    drop(held);
    wait_for("4 watched", || {
        pool.manager().inner.watched_connections() == 4
    });
    server.reset_all();
    wait_for("4 seen dead", || pool.manager().inner.watch_deaths() == 4);
    for _ in 0..100 {
        let mut conn = pool.get_blocking().unwrap();
        request(&mut *conn).expect("a dead connection was handed out");
    }
    assert_eq!(pool.stats().closed.hangup, 4, "closed as the watch saw");
    assert_eq!(pool.manager().dials.load(Ordering::Relaxed), 5);
}

#[test]
fn a_wrapper_that_forgets_the_watch_is_told_once_in_the_log() {
    let server = Server::start();
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let pool = pool_over::<false>(&server);
    tracing::subscriber::with_default(subscriber, || {
        let held: Vec<_> = (0..3).map(|_| pool.get_blocking().unwrap()).collect();
        drop(held);
    });
    assert!(!pool.manager().inner.is_watching());
    let text = captured.text();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("must forward `Manager::idle_watcher`"))
        .collect();
    assert_eq!(warnings.len(), 1, "said once, at the first dial:\n{text}");
    assert!(warnings[0].contains("WARN"), "{}", warnings[0]);
    assert_eq!(pool.manager().dials.load(Ordering::Relaxed), 3);
}

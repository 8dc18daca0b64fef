//! tokio-uring streams kept per thread (feature `tokio-uring`): a
//! connection checked out again on the thread that used it reuses that
//! thread's stream (no duplicate, no close), another thread taking it gets
//! its own and both carry requests correctly, and closing a connection that
//! threads hold duplicates of ends it at the server all the same.
#![cfg(feature = "tokio-uring")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::time::Duration;

use ringpool::Pool;
use ringpool::tcp::{TcpManager, UringConn};

const MESSAGE: usize = 64;

/// An echo server that reports each connection's end of file.
fn echo_server() -> (SocketAddr, mpsc::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed, closes) = mpsc::channel();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let closed = closed.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; MESSAGE];
                while stream.read_exact(&mut buf).is_ok() {
                    if stream.write_all(&buf).is_err() {
                        break;
                    }
                }
                let _ = closed.send(());
            });
        }
    });
    (addr, closes)
}

async fn echo(conn: &UringConn<'_>, byte: u8) {
    let (written, _) = conn.write_all(vec![byte; MESSAGE]).await;
    written.unwrap();
    let (read, reply) = conn.read_exact(vec![0u8; MESSAGE]).await;
    read.unwrap();
    assert_eq!(
        reply,
        vec![byte; MESSAGE],
        "the reply to this request, whole"
    );
}

/// Whether the stream's descriptor has close-on-exec set. A fresh
/// duplicate always has (`F_DUPFD_CLOEXEC`); a test clears it to recognise
/// a stream it has seen before.
fn close_on_exec(conn: &UringConn<'_>) -> bool {
    // SAFETY: `fcntl(F_GETFD)` only reads the flags of a descriptor the
    // stream owns.
    let flags = unsafe { libc::fcntl(conn.stream().as_raw_fd(), libc::F_GETFD) };
    assert!(flags >= 0);
    flags & libc::FD_CLOEXEC != 0
}

fn mark_seen(conn: &UringConn<'_>) {
    // SAFETY: `fcntl(F_SETFD)` only changes the flags of a descriptor the
    // stream owns.
    let result = unsafe { libc::fcntl(conn.stream().as_raw_fd(), libc::F_SETFD, 0) };
    assert_eq!(result, 0);
}

fn pool(addr: SocketAddr) -> Pool<TcpManager> {
    Pool::builder(TcpManager::new(addr).unwrap())
        .max_size(1)
        .build()
        .unwrap()
}

#[test]
fn a_connection_checked_out_again_on_its_thread_reuses_the_stream() {
    let (addr, _closes) = echo_server();
    let pool = pool(addr);
    tokio_uring::start(async {
        let conn = pool.get_uring().await.unwrap();
        assert!(close_on_exec(&conn), "the first checkout duplicates");
        mark_seen(&conn);
        echo(&conn, 1).await;
        drop(conn);
        assert_eq!(UringConn::streams_kept_on_this_thread(), 1);
        for round in 0..1000 {
            let conn = pool.get_uring().await.unwrap();
            assert!(
                !close_on_exec(&conn),
                "checkout {round} reused this thread's stream"
            );
            echo(&conn, (round % 250) as u8).await;
        }
    });
    assert_eq!(pool.stats().connects, 1);
}

#[test]
fn another_thread_taking_the_connection_gets_its_own_stream() {
    let (addr, _closes) = echo_server();
    let pool = pool(addr);
    // Three threads in turn, each with its own tokio-uring runtime, over
    // the pool's one connection: A, B, then A again.
    let turn = |byte: u8, expect_kept: bool| {
        let pool = &pool;
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    tokio_uring::start(async {
                        let conn = pool.get_uring().await.unwrap();
                        assert_eq!(!close_on_exec(&conn), expect_kept);
                        mark_seen(&conn);
                        echo(&conn, byte).await;
                    })
                })
                .join()
                .unwrap()
        })
    };
    // The same OS thread must come back for "A again": use one thread that
    // runs two runtimes in turn, with B in between on another thread.
    let (to_a, a_turns) = mpsc::channel::<u8>();
    let (a_done, a_finished) = mpsc::channel::<bool>();
    std::thread::scope(|scope| {
        let pool = &pool;
        scope.spawn(move || {
            for byte in a_turns {
                let reused = tokio_uring::start(async {
                    let conn = pool.get_uring().await.unwrap();
                    let reused = !close_on_exec(&conn);
                    mark_seen(&conn);
                    echo(&conn, byte).await;
                    reused
                });
                a_done.send(reused).unwrap();
            }
        });
        to_a.send(1).unwrap();
        assert!(!a_finished.recv().unwrap(), "A's first checkout duplicates");
        turn(2, false); // B: a stream of its own
        to_a.send(3).unwrap();
        assert!(a_finished.recv().unwrap(), "A reuses the stream it kept");
        drop(to_a);
    });
    assert_eq!(pool.stats().connects, 1, "one connection served all three");
}

#[test]
fn closing_a_duplicated_connection_ends_it_at_the_server() {
    let (addr, closes) = echo_server();
    let pool = pool(addr);
    tokio_uring::start(async {
        let conn = pool.get_uring().await.unwrap();
        echo(&conn, 1).await;
        drop(conn);
        assert_eq!(UringConn::streams_kept_on_this_thread(), 1);
        // The pool closes it while this thread keeps a duplicate: the
        // server still sees the connection end.
        assert_eq!(pool.retain(|_| false), 1);
        closes
            .recv_timeout(Duration::from_secs(10))
            .expect("the server saw end of file");
        // The next checkout dials anew; the stale stream is dropped.
        let conn = pool.get_uring().await.unwrap();
        echo(&conn, 2).await;
        drop(conn);
        assert_eq!(UringConn::streams_kept_on_this_thread(), 1);
    });
    assert_eq!(pool.stats().connects, 2);
}

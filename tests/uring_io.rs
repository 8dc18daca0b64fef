//! I/O through tokio-uring on pooled connections (feature `tokio-uring`):
//! a read dropped mid-flight never lets its socket back into the pool (the
//! next user loses no bytes), and threads each running their own
//! tokio-uring runtime share one pool and one `max_size`.
#![cfg(feature = "tokio-uring")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::pin::pin;
use std::sync::mpsc;
use std::task::{Context, Poll, Waker};

use ringpool::Pool;
use ringpool::tcp::TcpManager;

const MESSAGE: usize = 64;

/// An echo server; the first request on each connection is answered only
/// when the test sends a unit down `release` (if one is given).
fn echo_server(release: Option<mpsc::Receiver<()>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let release = std::sync::Arc::new(std::sync::Mutex::new(release));
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let release = std::sync::Arc::clone(&release);
            std::thread::spawn(move || {
                let mut buf = [0u8; MESSAGE];
                let mut first = true;
                while stream.read_exact(&mut buf).is_ok() {
                    if std::mem::take(&mut first)
                        && let Some(gate) = release.lock().unwrap().take()
                    {
                        let _ = gate.recv();
                    }
                    if stream.write_all(&buf).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn a_read_dropped_mid_flight_never_returns_its_socket() {
    let (release, gate) = mpsc::channel();
    let addr = echo_server(Some(gate));
    let pool = Pool::builder(TcpManager::new(addr).unwrap())
        .max_size(2)
        .build()
        .unwrap();
    tokio_uring::start(async {
        let conn = pool.get_uring().await.unwrap();
        let (written, _) = conn.write_all(vec![1u8; MESSAGE]).await;
        written.unwrap();
        {
            // The reply is held back: the read is in flight when dropped.
            let mut read = pin!(conn.read(vec![0u8; MESSAGE]));
            let polled = read.as_mut().poll(&mut Context::from_waker(Waker::noop()));
            assert!(matches!(polled, Poll::Pending));
        }
        drop(conn);
        assert_eq!(
            pool.stats().closed.abandoned,
            1,
            "closed as abandoned, not returned"
        );
        assert_eq!(pool.status().idle, 0);
        release.send(()).unwrap(); // the late reply goes to a socket nobody uses

        // The next user gets a fresh connection and its own reply, whole.
        let conn = pool.get_uring().await.unwrap();
        let (written, _) = conn.write_all(vec![2u8; MESSAGE]).await;
        written.unwrap();
        let mut reply = Vec::new();
        while reply.len() < MESSAGE {
            let (read, buf) = conn.read(vec![0u8; MESSAGE - reply.len()]).await;
            let n = read.unwrap();
            assert!(n > 0, "connection closed early");
            reply.extend_from_slice(&buf[..n]);
        }
        assert_eq!(reply, vec![2u8; MESSAGE], "no lost or stale bytes");
        drop(conn);
        assert_eq!(
            pool.status().idle,
            1,
            "a completed exchange returns the connection"
        );
    });
}

#[test]
fn threads_with_their_own_runtimes_share_one_bound() {
    let addr = echo_server(None);
    let pool = Pool::builder(TcpManager::new(addr).unwrap())
        .max_size(4)
        .build()
        .unwrap();
    std::thread::scope(|scope| {
        for thread in 0..2u8 {
            let pool = &pool;
            scope.spawn(move || {
                tokio_uring::start(async move {
                    let tasks: Vec<_> = (0..8u8)
                        .map(|task| {
                            let pool = pool.clone();
                            tokio_uring::spawn(async move {
                                for round in 0..100u8 {
                                    let conn = pool.get_uring().await.unwrap();
                                    let tag = thread ^ task ^ round;
                                    let (written, _) = conn.write_all(vec![tag; MESSAGE]).await;
                                    written.unwrap();
                                    let mut reply = Vec::new();
                                    while reply.len() < MESSAGE {
                                        let (read, buf) =
                                            conn.read(vec![0u8; MESSAGE - reply.len()]).await;
                                        let n = read.unwrap();
                                        reply.extend_from_slice(&buf[..n]);
                                    }
                                    assert_eq!(reply, vec![tag; MESSAGE]);
                                }
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.unwrap();
                    }
                });
            });
        }
    });
    let stats = pool.stats();
    assert!(
        stats.connects <= 4,
        "one max_size across runtimes: {stats:?}"
    );
    assert_eq!(stats.gets, 2 * 8 * 100);
    assert!(pool.status().size <= 4);
}

#[test]
fn read_exact_write_age_and_detach_as_a_user_reaches_for_them() {
    let addr = echo_server(None);
    let pool = Pool::builder(TcpManager::new(addr).unwrap())
        .max_size(2)
        .build()
        .unwrap();
    tokio_uring::start(async {
        let conn = pool.get_uring().await.unwrap();
        let mut sent = 0;
        while sent < MESSAGE {
            let (written, _) = conn.write(vec![9u8; MESSAGE - sent]).await;
            sent += written.unwrap();
        }
        let (read, reply) = conn.read_exact(Vec::with_capacity(MESSAGE)).await;
        read.unwrap();
        assert_eq!(reply, vec![9u8; MESSAGE], "the whole reply, in one call");
        assert!(conn.age() < std::time::Duration::from_secs(60));
        drop(conn);
        assert_eq!(pool.status().idle, 1, "back, in step");

        let conn = pool.get_uring().await.unwrap();
        let mut stream = conn.detach();
        assert_eq!(pool.status().size, 0, "its slot is free");
        assert_eq!(pool.stats().detached, 1);
        stream.write_all(&[3u8; MESSAGE]).unwrap();
        let mut buf = [0u8; MESSAGE];
        stream.read_exact(&mut buf).unwrap();
        assert_eq!(buf, [3u8; MESSAGE], "the detached stream still works");
    });
}

//! The tokio TCP manager as a tokio service uses it: async I/O straight
//! through the guard from tasks on a multi-threaded runtime, cancelled
//! requests that never leak a reply to the next user, a ping to a silent
//! server bounded by `ping_timeout` without blocking the runtime, and name
//! resolution on every dial.
#![cfg(feature = "tokio")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ringpool::Pool;
use ringpool::tcp::{TcpOptions, TokioTcpManager};
use socket2::{Domain, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Echoes 8-byte requests; before replying it yields a random number of
/// times, and it writes each reply in two halves with yields between, so a
/// client that gives up can do so before, between or in the middle of them.
///
/// The server runs on a thread and runtime of its own, as a real server
/// runs in a process of its own: sharing the clients' runtime, its accept
/// loop starved behind them while they dialled and abandoned connections
/// faster than it accepted, the accept queue overflowed and the kernel
/// dropped SYNs, so dials timed out. Its backlog is the largest the kernel
/// allows for the same reason.
async fn echo_server() -> SocketAddr {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    socket.listen(4096).unwrap();
    socket.set_nonblocking(true).unwrap();
    let listener = std::net::TcpListener::from(socket);
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let server = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        server.block_on(async move {
            serve_echo(TcpListener::from_std(listener).unwrap()).await;
        });
    });
    addr
}

async fn serve_echo(listener: TcpListener) {
    let mut seed = 0;
    while let Ok((mut stream, _)) = listener.accept().await {
        seed += 1;
        // The reply goes in two small writes: without this, Nagle's
        // algorithm holds the second behind the client's delayed ack. (The
        // client may already have reset the connection: then the reads
        // below fail at once.)
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut request = [0u8; 8];
            while stream.read_exact(&mut request).await.is_ok() {
                for _ in 0..rng.usize(0..4) {
                    tokio::task::yield_now().await;
                }
                if stream.write_all(&request[..4]).await.is_err() {
                    return;
                }
                for _ in 0..rng.usize(0..3) {
                    tokio::task::yield_now().await;
                }
                if stream.write_all(&request[4..]).await.is_err() {
                    return;
                }
            }
        });
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn async_io_through_the_guard_from_spawned_tasks() {
    runtime().block_on(async {
        let addr = echo_server().await;
        let pool = Pool::builder(TokioTcpManager::new(addr.to_string()))
            .max_size(4)
            .build()
            .unwrap();
        let tasks: Vec<_> = (0..16u64)
            .map(|task| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    for i in 0..50u64 {
                        let mut conn = pool.get().await.unwrap();
                        let id = task * 1000 + i;
                        conn.write_all(&id.to_le_bytes()).await.unwrap();
                        let mut reply = [0u8; 8];
                        conn.read_exact(&mut reply).await.unwrap();
                        assert_eq!(u64::from_le_bytes(reply), id);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let stats = pool.stats();
        assert!(stats.connects <= 4, "{stats:?}");
        assert_eq!(stats.reused, 800 - stats.connects, "{stats:?}");
        assert_eq!(stats.closed.abandoned, 0, "{stats:?}");
    });
}

#[test]
fn a_cancelled_request_never_leaks_its_reply_to_the_next_user() {
    const ROUNDS: u64 = 10_000;
    runtime().block_on(async {
        let addr = echo_server().await;
        let pool = Pool::builder(TokioTcpManager::new(addr.to_string()))
            .max_size(8)
            .young_death_window(None)
            .build()
            .unwrap();
        let next_id = Arc::new(AtomicU64::new(0));
        let [answered, cancelled, patient] = [(); 3].map(|()| Arc::new(AtomicUsize::new(0)));
        let tasks: Vec<_> = (0..16u64)
            .map(|task| {
                let (pool, next_id) = (pool.clone(), Arc::clone(&next_id));
                let (answered, cancelled, patient) = (
                    Arc::clone(&answered),
                    Arc::clone(&cancelled),
                    Arc::clone(&patient),
                );
                tokio::spawn(async move {
                    let mut rng = fastrand::Rng::with_seed(task);
                    loop {
                        let id = next_id.fetch_add(1, Ordering::Relaxed);
                        if id >= ROUNDS {
                            return;
                        }
                        let mut conn = pool.get().await.unwrap();
                        let request = async {
                            conn.write_all(&id.to_le_bytes()).await.unwrap();
                            let mut reply = [0u8; 8];
                            conn.read_exact(&mut reply).await.unwrap();
                            u64::from_le_bytes(reply)
                        };
                        // A third of the requests wait for their reply; a
                        // third give up as soon as the write is out; the rest
                        // after a random number of yields: between write and
                        // read, or mid-read.
                        let patience = match rng.u8(0..3) {
                            0 => None,
                            1 => Some(0),
                            _ => Some(rng.usize(1..12)),
                        };
                        if patience.is_none() {
                            patient.fetch_add(1, Ordering::Relaxed);
                        }
                        let give_up = async {
                            let Some(yields) = patience else {
                                return std::future::pending().await;
                            };
                            for _ in 0..yields {
                                tokio::task::yield_now().await;
                            }
                        };
                        tokio::select! {
                            biased;
                            reply = request => {
                                assert_eq!(reply, id, "a reply to someone else's request");
                                answered.fetch_add(1, Ordering::Relaxed);
                            }
                            () = give_up => {
                                cancelled.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        drop(conn);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let [answered, cancelled, patient] =
            [answered, cancelled, patient].map(|count| count.load(Ordering::Relaxed));
        let stats = pool.stats();
        eprintln!("{answered} answered, {cancelled} cancelled, {patient} patient; {stats:?}");
        assert_eq!(answered + cancelled, ROUNDS as usize);
        assert!(answered >= patient, "every patient request was answered");
        // A request that gives up right after its write is cancelled unless
        // the reply came back before the read was first polled: rare, never
        // most of a third of the rounds.
        assert!(cancelled > 1000, "requests were cancelled mid-flight");
        assert!(
            stats.closed.abandoned > 0,
            "cancelled mid-request: {stats:?}"
        );
        let status = pool.status();
        assert_eq!(
            stats.connects,
            stats.closed_total() + status.size as u64,
            "{stats:?} {status:?}"
        );
    });
}

#[test]
fn a_ping_to_a_silent_server_is_bounded_and_never_blocks_the_runtime() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Accepts, reads, never answers.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let manager = TokioTcpManager::new(addr.to_string())
            .ping_with(b"PING\r\n".to_vec(), b"+PONG\r\n".to_vec());
        let pool = Pool::builder(manager)
            .ping_after(Some(Duration::ZERO))
            .ping_timeout(Duration::from_millis(100))
            .young_death_window(None)
            .build()
            .unwrap();
        drop(pool.get().await.unwrap()); // dialed: no ping yet
        let ticks = Arc::new(AtomicUsize::new(0));
        let ticker = {
            let ticks = Arc::clone(&ticks);
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(Duration::from_millis(10));
                loop {
                    interval.tick().await;
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let started = Instant::now();
        let conn = pool
            .get()
            .await
            .expect("a fresh connection after the failed ping");
        let took = started.elapsed();
        let ticked = ticks.load(Ordering::Relaxed);
        ticker.abort();
        drop(conn);
        assert!(took >= Duration::from_millis(100), "{took:?}");
        assert!(
            took < Duration::from_millis(900),
            "bounded by ping_timeout: {took:?}"
        );
        assert!(
            ticked >= 5,
            "the runtime kept running: {ticked} ticks in {took:?}"
        );
        assert_eq!(
            pool.stats().closed.broken,
            1,
            "the silent connection was closed"
        );
    });
}

#[test]
fn every_dial_resolves_the_name_again_and_tries_each_address() {
    runtime().block_on(async {
        let (first, second) = (echo_server().await, echo_server().await);
        let dead = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let answer = Arc::new(std::sync::Mutex::new(vec![first]));
        let resolve = {
            let answer = Arc::clone(&answer);
            move || Ok(answer.lock().unwrap().clone())
        };
        let mut options = TcpOptions::default();
        options.connect_timeout = Duration::from_millis(500);
        let manager =
            TokioTcpManager::with_resolver("payments.internal:7000", resolve).options(options);
        let pool = Pool::builder(manager).max_size(1).build().unwrap();
        let conn = pool.get().await.unwrap();
        assert_eq!(conn.stream().peer_addr().unwrap(), first);
        conn.discard();
        // The record changes: a dead address first, then a live one.
        *answer.lock().unwrap() = vec![dead, second];
        let conn = pool.get().await.unwrap();
        assert_eq!(
            conn.stream().peer_addr().unwrap(),
            second,
            "the next dial used the new answer, past the dead address"
        );
    });
}

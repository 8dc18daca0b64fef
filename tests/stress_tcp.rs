//! Stress on real loopback TCP: many tasks on several threads, random get
//! cancellations and request timeouts, and a server that resets random
//! connections. The run ends by checking the balance: connects = closes +
//! detached + still open, no file descriptor leaked, and `size <= max_size`
//! at every sample.

use std::io::ErrorKind;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use ringpool::{Manager, Pool};
use socket2::SockRef;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MAX_SIZE: usize = 6;
const TASKS: usize = 64;
const REQUESTS_PER_TASK: usize = 300;

struct Tcp {
    addr: SocketAddr,
}

impl Manager for Tcp {
    type Connection = TcpStream;
    type Error = std::io::Error;

    async fn connect(&self) -> std::io::Result<TcpStream> {
        let stream = TcpStream::connect(self.addr).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// Non-blocking peek: EOF, a reset, or unread bytes all mean broken.
    fn is_broken(&self, conn: &mut TcpStream) -> bool {
        let mut byte = [MaybeUninit::<u8>::uninit(); 1];
        match SockRef::from(&*conn).peek(&mut byte) {
            Err(error) => error.kind() != ErrorKind::WouldBlock,
            Ok(_) => true,
        }
    }
}

/// Echoes 64-byte requests. Resets (`SO_LINGER` 0) about one connection in
/// 6 mid-request after a random number of requests, and one in 30 responses
/// is followed by a reset while the connection is idle.
async fn serve(listener: TcpListener, resets: Arc<AtomicUsize>) {
    let mut seed = 1u64;
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        seed += 1;
        let resets = Arc::clone(&resets);
        tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(seed);
            let reset_after = (rng.u8(0..6) == 0).then(|| rng.usize(0..10));
            let mut buf = [0u8; 64];
            let mut served = 0;
            while stream.read_exact(&mut buf).await.is_ok() {
                if reset_after == Some(served) {
                    let _ = SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                    resets.fetch_add(1, Ordering::Relaxed);
                    return; // dropped with linger 0: the peer sees a reset
                }
                if stream.write_all(&buf).await.is_err() {
                    return;
                }
                served += 1;
                // Sometimes reset a connection right after answering: the
                // reset lands while the client has it back in the pool.
                if rng.u8(0..30) == 0 {
                    let _ = SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                    resets.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        });
    }
}

async fn request(conn: &mut TcpStream, tag: u8) -> std::io::Result<()> {
    let mut buf = [tag; 64];
    conn.write_all(&buf).await?;
    conn.read_exact(&mut buf).await?;
    if buf != [tag; 64] {
        return Err(std::io::Error::other("response belongs to another request"));
    }
    Ok(())
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("procfs").count()
}

#[test]
fn many_tasks_with_cancellations_and_resets_keep_the_books_balanced() {
    let fds_before = open_fds();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let resets = Arc::new(AtomicUsize::new(0));
    let (pool, completed, over_bound) = runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, Arc::clone(&resets)));
        let pool = Pool::builder(Tcp { addr })
            .max_size(MAX_SIZE)
            .check_after(Duration::ZERO)
            .acquire_timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let over_bound = Arc::new(AtomicUsize::new(0));
        let sampler = {
            let (pool, done, over_bound) =
                (pool.clone(), Arc::clone(&done), Arc::clone(&over_bound));
            tokio::spawn(async move {
                while !done.load(Ordering::Relaxed) {
                    let status = pool.status();
                    if status.size > status.max_size {
                        over_bound.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
            })
        };
        let completed = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                let (pool, completed) = (pool.clone(), Arc::clone(&completed));
                tokio::spawn(async move {
                    let mut rng = fastrand::Rng::with_seed(task as u64);
                    for i in 0..REQUESTS_PER_TASK {
                        // One get in ten is cancelled after a random short time.
                        let conn = if rng.u8(0..10) == 0 {
                            let patience = Duration::from_micros(rng.u64(0..300));
                            match tokio::time::timeout(patience, pool.get()).await {
                                Ok(conn) => conn,
                                Err(_cancelled) => continue,
                            }
                        } else {
                            pool.get().await
                        };
                        let mut conn = conn.expect("a connection within the acquire timeout");
                        let tag = (task * 7 + i) as u8;
                        // One request in twenty times out mid-flight.
                        let limit = match rng.u8(0..20) {
                            0 => Duration::from_micros(rng.u64(0..100)),
                            _ => Duration::from_secs(5),
                        };
                        match tokio::time::timeout(limit, request(&mut conn, tag)).await {
                            Ok(Ok(())) => {
                                completed.fetch_add(1, Ordering::Relaxed);
                                match rng.u8(0..50) {
                                    0 => conn.discard(),
                                    _ => drop(conn),
                                }
                            }
                            // Unknown state (reset, or a reply still in flight): never reuse it.
                            Ok(Err(_)) | Err(_) => conn.discard(),
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("no task panicked");
        }
        done.store(true, Ordering::Relaxed);
        sampler.await.unwrap();
        server.abort();
        (
            pool,
            completed.load(Ordering::Relaxed),
            over_bound.load(Ordering::Relaxed),
        )
    });
    drop(runtime);

    let status = pool.status();
    let stats = pool.stats();
    eprintln!(
        "completed {completed} requests, {} server resets, {stats:?}, {status:?}",
        resets.load(Ordering::Relaxed)
    );
    assert_eq!(
        over_bound, 0,
        "size exceeded max_size in {over_bound} samples"
    );
    assert!(
        completed > TASKS * REQUESTS_PER_TASK / 2,
        "most requests completed: {completed}"
    );
    assert!(
        resets.load(Ordering::Relaxed) > 10,
        "the server reset connections"
    );
    assert!(
        stats.closed.broken > 0,
        "the checkout check caught idle resets: {stats:?}"
    );
    assert_eq!(
        (status.in_use, status.waiting, status.creating),
        (0, 0, 0),
        "{status:?}"
    );
    assert_eq!(
        stats.connects,
        stats.closed_total() + stats.detached + status.size as u64,
        "connects = closes + detached + still open: {stats:?} {status:?}"
    );
    assert!(
        stats.reused > stats.connects,
        "connections were reused: {stats:?}"
    );
    drop(pool);
    assert_eq!(open_fds(), fds_before, "no file descriptor leaked");
}

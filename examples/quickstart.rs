//! ringpool at work: a pool of TCP connections to an embedded loopback echo
//! server, used by several threads, next to the same requests made with a
//! fresh connection each.
//!
//! Run: `cargo run --release --example quickstart [REQUESTS_PER_THREAD]`

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use ringpool::Pool;
use ringpool::tcp::TcpManager;

/// An echo server on 127.0.0.1 that serves each connection on its own thread.
fn start_echo_server() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || echo(stream));
        }
    });
    Ok(addr)
}

fn echo(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = [0u8; 64];
    while stream.read_exact(&mut buf).is_ok() {
        if stream.write_all(&buf).is_err() {
            return;
        }
    }
}

fn request(stream: &mut (impl Read + Write)) -> std::io::Result<()> {
    let mut buf = [7u8; 64];
    stream.write_all(&buf)?;
    stream.read_exact(&mut buf)
}

/// Runs `work` on `threads` threads at once; the wall time of the slowest.
fn timed(
    threads: usize,
    work: impl Fn() -> std::io::Result<()> + Sync,
) -> std::io::Result<Duration> {
    let started = Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads).map(|_| scope.spawn(&work)).collect();
        workers
            .into_iter()
            .try_for_each(|worker| worker.join().expect("worker panicked"))
    })?;
    Ok(started.elapsed())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let per_thread: usize = std::env::args().nth(1).map_or(Ok(2_000), |n| n.parse())?;
    let threads = 4;
    let addr = start_echo_server()?;
    // io_uring dials and closes where the kernel allows it, plain system
    // calls where it does not (this example gets blocking, so either works).
    let (manager, fallback) = TcpManager::with_best_backend(addr)?;
    if let Some(why) = fallback {
        eprintln!("io_uring is unavailable, so blocking sockets it is: {why}");
    }
    let backend = manager.backend();
    let pool = Pool::builder(manager).max_size(4).build()?;

    let pooled = timed(threads, || {
        for _ in 0..per_thread {
            let mut conn = pool.get_blocking().map_err(std::io::Error::other)?;
            if let Err(error) = request(&mut *conn) {
                conn.discard(); // never put a connection in an unknown state back
                return Err(error);
            }
        }
        Ok(())
    })?;
    let unpooled = timed(threads, || {
        for _ in 0..per_thread {
            let mut stream = TcpStream::connect(addr)?;
            stream.set_nodelay(true)?;
            request(&mut stream)?;
        }
        Ok(())
    })?;

    let total = threads * per_thread;
    let stats = pool.stats();
    let status = pool.status();
    println!(
        "{total} requests from {threads} threads to an echo server at {addr} ({backend:?} backend)"
    );
    println!(
        "  pooled:            {:>8.0} req/s  ({} dials, {} reused, max_size {})",
        total as f64 / pooled.as_secs_f64(),
        stats.connects,
        stats.reused,
        status.max_size
    );
    println!(
        "  dial per request:  {:>8.0} req/s  ({total} dials)",
        total as f64 / unpooled.as_secs_f64()
    );
    println!(
        "  pool speed-up:     {:>8.1}x",
        unpooled.as_secs_f64() / pooled.as_secs_f64()
    );
    println!("  pool now: {status:?}");
    Ok(())
}

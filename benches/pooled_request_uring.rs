//! A 64-byte request and response over loopback through tokio-uring, from 16
//! tasks: `dedicated` (each task owns a tokio-uring stream) versus
//! `ringpool` (each request checks a connection out with `get_uring`, which
//! wraps a duplicate descriptor for this thread and gives the connection
//! back afterwards). Client tasks and the echo server share one tokio-uring
//! runtime on one thread; each sample builds its runtime, server and
//! connections before the clock starts. Needs `--features tokio-uring`.
//!
//! Two more functions isolate the checkout, with no request: `checkout`
//! (`get_uring` and its drop: the pool, and the thread's stream for the
//! connection) and its floor `get_floor` (`get` and its drop: the pool
//! alone).

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use ringpool::Pool;
use ringpool::tcp::TcpManager;
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::{TcpListener, TcpStream};

const MESSAGE: usize = 64;
const TASKS: usize = 16;

async fn serve(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        tokio_uring::spawn(async move {
            let mut buf = vec![0u8; MESSAGE];
            loop {
                let (read, b) = stream.read(buf).await;
                let Ok(n @ 1..) = read else { return };
                let (written, b) = stream.write_all(b.slice(..n)).await;
                if written.is_err() {
                    return;
                }
                buf = b.into_inner();
            }
        });
    }
}

/// One request and its whole reply.
macro_rules! round_trip {
    ($conn:expr) => {{
        let (written, _) = $conn.write_all(vec![7u8; MESSAGE]).await;
        written.unwrap();
        let mut got = 0;
        while got < MESSAGE {
            let (read, _) = $conn.read(vec![0u8; MESSAGE - got]).await;
            got += read.unwrap();
        }
    }};
}

/// What each task does per iteration.
#[derive(Clone, Copy, PartialEq)]
enum Work {
    /// A round trip on a stream the task owns.
    Dedicated,
    /// `get_uring`, a round trip, the drop.
    Pooled,
    /// `get_uring` and the drop.
    Checkout,
    /// `get` and the drop.
    Get,
}

fn sample(iters: u64, work: Work) -> Duration {
    tokio_uring::start(async move {
        let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        tokio_uring::spawn(serve(listener));
        let per_task = iters.div_ceil(TASKS as u64).max(1);
        let pool = Pool::builder(TcpManager::new(addr).unwrap())
            .max_size(TASKS)
            .build()
            .unwrap();
        let mut streams = Vec::new();
        if work != Work::Dedicated {
            let held: Vec<_> =
                futures_util::future::join_all((0..TASKS).map(|_| pool.get_uring())).await;
            drop(held);
        } else {
            for _ in 0..TASKS {
                let stream = TcpStream::connect(addr).await.unwrap();
                stream.set_nodelay(true).unwrap();
                streams.push(stream);
            }
        }
        let started = Instant::now();
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let pool = pool.clone();
                let stream = streams.pop();
                tokio_uring::spawn(async move {
                    for _ in 0..per_task {
                        match (work, &stream) {
                            (Work::Dedicated, Some(stream)) => round_trip!(stream),
                            (Work::Pooled, _) => {
                                let conn = pool.get_uring().await.unwrap();
                                round_trip!(conn);
                            }
                            (Work::Checkout, _) => drop(pool.get_uring().await.unwrap()),
                            _ => drop(pool.get().await.unwrap()),
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        started
            .elapsed()
            .mul_f64(iters as f64 / (per_task * TASKS as u64) as f64)
    })
}

fn main() {
    let mut criterion = Criterion::default().without_plots().configure_from_args();
    let mut group = criterion.benchmark_group("pooled_request_uring");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    group.bench_function(BenchmarkId::new("dedicated", TASKS), |b| {
        b.iter_custom(|iters| sample(iters, Work::Dedicated))
    });
    group.bench_function(BenchmarkId::new("ringpool", TASKS), |b| {
        b.iter_custom(|iters| sample(iters, Work::Pooled))
    });
    group.bench_function(BenchmarkId::new("checkout", TASKS), |b| {
        b.iter_custom(|iters| sample(iters, Work::Checkout))
    });
    group.bench_function(BenchmarkId::new("get_floor", TASKS), |b| {
        b.iter_custom(|iters| sample(iters, Work::Get))
    });
    group.finish();
    criterion.final_summary();
}

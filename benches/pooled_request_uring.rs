//! A 64-byte request and response over loopback through tokio-uring, from 16
//! tasks: `dedicated` (each task owns a tokio-uring stream) versus
//! `ringpool` (each request checks a connection out with `get_uring`, which
//! wraps a duplicate descriptor for this thread and gives the connection
//! back afterwards). Client tasks and the echo server share one tokio-uring
//! runtime on one thread; each sample builds its runtime, server and
//! connections before the clock starts. Needs `--features tokio-uring`.

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

fn sample(iters: u64, pooled: bool) -> Duration {
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
        if pooled {
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
                        match &stream {
                            Some(stream) => round_trip!(stream),
                            None => {
                                let conn = pool.get_uring().await.unwrap();
                                round_trip!(conn);
                            }
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
        b.iter_custom(|iters| sample(iters, false))
    });
    group.bench_function(BenchmarkId::new("ringpool", TASKS), |b| {
        b.iter_custom(|iters| sample(iters, true))
    });
    group.finish();
    criterion.final_summary();
}

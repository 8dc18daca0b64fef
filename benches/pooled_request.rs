//! A 64-byte request and its 64-byte response over loopback TCP, from 16 and
//! from 256 concurrent tasks, four ways side by side:
//! - `dedicated`: each task owns its connection (the physical limit of
//!   pooling);
//! - `ringpool`: tasks check a connection out of a ringpool pool for each
//!   request (pool as large as the concurrency, so only the pool's overhead
//!   separates it from `dedicated`), through a minimal hand-written manager
//!   over tokio's `TcpStream`;
//! - `ringpool_tokio_manager`: the same through the public
//!   `ringpool::tcp::TokioTcpManager` (request tracking, liveness check of
//!   young connections, name resolution per dial), which is what a user
//!   takes;
//! - `deadpool_tokio`: the same with deadpool (managed) over the same tokio
//!   `TcpStream`s;
//! - `dial_per_request`: a new connection for every request (closed with
//!   `SO_LINGER` 0, so no TIME_WAIT piles up);
//! - `fifo_rotation`: no pool, the same number of connections rotated
//!   through a plain queue (first in, first out), isolating what rotating
//!   through connections costs compared with each task keeping its own.
//!
//! Placement, the same for every function: client tasks and the echo server
//! run on one current-thread tokio runtime on one OS thread, so no request
//! pays a cross-core wake-up (which costs more than the round trip itself on
//! a 2-vCPU VM). Criterion reports the time per request; throughput is its
//! inverse.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

const MESSAGE: usize = 64;

async fn echo_server(listener: TcpListener) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let _ = stream.set_nodelay(true);
        tokio::task::spawn_local(async move {
            let mut buf = [0u8; MESSAGE];
            while stream.read_exact(&mut buf).await.is_ok() {
                if stream.write_all(&buf).await.is_err() {
                    return;
                }
            }
        });
    }
}

async fn dial(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

async fn request(stream: &mut (impl AsyncRead + AsyncWrite + Unpin)) {
    let mut buf = [7u8; MESSAGE];
    stream.write_all(&buf).await.unwrap();
    stream.read_exact(&mut buf).await.unwrap();
}

/// ringpool over tokio's `TcpStream` (the core is runtime-agnostic).
struct TokioTcp(SocketAddr);

impl ringpool::Manager for TokioTcp {
    type Connection = TcpStream;
    type Error = std::io::Error;

    async fn connect(&self) -> std::io::Result<TcpStream> {
        dial(self.0).await
    }
}

/// deadpool over the same streams.
struct DeadpoolTcp(SocketAddr);

impl deadpool::managed::Manager for DeadpoolTcp {
    type Type = TcpStream;
    type Error = std::io::Error;

    async fn create(&self) -> std::io::Result<TcpStream> {
        dial(self.0).await
    }

    async fn recycle(
        &self,
        _conn: &mut TcpStream,
        _metrics: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<std::io::Error> {
        Ok(())
    }
}

struct Setup {
    runtime: Runtime,
    local: tokio::task::LocalSet,
    addr: SocketAddr,
}

fn setup() -> Setup {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let listener = local
        .block_on(&runtime, TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    local.spawn_local(echo_server(listener));
    Setup {
        runtime,
        local,
        addr,
    }
}

/// Dials `count` connections before timing starts.
fn dial_all(setup: &Setup, count: usize) -> Vec<TcpStream> {
    let dials = futures_util::future::join_all((0..count).map(|_| dial(setup.addr)));
    let streams = setup.local.block_on(&setup.runtime, dials);
    streams.into_iter().map(Result::unwrap).collect()
}

/// Spreads `iters` requests over `tasks` tasks, each running `work(n)`;
/// returns the elapsed time.
fn run<F, Fut>(setup: &Setup, tasks: usize, iters: u64, work: F) -> Duration
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = ()> + 'static,
{
    setup.local.block_on(&setup.runtime, async {
        let per_task = iters.div_ceil(tasks as u64);
        let started = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|_| tokio::task::spawn_local(work(per_task)))
            .collect();
        for handle in handles {
            handle.await.unwrap();
        }
        started
            .elapsed()
            .mul_f64(iters as f64 / (per_task * tasks as u64) as f64)
    })
}

fn pooled_request(c: &mut Criterion) {
    let setup = setup();
    let addr = setup.addr;
    let mut group = c.benchmark_group("pooled_request");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    for tasks in [16usize, 256] {
        // dedicated: each task owns one connection, dialed before timing.
        let owned: Rc<RefCell<Vec<TcpStream>>> =
            Rc::new(RefCell::new(dial_all(&setup, tasks).into_iter().collect()));
        group.bench_function(BenchmarkId::new("dedicated", tasks), |b| {
            b.iter_custom(|iters| {
                let owned = Rc::clone(&owned);
                run(&setup, tasks, iters, move |n| {
                    let owned = Rc::clone(&owned);
                    async move {
                        let mut stream = owned.borrow_mut().pop().expect("one per task");
                        for _ in 0..n {
                            request(&mut stream).await;
                        }
                        owned.borrow_mut().push(stream);
                    }
                })
            })
        });

        // fifo_rotation: no pool at all, the same connections taken from
        // the front of a plain queue and put back at its end: the cost of
        // rotating through connections in first-in, first-out order.
        let rotation: Rc<RefCell<std::collections::VecDeque<TcpStream>>> =
            Rc::new(RefCell::new(dial_all(&setup, tasks).into_iter().collect()));
        group.bench_function(BenchmarkId::new("fifo_rotation", tasks), |b| {
            b.iter_custom(|iters| {
                let rotation = Rc::clone(&rotation);
                run(&setup, tasks, iters, move |n| {
                    let rotation = Rc::clone(&rotation);
                    async move {
                        for _ in 0..n {
                            let mut stream =
                                rotation.borrow_mut().pop_front().expect("one per task");
                            request(&mut stream).await;
                            rotation.borrow_mut().push_back(stream);
                        }
                    }
                })
            })
        });

        let pool = ringpool::Pool::builder(TokioTcp(addr))
            .max_size(tasks)
            .build()
            .unwrap();
        setup.local.block_on(&setup.runtime, async {
            let conns: Vec<_> =
                futures_util::future::join_all((0..tasks).map(|_| pool.get())).await;
            drop(conns);
        });
        group.bench_function(BenchmarkId::new("ringpool", tasks), |b| {
            b.iter_custom(|iters| {
                let pool = pool.clone();
                run(&setup, tasks, iters, move |n| {
                    let pool = pool.clone();
                    async move {
                        for _ in 0..n {
                            let mut conn = pool.get().await.unwrap();
                            request(&mut *conn).await;
                        }
                    }
                })
            })
        });

        let tokio_manager =
            ringpool::Pool::builder(ringpool::tcp::TokioTcpManager::new(addr.to_string()))
                .max_size(tasks)
                .build()
                .unwrap();
        setup.local.block_on(&setup.runtime, async {
            let conns: Vec<_> =
                futures_util::future::join_all((0..tasks).map(|_| tokio_manager.get())).await;
            drop(conns);
        });
        group.bench_function(BenchmarkId::new("ringpool_tokio_manager", tasks), |b| {
            b.iter_custom(|iters| {
                let pool = tokio_manager.clone();
                run(&setup, tasks, iters, move |n| {
                    let pool = pool.clone();
                    async move {
                        for _ in 0..n {
                            let mut conn = pool.get().await.unwrap();
                            request(&mut *conn).await;
                        }
                    }
                })
            })
        });

        let deadpool = deadpool::managed::Pool::<DeadpoolTcp>::builder(DeadpoolTcp(addr))
            .max_size(tasks)
            .build()
            .unwrap();
        setup.local.block_on(&setup.runtime, async {
            let conns: Vec<_> =
                futures_util::future::join_all((0..tasks).map(|_| deadpool.get())).await;
            drop(conns);
        });
        group.bench_function(BenchmarkId::new("deadpool_tokio", tasks), |b| {
            b.iter_custom(|iters| {
                let deadpool = deadpool.clone();
                run(&setup, tasks, iters, move |n| {
                    let deadpool = deadpool.clone();
                    async move {
                        for _ in 0..n {
                            let mut conn = deadpool.get().await.unwrap();
                            request(&mut *conn).await;
                        }
                    }
                })
            })
        });

        group.bench_function(BenchmarkId::new("dial_per_request", tasks), |b| {
            b.iter_custom(|iters| {
                run(&setup, tasks, iters, move |n| async move {
                    for _ in 0..n {
                        let mut stream = dial(addr).await.unwrap();
                        request(&mut stream).await;
                        let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                    }
                })
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = pooled_request
}
criterion_main!(benches);

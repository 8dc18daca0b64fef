//! Checkout cost of `ringpool` next to its peers (deadpool, bb8, qp, mobc,
//! r2d2) and two hand-made floors, all handing out a no-op `u64`
//! "connection". Each measured operation is one `get` plus dropping the
//! guard (which returns the connection).
//!
//! Groups:
//! - `acquire_uncontended`: one task, pool of 16. The pure fast path: an idle
//!   connection is always there and nobody else touches the pool.
//!   `ringpool_all_features` is the same with both hooks set (accepting),
//!   leak detection on and (with the `prometheus` feature) the exporter
//!   registered: what turning everything on costs. `ringpool_hooks`
//!   (both hooks) and `ringpool_leak_detection` are its features one at a
//!   time, and `ringpool_prometheus` (with that feature) the exporter alone.
//! - `acquire_contended`: pool of 8, 32 tasks on a 2-worker tokio runtime
//!   (async pools) or 2 OS threads (blocking pools and floors). `iters` gets
//!   are spread over the workers and the time per get is reported. Two
//!   threads hammer the same pool, but nobody holds a connection for long,
//!   so gets seldom wait: this measures the cost of shared-state contention.
//! - `acquire_waiting`: like contended, but each task holds its connection
//!   across a yield point (`tokio::task::yield_now().await`, or
//!   `std::thread::yield_now()` for r2d2) before dropping it. 32 holders and
//!   8 connections, so gets really queue and are woken by returns: this
//!   measures the waiter/wake-up path. Blocking pools cannot wait with only
//!   2 OS threads and 8 connections, so r2d2 runs 32 OS threads here (one
//!   per task). The queue and mutex floors cannot wait and appear only in
//!   the first two groups; the semaphore floor waits like the pools.
//!
//! Floors (`baseline_semaphore` in `acquire_waiting` only, the others in the
//! first two groups only):
//! - `baseline_semaphore`: a bare `tokio::sync::Semaphore` guarding an
//!   `ArrayQueue`, the same task pattern: the floor of a waiting get on
//!   this runtime;
//! - `baseline_arrayqueue`: crossbeam `ArrayQueue` pop + push plus an atomic
//!   `fetch_add`/`fetch_sub` in-use counter, the least a lock-free pool can do;
//! - `baseline_mutex_vec`: `Mutex<Vec<u64>>`: lock, pop, unlock, lock, push,
//!   unlock.
//! - `baseline_arrayqueue_arc` (`acquire_uncontended` only): the
//!   `baseline_arrayqueue` get plus one `Arc` clone and drop of the floor's
//!   handle, the least a guard that owns its pool handle adds: the floor of
//!   `ringpool_owned` against `ringpool`.
//!
//! How async pools are driven: every async pool (ringpool's `get().await`
//! included) is driven the same way. Uncontended: one `block_on` per
//! criterion sample on a current-thread tokio runtime, running all the
//! sample's gets in one loop (the same thing `b.to_async(&rt).iter` does,
//! without a runtime entry per get). Contended/waiting: 32 spawned tasks on a
//! 2-worker multi-thread runtime. Blocking pools and floors run on plain OS
//! threads. Time is taken inside the tasks/threads (first start to last end),
//! so spawning and joining are not counted.
//!
//! Settings: peers use their defaults apart from size. For mobc, size means
//! both `max_open` and `max_idle` (its default `max_idle` of 2 would close
//! connections on return instead of pooling them). Every pool is pre-filled
//! before timing by checking out `max_size` connections at once and dropping
//! them.
//!
//! Hangs: every measurement runs under a watchdog of 10 s. qp 0.2.1 is
//! known to deadlock when tasks outnumber connections and hold them across
//! an await (its acquire does not re-register its waker after a lost race).
//! A hang prints `<group>/<name>: HANG (timed out after 10s)` to stderr; the
//! remaining samples of that function are skipped and report 10 s per get, so
//! the run goes on.

use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use crossbeam_queue::ArrayQueue;
use tokio::runtime::Runtime;

/// The watchdog: a measurement taking longer than this is a hang.
const HANG_AFTER: Duration = Duration::from_secs(10);
const UNCONTENDED_SIZE: usize = 16;
const CONTENDED_SIZE: usize = 8;
/// Tasks sharing the gets in the contended and waiting groups.
const TASKS: u64 = 32;
/// OS threads (or tokio workers) in the contended and waiting groups.
const THREADS: u64 = 2;

type IoError = std::io::Error;

// ---------------------------------------------------------------------------
// No-op managers, one per pool crate.

struct RingNoop;

impl ringpool::Manager for RingNoop {
    type Connection = u64;
    type Error = IoError;

    async fn connect(&self) -> Result<u64, IoError> {
        Ok(0)
    }
}

struct DeadpoolNoop;

impl deadpool::managed::Manager for DeadpoolNoop {
    type Type = u64;
    type Error = IoError;

    async fn create(&self) -> Result<u64, IoError> {
        Ok(0)
    }

    async fn recycle(
        &self,
        _conn: &mut u64,
        _metrics: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<IoError> {
        Ok(())
    }
}

struct Bb8Noop;

impl bb8::ManageConnection for Bb8Noop {
    type Connection = u64;
    type Error = IoError;

    async fn connect(&self) -> Result<u64, IoError> {
        Ok(0)
    }

    async fn is_valid(&self, _conn: &mut u64) -> Result<(), IoError> {
        Ok(())
    }

    fn has_broken(&self, _conn: &mut u64) -> bool {
        false
    }
}

struct QpNoop;

#[qp::async_trait]
impl qp::resource::Manage for QpNoop {
    type Output = u64;
    type Error = IoError;

    async fn try_create(&self) -> Result<u64, IoError> {
        Ok(0)
    }
}

struct MobcNoop;

#[mobc::async_trait]
impl mobc::Manager for MobcNoop {
    type Connection = u64;
    type Error = IoError;

    async fn connect(&self) -> Result<u64, IoError> {
        Ok(0)
    }

    async fn check(&self, conn: u64) -> Result<u64, IoError> {
        Ok(conn)
    }
}

struct R2d2Noop;

impl r2d2::ManageConnection for R2d2Noop {
    type Connection = u64;
    type Error = IoError;

    fn connect(&self) -> Result<u64, IoError> {
        Ok(0)
    }

    fn is_valid(&self, _conn: &mut u64) -> Result<(), IoError> {
        Ok(())
    }

    fn has_broken(&self, _conn: &mut u64) -> bool {
        false
    }
}

type RingPool = ringpool::Pool<RingNoop>;
type DeadPool = deadpool::managed::Pool<DeadpoolNoop>;
type Bb8Pool = bb8::Pool<Bb8Noop>;
type QpPool = qp::Pool<QpNoop>;
type MobcPool = mobc::Pool<MobcNoop>;
type R2d2Pool = r2d2::Pool<R2d2Noop>;

// ---------------------------------------------------------------------------
// Floors.

/// An `ArrayQueue` holding `size` no-op connections.
fn full_queue(size: usize) -> ArrayQueue<u64> {
    let idle = ArrayQueue::new(size);
    for conn in 0..size as u64 {
        idle.push(conn).expect("the queue holds `size` entries");
    }
    idle
}

/// `ArrayQueue` pop + push and an in-use counter: the least a lock-free pool
/// can do per checkout.
struct QueueFloor {
    idle: ArrayQueue<u64>,
    in_use: AtomicUsize,
}

impl QueueFloor {
    fn new(size: usize) -> Self {
        QueueFloor {
            idle: full_queue(size),
            in_use: AtomicUsize::new(0),
        }
    }

    #[inline]
    fn get_put(&self) {
        self.in_use.fetch_add(1, Ordering::AcqRel);
        let conn = loop {
            if let Some(conn) = self.idle.pop() {
                break conn;
            }
            std::hint::spin_loop();
        };
        black_box(conn);
        self.idle
            .push(conn)
            .expect("a popped entry always fits back");
        self.in_use.fetch_sub(1, Ordering::AcqRel);
    }
}

/// `Mutex<Vec<u64>>`: lock, pop, unlock, lock, push, unlock.
struct MutexFloor(Mutex<Vec<u64>>);

impl MutexFloor {
    fn new(size: usize) -> Self {
        MutexFloor(Mutex::new((0..size as u64).collect()))
    }

    #[inline]
    fn get_put(&self) {
        let conn = loop {
            let popped = self.0.lock().expect("not poisoned").pop();
            if let Some(conn) = popped {
                break conn;
            }
            std::hint::spin_loop();
        };
        black_box(conn);
        self.0.lock().expect("not poisoned").push(conn);
    }
}

/// A bare `tokio::sync::Semaphore` guarding an `ArrayQueue`: the least a
/// pool whose gets wait can do on this runtime (an intrusive, allocation-
/// free FIFO of waiters, woken by the returns).
struct SemaphoreFloor {
    permits: tokio::sync::Semaphore,
    idle: ArrayQueue<u64>,
}

impl SemaphoreFloor {
    fn new(size: usize) -> Self {
        SemaphoreFloor {
            permits: tokio::sync::Semaphore::new(size),
            idle: full_queue(size),
        }
    }
}

/// `n` gets from the semaphore floor, each held across a yield point.
async fn semaphore_gets(floor: Arc<SemaphoreFloor>, n: u64) {
    for _ in 0..n {
        let permit = floor.permits.acquire().await.expect("never closed");
        let conn = floor.idle.pop().expect("a permit means an idle entry");
        black_box(conn);
        tokio::task::yield_now().await;
        floor
            .idle
            .push(conn)
            .expect("a popped entry always fits back");
        drop(permit);
    }
}

// ---------------------------------------------------------------------------
// Get loops: `n` gets, each dropped at once or (HOLD) after a yield point.

macro_rules! async_gets {
    ($name:ident, $pool:ty, $get:ident) => {
        async fn $name<const HOLD: bool>(pool: &$pool, n: u64) {
            for _ in 0..n {
                let conn = pool
                    .$get()
                    .await
                    .expect(concat!(stringify!($name), ": get failed"));
                black_box(*conn);
                if HOLD {
                    tokio::task::yield_now().await;
                }
                drop(conn);
            }
        }
    };
}

async_gets!(ringpool_gets, RingPool, get);
async_gets!(ringpool_owned_gets, RingPool, get_owned);
async_gets!(deadpool_gets, DeadPool, get);
async_gets!(bb8_gets, Bb8Pool, get);
async_gets!(qp_gets, QpPool, acquire);
async_gets!(mobc_gets, MobcPool, get);

fn r2d2_gets<const HOLD: bool>(pool: &R2d2Pool, n: u64) {
    for _ in 0..n {
        let conn = pool.get().expect("r2d2_gets: get failed");
        black_box(*conn);
        if HOLD {
            thread::yield_now();
        }
        drop(conn);
    }
}

fn queue_gets(floor: &Arc<QueueFloor>, n: u64) {
    for _ in 0..n {
        floor.get_put();
    }
}

fn queue_owned_gets(floor: &Arc<QueueFloor>, n: u64) {
    for _ in 0..n {
        let owned = black_box(Arc::clone(floor));
        owned.get_put();
        drop(owned);
    }
}

fn mutex_gets(floor: &Arc<MutexFloor>, n: u64) {
    for _ in 0..n {
        floor.get_put();
    }
}

/// Checks out `$size` connections at once and drops them all, so the pool
/// holds `$size` idle connections before timing starts.
macro_rules! prefill {
    ($pool:expr, $get:ident, $size:expr) => {{
        let mut held = Vec::with_capacity($size);
        for _ in 0..$size {
            held.push($pool.$get().await.expect("prefill get failed"));
        }
        drop(held);
    }};
}

/// A prefilled ringpool of the uncontended size, its builder given to
/// `configure` first.
fn ringpool_with(
    rt: &Runtime,
    configure: impl FnOnce(ringpool::Builder<RingNoop>) -> ringpool::Builder<RingNoop>,
) -> RingPool {
    rt.block_on(async {
        let pool = configure(ringpool::Pool::builder(RingNoop).max_size(UNCONTENDED_SIZE))
            .build()
            .expect("ringpool config");
        prefill!(pool, get, UNCONTENDED_SIZE);
        pool
    })
}

struct AsyncPools {
    ringpool: RingPool,
    deadpool: DeadPool,
    bb8: Bb8Pool,
    qp: QpPool,
    mobc: MobcPool,
}

/// Builds and pre-fills the async pools inside `rt` (bb8 and mobc spawn
/// background tasks onto the runtime that builds them).
fn async_pools(rt: &Runtime, size: usize) -> AsyncPools {
    rt.block_on(async {
        let ringpool = ringpool::Pool::builder(RingNoop)
            .max_size(size)
            .build()
            .expect("ringpool config");
        prefill!(ringpool, get, size);

        let deadpool: DeadPool = deadpool::managed::Pool::builder(DeadpoolNoop)
            .max_size(size)
            .build()
            .expect("deadpool config");
        prefill!(deadpool, get, size);

        let bb8 = bb8::Pool::builder()
            .max_size(u32::try_from(size).expect("small size"))
            .build(Bb8Noop)
            .await
            .expect("bb8 build");
        prefill!(bb8, get, size);

        let qp = qp::Pool::new(QpNoop, size);
        prefill!(qp, acquire, size);

        let mobc = mobc::Pool::builder()
            .max_open(size as u64)
            .max_idle(size as u64)
            .build(MobcNoop);
        prefill!(mobc, get, size);

        AsyncPools {
            ringpool,
            deadpool,
            bb8,
            qp,
            mobc,
        }
    })
}

fn r2d2_pool(size: usize) -> R2d2Pool {
    let pool = r2d2::Pool::builder()
        .max_size(u32::try_from(size).expect("small size"))
        .build(R2d2Noop)
        .expect("r2d2 build");
    let held: Vec<_> = (0..size)
        .map(|_| pool.get().expect("prefill get failed"))
        .collect();
    drop(held);
    pool
}

// ---------------------------------------------------------------------------
// Drivers. Each returns the elapsed time, or `None` on a hang.

/// Worker `index`'s share when `total` gets are spread over `workers`.
fn share(total: u64, workers: u64, index: u64) -> u64 {
    total / workers + u64::from(index < total % workers)
}

/// First start to last end.
fn span(spans: &[(Instant, Instant)]) -> Duration {
    let start = spans
        .iter()
        .map(|s| s.0)
        .min()
        .expect("at least one worker");
    let end = spans
        .iter()
        .map(|s| s.1)
        .max()
        .expect("at least one worker");
    end - start
}

/// One task on a current-thread runtime.
fn run_single(rt: &Runtime, gets: impl Future<Output = ()>) -> Option<Duration> {
    rt.block_on(async {
        tokio::time::timeout(HANG_AFTER, async {
            let start = Instant::now();
            gets.await;
            start.elapsed()
        })
        .await
        .ok()
    })
}

/// `iters` gets spread over `TASKS` tasks on a multi-thread runtime.
fn run_tasks<P, F, Fut>(rt: &Runtime, pool: &P, iters: u64, gets: F) -> Option<Duration>
where
    P: Clone,
    F: Fn(P, u64) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut handles: Vec<_> = (0..TASKS)
        .map(|i| {
            let task = gets(pool.clone(), share(iters, TASKS, i));
            rt.spawn(async move {
                let start = Instant::now();
                task.await;
                (start, Instant::now())
            })
        })
        .collect();
    let joined = rt.block_on(async {
        tokio::time::timeout(HANG_AFTER, async {
            let mut spans = Vec::with_capacity(handles.len());
            for handle in &mut handles {
                spans.push(handle.await.expect("bench task panicked"));
            }
            spans
        })
        .await
    });
    match joined {
        Ok(spans) => Some(span(&spans)),
        Err(_) => {
            for handle in &handles {
                handle.abort();
            }
            None
        }
    }
}

/// `iters` gets spread over `threads` OS threads that start together. A hung
/// thread is left behind (it cannot be cancelled).
fn run_threads<P>(threads: u64, pool: &P, iters: u64, gets: fn(&P, u64)) -> Option<Duration>
where
    P: Clone + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(threads as usize));
    let (tx, rx) = mpsc::channel();
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (pool, barrier, tx) = (pool.clone(), Arc::clone(&barrier), tx.clone());
            let n = share(iters, threads, i);
            thread::spawn(move || {
                barrier.wait();
                let start = Instant::now();
                gets(&pool, n);
                let _ = tx.send((start, Instant::now()));
            })
        })
        .collect();
    drop(tx);
    let deadline = Instant::now() + HANG_AFTER;
    let mut spans = Vec::with_capacity(handles.len());
    for _ in 0..threads {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(s) => spans.push(s),
            Err(mpsc::RecvTimeoutError::Timeout) => return None,
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("bench thread panicked"),
        }
    }
    for handle in handles {
        handle.join().expect("bench thread panicked");
    }
    Some(span(&spans))
}

/// Registers one function; `run(iters)` does the work under a watchdog. After
/// a hang the function's remaining samples are skipped.
fn bench(
    group: &mut BenchmarkGroup<'_, WallTime>,
    group_name: &str,
    name: &str,
    mut run: impl FnMut(u64) -> Option<Duration>,
) {
    let label = format!("{group_name}/{name}");
    let mut hung = false;
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            if hung {
                return Duration::from_secs_f64(HANG_AFTER.as_secs_f64() * iters as f64);
            }
            let start = Instant::now();
            match run(iters) {
                Some(elapsed) => elapsed,
                None => {
                    eprintln!(
                        "{label}: HANG (timed out after {}s); remaining samples skipped, reported as {}s/get",
                        HANG_AFTER.as_secs(),
                        HANG_AFTER.as_secs()
                    );
                    hung = true;
                    start.elapsed()
                }
            }
        });
    });
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
}

// ---------------------------------------------------------------------------
// Groups.

fn acquire_uncontended(c: &mut Criterion) {
    const GROUP: &str = "acquire_uncontended";
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let pools = async_pools(&rt, UNCONTENDED_SIZE);
    let r2d2 = r2d2_pool(UNCONTENDED_SIZE);
    let queue = Arc::new(QueueFloor::new(UNCONTENDED_SIZE));
    let mutex = Arc::new(MutexFloor::new(UNCONTENDED_SIZE));

    let mut g = c.benchmark_group(GROUP);
    configure(&mut g);
    bench(&mut g, GROUP, "ringpool", |n| {
        run_single(&rt, ringpool_gets::<false>(&pools.ringpool, n))
    });
    bench(&mut g, GROUP, "ringpool_owned", |n| {
        run_single(&rt, ringpool_owned_gets::<false>(&pools.ringpool, n))
    });
    // Every optional checkout feature turned on: both hooks (accepting),
    // leak detection and, with the `prometheus` feature, the exporter. A
    // pool with none of them is the plain `ringpool` above.
    let all_features = ringpool_with(&rt, |builder| {
        builder
            .leak_threshold(Some(Duration::from_secs(3600)))
            .before_checkout(|_| Ok(()))
            .on_return(|_| Ok(()))
    });
    #[cfg(feature = "prometheus")]
    let mut all_features_registry = prometheus_client::registry::Registry::default();
    #[cfg(feature = "prometheus")]
    all_features.register_metrics(&mut all_features_registry);
    bench(&mut g, GROUP, "ringpool_all_features", |n| {
        run_single(&rt, ringpool_gets::<false>(&all_features, n))
    });
    // The features of `ringpool_all_features` one at a time: what each
    // adds to the plain checkout.
    let hooks = ringpool_with(&rt, |builder| {
        builder.before_checkout(|_| Ok(())).on_return(|_| Ok(()))
    });
    bench(&mut g, GROUP, "ringpool_hooks", |n| {
        run_single(&rt, ringpool_gets::<false>(&hooks, n))
    });
    let leak_detection = ringpool_with(&rt, |builder| {
        builder.leak_threshold(Some(Duration::from_secs(3600)))
    });
    bench(&mut g, GROUP, "ringpool_leak_detection", |n| {
        run_single(&rt, ringpool_gets::<false>(&leak_detection, n))
    });
    // The same pool type with its metrics registered in a Prometheus
    // registry (read at scrape time: the checkout path should not change).
    #[cfg(feature = "prometheus")]
    {
        let (exported, mut registry) = (
            rt.block_on(async {
                let pool = ringpool::Pool::builder(RingNoop)
                    .max_size(UNCONTENDED_SIZE)
                    .build()
                    .expect("ringpool config");
                prefill!(pool, get, UNCONTENDED_SIZE);
                pool
            }),
            prometheus_client::registry::Registry::default(),
        );
        exported.register_metrics(&mut registry);
        bench(&mut g, GROUP, "ringpool_prometheus", |n| {
            run_single(&rt, ringpool_gets::<false>(&exported, n))
        });
    }
    bench(&mut g, GROUP, "deadpool", |n| {
        run_single(&rt, deadpool_gets::<false>(&pools.deadpool, n))
    });
    bench(&mut g, GROUP, "bb8", |n| {
        run_single(&rt, bb8_gets::<false>(&pools.bb8, n))
    });
    bench(&mut g, GROUP, "qp", |n| {
        run_single(&rt, qp_gets::<false>(&pools.qp, n))
    });
    bench(&mut g, GROUP, "mobc", |n| {
        run_single(&rt, mobc_gets::<false>(&pools.mobc, n))
    });
    bench(&mut g, GROUP, "r2d2", |n| {
        run_threads(1, &r2d2, n, r2d2_gets::<false>)
    });
    bench(&mut g, GROUP, "baseline_arrayqueue", |n| {
        run_threads(1, &queue, n, queue_gets)
    });
    bench(&mut g, GROUP, "baseline_arrayqueue_arc", |n| {
        run_threads(1, &queue, n, queue_owned_gets)
    });
    bench(&mut g, GROUP, "baseline_mutex_vec", |n| {
        run_threads(1, &mutex, n, mutex_gets)
    });
    g.finish();
}

/// `acquire_contended` (HOLD = false) and `acquire_waiting` (HOLD = true).
fn shared_group<const HOLD: bool>(c: &mut Criterion, group_name: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(THREADS as usize)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let pools = async_pools(&rt, CONTENDED_SIZE);
    let r2d2 = r2d2_pool(CONTENDED_SIZE);
    // Waiting needs one blocked OS thread per holder.
    let blocking_threads = if HOLD { TASKS } else { THREADS };

    let mut g = c.benchmark_group(group_name);
    configure(&mut g);
    bench(&mut g, group_name, "ringpool", |n| {
        run_tasks(&rt, &pools.ringpool, n, |p, n| async move {
            ringpool_gets::<HOLD>(&p, n).await
        })
    });
    bench(&mut g, group_name, "deadpool", |n| {
        run_tasks(&rt, &pools.deadpool, n, |p, n| async move {
            deadpool_gets::<HOLD>(&p, n).await
        })
    });
    bench(&mut g, group_name, "bb8", |n| {
        run_tasks(&rt, &pools.bb8, n, |p, n| async move {
            bb8_gets::<HOLD>(&p, n).await
        })
    });
    bench(&mut g, group_name, "qp", |n| {
        run_tasks(&rt, &pools.qp, n, |p, n| async move {
            qp_gets::<HOLD>(&p, n).await
        })
    });
    bench(&mut g, group_name, "mobc", |n| {
        run_tasks(&rt, &pools.mobc, n, |p, n| async move {
            mobc_gets::<HOLD>(&p, n).await
        })
    });
    bench(&mut g, group_name, "r2d2", |n| {
        run_threads(blocking_threads, &r2d2, n, r2d2_gets::<HOLD>)
    });
    if HOLD {
        let floor = Arc::new(SemaphoreFloor::new(CONTENDED_SIZE));
        bench(&mut g, group_name, "baseline_semaphore", |n| {
            run_tasks(&rt, &floor, n, semaphore_gets)
        });
    }
    if !HOLD {
        let queue = Arc::new(QueueFloor::new(CONTENDED_SIZE));
        let mutex = Arc::new(MutexFloor::new(CONTENDED_SIZE));
        bench(&mut g, group_name, "baseline_arrayqueue", |n| {
            run_threads(THREADS, &queue, n, queue_gets)
        });
        bench(&mut g, group_name, "baseline_mutex_vec", |n| {
            run_threads(THREADS, &mutex, n, mutex_gets)
        });
    }
    g.finish();
    // Tasks of a hung pool may still be parked on it: drop the runtime
    // without waiting for them.
    rt.shutdown_background();
}

/// `acquire_scale`: one task's get + drop in pools of 10, 1,000 and
/// 10,000 idle connections: the cost of a checkout must not grow with the
/// number of connections the pool holds.
fn acquire_scale(c: &mut Criterion) {
    const GROUP: &str = "acquire_scale";
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut g = c.benchmark_group(GROUP);
    configure(&mut g);
    for size in [10usize, 1_000, 10_000] {
        let pool = rt.block_on(async {
            let pool = ringpool::Pool::builder(RingNoop)
                .max_size(size)
                .build()
                .expect("ringpool config");
            prefill!(pool, get, size);
            pool
        });
        bench(&mut g, GROUP, &format!("ringpool/{size}"), |n| {
            run_single(&rt, ringpool_gets::<false>(&pool, n))
        });
    }
    g.finish();
}

fn acquire_contended(c: &mut Criterion) {
    shared_group::<false>(c, "acquire_contended");
}

fn acquire_waiting(c: &mut Criterion) {
    shared_group::<true>(c, "acquire_waiting");
}

criterion_group! {
    name = benches;
    // No plots: a hung peer reports identical samples, which the plotter
    // cannot draw (it panics on zero variance).
    config = Criterion::default().without_plots();
    targets = acquire_uncontended, acquire_contended, acquire_waiting, acquire_scale
}
criterion_main!(benches);

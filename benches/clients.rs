//! Real clients on real servers, through each pool side by side: a
//! PostgreSQL `SELECT 1` (group `clients_postgres`) and a Redis `GET`
//! (group `clients_redis`) from 16 and 64 concurrent tasks, every pool at
//! 16 connections, each library with its default settings:
//! - `ringpool`: ringpool's manager for the client (`clients::postgres`,
//!   `clients::redis`);
//! - `deadpool_postgres` / `deadpool_redis`, `bb8_postgres` / `bb8_redis`:
//!   the peers' pools over the same client library;
//! - `dedicated`: each task owns its client (the physical floor: no pool);
//! - in `clients_redis` only, `ringpool_shared`: a `SharedPool` of 4
//!   multiplexed connections carrying up to 64 requests each
//!   (`RedisManager::shared`), against `ringpool_4`, the exclusive pool at
//!   the same 4 connections;
//! - group `clients_mysql`: a MariaDB `SELECT 1` through ringpool's
//!   `MysqlManager` (which resets each session on return, a round trip)
//!   against `mysql_async_pool`, the pool MySQL users of that client have
//!   today (`mysql_async::Pool`, 16 connections, which also resets on
//!   return), `ringpool_no_reset` (`reset_on_return(false)`, for
//!   applications that keep no session state) and `dedicated`.
//!
//! The servers are private, started by the bench on loopback (Debian's
//! `postgresql` and `redis-server`); a group whose server is missing is
//! skipped with a message. Placement, the same for every function: the
//! client tasks and the clients' own connection tasks run on one
//! current-thread tokio runtime. Criterion reports the time per request;
//! after the groups each function's p50 and p99 request latency is printed
//! from a separate pass of 20,000 requests.

#[path = "../tests/servers/mod.rs"]
#[allow(unreachable_pub)]
mod servers;

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use hdrhistogram::Histogram;
use tokio::runtime::Runtime;

const POOL_SIZE: usize = 16;
/// The pool size of `clients_redis`' shared-against-exclusive question.
const SHARED_POOL_SIZE: usize = 4;
const CONCURRENCY: [usize; 2] = [16, 64];

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Spreads `iters` requests over `tasks` tasks, each running `work(n)` on
/// the runtime's one thread; returns the elapsed time.
fn run<F, Fut>(rt: &Runtime, tasks: usize, iters: u64, work: F) -> Duration
where
    F: Fn(usize, u64) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let local = tokio::task::LocalSet::new();
    local.block_on(rt, async {
        let per_task = iters.div_ceil(tasks as u64);
        let started = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|task| tokio::task::spawn_local(work(task, per_task)))
            .collect();
        for handle in handles {
            handle.await.unwrap();
        }
        started
            .elapsed()
            .mul_f64(iters as f64 / (per_task * tasks as u64) as f64)
    })
}

/// The latency of each of 20,000 requests made by `tasks` tasks, each
/// request `request(task)`.
fn latencies<F, Fut>(rt: &Runtime, tasks: usize, request: F) -> Histogram<u64>
where
    F: Fn(usize) -> Fut + Clone + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let histogram = Rc::new(std::cell::RefCell::new(
        Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap(),
    ));
    let total = 20_000u64;
    run(rt, tasks, total, |task, n| {
        let (request, histogram) = (request.clone(), Rc::clone(&histogram));
        async move {
            for _ in 0..n {
                let started = Instant::now();
                request(task).await;
                let _ = histogram
                    .borrow_mut()
                    .record(started.elapsed().as_nanos() as u64);
            }
        }
    });
    Rc::try_unwrap(histogram).unwrap().into_inner()
}

/// One function of a group: a request made by task `task`.
type Request = Rc<dyn Fn(usize) -> Pin<Box<dyn Future<Output = ()>>>>;

/// Wraps a request function.
fn request<F, Fut>(f: F) -> Request
where
    F: Fn(usize) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    Rc::new(move |task| Box::pin(f(task)) as Pin<Box<dyn Future<Output = ()>>>)
}

/// Benches each function `functions(tasks)` gives at each concurrency, and
/// notes its latency percentiles in `percentiles`.
fn bench_group(
    c: &mut Criterion,
    rt: &Runtime,
    group_name: &str,
    mut functions: impl FnMut(usize) -> Vec<(&'static str, Request)>,
    percentiles: &mut Vec<String>,
) {
    let mut group = c.benchmark_group(group_name);
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    for tasks in CONCURRENCY {
        for (name, request) in functions(tasks) {
            group.bench_function(BenchmarkId::new(name, tasks), |b| {
                b.iter_custom(|iters| {
                    run(rt, tasks, iters, |task, n| {
                        let request = Rc::clone(&request);
                        async move {
                            for _ in 0..n {
                                request(task).await;
                            }
                        }
                    })
                })
            });
            let histogram = latencies(rt, tasks, move |task| request(task));
            percentiles.push(format!(
                "{group_name}/{name}/{tasks}: p50 {:.1} us, p99 {:.1} us",
                histogram.value_at_quantile(0.50) as f64 / 1000.0,
                histogram.value_at_quantile(0.99) as f64 / 1000.0
            ));
        }
    }
    group.finish();
}

mod postgres {
    use super::*;
    use ringpool::clients::postgres::PostgresManager;
    use tokio_postgres::NoTls;

    async fn select_one(client: &tokio_postgres::Client) {
        let messages = client.simple_query("SELECT 1").await.unwrap();
        let one = messages.iter().find_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        });
        assert_eq!(one.as_deref(), Some("1"));
    }

    /// The group's functions at `tasks` concurrent tasks.
    pub(super) fn functions(rt: &Runtime, url: &str, tasks: usize) -> Vec<(&'static str, Request)> {
        let config: tokio_postgres::Config = url.parse().unwrap();
        let ringpool = rt.block_on(async {
            let pool = ringpool::Pool::builder(PostgresManager::from_url(url).unwrap())
                .max_size(POOL_SIZE)
                .build()
                .unwrap();
            pool.warm_up().await.unwrap();
            Rc::new(pool)
        });
        let deadpool = {
            let manager = deadpool_postgres::Manager::new(config.clone(), NoTls);
            Rc::new(
                deadpool_postgres::Pool::builder(manager)
                    .max_size(POOL_SIZE)
                    .build()
                    .unwrap(),
            )
        };
        let bb8 = rt.block_on(async {
            let manager = bb8_postgres::PostgresConnectionManager::new(config.clone(), NoTls);
            Rc::new(
                bb8::Pool::builder()
                    .max_size(POOL_SIZE as u32)
                    .build(manager)
                    .await
                    .unwrap(),
            )
        });
        let dedicated: Rc<Vec<tokio_postgres::Client>> = Rc::new(rt.block_on(async {
            let mut clients = Vec::new();
            for _ in 0..tasks {
                let (client, connection) = config.connect(NoTls).await.unwrap();
                tokio::spawn(connection);
                clients.push(client);
            }
            clients
        }));
        vec![
            (
                "ringpool",
                request(move |_| {
                    let pool = Rc::clone(&ringpool);
                    async move { select_one(&pool.get().await.unwrap()).await }
                }),
            ),
            (
                "deadpool_postgres",
                request(move |_| {
                    let pool = Rc::clone(&deadpool);
                    async move { select_one(&pool.get().await.unwrap()).await }
                }),
            ),
            (
                "bb8_postgres",
                request(move |_| {
                    let pool = Rc::clone(&bb8);
                    async move { select_one(&pool.get().await.unwrap()).await }
                }),
            ),
            (
                "dedicated",
                request(move |task| {
                    let clients = Rc::clone(&dedicated);
                    async move { select_one(&clients[task]).await }
                }),
            ),
        ]
    }
}

mod mysql {
    use super::*;
    use mysql_async::prelude::Queryable;
    use ringpool::clients::mysql::MysqlManager;

    async fn select_one(conn: &mut impl Queryable) {
        let one: Option<u8> = conn.query_first("SELECT 1").await.unwrap();
        assert_eq!(one, Some(1));
    }

    /// The group's functions at `tasks` concurrent tasks.
    pub(super) fn functions(rt: &Runtime, url: &str, tasks: usize) -> Vec<(&'static str, Request)> {
        let ringpool = rt.block_on(async {
            let pool = ringpool::Pool::builder(MysqlManager::from_url(url).unwrap())
                .max_size(POOL_SIZE)
                .build()
                .unwrap();
            pool.warm_up().await.unwrap();
            Rc::new(pool)
        });
        let unreset = rt.block_on(async {
            let manager = MysqlManager::from_url(url).unwrap().reset_on_return(false);
            let pool = ringpool::Pool::builder(manager)
                .max_size(POOL_SIZE)
                .build()
                .unwrap();
            pool.warm_up().await.unwrap();
            Rc::new(pool)
        });
        let opts = mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(url).unwrap())
            .pool_opts(mysql_async::PoolOpts::default().with_constraints(
                mysql_async::PoolConstraints::new(POOL_SIZE, POOL_SIZE).unwrap(),
            ));
        let native = Rc::new(mysql_async::Pool::new(opts));
        let dedicated: Rc<Vec<std::cell::RefCell<Option<mysql_async::Conn>>>> =
            Rc::new(rt.block_on(async {
                let mut conns = Vec::new();
                for _ in 0..tasks {
                    let conn = mysql_async::Conn::from_url(url).await.unwrap();
                    conns.push(std::cell::RefCell::new(Some(conn)));
                }
                conns
            }));
        vec![
            (
                "ringpool",
                request(move |_| {
                    let pool = Rc::clone(&ringpool);
                    async move { select_one(&mut **pool.get().await.unwrap()).await }
                }),
            ),
            (
                "ringpool_no_reset",
                request(move |_| {
                    let pool = Rc::clone(&unreset);
                    async move { select_one(&mut **pool.get().await.unwrap()).await }
                }),
            ),
            (
                "mysql_async_pool",
                request(move |_| {
                    let pool = Rc::clone(&native);
                    async move { select_one(&mut pool.get_conn().await.unwrap()).await }
                }),
            ),
            (
                "dedicated",
                request(move |task| {
                    let conns = Rc::clone(&dedicated);
                    async move {
                        let mut conn = conns[task].borrow_mut().take().expect("one per task");
                        select_one(&mut conn).await;
                        *conns[task].borrow_mut() = Some(conn);
                    }
                }),
            ),
        ]
    }
}

mod redis_get {
    use super::*;
    use redis::AsyncCommands;
    use ringpool::clients::redis::RedisManager;

    async fn get(conn: &mut impl redis::aio::ConnectionLike) {
        let value: String = redis::cmd("GET")
            .arg("key")
            .query_async(conn)
            .await
            .unwrap();
        assert_eq!(value, "value");
    }

    /// The group's functions at `tasks` concurrent tasks.
    pub(super) fn functions(rt: &Runtime, url: &str, tasks: usize) -> Vec<(&'static str, Request)> {
        let client = redis::Client::open(url).unwrap();
        let ringpool = rt.block_on(async {
            let pool = ringpool::Pool::builder(RedisManager::from_url(url).unwrap())
                .max_size(POOL_SIZE)
                .build()
                .unwrap();
            pool.warm_up().await.unwrap();
            {
                let mut conn = pool.get().await.unwrap();
                let () = conn.set("key", "value").await.unwrap();
            }
            Rc::new(pool)
        });
        // Four connections, exclusive and shared: the question of
        // `ringpool_shared` (many requests in flight on each connection)
        // against `ringpool_4` (one at a time) at the same size.
        let ringpool_4 = rt.block_on(async {
            let pool = ringpool::Pool::builder(RedisManager::from_url(url).unwrap())
                .max_size(SHARED_POOL_SIZE)
                .build()
                .unwrap();
            pool.warm_up().await.unwrap();
            Rc::new(pool)
        });
        let shared = rt.block_on(async {
            let manager = RedisManager::from_url(url).unwrap().shared(64);
            let pool = ringpool::shared::SharedPool::builder(manager)
                .max_size(SHARED_POOL_SIZE)
                .build()
                .unwrap();
            // Open the four connections before measuring.
            let leases: Vec<_> = {
                let mut leases = Vec::new();
                for _ in 0..SHARED_POOL_SIZE * 64 {
                    leases.push(pool.get().await.unwrap());
                }
                leases
            };
            drop(leases);
            Rc::new(pool)
        });
        let deadpool = Rc::new(
            deadpool_redis::Config::from_url(url)
                .builder()
                .unwrap()
                .max_size(POOL_SIZE)
                .runtime(deadpool_redis::Runtime::Tokio1)
                .build()
                .unwrap(),
        );
        let bb8 = rt.block_on(async {
            let manager = bb8_redis::RedisConnectionManager::new(url).unwrap();
            Rc::new(
                bb8::Pool::builder()
                    .max_size(POOL_SIZE as u32)
                    .build(manager)
                    .await
                    .unwrap(),
            )
        });
        let dedicated = Rc::new(rt.block_on(async {
            let mut conns = Vec::new();
            for _ in 0..tasks {
                let conn = client.get_multiplexed_async_connection().await.unwrap();
                conns.push(std::cell::RefCell::new(Some(conn)));
            }
            conns
        }));
        vec![
            (
                "ringpool",
                request(move |_| {
                    let pool = Rc::clone(&ringpool);
                    async move { get(&mut *pool.get().await.unwrap()).await }
                }),
            ),
            (
                "ringpool_4",
                request(move |_| {
                    let pool = Rc::clone(&ringpool_4);
                    async move { get(&mut *pool.get().await.unwrap()).await }
                }),
            ),
            (
                "ringpool_shared",
                request(move |_| {
                    let pool = Rc::clone(&shared);
                    async move {
                        let lease = pool.get().await.unwrap();
                        get(&mut (*lease).clone()).await;
                    }
                }),
            ),
            (
                "deadpool_redis",
                request(move |_| {
                    let pool = Rc::clone(&deadpool);
                    async move { get(&mut pool.get().await.unwrap()).await }
                }),
            ),
            (
                "bb8_redis",
                request(move |_| {
                    let pool = Rc::clone(&bb8);
                    async move { get(&mut *pool.get().await.unwrap()).await }
                }),
            ),
            (
                "dedicated",
                request(move |task| {
                    let conns = Rc::clone(&dedicated);
                    async move {
                        // Each task owns its connection: taken for the
                        // request, put back after.
                        let mut conn = conns[task].borrow_mut().take().expect("one per task");
                        get(&mut conn).await;
                        *conns[task].borrow_mut() = Some(conn);
                    }
                }),
            ),
        ]
    }
}

fn clients(c: &mut Criterion) {
    let mut percentiles = Vec::new();
    match servers::find("initdb") {
        None => {
            eprintln!("clients_postgres skipped: initdb not found (apt-get install postgresql)")
        }
        Some(initdb) => {
            let server = servers::Postgres::start(initdb);
            let rt = runtime();
            let url = server.url();
            bench_group(
                c,
                &rt,
                "clients_postgres",
                |tasks| postgres::functions(&rt, &url, tasks),
                &mut percentiles,
            );
        }
    }
    match servers::find("redis-server") {
        None => eprintln!(
            "clients_redis skipped: redis-server not found (apt-get install redis-server)"
        ),
        Some(binary) => {
            let server = servers::Redis::start(binary, &[]);
            let rt = runtime();
            let url = format!("redis://{}/0", server.addr);
            bench_group(
                c,
                &rt,
                "clients_redis",
                |tasks| redis_get::functions(&rt, &url, tasks),
                &mut percentiles,
            );
        }
    }
    match servers::find("mariadbd") {
        None => {
            eprintln!("clients_mysql skipped: mariadbd not found (apt-get install mariadb-server)")
        }
        Some(binary) => {
            let server = servers::Mariadb::start(binary);
            let rt = runtime();
            let url = server.url();
            bench_group(
                c,
                &rt,
                "clients_mysql",
                |tasks| mysql::functions(&rt, &url, tasks),
                &mut percentiles,
            );
        }
    }
    for line in percentiles {
        println!("{line}");
    }
}

criterion_group!(benches, clients);
criterion_main!(benches);

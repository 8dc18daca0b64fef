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
//!   `MysqlManager` (which resets each session on return, a round trip,
//!   in the pool's maintenance task, spawned as its docs say) against `mysql_async_pool`, the pool MySQL users of that client have
//!   today (`mysql_async::Pool`, 16 connections, which also resets on
//!   return), `ringpool_no_reset` (`reset_on_return(false)`, for
//!   applications that keep no session state) and `dedicated`.
//!
//! - groups `clients_postgres_tls` and `clients_redis_tls`: the same
//!   questions over TLS (the servers' certificates from a CA the bench
//!   makes with `rcgen`, verified by every client). ringpool's managers
//!   take a `TlsConnector`; the PostgreSQL peers and `dedicated` run
//!   `tokio-postgres-rustls` over the very same rustls `ClientConfig`; the
//!   Redis peers and `dedicated` the redis crate's own rustls (`rediss://`),
//!   trusting the CA through `SSL_CERT_FILE`. The shared-against-exclusive
//!   question is asked over plain TCP only.
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
#[path = "../tests/test_certs/mod.rs"]
#[allow(unreachable_pub)]
mod test_certs;

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
    use ringpool::tcp::TlsConnector;
    use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
    use tokio_postgres::{NoTls, Socket};

    async fn select_one(client: &tokio_postgres::Client) {
        let messages = client.simple_query("SELECT 1").await.unwrap();
        let one = messages.iter().find_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        });
        assert_eq!(one.as_deref(), Some("1"));
    }

    /// The group's functions at `tasks` concurrent tasks; over TLS when
    /// `tls` is given, every pool with the same rustls configuration (the
    /// peers through `tokio-postgres-rustls`).
    pub(super) fn functions(
        rt: &Runtime,
        url: &str,
        tasks: usize,
        tls: Option<&TlsConnector>,
    ) -> Vec<(&'static str, Request)> {
        let manager = match tls {
            None => PostgresManager::from_url(url).unwrap(),
            Some(connector) => PostgresManager::from_url(&format!("{url}?sslmode=verify-full"))
                .unwrap()
                .tls(connector.clone()),
        };
        let ringpool = rt.block_on(async {
            let pool = ringpool::Pool::builder(manager)
                .max_size(POOL_SIZE)
                .build()
                .unwrap();
            pool.warm_up().await.unwrap();
            Rc::new(pool)
        });
        let mut functions = vec![(
            "ringpool",
            request(move |_| {
                let pool = Rc::clone(&ringpool);
                async move { select_one(&pool.get().await.unwrap()).await }
            }),
        )];
        match tls {
            None => functions.extend(peers(rt, url.parse().unwrap(), NoTls, tasks)),
            Some(connector) => {
                let config = format!("{url}?sslmode=require").parse().unwrap();
                let tls = tokio_postgres_rustls::MakeRustlsConnect::new(
                    connector.config().as_ref().clone(),
                );
                functions.extend(peers(rt, config, tls, tasks));
            }
        }
        functions
    }

    /// deadpool, bb8 and dedicated clients over `tls`.
    fn peers<T>(
        rt: &Runtime,
        config: tokio_postgres::Config,
        tls: T,
        tasks: usize,
    ) -> Vec<(&'static str, Request)>
    where
        T: MakeTlsConnect<Socket> + Clone + Send + Sync + 'static,
        T::Stream: Send + Sync + 'static,
        T::TlsConnect: Send + Sync,
        <T::TlsConnect as TlsConnect<Socket>>::Future: Send,
    {
        let deadpool = {
            let manager = deadpool_postgres::Manager::new(config.clone(), tls.clone());
            Rc::new(
                deadpool_postgres::Pool::builder(manager)
                    .max_size(POOL_SIZE)
                    .build()
                    .unwrap(),
            )
        };
        let bb8 = rt.block_on(async {
            let manager = bb8_postgres::PostgresConnectionManager::new(config.clone(), tls.clone());
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
                let (client, connection) = config.connect(tls.clone()).await.unwrap();
                tokio::spawn(connection);
                clients.push(client);
            }
            clients
        }));
        vec![
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
        // As the manager's docs say to run it: with the maintenance task,
        // which resets returned sessions in the background.
        let pool_of = |manager: MysqlManager| {
            rt.block_on(async {
                let pool = ringpool::Pool::builder(manager)
                    .max_size(POOL_SIZE)
                    .build()
                    .unwrap();
                pool.warm_up().await.unwrap();
                tokio::spawn(pool.maintenance());
                Rc::new(pool)
            })
        };
        let ringpool = pool_of(MysqlManager::from_url(url).unwrap());
        let unreset = pool_of(MysqlManager::from_url(url).unwrap().reset_on_return(false));
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

    /// Where a group's pools connect.
    pub(super) struct Target {
        /// ringpool's URL (`redis://`, with `tls` on a TLS port).
        pub(super) url: String,
        /// The peers' URL (`rediss://` on a TLS port: the redis crate's
        /// rustls, trusting the platform's roots, where the bench put the
        /// test CA).
        pub(super) peers_url: String,
        /// ringpool's TLS connector, trusting the same CA.
        pub(super) tls: Option<ringpool::tcp::TlsConnector>,
    }

    /// The group's functions at `tasks` concurrent tasks. Over TLS, the
    /// shared-against-exclusive question is left out.
    pub(super) fn functions(
        rt: &Runtime,
        target: &Target,
        tasks: usize,
    ) -> Vec<(&'static str, Request)> {
        let url = target.url.as_str();
        let manager = || match &target.tls {
            None => RedisManager::from_url(url).unwrap(),
            Some(connector) => RedisManager::from_url(url).unwrap().tls(connector.clone()),
        };
        let client = redis::Client::open(target.peers_url.as_str()).unwrap();
        let ringpool = rt.block_on(async {
            let pool = ringpool::Pool::builder(manager())
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
        let deadpool = Rc::new(
            deadpool_redis::Config::from_url(target.peers_url.as_str())
                .builder()
                .unwrap()
                .max_size(POOL_SIZE)
                .runtime(deadpool_redis::Runtime::Tokio1)
                .build()
                .unwrap(),
        );
        let bb8 = rt.block_on(async {
            let manager =
                bb8_redis::RedisConnectionManager::new(target.peers_url.as_str()).unwrap();
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
        let mut functions = vec![
            (
                "ringpool",
                request(move |_| {
                    let pool = Rc::clone(&ringpool);
                    async move { get(&mut *pool.get().await.unwrap()).await }
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
        ];
        if target.tls.is_none() {
            functions.extend(shared_question(rt, url));
        }
        functions
    }

    /// Four connections, exclusive and shared: the question of
    /// `ringpool_shared` (many requests in flight on each connection)
    /// against `ringpool_4` (one at a time) at the same size.
    fn shared_question(rt: &Runtime, url: &str) -> Vec<(&'static str, Request)> {
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
        vec![
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
        ]
    }
}

fn clients(c: &mut Criterion) {
    let certs = test_certs::certs();
    // The redis crate's rustls trusts the platform's roots: the test CA is
    // given to it (and to nothing else here) through `SSL_CERT_FILE`.
    let ca_file =
        std::env::temp_dir().join(format!("ringpool-bench-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, &certs.ca_pem).unwrap();
    // SAFETY: no other thread runs yet (no runtime has been built), so
    // nothing reads the environment concurrently.
    unsafe { std::env::set_var("SSL_CERT_FILE", &ca_file) };
    let mut percentiles = Vec::new();
    match servers::find("initdb") {
        None => {
            eprintln!("clients_postgres skipped: initdb not found (apt-get install postgresql)")
        }
        Some(initdb) => {
            let server = servers::Postgres::start(initdb.clone());
            let rt = runtime();
            let url = server.url();
            bench_group(
                c,
                &rt,
                "clients_postgres",
                |tasks| postgres::functions(&rt, &url, tasks, None),
                &mut percentiles,
            );
            drop(server);
            let server = servers::Postgres::start_tls(initdb, &certs.cert_pem, &certs.key_pem);
            let url = server.url();
            let connector = test_certs::connector();
            bench_group(
                c,
                &rt,
                "clients_postgres_tls",
                |tasks| postgres::functions(&rt, &url, tasks, Some(&connector)),
                &mut percentiles,
            );
        }
    }
    match servers::find("redis-server") {
        None => eprintln!(
            "clients_redis skipped: redis-server not found (apt-get install redis-server)"
        ),
        Some(binary) => {
            let server = servers::Redis::start(binary.clone(), &[]);
            let rt = runtime();
            let url = format!("redis://{}/0", server.addr);
            let plain = redis_get::Target {
                url: url.clone(),
                peers_url: url,
                tls: None,
            };
            bench_group(
                c,
                &rt,
                "clients_redis",
                |tasks| redis_get::functions(&rt, &plain, tasks),
                &mut percentiles,
            );
            drop(server);
            let (_server, tls_port) = servers::Redis::start_tls(
                binary,
                &certs.cert_pem,
                &certs.key_pem,
                &certs.ca_pem,
                false,
            );
            let tls = redis_get::Target {
                url: format!("redis://127.0.0.1:{tls_port}/0"),
                peers_url: format!("rediss://127.0.0.1:{tls_port}/0"),
                tls: Some(test_certs::connector()),
            };
            bench_group(
                c,
                &rt,
                "clients_redis_tls",
                |tasks| redis_get::functions(&rt, &tls, tasks),
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

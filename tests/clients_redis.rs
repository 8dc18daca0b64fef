//! The Redis manager against a real `redis-server`: commands through the
//! pool with reuse counted by the server (`INFO stats`), a restart under
//! load, and idle connections the server kills. A missing server is
//! reported as not run, or failed under `RINGPOOL_REQUIRE_SERVERS=1`.

mod clients_common;
mod servers;

use std::path::PathBuf;
use std::sync::Arc;

use std::sync::atomic::Ordering;

use ringpool::Pool;
use ringpool::clients::redis::{RedisManager, SharedRedisManager};
use ringpool::shared::SharedPool;
use servers::{Redis, ServerTest};

fn main() {
    servers::run(vec![
        ServerTest {
            name: "commands_through_the_pool_reuse_its_connections",
            needs: "redis-server",
            run: commands_through_the_pool_reuse_its_connections,
        },
        ServerTest {
            name: "a_restart_under_load_hands_out_no_dead_connection",
            needs: "redis-server",
            run: a_restart_under_load_hands_out_no_dead_connection,
        },
        ServerTest {
            name: "idle_connections_the_server_kills_are_reaped_and_never_handed_out",
            needs: "redis-server",
            run: idle_connections_the_server_kills_are_reaped_and_never_handed_out,
        },
        ServerTest {
            name: "shared_connections_carry_many_callers_commands_at_once",
            needs: "redis-server",
            run: shared_connections_carry_many_callers_commands_at_once,
        },
        ServerTest {
            name: "a_shared_connection_the_server_kills_is_replaced",
            needs: "redis-server",
            run: a_shared_connection_the_server_kills_is_replaced,
        },
    ])
}

use clients_common::runtime;

fn pool(redis: &Redis, max: usize) -> Arc<Pool<RedisManager>> {
    clients_common::pool(
        RedisManager::from_url(&format!("redis://{}/0", redis.addr)).unwrap(),
        max,
    )
}

async fn incr(pool: &Pool<RedisManager>) -> Result<i64, String> {
    let mut conn = pool.get().await.map_err(|error| error.to_string())?;
    redis::cmd("INCR")
        .arg("counter")
        .query_async(&mut *conn)
        .await
        .map_err(|error| error.to_string())
}

fn commands_through_the_pool_reuse_its_connections(binary: PathBuf) {
    let redis = Redis::start(binary, &[]);
    let before = redis.info_number("stats", "total_connections_received");
    runtime().block_on(async {
        let pool = pool(&redis, 4);
        let tasks: Vec<_> = (0..16)
            .map(|task| {
                let pool = Arc::clone(&pool);
                tokio::spawn(async move {
                    for i in 0..50 {
                        let mut conn = pool.get().await.unwrap();
                        let key = format!("key-{task}-{i}");
                        let () = redis::cmd("SET")
                            .arg(&key)
                            .arg(i)
                            .query_async(&mut *conn)
                            .await
                            .unwrap();
                        let value: i64 = redis::cmd("GET")
                            .arg(&key)
                            .query_async(&mut *conn)
                            .await
                            .unwrap();
                        assert_eq!(value, i);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let stats = pool.stats();
        assert!(stats.connects <= 4, "{stats:?}");
        assert!(stats.reused >= 800 - 4, "{stats:?}");
        pool.close();
    });
    // The server's own count: the pool's connections, and the INFO
    // connections this test made.
    let received = redis.info_number("stats", "total_connections_received") - before;
    assert!(
        received <= 4 + 1,
        "800 checkouts were served by at most 4 connections: the server accepted {received}"
    );
}

fn a_restart_under_load_hands_out_no_dead_connection(binary: PathBuf) {
    let redis = std::sync::Mutex::new(Redis::start(binary, &[]));
    let rt = runtime();
    let pool = rt.block_on(async { pool(&redis.lock().unwrap(), 8) });
    let recovery = clients_common::through_restart(
        &rt,
        8,
        {
            let pool = Arc::clone(&pool);
            move || {
                let pool = Arc::clone(&pool);
                async move { incr(&pool).await.map(drop) }
            }
        },
        || redis.lock().unwrap().kill(),
        || redis.lock().unwrap().restart(),
    );
    eprintln!("{recovery:?}");
    assert_eq!(
        recovery.errors_after, 0,
        "no command started after the first success failed: {recovery:?}"
    );
    pool.close();
}

fn idle_connections_the_server_kills_are_reaped_and_never_handed_out(binary: PathBuf) {
    let redis = Redis::start(binary, &[]);
    runtime().block_on(async {
        let pool = pool(&redis, 4);
        clients_common::open_at_once(&pool, 4).await;
        assert_eq!(pool.status().idle, 4);
        let reply = redis.command(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
        assert!(reply.starts_with(":4"), "four clients killed: {reply}");
        clients_common::until_reaped(&pool).await;
        assert_eq!(pool.stats().closed.hangup, 4, "{:?}", pool.stats());
        for expected in 1..=200 {
            assert_eq!(incr(&pool).await.unwrap(), expected);
        }
        pool.close();
    });
}

fn shared_pool(redis: &Redis, max: usize, in_flight: usize) -> SharedPool<SharedRedisManager> {
    let manager = RedisManager::from_url(&format!("redis://{}/0", redis.addr))
        .unwrap()
        .shared(in_flight);
    SharedPool::builder(manager).max_size(max).build().unwrap()
}

fn shared_connections_carry_many_callers_commands_at_once(binary: PathBuf) {
    let redis = Redis::start(binary, &[]);
    let before = redis.info_number("stats", "total_connections_received");
    runtime().block_on(async {
        let pool = shared_pool(&redis, 2, 32);
        let most_at_once = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..64)
            .map(|task| {
                let (pool, most_at_once) = (pool.clone(), Arc::clone(&most_at_once));
                tokio::spawn(async move {
                    for i in 0..50 {
                        let lease = pool.get().await.unwrap();
                        most_at_once.fetch_max(pool.stats().in_flight, Ordering::Relaxed);
                        let mut conn = (*lease).clone();
                        let key = format!("shared-{task}-{i}");
                        let () = redis::cmd("SET")
                            .arg(&key)
                            .arg(i)
                            .query_async(&mut conn)
                            .await
                            .unwrap();
                        let value: i64 = redis::cmd("GET")
                            .arg(&key)
                            .query_async(&mut conn)
                            .await
                            .unwrap();
                        assert_eq!(value, i, "each caller gets its own reply");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let stats = pool.stats();
        assert_eq!(
            stats.connects, 2,
            "64 callers on 2 connections of 32: {stats:?}"
        );
        assert_eq!((stats.in_flight, stats.waiting), (0, 0), "{stats:?}");
        assert!(
            most_at_once.load(Ordering::Relaxed) > 2,
            "more requests in flight than connections"
        );
    });
    let received = redis.info_number("stats", "total_connections_received") - before;
    assert!(
        received <= 2 + 1,
        "the server accepted {received} connections for 2 shared ones"
    );
}

fn a_shared_connection_the_server_kills_is_replaced(binary: PathBuf) {
    let redis = Redis::start(binary, &[]);
    runtime().block_on(async {
        let pool = shared_pool(&redis, 1, 8);
        let lease = pool.get().await.unwrap();
        let () = redis::cmd("SET")
            .arg("k")
            .arg("v")
            .query_async(&mut (*lease).clone())
            .await
            .unwrap();
        drop(lease);
        let reply = redis.command(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
        assert!(reply.starts_with(":1"), "one client killed: {reply}");
        // The driver task sees the close; until then a get may still take
        // the old connection, and its command fails: bounded.
        let mut attempts = 0;
        let value: String = loop {
            attempts += 1;
            assert!(attempts < 1000, "never replaced: {:?}", pool.stats());
            let lease = pool.get().await.unwrap();
            match redis::cmd("GET")
                .arg("k")
                .query_async(&mut (*lease).clone())
                .await
            {
                Ok(value) => break value,
                Err(_) => tokio::task::yield_now().await,
            }
        };
        assert_eq!(value, "v");
        let stats = pool.stats();
        assert_eq!((stats.connects, stats.drained_closed), (2, 1), "{stats:?}");
        assert_eq!(stats.open, 1);
    });
}

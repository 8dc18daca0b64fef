//! The PostgreSQL manager against a real server (Debian's `postgresql`, a
//! private cluster on loopback): queries through the pool, a fast restart
//! under load, backends terminated by the server, and sessions given back
//! mid-transaction (rolled back and reused, or closed). A missing server is reported as not run, or failed
//! under `RINGPOOL_REQUIRE_SERVERS=1`.

mod clients_common;
mod servers;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringpool::clients::postgres::{PostgresManager, TransactionStatus};
use ringpool::{Pool, SendManager};
use servers::{Postgres, ServerTest};

fn main() {
    servers::run(vec![
        ServerTest {
            name: "queries_through_the_pool_reuse_its_connections",
            needs: "initdb",
            run: queries_through_the_pool_reuse_its_connections,
        },
        ServerTest {
            name: "a_fast_restart_under_load_hands_out_no_dead_client",
            needs: "initdb",
            run: a_fast_restart_under_load_hands_out_no_dead_client,
        },
        ServerTest {
            name: "terminated_backends_are_never_handed_out",
            needs: "initdb",
            run: terminated_backends_are_never_handed_out,
        },
        ServerTest {
            name: "a_session_given_back_mid_transaction_is_rolled_back_and_reused",
            needs: "initdb",
            run: a_session_given_back_mid_transaction_is_rolled_back_and_reused,
        },
        ServerTest {
            name: "maintenance_rolls_back_at_once_and_closing_stays_an_option",
            needs: "initdb",
            run: maintenance_rolls_back_at_once_and_closing_stays_an_option,
        },
    ])
}

use clients_common::runtime;

/// The `application_name` of the pool's sessions, so the server's view
/// of them leaves out everything else (a readiness probe's backend still
/// exiting on a loaded machine was once counted as the pool's).
const POOL_APP: &str = "ringpool_test_pool";

fn pool(server: &Postgres, max: usize) -> Arc<Pool<PostgresManager>> {
    let url = format!("{}?application_name={POOL_APP}", server.url());
    clients_common::pool(PostgresManager::from_url(&url).unwrap(), max)
}

/// A session of the test's own, outside the pool, for what only the
/// server knows.
async fn admin(server: &Postgres) -> tokio_postgres::Client {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match tokio_postgres::connect(&server.url(), tokio_postgres::NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(connection);
                return client;
            }
            Err(error) if Instant::now() < deadline => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(error) => panic!("the server never accepted a login: {error}"),
        }
    }
}

/// Backend pids of the pool's sessions.
async fn pool_backends(admin: &tokio_postgres::Client) -> Vec<i32> {
    admin
        .query(
            "SELECT pid FROM pg_stat_activity \
             WHERE backend_type = 'client backend' AND application_name = $1",
            &[&POOL_APP],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Sessions sitting idle inside a transaction.
async fn idle_in_transaction(admin: &tokio_postgres::Client) -> i64 {
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

async fn select_one<M>(pool: &Pool<M>) -> Result<(), String>
where
    M: SendManager<Connection = ringpool::clients::postgres::PostgresConn>,
{
    let conn = pool.get().await.map_err(|error| error.to_string())?;
    let row = conn
        .query_one("SELECT 1", &[])
        .await
        .map_err(|error| error.to_string())?;
    match row.get::<_, i32>(0) {
        1 => Ok(()),
        other => Err(format!("SELECT 1 returned {other}")),
    }
}

fn queries_through_the_pool_reuse_its_connections(initdb: PathBuf) {
    let server = Postgres::start(initdb);
    runtime().block_on(async {
        let admin = admin(&server).await;
        let pool = pool(&server, 4);
        let tasks: Vec<_> = (0..16)
            .map(|task| {
                let pool = Arc::clone(&pool);
                tokio::spawn(async move {
                    for i in 0..50 {
                        let conn = pool.get().await.unwrap();
                        let row = conn
                            .query_one("SELECT $1::int * 2", &[&(task * 100 + i)])
                            .await
                            .unwrap();
                        assert_eq!(row.get::<_, i32>(0), (task * 100 + i) * 2);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let stats = pool.stats();
        assert!(stats.connects <= 4, "at most max_size dials: {stats:?}");
        assert!(stats.reused >= 800 - 4, "{stats:?}");
        assert!(
            pool_backends(&admin).await.len() <= 4,
            "the server sees no more sessions than the pool's cap"
        );
        pool.close();
    });
}

fn a_fast_restart_under_load_hands_out_no_dead_client(initdb: PathBuf) {
    let server = std::sync::Mutex::new(Postgres::start(initdb));
    let rt = runtime();
    let pool = rt.block_on(async { pool(&server.lock().unwrap(), 8) });
    let recovery = clients_common::through_restart(
        &rt,
        8,
        {
            let pool = Arc::clone(&pool);
            move || {
                let pool = Arc::clone(&pool);
                async move { select_one(&pool).await }
            }
        },
        || server.lock().unwrap().stop_fast(),
        || server.lock().unwrap().restart(),
    );
    eprintln!("{recovery:?}");
    assert_eq!(
        recovery.errors_after, 0,
        "no query started after the first success failed: {recovery:?}"
    );
    pool.close();
}

fn terminated_backends_are_never_handed_out(initdb: PathBuf) {
    let server = Postgres::start(initdb);
    runtime().block_on(async {
        let admin = admin(&server).await;
        let pool = pool(&server, 4);
        // Four idle sessions, known to the server.
        clients_common::open_at_once(&pool, 4).await;
        let pids = pool_backends(&admin).await;
        assert_eq!(pids.len(), 4);
        for pid in &pids {
            let row = admin
                .query_one("SELECT pg_terminate_backend($1)", &[pid])
                .await
                .unwrap();
            assert!(row.get::<_, bool>(0));
        }
        // The server ends each backend on its own time: wait until it has.
        let deadline = Instant::now() + Duration::from_secs(10);
        while pool_backends(&admin)
            .await
            .iter()
            .any(|pid| pids.contains(pid))
        {
            assert!(Instant::now() < deadline, "the backends never exited");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Reaped by the watch with no get asking, their slots freed...
        clients_common::until_reaped(&pool).await;
        assert_eq!(pool.stats().closed.hangup, 4, "{:?}", pool.stats());
        // ...and never handed out: every query after succeeds.
        for _ in 0..200 {
            select_one(&pool).await.unwrap();
        }
        pool.close();
    });
}

fn a_session_given_back_mid_transaction_is_rolled_back_and_reused(initdb: PathBuf) {
    let server = Postgres::start(initdb);
    runtime().block_on(async {
        let admin = admin(&server).await;
        let pool = pool(&server, 1);
        admin
            .batch_execute("CREATE TABLE ledger (amount int)")
            .await
            .unwrap();
        let conn = pool.get().await.unwrap();
        conn.batch_execute("SELECT 1").await.unwrap();
        drop(conn);
        let before = pool_backends(&admin).await;
        assert_eq!(before.len(), 1, "{before:?}");

        // A user who begins a transaction by hand and drops the guard.
        let conn = pool.get().await.unwrap();
        conn.batch_execute("BEGIN; INSERT INTO ledger VALUES (1)")
            .await
            .unwrap();
        assert_eq!(conn.transaction_status(), TransactionStatus::InTransaction);
        drop(conn);
        // The next get rolls it back (the pool has no maintenance task
        // here) and gets the same session, idle.
        let conn = pool.get().await.unwrap();
        assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
        drop(conn);

        // A `Transaction` dropped without commit, and a failed transaction.
        let mut conn = pool.get().await.unwrap();
        let transaction = conn.transaction().await.unwrap();
        transaction
            .execute("INSERT INTO ledger VALUES (2)", &[])
            .await
            .unwrap();
        drop(transaction);
        drop(conn);
        let conn = pool.get().await.unwrap();
        conn.batch_execute("BEGIN; INSERT INTO ledger VALUES (5)")
            .await
            .unwrap();
        assert!(conn.batch_execute("SELECT 1/0").await.is_err());
        // The error reaches the caller before the `ReadyForQuery` that says
        // `Failed` has passed the reader; either way the session is inside
        // a transaction.
        assert!(
            matches!(
                conn.transaction_status(),
                TransactionStatus::Failed | TransactionStatus::InTransaction
            ),
            "{:?}",
            conn.transaction_status()
        );
        drop(conn);

        // A committed one is kept, and the next user's statements commit.
        let mut conn = pool.get().await.unwrap();
        assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
        let transaction = conn.transaction().await.unwrap();
        transaction
            .execute("INSERT INTO ledger VALUES (3)", &[])
            .await
            .unwrap();
        transaction.commit().await.unwrap();
        conn.execute("INSERT INTO ledger VALUES (4)", &[])
            .await
            .unwrap();
        drop(conn);
        let rows = admin
            .query("SELECT amount FROM ledger ORDER BY amount", &[])
            .await
            .unwrap();
        let amounts: Vec<i32> = rows.iter().map(|row| row.get(0)).collect();
        assert_eq!(amounts, vec![3, 4], "nothing of the abandoned ones is left");

        // One backend all along: rolled back and reused, never closed.
        let stats = pool.stats();
        assert_eq!(pool_backends(&admin).await, before, "{stats:?}");
        assert_eq!((stats.connects, stats.closed_total()), (1, 0), "{stats:?}");
        assert!(stats.recycled >= 2, "{stats:?}");
        assert_eq!(stats.recycle_failures, 0, "{stats:?}");
        // No session sits idle in a transaction.
        let stuck: i64 = idle_in_transaction(&admin).await;
        assert_eq!(stuck, 0);
        pool.close();
    });
}

fn maintenance_rolls_back_at_once_and_closing_stays_an_option(initdb: PathBuf) {
    let server = Postgres::start(initdb);
    runtime().block_on(async {
        let admin = admin(&server).await;
        // With maintenance running (the shared pool runs it), the rollback
        // does not wait for a get.
        let pool = pool(&server, 2);
        let conn = pool.get().await.unwrap();
        conn.batch_execute("BEGIN; SELECT 1").await.unwrap();
        drop(conn);
        let deadline = Instant::now() + Duration::from_secs(10);
        while pool.status().idle != 1 {
            assert!(
                Instant::now() < deadline,
                "never rolled back: {:?}",
                pool.stats()
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let stuck: i64 = idle_in_transaction(&admin).await;
        assert_eq!(stuck, 0, "rolled back while idle, not at the next get");
        assert_eq!(pool.stats().recycled, 1);
        pool.close();

        // Closing instead, when asked.
        let url = format!("{}?application_name={POOL_APP}", server.url());
        let manager = PostgresManager::from_url(&url)
            .unwrap()
            .rollback_on_return(false);
        let pool = clients_common::pool(manager, 1);
        let conn = pool.get().await.unwrap();
        conn.batch_execute("BEGIN; SELECT 1").await.unwrap();
        let pid: i32 = conn
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        drop(conn);
        assert_eq!(pool.stats().closed.abandoned, 1);
        let deadline = Instant::now() + Duration::from_secs(10);
        while pool_backends(&admin).await.contains(&pid) {
            assert!(Instant::now() < deadline, "the abandoned backend stayed");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        pool.close();
    });
}

//! The PostgreSQL manager against a real server (Debian's `postgresql`, a
//! private cluster on loopback): queries through the pool, a fast restart
//! under load, backends terminated by the server, and sessions given back
//! mid-transaction. A missing server is reported as not run, or failed
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
            name: "a_session_given_back_mid_transaction_is_never_reused",
            needs: "initdb",
            run: a_session_given_back_mid_transaction_is_never_reused,
        },
    ])
}

use clients_common::runtime;

fn pool(server: &Postgres, max: usize) -> Arc<Pool<PostgresManager>> {
    clients_common::pool(PostgresManager::from_url(&server.url()).unwrap(), max)
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

/// Backend pids of the pool's sessions (everything but `admin`'s own).
async fn pool_backends(admin: &tokio_postgres::Client) -> Vec<i32> {
    admin
        .query(
            "SELECT pid FROM pg_stat_activity \
             WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
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
        let held: Vec<_> = futures_util::future::join_all((0..4).map(|_| pool.get()))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        drop(held);
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

fn a_session_given_back_mid_transaction_is_never_reused(initdb: PathBuf) {
    let server = Postgres::start(initdb);
    runtime().block_on(async {
        let admin = admin(&server).await;
        let pool = pool(&server, 1);
        admin
            .batch_execute("CREATE TABLE ledger (amount int)")
            .await
            .unwrap();

        // A user who begins a transaction by hand and drops the guard.
        let conn = pool.get().await.unwrap();
        conn.batch_execute("BEGIN; INSERT INTO ledger VALUES (1)")
            .await
            .unwrap();
        assert_eq!(conn.transaction_status(), TransactionStatus::InTransaction);
        drop(conn);
        assert_eq!(pool.stats().closed.abandoned, 1, "{:?}", pool.stats());

        // A `Transaction` dropped without commit: its rollback is queued.
        // The session is closed, unless the rollback already ran when it
        // came back (then it is idle, and rightly reused).
        let mut conn = pool.get().await.unwrap();
        assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
        let transaction = conn.transaction().await.unwrap();
        transaction
            .execute("INSERT INTO ledger VALUES (2)", &[])
            .await
            .unwrap();
        drop(transaction);
        drop(conn);
        let abandoned = pool.stats().closed.abandoned;
        assert!(matches!(abandoned, 1 | 2), "{:?}", pool.stats());

        // A committed one is reused.
        let mut conn = pool.get().await.unwrap();
        assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
        let transaction = conn.transaction().await.unwrap();
        transaction
            .execute("INSERT INTO ledger VALUES (3)", &[])
            .await
            .unwrap();
        transaction.commit().await.unwrap();
        drop(conn);
        let conn = pool.get().await.unwrap();
        assert_eq!(
            pool.stats().closed.abandoned,
            abandoned,
            "{:?}",
            pool.stats()
        );
        assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
        // The next user's statements commit on their own: nothing of the
        // abandoned transactions is left.
        conn.execute("INSERT INTO ledger VALUES (4)", &[])
            .await
            .unwrap();
        drop(conn);
        let rows = admin
            .query("SELECT amount FROM ledger ORDER BY amount", &[])
            .await
            .unwrap();
        let amounts: Vec<i32> = rows.iter().map(|row| row.get(0)).collect();
        assert_eq!(amounts, vec![3, 4]);
        // No session sits idle in a transaction.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let stuck: i64 = admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if stuck == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{stuck} sessions idle in a transaction"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        pool.close();
    });
}

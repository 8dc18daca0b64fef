//! The MySQL manager against a real MariaDB (Debian's `mariadb-server`, a
//! private data directory on a loopback port): queries through the pool
//! counted by the server, sessions reset on return (and not, when asked),
//! and a connection the server killed while idle found by the ping and
//! replaced. A missing server is reported as not run, or failed under
//! `RINGPOOL_REQUIRE_SERVERS=1`.

mod clients_common;
mod servers;
mod test_certs;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use ringpool::Pool;
use ringpool::clients::mysql::MysqlManager;
use servers::{Mariadb, ServerTest};

use clients_common::runtime;

fn main() {
    servers::run(vec![
        ServerTest {
            name: "queries_through_the_pool_reuse_its_connections",
            needs: "mariadbd",
            run: queries_through_the_pool_reuse_its_connections,
        },
        ServerTest {
            name: "a_session_is_reset_on_return_unless_asked_not_to",
            needs: "mariadbd",
            run: a_session_is_reset_on_return_unless_asked_not_to,
        },
        ServerTest {
            name: "sessions_over_tls_are_encrypted_and_plain_ones_refused",
            needs: "mariadbd",
            run: sessions_over_tls_are_encrypted_and_plain_ones_refused,
        },
        ServerTest {
            name: "a_connection_killed_while_idle_is_found_by_the_ping_and_replaced",
            needs: "mariadbd",
            run: a_connection_killed_while_idle_is_found_by_the_ping_and_replaced,
        },
    ])
}

/// A session of the test's own, outside the pool.
async fn admin(server: &Mariadb) -> mysql_async::Conn {
    mysql_async::Conn::new(mysql_async::Opts::from_url(&server.url()).unwrap())
        .await
        .expect("the server accepts root")
}

/// Connections the server has accepted since it started.
async fn accepted(admin: &mut mysql_async::Conn) -> u64 {
    let row: Option<(String, u64)> = admin
        .query_first("SHOW GLOBAL STATUS LIKE 'Connections'")
        .await
        .unwrap();
    row.unwrap().1
}

fn queries_through_the_pool_reuse_its_connections(mariadbd: PathBuf) {
    let server = Mariadb::start(mariadbd);
    runtime().block_on(async {
        let mut admin = admin(&server).await;
        let before = accepted(&mut admin).await;
        let pool = clients_common::pool(MysqlManager::from_url(&server.url()).unwrap(), 4);
        let tasks: Vec<_> = (0..16)
            .map(|task| {
                let pool = Arc::clone(&pool);
                tokio::spawn(async move {
                    for round in 0..25i64 {
                        let mut conn = pool.get().await.unwrap();
                        let sum: Option<i64> = conn
                            .exec_first("SELECT ? + ?", (task, round))
                            .await
                            .unwrap();
                        assert_eq!(sum, Some(task + round));
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let dialed = accepted(&mut admin).await - before;
        let stats = pool.stats();
        assert!(
            dialed <= 4,
            "{dialed} connections for 400 queries: {stats:?}"
        );
        assert_eq!(stats.connects, dialed, "{stats:?}");
        assert_eq!(stats.recycle_failures, 0, "{stats:?}");
        pool.close();
    });
}

fn a_session_is_reset_on_return_unless_asked_not_to(mariadbd: PathBuf) {
    let server = Mariadb::start(mariadbd);
    runtime().block_on(async {
        let mut admin = admin(&server).await;
        admin
            .query_drop("CREATE DATABASE app; CREATE TABLE app.ledger (amount INT) ENGINE=InnoDB")
            .await
            .unwrap();
        let pool = clients_common::pool(MysqlManager::from_url(&server.url()).unwrap(), 1);
        let mut conn = pool.get().await.unwrap();
        let id = conn.id();
        conn.query_drop("SET @marker = 42").await.unwrap();
        conn.query_drop("START TRANSACTION").await.unwrap();
        conn.query_drop("INSERT INTO app.ledger VALUES (1)")
            .await
            .unwrap();
        drop(conn); // given back mid-transaction, a variable set
        let mut conn = pool.get().await.unwrap();
        assert_eq!(conn.id(), id, "the same session, reset, not redialed");
        let marker: Option<Option<i64>> = conn.query_first("SELECT @marker").await.unwrap();
        assert_eq!(marker, Some(None), "user variables are gone");
        drop(conn);
        let rows: Option<i64> = admin
            .query_first("SELECT COUNT(*) FROM app.ledger")
            .await
            .unwrap();
        assert_eq!(rows, Some(0), "the open transaction was rolled back");
        let stats = pool.stats();
        assert!(stats.recycled >= 1, "{stats:?}");
        assert_eq!((stats.connects, stats.closed_total()), (1, 0), "{stats:?}");
        pool.close();

        // Kept as it is, when asked.
        let manager = MysqlManager::from_url(&server.url())
            .unwrap()
            .reset_on_return(false);
        let pool = clients_common::pool(manager, 1);
        let mut conn = pool.get().await.unwrap();
        conn.query_drop("SET @marker = 7").await.unwrap();
        drop(conn);
        let mut conn = pool.get().await.unwrap();
        let marker: Option<i64> = conn.query_first("SELECT @marker").await.unwrap();
        assert_eq!(marker, Some(7));
        assert_eq!(pool.stats().recycled, 0);
    });
}

fn a_connection_killed_while_idle_is_found_by_the_ping_and_replaced(mariadbd: PathBuf) {
    let server = Mariadb::start(mariadbd);
    runtime().block_on(async {
        let mut admin = admin(&server).await;
        let pool = Pool::builder(
            MysqlManager::from_url(&server.url())
                .unwrap()
                .reset_on_return(false),
        )
        .max_size(1)
        .ping_after(Some(Duration::ZERO))
        .acquire_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
        let conn = pool.get().await.unwrap();
        let id = conn.id();
        drop(conn);
        admin.query_drop(format!("KILL {id}")).await.unwrap();
        let mut conn = pool.get().await.unwrap();
        assert_ne!(conn.id(), id, "the killed session was never handed out");
        let one: Option<i64> = conn.query_first("SELECT 1").await.unwrap();
        assert_eq!(one, Some(1));
        drop(conn);
        let stats = pool.stats();
        assert_eq!(stats.health_check_failures, 1, "{stats:?}");
        assert_eq!(stats.connects, 2, "{stats:?}");
    });
}

fn sessions_over_tls_are_encrypted_and_plain_ones_refused(mariadbd: PathBuf) {
    let certs = test_certs::certs();
    let server = Mariadb::start_tls(mariadbd, &certs.cert_pem, &certs.key_pem);
    runtime().block_on(async {
        // mysql_async's own TLS, from the URL: encrypt, trust the test CA
        // by not verifying it (its roots are its own, not ringpool's).
        let url = format!(
            "{}&require_ssl=true&verify_ca=false&verify_identity=false",
            server.url()
        );
        let pool = clients_common::pool(MysqlManager::from_url(&url).unwrap(), 2);
        for _ in 0..20 {
            let mut conn = pool.get().await.unwrap();
            let cipher: Option<(String, String)> = conn
                .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
                .await
                .unwrap();
            let cipher = cipher.unwrap().1;
            assert!(!cipher.is_empty(), "a plain session");
        }
        let stats = pool.stats();
        assert!(stats.connects <= 2, "{stats:?}");
        pool.close();
        // The server requires TLS: a plain login is refused by the server,
        // and that is fatal (MariaDB answers it as access denied).
        let plain = clients_common::pool(MysqlManager::from_url(&server.url()).unwrap(), 1);
        let error = clients_common::refused_at_once(&plain).await;
        let cause = error.connect_error().unwrap();
        assert!(
            matches!(
                cause,
                ringpool::clients::mysql::MysqlError::Mysql(mysql_async::Error::Server(_))
            ),
            "{cause:?}"
        );
    });
}

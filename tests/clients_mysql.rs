//! The MySQL manager against a real MariaDB (Debian's `mariadb-server`, a
//! private data directory on a loopback port): queries through the pool
//! counted by the server, sessions reset on return (and not, when asked),
//! a connection the server killed while idle found by the ping and
//! replaced; over TLS (`require_secure_transport`): the server's
//! certificate verified against the test CA, certificates for another
//! name or expired refused at once naming why, a restart under load, and
//! mutual TLS (a user `REQUIRE X509`). A missing server is reported as not run, or failed under
//! `RINGPOOL_REQUIRE_SERVERS=1`.

mod clients_common;
mod servers;
mod test_certs;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{ClientIdentity, Opts, OptsBuilder, SslOpts};
use ringpool::Pool;
use ringpool::clients::mysql::{MysqlError, MysqlManager};
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
        ServerTest {
            name: "certificates_for_another_name_or_expired_are_refused_at_once_naming_why",
            needs: "mariadbd",
            run: certificates_for_another_name_or_expired_are_refused_at_once_naming_why,
        },
        ServerTest {
            name: "a_restart_under_load_over_tls_fails_no_query_after_the_first_success",
            needs: "mariadbd",
            run: a_restart_under_load_over_tls_fails_no_query_after_the_first_success,
        },
        ServerTest {
            name: "mutual_tls_is_accepted_with_the_client_certificate_and_refused_without",
            needs: "mariadbd",
            run: mutual_tls_is_accepted_with_the_client_certificate_and_refused_without,
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

/// A manager for `user` on `server` over TLS, verifying the server's
/// certificate against the test CA (name and dates included), showing
/// `client` as its certificate when given.
fn verified(server: &Mariadb, user: &str, client: Option<&test_certs::Issued>) -> MysqlManager {
    let pem = |text: &str| text.as_bytes().to_vec().into();
    let mut ssl = SslOpts::default().with_root_certs(vec![pem(&test_certs::certs().ca_pem)]);
    if let Some(client) = client {
        ssl = ssl.with_client_identity(Some(ClientIdentity::new(
            pem(&client.cert_pem),
            pem(&client.key_pem),
        )));
    }
    let opts = OptsBuilder::from_opts(Opts::from_url(&server.url_for(user)).unwrap()).ssl_opts(ssl);
    MysqlManager::new(opts.into())
}

/// The test's own session on a server that requires TLS.
async fn admin_tls(server: &Mariadb) -> mysql_async::Conn {
    let url = format!(
        "{}&require_ssl=true&verify_ca=false&verify_identity=false",
        server.url()
    );
    mysql_async::Conn::new(Opts::from_url(&url).unwrap())
        .await
        .expect("the server accepts root over TLS")
}

async fn cipher(conn: &mut mysql_async::Conn) -> String {
    let cipher: Option<(String, String)> = conn
        .query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .await
        .unwrap();
    cipher.unwrap().1
}

fn sessions_over_tls_are_encrypted_and_plain_ones_refused(mariadbd: PathBuf) {
    let certs = test_certs::certs();
    let server = Mariadb::start_tls(mariadbd, &certs.cert_pem, &certs.key_pem);
    runtime().block_on(async {
        // The server's certificate checked against the test CA, its name
        // (127.0.0.1) and dates included.
        let pool = clients_common::pool(verified(&server, "root", None), 2);
        for _ in 0..20 {
            let mut conn = pool.get().await.unwrap();
            assert!(!cipher(&mut conn).await.is_empty(), "a plain session");
        }
        let stats = pool.stats();
        assert!(stats.connects <= 2, "{stats:?}");
        pool.close();
        // Encrypted without checking the certificate, from the URL alone.
        let url = format!(
            "{}&require_ssl=true&verify_ca=false&verify_identity=false",
            server.url()
        );
        let pool = clients_common::pool(MysqlManager::from_url(&url).unwrap(), 1);
        assert!(!cipher(&mut pool.get().await.unwrap()).await.is_empty());
        pool.close();
        // The server requires TLS: a plain login is refused by the server,
        // and that is fatal (MariaDB answers it as access denied).
        let plain = clients_common::pool(MysqlManager::from_url(&server.url()).unwrap(), 1);
        let error = clients_common::refused_at_once(&plain).await;
        let cause = error.connect_error().unwrap();
        assert!(
            matches!(cause, MysqlError::Mysql(mysql_async::Error::Server(_))),
            "{cause:?}"
        );
    });
}

fn certificates_for_another_name_or_expired_are_refused_at_once_naming_why(mariadbd: PathBuf) {
    let certs = test_certs::certs();
    for (issued, says, fix) in [
        (&certs.wrong_name, "other.example", "SslOpts"),
        (&certs.expired, "expired", "renew it"),
    ] {
        let server = Mariadb::start_tls(mariadbd.clone(), &issued.cert_pem, &issued.key_pem);
        runtime().block_on(async {
            let pool = clients_common::pool(verified(&server, "root", None), 1);
            let error = clients_common::refused_at_once(&pool).await;
            let cause = error.connect_error().expect("the dial's own error");
            assert!(matches!(cause, MysqlError::Tls { .. }), "{cause:?}");
            let text = cause.to_string();
            assert!(text.contains(says), "the error says why: {text}");
            assert!(text.contains(fix), "and how to fix it: {text}");
            pool.close();
        });
    }
    // A CA the client does not trust: the same, naming the roots setting.
    let server = Mariadb::start_tls(mariadbd, &certs.cert_pem, &certs.key_pem);
    runtime().block_on(async {
        let url = format!("{}&require_ssl=true", server.url());
        let pool = clients_common::pool(MysqlManager::from_url(&url).unwrap(), 1);
        let error = clients_common::refused_at_once(&pool).await;
        let text = error.connect_error().unwrap().to_string();
        assert!(text.contains("with_root_certs"), "{text}");
    });
}

fn a_restart_under_load_over_tls_fails_no_query_after_the_first_success(mariadbd: PathBuf) {
    let certs = test_certs::certs();
    let server = Mariadb::start_tls(mariadbd, &certs.cert_pem, &certs.key_pem);
    let manager = verified(&server, "root", None);
    let server = std::sync::Mutex::new(server);
    let rt = runtime();
    let pool = rt.block_on(async { clients_common::pool(manager, 8) });
    let recovery = clients_common::through_restart(
        &rt,
        8,
        {
            let pool = Arc::clone(&pool);
            move || {
                let pool = Arc::clone(&pool);
                async move {
                    let mut conn = pool.get().await.map_err(|error| error.to_string())?;
                    let one: Option<i64> = conn
                        .query_first("SELECT 1")
                        .await
                        .map_err(|error| error.to_string())?;
                    assert_eq!(one, Some(1));
                    Ok(())
                }
            }
        },
        || server.lock().unwrap().kill(),
        || server.lock().unwrap().restart(),
    );
    eprintln!("{recovery:?}");
    assert_eq!(
        recovery.errors_after, 0,
        "no query started after the first success failed: {recovery:?}"
    );
    let stats = pool.stats();
    assert!(
        stats.closed_total() >= 1,
        "the killed sessions were closed: {stats:?}"
    );
    pool.close();
}

fn mutual_tls_is_accepted_with_the_client_certificate_and_refused_without(mariadbd: PathBuf) {
    let certs = test_certs::certs();
    let server =
        Mariadb::start_mutual_tls(mariadbd, &certs.cert_pem, &certs.key_pem, &certs.ca_pem);
    runtime().block_on(async {
        let mut admin = admin_tls(&server).await;
        admin
            .query_drop(
                "CREATE USER 'app'@'%' REQUIRE X509; CREATE USER 'app'@'localhost' REQUIRE X509; \
                 GRANT SELECT ON mysql.* TO 'app'@'%'; GRANT SELECT ON mysql.* TO 'app'@'localhost'",
            )
            .await
            .unwrap();
        let pool = clients_common::pool(verified(&server, "app", Some(&certs.client)), 1);
        let mut conn = pool.get().await.unwrap();
        // Logged in as a user that requires a certificate issued by the CA.
        let user: Option<String> = conn.query_first("SELECT CURRENT_USER()").await.unwrap();
        assert!(user.unwrap().starts_with("app@"));
        assert!(!cipher(&mut conn).await.is_empty());
        drop(conn);
        pool.close();
        // Without one, the server refuses the login: fatal, not retried.
        let pool = clients_common::pool(verified(&server, "app", None), 1);
        let error = clients_common::refused_at_once(&pool).await;
        let cause = error.connect_error().unwrap();
        assert!(
            matches!(cause, MysqlError::Mysql(mysql_async::Error::Server(_))),
            "{cause:?}"
        );
    });
}

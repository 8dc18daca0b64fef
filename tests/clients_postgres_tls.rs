//! The PostgreSQL manager over TLS against a real server (Debian's
//! `postgresql`, a private cluster with `ssl = on` and a certificate the
//! test makes with `rcgen`): `sslmode` as libpq reads it, the server's own
//! view of each session (`pg_stat_ssl`), the handshakes counted, errors
//! that say how to fix them, and the rollback of a session given back mid
//! transaction working above TLS, certificates for another name or
//! expired refused at once, a restart under load, and mutual TLS
//! (`clientcert=verify-ca`). A missing server is reported as not run,
//! or failed under `RINGPOOL_REQUIRE_SERVERS=1`.

mod clients_common;
mod servers;
mod test_certs;

use ringpool::clients::postgres::{PostgresError, PostgresManager, TransactionStatus};
use servers::{Postgres, ServerTest};
use std::path::PathBuf;
use test_certs::{certs, connector};

use clients_common::runtime;

fn main() {
    servers::run(vec![
        ServerTest {
            name: "verify_full_with_the_servers_ca_encrypts_every_session",
            needs: "initdb",
            run: verify_full_with_the_servers_ca_encrypts_every_session,
        },
        ServerTest {
            name: "require_encrypts_without_checking_the_certificate",
            needs: "initdb",
            run: require_encrypts_without_checking_the_certificate,
        },
        ServerTest {
            name: "an_unknown_issuer_is_refused_at_once_and_says_so",
            needs: "initdb",
            run: an_unknown_issuer_is_refused_at_once_and_says_so,
        },
        ServerTest {
            name: "a_server_without_tls_is_refused_by_require_and_used_plain_by_prefer",
            needs: "initdb",
            run: a_server_without_tls_is_refused_by_require_and_used_plain_by_prefer,
        },
        ServerTest {
            name: "certificates_for_another_name_or_expired_are_refused_at_once_naming_why",
            needs: "initdb",
            run: certificates_for_another_name_or_expired_are_refused_at_once_naming_why,
        },
        ServerTest {
            name: "a_restart_under_load_over_tls_fails_no_query_after_the_first_success",
            needs: "initdb",
            run: a_restart_under_load_over_tls_fails_no_query_after_the_first_success,
        },
        ServerTest {
            name: "mutual_tls_is_accepted_with_the_client_certificate_and_refused_without",
            needs: "initdb",
            run: mutual_tls_is_accepted_with_the_client_certificate_and_refused_without,
        },
    ])
}

fn start_tls(initdb: PathBuf) -> Postgres {
    Postgres::start_tls(initdb, &certs().cert_pem, &certs().key_pem)
}

/// `?sslmode=...` on the server's connection string.
fn url(server: &Postgres, mode: &str) -> String {
    format!("{}?sslmode={mode}", server.url())
}

/// Whether the pooled session's own backend says it is encrypted.
async fn encrypted(conn: &tokio_postgres::Client) -> bool {
    conn.query_one(
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

fn verify_full_with_the_servers_ca_encrypts_every_session(initdb: PathBuf) {
    let server = start_tls(initdb);
    runtime().block_on(async {
        let connector = connector();
        let manager = PostgresManager::from_url(&url(&server, "verify-full"))
            .unwrap()
            .tls(connector);
        let pool = clients_common::pool(manager, 2);
        let a = pool.get().await.unwrap();
        let b = pool.get().await.unwrap();
        assert!(encrypted(&a).await && encrypted(&b).await);
        drop((a, b));
        let handshakes = pool.stats().tls_handshakes;
        // PostgreSQL turns session caching off on its side, so every dial
        // is a full handshake there: pooling is what saves them.
        assert_eq!(handshakes.full + handshakes.resumed, 2, "{handshakes:?}");

        // The protocol reader sits above TLS: a session given back in a
        // transaction is seen, rolled back and reused.
        let conn = pool.get().await.unwrap();
        conn.batch_execute("BEGIN; SELECT 1").await.unwrap();
        assert_eq!(conn.transaction_status(), TransactionStatus::InTransaction);
        drop(conn);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while pool.stats().recycled == 0 {
            let conn = pool.get().await.unwrap();
            assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
            drop(conn);
            assert!(std::time::Instant::now() < deadline, "{:?}", pool.stats());
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let stats = pool.stats();
        assert_eq!((stats.connects, stats.closed_total()), (2, 0), "{stats:?}");
        pool.close();
    });
}

fn require_encrypts_without_checking_the_certificate(initdb: PathBuf) {
    let server = start_tls(initdb);
    runtime().block_on(async {
        // The CA is nowhere in the client's roots: `require` does not ask.
        let manager = PostgresManager::from_url(&url(&server, "require")).unwrap();
        let pool = clients_common::pool(manager, 1);
        let conn = pool.get().await.unwrap();
        assert!(encrypted(&conn).await);
        drop(conn);
        assert_eq!(pool.stats().tls_handshakes.full, 1);
        // `prefer` (tokio-postgres' default) encrypts too when offered.
        let manager = PostgresManager::from_url(&server.url()).unwrap();
        let pool = clients_common::pool(manager, 1);
        assert!(encrypted(&pool.get().await.unwrap()).await);
    });
}

fn an_unknown_issuer_is_refused_at_once_and_says_so(initdb: PathBuf) {
    let server = start_tls(initdb);
    runtime().block_on(async {
        // verify-full with the default roots (webpki-roots): the test CA is
        // unknown there.
        let manager = PostgresManager::from_url(&url(&server, "verify-full")).unwrap();
        let pool = clients_common::pool(manager, 1);
        let error = clients_common::refused_at_once(&pool).await;
        let cause = error.connect_error().expect("the dial's own error");
        assert!(matches!(cause, PostgresError::Tls(_)), "{cause:?}");
        let text = format!("{error} {cause}");
        assert!(text.contains("issuer") || text.contains("CA"), "{text}");
        // verify-ca is refused up front, with what to use instead.
        let refused = PostgresManager::from_url(&url(&server, "verify-ca")).unwrap_err();
        assert!(refused.to_string().contains("verify-full"), "{refused}");
    });
}

fn a_server_without_tls_is_refused_by_require_and_used_plain_by_prefer(initdb: PathBuf) {
    let server = Postgres::start(initdb);
    runtime().block_on(async {
        let manager = PostgresManager::from_url(&url(&server, "require")).unwrap();
        let pool = clients_common::pool(manager, 1);
        let Err(error) = pool.get().await else {
            panic!("a dial that must be refused succeeded")
        };
        let cause = error.connect_error().expect("the dial's own error");
        assert!(cause.to_string().contains("ssl = on"), "{cause}");
        let manager = PostgresManager::from_url(&url(&server, "prefer")).unwrap();
        let pool = clients_common::pool(manager, 1);
        let conn = pool.get().await.unwrap();
        assert!(!encrypted(&conn).await, "plain: the server offers no TLS");
        assert_eq!(pool.stats().tls_handshakes.full, 0);
    });
}

fn certificates_for_another_name_or_expired_are_refused_at_once_naming_why(initdb: PathBuf) {
    for (issued, says) in [
        (&certs().wrong_name, "other.example"),
        (&certs().expired, "expired"),
    ] {
        let server = Postgres::start_tls(initdb.clone(), &issued.cert_pem, &issued.key_pem);
        runtime().block_on(async {
            let manager = PostgresManager::from_url(&url(&server, "verify-full"))
                .unwrap()
                .tls(connector());
            let pool = clients_common::pool(manager, 1);
            let error = clients_common::refused_at_once(&pool).await;
            let cause = error.connect_error().expect("the dial's own error");
            assert!(matches!(cause, PostgresError::Tls(_)), "{cause:?}");
            let text = cause.to_string();
            assert!(text.contains(says), "the error says why: {text}");
            pool.close();
        });
    }
}

fn a_restart_under_load_over_tls_fails_no_query_after_the_first_success(initdb: PathBuf) {
    let server = std::sync::Mutex::new(start_tls(initdb));
    let address = url(&server.lock().unwrap(), "verify-full");
    let rt = runtime();
    let pool = rt.block_on(async {
        let manager = PostgresManager::from_url(&address)
            .unwrap()
            .tls(connector());
        clients_common::pool(manager, 8)
    });
    let recovery = clients_common::through_restart(
        &rt,
        8,
        {
            let pool = std::sync::Arc::clone(&pool);
            move || {
                let pool = std::sync::Arc::clone(&pool);
                async move {
                    let conn = pool.get().await.map_err(|error| error.to_string())?;
                    let row = conn
                        .query_one("SELECT 1", &[])
                        .await
                        .map_err(|error| error.to_string())?;
                    assert_eq!(row.get::<_, i32>(0), 1);
                    Ok(())
                }
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
    // The fast shutdown ended the sessions; every session, before and
    // after, came through a full TLS handshake (PostgreSQL resumes none;
    // a handshake can also precede a login refused while it starts up).
    let stats = pool.stats();
    assert!(stats.closed_total() >= 1, "{stats:?}");
    assert!(stats.tls_handshakes.full >= stats.connects, "{stats:?}");
    assert_eq!(stats.tls_handshakes.resumed, 0, "{stats:?}");
    let conn = rt.block_on(pool.get()).unwrap();
    assert!(rt.block_on(encrypted(&conn)));
    drop(conn);
    pool.close();
}

fn mutual_tls_is_accepted_with_the_client_certificate_and_refused_without(initdb: PathBuf) {
    let server =
        Postgres::start_mutual_tls(initdb, &certs().cert_pem, &certs().key_pem, &certs().ca_pem);
    runtime().block_on(async {
        let with_cert = ringpool::tcp::TlsConnector::builder()
            .add_root_pem(certs().ca_pem.as_bytes())
            .unwrap()
            .client_cert_pem(
                certs().client.cert_pem.as_bytes(),
                certs().client.key_pem.as_bytes(),
            )
            .unwrap()
            .build()
            .unwrap();
        let manager = PostgresManager::from_url(&url(&server, "verify-full"))
            .unwrap()
            .tls(with_cert);
        let pool = clients_common::pool(manager, 1);
        let conn = pool.get().await.unwrap();
        let shown: bool = conn
            .query_one(
                "SELECT client_dn IS NOT NULL FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(shown, "the server saw the client certificate");
        drop(conn);
        pool.close();

        // Without one, the server refuses the login (SQLSTATE 28000): a
        // fatal error, not retried, that names the missing certificate.
        let manager = PostgresManager::from_url(&url(&server, "verify-full"))
            .unwrap()
            .tls(connector());
        let pool = clients_common::pool(manager, 1);
        let error = clients_common::refused_at_once(&pool).await;
        let cause = error.connect_error().expect("the dial's own error");
        assert!(cause.to_string().contains("certificate"), "{cause}");
        pool.close();
    });
}

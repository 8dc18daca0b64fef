//! The Redis manager over TLS against a real `redis-server` (its
//! `--tls-port`, with a certificate from a CA the test makes with
//! `rcgen`): `rediss://` as the `redis` crate reads it, the server's view of
//! where its clients came in (`CLIENT LIST`), sessions resumed by a refill,
//! idle connections the server kills reaped above TLS, an unknown issuer,
//! a certificate for another name and an expired one refused at once, a
//! restart under load, and mutual TLS. A missing server is reported as
//! not run, or failed under `RINGPOOL_REQUIRE_SERVERS=1`.

mod clients_common;
mod servers;
mod test_certs;

use ringpool::Pool;
use ringpool::clients::redis::{RedisError, RedisManager};
use servers::{Redis, ServerTest};
use std::path::PathBuf;
use test_certs::{certs, connector};

use clients_common::runtime;

fn main() {
    servers::run(vec![
        ServerTest {
            name: "rediss_encrypts_and_a_refill_after_a_kill_resumes_sessions",
            needs: "redis-server",
            run: rediss_encrypts_and_a_refill_after_a_kill_resumes_sessions,
        },
        ServerTest {
            name: "rediss_with_an_unknown_issuer_is_refused_at_once",
            needs: "redis-server",
            run: rediss_with_an_unknown_issuer_is_refused_at_once,
        },
        ServerTest {
            name: "certificates_for_another_name_or_expired_are_refused_at_once_naming_why",
            needs: "redis-server",
            run: certificates_for_another_name_or_expired_are_refused_at_once_naming_why,
        },
        ServerTest {
            name: "a_restart_under_load_over_tls_fails_no_command_after_the_first_success",
            needs: "redis-server",
            run: a_restart_under_load_over_tls_fails_no_command_after_the_first_success,
        },
        ServerTest {
            name: "mutual_tls_is_accepted_with_the_client_certificate_and_refused_without",
            needs: "redis-server",
            run: mutual_tls_is_accepted_with_the_client_certificate_and_refused_without,
        },
    ])
}

/// A server with a plain port (for the test's own commands) and a TLS
/// port; returns it and the TLS port.
fn start_tls(binary: PathBuf) -> (Redis, u16) {
    start_tls_with(binary, &certs().cert_pem, &certs().key_pem, false)
}

/// [`start_tls`] with this certificate, and with `require_client_cert`
/// mutual TLS against the test CA.
fn start_tls_with(
    binary: PathBuf,
    cert_pem: &str,
    key_pem: &str,
    require_client_cert: bool,
) -> (Redis, u16) {
    Redis::start_tls(
        binary,
        cert_pem,
        key_pem,
        &certs().ca_pem,
        require_client_cert,
    )
}

fn tls_manager(tls_port: u16, connector: ringpool::tcp::TlsConnector) -> RedisManager {
    RedisManager::from_url(&format!("redis://127.0.0.1:{tls_port}/0"))
        .unwrap()
        .tls(connector)
}

fn certificates_for_another_name_or_expired_are_refused_at_once_naming_why(binary: PathBuf) {
    for (issued, says) in [
        (&certs().wrong_name, "other.example"),
        (&certs().expired, "expired"),
    ] {
        let (_redis, tls_port) =
            start_tls_with(binary.clone(), &issued.cert_pem, &issued.key_pem, false);
        runtime().block_on(async {
            let pool = clients_common::pool(tls_manager(tls_port, connector()), 1);
            let error = clients_common::refused_at_once(&pool).await;
            let cause = error.connect_error().expect("the dial's own error");
            assert!(matches!(cause, RedisError::Tls(_)), "{cause:?}");
            let text = cause.to_string();
            assert!(text.contains(says), "the error says why: {text}");
            pool.close();
        });
    }
}

fn a_restart_under_load_over_tls_fails_no_command_after_the_first_success(binary: PathBuf) {
    let (redis, tls_port) = start_tls(binary);
    let redis = std::sync::Mutex::new(redis);
    let rt = runtime();
    let pool = rt.block_on(async { clients_common::pool(tls_manager(tls_port, connector()), 8) });
    let recovery = clients_common::through_restart(
        &rt,
        8,
        {
            let pool = std::sync::Arc::clone(&pool);
            move || {
                let pool = std::sync::Arc::clone(&pool);
                async move {
                    let mut conn = pool.get().await.map_err(|error| error.to_string())?;
                    redis::cmd("PING")
                        .query_async::<String>(&mut *conn)
                        .await
                        .map(drop)
                        .map_err(|error| error.to_string())
                }
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
    // A restarted server has new session-ticket keys: the dials after it
    // make full handshakes, which is right.
    assert!(pool.stats().tls_handshakes.full >= 2, "{:?}", pool.stats());
    pool.close();
}

fn mutual_tls_is_accepted_with_the_client_certificate_and_refused_without(binary: PathBuf) {
    let (_redis, tls_port) = start_tls_with(binary, &certs().cert_pem, &certs().key_pem, true);
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
        let pool = clients_common::pool(tls_manager(tls_port, with_cert), 1);
        assert_eq!(incr(&pool).await, 1);
        pool.close();
        // Without one, TLS 1.3 completes the client's side of the
        // handshake and the server drops the connection: the dial (the
        // client library's first exchange) or the first command fails.
        let pool = clients_common::pool(tls_manager(tls_port, connector()), 1);
        let refused = match pool.get().await {
            Err(_) => true,
            Ok(mut conn) => redis::cmd("INCR")
                .arg("counter")
                .query_async::<i64>(&mut *conn)
                .await
                .is_err(),
        };
        assert!(refused, "served without a client certificate");
        pool.close();
    });
}

async fn incr(pool: &Pool<RedisManager>) -> i64 {
    let mut conn = pool.get().await.unwrap();
    redis::cmd("INCR")
        .arg("counter")
        .query_async(&mut *conn)
        .await
        .unwrap()
}

fn rediss_encrypts_and_a_refill_after_a_kill_resumes_sessions(binary: PathBuf) {
    let (redis, tls_port) = start_tls(binary);
    runtime().block_on(async {
        let connector = connector();
        let manager = RedisManager::from_url(&format!("redis://127.0.0.1:{tls_port}/0"))
            .unwrap()
            .tls(connector);
        let pool = clients_common::pool(manager, 3);
        clients_common::open_at_once(&pool, 3).await;
        for expected in 1..=100 {
            assert_eq!(incr(&pool).await, expected);
        }
        // Every client the server has came in on its TLS port.
        let clients = redis.command(&["CLIENT", "LIST"]);
        let on_tls = clients
            .lines()
            .filter(|line| line.contains(&format!("laddr=127.0.0.1:{tls_port}")))
            .count();
        assert_eq!(on_tls, 3, "{clients}");
        let first = pool.stats().tls_handshakes;
        assert_eq!(first.full + first.resumed, 3, "{first:?}");

        // Killed while idle: seen above TLS, reaped, and the refill
        // resumes the sessions the first connections were given.
        let reply = redis.command(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
        assert!(reply.starts_with(":3"), "three clients killed: {reply}");
        clients_common::until_reaped(&pool).await;
        clients_common::open_at_once(&pool, 3).await;
        assert_eq!(incr(&pool).await, 101);
        let after = pool.stats().tls_handshakes;
        assert_eq!(after.full + after.resumed, 6, "{after:?}");
        assert!(
            after.resumed > first.resumed,
            "no session resumed: {after:?}"
        );
        assert!(after.full < 6, "{after:?}");
        pool.close();

        // `#insecure` encrypts without checking the certificate.
        let manager =
            RedisManager::from_url(&format!("rediss://127.0.0.1:{tls_port}/0#insecure")).unwrap();
        let pool = clients_common::pool(manager, 1);
        assert_eq!(incr(&pool).await, 102);
        assert_eq!(pool.stats().tls_handshakes.full, 1);
    });
}

fn rediss_with_an_unknown_issuer_is_refused_at_once(binary: PathBuf) {
    let (_redis, tls_port) = start_tls(binary);
    runtime().block_on(async {
        // The default roots (webpki-roots) do not know the test's CA.
        let manager = RedisManager::from_url(&format!("rediss://127.0.0.1:{tls_port}/0")).unwrap();
        let pool = clients_common::pool(manager, 1);
        let error = clients_common::refused_at_once(&pool).await;
        let cause = error.connect_error().expect("the dial's own error");
        assert!(matches!(cause, RedisError::Tls(_)), "{cause:?}");
        let text = cause.to_string();
        assert!(text.contains("issuer") || text.contains("CA"), "{text}");
    });
}

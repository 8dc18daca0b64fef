//! The Redis manager over TLS against a real `redis-server` (its
//! `--tls-port`, with a certificate from a CA the test makes with
//! `rcgen`): `rediss://` as the `redis` crate reads it, the server's view of
//! where its clients came in (`CLIENT LIST`), sessions resumed by a refill,
//! idle connections the server kills reaped above TLS, and an unknown
//! issuer refused at once. A missing server is reported as not run, or
//! failed under `RINGPOOL_REQUIRE_SERVERS=1`.

mod clients_common;
mod servers;
mod test_certs;

use ringpool::Pool;
use ringpool::clients::redis::{RedisError, RedisManager};
use servers::{Redis, ServerTest, free_port};
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
    ])
}

/// A directory removed on drop.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server with a plain port (for the test's own commands) and a TLS
/// port; returns it, the TLS port, and the directory of its certificate
/// files (removed on drop, after the server).
fn start_tls(binary: PathBuf) -> (Redis, u16, Dir) {
    let tls_port = free_port();
    let dir = std::env::temp_dir().join(format!("ringpool-redis-tls-{tls_port}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("server.crt"), &certs().cert_pem).unwrap();
    std::fs::write(dir.join("server.key"), &certs().key_pem).unwrap();
    let (port, cert, key) = (
        tls_port.to_string(),
        dir.join("server.crt").display().to_string(),
        dir.join("server.key").display().to_string(),
    );
    let redis = Redis::start(
        binary,
        &[
            "--tls-port",
            &port,
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-auth-clients",
            "no",
        ],
    );
    (redis, tls_port, Dir(dir))
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
    let (redis, tls_port, _files) = start_tls(binary);
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
    let (_redis, tls_port, _files) = start_tls(binary);
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

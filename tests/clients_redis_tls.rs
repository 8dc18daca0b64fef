//! The Redis manager over TLS against a real `redis-server` (its
//! `--tls-port`, with a certificate from a CA the test makes with
//! `rcgen`): `rediss://` as the `redis` crate reads it, the server's view of
//! where its clients came in (`CLIENT LIST`), sessions resumed by a refill,
//! idle connections the server kills reaped above TLS, and an unknown
//! issuer refused at once. A missing server is reported as not run, or
//! failed under `RINGPOOL_REQUIRE_SERVERS=1`.

mod clients_common;
mod servers;

use std::path::PathBuf;
use std::sync::OnceLock;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use ringpool::Pool;
use ringpool::clients::redis::{RedisError, RedisManager};
use ringpool::tcp::TlsConnector;
use servers::{Redis, ServerTest, free_port};

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

/// A CA, and a certificate it issued for `localhost` and `127.0.0.1`.
struct Certs {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

/// A directory removed on drop.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn certs() -> &'static Certs {
    static CERTS: OnceLock<Certs> = OnceLock::new();
    CERTS.get_or_init(|| {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "ringpool redis test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        Certs {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    })
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
        let connector = TlsConnector::builder()
            .add_root_pem(certs().ca_pem.as_bytes())
            .unwrap()
            .build()
            .unwrap();
        let manager = RedisManager::from_url(&format!("redis://127.0.0.1:{tls_port}/0"))
            .unwrap()
            .tls(connector);
        let pool = clients_common::pool(manager, 3);
        let held: Vec<_> = futures_util::future::join_all((0..3).map(|_| pool.get()))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        drop(held);
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
        let held: Vec<_> = futures_util::future::join_all((0..3).map(|_| pool.get()))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        drop(held);
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
        let started = std::time::Instant::now();
        let Err(error) = pool.get().await else {
            panic!("a dial that must be refused succeeded")
        };
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "fatal: not retried until the acquire timeout"
        );
        let cause = error.connect_error().expect("the dial's own error");
        assert!(matches!(cause, RedisError::Tls(_)), "{cause:?}");
        let text = cause.to_string();
        assert!(text.contains("issuer") || text.contains("CA"), "{text}");
        assert_eq!(pool.stats().connects, 0);
    });
}

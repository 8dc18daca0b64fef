//! HTTPS through `clients::http::HttpManager` against a real `nginx`
//! serving TLS with a certificate from a CA the test makes (`rcgen`):
//! requests over kept-alive connections, refills resuming their sessions
//! (nginx's own `$ssl_session_reused`, beside the connector's count), a
//! restart under load, certificates for the wrong name or expired refused
//! at once and not retried, and mutual TLS accepted with a client
//! certificate and refused without. A missing server is reported as not
//! run, or failed under `RINGPOOL_REQUIRE_SERVERS=1`.

mod clients_common;
mod servers;
mod test_certs;

use std::path::PathBuf;
use std::sync::Arc;

use http_body_util::BodyExt;
use ringpool::clients::http::HttpManager;
use ringpool::tcp::{Dialer, TlsConnector};
use ringpool::{Error, ErrorClass, Pool, SendManager};
use servers::{Nginx, ServerTest};

fn main() {
    servers::run(vec![
        ServerTest {
            name: "https_requests_reuse_connections_and_refills_resume_their_sessions",
            needs: "nginx",
            run: https_requests_reuse_connections_and_refills_resume_their_sessions,
        },
        ServerTest {
            name: "a_restart_under_load_over_tls_fails_no_request_after_the_first_success",
            needs: "nginx",
            run: a_restart_under_load_over_tls_fails_no_request_after_the_first_success,
        },
        ServerTest {
            name: "wrong_name_and_expired_certificates_are_refused_at_once_and_not_retried",
            needs: "nginx",
            run: wrong_name_and_expired_certificates_are_refused_at_once_and_not_retried,
        },
        ServerTest {
            name: "mutual_tls_is_accepted_with_the_client_certificate_and_refused_without",
            needs: "nginx",
            run: mutual_tls_is_accepted_with_the_client_certificate_and_refused_without,
        },
    ])
}

use clients_common::runtime;

type Manager = HttpManager<String>;

fn https(cert: &str, key: &str, binary: PathBuf, keepalive_requests: u32) -> Nginx {
    Nginx::start_https(binary, cert, key, None, keepalive_requests)
}

fn pool(nginx: &Nginx, connector: TlsConnector, max: usize) -> Arc<Pool<Manager>> {
    clients_common::pool(
        HttpManager::new(Dialer::new(nginx.addr).unwrap()).tls(connector),
        max,
    )
}

/// An error and its sources, as anyhow's `{:#}` shows them.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// One GET of `path`, its body read to the end.
async fn get(pool: &Pool<Manager>, path: &str) -> Result<String, String> {
    let mut conn = pool.get().await.map_err(|error| chain(&error))?;
    let request = hyper::Request::get(path)
        .header("host", "localhost")
        .body(String::new())
        .unwrap();
    let response = conn
        .send(request)
        .await
        .map_err(|error| error.to_string())?;
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|error| error.to_string())?;
    Ok(String::from_utf8_lossy(&body.to_bytes()).into_owned())
}

fn https_requests_reuse_connections_and_refills_resume_their_sessions(binary: PathBuf) {
    let certs = test_certs::certs();
    // nginx closes each connection after 10 requests: the pool refills.
    let nginx = https(&certs.cert_pem, &certs.key_pem, binary, 10);
    let rt = runtime();
    let connector = test_certs::connector();
    let pool = rt.block_on(async { pool(&nginx, connector.clone(), 4) });
    rt.block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let pool = Arc::clone(&pool);
                tokio::spawn(async move {
                    for _ in 0..25 {
                        assert_eq!(get(&pool, "/").await.unwrap(), "pong");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    let requests = nginx.requests();
    assert_eq!(requests.len(), 200);
    assert!(
        requests.iter().all(|&(_, nth, _)| nth <= 10),
        "no connection carried more than nginx allows"
    );
    let (connections, resumed) = nginx.tls_sessions();
    let handshakes = connector.handshakes();
    eprintln!("{connections} connections, {resumed} resumed at nginx; client {handshakes:?}");
    assert!(
        (20..=40).contains(&connections),
        "200 requests, 10 a connection: {connections} connections"
    );
    assert!(
        resumed >= connections - 4,
        "every refill after the first connections resumed: {resumed} of {connections}"
    );
    assert!(
        handshakes.resumed >= resumed as u64 && handshakes.full <= 4 + 1,
        "the connector's counts agree with nginx's: {handshakes:?}, nginx {resumed} resumed"
    );
    pool.close();
}

fn a_restart_under_load_over_tls_fails_no_request_after_the_first_success(binary: PathBuf) {
    let certs = test_certs::certs();
    let nginx = std::sync::Mutex::new(https(&certs.cert_pem, &certs.key_pem, binary, 100_000));
    let rt = runtime();
    let pool = rt.block_on(async { pool(&nginx.lock().unwrap(), test_certs::connector(), 8) });
    let recovery = clients_common::through_restart(
        &rt,
        8,
        {
            let pool = Arc::clone(&pool);
            move || {
                let pool = Arc::clone(&pool);
                async move { get(&pool, "/").await.map(drop) }
            }
        },
        || nginx.lock().unwrap().kill(),
        || nginx.lock().unwrap().restart(),
    );
    eprintln!("{recovery:?}");
    assert_eq!(
        recovery.errors_after, 0,
        "no request started after the first success failed: {recovery:?}"
    );
    pool.close();
}

fn wrong_name_and_expired_certificates_are_refused_at_once_and_not_retried(binary: PathBuf) {
    let certs = test_certs::certs();
    let rt = runtime();
    for (issued, says) in [
        (&certs.wrong_name, "other.example"),
        (&certs.expired, "expired"),
    ] {
        let nginx = https(&issued.cert_pem, &issued.key_pem, binary.clone(), 100);
        let pool = rt.block_on(async { pool(&nginx, test_certs::connector(), 2) });
        let error = rt.block_on(pool.get()).map(drop).unwrap_err();
        let message = chain(&error);
        let Error::Connect(cause) = &error else {
            panic!("a connect error: {message}")
        };
        assert_eq!(
            pool.manager().classify(cause),
            ErrorClass::Fatal,
            "a certificate problem is fatal: {message}"
        );
        assert!(
            message.contains(says),
            "the error names the problem: {message}"
        );
        // Fatal: the next get fails the same way without a storm of dials.
        let again = rt.block_on(pool.get()).map(drop).unwrap_err();
        assert!(chain(&again).contains(says), "{}", chain(&again));
        let stats = pool.stats();
        assert!(
            stats.connect_errors <= 2,
            "one dial per get at most, no retries: {stats:?}"
        );
        assert!(nginx.requests().is_empty());
        pool.close();
    }
}

fn mutual_tls_is_accepted_with_the_client_certificate_and_refused_without(binary: PathBuf) {
    let certs = test_certs::certs();
    let nginx = Nginx::start_https(
        binary,
        &certs.cert_pem,
        &certs.key_pem,
        Some(&certs.ca_pem),
        100,
    );
    let rt = runtime();
    let with_cert = TlsConnector::builder()
        .add_root_pem(certs.ca_pem.as_bytes())
        .unwrap()
        .client_cert_pem(
            certs.client.cert_pem.as_bytes(),
            certs.client.key_pem.as_bytes(),
        )
        .unwrap()
        .build()
        .unwrap();
    let pool_with = rt.block_on(async { pool(&nginx, with_cert, 2) });
    assert_eq!(rt.block_on(get(&pool_with, "/")).unwrap(), "pong");
    // Without a client certificate nginx completes the handshake and then
    // answers 400 ("No required SSL certificate was sent").
    let pool_without = rt.block_on(async { pool(&nginx, test_certs::connector(), 2) });
    let answer = rt.block_on(get(&pool_without, "/")).unwrap();
    assert!(
        answer.contains("No required SSL certificate was sent"),
        "refused without a client certificate: {answer}"
    );
    pool_with.close();
    pool_without.close();
}

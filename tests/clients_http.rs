//! The HTTP/1.1 manager against a real `nginx`: requests through the pool
//! with keep-alive reuse counted from nginx's access log, `Connection:
//! close` honoured, a response not read to its end, and a restart under
//! load. A missing server is reported as not run, or failed under
//! `RINGPOOL_REQUIRE_SERVERS=1`.

mod clients_common;
mod servers;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use http_body_util::BodyExt;
use ringpool::Pool;
use ringpool::clients::http::HttpManager;
use ringpool::tcp::Dialer;
use servers::{Nginx, ServerTest};

fn main() {
    servers::run(vec![
        ServerTest {
            name: "requests_through_the_pool_keep_their_connections_alive",
            needs: "nginx",
            run: requests_through_the_pool_keep_their_connections_alive,
        },
        ServerTest {
            name: "a_connection_the_server_closes_is_never_handed_out",
            needs: "nginx",
            run: a_connection_the_server_closes_is_never_handed_out,
        },
        ServerTest {
            name: "a_response_not_read_to_its_end_closes_the_connection",
            needs: "nginx",
            run: a_response_not_read_to_its_end_closes_the_connection,
        },
        ServerTest {
            name: "a_restart_under_load_hands_out_no_dead_connection",
            needs: "nginx",
            run: a_restart_under_load_hands_out_no_dead_connection,
        },
    ])
}

use clients_common::runtime;

type Manager = HttpManager<String>;

fn pool(nginx: &Nginx, max: usize) -> Arc<Pool<Manager>> {
    clients_common::pool(HttpManager::new(Dialer::new(nginx.addr).unwrap()), max)
}

/// One GET of `path`, its body read to the end.
async fn get(pool: &Pool<Manager>, path: &str) -> Result<String, String> {
    let mut conn = pool.get().await.map_err(|error| error.to_string())?;
    let request = hyper::Request::get(path)
        .header("host", "localhost")
        .body(String::new())
        .unwrap();
    let response = conn
        .send(request)
        .await
        .map_err(|error| error.to_string())?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()));
    }
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|error| error.to_string())?
        .to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// Distinct connections nginx served the logged requests on.
fn connections(nginx: &Nginx) -> usize {
    let seen: HashSet<u64> = nginx.requests().iter().map(|(conn, _, _)| *conn).collect();
    seen.len()
}

fn requests_through_the_pool_keep_their_connections_alive(binary: PathBuf) {
    let nginx = Nginx::start(binary, 100_000);
    runtime().block_on(async {
        let pool = pool(&nginx, 4);
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let pool = Arc::clone(&pool);
                tokio::spawn(async move {
                    for _ in 0..50 {
                        assert_eq!(get(&pool, "/").await.unwrap(), "pong");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let stats = pool.stats();
        assert!(stats.connects <= 4, "{stats:?}");
        assert_eq!(
            stats.closed.abandoned, 0,
            "every response was read: {stats:?}"
        );
        pool.close();
    });
    servers::wait_until("nginx logged 800 requests", || {
        nginx.requests().len() >= 800
    });
    assert!(
        connections(&nginx) <= 4,
        "nginx served 800 requests on {} connections",
        connections(&nginx)
    );
}

fn a_connection_the_server_closes_is_never_handed_out(binary: PathBuf) {
    // nginx answers every 10th request on a connection with
    // `Connection: close` and closes it.
    let nginx = Nginx::start(binary, 10);
    runtime().block_on(async {
        let pool = pool(&nginx, 2);
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let pool = Arc::clone(&pool);
                tokio::spawn(async move {
                    for _ in 0..100 {
                        assert_eq!(get(&pool, "/").await.unwrap(), "pong");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let stats = pool.stats();
        assert!(
            stats.connects >= 40,
            "400 requests at 10 a connection need 40 connections: {stats:?}"
        );
        assert_eq!(stats.closed.abandoned, 0, "{stats:?}");
        assert!(
            stats.closed.finished >= 38,
            "each connection nginx closed was closed on its return, as finished: {stats:?}"
        );
        // Connections the server ends after serving them are no young
        // deaths: a healthy `Connection: close` pool is never paced.
        assert_eq!(stats.young_deaths, 0, "{stats:?}");
        pool.close();
    });
    servers::wait_until("nginx logged 400 requests", || {
        nginx.requests().len() >= 400
    });
    let mut per_connection: std::collections::HashMap<u64, u64> = Default::default();
    for (conn, nth, _) in nginx.requests() {
        assert!(nth <= 10, "nginx closes after 10");
        *per_connection.entry(conn).or_default() += 1;
    }
    // Every connection carried its 10 requests, except the two the pool
    // held when the work ran out: none was dropped early.
    let short = per_connection.values().filter(|&&n| n < 10).count();
    assert!(
        short <= 2,
        "connections with fewer than 10 requests: {per_connection:?}"
    );
}

fn a_response_not_read_to_its_end_closes_the_connection(binary: PathBuf) {
    let nginx = Nginx::start(binary, 100_000);
    runtime().block_on(async {
        let pool = pool(&nginx, 1);
        assert_eq!(get(&pool, "/").await.unwrap(), "pong");
        {
            let mut conn = pool.get().await.unwrap();
            let request = hyper::Request::get("/large")
                .header("host", "localhost")
                .body(String::new())
                .unwrap();
            let response = conn.send(request).await.unwrap();
            assert!(response.status().is_success());
            // The 4 kB body is dropped unread with the guard.
        }
        assert_eq!(pool.stats().closed.abandoned, 1, "{:?}", pool.stats());
        for _ in 0..100 {
            assert_eq!(get(&pool, "/").await.unwrap(), "pong");
        }
        let stats = pool.stats();
        assert_eq!(
            stats.closed.abandoned, 1,
            "full reads are reused: {stats:?}"
        );
        assert_eq!(stats.connects, 2, "{stats:?}");
        pool.close();
    });
}

fn a_restart_under_load_hands_out_no_dead_connection(binary: PathBuf) {
    let nginx = std::sync::Mutex::new(Nginx::start(binary, 100_000));
    let rt = runtime();
    let pool = rt.block_on(async { pool(&nginx.lock().unwrap(), 8) });
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

//! `clients::http::Http2Client` against a real `nginx` speaking HTTP/2
//! (prior knowledge on a plain port): many requests at once on few
//! connections, counted from nginx's access log; and a killed server whose
//! requests fail with a clear error while later ones succeed after its
//! restart. A missing server is reported as not run, or failed under
//! `RINGPOOL_REQUIRE_SERVERS=1`.

mod clients_common;
mod servers;

use std::collections::HashMap;
use std::path::PathBuf;

use http_body_util::BodyExt;
use ringpool::clients::h2::H2Manager;
use ringpool::clients::http::{Http2Client, Http2Error};
use ringpool::shared::SharedPool;
use ringpool::tcp::Dialer;
use servers::{Nginx, ServerTest};

fn main() {
    servers::run(vec![
        ServerTest {
            name: "requests_share_few_connections_many_at_a_time",
            needs: "nginx",
            run: requests_share_few_connections_many_at_a_time,
        },
        ServerTest {
            name: "a_killed_server_fails_requests_clearly_and_they_recover_after_its_restart",
            needs: "nginx",
            run: a_killed_server_fails_requests_clearly_and_they_recover_after_its_restart,
        },
    ])
}

use clients_common::runtime;

fn client(nginx: &Nginx, max: usize) -> Http2Client {
    let pool = SharedPool::builder(H2Manager::new(Dialer::new(nginx.addr).unwrap()))
        .max_size(max)
        .build()
        .unwrap();
    Http2Client::new(pool).unwrap()
}

/// One GET of `path`, its body read to the end.
async fn get(client: &Http2Client, path: &str) -> Result<String, Http2Error> {
    let request = http::Request::get(path).body(String::new()).unwrap();
    let response = client.send(request).await?;
    assert!(response.status().is_success(), "{response:?}");
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(Http2Error::Stream)?
        .to_bytes();
    Ok(String::from_utf8(body.to_vec()).unwrap())
}

fn requests_share_few_connections_many_at_a_time(binary: PathBuf) {
    let nginx = Nginx::start_http2(binary, 16);
    runtime().block_on(async {
        let client = client(&nginx, 4);
        let tasks: Vec<_> = (0..64)
            .map(|task| {
                let client = client.clone();
                tokio::spawn(async move {
                    for i in 0..10 {
                        let path = if (task + i) % 4 == 0 { "/large" } else { "/" };
                        let body = get(&client, path).await.unwrap();
                        let expected = if path == "/large" { 4000 } else { 4 };
                        assert_eq!(body.len(), expected, "{path}");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let stats = client.pool().stats();
        assert!(stats.connects <= 4, "{stats:?}");
        assert_eq!((stats.in_flight, stats.waiting), (0, 0), "{stats:?}");
        assert_eq!(stats.leases, 640);
    });
    // The server's own count: 640 requests over at most 4 connections.
    let mut per_connection: HashMap<u64, u64> = HashMap::new();
    for (connection, _, _) in nginx.requests() {
        *per_connection.entry(connection).or_default() += 1;
    }
    assert_eq!(per_connection.values().sum::<u64>(), 640);
    assert!(
        per_connection.len() <= 4,
        "nginx saw {} connections: {per_connection:?}",
        per_connection.len()
    );
}

fn a_killed_server_fails_requests_clearly_and_they_recover_after_its_restart(binary: PathBuf) {
    let mut nginx = Nginx::start_http2(binary, 16);
    runtime().block_on(async {
        let client = client(&nginx, 2);
        assert_eq!(get(&client, "/").await.unwrap(), "pong");
        nginx.kill();
        let error = get(&client, "/").await.unwrap_err();
        let report = format!("{error}: {:?}", std::error::Error::source(&error));
        assert!(
            matches!(
                error,
                Http2Error::NoConnection { .. } | Http2Error::Stream(_)
            ),
            "{report}"
        );
        nginx.restart();
        // The dead connection drains at the first request that finds it
        // broken; within a few requests one goes through a new one.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match get(&client, "/").await {
                Ok(body) => {
                    assert_eq!(body, "pong");
                    break;
                }
                Err(error) => assert!(attempts < 5, "still failing: {error}"),
            }
        }
        let stats = client.pool().stats();
        assert_eq!(
            (stats.in_flight, stats.waiting, stats.dialing),
            (0, 0, 0),
            "{stats:?}"
        );
        assert_eq!(stats.draining, 0, "{stats:?}");
    });
}

//! HTTP/1.1 through ringpool: `hyper` client connections over ringpool's
//! io_uring dials, kept alive across requests.
//!
//! Run against an embedded loopback server:
//!     cargo run --example http_client --features http
//! or against a real one (nginx, for example):
//!     cargo run --example http_client --features http -- 127.0.0.1:80

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use http_body_util::BodyExt;
use ringpool::Pool;
use ringpool::clients::http::HttpManager;
use ringpool::tcp::Dialer;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = match std::env::args().nth(1) {
        Some(target) => target,
        None => embedded_http()?,
    };
    let manager = HttpManager::<String>::new(Dialer::new(&target)?);
    let pool = Arc::new(Pool::builder(manager).max_size(8).build()?);
    tokio::spawn(pool.maintenance());

    let started = Instant::now();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move {
                for _ in 0..100 {
                    let mut conn = pool.get().await?;
                    let request = hyper::Request::get("/")
                        .header("host", "localhost")
                        .body(String::new())?;
                    let response = conn.send(request).await?;
                    let status = response.status();
                    // Read to the end, so the connection can carry the next.
                    let body = response.into_body().collect().await?.to_bytes();
                    assert!(status.is_success(), "{status}: {body:?}");
                }
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .collect();
    for task in tasks {
        task.await?.map_err(|error| error.to_string())?;
    }
    let stats = pool.stats();
    println!(
        "3200 requests from 32 tasks in {:?} over {} connections ({} reused checkouts, {} closed at the server's word)",
        started.elapsed(),
        stats.connects,
        stats.reused,
        stats.closed.broken
    );
    pool.close();
    Ok(())
}

/// Answers every request on a connection with `ok`, keeping it open;
/// returns its address.
fn embedded_http() -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut request = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = stream.read(&mut chunk) else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&chunk[..n]);
                    // Requests have no body here: each ends with a blank line.
                    while let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        request.drain(..end + 4);
                        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if stream.write_all(reply).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    Ok(addr)
}

//! A tokio service's path: `TokioTcpManager`, async I/O straight through the
//! guard, guards moved into spawned tasks (`get_owned`), the maintenance
//! task spawned on the same runtime, and a request that times out without
//! its late reply ever reaching the next user.
//!
//! Run: `cargo run --release --features tokio --example tokio_service [host:port]`
//! (without an address it starts an embedded echo server on loopback).

use std::time::{Duration, Instant};

use ringpool::Pool;
use ringpool::tcp::TokioTcpManager;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Echoes 8-byte requests; every tenth reply (ids ending in 7) is 50 ms late.
async fn embedded_echo() -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 8];
                while stream.read_exact(&mut request).await.is_ok() {
                    if u64::from_le_bytes(request) % 10 == 7 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    if stream.write_all(&request).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(addr)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = match std::env::args().nth(1) {
        Some(target) => target,
        None => embedded_echo().await?,
    };
    let pool = Pool::builder(TokioTcpManager::new(target.clone()))
        .max_size(8)
        .min_idle(2)
        .build()?;
    tokio::spawn(pool.maintenance());

    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..32u64 {
        // An owned guard: checked out here, used in the spawned task.
        let mut conn = pool.get_owned().await?;
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let (mut answered, mut timed_out) = (0, 0);
            for i in 0..20u64 {
                let id = worker * 100 + i;
                let request = async {
                    conn.write_all(&id.to_le_bytes()).await?;
                    let mut reply = [0u8; 8];
                    conn.read_exact(&mut reply).await?;
                    Ok::<u64, std::io::Error>(u64::from_le_bytes(reply))
                };
                match tokio::time::timeout(Duration::from_millis(20), request).await {
                    Ok(reply) => {
                        assert_eq!(reply?, id, "every reply is the reply to its request");
                        answered += 1;
                    }
                    // The late reply is still in flight: this connection is
                    // dirty, so take another; the pool closes this one.
                    Err(_) => {
                        timed_out += 1;
                        drop(conn); // give it back first: a pool of 8 serves 32 tasks
                        conn = pool.get_owned().await.map_err(std::io::Error::other)?;
                    }
                }
            }
            Ok::<_, std::io::Error>((answered, timed_out))
        }));
    }
    let (mut answered, mut timed_out) = (0, 0);
    for task in tasks {
        let (a, t) = task.await??;
        answered += a;
        timed_out += t;
    }
    let stats = pool.stats();
    println!(
        "target {target}: {answered} requests answered, {timed_out} timed out, in {:?}",
        started.elapsed()
    );
    println!(
        "connections: {} opened, {} reused, {} closed mid-request (their late replies never reached anyone)",
        stats.connects, stats.reused, stats.closed.abandoned
    );
    Ok(())
}

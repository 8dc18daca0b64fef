//! A pool over the replicas of one service: round-robin over three
//! loopback echo servers, one of them stopped mid-run (ejected, and no
//! request fails), then the endpoint set changed as discovery would change
//! it (the removed endpoint drains to zero connections).
//!
//! ```sh
//! cargo run --example multi_endpoint --features tokio
//! ```

use std::collections::BTreeMap;
use std::error::Error;
use std::net::SocketAddr;
use std::time::Duration;

use ringpool::multi::{Endpoint, MultiPool, Selection};
use ringpool::tcp::TokioTcpManager;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// An echo server; aborting its task closes its listener and connections.
async fn echo_server() -> Result<(SocketAddr, JoinHandle<()>), Box<dyn Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            conns.spawn(async move {
                let mut buf = [0u8; 5];
                while stream.read_exact(&mut buf).await.is_ok() {
                    if stream.write_all(&buf).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok((addr, server))
}

/// Sends `n` requests; counts them by the endpoint that served each.
async fn requests(
    pool: &MultiPool<TokioTcpManager>,
    n: usize,
) -> Result<BTreeMap<Endpoint, usize>, Box<dyn Error>> {
    let mut served = BTreeMap::new();
    for _ in 0..n {
        let mut conn = pool.get().await?;
        conn.write_all(b"hello").await?;
        let mut reply = [0u8; 5];
        conn.read_exact(&mut reply).await?;
        *served.entry(conn.endpoint().clone()).or_insert(0) += 1;
    }
    Ok(served)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut servers = Vec::new();
    for _ in 0..3 {
        servers.push(echo_server().await?);
    }
    let addrs: Vec<SocketAddr> = servers.iter().map(|(addr, _)| *addr).collect();

    // Every checkout checks its connection (a peek), so a connection the
    // stopped replica closed is never handed out.
    let mut config = ringpool::Config::default();
    config.check_after = Duration::ZERO;
    let pool = MultiPool::builder(|endpoint: &Endpoint| TokioTcpManager::new(endpoint.as_str()))
        .name("echo")
        .endpoints(addrs.iter().copied())
        .endpoint_config(config)
        .max_per_endpoint(4)
        .max_total(8)
        .selection(Selection::RoundRobin)
        .eject_after(2)
        .ejection_time(Duration::from_secs(5), Duration::from_secs(60))
        .build()?;
    // Every endpoint's refills and health checks, endpoints added later
    // included; it ends when the pool is closed or dropped.
    tokio::spawn(pool.maintenance());
    println!("round-robin over three:   {:?}", requests(&pool, 30).await?);

    // One replica goes away (a crashed pod): its gets fail over, it is ejected.
    let (_, stopped) = servers.remove(1);
    stopped.abort();
    let _ = stopped.await; // its listener and connections are closed now
    println!("one stopped, none failed: {:?}", requests(&pool, 30).await?);
    for endpoint in pool.endpoints() {
        println!(
            "  {}: {} connections, ejected for {:?}",
            endpoint.endpoint, endpoint.status.size, endpoint.ejected_for
        );
    }

    // Discovery says the set is now the first and the third: the second
    // leaves and drains; a get never picks it again.
    let change = pool.set_endpoints([addrs[0], addrs[2]])?;
    println!("set changed: {change:?}");
    println!("after the change:         {:?}", requests(&pool, 20).await?);
    println!(
        "connections in all: {} (cap {:?})",
        pool.total_size(),
        pool.max_total()
    );
    pool.close();
    Ok(())
}

//! A Redis client pool with a `PING` health check.
//!
//! Run against an embedded loopback stand-in (it answers `PING` and `SET`):
//!     cargo run --example redis_ping
//! or against a real server:
//!     cargo run --example redis_ping -- 127.0.0.1:6379

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use ringpool::Pool;
use ringpool::tcp::TcpManager;

/// A minimal Redis stand-in: `+PONG` to `PING`, `+OK` to anything else.
fn embedded_redis() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().expect("clone");
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                    let reply: &[u8] = if line.starts_with("PING") {
                        b"+PONG\r\n"
                    } else if let Some(count) = line.strip_prefix('*') {
                        // An array command: skip its arguments, then answer.
                        let args: usize = count.trim().parse().unwrap_or(0);
                        for _ in 0..args * 2 {
                            line.clear();
                            let _ = reader.read_line(&mut line);
                        }
                        b"+OK\r\n"
                    } else {
                        b"-ERR unknown\r\n"
                    };
                    if writer.write_all(reply).is_err() {
                        return;
                    }
                    line.clear();
                }
            });
        }
    });
    Ok(addr)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = match std::env::args().nth(1) {
        Some(addr) => addr.parse()?,
        None => embedded_redis()?,
    };
    let (manager, fallback) = TcpManager::with_best_backend(addr)?;
    if let Some(why) = fallback {
        eprintln!("io_uring is unavailable, so blocking sockets it is: {why}");
    }
    let manager = manager.ping_with(b"PING\r\n".to_vec(), b"+PONG\r\n".to_vec());
    let pool = Pool::builder(manager)
        .max_size(8)
        .min_idle(2)
        .maintenance_interval(Duration::from_millis(200))
        .check_after(Duration::from_millis(100))
        .build()?;
    let maintenance = pool.spawn_maintenance_thread()?; // refills min_idle, pings idle connections

    for i in 0..1_000 {
        let mut conn = pool.get_blocking()?;
        let value = i.to_string();
        let command = format!(
            "*3\r\n$3\r\nSET\r\n$7\r\nringkey\r\n${}\r\n{value}\r\n",
            value.len()
        );
        conn.write_all(command.as_bytes())?;
        let mut reply = [0u8; 5];
        if let Err(error) = conn.read_exact(&mut reply) {
            conn.discard();
            return Err(error.into());
        }
        assert_eq!(&reply, b"+OK\r\n");
    }
    let stats = pool.stats();
    println!(
        "1000 SETs to {addr}: {} connections opened, {} checkouts reused one",
        stats.connects, stats.reused
    );
    println!(
        "closed as broken by checks and pings: {}",
        stats.closed.broken
    );
    println!("pool: {:?}", pool.status());
    pool.close();
    maintenance.join().expect("maintenance thread");
    Ok(())
}

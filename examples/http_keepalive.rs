//! HTTP/1.1 keep-alive requests over pooled connections.
//!
//! Run against an embedded loopback server:
//!     cargo run --example http_keepalive
//! or against a real one (for example nginx):
//!     cargo run --example http_keepalive -- 127.0.0.1:80

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};

use ringpool::Pool;
use ringpool::tcp::TcpManager;

/// Answers every request on a connection with a 2-byte body, keeping it open.
fn embedded_http() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut request = Vec::new();
                let mut byte = [0u8; 1];
                while stream.read_exact(&mut byte).is_ok() {
                    request.push(byte[0]);
                    if request.ends_with(b"\r\n\r\n") {
                        request.clear();
                        let response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if stream.write_all(response).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// Reads one response with a Content-Length; returns its status line.
fn read_response(conn: &mut impl Read) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        conn.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let length = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>())
        })
        .transpose()
        .map_err(std::io::Error::other)?
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    conn.read_exact(&mut body)?;
    Ok(head.lines().next().unwrap_or_default().to_string())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = match std::env::args().nth(1) {
        Some(addr) => addr.parse()?,
        None => embedded_http()?,
    };
    let (manager, fallback) = TcpManager::with_best_backend(addr)?;
    if let Some(why) = fallback {
        eprintln!("io_uring is unavailable, so blocking sockets it is: {why}");
    }
    let pool = Pool::builder(manager).max_size(4).build()?;
    let mut status = String::new();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| -> std::io::Result<String> {
                    let mut last = String::new();
                    for _ in 0..500 {
                        let mut conn = pool.get_blocking().map_err(std::io::Error::other)?;
                        conn.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
                        match read_response(&mut *conn) {
                            Ok(line) => last = line,
                            Err(error) => {
                                conn.discard(); // half-read response: never reuse it
                                return Err(error);
                            }
                        }
                    }
                    Ok(last)
                })
            })
            .collect();
        for worker in workers {
            status = worker.join().expect("worker").expect("requests succeed");
        }
    });
    let stats = pool.stats();
    println!(
        "2000 requests to {addr} ({status}): {} connections opened, {} reused",
        stats.connects, stats.reused
    );
    Ok(())
}

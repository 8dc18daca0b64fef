//! The pool's metrics on a Prometheus endpoint: serves `/metrics` while a
//! few threads send requests through a pool of TCP connections to an
//! embedded loopback echo server (some of them slow, so gets wait and the
//! acquire-wait histogram fills).
//!
//! Run: `cargo run --release --features prometheus --example prometheus
//! [-- --listen 127.0.0.1:9464 --seconds 60]`, then point Prometheus (or
//! `curl`) at `http://127.0.0.1:9464/metrics`. Without `--seconds` it runs
//! until stopped. `docs/metrics.md` lists the metrics and the alerts.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::registry::Registry;
use ringpool::Pool;
use ringpool::tcp::TcpManager;

/// An echo server for 8-byte requests; every tenth reply is 20 ms late.
fn start_echo_server() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut request = [0u8; 8];
                while stream.read_exact(&mut request).is_ok() {
                    if u64::from_le_bytes(request) % 10 == 7 {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    if stream.write_all(&request).is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(addr)
}

/// Answers every HTTP request on `listener` with the registry's text.
fn serve_metrics(listener: TcpListener, registry: Arc<Registry>) {
    for stream in listener.incoming().flatten() {
        let registry = Arc::clone(&registry);
        std::thread::spawn(move || {
            let _ = answer(stream, &registry);
        });
    }
}

fn answer(stream: TcpStream, registry: &Registry) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Skip the headers.
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let (status, body) = match request_line.split_whitespace().nth(1) {
        Some("/metrics") => {
            let mut body = String::new();
            prometheus_client::encoding::text::encode(&mut body, registry)
                .map_err(std::io::Error::other)?;
            ("200 OK", body)
        }
        _ => ("404 Not Found", "try /metrics\n".to_owned()),
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn flag(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|arg| arg == name)
        .and_then(|at| args.get(at + 1).cloned())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = flag("--listen").unwrap_or_else(|| "127.0.0.1:9464".to_owned());
    let seconds: Option<u64> = flag("--seconds").map(|s| s.parse()).transpose()?;

    let target = start_echo_server()?;
    let pool = Pool::builder(TcpManager::new(target)?)
        .name("echo")
        .max_size(4)
        .acquire_timeout(Duration::from_millis(15))
        .build()?;
    let mut registry = Registry::default();
    pool.register_metrics(registry.sub_registry_with_prefix("example"));
    let registry = Arc::new(registry);

    let listener = TcpListener::bind(&listen)?;
    println!("serving http://{}/metrics", listener.local_addr()?);
    std::thread::spawn(move || serve_metrics(listener, registry));

    let deadline = seconds.map(|s| Instant::now() + Duration::from_secs(s));
    std::thread::scope(|scope| {
        for worker in 0..8u64 {
            let pool = &pool;
            scope.spawn(move || {
                let mut id = worker;
                while deadline.is_none_or(|at| Instant::now() < at) {
                    id += 8;
                    // Timeouts are part of the show: they are counted.
                    let Ok(mut conn) = pool.get_blocking() else {
                        continue;
                    };
                    let mut reply = [0u8; 8];
                    let done = conn
                        .stream_mut()
                        .write_all(&id.to_le_bytes())
                        .and_then(|()| conn.stream_mut().read_exact(&mut reply));
                    if done.is_err() {
                        conn.discard();
                    }
                }
            });
        }
    });
    let stats = pool.stats();
    println!(
        "{} gets, {} reused, {} timed out, {} connects",
        stats.gets, stats.reused, stats.timeouts, stats.connects
    );
    Ok(())
}

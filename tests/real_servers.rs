//! ringpool against real servers from Debian's packages: `redis-server`,
//! health-checked with a Redis `PING`, and `nginx`, with HTTP/1.1 keep-alive
//! requests. Each counts reuse. A missing server binary reports its test as
//! ignored (not run), or failed under `RINGPOOL_REQUIRE_SERVERS=1` (as in
//! CI).

mod servers;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ringpool::Pool;
use ringpool::tcp::TcpManager;
use servers::{Redis, ServerTest, free_port, wait_listening};

fn main() {
    servers::run(vec![
        ServerTest {
            name: "redis_with_a_ping_health_check",
            needs: "redis-server",
            run: redis_with_a_ping_health_check,
        },
        ServerTest {
            name: "nginx_with_http_keep_alive",
            needs: "nginx",
            run: nginx_with_http_keep_alive,
        },
    ])
}

/// A server process, killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis_with_a_ping_health_check(binary: PathBuf) {
    let redis = Redis::start(binary, &[]);
    let addr = redis.addr;
    let manager = TcpManager::new(addr)
        .unwrap()
        .ping_with(b"PING\r\n".to_vec(), b"+PONG\r\n".to_vec());
    let pool = Pool::builder(manager)
        .max_size(4)
        .check_after(Duration::ZERO)
        .maintenance_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    std::thread::scope(|scope| {
        for worker in 0..4 {
            let pool = &pool;
            scope.spawn(move || {
                for i in 0..250 {
                    let mut conn = pool.get_blocking().unwrap();
                    let value = format!("{worker}-{i}");
                    let command = format!(
                        "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n{value}\r\n",
                        value.len()
                    );
                    conn.write_all(command.as_bytes()).unwrap();
                    let mut reply = [0u8; 5];
                    conn.read_exact(&mut reply).unwrap();
                    assert_eq!(&reply, b"+OK\r\n");
                }
            });
        }
    });
    let stats = pool.stats();
    assert!(stats.connects <= 4, "{stats:?}");
    assert!(stats.reused >= 996, "{stats:?}");

    // The health check pings idle connections (with PING, nothing else).
    let maintenance = pool.spawn_maintenance_thread().unwrap();
    let mut observer = TcpStream::connect(addr).unwrap();
    let started = Instant::now();
    let pings = loop {
        observer
            .write_all(b"*2\r\n$4\r\nINFO\r\n$12\r\ncommandstats\r\n")
            .unwrap();
        let text = read_bulk(&mut observer);
        let pings: u64 = text
            .lines()
            .find(|line| line.starts_with("cmdstat_ping:"))
            .and_then(|line| line.split(['=', ',']).nth(1))
            .and_then(|calls| calls.parse().ok())
            .unwrap_or(0);
        if pings >= 4 || started.elapsed() > Duration::from_secs(10) {
            break pings;
        }
        std::thread::yield_now();
    };
    assert!(pings >= 4, "every idle connection was pinged: {pings}");
    assert_eq!(
        pool.stats().closed.broken,
        0,
        "healthy connections answered +PONG"
    );
    pool.close();
    maintenance.join().unwrap();
}

fn read_bulk(stream: &mut TcpStream) -> String {
    let mut reader = BufReader::new(stream);
    let mut header = String::new();
    reader.read_line(&mut header).unwrap();
    let len: usize = header.trim_start_matches('$').trim().parse().unwrap();
    let mut body = vec![0u8; len + 2];
    reader.read_exact(&mut body).unwrap();
    String::from_utf8_lossy(&body).into_owned()
}

fn nginx_with_http_keep_alive(nginx: PathBuf) {
    let dir = std::env::temp_dir().join(format!("ringpool-nginx-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let config = format!(
        "daemon off; master_process off; pid {dir}/nginx.pid; error_log {dir}/logs/error.log;\n\
         events {{}}\n\
         http {{ access_log off; keepalive_requests 100000;\n\
           client_body_temp_path {dir}; proxy_temp_path {dir}; fastcgi_temp_path {dir};\n\
           uwsgi_temp_path {dir}; scgi_temp_path {dir};\n\
           server {{ listen 127.0.0.1:{port}; location / {{ return 200 \"pong\"; }} }} }}\n",
        dir = dir.display()
    );
    std::fs::write(dir.join("nginx.conf"), config).unwrap();
    let mut child = Command::new(nginx)
        .args([
            "-p",
            &dir.display().to_string(),
            "-c",
            &dir.join("nginx.conf").display().to_string(),
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_listening(addr, &mut child);
    let _server = Running(child);

    let pool = Pool::builder(TcpManager::new(addr).unwrap())
        .max_size(4)
        .build()
        .unwrap();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..250 {
                    let mut conn = pool.get_blocking().unwrap();
                    conn.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                        .unwrap();
                    let body = read_http_response(&mut *conn);
                    assert_eq!(body, "pong");
                }
            });
        }
    });
    let stats = pool.stats();
    assert!(
        stats.connects <= 4,
        "keep-alive reused connections: {stats:?}"
    );
    assert!(stats.reused >= 996, "{stats:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Reads one HTTP/1.1 response with a Content-Length; returns its body.
fn read_http_response(conn: &mut impl Read) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        conn.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("content-length");
    let mut body = vec![0u8; length];
    conn.read_exact(&mut body).unwrap();
    String::from_utf8(body).unwrap()
}

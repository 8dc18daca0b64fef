//! How long the background liveness check of every idle connection takes,
//! three ways (`TcpOptions::idle_check`):
//! - `uring_batched`: one io_uring submission of non-blocking `MSG_PEEK`
//!   receives for all connections;
//! - `syscall_each`: one non-blocking `MSG_PEEK` `recv` per connection;
//! - `poll_batched`: one `poll(2)` call over all of them, zero timeout.
//!
//! Connections are real loopback TCP connections, idle, held open by a
//! helper process (this same binary, re-run with `RINGPOOL_HOLD=1`) so the
//! client side alone counts against this process's descriptor limit.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};

use criterion::{BenchmarkId, Criterion};
use ringpool::Manager;
use ringpool::tcp::{Backend, IdleCheck, TcpConn, TcpManager, TcpOptions};

/// The helper: accepts connections and holds them until stdin closes.
fn hold() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    println!("{}", listener.local_addr().unwrap());
    std::io::stdout().flush().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

fn manager(addr: std::net::SocketAddr, idle_check: IdleCheck) -> TcpManager {
    let mut options = TcpOptions::default();
    options.idle_check = idle_check;
    TcpManager::with_backend(addr, Backend::Blocking)
        .unwrap()
        .options(options)
}

fn sweep(c: &mut Criterion) {
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .env("RINGPOOL_HOLD", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(helper.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: std::net::SocketAddr = line.trim().parse().unwrap();

    let strategies = [
        ("uring_batched", manager(addr, IdleCheck::IoUring)),
        ("syscall_each", manager(addr, IdleCheck::PerSocket)),
        ("poll_batched", manager(addr, IdleCheck::Poll)),
    ];
    let mut group = c.benchmark_group("health_sweep");
    group.sample_size(20);
    let mut conns: Vec<TcpConn> = Vec::new();
    for count in [1_000usize, 10_000] {
        while conns.len() < count {
            conns.push(TcpConn::from(TcpStream::connect(addr).unwrap()));
        }
        let mut refs: Vec<&mut TcpConn> = conns.iter_mut().collect();
        for (name, manager) in &strategies {
            assert!(
                manager
                    .is_broken_batch(&mut refs)
                    .iter()
                    .all(|broken| !broken),
                "{name}: all alive"
            );
            group.bench_function(BenchmarkId::new(*name, count), |b| {
                b.iter(|| manager.is_broken_batch(&mut refs))
            });
        }
    }
    group.finish();
    drop(helper.stdin.take());
    let _ = helper.wait();
}

fn main() {
    if std::env::var_os("RINGPOOL_HOLD").is_some() {
        return hold();
    }
    let mut criterion = Criterion::default().without_plots().configure_from_args();
    sweep(&mut criterion);
    criterion.final_summary();
}

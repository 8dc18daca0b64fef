//! Pooled sockets driven by an application's own io_uring, with no async
//! runtime at all: check out a batch of connections, submit one request on
//! each to our ring in a single submission, reap the replies, give the
//! connections back.
//!
//! Run against an embedded loopback echo server:
//!     cargo run --example custom_runtime
//! or against any echo server:
//!     cargo run --example custom_runtime -- 127.0.0.1:7777

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;

use io_uring::{IoUring, opcode, types};
use ringpool::Pool;
use ringpool::tcp::TcpManager;

const MESSAGE: usize = 64;
const BATCH: usize = 8;

fn embedded_echo() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = [0u8; MESSAGE];
                while stream.read_exact(&mut buf).is_ok() && stream.write_all(&buf).is_ok() {}
            });
        }
    });
    Ok(addr)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = match std::env::args().nth(1) {
        Some(addr) => addr.parse()?,
        None => embedded_echo()?,
    };
    let (manager, fallback) = TcpManager::with_best_backend(addr)?;
    if let Some(why) = fallback {
        eprintln!("io_uring is unavailable, so blocking sockets it is: {why}");
    }
    let pool = Pool::builder(manager).max_size(BATCH).build()?;
    let mut ring = IoUring::new(2 * BATCH as u32)?;
    let mut completed = 0;
    for round in 0..100u8 {
        // Check out a batch (the pool dials what it does not have yet).
        let mut conns = Vec::with_capacity(BATCH);
        for _ in 0..BATCH {
            conns.push(pool.get_blocking()?);
        }
        let requests = vec![[round; MESSAGE]; BATCH];
        let mut replies = vec![[0u8; MESSAGE]; BATCH];
        for (i, conn) in conns.iter().enumerate() {
            let fd = types::Fd(conn.as_raw_fd());
            let send = opcode::Send::new(fd, requests[i].as_ptr(), MESSAGE as u32)
                .build()
                .flags(io_uring::squeue::Flags::IO_LINK)
                .user_data(2 * i as u64);
            let recv = opcode::Recv::new(fd, replies[i].as_mut_ptr(), MESSAGE as u32)
                .flags(libc::MSG_WAITALL)
                .build()
                .user_data(2 * i as u64 + 1);
            // SAFETY: `requests` and `replies` outlive the submission: every
            // completion is reaped below before they are dropped.
            unsafe {
                ring.submission().push(&send)?;
                ring.submission().push(&recv)?;
            }
        }
        ring.submit_and_wait(2 * BATCH)?;
        let mut failed = [false; BATCH];
        for cqe in ring.completion() {
            let index = (cqe.user_data() / 2) as usize;
            if cqe.result() < 0 || (cqe.user_data() % 2 == 1 && cqe.result() as usize != MESSAGE) {
                failed[index] = true;
            }
        }
        for (i, conn) in conns.into_iter().enumerate() {
            if failed[i] || replies[i] != requests[i] {
                conn.discard(); // unknown state: never back into the pool
            } else {
                completed += 1;
                drop(conn); // back into the pool
            }
        }
    }
    let stats = pool.stats();
    println!(
        "{completed} requests in 100 batches of {BATCH} on our own io_uring, {} connections opened, {} checkouts reused one",
        stats.connects, stats.reused
    );
    Ok(())
}

//! Loopback servers and helpers shared by the TCP tests: an echo server
//! whose connections a test can reset, close, or write to unasked.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use ringpool::Pool;
use ringpool::tcp::{Backend, TcpManager};

/// Both backends, for tests that run on each.
pub const BACKENDS: [Backend; 2] = [Backend::IoUring, Backend::Blocking];

/// An echo server (64-byte messages) whose connections the test can reset,
/// close, or write to unasked.
pub struct Server {
    pub addr: SocketAddr,
    accepted: Arc<Accepted>,
    stop: Arc<AtomicBool>,
    acceptor: JoinHandle<()>,
}

/// Connections the server accepted (a handle to each) and their threads;
/// the condition variable signals each new one.
#[derive(Default)]
struct Accepted {
    conns: Mutex<(Vec<TcpStream>, Vec<JoinHandle<()>>, usize)>,
    changed: Condvar,
}

impl Server {
    pub fn start() -> Server {
        Server::start_on(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    pub fn start_on(listener: TcpListener) -> Server {
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(Accepted::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (record, stopping) = (Arc::clone(&accepted), Arc::clone(&stop));
        let acceptor = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return; // drops the listener
                }
                let Ok(stream) = stream else { continue };
                let handle = stream.try_clone().unwrap();
                let worker = std::thread::spawn(move || echo(stream));
                let mut conns = record.conns.lock().unwrap();
                conns.0.push(handle);
                conns.1.push(worker);
                conns.2 += 1;
                record.changed.notify_all();
            }
        });
        Server {
            addr,
            accepted,
            stop,
            acceptor,
        }
    }

    /// Waits until the server has accepted `count` connections in all.
    pub fn wait_accepted(&self, count: usize) {
        let conns = self.accepted.conns.lock().unwrap();
        drop(
            self.accepted
                .changed
                .wait_while(conns, |c| c.2 < count)
                .unwrap(),
        );
    }

    pub fn take_conns(&self) -> Vec<TcpStream> {
        std::mem::take(&mut self.accepted.conns.lock().unwrap().0)
    }

    /// Resets every connection (`SO_LINGER` 0).
    pub fn reset_all(&self) {
        for stream in self.take_conns() {
            socket2::SockRef::from(&stream)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Closes every connection gracefully (FIN).
    pub fn close_all(&self) {
        for stream in self.take_conns() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Writes bytes nobody asked for on every connection.
    pub fn babble(&self) {
        for mut stream in self.accepted.conns.lock().unwrap().0.iter() {
            stream.write_all(b"surprise").unwrap();
        }
    }

    /// Stops accepting, closes every connection and waits for the server's
    /// threads to end; returns the address it listened on.
    pub fn stop(self) -> SocketAddr {
        self.stop.store(true, Ordering::SeqCst);
        drop(TcpStream::connect(self.addr)); // unblocks accept
        self.close_all();
        let Server {
            addr,
            accepted,
            acceptor,
            ..
        } = self;
        acceptor.join().unwrap();
        for stream in std::mem::take(&mut accepted.conns.lock().unwrap().0) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        let workers = std::mem::take(&mut accepted.conns.lock().unwrap().1);
        for worker in workers {
            worker.join().unwrap();
        }
        addr
    }
}

fn echo(mut stream: TcpStream) {
    let mut buf = [0u8; 64];
    while stream.read_exact(&mut buf).is_ok() {
        if stream.write_all(&buf).is_err() {
            return;
        }
    }
}

pub fn request(conn: &mut impl ReadWrite) -> std::io::Result<()> {
    let mut buf = [42u8; 64];
    conn.write_all(&buf)?;
    conn.read_exact(&mut buf)?;
    assert_eq!(buf, [42u8; 64], "the response belongs to this request");
    Ok(())
}

pub trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

pub fn pool_for(addr: SocketAddr, backend: Backend) -> Pool<TcpManager> {
    let manager = TcpManager::with_backend(addr, backend).expect("backend available");
    assert_eq!(manager.backend(), backend);
    Pool::builder(manager)
        .max_size(4)
        .check_after(Duration::ZERO)
        .build()
        .unwrap()
}

/// Descriptors this process has open. Only exact in a test binary that
/// runs one test: every other test's sockets count too.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Waits (at most 10 s) for `done`, a condition the pool's background work
/// or the ring thread makes true; fails with `what` if it never does.
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

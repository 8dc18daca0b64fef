//! Loopback backends for the multi-endpoint tests: echo servers (64-byte
//! messages) that count the requests they serve and the connections they
//! hold open, and can be killed (listener closed, every connection closed)
//! or hung (still accepting and reading, never answering) mid-run.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One backend of a service.
pub struct Backend {
    pub addr: SocketAddr,
    state: Arc<State>,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct State {
    served: AtomicU64,
    open: AtomicUsize,
    stop: AtomicBool,
    hang: AtomicBool,
    conns: Mutex<Vec<TcpStream>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl Backend {
    pub fn start() -> Backend {
        Backend::start_on(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    pub fn start_on(listener: TcpListener) -> Backend {
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let shared = Arc::clone(&state);
        let acceptor = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if shared.stop.load(Ordering::SeqCst) {
                    return; // drops the listener: new dials are refused
                }
                let Ok(stream) = stream else { continue };
                shared.open.fetch_add(1, Ordering::SeqCst);
                shared
                    .conns
                    .lock()
                    .unwrap()
                    .push(stream.try_clone().unwrap());
                let worker_state = Arc::clone(&shared);
                let worker = std::thread::spawn(move || echo(stream, &worker_state));
                shared.workers.lock().unwrap().push(worker);
            }
        });
        Backend {
            addr,
            state,
            acceptor: Some(acceptor),
        }
    }

    /// Requests served.
    pub fn served(&self) -> u64 {
        self.state.served.load(Ordering::SeqCst)
    }

    /// Connections open at the server now.
    pub fn open(&self) -> usize {
        self.state.open.load(Ordering::SeqCst)
    }

    /// Hangs the backend: it still accepts connections and reads requests,
    /// but answers none (and counts none as served).
    pub fn hang(&self) {
        self.state.hang.store(true, Ordering::SeqCst);
    }

    /// Kills the backend: stops accepting (new dials are refused), closes
    /// every connection, and returns once each has ended at the server.
    pub fn kill(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        drop(TcpStream::connect(self.addr)); // unblocks accept
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.join().unwrap();
        }
        for stream in std::mem::take(&mut *self.state.conns.lock().unwrap()) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        for worker in std::mem::take(&mut *self.state.workers.lock().unwrap()) {
            worker.join().unwrap();
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if self.acceptor.is_some() {
            self.kill();
        }
    }
}

fn echo(mut stream: TcpStream, state: &State) {
    let mut buf = [0u8; 64];
    while stream.read_exact(&mut buf).is_ok() {
        if state.hang.load(Ordering::SeqCst) {
            continue;
        }
        // Counted before the reply: a client holding its reply sees it.
        state.served.fetch_add(1, Ordering::SeqCst);
        if stream.write_all(&buf).is_err() {
            break;
        }
    }
    state.open.fetch_sub(1, Ordering::SeqCst);
}

/// An address nothing listens on (a port bound and released).
pub fn dead_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Waits (at most 10 s) for `done`; fails with `what` if it never holds.
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

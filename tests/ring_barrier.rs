//! `TcpManager::wait_for_closes` returns when nothing else is submitted to
//! the ring. Its barrier used to wait behind the ring's own wake-up read,
//! which completes only at the next submission, so it hung unless another
//! thread happened to dial. Alone in its binary, so no other test's ring
//! traffic can hide the fault.

use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use ringpool::Pool;
use ringpool::tcp::{Backend, TcpManager};

#[test]
fn wait_for_closes_returns_with_nothing_else_on_the_ring() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let manager = TcpManager::with_backend(addr, Backend::IoUring).unwrap();
    let pool = Pool::builder(manager).max_size(2).build().unwrap();
    let conn = pool.get_blocking().unwrap();
    let (_accepted, _) = listener.accept().unwrap();
    conn.discard(); // a close on the ring, then silence
    let (done, finished) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        futures_executor::block_on(pool.manager().wait_for_closes());
        done.send(()).unwrap();
    });
    assert!(
        finished.recv_timeout(Duration::from_secs(10)).is_ok(),
        "wait_for_closes still waiting after 10 s with nothing else submitted"
    );
    waiter.join().unwrap();
}

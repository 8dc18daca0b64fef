//! No descriptor leaks across thousands of checkouts with failures, resets
//! and cancellations, on both backends. It counts the process's open
//! descriptors, so it is the only test in this binary: nothing else opens
//! one while it counts.

mod loopback;

use std::net::TcpListener;
use std::pin::pin;
use std::task::{Context, Waker};
use std::time::Duration;

use loopback::{BACKENDS, Server, open_fds, pool_for, request};
use ringpool::tcp::{Backend, TcpManager};
use ringpool::{Error, Pool};

#[test]
fn no_descriptor_leaks_across_cycles_failures_and_cancellations() {
    let refused = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap() // dropped: nobody listens there
    };
    // The io_uring thread's own descriptors (ring, eventfd) and this
    // thread's batch ring are process-wide and made once: make them first.
    ringpool::probe_io_uring().unwrap();
    drop(TcpManager::with_backend(refused, Backend::IoUring).unwrap());
    let before = open_fds();
    let server = Server::start();
    for backend in BACKENDS {
        let pool = pool_for(server.addr, backend);
        let dead_pool = Pool::builder(TcpManager::with_backend(refused, backend).unwrap())
            .acquire_timeout(Duration::from_millis(20))
            .connect_backoff(Duration::from_millis(1))
            .connect_backoff_max(Duration::from_millis(2))
            .build()
            .unwrap();
        let mut rng = fastrand::Rng::with_seed(7);
        for round in 0..2_000 {
            match rng.u8(0..10) {
                0 => {
                    // Cancel a get after one poll (mid-dial on io_uring).
                    let mut get = pin!(pool.get());
                    let _ = get.as_mut().poll(&mut Context::from_waker(Waker::noop()));
                }
                1 => pool.get_blocking().unwrap().discard(),
                2 if round % 50 == 0 => server.reset_all(),
                3 if round % 100 == 0 => assert!(matches!(
                    dead_pool.get_blocking(),
                    Err(Error::Timeout(_) | Error::Unavailable(_))
                )),
                _ => {
                    let mut conn = pool.get_blocking().unwrap();
                    if request(&mut *conn).is_err() {
                        conn.discard();
                    }
                }
            }
        }
        let manager_closes = pool.manager().backend();
        assert_eq!(manager_closes, backend);
        drop(dead_pool);
        let waiter = TcpManager::with_backend(server.addr, backend).unwrap();
        drop(pool);
        futures_executor::block_on(waiter.wait_for_closes());
    }
    server.stop();
    let after = open_fds();
    assert_eq!(after, before, "descriptors before and after");
}

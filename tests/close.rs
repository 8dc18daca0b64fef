//! `close()`: waiters fail with `Closed` at once, new gets fail, idle
//! connections close now and checked-out ones when they come back.
mod common;

use std::pin::pin;
use std::task::Poll;

use common::{assert_quiescent, mock_pool, poll_once};
use ringpool::Error;

#[test]
fn close_fails_waiters_and_closes_connections() {
    let (pool, mock, _clock) = mock_pool(2);
    let held = pool.get_blocking().unwrap();
    drop(pool.get_blocking().unwrap()); // one idle... and one held
    let held2 = pool.get_blocking().unwrap();
    let mut waiter = pin!(pool.get());
    assert!(poll_once(waiter.as_mut()).is_pending());

    pool.close();
    assert!(pool.is_closed());
    assert!(matches!(
        poll_once(waiter.as_mut()),
        Poll::Ready(Err(Error::Closed))
    ));
    assert!(matches!(pool.get_blocking(), Err(Error::Closed)));
    assert!(matches!(pool.try_get(), Err(Error::Closed)));
    assert_eq!(
        mock.live(),
        2,
        "connections in use stay open until returned"
    );

    drop(held);
    drop(held2);
    assert_eq!(mock.live(), 0);
    assert_eq!(pool.status().size, 0);
    assert_eq!(pool.stats().closed.pool_closed, 2);
    pool.close(); // idempotent
    assert_quiescent(&pool, &mock);
}

#[test]
fn close_races_gets_and_returns_without_leaks() {
    for round in 0..50 {
        let (pool, mock, _clock) = mock_pool(3);
        std::thread::scope(|scope| {
            for _ in 0..3 {
                scope.spawn(|| {
                    for _ in 0..200 {
                        match pool.get_blocking() {
                            Ok(conn) => drop(conn),
                            Err(Error::Closed) => break,
                            Err(other) => panic!("unexpected {other}"),
                        }
                    }
                });
            }
            scope.spawn(|| {
                for _ in 0..round {
                    std::thread::yield_now();
                }
                pool.close();
            });
        });
        assert_eq!(pool.status().size, 0, "everything closed after the race");
        assert_eq!(mock.live(), 0);
        assert_quiescent(&pool, &mock);
    }
}

#[test]
fn dropping_the_last_handle_closes_idle_connections() {
    let (pool, mock, _clock) = mock_pool(2);
    let other_handle = pool.clone();
    drop(pool.get_blocking().unwrap());
    drop(pool);
    assert_eq!(mock.live(), 1, "another handle keeps the pool");
    drop(other_handle);
    assert_eq!(mock.live(), 0);
}

//! Semantic 5: `reconfigure` validates first, then swaps atomically; raising
//! `max_size` serves waiters at once; lowering it never touches a connection
//! in use and sheds idle and returned ones until the pool is within bounds.
mod common;

use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use common::{assert_quiescent, mock_pool, poll_once};

#[test]
fn a_bad_config_is_rejected_and_the_old_one_stays() {
    let (pool, _mock, _clock) = mock_pool(4);
    let before = pool.config();
    let mut bad = pool.config();
    bad.min_idle = 9;
    let error = pool.reconfigure(bad).unwrap_err();
    assert_eq!(error.field, "min_idle");
    assert!(
        error.to_string().contains("keep min_idle <= max_size"),
        "{error}"
    );
    assert_eq!(pool.config(), before);
    assert_eq!(pool.status().max_size, 4);
}

#[test]
fn raising_max_size_serves_waiters_at_once() {
    let (pool, mock, _clock) = mock_pool(1);
    let held = pool.get_blocking().unwrap();
    let mut first = pin!(pool.get());
    let mut second = pin!(pool.get());
    assert!(poll_once(first.as_mut()).is_pending());
    assert!(poll_once(second.as_mut()).is_pending());

    let mut config = pool.config();
    config.max_size = 3;
    pool.reconfigure(config).unwrap();
    assert_eq!(pool.status().waiting, 0, "both waiters were handed slots");
    let Poll::Ready(Ok(a)) = poll_once(first.as_mut()) else {
        panic!("first served")
    };
    let Poll::Ready(Ok(b)) = poll_once(second.as_mut()) else {
        panic!("second served")
    };
    assert_eq!(pool.status().size, 3);
    drop((held, a, b));
    assert_quiescent(&pool, &mock);
}

#[test]
fn lowering_max_size_spares_connections_in_use_and_sheds_the_rest() {
    let (pool, mock, _clock) = mock_pool(4);
    let mut held: Vec<_> = (0..4).map(|_| pool.get_blocking().unwrap()).collect();
    drop(held.drain(2..)); // 2 idle, 2 in use

    let mut config = pool.config();
    config.max_size = 1;
    pool.reconfigure(config).unwrap();
    let status = pool.status();
    assert_eq!(
        (status.size, status.idle, status.in_use),
        (2, 0, 2),
        "idle ones shed"
    );
    assert_eq!(mock.live(), 2, "connections in use are untouched");

    drop(held.pop()); // over the bound: closed on return
    assert_eq!(pool.status().size, 1);
    drop(held.pop()); // within the bound: kept
    let status = pool.status();
    assert_eq!((status.size, status.idle), (1, 1));
    assert_eq!(pool.stats().closed.resize, 3);
    assert_quiescent(&pool, &mock);
}

#[test]
fn shrinking_while_threads_get_and_return_keeps_the_new_bound() {
    let (pool, mock, _clock) = mock_pool(8);
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| {
                for _ in 0..3_000 {
                    let conn = pool.get_blocking().unwrap();
                    std::hint::black_box(&conn);
                }
            });
        }
        scope.spawn(|| {
            for round in 0..200 {
                let mut config = pool.config();
                config.max_size = if round % 2 == 0 { 2 } else { 8 };
                pool.reconfigure(config).unwrap();
                std::thread::yield_now();
            }
            let mut config = pool.config();
            config.max_size = 2;
            pool.reconfigure(config).unwrap();
        });
    });
    assert!(mock.high_water() <= 8);
    let status = pool.status();
    assert!(
        status.size <= 2,
        "after the last shrink the pool is within it: {status:?}"
    );
    assert_quiescent(&pool, &mock);
}

#[test]
fn durations_are_hot_swapped_too() {
    let (pool, mock, clock) = mock_pool(1);
    let held = pool.get_blocking().unwrap();
    let mut config = pool.config();
    config.acquire_timeout = Duration::from_millis(100);
    pool.reconfigure(config).unwrap();
    let mut get = pin!(pool.get());
    assert!(poll_once(get.as_mut()).is_pending());
    clock.advance(Duration::from_millis(100));
    assert!(matches!(
        poll_once(get.as_mut()),
        Poll::Ready(Err(ringpool::Error::Timeout(_)))
    ));
    drop(held);
    assert_quiescent(&pool, &mock);
}

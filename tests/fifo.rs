//! Semantic 2: waiters are served strictly first in, first out, and a new
//! caller never overtakes a queued one.
mod common;

use std::pin::pin;
use std::task::Poll;

use common::{Step, assert_quiescent, mock_pool, poll_once};

#[test]
fn returned_connection_goes_to_the_oldest_waiter() {
    let (pool, mock, _clock) = mock_pool(1);
    let held = pool.get_blocking().unwrap();
    let mut first = pin!(pool.get());
    let mut second = pin!(pool.get());
    let mut third = pin!(pool.get());
    assert!(poll_once(first.as_mut()).is_pending());
    assert!(poll_once(second.as_mut()).is_pending());
    assert!(poll_once(third.as_mut()).is_pending());
    assert_eq!(pool.status().waiting, 3);
    let held_id = held.id;

    drop(held);
    assert!(
        poll_once(third.as_mut()).is_pending(),
        "the third waiter must not overtake"
    );
    assert!(
        poll_once(second.as_mut()).is_pending(),
        "the second waiter must not overtake"
    );
    let Poll::Ready(Ok(conn)) = poll_once(first.as_mut()) else {
        panic!("the oldest waiter is served first")
    };
    assert_eq!(conn.id, held_id, "served by handoff, not by a new dial");

    drop(conn);
    assert!(poll_once(third.as_mut()).is_pending());
    let Poll::Ready(Ok(conn)) = poll_once(second.as_mut()) else {
        panic!("then the second")
    };
    drop(conn);
    let Poll::Ready(Ok(conn)) = poll_once(third.as_mut()) else {
        panic!("then the third")
    };
    drop(conn);
    assert_eq!(mock.made(), 1);
    assert_quiescent(&pool, &mock);
}

#[test]
fn a_new_caller_queues_behind_existing_waiters() {
    let (pool, mock, _clock) = mock_pool(1);
    let held = pool.get_blocking().unwrap();
    let mut waiter = pin!(pool.get());
    assert!(poll_once(waiter.as_mut()).is_pending());

    drop(held);
    // The connection now belongs to the waiter: a newcomer gets nothing.
    assert!(
        pool.try_get().is_err(),
        "try_get must not take the waiter's connection"
    );
    let mut newcomer = pin!(pool.get());
    assert!(
        poll_once(newcomer.as_mut()).is_pending(),
        "a new get queues"
    );
    assert_eq!(pool.status().waiting, 1, "only the newcomer still waits");

    let Poll::Ready(Ok(conn)) = poll_once(waiter.as_mut()) else {
        panic!("the waiter keeps its connection")
    };
    drop(conn);
    let Poll::Ready(Ok(conn)) = poll_once(newcomer.as_mut()) else {
        panic!("the newcomer is served next")
    };
    drop(conn);
    assert_quiescent(&pool, &mock);
}

#[test]
fn a_freed_slot_goes_to_the_oldest_waiter() {
    let (pool, mock, _clock) = mock_pool(1);
    let held = pool.get_blocking().unwrap();
    mock.script(&[Step::Slow]);
    let mut first = pin!(pool.get());
    let mut second = pin!(pool.get());
    assert!(poll_once(first.as_mut()).is_pending());
    assert!(poll_once(second.as_mut()).is_pending());

    held.discard();
    assert!(poll_once(second.as_mut()).is_pending());
    assert!(
        poll_once(first.as_mut()).is_pending(),
        "first is dialing (slow)"
    );
    assert_eq!(pool.status().creating, 1);
    assert_eq!(pool.status().waiting, 1);
    mock.release(1);
    let Poll::Ready(Ok(conn)) = poll_once(first.as_mut()) else {
        panic!("the oldest waiter dials into the freed slot")
    };
    assert!(poll_once(second.as_mut()).is_pending());
    drop(conn);
    let Poll::Ready(Ok(conn)) = poll_once(second.as_mut()) else {
        panic!("second is served next")
    };
    drop(conn);
    assert_quiescent(&pool, &mock);
}

#[test]
fn waiters_in_many_threads_are_served_in_arrival_order() {
    use std::sync::{Arc, Mutex};
    let (pool, mock, _clock) = mock_pool(1);
    let held = pool.get_blocking().unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|scope| {
        for index in 0..6 {
            // Start each thread only once the previous one is queued.
            while pool.status().waiting != index {
                std::thread::yield_now();
            }
            let (pool, order) = (&pool, Arc::clone(&order));
            scope.spawn(move || {
                let conn = pool.get_blocking().unwrap();
                order.lock().unwrap().push(index);
                drop(conn);
            });
        }
        while pool.status().waiting != 6 {
            std::thread::yield_now();
        }
        drop(held);
    });
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4, 5]);
    assert_quiescent(&pool, &mock);
}

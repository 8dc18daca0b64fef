//! Checkout as services use it: an owned guard moved into a spawned task,
//! stored in a struct and returned from a function; a per-call timeout; and
//! eviction of idle connections by a predicate.
mod common;

use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use common::{Mock, assert_quiescent, mock_pool, poll_once};
use ringpool::{Error, Pool, Pooled};

/// A request handler's state that keeps its connection between calls.
struct Session {
    conn: Pooled<'static, Mock>,
}

fn open_session(pool: &Pool<Mock>) -> Session {
    Session {
        conn: pool.try_get_owned().expect("an idle connection"),
    }
}

#[test]
fn an_owned_guard_moves_into_a_task_a_struct_and_out_of_a_function() {
    let (pool, mock, _clock) = mock_pool(2);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let id = runtime.block_on(async {
        let conn = pool.get_owned().await.unwrap();
        // Moved into a task on another worker, returned from it.
        tokio::spawn(async move { conn.id }).await.unwrap()
    });
    assert_eq!(pool.status().idle, 1, "returned when the task dropped it");
    let session = open_session(&pool);
    assert_eq!(
        session.conn.id, id,
        "the same connection, stored in a struct"
    );
    assert_eq!(pool.status().in_use, 1);
    drop(session);
    assert_quiescent(&pool, &mock);
}

#[test]
fn get_timeout_waits_its_own_time_not_the_pools() {
    let (pool, mock, clock) = mock_pool(1);
    let held = pool.get_blocking().unwrap();
    let mut get = pin!(pool.get_timeout(Duration::from_millis(100)));
    assert!(poll_once(get.as_mut()).is_pending());
    clock.advance(Duration::from_millis(99));
    assert!(poll_once(get.as_mut()).is_pending());
    clock.advance(Duration::from_millis(1));
    let Poll::Ready(Err(Error::Timeout(timeout))) = poll_once(get.as_mut()) else {
        panic!("timed out after 100 ms, not the pool's 5 s")
    };
    assert_eq!(timeout.waited, Duration::from_millis(100));
    drop(held);
    assert_quiescent(&pool, &mock);
}

#[test]
fn retain_closes_the_idle_connections_the_predicate_rejects() {
    let (pool, mock, _clock) = mock_pool(4);
    let conns: Vec<_> = (0..3).map(|_| pool.get_blocking().unwrap()).collect();
    let in_use = pool.get_blocking().unwrap();
    drop(conns); // ids 0, 1, 2 idle; 3 in use
    assert_eq!(pool.retain(|conn| conn.id % 2 == 0), 1, "id 1 evicted");
    let stats = pool.stats();
    assert_eq!(stats.closed.evicted, 1);
    assert_eq!(pool.status().idle, 2);
    assert_eq!(pool.status().in_use, 1, "a connection in use is not seen");
    drop(in_use);
    assert_quiescent(&pool, &mock);
}

#[test]
fn a_panicking_retain_predicate_loses_nothing() {
    let (pool, mock, _clock) = mock_pool(4);
    let conns: Vec<_> = (0..3).map(|_| pool.get_blocking().unwrap()).collect();
    drop(conns);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.retain(|conn| {
            assert!(conn.id != 1, "the predicate panicked");
            true
        })
    }));
    assert!(outcome.is_err());
    assert_eq!(pool.status().idle, 3, "every connection is back");
    assert_eq!(pool.stats().closed_total(), 0, "nothing was closed");
    assert_quiescent(&pool, &mock);
}

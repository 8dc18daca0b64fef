//! Documented behaviours that no heuristic may bend, each tried the way
//! client code uses the pool: a manager that refuses a few returns, a mock
//! clock with a manager whose connections break after one use, the idle
//! order on one thread, a client that discards after an error reply, and
//! what a get's error says while dials are paced.
mod common;

use std::task::Poll;
use std::time::Duration;

use common::{Mock, SECOND, assert_quiescent, poll_once};
use ringpool::{Clock, Error, IdleOrder, Pool};

const MS: Duration = Duration::from_millis(1);

/// A pool on a mock clock that keeps the default young-death window, as a
/// user's own test would.
fn defaults_on_mock_clock(max_size: usize) -> (Pool<Mock>, Mock, ringpool::MockClock) {
    let mock = Mock::new();
    let (clock, control) = Clock::mock();
    let pool = Pool::builder(mock.clone())
        .max_size(max_size)
        .clock(clock)
        .build()
        .unwrap();
    (pool, mock, control)
}

#[test]
fn a_manager_refusing_a_few_returns_never_makes_the_pool_refuse_gets() {
    // A pool of 5 whose manager refuses the first five returns (a
    // connection that saw an error is not reused), ten callers: every get
    // is served, as bb8 and deadpool serve them.
    let mock = Mock::new();
    for id in 0..5 {
        mock.make_unrecyclable(id);
    }
    let pool = Pool::builder(mock.clone()).max_size(5).build().unwrap();
    let results: Vec<_> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..10)
            .map(|_| {
                scope.spawn(|| {
                    let conn = pool.get_blocking()?;
                    let id = conn.id;
                    drop(conn);
                    Ok::<u64, Error<common::MockError>>(id)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    for result in &results {
        assert!(result.is_ok(), "every get is served: {result:?}");
    }
    let (stats, status) = (pool.stats(), pool.status());
    assert_eq!(stats.closed.broken, 5, "{stats:?}");
    assert_eq!(
        status.consecutive_dial_failures, 0,
        "no dial failed, so the breaker never counted: {status:?}"
    );
    assert_quiescent(&pool, &mock);
}

#[test]
fn gets_spread_over_mock_time_are_never_held_back_by_young_deaths() {
    // max_size 1, check_after 1 s, every connection dead after its first
    // use; gets at 0, 0.5 s and 1.1 s of mock time. Each finds the last
    // connection dead (young, so checked whatever check_after says: its
    // doc says so) and dials at once: nothing waits on a timer the test
    // would have to move.
    let (pool, mock, clock) = defaults_on_mock_clock(1);
    let mut config = pool.config();
    config.check_after = SECOND;
    pool.reconfigure(config).unwrap();
    let mut ids = Vec::new();
    for at in [Duration::ZERO, 500 * MS, 600 * MS] {
        clock.advance(at);
        let mut get = std::pin::pin!(pool.get());
        let Poll::Ready(Ok(conn)) = poll_once(get.as_mut()) else {
            panic!("served at once at {:?}", clock_elapsed(&pool));
        };
        ids.push(conn.id);
        mock.break_conn(conn.id);
    }
    assert_eq!(ids, [0, 1, 2], "a new connection each time");
    let stats = pool.stats();
    assert_eq!(stats.young_deaths, 2, "{stats:?}");
    assert_eq!(stats.health_checks, 2, "young and unproven: checked");
    assert_eq!(pool.status().consecutive_dial_failures, 0);
}

fn clock_elapsed(pool: &Pool<Mock>) -> Duration {
    pool.clock().elapsed()
}

#[test]
fn a_paced_dial_on_a_mock_clock_waits_for_mock_time_and_nothing_else() {
    let (pool, mock, clock) = defaults_on_mock_clock(1);
    let first = pool.get_blocking().unwrap().id;
    mock.break_conn(first);
    // Dead at once after its dial: the next dial is paced.
    let mut get = std::pin::pin!(pool.get());
    assert!(poll_once(get.as_mut()).is_pending(), "paced");
    assert_eq!(pool.status().young_deaths_in_a_row, 1);
    // `connect_backoff` (50 ms) at most, on the pool's own clock.
    clock.advance(50 * MS);
    let Poll::Ready(Ok(conn)) = poll_once(get.as_mut()) else {
        panic!("dialed once the pace passed")
    };
    assert_ne!(conn.id, first);
    drop(conn);
    assert_quiescent(&pool, &mock);
}

#[test]
fn a_get_that_times_out_while_dials_are_paced_says_why_on_mock_time() {
    let (pool, mock, clock) = defaults_on_mock_clock(1);
    let mut config = pool.config();
    config.acquire_timeout = 30 * MS;
    config.connect_backoff = SECOND;
    config.connect_backoff_max = SECOND;
    pool.reconfigure(config).unwrap();
    let first = pool.get_blocking().unwrap().id;
    mock.break_conn(first);
    let mut get = std::pin::pin!(pool.get());
    assert!(poll_once(get.as_mut()).is_pending());
    clock.advance(30 * MS);
    let Poll::Ready(Err(Error::Timeout(timeout))) = poll_once(get.as_mut()) else {
        panic!("timed out at its acquire_timeout of mock time")
    };
    assert_eq!(timeout.young_deaths_in_a_row, 1);
    let text = timeout.to_string();
    assert!(text.contains("dials are paced"), "{text}");
    assert!(text.contains("client limit"), "{text}");
    clock.advance(SECOND);
    drop(pool.get_blocking().unwrap());
    assert_quiescent(&pool, &mock);
}

#[test]
fn young_deaths_never_open_the_breaker() {
    let (pool, mock, clock) = defaults_on_mock_clock(1);
    for round in 0..8 {
        let mut get = std::pin::pin!(pool.get());
        let conn = loop {
            match poll_once(get.as_mut()) {
                Poll::Ready(result) => break result.expect("never refused"),
                Poll::Pending => clock.advance(10 * MS),
            }
        };
        mock.break_conn(conn.id);
        assert_eq!(pool.status().young_deaths_in_a_row, round);
    }
    let status = pool.status();
    assert_eq!(status.consecutive_dial_failures, 0, "{status:?}");
    assert!(pool.stats().young_deaths >= 7);
    clock.advance(SECOND);
}

#[test]
fn a_discarded_young_connection_paces_dials_like_one_found_dead() {
    // Client code that gets an error reply (a server at its client limit
    // answers `-ERR max number of clients reached` and closes) discards
    // the connection: that is a young death too.
    let (pool, mock, clock) = defaults_on_mock_clock(1);
    pool.get_blocking().unwrap().discard();
    assert_eq!(pool.stats().young_deaths, 1);
    let mut get = std::pin::pin!(pool.get());
    assert!(poll_once(get.as_mut()).is_pending(), "the redial is paced");
    clock.advance(50 * MS);
    assert!(matches!(poll_once(get.as_mut()), Poll::Ready(Ok(_))));
    assert_quiescent(&pool, &mock);
}

#[test]
fn lifo_gives_a_thread_the_connection_it_returned_last() {
    let (pool, mock, _clock) = common::mock_pool(4);
    assert_eq!(pool.config().idle_order, IdleOrder::Lifo);
    let a = pool.get_blocking().unwrap();
    let b = pool.get_blocking().unwrap();
    let (a_id, b_id) = (a.id, b.id);
    drop(a);
    drop(b);
    let first = pool.get_blocking().unwrap();
    assert_eq!(first.id, b_id, "returned last, out first");
    let second = pool.get_blocking().unwrap();
    assert_eq!(second.id, a_id);
    drop(second);
    drop(first);
    // Returned last now: `first` (b).
    assert_eq!(pool.get_blocking().unwrap().id, b_id);
    assert_quiescent(&pool, &mock);
}

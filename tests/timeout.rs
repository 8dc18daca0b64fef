//! Semantic 4: an acquire timeout says what happened: how long it waited,
//! the pool's size, in use and waiting, and the last connect error. All on
//! the mock clock (semantic 7): nothing here sleeps.
mod common;

use std::pin::pin;
use std::task::Poll;

use common::{SECOND, Step, assert_quiescent, mock_pool, poll_once};
use ringpool::Error;

#[test]
fn a_waiter_times_out_with_the_pool_state_in_the_error() {
    let (pool, mock, clock) = mock_pool(1);
    let held = pool.get_blocking().unwrap();
    let mut get = pin!(pool.get());
    assert!(poll_once(get.as_mut()).is_pending());

    clock.advance(4 * SECOND);
    assert!(
        poll_once(get.as_mut()).is_pending(),
        "not before the 5 s default"
    );
    clock.advance(SECOND);
    let Poll::Ready(Err(Error::Timeout(timeout))) = poll_once(get.as_mut()) else {
        panic!("times out at 5 s")
    };
    assert_eq!(timeout.waited, 5 * SECOND);
    assert_eq!((timeout.size, timeout.in_use, timeout.max_size), (1, 1, 1));
    assert!(timeout.last_connect_error.is_none());
    let message = timeout.to_string();
    assert!(message.contains("timed out after 5s"), "{message}");
    assert!(message.contains("size 1, in use 1"), "{message}");
    assert_eq!(pool.stats().timeouts, 1);
    assert_eq!(
        pool.status().waiting,
        0,
        "a timed-out waiter leaves the queue"
    );
    drop(held);
    assert_quiescent(&pool, &mock);
}

#[test]
fn the_timeout_fires_without_the_waiter_being_polled() {
    // The sweep settles the waiter and wakes it; a later poll sees the result.
    let (pool, mock, clock) = mock_pool(1);
    let held = pool.get_blocking().unwrap();
    let mut get = pin!(pool.get());
    assert!(poll_once(get.as_mut()).is_pending());
    clock.advance(6 * SECOND);
    assert_eq!(pool.status().waiting, 0, "the sweep removed the waiter");
    drop(held);
    assert_eq!(
        pool.status().idle,
        1,
        "the returned connection is not handed to a dead waiter"
    );
    assert!(matches!(
        poll_once(get.as_mut()),
        Poll::Ready(Err(Error::Timeout(_)))
    ));
    assert_quiescent(&pool, &mock);
}

#[test]
fn the_timeout_names_the_last_connect_error() {
    let (pool, mock, clock) = mock_pool(2);
    let mut config = pool.config();
    config.breaker_threshold = None; // keep retrying until the timeout
    pool.reconfigure(config).unwrap();
    mock.script(&[Step::Refused; 1000]);
    let mut get = pin!(pool.get());
    assert!(
        poll_once(get.as_mut()).is_pending(),
        "retries after backoff"
    );
    let mut result = Poll::Pending;
    for _ in 0..100 {
        clock.advance(SECOND / 10);
        result = poll_once(get.as_mut());
        if result.is_ready() {
            break;
        }
    }
    let Poll::Ready(Err(Error::Timeout(timeout))) = result else {
        panic!("times out")
    };
    // A report that walks the source chain names the cause exactly once.
    let error = Error::Timeout(timeout);
    let mut report = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        report += &format!(": {cause}");
        source = cause.source();
    }
    assert_eq!(report.matches("connection refused").count(), 1, "{report}");
    assert!(report.contains("dials are failing"), "{report}");
    let Error::Timeout(timeout) = error else {
        unreachable!()
    };
    assert_eq!(timeout.size, 0, "failed dials hold no slot");
    assert_eq!(timeout.waiting, 1, "the caller counts as waiting");
    assert!(pool.stats().connect_errors >= 2, "dials were retried");
    mock.clear_script();
    assert_quiescent(&pool, &mock);
}

#[test]
fn a_hanging_connect_is_bounded_by_the_acquire_timeout() {
    let (pool, mock, clock) = mock_pool(1);
    mock.script(&[Step::Hang]);
    let mut get = pin!(pool.get());
    assert!(poll_once(get.as_mut()).is_pending());
    assert_eq!(pool.status().creating, 1);
    clock.advance(5 * SECOND);
    assert!(matches!(
        poll_once(get.as_mut()),
        Poll::Ready(Err(Error::Timeout(_)))
    ));
    let status = pool.status();
    assert_eq!(
        (status.size, status.creating),
        (0, 0),
        "the slot is released"
    );
    assert_quiescent(&pool, &mock);
}

#[test]
fn a_fatal_connect_error_is_returned_at_once() {
    let (pool, mock, _clock) = mock_pool(1);
    mock.script(&[Step::Denied]);
    let mut get = pin!(pool.get());
    let Poll::Ready(Err(Error::Connect(error))) = poll_once(get.as_mut()) else {
        panic!("no waiting, no retry for a fatal error")
    };
    assert_eq!(error.to_string(), "bad credentials");
    assert_eq!(mock.connect_calls(), 1);
    assert_quiescent(&pool, &mock);
}

#[test]
fn fatal_errors_fail_queued_waiters_immediately() {
    let (pool, mock, _clock) = mock_pool(1);
    let held = pool.get_blocking().unwrap();
    let mut first = pin!(pool.get());
    let mut second = pin!(pool.get());
    assert!(poll_once(first.as_mut()).is_pending());
    assert!(poll_once(second.as_mut()).is_pending());
    mock.script(&[Step::Denied]);
    held.discard(); // the slot goes to `first`, whose dial fails fatally
    let Poll::Ready(Err(Error::Connect(_))) = poll_once(first.as_mut()) else {
        panic!("first fails with the dial error")
    };
    let Poll::Ready(Err(Error::Connect(error))) = poll_once(second.as_mut()) else {
        panic!("second fails with it too, without waiting out its timeout")
    };
    assert_eq!(error.to_string(), "bad credentials");
    assert_quiescent(&pool, &mock);
}

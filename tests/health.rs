//! Protocol pings on the mock clock: at checkout after a connection sat idle
//! past `ping_after`, always under `ping_timeout`; a failed, hung or
//! cancelled ping closes the connection and the get moves on.
mod common;

use std::pin::pin;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use common::{Mock, SECOND, assert_quiescent, poll_once};
use ringpool::{Clock, MockClock, Pool};

fn pool() -> (Pool<Mock>, Mock, MockClock) {
    let mock = Mock::new();
    let (clock, control) = Clock::mock();
    let pool = Pool::builder(mock.clone())
        .young_death_window(None)
        .ping_after(Some(SECOND))
        .ping_timeout(SECOND)
        .idle_timeout(None)
        .clock(clock)
        .build()
        .unwrap();
    (pool, mock, control)
}

#[test]
fn a_connection_idle_past_ping_after_is_pinged_at_checkout() {
    let (pool, mock, clock) = pool();
    let id = pool.get_blocking().unwrap().id;
    clock.advance(SECOND / 2);
    assert_eq!(pool.get_blocking().unwrap().id, id);
    assert_eq!(mock.pings(), 0, "recently used: no ping");
    clock.advance(2 * SECOND);
    assert_eq!(
        pool.get_blocking().unwrap().id,
        id,
        "pinged, healthy, handed out"
    );
    assert_eq!(mock.pings(), 1);
    assert_quiescent(&pool, &mock);
}

#[test]
fn a_connection_due_a_ping_is_checked_and_pinged_once() {
    // The fast path checks it and hands it to the slow path for its ping:
    // the slow path must not check it again (a second liveness check, a
    // second health-check count).
    let mock = Mock::new();
    let (clock, control) = Clock::mock();
    let pool = Pool::builder(mock.clone())
        .young_death_window(None)
        .check_after(Duration::ZERO)
        .ping_after(Some(SECOND))
        .ping_timeout(SECOND)
        .idle_timeout(None)
        .clock(clock)
        .build()
        .unwrap();
    drop(pool.get_blocking().unwrap());
    let checks = mock.state.liveness_checks.load(Ordering::SeqCst);
    control.advance(2 * SECOND);
    drop(pool.get_blocking().unwrap());
    assert_eq!(mock.pings(), 1);
    assert_eq!(
        mock.state.liveness_checks.load(Ordering::SeqCst) - checks,
        1,
        "one liveness check for one checkout"
    );
    assert_quiescent(&pool, &mock);
}

#[test]
fn a_failed_ping_closes_the_connection_and_the_get_moves_on() {
    let (pool, mock, clock) = pool();
    let id = pool.get_blocking().unwrap().id;
    mock.fail_pings(id);
    clock.advance(2 * SECOND);
    let conn = pool.get_blocking().expect("no error for the caller");
    assert_ne!(conn.id, id, "a fresh connection");
    assert_eq!(pool.stats().closed.broken, 1);
    drop(conn);
    assert_quiescent(&pool, &mock);
}

#[test]
fn a_hung_ping_is_bounded_by_ping_timeout() {
    let (pool, mock, clock) = pool();
    let id = pool.get_blocking().unwrap().id;
    clock.advance(2 * SECOND);
    mock.state.ping_hangs.store(true, Ordering::SeqCst);
    let mut get = pin!(pool.get());
    assert!(poll_once(get.as_mut()).is_pending(), "pinging");
    mock.state.ping_hangs.store(false, Ordering::SeqCst);
    clock.advance(SECOND);
    let Poll::Ready(Ok(conn)) = poll_once(get.as_mut()) else {
        panic!("the ping timed out and the get dialed")
    };
    assert_ne!(conn.id, id);
    assert_eq!(pool.stats().closed.broken, 1);
    drop(conn);
    assert_quiescent(&pool, &mock);
}

#[test]
fn a_get_dropped_mid_ping_closes_the_connection() {
    let (pool, mock, clock) = pool();
    drop(pool.get_blocking().unwrap());
    clock.advance(2 * SECOND);
    mock.state.ping_hangs.store(true, Ordering::SeqCst);
    {
        let mut get = pin!(pool.get());
        assert!(poll_once(get.as_mut()).is_pending());
    }
    let status = pool.status();
    assert_eq!(
        (status.size, status.idle),
        (0, 0),
        "unknown state: closed, not returned"
    );
    assert_eq!(pool.stats().closed.broken, 1);
    assert_quiescent(&pool, &mock);
}

#[test]
fn maintenance_pings_idle_connections_and_closes_failures() {
    let (pool, mock, clock) = pool();
    let (a, b) = (pool.get_blocking().unwrap(), pool.get_blocking().unwrap());
    let bad = b.id;
    drop((a, b));
    mock.fail_pings(bad);
    let mut maintenance = pin!(pool.maintenance());
    clock.advance(Duration::from_secs(6)); // past check_after and one round
    let _ = poll_once(maintenance.as_mut());
    assert!(mock.pings() >= 2, "both idle connections pinged");
    assert_eq!(pool.status().idle, 1, "the failing one closed");
    assert_eq!(pool.stats().closed.broken, 1);
    pool.close();
    assert!(
        poll_once(maintenance.as_mut()).is_ready(),
        "ends with the pool"
    );
}

//! Time-based checkout policies on the mock clock (semantic 7): idle
//! timeout, jittered lifetime, and the liveness-check window.
mod common;

use std::time::Duration;

use common::{Mock, SECOND, assert_quiescent};
use ringpool::{Clock, MockClock, Pool};

fn pool_with(
    edit: impl FnOnce(ringpool::Builder<Mock>) -> ringpool::Builder<Mock>,
) -> (Pool<Mock>, Mock, MockClock) {
    let mock = Mock::new();
    let (clock, control) = Clock::mock();
    let pool = edit(
        Pool::builder(mock.clone())
            .young_death_window(None)
            .max_size(4)
            .clock(clock),
    )
    .build()
    .unwrap();
    (pool, mock, control)
}

#[test]
fn an_idle_connection_past_idle_timeout_is_closed_at_checkout() {
    let (pool, mock, clock) = pool_with(|b| b.idle_timeout(Some(30 * SECOND)));
    let first = pool.get_blocking().unwrap().id;
    clock.advance(29 * SECOND);
    assert_eq!(pool.get_blocking().unwrap().id, first, "still fresh");
    clock.advance(30 * SECOND);
    let conn = pool.get_blocking().unwrap();
    assert_ne!(conn.id, first, "the stale one was replaced");
    assert_eq!(pool.stats().closed.idle_timeout, 1);
    drop(conn);
    assert_quiescent(&pool, &mock);
}

#[test]
fn idle_timeout_keeps_min_idle_connections() {
    let (pool, mock, clock) = pool_with(|b| b.idle_timeout(Some(SECOND)).min_idle(1));
    let first = pool.get_blocking().unwrap().id;
    clock.advance(10 * SECOND);
    assert_eq!(
        pool.get_blocking().unwrap().id,
        first,
        "the last idle one is kept for min_idle"
    );
    assert_eq!(pool.stats().closed.idle_timeout, 0);
    assert_quiescent(&pool, &mock);
}

#[test]
fn a_connection_past_its_lifetime_is_closed_at_checkout() {
    let (pool, mock, clock) = pool_with(|b| {
        b.max_lifetime(Some(60 * SECOND))
            .lifetime_jitter(0.0)
            .idle_timeout(None)
    });
    let first = pool.get_blocking().unwrap().id;
    clock.advance(59 * SECOND);
    assert_eq!(pool.get_blocking().unwrap().id, first);
    clock.advance(SECOND);
    assert_ne!(pool.get_blocking().unwrap().id, first);
    assert_eq!(pool.stats().closed.lifetime, 1);
    assert_quiescent(&pool, &mock);
}

#[test]
fn lifetimes_are_spread_by_the_jitter() {
    let (pool, mock, clock) = pool_with(|b| {
        b.max_size(64)
            .max_lifetime(Some(100 * SECOND))
            .lifetime_jitter(0.2)
            .idle_timeout(None)
    });
    let conns: Vec<_> = (0..64).map(|_| pool.get_blocking().unwrap()).collect();
    drop(conns);
    // Each lifetime lies in [80 s, 100 s]: none expires before 80 s, all by 100 s,
    // and they do not all expire in the same second.
    clock.advance(80 * SECOND - Duration::from_millis(1));
    let mut expired_at = Vec::new();
    for second in 80..=100 {
        let conns: Vec<_> = (0..64).map(|_| pool.get_blocking().unwrap()).collect();
        drop(conns);
        let lifetime = pool.stats().closed.lifetime;
        expired_at.push((second, lifetime));
        clock.advance(SECOND);
    }
    assert_eq!(expired_at[0].1, 0, "none expires before 80 s");
    assert_eq!(expired_at.last().unwrap().1, 64, "all expired by 100 s");
    let distinct_seconds = expired_at.windows(2).filter(|w| w[1].1 > w[0].1).count();
    assert!(
        distinct_seconds >= 5,
        "expiries are spread out: {expired_at:?}"
    );
    assert_quiescent(&pool, &mock);
}

#[test]
fn the_liveness_check_is_skipped_within_the_window() {
    let (pool, mock, clock) = pool_with(|b| b.check_after(Duration::from_millis(500)));
    let id = pool.get_blocking().unwrap().id;
    mock.break_conn(id);
    clock.advance(Duration::from_millis(100));
    assert_eq!(
        pool.get_blocking().unwrap().id,
        id,
        "recently used: not checked"
    );
    clock.advance(Duration::from_millis(600));
    let conn = pool.get_blocking().unwrap();
    assert_ne!(
        conn.id, id,
        "idle past the window: checked, found broken, replaced"
    );
    assert_eq!(pool.stats().closed.broken, 1);
    drop(conn);
    assert_quiescent(&pool, &mock);
}

#[test]
fn a_zero_window_checks_every_checkout() {
    let (pool, mock, _clock) = pool_with(|b| b.check_after(Duration::ZERO));
    let id = pool.get_blocking().unwrap().id;
    mock.break_conn(id);
    assert_ne!(pool.get_blocking().unwrap().id, id);
    assert_quiescent(&pool, &mock);
}

#[test]
fn a_broken_idle_connection_is_skipped_for_the_next_idle_one() {
    let (pool, mock, clock) = pool_with(|b| b.check_after(Duration::ZERO));
    let a = pool.get_blocking().unwrap();
    let b = pool.get_blocking().unwrap();
    let (a_id, b_id) = (a.id, b.id);
    drop((a, b));
    mock.break_conn(a_id);
    clock.advance(SECOND);
    assert_eq!(
        pool.get_blocking().unwrap().id,
        b_id,
        "no dial: the next idle one is used"
    );
    assert_eq!(mock.made(), 2);
    assert_quiescent(&pool, &mock);
}

//! Lifecycle policies on the mock clock: warm pool and paced opening, idle
//! expiry that never breaks `min_idle`, demand-driven warm size, a target
//! that goes down (bounded dials, fail-fast breaker) and comes back, leak
//! detection, drain, and maintenance that stops with the pool. The
//! maintenance task runs on a single-threaded `LocalPool`, stepped with
//! `run_until_stalled` after each clock move: deterministic, no sleeping.
mod common;
mod harness;

use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use common::{Mock, SECOND, Step, assert_quiescent, poll_once};
use harness::Harness;
use ringpool::{Clock, Error, Pool};

#[test]
fn min_idle_is_opened_and_kept_topped_up() {
    let mut h = Harness::new(|b| b.min_idle(3));
    assert_eq!(h.pool.status().idle, 3, "opened in the background");
    h.pool.get_blocking().unwrap().discard();
    h.run.settle();
    assert_eq!(h.pool.status().idle, 3, "topped up after a discard");
    assert_eq!(h.mock.made(), 4);
    assert_quiescent(&h.pool, &h.mock);
}

#[test]
fn warm_up_waits_for_min_idle() {
    let mock = Mock::new();
    let (clock, _control) = Clock::mock();
    let pool = Pool::builder(mock.clone())
        .young_death_window(None)
        .min_idle(4)
        .clock(clock)
        .build()
        .unwrap();
    let opened = futures_executor::block_on(pool.warm_up()).unwrap();
    assert_eq!(opened, 4);
    assert_eq!(pool.status().idle, 4);
    assert_quiescent(&pool, &mock);
}

#[test]
fn opening_is_paced_by_max_concurrent_dials() {
    let mock = Mock::new();
    mock.script(&[Step::Slow; 6]);
    let (clock, _control) = Clock::mock();
    let pool = Pool::builder(mock.clone())
        .young_death_window(None)
        .min_idle(6)
        .max_concurrent_dials(2)
        .clock(clock)
        .build()
        .unwrap();
    let mut warm = pin!(pool.warm_up());
    let mut most_in_flight = 0;
    while poll_once(warm.as_mut()).is_pending() {
        most_in_flight = most_in_flight.max(pool.status().creating);
        mock.release(1);
    }
    assert_eq!(
        most_in_flight, 2,
        "never more than max_concurrent_dials at once"
    );
    assert_eq!(pool.status().idle, 6);
    assert_quiescent(&pool, &mock);
}

#[test]
fn gets_also_respect_the_dial_limit() {
    let mock = Mock::new();
    mock.script(&[Step::Slow; 4]);
    let (clock, _control) = Clock::mock();
    let pool = Pool::builder(mock.clone())
        .young_death_window(None)
        .max_concurrent_dials(1)
        .clock(clock)
        .build()
        .unwrap();
    let mut a = pin!(pool.get());
    let mut b = pin!(pool.get());
    assert!(poll_once(a.as_mut()).is_pending());
    assert!(poll_once(b.as_mut()).is_pending());
    let status = pool.status();
    assert_eq!(
        (status.creating, status.waiting),
        (1, 1),
        "the second get waits for the dial slot"
    );
    mock.release(1);
    let Poll::Ready(Ok(first)) = poll_once(a.as_mut()) else {
        panic!("dialed")
    };
    assert!(poll_once(b.as_mut()).is_pending(), "now dialing");
    assert_eq!(pool.status().creating, 1);
    mock.release(1);
    let Poll::Ready(Ok(second)) = poll_once(b.as_mut()) else {
        panic!("dialed")
    };
    drop((first, second));
    assert_quiescent(&pool, &mock);
}

#[test]
fn background_expiry_never_breaks_min_idle() {
    let mut h = Harness::new(|b| b.min_idle(2).idle_timeout(Some(10 * SECOND)));
    h.run.advance(120 * SECOND, SECOND);
    let status = h.pool.status();
    assert_eq!(status.idle, 2, "{status:?}");
    assert_eq!(
        h.mock.made(),
        2,
        "the min_idle connections were kept, not churned"
    );
    assert_eq!(h.pool.stats().closed.idle_timeout, 0);
}

#[test]
fn idle_connections_time_out_in_the_background_down_to_min_idle() {
    let mut h = Harness::new(|b| b.min_idle(1).idle_timeout(Some(30 * SECOND)));
    let held: Vec<_> = (0..5).map(|_| h.pool.get_blocking().unwrap()).collect();
    drop(held);
    assert_eq!(h.pool.status().idle, 5);
    h.run.advance(25 * SECOND, SECOND);
    assert_eq!(h.pool.status().idle, 5, "not before the idle timeout");
    h.run.advance(15 * SECOND, SECOND);
    let status = h.pool.status();
    assert_eq!(status.idle, 1, "{status:?}");
    assert_eq!(h.pool.stats().closed.idle_timeout, 4);
    assert_quiescent(&h.pool, &h.mock);
}

#[test]
fn lifetimes_expire_in_the_background_and_are_replaced() {
    let mut h = Harness::new(|b| {
        b.min_idle(4)
            .max_lifetime(Some(60 * SECOND))
            .lifetime_jitter(0.25)
            .idle_timeout(None)
    });
    assert_eq!(h.mock.made(), 4);
    h.run.advance(44 * SECOND, SECOND);
    assert_eq!(
        h.pool.stats().closed.lifetime,
        0,
        "no lifetime is below 45 s"
    );
    h.run.advance(21 * SECOND, SECOND);
    assert_eq!(
        h.pool.stats().closed.lifetime,
        4,
        "all expired by 60 s (+ one round)"
    );
    assert_eq!(h.pool.status().idle, 4, "and were replaced");
    assert_quiescent(&h.pool, &h.mock);
}

#[test]
fn a_burst_grows_the_warm_set_and_a_quiet_spell_shrinks_it() {
    let mut h = Harness::new(|b| {
        b.min_idle(1)
            .max_size(16)
            .idle_timeout(Some(10 * SECOND))
            .demand_half_life(Some(120 * SECOND))
    });
    assert_eq!(h.pool.status().warm_target, 1);
    // A burst of 10 concurrent gets.
    let burst: Vec<_> = (0..10).map(|_| h.pool.get_blocking().unwrap()).collect();
    h.run.advance(5 * SECOND, SECOND); // one housekeeping round sees it
    drop(burst);
    let grown = h.pool.status();
    assert!(grown.warm_target >= 10, "{grown:?}");
    // Past the idle timeout, the warm set stays.
    h.run.advance(30 * SECOND, SECOND);
    assert!(
        h.pool.status().size >= 8,
        "kept warm: {:?}",
        h.pool.status()
    );
    // A quiet spell of ten half-lives releases it.
    h.run.advance(1200 * SECOND, 5 * SECOND);
    let quiet = h.pool.status();
    assert_eq!(quiet.warm_target, 1, "{quiet:?}");
    assert_eq!(quiet.size, 1, "{quiet:?}");
    assert_quiescent(&h.pool, &h.mock);
}

#[test]
fn while_the_target_is_down_dials_are_bounded_and_gets_fail_fast() {
    let mut h = Harness::new(|b| b.min_idle(2).breaker_threshold(Some(3)));
    let stale: Vec<u64> = {
        let conns: Vec<_> = (0..2).map(|_| h.pool.get_blocking().unwrap()).collect();
        conns.iter().map(|c| c.id).collect()
    };
    // The target goes down: open connections die, every dial is refused.
    for id in &stale {
        h.mock.break_conn(*id);
    }
    h.mock.script(&[Step::Refused; 10_000]);
    let calls_before = h.mock.connect_calls();
    h.run.advance(60 * SECOND, Duration::from_millis(100));
    let dials = h.mock.connect_calls() - calls_before;
    // Backoff 50 ms doubling to the 200 ms cap, each drawn from the upper
    // half: one probe every 100-200 ms, so 5 to 10 dials a second (the
    // target is at most 20); a spinning pool would make thousands.
    assert!(
        (150..=610).contains(&dials),
        "{dials} dials in 60 s while down"
    );

    // A get fails at once with the real error, instead of waiting 5 s.
    let mut get = pin!(h.pool.get());
    let Poll::Ready(Err(Error::Unavailable(down))) = poll_once(get.as_mut()) else {
        panic!("fails fast while the breaker is open")
    };
    let cause = std::error::Error::source(&down).expect("the connect error is the source");
    assert!(cause.to_string().contains("connection refused"), "{cause}");
    assert!(
        h.pool.stats().closed.broken >= 2,
        "dead connections were not handed out"
    );

    // The target comes back: the pool recovers by itself.
    h.mock.clear_script();
    h.run.advance(10 * SECOND, Duration::from_millis(100));
    assert_eq!(h.pool.status().idle, 2, "refilled to min_idle");
    let conn = h.pool.get_blocking().expect("served after recovery");
    assert!(!stale.contains(&conn.id), "no stale connection handed out");
    drop(conn);
    assert_quiescent(&h.pool, &h.mock);
}

#[test]
fn a_new_leak_threshold_reaches_checkouts_already_out_and_none_stops_reports() {
    let (clock, time) = Clock::mock();
    let pool = Pool::builder(Mock::new())
        .young_death_window(None)
        .leak_threshold(Some(60 * SECOND))
        .idle_timeout(None)
        .clock(clock)
        .build()
        .unwrap();
    let held = pool.get_blocking().unwrap();
    let mut config = pool.config();
    config.leak_threshold = Some(SECOND);
    pool.reconfigure(config.clone()).unwrap();
    time.advance(2 * SECOND);
    assert_eq!(pool.stats().leaks, 1, "the shorter threshold applies to it");
    // Off: a checkout held for ever is not reported.
    config.leak_threshold = None;
    pool.reconfigure(config.clone()).unwrap();
    let unwatched = pool.get_blocking().unwrap();
    time.advance(120 * SECOND);
    assert_eq!(pool.stats().leaks, 1);
    // On again: the sweep starts again with the next watched checkout.
    config.leak_threshold = Some(SECOND);
    pool.reconfigure(config).unwrap();
    let watched = pool.get_blocking().unwrap();
    time.advance(SECOND + SECOND / 2);
    assert_eq!(pool.stats().leaks, 2, "reported within 1.25 thresholds");
    drop((held, unwatched, watched));
}

#[test]
fn a_bound_raised_to_the_idle_capacity_still_has_a_place_for_every_checkout() {
    let (clock, time) = Clock::mock();
    let pool = Pool::builder(Mock::new())
        .young_death_window(None)
        .max_size(4)
        .idle_capacity(24)
        .leak_threshold(Some(10 * SECOND))
        .idle_timeout(None)
        .clock(clock)
        .build()
        .unwrap();
    // The ledger is made at the first watched checkout, with a bound of 4;
    // the bound then grows as far as the idle capacity lets it.
    let first = pool.get_blocking().unwrap();
    let mut config = pool.config();
    config.max_size = 24;
    pool.reconfigure(config).unwrap();
    let mut held: Vec<_> = (0..23).map(|_| pool.get_blocking().unwrap()).collect();
    held.push(first);
    time.advance(9 * SECOND);
    assert_eq!(pool.stats().leaks, 0, "not before the threshold");
    time.advance(3 * SECOND);
    assert_eq!(pool.stats().leaks, 24, "every one");
    drop(held);
    assert_eq!(pool.status().idle, 24);
    time.advance(60 * SECOND);
    assert_eq!(
        pool.stats().leaks,
        24,
        "returned: reported once, never again"
    );
}

#[test]
fn drain_waits_for_returns_and_closes_them() {
    let mock = Mock::new();
    let (clock, time) = Clock::mock();
    let pool = Pool::builder(mock.clone())
        .young_death_window(None)
        .clock(clock)
        .build()
        .unwrap();
    let a = pool.get_blocking().unwrap();
    let b = pool.get_blocking().unwrap();
    drop(pool.get_blocking().unwrap()); // one idle
    let mut drain = pin!(pool.drain(30 * SECOND));
    assert!(poll_once(drain.as_mut()).is_pending());
    assert_eq!(pool.status().idle, 0, "idle closed at once");
    assert!(
        matches!(pool.get_blocking(), Err(Error::Closed)),
        "no new gets"
    );
    drop(a);
    assert!(poll_once(drain.as_mut()).is_pending());
    time.advance(SECOND);
    drop(b);
    let Poll::Ready(report) = poll_once(drain.as_mut()) else {
        panic!("drained")
    };
    assert_eq!(report.still_in_use, 0);
    assert_eq!(report.waited, SECOND);
    assert_eq!(mock.live(), 0);
    assert_quiescent(&pool, &mock);
}

#[test]
fn drain_gives_up_at_its_deadline() {
    let mock = Mock::new();
    let (clock, time) = Clock::mock();
    let pool = Pool::builder(mock.clone())
        .young_death_window(None)
        .clock(clock)
        .build()
        .unwrap();
    let held = pool.get_blocking().unwrap();
    let mut drain = pin!(pool.drain(10 * SECOND));
    assert!(poll_once(drain.as_mut()).is_pending());
    time.advance(10 * SECOND);
    let Poll::Ready(report) = poll_once(drain.as_mut()) else {
        panic!("gave up")
    };
    assert_eq!(report.still_in_use, 1);
    drop(held); // closed on return
    assert_eq!(mock.live(), 0);
    assert_quiescent(&pool, &mock);
}

#[test]
fn maintenance_stops_when_the_pool_is_closed_or_dropped() {
    let mut closed = Harness::new(|b| b.min_idle(1));
    assert!(!closed.run.maintenance_done.get());
    closed.pool.close();
    closed.run.settle();
    assert!(closed.run.maintenance_done.get(), "ends on close");

    let Harness { pool, mut run, .. } = Harness::new(|b| b.min_idle(1));
    drop(pool);
    run.clock.advance(10 * SECOND); // its next round finds the pool gone
    run.settle();
    assert!(
        run.maintenance_done.get(),
        "ends when the last handle is dropped"
    );
}

#[test]
fn every_lifecycle_setting_is_hot_swappable() {
    let mut h = Harness::new(|b| b.min_idle(1));
    assert_eq!(h.pool.status().idle, 1);
    let mut config = h.pool.config();
    config.min_idle = 4;
    config.leak_threshold = Some(SECOND);
    config.demand_half_life = Some(SECOND);
    config.max_concurrent_dials = 1;
    config.breaker_threshold = None;
    config.maintenance_interval = SECOND;
    h.pool.reconfigure(config).unwrap();
    h.run.settle();
    assert_eq!(
        h.pool.status().idle,
        4,
        "a raised min_idle is filled at once"
    );
    let held = h.pool.get_blocking().unwrap();
    h.run.clock.advance(2 * SECOND);
    assert_eq!(h.pool.stats().leaks, 1, "the new leak threshold applies");
    drop(held);
}

#[test]
fn owned_guards_are_watched_for_leaks_whether_dialed_or_reused() {
    let (clock, time) = Clock::mock();
    let pool = Pool::builder(Mock::new())
        .young_death_window(None)
        .leak_threshold(Some(SECOND))
        .idle_timeout(None)
        .clock(clock)
        .build()
        .unwrap();
    // Dialed for this get (the slow path).
    let dialed = futures_executor::block_on(pool.get_owned()).unwrap();
    time.advance(2 * SECOND);
    assert_eq!(
        pool.stats().leaks,
        1,
        "an owned guard from a dial is watched"
    );
    drop(dialed);
    // Reused from idle (the fast path): watched as well.
    let reused = futures_executor::block_on(pool.get_owned()).unwrap();
    assert_eq!(pool.stats().reused, 1, "served from idle");
    time.advance(2 * SECOND);
    assert_eq!(pool.stats().leaks, 2, "an owned guard from idle is watched");
    // Returned: its watch ends with it.
    drop(reused);
    time.advance(10 * SECOND);
    assert_eq!(
        pool.stats().leaks,
        2,
        "a returned connection is not reported"
    );
    assert_eq!(pool.status().idle, 1);
}

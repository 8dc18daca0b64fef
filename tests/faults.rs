//! Faults users hit, one test per fault, each named for it: a fatal dial
//! error, panics in every manager callback, refill dials bounded by the
//! wrong timeout, a reconfigured lifetime, an expired connection returned,
//! `min_idle` restored late, timeouts early against the OS clock, a ping
//! that changed socket state, and the waiting count of a timeout error.
mod common;
mod harness;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use common::{Callback, Mock, SECOND, Step, assert_quiescent, mock_pool};
use harness::Harness;
use ringpool::tcp::TcpManager;
use ringpool::{Clock, Error, Pool};

const MS: Duration = Duration::from_millis(1);

#[test]
fn a_fatal_connect_error_pauses_refills_instead_of_spinning() {
    let mut h = Harness::new(|b| b.min_idle(0));
    h.mock.script(&[Step::Denied; 100_000]);
    let mut config = h.pool.config();
    config.min_idle = 1;
    h.pool.reconfigure(config).unwrap();
    h.run.settle();
    assert_eq!(h.mock.connect_calls(), 1, "one fatal dial");
    let status = h.pool.status();
    assert!(
        status.refills_paused_for.is_some(),
        "the pause is visible: {status:?}"
    );
    // 25 seconds later, still paused: no redial at all (the fault made
    // tens of thousands of dials in 300 ms and froze the runtime).
    h.run.advance(25 * SECOND, 50 * MS);
    assert_eq!(h.mock.connect_calls(), 1);
    // After the pause (30 s) it tries again, once.
    h.run.advance(10 * SECOND, 50 * MS);
    assert_eq!(h.mock.connect_calls(), 2);
    assert_eq!(h.pool.stats().connect_errors, 2);
    // The operator fixes the config: refills resume at once.
    h.mock.clear_script();
    h.pool.reconfigure(h.pool.config()).unwrap();
    h.run.settle();
    assert_eq!(h.pool.status().idle, 1);
    assert_eq!(h.pool.status().refills_paused_for, None);
    assert_quiescent(&h.pool, &h.mock);
}

/// Runs `body`, expects it to panic with the manager's panic, and checks
/// that the pool then owns nothing in use and can serve again.
fn panics_and_leaks_nothing(pool: &Pool<Mock>, mock: &Mock, body: impl FnOnce()) {
    let outcome = catch_unwind(AssertUnwindSafe(body));
    assert!(outcome.is_err(), "the panic reaches the caller");
    mock.stop_panics();
    let status = pool.status();
    assert_eq!(
        (status.in_use, status.creating),
        (0, 0),
        "slot freed: {status:?}"
    );
    drop(pool.get_blocking().expect("the pool still serves"));
    assert_quiescent(pool, mock);
}

#[test]
fn a_panic_in_can_recycle_frees_the_slot() {
    let (pool, mock, _clock) = mock_pool(1);
    let conn = pool.get_blocking().unwrap();
    mock.panic_in(Callback::CanRecycle);
    panics_and_leaks_nothing(&pool, &mock, || drop(conn));
    assert_eq!(pool.stats().closed.broken, 1);
}

#[test]
fn a_panic_in_can_recycle_with_an_on_return_hook_frees_the_slot_and_skips_the_hook() {
    let mock = Mock::new();
    let hook_calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&hook_calls);
    let pool = Pool::builder(mock.clone())
        .max_size(1)
        .on_return(move |_conn| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        })
        .build()
        .unwrap();
    let conn = pool.get_blocking().unwrap();
    mock.panic_in(Callback::CanRecycle);
    panics_and_leaks_nothing(&pool, &mock, || drop(conn));
    assert_eq!(pool.stats().closed.broken, 1);
    assert_eq!(
        hook_calls.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the hook ran only for the healthy return after it"
    );
}

#[test]
fn a_panic_in_is_broken_frees_the_slot() {
    let (pool, mock, _clock) = mock_pool(1);
    let mut config = pool.config();
    config.check_after = Duration::ZERO;
    pool.reconfigure(config).unwrap();
    drop(pool.get_blocking().unwrap());
    mock.panic_in(Callback::IsBroken);
    panics_and_leaks_nothing(&pool, &mock, || drop(pool.get_blocking()));
}

#[test]
fn a_panic_in_ping_frees_the_slot() {
    let (pool, mock, _clock) = mock_pool(1);
    let mut config = pool.config();
    config.ping_after = Some(Duration::ZERO);
    pool.reconfigure(config).unwrap();
    drop(pool.get_blocking().unwrap());
    mock.panic_in(Callback::Ping);
    panics_and_leaks_nothing(&pool, &mock, || drop(pool.get_blocking()));
}

#[test]
fn a_panic_in_connect_frees_the_slot_and_backs_off() {
    let (pool, mock, clock) = mock_pool(1);
    mock.panic_in(Callback::Connect);
    let outcome = catch_unwind(AssertUnwindSafe(|| drop(pool.get_blocking())));
    assert!(outcome.is_err(), "the panic reaches the caller");
    mock.stop_panics();
    let status = pool.status();
    assert_eq!((status.size, status.creating), (0, 0), "{status:?}");
    assert_eq!(pool.stats().connect_errors, 1, "a failed dial");
    assert!(
        matches!(pool.try_get(), Err(Error::Exhausted { .. })),
        "nothing idle"
    );
    // The gate backs off as for a refused connect, so a manager that
    // panics on every connect cannot make refills spin.
    let mut get = std::pin::pin!(pool.get());
    assert!(common::poll_once(get.as_mut()).is_pending(), "backing off");
    assert_eq!(mock.connect_calls(), 1);
    clock.advance(SECOND);
    assert!(common::poll_once(get.as_mut()).is_ready(), "redialed");
    assert_quiescent(&pool, &mock);
}

#[test]
fn a_panic_in_close_is_caught_and_counted() {
    let (pool, mock, _clock) = mock_pool(1);
    mock.panic_in(Callback::Close);
    pool.get_blocking().unwrap().discard();
    let stats = pool.stats();
    assert_eq!(stats.manager_panics, 1, "{stats:?}");
    assert_eq!(stats.closed.discarded, 1);
    assert_eq!(pool.status().size, 0, "slot freed");
    mock.stop_panics();
    drop(pool.get_blocking().expect("the pool still serves"));
    assert_quiescent(&pool, &mock);
}

#[test]
fn a_panic_on_a_background_path_is_caught_and_maintenance_goes_on() {
    let mut h = Harness::new(|b| {
        b.min_idle(2)
            .check_after(Duration::ZERO)
            .maintenance_interval(SECOND)
    });
    assert_eq!(h.pool.status().idle, 2);
    h.mock.panic_in(Callback::IsBrokenBatch);
    h.run.advance(SECOND, 100 * MS);
    assert!(h.pool.stats().manager_panics >= 1, "{:?}", h.pool.stats());
    assert_eq!(h.pool.status().idle, 2, "the lent connections came back");
    h.mock.stop_panics();
    let checks_before = h.mock.state.pings.load(std::sync::atomic::Ordering::SeqCst);
    h.run.advance(2 * SECOND, 100 * MS);
    assert!(
        h.mock.pings() > checks_before,
        "later rounds still check idle connections"
    );
    assert_quiescent(&h.pool, &h.mock);
}

#[test]
fn refill_dials_are_bounded_by_create_timeout_not_acquire_timeout() {
    let mut h = Harness::new(|b| {
        b.acquire_timeout(100 * MS)
            .create_timeout(SECOND)
            .min_idle(0)
    });
    // A connect that takes 150 ms: longer than a get waits, shorter than
    // a dial may take.
    h.mock.script(&[Step::Slow]);
    let mut config = h.pool.config();
    config.min_idle = 1;
    h.pool.reconfigure(config).unwrap();
    h.run.advance(150 * MS, 10 * MS);
    h.mock.release(1);
    h.run.settle();
    let stats = h.pool.stats();
    assert_eq!(stats.dials_cancelled, 0, "{stats:?}");
    assert_eq!(h.pool.status().idle, 1, "the slow dial made a connection");

    // A dial that hangs is cut at create_timeout, and counted as a failure
    // for backoff.
    h.mock.script(&[Step::Hang]);
    drop(h.pool.get_blocking().unwrap()); // idle stays 1
    let mut config = h.pool.config();
    config.min_idle = 2;
    h.pool.reconfigure(config).unwrap();
    h.run.advance(SECOND + 10 * MS, 10 * MS);
    let stats = h.pool.stats();
    assert_eq!(stats.connect_errors, 1, "{stats:?}");
    assert!(h.pool.status().creating == 0);
    h.run.advance(SECOND, 10 * MS);
    assert_eq!(h.pool.status().idle, 2, "retried after the backoff");
    assert_quiescent(&h.pool, &h.mock);
}

#[test]
fn a_reconfigured_max_lifetime_reaches_existing_connections() {
    let (pool, mock, clock) = mock_pool(1);
    let mut config = pool.config();
    config.max_lifetime = None;
    pool.reconfigure(config).unwrap();
    let first = pool.get_blocking().unwrap().id;
    let mut config = pool.config();
    config.max_lifetime = Some(SECOND);
    pool.reconfigure(config).unwrap();
    clock.advance(10 * SECOND);
    let conn = pool.get_blocking().unwrap();
    assert_ne!(conn.id, first, "the 10 s old connection was retired");
    drop(conn);
    assert_eq!(pool.stats().closed.lifetime, 1);
    assert_quiescent(&pool, &mock);
}

#[test]
fn an_expired_connection_is_closed_on_return() {
    let (pool, mock, clock) = mock_pool(1);
    let mut config = pool.config();
    config.max_lifetime = Some(SECOND);
    config.lifetime_jitter = 0.0;
    pool.reconfigure(config).unwrap();
    let conn = pool.get_blocking().unwrap();
    clock.advance(2 * SECOND);
    drop(conn);
    assert_eq!(pool.stats().closed.lifetime, 1);
    assert_eq!(pool.status().size, 0, "closed, not queued as idle");
    assert_quiescent(&pool, &mock);
}

#[test]
fn a_checkout_below_min_idle_wakes_the_refill_at_once() {
    let mut h = Harness::new(|b| b.min_idle(2).maintenance_interval(5 * SECOND));
    assert_eq!(h.pool.status().idle, 2);
    let held: Vec<_> = (0..2).map(|_| h.pool.get_blocking().unwrap()).collect();
    // No clock movement at all: the checkouts themselves woke the refill.
    h.run.settle();
    let status = h.pool.status();
    assert_eq!((status.idle, status.size), (2, 4), "{status:?}");
    drop(held);
    assert_quiescent(&h.pool, &h.mock);
}

#[test]
fn timeouts_never_fire_early_against_the_os_clock() {
    let timeout = Duration::from_millis(20);
    let pool = Pool::builder(Mock::new())
        .max_size(1)
        .acquire_timeout(timeout)
        .clock(Clock::new())
        .build()
        .unwrap();
    let _held = pool.get_blocking().unwrap();
    for _ in 0..10 {
        let started = Instant::now();
        let error = pool.get_blocking().expect_err("exhausted");
        let waited = started.elapsed();
        assert!(error.is_timeout(), "{error}");
        assert!(waited >= timeout, "fired after {waited:?} of {timeout:?}");
    }
}

#[test]
fn a_ping_leaves_the_sockets_read_timeout_as_it_found_it() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut writer = stream.try_clone().unwrap();
        for line in BufReader::new(stream).lines() {
            match line {
                Ok(line) if line == "PING" => writer.write_all(b"+PONG\r\n").unwrap(),
                _ => return,
            }
        }
    });
    let manager = TcpManager::new(addr)
        .unwrap()
        .ping_with(b"PING\r\n".to_vec(), b"+PONG\r\n".to_vec());
    let pool = Pool::builder(manager)
        .max_size(1)
        .ping_after(Some(Duration::ZERO))
        .build()
        .unwrap();
    let application_timeout = Some(Duration::from_millis(252));
    {
        let conn = pool.get_blocking().unwrap();
        conn.stream().set_read_timeout(application_timeout).unwrap();
    }
    let conn = pool.get_blocking().unwrap(); // pinged on the way out
    assert_eq!(pool.stats().reused, 1, "the same, pinged connection");
    assert_eq!(conn.stream().read_timeout().unwrap(), application_timeout);
    conn.discard();
    server.join().unwrap();
}

#[test]
fn the_timeout_error_counts_the_caller_as_waiting() {
    let (pool, mock, clock) = mock_pool(1);
    let held = pool.get_blocking().unwrap();
    let mut get = std::pin::pin!(pool.get());
    assert!(common::poll_once(get.as_mut()).is_pending());
    clock.advance(10 * SECOND);
    let std::task::Poll::Ready(Err(Error::Timeout(timeout))) = common::poll_once(get.as_mut())
    else {
        panic!("timed out")
    };
    assert_eq!(timeout.waiting, 1, "{timeout}");
    drop(held);
    assert_quiescent(&pool, &mock);
}

#[test]
fn a_connection_that_dies_young_paces_dials_but_is_no_failed_dial() {
    let (pool, mock, clock) = mock_pool(4);
    let mut config = pool.config();
    config.young_death_window = Some(SECOND);
    pool.reconfigure(config).unwrap();
    let first = pool.get_blocking().unwrap().id;
    clock.advance(10 * MS);
    // Within check_after, but young: checked anyway, and found dead.
    mock.break_conn(first);
    let mut get = std::pin::pin!(pool.get());
    assert!(
        common::poll_once(get.as_mut()).is_pending(),
        "the redial waits out the backoff"
    );
    let status = pool.status();
    assert_eq!(status.young_deaths_in_a_row, 1, "{status:?}");
    assert_eq!(status.consecutive_dial_failures, 0, "{status:?}");
    assert_eq!(pool.stats().young_deaths, 1);
    clock.advance(SECOND);
    let std::task::Poll::Ready(Ok(second)) = common::poll_once(get.as_mut()) else {
        panic!("redialed after the backoff")
    };
    let second_id = second.id;
    drop(second);
    // A connection dialed after the death, used and found alive while
    // young (a tenth of the window or more after its dial), proves the
    // target: the failures are forgotten.
    clock.advance(100 * MS);
    assert_eq!(pool.get_blocking().unwrap().id, second_id);
    assert_eq!(pool.status().young_deaths_in_a_row, 0);
    assert_quiescent(&pool, &mock);
}

#[test]
fn old_connections_staying_healthy_prove_nothing_about_new_ones() {
    let (pool, mock, clock) = mock_pool(4);
    let mut config = pool.config();
    config.young_death_window = Some(SECOND);
    pool.reconfigure(config).unwrap();
    let old = pool.get_blocking().unwrap();
    let old_id = old.id;
    clock.advance(2 * SECOND); // `old` is past its window
    let young = pool.get_blocking().unwrap().id; // dialed, returned: idle
    clock.advance(10 * MS);
    mock.break_conn(young);
    drop(old); // idle, returned last: out first
    let conn = pool.get_blocking().unwrap();
    assert_eq!(conn.id, old_id);
    // The next checkout finds `young` dead (a young death).
    assert!(pool.try_get().is_err());
    drop(conn); // `old` back healthy, long past its window
    let (stats, status) = (pool.stats(), pool.status());
    assert_eq!(stats.young_deaths, 1, "{stats:?}");
    assert_eq!(
        status.young_deaths_in_a_row, 1,
        "an old connection dialed before the death clears nothing: {status:?}"
    );
    assert_quiescent(&pool, &mock);
}

#[test]
fn a_connection_that_served_and_then_died_is_not_a_young_death() {
    let (pool, mock, clock) = mock_pool(4);
    let mut config = pool.config();
    config.young_death_window = Some(SECOND);
    config.check_after = Duration::ZERO; // every checkout is checked
    pool.reconfigure(config).unwrap();
    let id = pool.get_blocking().unwrap().id;
    clock.advance(100 * MS);
    // Checked out again while young: checked, and alive.
    assert_eq!(pool.get_blocking().unwrap().id, id);
    clock.advance(10 * MS);
    mock.break_conn(id); // a flaky network, not a refusal
    let replacement = pool.get_blocking().unwrap();
    assert_ne!(replacement.id, id);
    drop(replacement);
    let (stats, status) = (pool.stats(), pool.status());
    assert_eq!(stats.young_deaths, 0, "{stats:?}");
    assert_eq!(stats.closed.broken, 1);
    assert_eq!(status.consecutive_dial_failures, 0, "{status:?}");
    assert_quiescent(&pool, &mock);
}

#[test]
fn a_get_that_gives_up_leaves_a_dial_for_the_next_user() {
    let mut h = Harness::new(|b| {
        b.acquire_timeout(100 * MS)
            .create_timeout(SECOND)
            .min_idle(0)
            .max_size(2)
    });
    // Connects take longer than a get waits: without a dial that outlives
    // its get, no get would ever be served.
    h.mock.script(&[Step::Slow, Step::Slow]);
    let mut get = std::pin::pin!(h.pool.get());
    assert!(common::poll_once(get.as_mut()).is_pending());
    h.run.advance(100 * MS, 10 * MS);
    assert!(matches!(
        common::poll_once(get.as_mut()),
        std::task::Poll::Ready(Err(Error::Timeout(_)))
    ));
    h.run.settle();
    assert_eq!(
        h.mock.connect_calls(),
        2,
        "maintenance dials again for the next user"
    );
    h.run.advance(150 * MS, 10 * MS); // past the get's deadline: not cut
    h.mock.release(1);
    h.run.settle();
    assert_eq!(
        h.pool.status().idle,
        1,
        "the next user's connection is ready"
    );
    let conn = h.pool.try_get().expect("served at once");
    drop(conn);
    h.run.advance(SECOND, 100 * MS);
    assert_eq!(h.mock.connect_calls(), 2, "one dial owed, one made");
    assert_quiescent(&h.pool, &h.mock);
}

#[test]
fn a_young_connection_proven_alive_is_not_checked_at_every_checkout() {
    let (pool, mock, clock) = mock_pool(4);
    let mut config = pool.config();
    config.young_death_window = Some(SECOND);
    pool.reconfigure(config).unwrap();
    let checks = || {
        mock.state
            .liveness_checks
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    let id = pool.get_blocking().unwrap().id;
    clock.advance(MS);
    assert_eq!(pool.get_blocking().unwrap().id, id);
    assert_eq!(checks(), 1, "young and unproven: checked");
    clock.advance(MS);
    assert_eq!(pool.get_blocking().unwrap().id, id);
    assert_eq!(checks(), 2, "alive 2 ms after its dial proves nothing yet");
    clock.advance(100 * MS);
    assert_eq!(pool.get_blocking().unwrap().id, id);
    assert_eq!(checks(), 3, "checked once more, a tenth of the window old");
    for _ in 0..10 {
        clock.advance(MS);
        assert_eq!(pool.get_blocking().unwrap().id, id);
    }
    assert_eq!(checks(), 3, "proven alive: the fast path, no more peeks");
    assert_quiescent(&pool, &mock);
}

#[test]
fn a_young_connection_found_alive_just_after_its_dial_and_dead_at_its_next_use_is_a_young_death() {
    // A server at its client limit answers with an error and closes; busy,
    // it closes late, so a check between the reply and the close finds the
    // connection alive. That check must not exempt the connection's death
    // nor forget the pacing.
    let (pool, mock, clock) = mock_pool(4);
    let mut config = pool.config();
    config.young_death_window = Some(SECOND);
    pool.reconfigure(config).unwrap();
    let id = pool.get_blocking().unwrap().id;
    clock.advance(10 * MS);
    let conn = pool.get_blocking().unwrap();
    assert_eq!(conn.id, id, "checked and found alive 10 ms after its dial");
    conn.discard(); // the client saw the error reply and dropped it
    let (stats, status) = (pool.stats(), pool.status());
    assert_eq!(stats.young_deaths, 1, "{stats:?}");
    assert_eq!(status.young_deaths_in_a_row, 1, "{status:?}");
    assert_quiescent(&pool, &mock);
}

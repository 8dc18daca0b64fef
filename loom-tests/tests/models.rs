//! Model tests of the pool's concurrent protocol; each asserts invariants of
//! docs/design.md over every interleaving loom explores.
#![cfg(ringpool_loom)]

use std::pin::pin;
use std::task::{Context, Waker};

use loom::future::block_on;
use loom::thread;
use loom_tests::{Dial, assert_quiescent, pool, pool_with_dial_limit};
use ringpool::Error;

/// Invariant 1: live connections never exceed `max_size`, and every get is
/// served (a waiter is woken by the return it waits for: invariant 5).
#[test]
fn gets_and_returns_at_max_size_1() {
    loom::model(|| {
        let (pool, counting) = pool(1, &[]);
        let other = pool.clone();
        let racer = thread::spawn(move || drop(block_on(other.get()).expect("served")));
        drop(block_on(pool.get()).expect("served"));
        racer.join().unwrap();
        assert_eq!(
            counting.high_water(),
            1,
            "never two connections at max_size 1"
        );
        assert_eq!(
            counting.made(),
            1,
            "the second get reused the first connection"
        );
        assert_quiescent(&pool, &counting);
    });
}

#[test]
fn gets_and_returns_at_max_size_2() {
    loom::model(|| {
        let (pool, counting) = pool(2, &[]);
        let other = pool.clone();
        let racer = thread::spawn(move || {
            for _ in 0..2 {
                drop(block_on(other.get()).expect("served"));
            }
        });
        let held = block_on(pool.get()).expect("served");
        drop(block_on(pool.get()).expect("served"));
        drop(held);
        racer.join().unwrap();
        assert!(
            counting.high_water() <= 2,
            "high water {}",
            counting.high_water()
        );
        assert_eq!(pool.stats().gets, 4);
        assert_quiescent(&pool, &counting);
    });
}

/// Invariants 2 and 6: a waiter withdrawn while the holder returns the
/// connection leaves it with exactly one owner, never lost, never doubled.
#[test]
fn a_waiter_being_served_races_its_cancellation() {
    loom::model(|| {
        let (pool, counting) = pool(1, &[]);
        let held = block_on(pool.get()).expect("first get dials");
        let other = pool.clone();
        let waiter = thread::spawn(move || {
            let mut get = pin!(other.get());
            let first = get.as_mut().poll(&mut Context::from_waker(Waker::noop()));
            // Ready only if the return came first; either way, drop it.
            drop(first);
        });
        drop(held);
        waiter.join().unwrap();
        let status = pool.status();
        assert_eq!(
            (status.size, status.idle, status.waiting),
            (1, 1, 0),
            "{status:?}"
        );
        assert_eq!(counting.made(), 1);
        assert_quiescent(&pool, &counting);
    });
}

/// The intrusive waiter list: a waiter that leaves the queue (its get
/// dropped) while the holder returns, whether or not it was served first,
/// never takes the connection with it: the waiter behind it is served,
/// exactly once, and nothing is made twice.
#[test]
fn a_waiter_leaving_the_queue_passes_its_connection_to_the_next() {
    loom::model(|| {
        let (pool, counting) = pool(1, &[]);
        let held = block_on(pool.get()).expect("first get dials");
        let other = pool.clone();
        let leaving = thread::spawn(move || {
            let mut get = pin!(other.get());
            let first = get.as_mut().poll(&mut Context::from_waker(Waker::noop()));
            drop(first);
        });
        let mut staying = pin!(pool.get());
        let first = staying
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()));
        drop(held);
        leaving.join().unwrap();
        let conn = match first {
            std::task::Poll::Ready(conn) => conn,
            std::task::Poll::Pending => match staying
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
            {
                std::task::Poll::Ready(conn) => conn,
                std::task::Poll::Pending => panic!("the staying waiter was never served"),
            },
        };
        let conn = conn.expect("served with the one connection");
        assert_eq!(pool.status().waiting, 0);
        drop(conn);
        assert_eq!(counting.made(), 1);
        assert_quiescent(&pool, &counting);
    });
}

/// `discard` releases its slot exactly once, and the waiter gets it.
#[test]
fn discard_releases_its_slot_exactly_once() {
    loom::model(|| {
        let (pool, counting) = pool(1, &[]);
        let held = block_on(pool.get()).expect("first get dials");
        let other = pool.clone();
        let waiter = thread::spawn(move || {
            let conn = block_on(other.get()).expect("served with the freed slot");
            drop(conn);
        });
        held.discard();
        waiter.join().unwrap();
        let stats = pool.stats();
        assert_eq!(stats.closed.discarded, 1);
        assert_eq!(counting.made(), 2, "the waiter dialed into the freed slot");
        assert_eq!(pool.status().size, 1, "one slot released, one taken");
        assert_quiescent(&pool, &counting);
    });
}

/// Invariant 1 under a shrinking reconfiguration: connections in use are
/// spared, and once all are back the pool is within the new bound.
#[test]
fn reconfigure_shrinks_while_gets_and_returns_run() {
    loom::model(|| {
        let (pool, counting) = pool(2, &[]);
        let held = block_on(pool.get()).expect("served");
        let other = pool.clone();
        let worker = thread::spawn(move || drop(block_on(other.get()).expect("served")));
        let mut config = pool.config();
        config.max_size = 1;
        pool.reconfigure(config).expect("valid");
        drop(held);
        worker.join().unwrap();
        assert!(counting.high_water() <= 2);
        let status = pool.status();
        assert!(
            status.size <= 1,
            "within the new bound once everything is back: {status:?}"
        );
        assert_quiescent(&pool, &counting);
    });
}

/// Invariant 8: `close` racing a get and a return strands nothing.
#[test]
fn close_races_gets_and_returns() {
    loom::model(|| {
        let (pool, counting) = pool(1, &[]);
        let held = block_on(pool.get()).expect("served");
        let other = pool.clone();
        let getter = thread::spawn(move || match block_on(other.get()) {
            Ok(conn) => drop(conn),
            Err(Error::Closed) => {}
            Err(error) => panic!("unexpected: {error}"),
        });
        let closer = pool.clone();
        let closing = thread::spawn(move || closer.close());
        drop(held);
        getter.join().unwrap();
        closing.join().unwrap();
        assert_eq!(
            pool.status().size,
            0,
            "closed and everything returned: nothing left"
        );
        assert_eq!(counting.live(), 0);
        assert_quiescent(&pool, &counting);
    });
}

/// A fatal dial error while another get waits: both end (served or failed
/// with the real error), and the failed dial holds no slot.
#[test]
fn a_connect_fails_while_another_get_waits() {
    loom::model(|| {
        let (pool, counting) = pool(1, &[Dial::Fatal]);
        let other = pool.clone();
        let racer = thread::spawn(move || match block_on(other.get()) {
            Ok(conn) => {
                drop(conn);
                true
            }
            Err(Error::Connect(_)) => false,
            Err(error) => panic!("unexpected: {error}"),
        });
        let mine = match block_on(pool.get()) {
            Ok(conn) => {
                drop(conn);
                true
            }
            Err(Error::Connect(_)) => false,
            Err(error) => panic!("unexpected: {error}"),
        };
        let theirs = racer.join().unwrap();
        assert!(
            !(mine && theirs),
            "the first dial fails fatally, so some get fails"
        );
        assert_eq!(pool.stats().connect_errors, 1, "exactly one dial failed");
        assert_quiescent(&pool, &counting);
    });
}

/// Invariants 5 and 10: with one dial allowed at a time and two free
/// slots, a get that finds the dial limit reached waits; the dial in flight
/// fails fatally (failing the waiter, or leaving a freed permit a later get
/// dials with), and the next dial succeeds. Nobody is stranded, the limit
/// is never exceeded, and the permit is given back.
#[test]
fn gets_wait_at_the_dial_limit_while_dials_fail_and_succeed() {
    loom::model(|| {
        let (pool, counting) = pool_with_dial_limit(2, 1, &[Dial::Fatal, Dial::Ok]);
        let outcome = |result: Result<ringpool::Pooled<'_, loom_tests::Mgr>, Error<_>>| match result
        {
            Ok(conn) => {
                drop(conn);
                true
            }
            Err(Error::Connect(_)) => false,
            Err(error) => panic!("unexpected: {error}"),
        };
        let other = pool.clone();
        let racer = thread::spawn(move || outcome(block_on(other.get())));
        let mine = outcome(block_on(pool.get()));
        let theirs = racer.join().unwrap();
        assert!(!(mine && theirs), "the first dial fails, so some get fails");
        assert_eq!(pool.stats().connect_errors, 1, "exactly one dial failed");
        assert_eq!(pool.status().creating, 0, "the dial permit is back");
        assert!(counting.high_water() <= 1);
        assert_quiescent(&pool, &counting);
    });
}

/// The per-thread slots (`idle_order = lifo`): a connection one thread put
/// in its slot is taken by another thread (its own slot empty, the shared
/// store empty: it steals), while the first thread returns a second
/// connection (displacing the first onto the shared stack) and the pool
/// shrinks; every connection has one owner, the bound holds, nothing is
/// lost.
///
/// The thief may dial a third connection: its scan can miss the first
/// while it moves from the slot to the stack, and its reservation, racing
/// the lowering, is checked against the bound it read (the old one, 2).
/// That dial stays within that bound, and the surplus is closed as it
/// comes back: the contract for lowering `max_size` under use. (An idle
/// connection moving between the slot and the stack as the lowering sheds
/// can stay above the new bound until the next maintenance round sheds it,
/// which this model does not run.)
#[test]
fn a_thread_slot_is_stolen_while_its_owner_returns_and_the_pool_shrinks() {
    loom::model(|| {
        let (pool, counting) = pool(2, &[]);
        let (first, second) = (
            block_on(pool.get()).expect("served"),
            block_on(pool.get()).expect("served"),
        );
        drop(first); // into this thread's slot
        let other = pool.clone();
        let thief = thread::spawn(move || drop(block_on(other.get()).expect("served")));
        let shrinker = pool.clone();
        let shrinking = thread::spawn(move || {
            let mut config = shrinker.config();
            config.max_size = 1;
            shrinker.reconfigure(config).expect("valid");
        });
        drop(second);
        thief.join().unwrap();
        shrinking.join().unwrap();
        assert!(counting.high_water() <= 2, "the old bound held");
        assert!(
            counting.made() <= 3,
            "at most the thief's one dial: {:?} {:?}",
            pool.stats(),
            pool.status()
        );
        assert!(pool.status().size <= 2, "within the old bound");
        assert_quiescent(&pool, &counting);
    });
}

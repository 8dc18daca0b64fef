//! Semantic 3: a get dropped at any point (before, during or after it is
//! handed a connection or a slot) leaks neither a slot nor a connection.
//! Every combination of connect outcome and cancellation point is tried.
mod common;

use std::pin::pin;
use std::task::Poll;

use common::{SECOND, Step, assert_quiescent, mock_pool, poll_once};

const STEPS: [Step; 5] = [
    Step::Ok,
    Step::Refused,
    Step::Denied,
    Step::Hang,
    Step::Slow,
];

/// Where the get is dropped.
#[derive(Clone, Copy, Debug)]
enum CancelAt {
    /// Never polled.
    BeforePoll,
    /// After one poll: dialing (or done).
    AfterFirstPoll,
    /// After the clock moved past backoffs and one more poll.
    AfterRetry,
}

#[test]
fn dropping_a_dialing_get_at_any_point_leaks_nothing() {
    for step in STEPS {
        for cancel in [
            CancelAt::BeforePoll,
            CancelAt::AfterFirstPoll,
            CancelAt::AfterRetry,
        ] {
            for max_size in [1, 2] {
                let (pool, mock, clock) = mock_pool(max_size);
                mock.script(&[step, step]);
                {
                    let mut get = pin!(pool.get());
                    let mut done = false;
                    if !matches!(cancel, CancelAt::BeforePoll) {
                        done = poll_once(get.as_mut()).is_ready();
                    }
                    if matches!(cancel, CancelAt::AfterRetry) && !done {
                        mock.release(1);
                        clock.advance(SECOND / 2);
                        let _ = poll_once(get.as_mut());
                    }
                }
                mock.release(2);
                mock.clear_script();
                assert_quiescent(&pool, &mock);
                // The pool still works afterwards (once the dial gate reopens).
                clock.advance(10 * SECOND);
                drop(pool.get_blocking().expect("pool usable after cancellation"));
                assert_quiescent(&pool, &mock);
                let _ = (step, cancel);
            }
        }
    }
}

#[test]
fn dropping_a_waiter_at_any_point_leaks_nothing() {
    // A waiter behind a held connection; the holder gives it back by
    // returning, discarding (frees a slot) or not at all.
    #[derive(Clone, Copy, Debug)]
    enum Holder {
        Returns,
        Discards,
        Keeps,
    }
    for step in STEPS {
        for holder in [Holder::Returns, Holder::Discards, Holder::Keeps] {
            for polls_after_release in [0, 1] {
                let (pool, mock, clock) = mock_pool(1);
                let mut held = Some(pool.get_blocking().unwrap());
                mock.script(&[step]);
                {
                    let mut waiter = pin!(pool.get());
                    assert!(poll_once(waiter.as_mut()).is_pending());
                    match holder {
                        Holder::Returns => drop(held.take()),
                        Holder::Discards => held.take().unwrap().discard(),
                        Holder::Keeps => {}
                    }
                    for _ in 0..polls_after_release {
                        if let Poll::Ready(result) = poll_once(waiter.as_mut()) {
                            drop(result);
                            break;
                        }
                        clock.advance(SECOND / 10);
                    }
                    // dropped here, possibly holding a granted connection or slot
                }
                let status = pool.status();
                assert_eq!(status.waiting, 0, "{step:?} {holder:?}: {status:?}");
                assert_eq!(status.creating, 0, "{step:?} {holder:?}: {status:?}");
                assert!(status.size <= 1, "{status:?}");
                drop(held);
                mock.release(1);
                assert_quiescent(&pool, &mock);
            }
        }
    }
}

#[test]
fn a_waiter_handed_a_connection_then_dropped_returns_it() {
    let (pool, mock, _clock) = mock_pool(1);
    let held = pool.get_blocking().unwrap();
    {
        let mut waiter = pin!(pool.get());
        assert!(poll_once(waiter.as_mut()).is_pending());
        drop(held); // handed to the waiter, which never looks at it
        assert_eq!(
            pool.status().idle,
            0,
            "the connection belongs to the waiter"
        );
    }
    let status = pool.status();
    assert_eq!((status.size, status.idle, status.waiting), (1, 1, 0));
    assert_eq!(mock.made(), 1);
    assert_quiescent(&pool, &mock);
}

#[test]
fn a_waiter_handed_a_slot_then_dropped_frees_it_for_the_next_waiter() {
    let (pool, mock, _clock) = mock_pool(1);
    // The discard below is of a brand-new connection, which would count as
    // dying young and delay the redial; this test is about the handoff.
    let mut config = pool.config();
    config.young_death_window = None;
    pool.reconfigure(config).unwrap();
    let held = pool.get_blocking().unwrap();
    let mut second = pin!(pool.get());
    {
        let mut first = pin!(pool.get());
        assert!(poll_once(first.as_mut()).is_pending());
        assert!(poll_once(second.as_mut()).is_pending());
        held.discard(); // the freed slot goes to `first`
        assert_eq!(pool.status().size, 1, "the slot is reserved for first");
    }
    // `first` dropped with the slot: it must pass to `second`.
    let Poll::Ready(Ok(conn)) = poll_once(second.as_mut()) else {
        panic!("second gets the slot the dropped waiter held")
    };
    drop(conn);
    assert_quiescent(&pool, &mock);
}

#[test]
fn random_cancellations_across_threads_leak_nothing() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let (pool, mock, _clock) = mock_pool(3);
    let steps = [Step::Ok, Step::Ok, Step::Ok, Step::Refused, Step::Slow];
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            // Keeps slow dials moving.
            while !stop.load(Ordering::Relaxed) {
                mock.release(1);
                std::thread::yield_now();
            }
        });
        let workers: Vec<_> = (0..4u64)
            .map(|seed| {
                let (pool, mock) = (&pool, &mock);
                scope.spawn(move || {
                    let mut rng = fastrand::Rng::with_seed(seed);
                    for _ in 0..2_000 {
                        mock.script(&[steps[rng.usize(..steps.len())]]);
                        let mut get = pin!(pool.get());
                        for _ in 0..rng.usize(0..4) {
                            if let Poll::Ready(result) = poll_once(get.as_mut()) {
                                if let Ok(conn) = result {
                                    match rng.u8(0..10) {
                                        0 => conn.discard(),
                                        _ => drop(conn),
                                    }
                                }
                                break;
                            }
                            std::thread::yield_now();
                        }
                        let status = pool.status();
                        assert!(status.size <= 3, "{status:?}");
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
    });
    mock.release(1_000);
    assert!(
        mock.high_water() <= 3,
        "live connections exceeded max_size: {}",
        mock.high_water()
    );
    assert_quiescent(&pool, &mock);
}

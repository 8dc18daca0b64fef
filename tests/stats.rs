//! Semantic 8: `stats()` counts gets, reuse, waits, timeouts, dials, dial
//! errors, closes by reason and total wait time.
mod common;

use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use common::{SECOND, Step, assert_quiescent, mock_pool, poll_once};

#[test]
fn every_counter_moves_with_what_it_counts() {
    let (pool, mock, clock) = mock_pool(2);
    let first = pool.get_blocking().unwrap(); // get 1: dial
    drop(first);
    let reused = pool.get_blocking().unwrap(); // get 2: reuse
    let other = pool.get_blocking().unwrap(); // get 3: dial
    {
        let mut waiting = pin!(pool.get()); // get 4: waits 250 ms, served by a return
        assert!(poll_once(waiting.as_mut()).is_pending());
        clock.advance(Duration::from_millis(250));
        drop(other);
        let Poll::Ready(Ok(conn)) = poll_once(waiting.as_mut()) else {
            panic!()
        };
        conn.discard();
    }
    {
        let mut timing_out = pin!(pool.get()); // get 5: times out after 5 s
        mock.script(&[Step::Refused]);
        assert!(poll_once(timing_out.as_mut()).is_pending());
        clock.advance(5 * SECOND);
        assert!(matches!(
            poll_once(timing_out.as_mut()),
            Poll::Ready(Err(_))
        ));
    }
    assert!(pool.try_get().is_err()); // get 6: nothing idle (one in use, one slot free)
    drop(reused);

    let stats = pool.stats();
    assert_eq!(stats.gets, 6, "{stats:?}");
    assert_eq!(stats.reused, 2, "get 2 and get 4: {stats:?}");
    assert_eq!(stats.waited, 2, "gets 4 and 5: {stats:?}");
    assert_eq!(stats.timeouts, 1);
    assert_eq!(stats.connects, mock.made() as u64);
    assert_eq!(
        stats.connects + stats.connect_errors + stats.dials_cancelled,
        mock.connect_calls() as u64
    );
    assert_eq!(stats.connect_errors, 1);
    assert_eq!(stats.closed.discarded, 1);
    assert_eq!(stats.wait_time, Duration::from_millis(250) + 5 * SECOND);
    assert_quiescent(&pool, &mock);
}

#[test]
fn counters_from_many_threads_add_up() {
    let (pool, mock, _clock) = mock_pool(4);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..5_000 {
                    drop(pool.get_blocking().unwrap());
                }
            });
        }
    });
    let stats = pool.stats();
    assert_eq!(stats.gets, 20_000);
    assert_eq!(
        stats.reused + stats.connects,
        20_000,
        "each get reused or dialed: {stats:?}"
    );
    assert!(stats.connects <= 4 + stats.closed_total());
    assert_quiescent(&pool, &mock);
}

#[test]
fn a_fast_take_whose_connection_fails_its_checks_is_not_counted_as_reuse() {
    // The fast path counts a take from its thread's own slot in the slot
    // itself, before the connection's checks: one that fails them (here,
    // refused by the `before_checkout` hook) must come off that count.
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let mock = common::Mock::new();
    let refuse = Arc::new(AtomicBool::new(false));
    let pool = ringpool::Pool::builder(mock.clone())
        .young_death_window(None)
        .max_size(1)
        .before_checkout({
            let refuse = Arc::clone(&refuse);
            move |_| match refuse.swap(false, Ordering::Relaxed) {
                true => Err(common::MockError::Denied),
                false => Ok(()),
            }
        })
        .build()
        .unwrap();
    drop(pool.get_blocking().unwrap()); // get 1: dial
    drop(pool.get_blocking().unwrap()); // get 2: reused from this thread's slot
    let fast = pool.stats();
    assert_eq!(
        (fast.gets, fast.reused, fast.connects),
        (2, 1, 1),
        "{fast:?}"
    );
    refuse.store(true, Ordering::Relaxed);
    drop(pool.get_blocking().unwrap()); // get 3: the idle one is refused, dial
    let stats = pool.stats();
    assert_eq!(stats.gets, 3, "{stats:?}");
    assert_eq!(
        stats.reused, 1,
        "the refused connection was not reused: {stats:?}"
    );
    assert_eq!(stats.connects, 2, "{stats:?}");
    assert_eq!(stats.closed.rejected, 1, "{stats:?}");
    assert_quiescent(&pool, &mock);
}

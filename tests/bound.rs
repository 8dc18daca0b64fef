//! Semantic 1: one atomic slot counter bounds idle + in use + being created,
//! always: under races, cancellations and failed connects.
mod common;

use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Step, assert_quiescent, mock_pool, poll_once};

#[test]
fn live_connections_never_exceed_max_size_under_failing_dials() {
    let (pool, mock, clock) = mock_pool(3);
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4u64)
            .map(|seed| {
                let (pool, mock) = (&pool, &mock);
                scope.spawn(move || {
                    let mut rng = fastrand::Rng::with_seed(seed);
                    for _ in 0..3_000 {
                        if rng.u8(0..4) == 0 {
                            mock.script(&[Step::Refused]);
                        }
                        let mut get = pin!(pool.get());
                        if let std::task::Poll::Ready(Ok(conn)) = poll_once(get.as_mut())
                            && rng.bool()
                        {
                            conn.discard();
                        }
                        let status = pool.status();
                        assert!(status.size <= status.max_size, "{status:?}");
                    }
                })
            })
            .collect();
        scope.spawn(|| {
            // Keeps the dial gate from staying shut after failures.
            while !done.load(Ordering::Relaxed) {
                clock.advance(std::time::Duration::from_millis(100));
                std::thread::yield_now();
            }
        });
        for worker in workers {
            worker.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
    });
    assert!(mock.high_water() <= 3, "high water {}", mock.high_water());
    mock.clear_script();
    assert_quiescent(&pool, &mock);
}

#[test]
fn the_bound_counts_connections_being_created() {
    let (pool, mock, _clock) = mock_pool(2);
    mock.script(&[Step::Slow, Step::Slow]);
    let mut a = pin!(pool.get());
    let mut b = pin!(pool.get());
    let mut c = pin!(pool.get());
    assert!(poll_once(a.as_mut()).is_pending());
    assert!(poll_once(b.as_mut()).is_pending());
    assert!(poll_once(c.as_mut()).is_pending());
    let status = pool.status();
    assert_eq!((status.size, status.creating, status.waiting), (2, 2, 1));
    assert_eq!(
        mock.connect_calls(),
        2,
        "the third get waits instead of dialing"
    );
    mock.release(2);
    let (std::task::Poll::Ready(Ok(x)), std::task::Poll::Ready(Ok(y))) =
        (poll_once(a.as_mut()), poll_once(b.as_mut()))
    else {
        panic!("both dials complete")
    };
    drop(x);
    let std::task::Poll::Ready(Ok(z)) = poll_once(c.as_mut()) else {
        panic!("c gets x's connection")
    };
    drop((y, z));
    assert_eq!(mock.made(), 2);
    assert_quiescent(&pool, &mock);
}

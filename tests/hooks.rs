//! Hooks a service adds from the builder: `after_connect` prepares every
//! new connection and its error is a failed dial; `before_checkout` and
//! `on_return` vet connections and close the ones they refuse; a panicking
//! hook leaks nothing.
mod common;
mod harness;

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use common::{Mock, MockError, SECOND, assert_quiescent, poll_once};
use harness::Harness;
use ringpool::{Builder, Clock, Error, MockClock, Pool};

const MS: Duration = Duration::from_millis(1);

fn pool_with(edit: impl FnOnce(Builder<Mock>) -> Builder<Mock>) -> (Pool<Mock>, Mock, MockClock) {
    let mock = Mock::new();
    let (clock, control) = Clock::mock();
    let builder = Pool::builder(mock.clone())
        .young_death_window(None)
        .max_size(2)
        .clock(clock);
    (edit(builder).build().unwrap(), mock, control)
}

#[test]
fn after_connect_prepares_each_new_connection_once_before_any_get_sees_it() {
    let prepared = Arc::new(Mutex::new(HashSet::new()));
    let seen = Arc::clone(&prepared);
    let (pool, mock, _clock) = pool_with(|b| {
        b.after_connect(move |conn| {
            let seen = Arc::clone(&seen);
            Box::pin(async move {
                assert!(seen.lock().unwrap().insert(conn.id), "once per connection");
                Ok(())
            })
        })
    });
    for _ in 0..5 {
        let a = pool.get_blocking().unwrap();
        let b = pool.get_blocking().unwrap();
        for conn in [&a, &b] {
            assert!(
                prepared.lock().unwrap().contains(&conn.id),
                "prepared first"
            );
        }
    }
    assert_eq!(prepared.lock().unwrap().len(), 2, "reuse does not run it");
    assert_quiescent(&pool, &mock);
}

#[test]
fn an_after_connect_error_is_a_failed_dial_that_backs_off_and_retries() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let (pool, mock, clock) = pool_with(|b| {
        b.connect_backoff(100 * MS).after_connect(move |_conn| {
            let first = counted.fetch_add(1, Ordering::SeqCst) == 0;
            Box::pin(async move {
                match first {
                    true => Err(MockError::Refused), // e.g. AUTH answered busy
                    false => Ok(()),
                }
            })
        })
    });
    let mut get = pin!(pool.get());
    assert!(
        poll_once(get.as_mut()).is_pending(),
        "waits out the backoff"
    );
    let stats = pool.stats();
    assert_eq!((stats.connect_errors, stats.connects), (1, 0), "{stats:?}");
    assert_eq!(mock.live(), 0, "the refused connection was closed");
    assert_eq!(pool.status().size, 0, "and its slot freed");
    clock.advance(100 * MS);
    let Poll::Ready(Ok(conn)) = poll_once(get.as_mut()) else {
        panic!("redialed after the backoff")
    };
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(pool.stats().connects, 1);
    drop(conn);
    assert_eq!(pool.status().idle, 1);
}

#[test]
fn a_fatal_after_connect_error_fails_the_get_with_it() {
    let (pool, mock, _clock) =
        pool_with(|b| b.after_connect(|_conn| Box::pin(async { Err(MockError::Denied) })));
    match pool.get_blocking() {
        Err(Error::Connect(error)) => assert!(matches!(*error, MockError::Denied)),
        other => panic!("the hook's error, not {:?}", other.map(|c| c.id)),
    }
    assert_eq!(mock.live(), 0);
    assert_eq!(pool.status().size, 0);
}

#[test]
fn before_checkout_refusal_closes_the_connection_and_the_get_moves_on() {
    let refused = Arc::new(Mutex::new(HashSet::from([0u64])));
    let vetted = Arc::clone(&refused);
    let (pool, mock, _clock) = pool_with(|b| {
        b.before_checkout(
            move |conn| match vetted.lock().unwrap().contains(&conn.id) {
                true => Err(MockError::Refused),
                false => Ok(()),
            },
        )
    });
    let (first, second) = (pool.get_blocking().unwrap(), pool.get_blocking().unwrap());
    assert_eq!(
        (first.id, second.id),
        (0, 1),
        "fresh connections are not vetted"
    );
    drop(second);
    drop(first);
    // Returned last, 0 comes out first: it is closed, unseen by the
    // caller, and the get is handed 1.
    let conn = pool.get_blocking().unwrap();
    assert_eq!(conn.id, 1);
    assert_eq!(pool.stats().closed.rejected, 1);
    drop(conn);
    // try_get vets too.
    refused.lock().unwrap().insert(1);
    assert!(matches!(pool.try_get(), Err(Error::Exhausted { .. })));
    assert_eq!(pool.stats().closed.rejected, 2);
    assert_eq!(pool.status().size, 0, "slots freed");
    assert_quiescent(&pool, &mock);
}

#[test]
fn before_checkout_refusal_on_the_waiting_path_hands_the_waiter_a_new_dial() {
    let (pool, mock, _clock) = pool_with(|b| {
        b.max_size(1).before_checkout(|conn| match conn.id {
            0 => Err(MockError::Refused),
            _ => Ok(()),
        })
    });
    let held = pool.get_blocking().unwrap();
    let mut get = pin!(pool.get());
    assert!(
        poll_once(get.as_mut()).is_pending(),
        "queued behind the holder"
    );
    drop(held); // handed to the waiter, which vets it, refuses it, dials
    let Poll::Ready(Ok(conn)) = poll_once(get.as_mut()) else {
        panic!("served by a new dial")
    };
    assert_eq!(conn.id, 1);
    drop(conn);
    assert_eq!(pool.stats().closed.rejected, 1);
    assert_quiescent(&pool, &mock);
}

#[test]
fn on_return_refusal_closes_instead_of_keeping_it_idle() {
    let (pool, mock, _clock) = pool_with(|b| {
        b.on_return(|conn| match conn.id % 2 {
            0 => Ok(()),
            _ => Err(MockError::Refused), // say: left inside a transaction
        })
    });
    let (even, odd) = (pool.get_blocking().unwrap(), pool.get_blocking().unwrap());
    drop((even, odd));
    let status = pool.status();
    assert_eq!((status.idle, status.size), (1, 1), "{status:?}");
    assert_eq!(pool.stats().closed.rejected, 1);
    assert_eq!(pool.get_blocking().unwrap().id, 0);
    assert_quiescent(&pool, &mock);
}

/// Runs `body`, expects the hook's panic, and checks the pool leaked
/// nothing and still serves.
fn panics_and_leaks_nothing(pool: &Pool<Mock>, body: impl FnOnce()) {
    assert!(
        catch_unwind(AssertUnwindSafe(body)).is_err(),
        "the panic reaches the caller"
    );
    let status = pool.status();
    assert_eq!((status.in_use, status.creating), (0, 0), "{status:?}");
}

#[test]
fn a_panicking_hook_frees_its_slot_at_each_point() {
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (a, b, c) = (Arc::clone(&armed), Arc::clone(&armed), Arc::clone(&armed));
    let (pool, mock, clock) = pool_with(|builder| {
        builder
            .max_size(1)
            .after_connect(move |_conn| {
                let armed = a.load(Ordering::SeqCst);
                Box::pin(async move {
                    assert!(!armed, "after_connect hook panicked");
                    Ok(())
                })
            })
            .before_checkout(move |_conn| {
                assert!(!b.load(Ordering::SeqCst), "before_checkout hook panicked");
                Ok(())
            })
            .on_return(move |_conn| {
                assert!(!c.load(Ordering::SeqCst), "on_return hook panicked");
                Ok(())
            })
    });
    // after_connect: the dial's slot is freed, and it counts as a failed
    // dial (backed off), so a hook that always panics cannot make refills
    // spin.
    armed.store(true, Ordering::SeqCst);
    panics_and_leaks_nothing(&pool, || drop(pool.get_blocking()));
    assert_eq!(pool.status().size, 0);
    assert_eq!(pool.stats().connect_errors, 1);
    clock.advance(SECOND);
    // on_return: the connection is dropped and its slot freed.
    armed.store(false, Ordering::SeqCst);
    let conn = pool.get_blocking().unwrap();
    armed.store(true, Ordering::SeqCst);
    panics_and_leaks_nothing(&pool, || drop(conn));
    assert_eq!(pool.status().size, 0);
    // before_checkout: the idle connection is dropped and its slot freed.
    armed.store(false, Ordering::SeqCst);
    drop(pool.get_blocking().unwrap());
    armed.store(true, Ordering::SeqCst);
    panics_and_leaks_nothing(&pool, || drop(pool.get_blocking()));
    assert_eq!(pool.status().size, 0);
    armed.store(false, Ordering::SeqCst);
    drop(pool.get_blocking().expect("the pool still serves"));
    assert_eq!(mock.live(), 1, "nothing else alive");
}

#[test]
fn a_panicking_after_connect_on_a_background_refill_is_caught_and_counted() {
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let hook_armed = Arc::clone(&armed);
    let mut h = Harness::new(|b| {
        b.min_idle(1).after_connect(move |_conn| {
            let armed = hook_armed.load(Ordering::SeqCst);
            Box::pin(async move {
                assert!(!armed, "after_connect hook panicked");
                Ok(())
            })
        })
    });
    assert!(h.pool.stats().manager_panics >= 1, "{:?}", h.pool.stats());
    assert_eq!(h.pool.status().size, 0, "no slot kept by the failed refill");
    armed.store(false, Ordering::SeqCst);
    h.run.advance(10 * SECOND, 100 * MS);
    assert_eq!(h.pool.status().idle, 1, "maintenance went on and refilled");
    assert!(!h.run.maintenance_done.get());
}

#[test]
fn a_multi_endpoint_pool_runs_its_hooks_on_every_endpoints_connections() {
    use ringpool::multi::MultiPool;
    let prepared = Arc::new(Mutex::new(Vec::new()));
    let vetted = Arc::new(AtomicUsize::new(0));
    let returned = Arc::new(AtomicUsize::new(0));
    let (clock, _time) = Clock::mock();
    let pool = MultiPool::builder(|_| Mock::new())
        .endpoints(["a:1", "b:2"])
        .max_per_endpoint(2)
        .young_death_window(None)
        .name("multi-hooks")
        .clock(clock)
        .after_connect({
            let prepared = Arc::clone(&prepared);
            move |conn| {
                prepared.lock().unwrap().push(conn.id);
                Box::pin(async { Ok(()) })
            }
        })
        .before_checkout({
            let vetted = Arc::clone(&vetted);
            move |_| {
                vetted.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        })
        .on_return({
            let returned = Arc::clone(&returned);
            // Keeps the first two returns, refuses the ones after.
            move |_| match returned.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Ok(()),
                _ => Err(MockError::Denied),
            }
        })
        .build()
        .unwrap();
    // Round-robin: two gets, one per endpoint, each a dial its hook saw.
    let a = pool.get_blocking().unwrap();
    let b = pool.get_blocking().unwrap();
    assert_ne!(a.endpoint(), b.endpoint());
    assert_eq!(
        prepared.lock().unwrap().len(),
        2,
        "after_connect ran on both"
    );
    drop((a, b));
    assert_eq!(returned.load(Ordering::SeqCst), 2, "on_return ran on both");
    // Reused: before_checkout vets them; the second return is refused.
    drop((pool.get_blocking().unwrap(), pool.get_blocking().unwrap()));
    assert_eq!(vetted.load(Ordering::SeqCst), 2);
    assert_eq!(returned.load(Ordering::SeqCst), 4);
    let closed: u64 = pool
        .endpoints()
        .iter()
        .map(|endpoint| endpoint.stats.closed.rejected)
        .sum();
    assert_eq!(closed, 2, "refused by on_return, on each endpoint");
}

/// A connection whose drop panics once `armed`: user code that fails
/// twice in a row.
struct Grenade {
    armed: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for Grenade {
    fn drop(&mut self) {
        if self.armed.load(Ordering::SeqCst) {
            panic!("the connection's drop panicked");
        }
    }
}

struct Grenades {
    armed: Arc<std::sync::atomic::AtomicBool>,
}

impl ringpool::Manager for Grenades {
    type Connection = Grenade;
    type Error = std::io::Error;

    async fn connect(&self) -> Result<Grenade, std::io::Error> {
        Ok(Grenade {
            armed: Arc::clone(&self.armed),
        })
    }
}

#[test]
fn a_hook_that_panics_on_a_connection_whose_drop_panics_too_still_frees_its_slot() {
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hook_armed = Arc::clone(&armed);
    let pool = Pool::builder(Grenades {
        armed: Arc::clone(&armed),
    })
    .max_size(1)
    .young_death_window(None)
    .on_return(move |_conn| {
        assert!(
            !hook_armed.load(Ordering::SeqCst),
            "on_return hook panicked"
        );
        Ok(())
    })
    .build()
    .unwrap();
    let conn = pool.get_blocking().unwrap();
    armed.store(true, Ordering::SeqCst);
    let panic =
        catch_unwind(AssertUnwindSafe(|| drop(conn))).expect_err("a panic reaches the caller");
    armed.store(false, Ordering::SeqCst);
    assert_eq!(
        panic.downcast_ref::<&str>(),
        Some(&"the connection's drop panicked"),
        "the last panic is the one that goes on"
    );
    let status = pool.status();
    assert_eq!((status.size, status.in_use), (0, 0), "{status:?}");
    assert_eq!(pool.stats().closed.broken, 1);
    drop(pool.get_blocking().expect("the pool still serves"));
}

//! The manager's asynchronous recycle step on a returned connection
//! (`Manager::needs_recycle` / `Manager::recycle`): run off the returner's
//! path, by a get that finds nothing idle or by maintenance, bounded by
//! `recycle_timeout`; its failure, timeout or panic closes the connection
//! and leaks nothing. All on the mock clock.

mod common;

use std::future::poll_fn;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use common::poll_once;
use ringpool::{Clock, Manager, MockClock, Pool};

/// What the recycle step does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    Succeed,
    Fail,
    Hang,
    Panic,
    /// Finishes once this many steps have started (each is a round trip
    /// the others must not wait behind).
    AllTogether(usize),
}

/// A session with a flag its user leaves set (a transaction left open).
struct Session {
    id: u64,
    dirty: bool,
}

#[derive(Default)]
struct Sessions {
    next: AtomicU64,
    live: AtomicUsize,
    recycles: AtomicUsize,
    step: std::sync::Mutex<Option<Step>>,
    /// A hanging step waits for this.
    release: AtomicBool,
}

impl Sessions {
    fn step(&self) -> Step {
        self.step.lock().unwrap().unwrap_or(Step::Succeed)
    }
}

struct Recycling(Arc<Sessions>);

impl Manager for Recycling {
    type Connection = Session;
    type Error = std::io::Error;

    async fn connect(&self) -> std::io::Result<Session> {
        self.0.live.fetch_add(1, Ordering::SeqCst);
        Ok(Session {
            id: self.0.next.fetch_add(1, Ordering::SeqCst),
            dirty: false,
        })
    }
    fn needs_recycle(&self, conn: &mut Session) -> bool {
        conn.dirty
    }
    async fn recycle(&self, conn: &mut Session) -> std::io::Result<()> {
        self.0.recycles.fetch_add(1, Ordering::SeqCst);
        match self.0.step() {
            Step::Succeed => {
                conn.dirty = false;
                Ok(())
            }
            Step::Fail => Err(std::io::Error::other("ROLLBACK failed")),
            Step::Hang => {
                poll_fn(|_| match self.0.release.load(Ordering::SeqCst) {
                    true => Poll::Ready(()),
                    false => Poll::Pending,
                })
                .await;
                conn.dirty = false;
                Ok(())
            }
            Step::Panic => panic!("the recycle step panics"),
            Step::AllTogether(count) => {
                poll_fn(|cx| match self.0.recycles.load(Ordering::SeqCst) >= count {
                    true => Poll::Ready(()),
                    false => {
                        // Asks to be polled again, as a socket's readiness would.
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                })
                .await;
                conn.dirty = false;
                Ok(())
            }
        }
    }
    fn close(&self, _conn: Session, _reason: ringpool::CloseReason) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
    }
}

fn pool(max_size: usize) -> (Pool<Recycling>, Arc<Sessions>, MockClock) {
    let sessions = Arc::new(Sessions::default());
    let (clock, control) = Clock::mock();
    let pool = Pool::builder(Recycling(Arc::clone(&sessions)))
        .max_size(max_size)
        .young_death_window(None)
        .recycle_timeout(Duration::from_secs(2))
        .clock(clock)
        .build()
        .unwrap();
    (pool, sessions, control)
}

/// Returns a session its user left dirty; returns its id.
fn give_back_dirty(pool: &Pool<Recycling>) -> u64 {
    let mut conn = pool.get_blocking().unwrap();
    conn.dirty = true;
    conn.id
}

#[test]
fn a_dirty_return_is_parked_not_idle_and_the_next_get_recycles_and_reuses_it() {
    let (pool, sessions, _clock) = pool(1);
    let id = give_back_dirty(&pool);
    assert_eq!(
        sessions.recycles.load(Ordering::SeqCst),
        0,
        "not on the returner's path"
    );
    let status = pool.status();
    assert_eq!(
        (status.size, status.idle),
        (1, 0),
        "parked: owned, not idle"
    );
    let conn = pool.get_blocking().unwrap();
    assert_eq!(conn.id, id, "recycled and reused, not redialed");
    assert!(!conn.dirty);
    drop(conn);
    let stats = pool.stats();
    assert_eq!(
        (stats.recycled, stats.recycle_failures, stats.connects),
        (1, 0, 1)
    );
    assert_eq!(pool.status().idle, 1, "clean returns go idle as before");
}

#[test]
fn maintenance_recycles_parked_connections_at_once_and_they_go_idle() {
    let (pool, sessions, _clock) = pool(2);
    let mut a = pool.get_blocking().unwrap();
    let mut b = pool.get_blocking().unwrap();
    a.dirty = true;
    b.dirty = true;
    drop((a, b));
    futures_executor::block_on(pool.run_maintenance());
    assert_eq!(sessions.recycles.load(Ordering::SeqCst), 2);
    assert_eq!(pool.status().idle, 2);
    assert_eq!(pool.stats().recycled, 2);
}

#[test]
fn maintenance_runs_the_parked_connections_recycle_steps_side_by_side() {
    let (pool, sessions, _clock) = pool(3);
    let conns: Vec<_> = (0..3).map(|_| pool.get_blocking().unwrap()).collect();
    for mut conn in conns {
        conn.dirty = true;
    }
    // Each step finishes only once all three have started: one at a time,
    // the first would wait for ever.
    *sessions.step.lock().unwrap() = Some(Step::AllTogether(3));
    let mut round = pin!(pool.run_maintenance());
    let polls = (1..=10).find(|_| poll_once(round.as_mut()).is_ready());
    assert!(
        polls.is_some(),
        "the round never ended: the steps ran one at a time"
    );
    assert_eq!(sessions.recycles.load(Ordering::SeqCst), 3);
    assert_eq!(pool.status().idle, 3);
    assert_eq!(pool.stats().recycled, 3);
}

#[test]
fn a_failed_recycle_closes_the_connection_and_the_get_dials_a_new_one() {
    let (pool, sessions, _clock) = pool(1);
    *sessions.step.lock().unwrap() = Some(Step::Fail);
    let id = give_back_dirty(&pool);
    let conn = pool.get_blocking().unwrap();
    assert_ne!(conn.id, id, "the failed one was closed");
    drop(conn);
    let stats = pool.stats();
    assert_eq!((stats.recycle_failures, stats.closed.broken), (1, 1));
    assert_eq!(sessions.live.load(Ordering::SeqCst), 1, "nothing leaked");
    assert_eq!(pool.status().size, 1);
}

#[test]
fn a_hanging_recycle_is_cut_off_at_recycle_timeout_of_the_pools_clock() {
    let (pool, sessions, clock) = pool(1);
    *sessions.step.lock().unwrap() = Some(Step::Hang);
    let id = give_back_dirty(&pool);
    let mut get = pin!(pool.get());
    assert!(poll_once(get.as_mut()).is_pending(), "recycling");
    clock.advance(Duration::from_millis(1_999));
    assert!(poll_once(get.as_mut()).is_pending(), "within the timeout");
    *sessions.step.lock().unwrap() = Some(Step::Succeed);
    clock.advance(Duration::from_millis(2));
    let conn = match poll_once(get.as_mut()) {
        Poll::Ready(Ok(conn)) => conn,
        Poll::Ready(Err(error)) => panic!("{error}"),
        Poll::Pending => panic!("still waiting past recycle_timeout"),
    };
    assert_ne!(conn.id, id, "the hung one was closed, a new one dialed");
    drop(conn);
    assert_eq!(pool.stats().recycle_failures, 1);
    assert_eq!(sessions.live.load(Ordering::SeqCst), 1);
}

#[test]
fn a_get_dropped_mid_recycle_closes_the_connection_and_frees_its_slot() {
    let (pool, sessions, _clock) = pool(1);
    *sessions.step.lock().unwrap() = Some(Step::Hang);
    give_back_dirty(&pool);
    {
        let mut get = pin!(pool.get());
        assert!(poll_once(get.as_mut()).is_pending());
    }
    assert_eq!(pool.status().size, 0, "state unknown: closed");
    assert_eq!(sessions.live.load(Ordering::SeqCst), 0);
}

#[test]
fn a_panicking_recycle_leaks_nothing_and_the_panic_reaches_the_get() {
    let (pool, sessions, _clock) = pool(1);
    *sessions.step.lock().unwrap() = Some(Step::Panic);
    give_back_dirty(&pool);
    let got = catch_unwind(AssertUnwindSafe(|| pool.get_blocking()));
    assert!(got.is_err(), "the panic reaches the caller");
    assert_eq!(pool.status().size, 0, "closed, slot freed");
    // Dropped as the panic passed (no more user code runs then), counted.
    assert_eq!(pool.stats().closed.broken, 1);
    *sessions.step.lock().unwrap() = Some(Step::Succeed);
    assert!(pool.get_blocking().is_ok(), "the pool goes on");
}

#[test]
fn a_waiter_is_served_by_a_dirty_return_and_recycles_it_in_its_own_get() {
    let (pool, sessions, _clock) = pool(1);
    let mut held = pool.get_blocking().unwrap();
    let id = held.id;
    let mut get = pin!(pool.get());
    assert!(
        poll_once(get.as_mut()).is_pending(),
        "waits: the pool is full"
    );
    held.dirty = true;
    drop(held);
    let conn = match poll_once(get.as_mut()) {
        Poll::Ready(Ok(conn)) => conn,
        other => panic!("not served: {:?}", other.map(|r| r.map(|c| c.id))),
    };
    assert_eq!(conn.id, id);
    assert!(!conn.dirty, "recycled before it was handed over");
    assert_eq!(sessions.recycles.load(Ordering::SeqCst), 1);
}

#[test]
fn closing_the_pool_closes_parked_connections() {
    let (pool, sessions, _clock) = pool(2);
    give_back_dirty(&pool);
    pool.close();
    assert_eq!(pool.status().size, 0);
    assert_eq!(sessions.live.load(Ordering::SeqCst), 0);
    assert_eq!(pool.stats().closed.pool_closed, 1);
}

#[test]
fn recycle_timeout_is_validated_and_hot_swapped() {
    let (pool, sessions, clock) = pool(1);
    *sessions.step.lock().unwrap() = Some(Step::Hang);
    let id = give_back_dirty(&pool);
    // Parked before the change, cut off at the new timeout.
    let mut config = pool.config();
    config.recycle_timeout = Duration::ZERO;
    let error = pool.reconfigure(config.clone()).unwrap_err();
    assert!(error.to_string().contains("recycle_timeout"), "{error}");
    config.recycle_timeout = Duration::from_millis(100);
    pool.reconfigure(config).unwrap();
    let mut get = pin!(pool.get());
    assert!(poll_once(get.as_mut()).is_pending());
    clock.advance(Duration::from_millis(101));
    *sessions.step.lock().unwrap() = Some(Step::Succeed);
    match poll_once(get.as_mut()) {
        Poll::Ready(Ok(conn)) => assert_ne!(conn.id, id),
        _ => panic!("not cut off at the swapped timeout"),
    }
}

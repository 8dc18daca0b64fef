//! Loom model tests of ringpool's concurrent protocol.
//!
//! Build and run with
//! `RUSTFLAGS="--cfg ringpool_loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p loom-tests --release`.
//! Without that cfg this crate is empty. The models live in `tests/`; this
//! library holds the instrumented manager and the invariant checks they share.
#![cfg(ringpool_loom)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ringpool::{Clock, ErrorClass, Manager, Pool};

/// What the next connect does.
#[derive(Clone, Copy, Debug)]
pub enum Dial {
    /// Succeeds.
    Ok,
    /// Fails with an error classified fatal.
    Fatal,
}

/// The error a scripted dial fails with.
#[derive(Debug, thiserror::Error)]
#[error("dial refused for good")]
pub struct Refused;

/// A manager that counts live connections (up on connect, down on drop).
/// Its counters are plain `std` atomics: loom runs one thread at a time, so
/// they are exact, and they add no states to the model.
#[derive(Default)]
pub struct Counting {
    made: AtomicUsize,
    dropped: AtomicUsize,
    high_water: AtomicUsize,
    script: Mutex<VecDeque<Dial>>,
}

/// A connection that reports its drop.
pub struct Conn(Arc<Counting>);

impl Drop for Conn {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

impl Counting {
    /// Counters with a script of dial outcomes (then `Ok` forever).
    pub fn new(script: &[Dial]) -> Arc<Counting> {
        let counting = Counting::default();
        counting
            .script
            .lock()
            .unwrap()
            .extend(script.iter().copied());
        Arc::new(counting)
    }

    /// Connections made and not dropped.
    pub fn live(&self) -> usize {
        self.made.load(Ordering::SeqCst) - self.dropped.load(Ordering::SeqCst)
    }

    /// Connections made.
    pub fn made(&self) -> usize {
        self.made.load(Ordering::SeqCst)
    }

    /// Most connections alive at once.
    pub fn high_water(&self) -> usize {
        self.high_water.load(Ordering::SeqCst)
    }
}

/// The manager handed to the pool.
pub struct Mgr(pub Arc<Counting>);

impl Manager for Mgr {
    type Connection = Conn;
    type Error = Refused;

    async fn connect(&self) -> Result<Conn, Refused> {
        let step = self
            .0
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Dial::Ok);
        match step {
            Dial::Fatal => Err(Refused),
            Dial::Ok => {
                let made = self.0.made.fetch_add(1, Ordering::SeqCst) + 1;
                let live = made - self.0.dropped.load(Ordering::SeqCst);
                self.0.high_water.fetch_max(live, Ordering::SeqCst);
                Ok(Conn(Arc::clone(&self.0)))
            }
        }
    }

    fn classify(&self, _error: &Refused) -> ErrorClass {
        ErrorClass::Fatal
    }
}

/// A pool of at most `max_size` on a mock clock, with its manager.
pub fn pool(max_size: usize, script: &[Dial]) -> (Pool<Mgr>, Arc<Counting>) {
    pool_with_dial_limit(max_size, 8, script)
}

/// As [`pool`], with at most `max_dials` dials in flight at once.
pub fn pool_with_dial_limit(
    max_size: usize,
    max_dials: usize,
    script: &[Dial],
) -> (Pool<Mgr>, Arc<Counting>) {
    let counting = Counting::new(script);
    let (clock, _never_advanced) = Clock::mock();
    let pool = Pool::builder(Mgr(Arc::clone(&counting)))
        .max_size(max_size)
        .max_concurrent_dials(max_dials)
        // On a clock that never moves every connection is young, and a
        // discard would pace the next dial behind a timer no model fires;
        // the pacing is time, not protocol, and has its own tests.
        .young_death_window(None)
        .clock(clock)
        .build()
        .expect("valid config");
    (pool, counting)
}

/// Invariants 1-3 and 8 of docs/design.md once every thread is done and
/// every guard dropped.
pub fn assert_quiescent(pool: &Pool<Mgr>, counting: &Counting) {
    let status = pool.status();
    let stats = pool.stats();
    assert_eq!(status.waiting, 0, "no waiter left behind: {status:?}");
    assert_eq!(status.creating, 0, "no dial left behind: {status:?}");
    assert_eq!(status.in_use, 0, "{status:?}");
    assert_eq!(
        status.size, status.idle,
        "the pool owns exactly its idle connections: {status:?}"
    );
    assert_eq!(
        counting.live(),
        status.size,
        "no connection leaked or lost: {status:?}"
    );
    assert_eq!(
        counting.made() as u64,
        stats.closed_total() + stats.detached + status.size as u64,
        "made = closed + detached + owned: {stats:?} {status:?}"
    );
}

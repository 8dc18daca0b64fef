//! An in-memory manager with drop counters and scripted connect outcomes,
//! and helpers to step futures by hand.
#![allow(dead_code)]

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use ringpool::{Clock, CloseReason, ErrorClass, Manager, MockClock, Pool, Status};

/// A manager callback a test can make panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Callback {
    Connect,
    IsBroken,
    IsBrokenBatch,
    CanRecycle,
    Ping,
    Close,
}

/// What the next `connect` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Succeeds at once.
    Ok,
    /// Fails with a retryable error.
    Refused,
    /// Fails with a fatal error.
    Denied,
    /// Never completes.
    Hang,
    /// Completes (successfully) when the test calls `Mock::release`.
    Slow,
}

#[derive(Debug, thiserror::Error)]
pub enum MockError {
    #[error("connection refused")]
    Refused,
    #[error("bad credentials")]
    Denied,
}

pub struct State {
    next_id: AtomicU64,
    pub connect_calls: AtomicUsize,
    pub made: AtomicUsize,
    pub dropped: AtomicUsize,
    pub live_high_water: AtomicUsize,
    script: Mutex<VecDeque<Step>>,
    broken: Mutex<HashSet<u64>>,
    unrecyclable: Mutex<HashSet<u64>>,
    ping_fails: Mutex<HashSet<u64>>,
    pub ping_hangs: std::sync::atomic::AtomicBool,
    pub pings: AtomicUsize,
    /// Calls of `is_broken` (the checkout liveness check).
    pub liveness_checks: AtomicUsize,
    pub closes: AtomicUsize,
    panics: Mutex<HashSet<Callback>>,
    slow: tokio::sync::Semaphore,
}

impl Default for State {
    fn default() -> Self {
        State {
            next_id: AtomicU64::new(0),
            connect_calls: AtomicUsize::new(0),
            made: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
            live_high_water: AtomicUsize::new(0),
            script: Mutex::new(VecDeque::new()),
            broken: Mutex::new(HashSet::new()),
            unrecyclable: Mutex::new(HashSet::new()),
            ping_fails: Mutex::new(HashSet::new()),
            ping_hangs: std::sync::atomic::AtomicBool::new(false),
            pings: AtomicUsize::new(0),
            liveness_checks: AtomicUsize::new(0),
            closes: AtomicUsize::new(0),
            panics: Mutex::new(HashSet::new()),
            slow: tokio::sync::Semaphore::new(0),
        }
    }
}

#[derive(Clone, Default)]
pub struct Mock {
    pub state: Arc<State>,
}

pub struct Conn {
    pub id: u64,
    state: Arc<State>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Conn({})", self.id)
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.state.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

impl Mock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues outcomes for the next connects (then `Ok` forever).
    pub fn script(&self, steps: &[Step]) {
        self.state
            .script
            .lock()
            .unwrap()
            .extend(steps.iter().copied());
    }

    /// Forgets the outcomes not yet used.
    pub fn clear_script(&self) {
        self.state.script.lock().unwrap().clear();
    }

    /// Lets `n` slow connects complete.
    pub fn release(&self, n: usize) {
        self.state.slow.add_permits(n);
    }

    pub fn break_conn(&self, id: u64) {
        self.state.broken.lock().unwrap().insert(id);
    }

    pub fn fail_pings(&self, id: u64) {
        self.state.ping_fails.lock().unwrap().insert(id);
    }

    pub fn pings(&self) -> usize {
        self.state.pings.load(Ordering::SeqCst)
    }

    /// Makes every later call of `callback` panic (until `stop_panics`).
    pub fn panic_in(&self, callback: Callback) {
        self.state.panics.lock().unwrap().insert(callback);
    }

    pub fn stop_panics(&self) {
        self.state.panics.lock().unwrap().clear();
    }

    fn maybe_panic(&self, callback: Callback) {
        if self.state.panics.lock().unwrap().contains(&callback) {
            panic!("the manager panicked in {callback:?}");
        }
    }

    /// Calls to `Manager::close`.
    pub fn closes(&self) -> usize {
        self.state.closes.load(Ordering::SeqCst)
    }

    pub fn make_unrecyclable(&self, id: u64) {
        self.state.unrecyclable.lock().unwrap().insert(id);
    }

    /// Connections made and not yet dropped.
    pub fn live(&self) -> usize {
        self.state.made.load(Ordering::SeqCst) - self.state.dropped.load(Ordering::SeqCst)
    }

    pub fn made(&self) -> usize {
        self.state.made.load(Ordering::SeqCst)
    }

    pub fn connect_calls(&self) -> usize {
        self.state.connect_calls.load(Ordering::SeqCst)
    }

    pub fn high_water(&self) -> usize {
        self.state.live_high_water.load(Ordering::SeqCst)
    }

    fn make(&self) -> Conn {
        let state = &self.state;
        let live =
            state.made.fetch_add(1, Ordering::SeqCst) + 1 - state.dropped.load(Ordering::SeqCst);
        state.live_high_water.fetch_max(live, Ordering::SeqCst);
        Conn {
            id: state.next_id.fetch_add(1, Ordering::SeqCst),
            state: Arc::clone(state),
        }
    }
}

impl Manager for Mock {
    type Connection = Conn;
    type Error = MockError;

    async fn connect(&self) -> Result<Conn, MockError> {
        self.state.connect_calls.fetch_add(1, Ordering::SeqCst);
        self.maybe_panic(Callback::Connect);
        let step = self
            .state
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Step::Ok);
        match step {
            Step::Ok => Ok(self.make()),
            Step::Refused => Err(MockError::Refused),
            Step::Denied => Err(MockError::Denied),
            Step::Hang => std::future::pending().await,
            Step::Slow => {
                self.state
                    .slow
                    .acquire()
                    .await
                    .expect("never closed")
                    .forget();
                Ok(self.make())
            }
        }
    }

    fn is_broken(&self, conn: &mut Conn) -> bool {
        self.maybe_panic(Callback::IsBroken);
        self.state.liveness_checks.fetch_add(1, Ordering::SeqCst);
        self.state.broken.lock().unwrap().contains(&conn.id)
    }

    fn is_broken_batch(&self, conns: &mut [&mut Conn]) -> Vec<bool> {
        self.maybe_panic(Callback::IsBrokenBatch);
        conns.iter_mut().map(|conn| self.is_broken(conn)).collect()
    }

    fn can_recycle(&self, conn: &mut Conn) -> bool {
        self.maybe_panic(Callback::CanRecycle);
        !self.state.unrecyclable.lock().unwrap().contains(&conn.id)
    }

    async fn ping(&self, conn: &mut Conn) -> Result<(), MockError> {
        self.state.pings.fetch_add(1, Ordering::SeqCst);
        self.maybe_panic(Callback::Ping);
        if self.state.ping_hangs.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        match self.state.ping_fails.lock().unwrap().contains(&conn.id) {
            true => Err(MockError::Refused),
            false => Ok(()),
        }
    }

    fn close(&self, conn: Conn, _reason: CloseReason) {
        self.state.closes.fetch_add(1, Ordering::SeqCst);
        self.maybe_panic(Callback::Close);
        drop(conn);
    }

    fn classify(&self, error: &MockError) -> ErrorClass {
        match error {
            MockError::Refused => ErrorClass::Retryable,
            MockError::Denied => ErrorClass::Fatal,
        }
    }
}

/// A pool on a mock clock with the given max size.
///
/// Pools on the mock clock here turn off `young_death_window`: on a clock
/// that stands still every connection is young, so a connection a test
/// breaks would hold the next dial behind the backoff until the test moves
/// the clock. Young deaths have their own tests in `tests/faults.rs`.
pub fn mock_pool(max_size: usize) -> (Pool<Mock>, Mock, MockClock) {
    let mock = Mock::new();
    let (clock, control) = Clock::mock();
    let pool = Pool::builder(mock.clone())
        .young_death_window(None)
        .max_size(max_size)
        .clock(clock)
        .build()
        .expect("valid config");
    (pool, mock, control)
}

/// Polls once with a no-op waker.
pub fn poll_once<F: Future + ?Sized>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

/// Everything is back: nothing in use, waiting or being created, and the
/// pool owns exactly the connections that are still alive.
pub fn assert_quiescent(pool: &Pool<Mock>, mock: &Mock) {
    let status: Status = pool.status();
    assert_eq!(status.in_use, 0, "{status:?}");
    assert_eq!(status.waiting, 0, "{status:?}");
    assert_eq!(status.creating, 0, "{status:?}");
    assert_eq!(status.size, status.idle, "{status:?}");
    assert_eq!(
        mock.live(),
        status.size,
        "live connections vs pool size: {status:?}"
    );
    assert!(status.size <= status.max_size, "{status:?}");
    let stats = pool.stats();
    assert_eq!(
        stats.connects,
        mock.made() as u64,
        "connects counts opened connections"
    );
    assert_eq!(
        stats.connects + stats.connect_errors + stats.dials_cancelled,
        mock.connect_calls() as u64,
        "every dial attempt ends opened, failed or cancelled: {stats:?}"
    );
    assert_eq!(
        mock.made() as u64,
        stats.closed_total() + stats.detached + status.size as u64,
        "made = closed + detached + still owned: {stats:?} {status:?}"
    );
}

pub const SECOND: Duration = Duration::from_secs(1);

/// A `tracing` writer into a shared buffer, for tests that read what the
/// pool logged.
#[derive(Clone, Default)]
pub struct Captured(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

//! The shared pool's contract, on a manager whose connections are plain
//! values: places spread over the least loaded connection, never past its
//! capacity; dials only when all are full; callers queue first in, first
//! out; draining connections finish their requests and go; nothing leaks
//! when a get is cancelled, a dial fails or the manager panics.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use ringpool::shared::{SharedError, SharedManager, SharedPool};
use ringpool::{Clock, MockClock};

/// A connection: whether it takes requests, and the requests the test put
/// on it (counted by the test while it holds a lease).
struct Link {
    open: AtomicBool,
    busy: AtomicUsize,
    dropped: Arc<AtomicUsize>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Default)]
struct Links {
    capacity: AtomicUsize,
    dials: AtomicUsize,
    dropped: Arc<AtomicUsize>,
    fail_next: AtomicBool,
    /// Refuse every dial while set.
    fail_always: AtomicBool,
    /// Dials refused.
    refused: AtomicUsize,
    panic_next: AtomicBool,
    /// `is_open` panics while set.
    panic_is_open: AtomicBool,
}

#[derive(Debug, thiserror::Error)]
#[error("refused by the test")]
struct Refused;

/// The manager: the test keeps the `Links` to steer and count.
#[derive(Clone)]
struct Manager(Arc<Links>);

impl SharedManager for Manager {
    type Connection = Link;
    type Error = Refused;

    async fn connect(&self) -> Result<Link, Refused> {
        let links = &self.0;
        if links.panic_next.swap(false, Ordering::SeqCst) {
            panic!("the manager's connect panicked");
        }
        if links.fail_next.swap(false, Ordering::SeqCst) || links.fail_always.load(Ordering::SeqCst)
        {
            links.refused.fetch_add(1, Ordering::SeqCst);
            return Err(Refused);
        }
        links.dials.fetch_add(1, Ordering::SeqCst);
        Ok(Link {
            open: AtomicBool::new(true),
            busy: AtomicUsize::new(0),
            dropped: Arc::clone(&links.dropped),
        })
    }

    fn capacity(&self, _link: &Link) -> usize {
        self.0.capacity.load(Ordering::SeqCst)
    }

    fn is_open(&self, link: &Link) -> bool {
        if self.0.panic_is_open.load(Ordering::SeqCst) {
            panic!("the manager's is_open panicked");
        }
        link.open.load(Ordering::SeqCst)
    }
}

fn links(capacity: usize) -> Arc<Links> {
    let links = Arc::new(Links::default());
    links.capacity.store(capacity, Ordering::SeqCst);
    links
}

fn mock_pool(
    links: &Arc<Links>,
    configure: impl FnOnce(
        ringpool::shared::SharedBuilder<Manager>,
    ) -> ringpool::shared::SharedBuilder<Manager>,
) -> (SharedPool<Manager>, MockClock) {
    let (clock, mock) = Clock::mock();
    let pool = configure(SharedPool::builder(Manager(Arc::clone(links))).clock(clock))
        .build()
        .unwrap();
    (pool, mock)
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    futures_executor::block_on(future)
}

#[test]
fn requests_fill_connections_evenly_and_dial_only_when_all_are_full() {
    let links = links(100);
    let (pool, _mock) = mock_pool(&links, |b| b.max_size(16));
    let leases: Vec<_> = (0..1000).map(|_| block_on(pool.get()).unwrap()).collect();
    let stats = pool.stats();
    assert_eq!(stats.open, 10, "ceil(1000 / 100) connections: {stats:?}");
    assert_eq!(links.dials.load(Ordering::SeqCst), 10);
    assert!(
        stats.per_connection.iter().all(|&(_, load)| load == 100),
        "{stats:?}"
    );
    drop(leases);
    // With all free, 50 new requests spread over the 10 (least loaded
    // first) instead of stacking on one.
    let leases: Vec<_> = (0..50).map(|_| block_on(pool.get()).unwrap()).collect();
    let stats = pool.stats();
    assert_eq!(stats.open, 10, "no dial while any has room");
    assert!(
        stats.per_connection.iter().all(|&(_, load)| load == 5),
        "{stats:?}"
    );
    drop(leases);
    assert_eq!(pool.stats().in_flight, 0);
}

#[test]
fn a_lowered_capacity_bounds_new_requests_at_once() {
    let links = links(4);
    let (pool, _mock) = mock_pool(&links, |b| b.max_size(2));
    let first: Vec<_> = (0..4).map(|_| block_on(pool.get()).unwrap()).collect();
    assert_eq!(pool.stats().open, 1);
    // The server lowers its stream limit: taken into account at the next
    // checkout on the connection.
    links.capacity.store(2, Ordering::SeqCst);
    drop(first);
    let leases: Vec<_> = (0..4).map(|_| block_on(pool.get()).unwrap()).collect();
    let stats = pool.stats();
    assert_eq!(stats.open, 2, "2 and 2: {stats:?}");
    assert!(stats.per_connection.iter().all(|&(_, load)| load == 2));
    drop(leases);
}

#[test]
fn max_streams_caps_what_the_manager_allows() {
    let links = links(1000);
    let (pool, _mock) = mock_pool(&links, |b| b.max_size(4).max_streams(3));
    let leases: Vec<_> = (0..7).map(|_| block_on(pool.get()).unwrap()).collect();
    assert_eq!(pool.stats().open, 3, "3 + 3 + 1");
    drop(leases);
}

#[tokio::test(flavor = "current_thread")]
async fn callers_queue_at_the_bound_and_are_served_first_in_first_out() {
    let links = links(1);
    let (pool, _mock) = mock_pool(&links, |b| b.max_size(1));
    let held = pool.get().await.unwrap();
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for n in 0..5 {
        let (queued, order) = (pool.clone(), Arc::clone(&order));
        tasks.push(tokio::spawn(async move {
            let lease = queued.get().await.unwrap();
            order.lock().unwrap().push(n);
            tokio::task::yield_now().await;
            drop(lease);
        }));
        // Each queues before the next starts.
        while pool.stats().waiting < n + 1 {
            tokio::task::yield_now().await;
        }
    }
    drop(held);
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4]);
    assert_eq!(links.dials.load(Ordering::SeqCst), 1, "never past max_size");
}

#[tokio::test(flavor = "current_thread")]
async fn a_get_that_finds_no_room_times_out_on_the_mock_clock_with_the_numbers() {
    let links = links(2);
    let (pool, mock) = mock_pool(&links, |b| {
        b.max_size(1).acquire_timeout(Duration::from_secs(1))
    });
    let _held = (pool.get().await.unwrap(), pool.get().await.unwrap());
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await }
    });
    while mock.armed_timers() == 0 {
        tokio::task::yield_now().await;
    }
    mock.advance(Duration::from_secs(1));
    let error = waiter.await.unwrap().unwrap_err();
    assert!(error.is_timeout());
    match &error {
        SharedError::Timeout {
            waited,
            open,
            in_flight,
            waiting,
            failed_dials,
            ..
        } => {
            assert_eq!(*waited, Duration::from_secs(1));
            assert_eq!(*failed_dials, 0);
            assert_eq!(
                (*open, *in_flight, *waiting),
                (1, 2, 0),
                "it left the queue"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(error.to_string().contains("raise max_size or max_streams"));
    assert_eq!(pool.stats().waiting, 0, "withdrawn from the queue");
}

#[tokio::test(flavor = "current_thread")]
async fn a_cancelled_waiter_leaves_the_queue_and_its_place_goes_to_the_next() {
    let links = links(1);
    let (pool, _mock) = mock_pool(&links, |b| b.max_size(1));
    let held = pool.get().await.unwrap();
    let cancelled = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(drop) }
    });
    while pool.stats().waiting < 1 {
        tokio::task::yield_now().await;
    }
    let next = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(|lease| lease.connection_id()) }
    });
    while pool.stats().waiting < 2 {
        tokio::task::yield_now().await;
    }
    cancelled.abort();
    assert!(cancelled.await.unwrap_err().is_cancelled());
    assert_eq!(pool.stats().waiting, 1);
    drop(held);
    assert_eq!(next.await.unwrap().unwrap(), 0);
    let stats = pool.stats();
    assert_eq!((stats.in_flight, stats.waiting), (0, 0));
}

#[test]
fn a_closing_connection_drains_and_goes_after_its_last_request() {
    let links = links(10);
    let (pool, _mock) = mock_pool(&links, |b| b.max_size(1));
    let first = block_on(pool.get()).unwrap();
    let second = block_on(pool.get()).unwrap();
    assert_eq!(first.connection_id(), second.connection_id());
    // The server says it is closing (GOAWAY): seen at the next checkout.
    first.open.store(false, Ordering::SeqCst);
    let third = block_on(pool.get()).unwrap();
    assert_ne!(third.connection_id(), first.connection_id(), "a new one");
    let stats = pool.stats();
    assert_eq!(
        (stats.open, stats.draining, stats.drained_closed),
        (1, 1, 1)
    );
    assert_eq!(stats.in_flight, 3, "the old one's requests still run");
    drop(first);
    assert_eq!(links.dropped.load(Ordering::SeqCst), 0, "one request left");
    drop(second);
    assert_eq!(
        links.dropped.load(Ordering::SeqCst),
        1,
        "gone after its last"
    );
    assert_eq!(pool.stats().draining, 0);
    drop(third);
}

#[test]
fn a_lease_can_drain_its_connection() {
    let links = links(10);
    let (pool, _mock) = mock_pool(&links, |b| b.max_size(2));
    let lease = block_on(pool.get()).unwrap();
    lease.drain();
    let next = block_on(pool.get()).unwrap();
    assert_ne!(next.connection_id(), lease.connection_id());
    drop(lease);
    assert_eq!(links.dropped.load(Ordering::SeqCst), 1);
    drop(next);
}

#[test]
fn a_connection_drains_after_max_requests_per_connection() {
    let links = links(10);
    let (pool, _mock) = mock_pool(&links, |b| b.max_size(1).max_requests_per_connection(3));
    let ids: Vec<u64> = (0..7)
        .map(|_| block_on(pool.get()).unwrap().connection_id())
        .collect();
    assert_eq!(ids, [0, 0, 0, 1, 1, 1, 2]);
    let stats = pool.stats();
    assert_eq!(stats.drained_requests, 2);
    assert_eq!(links.dropped.load(Ordering::SeqCst), 2);
}

#[test]
fn a_connection_drains_at_max_lifetime_on_the_mock_clock() {
    let links = links(10);
    let (pool, mock) = mock_pool(&links, |b| b.max_lifetime(Duration::from_secs(60)));
    let old = block_on(pool.get()).unwrap();
    mock.advance(Duration::from_secs(59));
    assert_eq!(block_on(pool.get()).unwrap().connection_id(), 0);
    mock.advance(Duration::from_secs(1));
    let young = block_on(pool.get()).unwrap();
    assert_eq!(young.connection_id(), 1, "at 60 s it takes no more");
    assert_eq!(pool.stats().drained_lifetime, 1);
    drop(old);
    assert_eq!(links.dropped.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_dial_fails_its_get_with_the_cause_and_a_waiter_dials_next() {
    let links = links(1);
    let (pool, mock) = mock_pool(&links, |b| b.max_size(2));
    let held = pool.get().await.unwrap();
    links.fail_next.store(true, Ordering::SeqCst);
    let error = pool.get().await.unwrap_err();
    assert!(matches!(error, SharedError::Connect(_)), "{error:?}");
    let source = std::error::Error::source(&error).expect("the cause");
    assert_eq!(source.to_string(), "refused by the test");
    let stats = pool.stats();
    assert_eq!((stats.dialing, stats.connect_failures), (0, 1));
    // Its place under max_size was given back; the next dial waits out
    // the backoff (at most connect_backoff, 50 ms, after one failure).
    let second = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await }
    });
    while mock.armed_timers() == 0 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        links.dials.load(Ordering::SeqCst),
        1,
        "no dial before the backoff"
    );
    mock.advance(Duration::from_millis(50));
    let second = second.await.unwrap().unwrap();
    assert_ne!(second.connection_id(), held.connection_id());
}

/// A target that refuses every dial: dials back off (each waits out the
/// doubling backoff, on mock time), the breaker opens after
/// `breaker_threshold` failures in a row and gets then fail at once with
/// `Unavailable` naming the last connect error, one probe per backoff
/// tries again, and the first probe that connects closes the breaker.
#[tokio::test(flavor = "current_thread")]
async fn a_refusing_target_backs_dials_off_opens_the_breaker_and_a_probe_closes_it() {
    let links = links(1);
    let (pool, mock) = mock_pool(&links, |b| {
        b.max_size(1)
            .breaker_threshold(Some(3))
            .connect_backoff(Duration::from_millis(100))
            .connect_backoff_max(Duration::from_millis(400))
            .acquire_timeout(Duration::from_secs(10))
    });
    links.fail_always.store(true, Ordering::SeqCst);
    // Three failed dials in a row, each after the backoff of the last.
    for failure in 1..=3u32 {
        let get = tokio::spawn({
            let pool = pool.clone();
            async move { pool.get().await }
        });
        if failure > 1 {
            while mock.armed_timers() == 0 {
                tokio::task::yield_now().await;
            }
            assert_eq!(
                links.refused.load(Ordering::SeqCst),
                failure as usize - 1,
                "the dial waits for its backoff"
            );
            mock.advance(Duration::from_millis(400));
        }
        let error = get.await.unwrap().unwrap_err();
        assert!(matches!(error, SharedError::Connect(_)), "{error:?}");
    }
    // Open: a get fails at once, without a dial, naming the cause.
    let error = pool.get().await.unwrap_err();
    let SharedError::Unavailable(unavailable) = &error else {
        panic!("{error:?}");
    };
    assert_eq!(unavailable.consecutive_failures, 3);
    assert!(unavailable.retry_in <= Duration::from_millis(400));
    assert!(
        error.to_string().contains("3 dials failed in a row"),
        "{error}"
    );
    let source = std::error::Error::source(&error).expect("the last connect error");
    assert_eq!(source.to_string(), "refused by the test");
    assert_eq!(
        links.refused.load(Ordering::SeqCst),
        3,
        "no dial while open"
    );
    // After the backoff, one probe; it fails, and the breaker stays open.
    mock.advance(Duration::from_millis(400));
    assert!(matches!(pool.get().await, Err(SharedError::Connect(_))));
    assert_eq!(links.refused.load(Ordering::SeqCst), 4);
    assert!(matches!(pool.get().await, Err(SharedError::Unavailable(_))));
    // The target is back: the next probe connects and closes the breaker.
    links.fail_always.store(false, Ordering::SeqCst);
    mock.advance(Duration::from_millis(400));
    let lease = pool.get().await.unwrap();
    drop(lease);
    assert_eq!(pool.get().await.unwrap().connection_id(), 0);
    let stats = pool.stats();
    assert_eq!(
        (stats.connects, stats.connect_failures, stats.dialing),
        (1, 4, 0)
    );
}

/// Connections already open keep serving while the breaker is open.
#[tokio::test(flavor = "current_thread")]
async fn an_open_breaker_still_serves_the_connections_that_are_open() {
    let links = links(2);
    let (pool, mock) = mock_pool(&links, |b| b.max_size(2).breaker_threshold(Some(1)));
    let first = pool.get().await.unwrap();
    let second = pool.get().await.unwrap();
    links.fail_always.store(true, Ordering::SeqCst);
    // Full: the third dials, fails, and opens the breaker.
    assert!(matches!(pool.get().await, Err(SharedError::Connect(_))));
    drop(second);
    let again = pool.get().await.expect("room on the open connection");
    assert_eq!(again.connection_id(), first.connection_id());
    // Full again: no probe before the backoff, so this one fails fast.
    assert!(matches!(pool.get().await, Err(SharedError::Unavailable(_))));
    drop(mock);
}

#[tokio::test(flavor = "current_thread")]
async fn a_panicking_connect_gives_its_place_back() {
    let links = links(1);
    let (pool, _mock) = mock_pool(&links, |b| b.max_size(1));
    links.panic_next.store(true, Ordering::SeqCst);
    let task = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(drop) }
    });
    assert!(task.await.unwrap_err().is_panic());
    assert_eq!(pool.stats().dialing, 0, "the dial's place came back");
    let lease = pool.get().await.unwrap();
    assert_eq!(lease.connection_id(), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn a_waiter_counting_on_a_dial_that_fails_dials_itself() {
    let links = links(10);
    let (pool, _mock) = mock_pool(&links, |b| b.max_size(1));
    // A dial that never finishes until told: the first get dials, the
    // second queues behind it.
    let gate = Arc::new(tokio::sync::Notify::new());
    struct Gated {
        links: Arc<Links>,
        gate: Arc<tokio::sync::Notify>,
        first: AtomicBool,
    }
    impl SharedManager for Gated {
        type Connection = Link;
        type Error = Refused;
        async fn connect(&self) -> Result<Link, Refused> {
            if self.first.swap(false, Ordering::SeqCst) {
                self.gate.notified().await;
                return Err(Refused);
            }
            Manager(Arc::clone(&self.links)).connect().await
        }
        fn capacity(&self, _link: &Link) -> usize {
            self.links.capacity.load(Ordering::SeqCst)
        }
    }
    drop(pool);
    let pool = SharedPool::builder(Gated {
        links: Arc::clone(&links),
        gate: Arc::clone(&gate),
        first: AtomicBool::new(true),
    })
    .max_size(1)
    .build()
    .unwrap();
    let dialer = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(drop) }
    });
    while pool.stats().dialing == 0 {
        tokio::task::yield_now().await;
    }
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(|lease| lease.connection_id()) }
    });
    while pool.stats().waiting == 0 {
        tokio::task::yield_now().await;
    }
    gate.notify_one();
    assert!(dialer.await.unwrap().is_err());
    assert_eq!(
        waiter.await.unwrap().unwrap(),
        0,
        "it dialed after the failure"
    );
    assert_eq!(links.dials.load(Ordering::SeqCst), 1);
}

#[test]
fn bad_settings_are_refused_with_the_field_and_the_fix() {
    let build = |f: fn(
        ringpool::shared::SharedBuilder<Manager>,
    ) -> ringpool::shared::SharedBuilder<Manager>| {
        f(SharedPool::builder(Manager(links(1))))
            .build()
            .unwrap_err()
    };
    let error = build(|b| b.max_size(0));
    assert_eq!(error.field, "max_size");
    assert!(error.to_string().contains("set it to 1 or more"), "{error}");
    assert_eq!(build(|b| b.max_streams(0)).field, "max_streams");
    assert_eq!(
        build(|b| b.max_requests_per_connection(0)).field,
        "max_requests_per_connection"
    );
    assert_eq!(
        build(|b| b.acquire_timeout(Duration::ZERO)).field,
        "acquire_timeout"
    );
    assert_eq!(
        build(|b| b.max_lifetime(Duration::ZERO)).field,
        "max_lifetime"
    );
    let error = build(|b| b.connect_backoff(Duration::from_secs(1)));
    assert_eq!(error.field, "connect_backoff_max");
    assert!(
        error.to_string().contains("below connect_backoff"),
        "{error}"
    );
    assert_eq!(
        build(|b| b.breaker_threshold(Some(0))).field,
        "breaker_threshold"
    );
    assert_eq!(
        build(|b| b.idle_timeout(Some(Duration::ZERO))).field,
        "idle_timeout"
    );
    assert_eq!(
        build(|b| b.maintenance_interval(Duration::ZERO)).field,
        "maintenance_interval"
    );
}

#[test]
fn many_threads_never_put_more_on_a_connection_than_it_carries() {
    const THREADS: usize = 8;
    const ROUNDS: usize = 2_000;
    let links = links(3);
    let pool = SharedPool::builder(Manager(Arc::clone(&links)))
        .max_size(2)
        .max_requests_per_connection(500)
        .build()
        .unwrap();
    let over = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            let (pool, over) = (pool.clone(), Arc::clone(&over));
            scope.spawn(move || {
                for round in 0..ROUNDS {
                    let lease = block_on(pool.get()).unwrap();
                    if lease.busy.fetch_add(1, Ordering::SeqCst) >= 3 {
                        over.fetch_add(1, Ordering::SeqCst);
                    }
                    if round % 7 == 0 {
                        std::thread::yield_now();
                    }
                    lease.busy.fetch_sub(1, Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(
        over.load(Ordering::SeqCst),
        0,
        "a connection carried more than 3"
    );
    let stats = pool.stats();
    assert_eq!((stats.in_flight, stats.waiting, stats.dialing), (0, 0, 0));
    assert_eq!(stats.leases, (THREADS * ROUNDS) as u64);
    // 16,000 requests at 500 a connection: 32 dialed, all but the open
    // ones dropped.
    assert_eq!(
        links.dropped.load(Ordering::SeqCst) + stats.open,
        links.dials.load(Ordering::SeqCst)
    );
}

/// Maintenance drains a connection that carried nothing for
/// `idle_timeout` (seen idle at two rounds with no request in between),
/// and keeps one that served meanwhile; on the mock clock.
#[test]
fn maintenance_closes_connections_idle_for_idle_timeout_and_keeps_used_ones() {
    let links = links(1);
    let (pool, mock) = mock_pool(&links, |b| {
        b.max_size(2).idle_timeout(Some(Duration::from_secs(10)))
    });
    let a = block_on(pool.get()).unwrap();
    let b = block_on(pool.get()).unwrap();
    let (a_id, b_id) = (a.connection_id(), b.connection_id());
    drop((a, b));
    pool.run_maintenance(); // t = 0: both seen idle
    mock.advance(Duration::from_secs(5));
    let used = block_on(pool.get()).unwrap();
    let used_id = used.connection_id();
    drop(used);
    pool.run_maintenance(); // t = 5: the used one seen idle anew
    mock.advance(Duration::from_secs(6));
    pool.run_maintenance(); // t = 11
    let stats = pool.stats();
    assert_eq!(stats.drained_idle, 1, "{stats:?}");
    assert_eq!(
        links.dropped.load(Ordering::SeqCst),
        1,
        "closed, not just marked"
    );
    let kept: Vec<_> = stats.per_connection.iter().map(|&(id, _)| id).collect();
    assert_eq!(kept, [used_id], "ids {a_id} and {b_id}: the idle one went");
    mock.advance(Duration::from_secs(5));
    pool.run_maintenance(); // t = 16: idle since 5
    let stats = pool.stats();
    assert_eq!((stats.open, stats.drained_idle), (0, 2), "{stats:?}");
    assert_eq!(links.dropped.load(Ordering::SeqCst), 2);
    // The next get dials anew.
    assert_eq!(block_on(pool.get()).unwrap().connection_id(), 2);
}

/// A connection whose manager says it takes no more requests (the server
/// closed it while idle) is closed by maintenance with no get asking; a
/// manager that panics there loses nothing and maintenance goes on.
#[test]
fn maintenance_closes_connections_the_manager_says_closed_and_survives_its_panic() {
    let links = links(1);
    let (pool, _mock) = mock_pool(&links, |b| b.max_size(2).idle_timeout(None));
    let a = block_on(pool.get()).unwrap();
    let b = block_on(pool.get()).unwrap();
    a.open.store(false, Ordering::SeqCst);
    drop((a, b));
    pool.run_maintenance();
    let stats = pool.stats();
    assert_eq!((stats.open, stats.drained_closed), (1, 1), "{stats:?}");
    assert_eq!(links.dropped.load(Ordering::SeqCst), 1);
    links.panic_is_open.store(true, Ordering::SeqCst);
    pool.run_maintenance();
    links.panic_is_open.store(false, Ordering::SeqCst);
    let stats = pool.stats();
    assert_eq!((stats.open, stats.drained_closed), (0, 2), "{stats:?}");
    assert_eq!(links.dropped.load(Ordering::SeqCst), 2);
    assert_eq!(block_on(pool.get()).unwrap().connection_id(), 2);
}

/// The maintenance task runs a round every interval on the pool's clock
/// and ends when the pool is dropped.
#[tokio::test(flavor = "current_thread")]
async fn the_maintenance_task_runs_on_the_pool_clock_and_ends_with_the_pool() {
    let links = links(1);
    let (pool, mock) = mock_pool(&links, |b| {
        b.idle_timeout(Some(Duration::from_secs(2)))
            .maintenance_interval(Duration::from_secs(1))
    });
    drop(pool.get().await.unwrap());
    let task = tokio::spawn(pool.maintenance());
    for _ in 0..4 {
        while mock.armed_timers() == 0 {
            tokio::task::yield_now().await;
        }
        mock.advance(Duration::from_secs(1));
        tokio::task::yield_now().await;
    }
    for _ in 0..10_000 {
        if pool.stats().open == 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!((pool.stats().open, pool.stats().drained_idle), (0, 1));
    drop(pool);
    mock.advance(Duration::from_secs(1));
    task.await.unwrap();
}

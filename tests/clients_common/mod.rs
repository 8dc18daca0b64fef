//! What the client managers' tests share: their runtime, their pools, and
//! a server restarted under load (workers call an operation in a loop
//! while the test stops and starts the server; afterwards, every call
//! started after the first success after the restart must have
//! succeeded).
#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A two-worker multi-threaded runtime.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A pool of at most `max` over `manager`, its maintenance running on the
/// current runtime every 20 ms, gets waiting at most 5 s.
pub fn pool<M: ringpool::SendManager>(manager: M, max: usize) -> Arc<ringpool::Pool<M>> {
    let pool = Arc::new(
        ringpool::Pool::builder(manager)
            .max_size(max)
            .maintenance_interval(Duration::from_millis(20))
            .acquire_timeout(Duration::from_secs(5))
            .build()
            .unwrap(),
    );
    tokio::spawn(pool.maintenance());
    pool
}

/// A get on `pool` that must fail fast with a fatal dial error (not be
/// retried until the acquire timeout); its error, whose `connect_error`
/// is the dial's.
pub async fn refused_at_once<M: ringpool::SendManager>(
    pool: &ringpool::Pool<M>,
) -> ringpool::Error<M::Error> {
    let started = Instant::now();
    let Err(error) = pool.get().await else {
        panic!("a dial that must be refused succeeded")
    };
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "fatal: not retried until the acquire timeout ({error})"
    );
    assert_eq!(pool.stats().connects, 0);
    assert!(
        error.connect_error().is_some(),
        "the dial's own error: {error}"
    );
    error
}

/// Checks out `count` connections at once (so `count` are open) and gives
/// them back.
pub async fn open_at_once<M: ringpool::SendManager>(pool: &ringpool::Pool<M>, count: usize) {
    let held: Vec<_> = futures_util::future::join_all((0..count).map(|_| pool.get()))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    drop(held);
}

/// Waits (at most 10 s, without blocking the runtime) until every
/// connection of `pool` is gone: the idle ones the server killed, reaped by
/// the pool with no get asking.
pub async fn until_reaped<M: ringpool::Manager>(pool: &ringpool::Pool<M>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.status().size > 0 {
        assert!(
            Instant::now() < deadline,
            "killed connections were never reaped: {:?}",
            pool.status()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// What a run through a restart saw.
#[derive(Debug)]
pub struct Recovery {
    /// From the server listening again to the first success.
    pub first_success: Duration,
    /// Calls started after the first success, and how many failed.
    pub calls_after: u64,
    pub errors_after: u64,
}

/// Runs `workers` tasks calling `call` on `runtime`; once 200 calls have
/// succeeded, runs `stop` then `start` (the server down, then listening
/// again), and keeps the load on until 500 calls started after the first
/// success and at least 500 ms passed.
pub fn through_restart<F, Fut>(
    runtime: &tokio::runtime::Runtime,
    workers: usize,
    call: F,
    stop: impl FnOnce(),
    start: impl FnOnce(),
) -> Recovery
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let epoch = Instant::now();
    let now = move || epoch.elapsed().as_nanos() as u64;
    let halt = Arc::new(AtomicBool::new(false));
    let succeeded = Arc::new(AtomicU64::new(0));
    let restarted = Arc::new(AtomicU64::new(u64::MAX));
    let first = Arc::new(AtomicU64::new(u64::MAX));
    let calls_after = Arc::new(AtomicU64::new(0));
    let errors_after = Arc::new(AtomicU64::new(0));
    // The latest failure, so a run that never gets going says why.
    let last_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let call = call.clone();
            let (halt, succeeded) = (Arc::clone(&halt), Arc::clone(&succeeded));
            let (restarted, first) = (Arc::clone(&restarted), Arc::clone(&first));
            let (calls_after, errors_after) = (Arc::clone(&calls_after), Arc::clone(&errors_after));
            let last_error = Arc::clone(&last_error);
            runtime.spawn(async move {
                while !halt.load(Ordering::Relaxed) {
                    let started = now();
                    let outcome = call().await;
                    let ended = now();
                    if outcome.is_ok() {
                        succeeded.fetch_add(1, Ordering::Relaxed);
                    }
                    if started >= first.load(Ordering::SeqCst) {
                        calls_after.fetch_add(1, Ordering::Relaxed);
                        if let Err(error) = &outcome {
                            errors_after.fetch_add(1, Ordering::Relaxed);
                            eprintln!("failed after recovery: {error}");
                        }
                    } else if outcome.is_ok() && started >= restarted.load(Ordering::SeqCst) {
                        first.fetch_min(ended, Ordering::SeqCst);
                    }
                    if let Err(error) = &outcome {
                        *last_error.lock().unwrap() = Some(error.clone());
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    let started = Instant::now();
    while succeeded.load(Ordering::Relaxed) < 200 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "timed out waiting for 200 calls before the restart: {} succeeded, the last \
             error: {:?}",
            succeeded.load(Ordering::Relaxed),
            last_error.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    stop();
    restarted.store(now(), Ordering::SeqCst);
    start();
    let listening = now();
    crate::servers::wait_until("a call succeeds after the restart", || {
        first.load(Ordering::SeqCst) != u64::MAX
    });
    let until = Instant::now() + Duration::from_millis(500);
    crate::servers::wait_until("500 calls after recovery", || {
        calls_after.load(Ordering::Relaxed) >= 500 && Instant::now() >= until
    });
    halt.store(true, Ordering::Relaxed);
    runtime.block_on(async {
        for task in tasks {
            task.await.unwrap();
        }
    });
    Recovery {
        first_success: Duration::from_nanos(first.load(Ordering::SeqCst).saturating_sub(listening)),
        calls_after: calls_after.load(Ordering::Relaxed),
        errors_after: errors_after.load(Ordering::Relaxed),
    }
}

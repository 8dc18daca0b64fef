//! A thread-per-core service's setup: the pool's timers and maintenance on
//! the application's own runtime, with no thread started by the pool. It
//! counts the process's threads, so it is the only test in this binary.
mod common;

use std::time::{Duration, Instant};

use common::Mock;
use ringpool::{Clock, Error, Pool};

/// The names of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .expect("procfs")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect()
}

#[test]
fn a_driven_clock_runs_timeouts_and_maintenance_on_the_application_runtime_alone() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let waited = runtime.block_on(async {
        let (clock, driver) = Clock::driven();
        tokio::spawn(driver.run(tokio::time::sleep));
        let mock = Mock::new();
        let pool = Pool::builder(mock.clone())
            .max_size(1)
            .min_idle(1)
            .acquire_timeout(Duration::from_millis(50))
            .clock(clock)
            .build()
            .unwrap();
        tokio::spawn(pool.maintenance());
        // Maintenance, woken on this runtime, warms the pool.
        tokio::time::timeout(Duration::from_secs(5), async {
            while pool.status().idle < 1 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("maintenance refilled min_idle");
        let held = pool.get().await.unwrap();
        // The acquire timeout is a timer the driver fires.
        let started = Instant::now();
        let outcome = pool.get().await;
        let waited = started.elapsed();
        assert!(matches!(outcome, Err(Error::Timeout(_))), "timed out");
        drop(held);
        waited
    });
    assert!(
        waited >= Duration::from_millis(50),
        "never early: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(2),
        "fired, not hung: {waited:?}"
    );
    let ours: Vec<String> = thread_names()
        .into_iter()
        .filter(|name| name.starts_with("ringpool") || name.starts_with("quanta"))
        .collect();
    assert!(ours.is_empty(), "threads the pool started: {ours:?}");
}

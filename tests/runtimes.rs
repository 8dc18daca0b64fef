//! The core needs no runtime: it runs under tokio's multi-threaded runtime
//! (with `Send` get futures), a current-thread runtime with a manager whose
//! futures are not `Send`, a plain executor, and blocking threads.
mod common;

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Mock, assert_quiescent};
use ringpool::{Manager, Pool};

fn assert_send<T: Send>(_: &T) {}

#[test]
fn get_futures_are_send_with_a_send_manager() {
    let pool = Pool::builder(Mock::new()).build().unwrap();
    let future = pool.get();
    assert_send(&future);
    assert_send(&pool);
}

#[test]
fn many_tasks_on_tokios_multithreaded_runtime_share_one_bound() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone()).max_size(4).build().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    for _ in 0..200 {
                        let conn = pool.get().await.unwrap();
                        tokio::task::yield_now().await;
                        drop(conn);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    assert!(mock.high_water() <= 4, "high water {}", mock.high_water());
    assert_eq!(pool.stats().gets, 32 * 200);
    assert_quiescent(&pool, &mock);
}

/// A manager whose connect future holds an `Rc`, like tokio-uring's.
struct LocalOnly(Arc<AtomicUsize>);

impl Manager for LocalOnly {
    type Connection = usize;
    type Error = std::io::Error;

    async fn connect(&self) -> std::io::Result<usize> {
        let not_send = Rc::new(self.0.fetch_add(1, Ordering::SeqCst));
        tokio::task::yield_now().await;
        Ok(*not_send)
    }
}

#[test]
fn a_manager_with_non_send_futures_works_on_a_local_runtime() {
    let dials = Arc::new(AtomicUsize::new(0));
    let pool = Pool::builder(LocalOnly(Arc::clone(&dials)))
        .max_size(2)
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let pool = pool.clone();
                tokio::task::spawn_local(async move {
                    for _ in 0..50 {
                        let conn = pool.get().await.unwrap();
                        tokio::task::yield_now().await;
                        drop(conn);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    assert_eq!(
        dials.load(Ordering::SeqCst),
        2,
        "two connections served 400 gets"
    );
}

#[test]
fn a_plain_executor_and_blocking_threads_share_a_pool() {
    let mock = Mock::new();
    let pool = Pool::builder(mock.clone()).max_size(2).build().unwrap();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            futures_executor::block_on(async {
                for _ in 0..2_000 {
                    drop(pool.get().await.unwrap());
                }
            })
        });
        for _ in 0..2 {
            scope.spawn(|| {
                for _ in 0..2_000 {
                    drop(pool.get_blocking().unwrap());
                }
            });
        }
    });
    assert!(mock.high_water() <= 2);
    assert_quiescent(&pool, &mock);
}

/// A manager that states its futures are `Send`.
struct SendNumbers;

impl ringpool::SendManager for SendNumbers {
    type Connection = u64;
    type Error = std::io::Error;

    async fn connect(&self) -> std::io::Result<u64> {
        tokio::task::yield_now().await;
        Ok(7)
    }
}

/// Code generic over the manager that spawns gets: it compiles only
/// because `M: SendManager` makes the get future `Send`.
fn spawn_gets<M: ringpool::SendManager>(pool: Pool<M>, n: usize) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut served = 0;
        for _ in 0..n {
            if pool.get().await.is_ok() {
                served += 1;
            }
        }
        served
    })
}

#[test]
fn generic_code_spawns_gets_of_a_send_manager_on_a_multi_threaded_runtime() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let pool = Pool::builder(SendNumbers).max_size(2).build().unwrap();
    let served = runtime.block_on(async {
        let tasks: Vec<_> = (0..4).map(|_| spawn_gets(pool.clone(), 50)).collect();
        let mut served = 0;
        for task in tasks {
            served += task.await.unwrap();
        }
        served
    });
    assert_eq!(served, 200);
    assert!(pool.stats().connects <= 2);
}

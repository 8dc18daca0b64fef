//! The guard: returned on drop, `discard` closes, `detach` takes it out for
//! good; the manager may refuse to recycle a returned connection.
mod common;

use common::{assert_quiescent, mock_pool};
use ringpool::CloseReason;

#[test]
fn dropping_returns_discard_closes_detach_frees_the_slot() {
    let (pool, mock, _clock) = mock_pool(2);
    let conn = pool.get_blocking().unwrap();
    let id = conn.id;
    drop(conn);
    assert_eq!((pool.status().size, pool.status().idle), (1, 1));

    let conn = pool.get_blocking().unwrap();
    assert_eq!(conn.id, id);
    conn.discard();
    assert_eq!(pool.status().size, 0);
    assert_eq!(mock.live(), 0, "discarded means closed");
    assert_eq!(pool.stats().closed.discarded, 1);

    let detached = pool.get_blocking().unwrap().detach();
    assert_eq!(
        pool.status().size,
        0,
        "a detached connection is no longer counted"
    );
    assert_eq!(mock.live(), 1, "and it is still open, owned by the caller");
    let a = pool.get_blocking().unwrap();
    let b = pool.get_blocking().unwrap();
    assert_eq!(pool.status().size, 2, "its slot was reusable");
    drop((a, b, detached));
    assert_eq!(pool.stats().detached, 1);
    assert_quiescent(&pool, &mock);
}

#[test]
fn a_connection_the_manager_cannot_recycle_is_closed_on_return() {
    let (pool, mock, _clock) = mock_pool(1);
    let conn = pool.get_blocking().unwrap();
    mock.make_unrecyclable(conn.id);
    drop(conn);
    assert_eq!(pool.status().size, 0);
    assert_eq!(pool.stats().closed.broken, 1);
    assert_quiescent(&pool, &mock);
}

#[test]
fn close_reasons_reach_the_manager() {
    use std::sync::{Arc, Mutex};
    struct Recording(Arc<Mutex<Vec<CloseReason>>>);
    impl ringpool::Manager for Recording {
        type Connection = ();
        type Error = std::io::Error;
        async fn connect(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn close(&self, _conn: (), reason: CloseReason) {
            self.0.lock().unwrap().push(reason);
        }
    }
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let pool = ringpool::Pool::builder(Recording(Arc::clone(&reasons)))
        .build()
        .unwrap();
    pool.get_blocking().unwrap().discard();
    drop(pool.get_blocking().unwrap());
    drop(pool);
    assert_eq!(
        *reasons.lock().unwrap(),
        vec![CloseReason::Discarded, CloseReason::PoolClosed]
    );
}

//! Which idle connection a checkout takes: `lifo` (the default) hands a
//! thread back the connection it returned last, so a lightly used pool
//! shrinks to the connections it uses; `fifo` exercises every connection
//! in turn. Both on the mock clock.
mod common;
mod harness;

use std::time::Duration;

use common::{SECOND, assert_quiescent};
use harness::Harness;
use ringpool::IdleOrder;

const MS: Duration = Duration::from_millis(1);

/// Four connections, then one get every 200 ms for 5 s; returns the pool
/// size at the end and how many connections timed out idle.
fn light_load(order: IdleOrder) -> (usize, u64, std::collections::HashSet<u64>) {
    let mut h = Harness::new(|b| {
        // Maintenance runs every second: its passes (expiry, the liveness
        // round) take every idle connection out and put the kept ones
        // back, which must leave the last-in-first-out order as it was.
        // First in, first out, the liveness round puts what it checked at
        // the back of the queue (checked is exercised); check_after above
        // the rotation measures the order alone.
        let b = match order {
            IdleOrder::Fifo => b.check_after(2 * SECOND),
            _ => b,
        };
        b.idle_order(order)
            .idle_timeout(Some(SECOND))
            .maintenance_interval(SECOND)
            .max_size(4)
    });
    let warm: Vec<_> = (0..4).map(|_| h.pool.get_blocking().unwrap()).collect();
    drop(warm);
    assert_eq!(h.pool.status().idle, 4);
    let mut used = std::collections::HashSet::new();
    for _ in 0..25 {
        h.run.advance(200 * MS, 100 * MS);
        used.insert(h.pool.get_blocking().unwrap().id);
    }
    let (size, closed) = (h.pool.status().size, h.pool.stats().closed.idle_timeout);
    assert_quiescent(&h.pool, &h.mock);
    (size, closed, used)
}

#[test]
fn lifo_shrinks_a_lightly_used_pool_to_the_connections_it_uses() {
    let (size, idle_closed, used) = light_load(IdleOrder::Lifo);
    assert_eq!(used.len(), 1, "one warm connection served every get");
    assert_eq!(size, 1, "the others timed out from the cold end");
    assert_eq!(idle_closed, 3);
}

#[test]
fn lifo_hands_back_the_newest_first_beyond_the_threads_slot_and_after_a_pass() {
    let mut h = Harness::new(|b| b.max_size(4));
    let held: Vec<_> = (0..4).map(|_| h.pool.get_blocking().unwrap()).collect();
    let ids: Vec<u64> = held.iter().map(|conn| conn.id).collect();
    drop(held); // returned in order: ids[3] last
    // A maintenance round's passes take every idle connection out and put
    // the kept ones back.
    h.run.advance(SECOND, 100 * MS);
    let again: Vec<_> = (0..4).map(|_| h.pool.get_blocking().unwrap()).collect();
    let order: Vec<u64> = again.iter().map(|conn| conn.id).collect();
    assert_eq!(order, [ids[3], ids[2], ids[1], ids[0]], "newest first");
    drop(again);
    assert_quiescent(&h.pool, &h.mock);
}

#[test]
fn fifo_exercises_every_connection_so_none_times_out() {
    let (size, idle_closed, used) = light_load(IdleOrder::Fifo);
    assert_eq!(used.len(), 4, "every connection in turn");
    assert_eq!(size, 4, "none was idle for a second");
    assert_eq!(idle_closed, 0);
}

#[test]
fn the_idle_order_is_hot_swapped() {
    let mut h = Harness::new(|b| b.max_size(3));
    let conns: Vec<_> = (0..3).map(|_| h.pool.get_blocking().unwrap()).collect();
    drop(conns); // 0 into this thread's slot, 1 and 2 into the shared queue
    let mut config = h.pool.config();
    config.idle_order = IdleOrder::Fifo;
    h.pool.reconfigure(config).unwrap();
    h.run.settle();
    let first = h.pool.get_blocking().unwrap();
    let id = first.id;
    drop(first); // fifo: to the back of the shared queue
    let order: Vec<u64> = (0..3)
        .map(|_| h.pool.try_get().unwrap())
        .map(|conn| {
            let id = conn.id;
            std::mem::forget(conn.detach());
            id
        })
        .collect();
    assert_eq!(
        order.last(),
        Some(&id),
        "returned last, handed out last: {order:?}"
    );
}

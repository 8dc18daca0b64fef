//! What the pool keeps per connection beyond the connection itself,
//! measured with a counting allocator (so this is the only test in its
//! binary): per place of the idle store, a slot in the shared queue (its
//! stamp and the entry's three timestamps) and a node of the shared stack
//! (its link and the entry), times the places per connection of
//! `max_size`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use ringpool::{Manager, Pool};

struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged and only
// counts the bytes asked for.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed through to `System`.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A connection of no size: what remains is the pool's own bookkeeping.
struct Nothing;

impl Manager for Nothing {
    type Connection = ();
    type Error = std::io::Error;
    async fn connect(&self) -> Result<(), std::io::Error> {
        Ok(())
    }
}

/// Bytes a pool of `size` connections, all open and idle, holds. The pool
/// is kept alive in `alive` until the test ends: a dropped pool's threads
/// free what they hold when they exit, after the drop returns, and freed
/// inside the next measurement that skewed it by a byte a place.
fn held_by(size: usize, idle_capacity: Option<usize>, alive: &mut Vec<Pool<Nothing>>) -> usize {
    let before = ALLOCATED.load(Ordering::Relaxed);
    let mut builder = Pool::builder(Nothing).max_size(size);
    if let Some(capacity) = idle_capacity {
        builder = builder.idle_capacity(capacity);
    }
    let pool = builder.build().unwrap();
    let held: Vec<_> = (0..size).map(|_| pool.get_blocking().unwrap()).collect();
    drop(held);
    assert_eq!(pool.status().idle, size);
    let bytes = ALLOCATED.load(Ordering::Relaxed) - before;
    alive.push(pool);
    bytes
}

#[test]
fn the_pool_keeps_64_bytes_per_place_in_its_idle_store() {
    let mut alive = Vec::with_capacity(8);
    // What the process allocates once, at its first pool and first gets
    // (thread-local state, log call sites), is paid here, before counting:
    // left to the first measured pool, it showed as an extra byte a place.
    held_by(10, None, &mut alive);
    // Marginal cost of 1,000 more connections, so per-pool costs cancel.
    let mut per = |capacity: fn(usize) -> Option<usize>| {
        let more = held_by(2_000, capacity(2_000), &mut alive);
        let fewer = held_by(1_000, capacity(1_000), &mut alive);
        // Rounded: a background thread's few bytes must not tip it a byte.
        (more - fewer + 500) / 1_000
    };
    let exact = per(Some);
    let default = per(|_| None);
    println!("bytes per connection: {exact} (idle_capacity = max_size), {default} (default 4x)");
    // An entry (three 8-byte words) and the queue slot's stamp, 32 bytes;
    // an entry and the stack node's link, 32 more: 64 a place. In about
    // one run in five the gets' own allocations add about a kilobyte per
    // thousand (runs that take 0.2-0.3 s instead of 0.05), which rounds
    // to one byte more; not yet traced, so tolerated here.
    assert!(
        (60..=65).contains(&exact),
        "per place in the idle store: {exact}"
    );
    assert!(
        (4 * 60..=4 * 64).contains(&default),
        "the default store has four places per connection: {default}"
    );
}

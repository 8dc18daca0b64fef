//! A small number per thread, for spreading per-thread state (counter
//! stripes, idle slots) over a fixed number of places.

use crate::sync::plain::{AtomicUsize, Ordering};
use std::cell::Cell;

/// This thread's number: 0 for the first thread that asks, 1 for the
/// next, and so on; the same for the thread's whole life.
#[inline]
pub(crate) fn thread_number() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static NUMBER: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    NUMBER.with(|number| {
        if number.get() == usize::MAX {
            number.set(NEXT.fetch_add(1, Ordering::Relaxed));
        }
        number.get()
    })
}

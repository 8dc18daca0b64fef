//! Putting one entry on the ring's submission queue, submitting to make
//! room when it is full: shared by the ring thread's operations and its
//! idle watch.

use io_uring::{IoUring, squeue};

/// Pushes `entry`, submitting first if the submission queue is full.
pub(super) fn push(ring: &mut IoUring, entry: &squeue::Entry) {
    loop {
        // SAFETY: every pointer in `entry` points into an `Op` (or the wake
        // buffer) that outlives the operation: the caller keeps it in
        // `in_flight` (or owns the buffer for the thread's life).
        if unsafe { ring.submission().push(entry) }.is_ok() {
            return;
        }
        if let Err(error) = ring.submit() {
            tracing::error!(%error, "io_uring submit failed");
        }
    }
}

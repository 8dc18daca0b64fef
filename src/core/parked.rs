//! Returned connections waiting for the manager's asynchronous recycle step
//! (`Manager::recycle`): owned by the pool (they hold slots) but neither
//! idle nor in use, until the maintenance task or a get that finds nothing
//! idle takes one, runs the step and puts it back into use.
//!
//! Rare (only returns the manager flags), so a mutex over a queue is
//! enough; the count beside it lets every other path skip the lock while
//! nothing is parked. Takers and parkers run the lost-wake-up handshake of
//! `core/mod.rs` around it as around the idle store: a parker publishes,
//! fences and reads the waiter count; a waiter raises it, fences and looks
//! here after the idle store.

use std::collections::VecDeque;

use crate::sync::{AtomicUsize, Mutex, Ordering};

/// Connections parked for their recycle step, oldest first.
pub(crate) struct Parked<T> {
    queue: Mutex<VecDeque<T>>,
    len: AtomicUsize,
}

impl<T> Parked<T> {
    pub(crate) fn new() -> Self {
        Parked {
            queue: Mutex::new(VecDeque::new()),
            len: AtomicUsize::new(0),
        }
    }

    /// Parks `value` at the back.
    pub(crate) fn push(&self, value: T) {
        let mut queue = self.queue.lock();
        queue.push_back(value);
        self.len.store(queue.len(), Ordering::Relaxed);
    }

    /// The oldest parked value, if any; one relaxed load when none is.
    #[inline]
    pub(crate) fn pop(&self) -> Option<T> {
        if self.len.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let mut queue = self.queue.lock();
        let value = queue.pop_front();
        self.len.store(queue.len(), Ordering::Relaxed);
        value
    }

    /// Values parked now (a snapshot).
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::Parked;
    use crate::sync::model;
    use std::sync::Arc;

    #[test]
    fn parked_values_come_out_oldest_first() {
        model::check(|| {
            let parked = Parked::new();
            assert_eq!(parked.pop(), None);
            parked.push(1);
            parked.push(2);
            assert_eq!(parked.len(), 2);
            assert_eq!(parked.pop(), Some(1));
            assert_eq!(parked.pop(), Some(2));
            assert_eq!(parked.pop(), None);
        });
    }

    #[test]
    fn a_value_parked_while_another_thread_takes_is_taken_once() {
        model::check(|| {
            let parked = Arc::new(Parked::new());
            let parker = model::spawn({
                let parked = Arc::clone(&parked);
                move || parked.push(7)
            });
            let taken = parked.pop();
            parker.join().unwrap();
            let rest = parked.pop();
            assert_eq!([taken, rest].iter().flatten().count(), 1);
            assert_eq!(parked.len(), 0);
        });
    }
}

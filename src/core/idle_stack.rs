//! Bounded lock-free stacks (last in, first out): the shared part of the
//! idle store when the idle order is last in, first out, and the store's
//! aside list, where a pass keeps entries (see `idle_store::Pass`).
//!
//! Treiber stacks over one fixed array of nodes, linked by index. Three
//! lists thread through the array: the two stacks ([`List::Top`],
//! [`List::Aside`]) and the free nodes, so both stacks together take one
//! node per place (their entries are the store's, which never holds more
//! than its capacity). Each list
//! head is one 64-bit word, the index of its top node (plus one; 0 is
//! empty) in the low half and a tag in the high half that every successful
//! compare-and-swap advances, so a head that was popped and pushed back in
//! between (the ABA problem) fails the swap instead of linking a stale
//! `next`. Nodes are never freed while the stack lives, so reading a node's
//! `next` after it was taken by another thread reads a valid atomic, whose
//! value only matters if the swap then succeeds, which the tag rules out.
//! (The tag wraps after 2^32 swaps of one head between a load and its
//! swap, which a thread preempted that long would have to see exactly.)
//!
//! A push takes a free node, writes the value, and links it on top; a pop
//! unlinks the top node, reads the value, and gives the node back to the
//! free list. The value is only ever touched by the one thread that holds
//! its node off both lists.

use std::mem::MaybeUninit;

use crate::sync::{AtomicU32, AtomicU64, AtomicUsize, Ordering, UnsafeCell};
use crossbeam_utils::CachePadded;

/// Index plus one of no node.
const NIL: u32 = 0;

struct Node<T> {
    /// The node below it (index plus one), while on a list.
    next: AtomicU32,
    /// Written by the thread that took the node from the free list, read by
    /// the one that unlinked it from a stack: holds a value exactly while
    /// the node is off the free list.
    value: UnsafeCell<MaybeUninit<T>>,
}

/// A list head: tag in the high half, top index plus one in the low half.
struct Head(CachePadded<AtomicU64>);

impl Head {
    fn new(top: u32) -> Self {
        Head(CachePadded::new(AtomicU64::new(u64::from(top))))
    }

    /// The node on top, unlinked, if any.
    #[inline]
    fn pop<T>(&self, nodes: &[Node<T>]) -> Option<usize> {
        let mut head = self.0.load(Ordering::Acquire);
        loop {
            let top = head as u32;
            if top == NIL {
                return None;
            }
            let next = nodes[top as usize - 1].next.load(Ordering::Relaxed);
            let new = ((head >> 32).wrapping_add(1) << 32) | u64::from(next);
            match self
                .0
                .compare_exchange_weak(head, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(top as usize - 1),
                Err(seen) => head = seen,
            }
        }
    }

    /// Links node `index` on top.
    #[inline]
    fn push<T>(&self, nodes: &[Node<T>], index: usize) {
        let node = &nodes[index];
        let mut head = self.0.load(Ordering::Acquire);
        loop {
            node.next.store(head as u32, Ordering::Relaxed);
            let new = ((head >> 32).wrapping_add(1) << 32) | (index as u64 + 1);
            match self
                .0
                .compare_exchange_weak(head, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(seen) => head = seen,
            }
        }
    }

    /// Whether the list is empty now (a snapshot).
    #[inline]
    fn is_empty(&self) -> bool {
        self.0.load(Ordering::Relaxed) as u32 == NIL
    }
}

/// Which of the two stacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum List {
    /// The stack proper.
    Top,
    /// The pass's aside stack.
    Aside,
}

/// Two bounded multi-producer, multi-consumer stacks over one set of nodes.
pub(crate) struct IdleStack<T> {
    lists: [Head; 2],
    free: Head,
    nodes: Box<[Node<T>]>,
    /// Values on each stack (counts kept beside the lists: raised after a
    /// push, lowered after a pop, so they may lag them for a moment).
    lens: [CachePadded<AtomicUsize>; 2],
}

// SAFETY: a node's value is reached only by the one thread that holds the
// node off every list (it won the swap that unlinked it), and handed
// between threads through the `Release` swap that links it and the
// `Acquire` swap that unlinks it, so sharing the stacks moves `T`s between
// threads, which `T: Send` allows.
unsafe impl<T: Send> Sync for IdleStack<T> {}
// SAFETY: as above; the stacks own their values.
unsafe impl<T: Send> Send for IdleStack<T> {}

impl<T> IdleStack<T> {
    /// Two empty stacks that hold at most `capacity` values between them.
    pub(crate) fn new(capacity: usize) -> Self {
        assert!(
            capacity < u32::MAX as usize,
            "an idle stack holds fewer than 2^32 values"
        );
        let nodes: Box<[Node<T>]> = (0..capacity)
            .map(|index| Node {
                // Every node starts on the free list, each above the next.
                next: AtomicU32::new(if index + 1 < capacity {
                    index as u32 + 2
                } else {
                    NIL
                }),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            })
            .collect();
        IdleStack {
            lists: [Head::new(NIL), Head::new(NIL)],
            free: Head::new(if capacity == 0 { NIL } else { 1 }),
            nodes,
            lens: [
                CachePadded::new(AtomicUsize::new(0)),
                CachePadded::new(AtomicUsize::new(0)),
            ],
        }
    }

    /// Puts `value` on top of `list`; gives it back if every node is in use.
    #[inline]
    pub(crate) fn push(&self, list: List, value: T) -> Result<(), T> {
        let Some(index) = self.free.pop(&self.nodes) else {
            return Err(value);
        };
        self.nodes[index].value.with_mut(|slot| {
            // SAFETY: the node is off every list and ours alone until we
            // link it; the `Acquire` swap that freed it to us saw the last
            // reader's `Release`, so its read is done.
            unsafe { (*slot).write(value) };
        });
        self.lists[list as usize].push(&self.nodes, index);
        self.lens[list as usize].fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Takes the value on top of `list`, if any.
    #[inline]
    pub(crate) fn pop(&self, list: List) -> Option<T> {
        let head = &self.lists[list as usize];
        if head.is_empty() {
            return None;
        }
        let index = head.pop(&self.nodes)?;
        // SAFETY: the node is off every list and ours alone; the `Acquire`
        // swap that unlinked it saw the pusher's `Release`, so its write is
        // visible and done, and a node on a stack holds a value.
        let value = self.nodes[index]
            .value
            .with_mut(|slot| unsafe { (*slot).assume_init_read() });
        self.free.push(&self.nodes, index);
        self.lens[list as usize].fetch_sub(1, Ordering::Relaxed);
        Some(value)
    }

    /// Values on `list` now (a snapshot).
    pub(crate) fn len(&self, list: List) -> usize {
        // A pop may lower the count before the push that fed it raised it.
        (self.lens[list as usize].load(Ordering::Relaxed) as isize).max(0) as usize
    }
}

impl<T> Drop for IdleStack<T> {
    fn drop(&mut self) {
        // `&mut self`: nothing else can reach the stacks.
        for list in [List::Top, List::Aside] {
            while self.pop(list).is_some() {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{IdleStack, List};
    use crate::sync::model;
    use std::sync::Arc;

    #[test]
    fn the_last_value_pushed_comes_out_first_and_a_full_stack_refuses() {
        model::check(|| {
            let stack = IdleStack::new(3);
            assert_eq!(stack.pop(List::Top), None);
            for value in 1..=3 {
                stack.push(List::Top, value).unwrap();
            }
            assert_eq!(stack.push(List::Top, 4), Err(4), "full at its capacity");
            assert_eq!(stack.len(List::Top), 3);
            assert_eq!(stack.pop(List::Top), Some(3));
            stack.push(List::Top, 5).unwrap();
            assert_eq!(stack.pop(List::Top), Some(5));
            assert_eq!(stack.pop(List::Top), Some(2));
            assert_eq!(stack.pop(List::Top), Some(1));
            assert_eq!(stack.pop(List::Top), None);
            assert_eq!(stack.len(List::Top), 0);
        });
    }

    #[test]
    fn both_stacks_share_the_nodes_and_dropping_drops_what_they_hold() {
        model::check(|| {
            let held = Arc::new(());
            let stack = IdleStack::new(3);
            stack.push(List::Top, Arc::clone(&held)).unwrap();
            stack.push(List::Aside, Arc::clone(&held)).unwrap();
            stack.push(List::Aside, Arc::clone(&held)).unwrap();
            assert!(
                stack.push(List::Top, Arc::clone(&held)).is_err(),
                "3 nodes in all"
            );
            assert_eq!((stack.len(List::Top), stack.len(List::Aside)), (1, 2));
            drop(stack.pop(List::Aside));
            assert_eq!(Arc::strong_count(&held), 3);
            drop(stack);
            assert_eq!(Arc::strong_count(&held), 1, "no value leaked");
        });
    }

    #[test]
    fn a_stack_of_no_capacity_refuses_every_push() {
        model::check(|| {
            let stack = IdleStack::new(0);
            assert_eq!(stack.push(List::Top, 1), Err(1));
            assert_eq!(stack.pop(List::Top), None);
        });
    }

    #[test]
    fn concurrent_pushes_and_pops_lose_and_duplicate_nothing() {
        model::check(|| {
            let stack = Arc::new(IdleStack::new(2));
            stack.push(List::Top, 1).unwrap();
            let pusher = model::spawn({
                let stack = Arc::clone(&stack);
                move || stack.push(List::Top, 2).unwrap()
            });
            let popper = model::spawn({
                let stack = Arc::clone(&stack);
                move || stack.pop(List::Top)
            });
            pusher.join().unwrap();
            let mut seen: Vec<i32> = popper.join().unwrap().into_iter().collect();
            while let Some(value) = stack.pop(List::Top) {
                seen.push(value);
            }
            seen.sort();
            assert_eq!(seen, [1, 2]);
        });
    }

    #[test]
    fn a_pop_that_races_a_pop_pop_push_loses_and_duplicates_nothing() {
        // While one thread reads the top node and its next, the other pops
        // both nodes and reuses one: the racing pop must fail its swap and
        // retry, never link a node that is no longer below the top.
        model::check_bounded(3, || {
            let stack = Arc::new(IdleStack::new(2));
            stack.push(List::Top, 1).unwrap();
            stack.push(List::Top, 2).unwrap();
            let other = model::spawn({
                let stack = Arc::clone(&stack);
                move || {
                    let mut taken: Vec<i32> = Vec::new();
                    taken.extend(stack.pop(List::Top));
                    taken.extend(stack.pop(List::Top));
                    if let Some(first) = taken.first().copied() {
                        stack.push(List::Top, first + 10).unwrap();
                        taken.remove(0);
                    }
                    taken
                }
            });
            let mine = stack.pop(List::Top);
            let mut seen = other.join().unwrap();
            seen.extend(mine);
            while let Some(value) = stack.pop(List::Top) {
                seen.push(value);
            }
            let mut bases: Vec<i32> = seen.iter().map(|value| value % 10).collect();
            bases.sort();
            assert_eq!(bases, [1, 2], "each value exactly once: {seen:?}");
        });
    }

    #[test]
    fn many_threads_hammering_keep_every_value() {
        // Not a model: real threads, many rounds, to shake out ABA.
        #[cfg(not(ringpool_loom))]
        {
            let stack = Arc::new(IdleStack::new(8));
            for value in 0..8 {
                stack.push(List::Top, value).unwrap();
            }
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    let stack = Arc::clone(&stack);
                    std::thread::spawn(move || {
                        for _ in 0..100_000 {
                            if let Some(value) = stack.pop(List::Top) {
                                stack.push(List::Top, value).unwrap();
                            }
                        }
                    })
                })
                .collect();
            for thread in threads {
                thread.join().unwrap();
            }
            let mut all: Vec<i32> = std::iter::from_fn(|| stack.pop(List::Top)).collect();
            all.sort();
            assert_eq!(all, (0..8).collect::<Vec<_>>());
        }
    }
}

use super::IdleStore;
use crate::sync::model;

#[test]
fn a_thread_gets_back_what_it_returned_last_and_scans_reach_every_slot() {
    model::check(|| {
        let store = IdleStore::new(8, true);
        store.push(1).unwrap();
        store.push(2).unwrap();
        store.push_returned(3, |_| {}).unwrap();
        assert_eq!(store.len(), 3);
        assert_eq!(store.pop(), Some(3), "its own slot first");
        assert_eq!(store.pop(), Some(1), "then the shared queue, oldest first");
        store.push_returned(4, |_| {}).unwrap();
        assert_eq!(store.pop(), Some(4));
        assert_eq!(store.pop(), Some(2));
        assert_eq!(store.pop(), None);
    });
}

#[test]
fn a_pass_that_puts_back_what_it_keeps_meets_every_entry_once() {
    model::check(|| {
        let store = std::sync::Arc::new(IdleStore::new(8, true));
        // One entry in another thread's slot, three in the queue.
        let other = model::spawn({
            let store = std::sync::Arc::clone(&store);
            move || store.push_returned(9, |_| {}).unwrap()
        });
        other.join().unwrap();
        for value in 1..=3 {
            store.push(value).unwrap();
        }
        let mut met = Vec::new();
        let mut pass = store.pass();
        for _ in 0..store.len() {
            let value = pass.take().unwrap();
            met.push(value);
            store.push(value).unwrap(); // kept
        }
        met.sort();
        // `pop` alone would have cycled the queue and never reached 9.
        assert_eq!(met, [1, 2, 3, 9]);
    });
}

#[test]
fn returns_beyond_the_threads_slot_come_back_newest_first() {
    model::check(|| {
        let store = IdleStore::new(8, true);
        for value in 1..=4 {
            store.push_returned(value, |_| {}).unwrap();
        }
        let order: Vec<i32> = std::iter::from_fn(|| store.pop()).collect();
        assert_eq!(order, [4, 3, 2, 1]);
    });
}

#[test]
fn refills_wait_below_what_was_returned() {
    model::check(|| {
        let store = IdleStore::new(8, true);
        store.push(10).unwrap(); // a refill
        store.push_returned(1, |_| {}).unwrap();
        store.push_returned(2, |_| {}).unwrap();
        store.push(11).unwrap();
        let order: Vec<i32> = std::iter::from_fn(|| store.pop()).collect();
        assert_eq!(order, [2, 1, 10, 11]);
    });
}

#[test]
fn a_pass_that_keeps_everything_leaves_the_order_as_it_was() {
    model::check(|| {
        let store = IdleStore::new(8, true);
        store.push(10).unwrap();
        store.push(11).unwrap();
        for value in 1..=4 {
            store.push_returned(value, |_| {}).unwrap();
        }
        {
            let mut pass = store.pass();
            for _ in 0..store.len() {
                let value = pass.take().unwrap();
                store.push(value).unwrap(); // kept
            }
            assert_eq!(pass.take(), None, "every entry met once");
        }
        let order: Vec<i32> = std::iter::from_fn(|| store.pop()).collect();
        assert_eq!(order, [4, 3, 2, 1, 10, 11]);
    });
}

#[test]
fn a_pass_that_closes_some_keeps_the_others_in_order() {
    model::check(|| {
        let store = IdleStore::new(8, true);
        for value in 1..=5 {
            store.push_returned(value, |_| {}).unwrap();
        }
        {
            let mut pass = store.pass();
            while let Some(value) = pass.take() {
                if value % 2 == 0 {
                    store.push(value).unwrap();
                }
            }
        }
        let order: Vec<i32> = std::iter::from_fn(|| store.pop()).collect();
        assert_eq!(order, [4, 2]);
    });
}

#[test]
fn fifo_order_uses_the_shared_queue_alone() {
    model::check(|| {
        let store = IdleStore::new(8, false);
        store.push_returned(1, |_| {}).unwrap();
        store.push_returned(2, |_| {}).unwrap();
        assert_eq!(store.pop(), Some(1));
        assert_eq!(store.pop(), Some(2));
    });
}

#[test]
fn an_entry_in_one_threads_slot_is_taken_by_another_exactly_once() {
    model::check(|| {
        let store = std::sync::Arc::new(IdleStore::new(4, true));
        let returner = model::spawn({
            let store = std::sync::Arc::clone(&store);
            move || store.push_returned(7, |_| {}).unwrap()
        });
        let taker = model::spawn({
            let store = std::sync::Arc::clone(&store);
            move || store.pop()
        });
        returner.join().unwrap();
        let taken = taker.join().unwrap();
        let rest = store.pop();
        // Exactly one of them has it; nothing is lost or duplicated.
        assert_eq!([taken, rest].iter().filter(|v| **v == Some(7)).count(), 1);
        assert_eq!(store.pop(), None);
    });
}

use std::sync::Arc;

use super::{DrainCause, Plan, Table};
use crate::shared::handoff::Message;
use crate::sync::model;

/// A table with one connection of `limit` places, and the dialer's grant
/// on it.
fn one_connection(limit: usize) -> (Arc<Table<&'static str>>, super::Grant<&'static str>) {
    let table = Table::new(None, 0);
    assert!(matches!(table.plan(1, limit), Plan::Dial));
    let grant = table.add("a", limit, 0);
    (table, grant)
}

#[test]
fn leases_go_to_the_least_loaded_connection_and_never_past_its_limit() {
    model::check(|| {
        let table = Table::new(None, 0);
        assert!(matches!(table.plan(2, 2), Plan::Dial));
        let first = table.add("a", 2, 0);
        let filler = table.try_lease().expect("room on a");
        assert!(matches!(table.plan(2, 2), Plan::Dial), "a is full");
        let second = table.add("b", 2, 0);
        drop(filler);
        let third = table.try_lease().expect("room on both");
        let fourth = table.try_lease().expect("room on one");
        assert_ne!(third.entry().id, fourth.entry().id, "spread, not stacked");
        assert!(table.try_lease().is_none(), "both at their limit of 2");
        let (entries, dialing) = table.connections();
        assert_eq!(dialing, 0);
        assert!(entries.iter().all(|e| e.load() == 2));
        drop((first, second, third, fourth));
        assert!(table.connections().0.iter().all(|e| e.load() == 0));
    });
}

#[test]
fn a_caller_that_finds_the_queue_busy_but_room_free_is_served_not_dialed_for() {
    model::check(|| {
        // One connection of 2 places, one taken, one caller queued: the
        // next caller must queue behind it (first come, first served), and
        // the place free serves the first; no dial for room that exists.
        let (table, held) = one_connection(2);
        let Plan::Wait(first) = table.plan(4, 2) else {
            panic!("a place is free: queue for it, do not dial")
        };
        let Some(Message::Lease(grant)) = table.withdraw(&first) else {
            panic!("the free place was handed to the caller as it queued")
        };
        assert_eq!(grant.entry().id, held.entry().id);
        assert_eq!(table.connections().1, 0, "no dial");
        // Now full: the next caller dials.
        assert!(matches!(table.plan(4, 2), Plan::Dial));
        table.dial_failed();
    });
}

#[test]
fn a_dial_that_carries_fewer_than_its_waiters_counted_on_sends_one_to_dial() {
    model::check(|| {
        let table = Table::new(None, 0);
        assert!(matches!(table.plan(4, 100), Plan::Dial));
        // Two callers count on the dial's hinted 100 places.
        let Plan::Wait(older) = table.plan(4, 100) else {
            panic!("a dial in flight promises room: wait")
        };
        let Plan::Wait(younger) = table.plan(4, 100) else {
            panic!("wait")
        };
        // It carries 1 (the dialer's request): the oldest looks again.
        let dialer = table.add("a", 1, 0);
        assert!(matches!(table.withdraw(&older), Some(Message::Retry)));
        // It dials: the next dial promises what the last one carried.
        assert!(matches!(table.plan(4, 100), Plan::Dial));
        let second = table.add("b", 1, 0);
        assert!(matches!(table.withdraw(&younger), Some(Message::Retry)));
        drop((dialer, second));
    });
}

#[test]
fn a_caller_queues_at_the_bound_and_a_release_serves_the_oldest_first() {
    model::check(|| {
        let (table, held) = one_connection(1);
        let Plan::Wait(older) = table.plan(1, 1) else {
            panic!("at the bound of 1 connection: wait")
        };
        let Plan::Wait(younger) = table.plan(1, 1) else {
            panic!("wait")
        };
        assert_eq!(table.waiting(), 2);
        drop(held);
        assert!(
            table.withdraw(&younger).is_none(),
            "the younger was not served"
        );
        let Some(Message::Lease(grant)) = table.withdraw(&older) else {
            panic!("the release served the oldest waiter")
        };
        assert_eq!(grant.entry().load(), 1);
        assert_eq!(table.waiting(), 0);
    });
}

#[test]
fn a_draining_connection_takes_no_lease_and_retires_after_its_last() {
    model::check(|| {
        let (table, held) = one_connection(4);
        let other = table.try_lease().unwrap();
        held.drain(DrainCause::Closed);
        assert!(table.try_lease().is_none(), "draining: no new request");
        assert_eq!(table.connections().0.len(), 1, "still carrying two");
        drop(held);
        assert_eq!(table.connections().0.len(), 1, "still carrying one");
        drop(other);
        assert!(table.connections().0.is_empty(), "retired after its last");
        assert_eq!(table.drained(DrainCause::Closed), 1);
        assert!(
            matches!(table.plan(1, 4), Plan::Dial),
            "its place under the bound is free"
        );
    });
}

#[test]
fn a_connection_drains_after_its_last_allowed_request() {
    model::check(|| {
        let table = Table::new(Some(3), 0);
        assert!(matches!(table.plan(1, 8), Plan::Dial));
        let first = table.add("a", 8, 0);
        let second = table.try_lease().unwrap();
        let third = table.try_lease().unwrap();
        assert!(third.entry().is_draining(), "the third of 3 is its last");
        assert!(table.try_lease().is_none());
        assert_eq!(table.drained(DrainCause::Requests), 1);
        drop((first, second, third));
        assert!(table.connections().0.is_empty());
    });
}

#[test]
fn a_failed_dial_tells_the_oldest_waiter_to_look_again() {
    model::check(|| {
        let table: Arc<Table<&'static str>> = Table::new(None, 0);
        assert!(matches!(table.plan(1, 1), Plan::Dial));
        let Plan::Wait(waiter) = table.plan(1, 1) else {
            panic!("one dial in flight promises room for one")
        };
        table.dial_failed();
        assert!(matches!(table.withdraw(&waiter), Some(Message::Retry)));
        assert!(matches!(table.plan(1, 1), Plan::Dial), "and may dial");
    });
}

#[test]
fn a_waiter_that_gives_up_after_being_served_passes_its_place_on() {
    model::check(|| {
        let (table, held) = one_connection(1);
        let Plan::Wait(first) = table.plan(1, 1) else {
            panic!("wait")
        };
        let Plan::Wait(second) = table.plan(1, 1) else {
            panic!("wait")
        };
        drop(held);
        // The first gives up holding the place it was handed: dropping it
        // serves the second.
        drop(table.withdraw(&first));
        assert!(matches!(table.withdraw(&second), Some(Message::Lease(_))));
        assert_eq!(table.connections().0[0].load(), 0, "nothing leaked");
    });
}

#[test]
fn concurrent_leases_never_exceed_a_connections_limit() {
    model::check(|| {
        let (table, held) = one_connection(2);
        let holders = Arc::new(crate::sync::AtomicUsize::new(1));
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let table = Arc::clone(&table);
                let holders = Arc::clone(&holders);
                model::spawn(move || {
                    if let Some(grant) = table.try_lease() {
                        let now = holders.fetch_add(1, crate::sync::Ordering::SeqCst) + 1;
                        assert!(now <= 2, "{now} requests on a connection of 2");
                        holders.fetch_sub(1, crate::sync::Ordering::SeqCst);
                        drop(grant);
                        true
                    } else {
                        false
                    }
                })
            })
            .collect();
        let won: usize = racers.into_iter().map(|r| r.join().unwrap() as usize).sum();
        assert!(won >= 1, "one place was free throughout");
        drop(held);
        assert_eq!(table.connections().0[0].load(), 0);
    });
}

#[test]
fn no_waiter_is_lost_when_a_request_ends_while_its_connection_drains() {
    model::check(|| {
        let (table, held) = one_connection(1);
        let ender = model::spawn(move || {
            held.drain(DrainCause::Closed);
            drop(held);
        });
        match table.try_lease() {
            // The place was given back before the drain began.
            Some(grant) => drop(grant),
            None => match table.plan(1, 1) {
                // The drain came first and freed the place under the bound.
                Plan::Dial => table.dial_failed(),
                Plan::Wait(cell) => {
                    ender.join().unwrap();
                    assert!(
                        table.withdraw(&cell).is_some(),
                        "queued behind a draining connection, never told"
                    );
                    assert!(table.connections().0.is_empty(), "retired");
                    return;
                }
            },
        }
        ender.join().unwrap();
        assert!(table.connections().0.is_empty(), "retired after its last");
    });
}

#[test]
fn a_release_racing_a_queuing_caller_never_strands_it() {
    model::check(|| {
        let (table, held) = one_connection(1);
        let releaser = model::spawn(move || drop(held));
        let early = table.try_lease();
        let queued = match early {
            Some(_) => None,
            None => match table.plan(1, 1) {
                Plan::Dial => unreachable!("one open connection at a bound of 1"),
                Plan::Wait(cell) => Some(cell),
            },
        };
        releaser.join().unwrap();
        let got = match (early, queued) {
            (Some(grant), _) => grant,
            (None, Some(cell)) => match table.withdraw(&cell) {
                Some(Message::Lease(grant)) => grant,
                _ => panic!("the place came back and the queued caller was not served"),
            },
            (None, None) => unreachable!(),
        };
        assert_eq!(got.entry().load(), 1);
    });
}

#[test]
fn a_drain_racing_the_last_release_retires_the_connection_exactly_once() {
    model::check(|| {
        let (table, held) = one_connection(1);
        let entry = Arc::clone(held.entry());
        let releaser = model::spawn(move || drop(held));
        table.drain(&entry, DrainCause::Lifetime);
        releaser.join().unwrap();
        assert!(
            table.connections().0.is_empty(),
            "neither the drain nor the release retired it"
        );
        assert_eq!(entry.load(), 0);
    });
}

//! The handshake on the core alone, with no manager: under `ringpool_loom`
//! each test is a loom model over every interleaving (`core unit tests
//! under loom` in `.ci/run`), otherwise it runs once.

use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::{Core, FastTake, Stored, Then};
use crate::core::entry::Entry;
use crate::core::grant::{Grant, Outcome};
use crate::core::waiters::Node;
use crate::sync::model;

type TestCore = Core<u32, std::io::Error>;
type TestNode = Node<u32, std::io::Error>;

/// A core bounded at one connection, that connection checked out.
fn core_with_one_out() -> Arc<TestCore> {
    let core = TestCore::new(1, 4, true, 0);
    assert!(core.slots.try_reserve());
    Arc::new(core)
}

/// A returner as the pool runs one: store, the general route if told,
/// then what the handshake says. Returns how many connections it closed.
fn give_back(core: &TestCore, entry: Entry<u32>) -> usize {
    let then = match core.store(entry, Some(1), 0) {
        Stored::Kept(then) => then,
        Stored::Slow { entry, .. } => match core.hand_over(entry) {
            None => return 0,
            Some(entry) => match core.store_idle(entry, true) {
                Stored::Kept(then) => then,
                _ => panic!("an open core with room keeps the connection"),
            },
        },
        Stored::Closed(_) => {
            let _ = core.release_slot();
            return 1;
        }
        Stored::Surplus(_) | Stored::Full(_) => panic!("nothing is over the bound"),
    };
    carry_out(core, then, false)
}

/// What the pool does with a `Then`; counts the connections it closes.
fn carry_out(core: &TestCore, then: Then, may_dial: bool) -> usize {
    let mut closed = 0;
    if then.closed {
        closed += close_idle(core);
    }
    if then.waiting {
        core.serve(|| may_dial);
    }
    closed
}

fn close_idle(core: &TestCore) -> usize {
    let mut closed = 0;
    while core.take_idle().is_some() {
        core.slots.release();
        closed += 1;
    }
    closed
}

/// Registers `node` as a waiter; false if the core refused (closed).
fn wait(core: &TestCore, node: std::pin::Pin<&TestNode>, may_dial: bool) -> bool {
    core.waiters.register(
        node,
        Waker::noop(),
        || core.is_closed(),
        || core.next_grant(|| may_dial),
    )
}

fn poll(core: &TestCore, node: &TestNode) -> Poll<Outcome<u32, std::io::Error>> {
    core.waiters
        .poll(node, &mut Context::from_waker(Waker::noop()))
}

#[test]
fn a_return_reaches_a_waiter_that_queues_as_it_happens() {
    // The lost wake-up: the returner's push and the waiter's registration
    // race; whichever way they interleave, the waiter ends with the
    // connection, and nothing is left idle.
    model::check(|| {
        let core = core_with_one_out();
        let returner = {
            let core = Arc::clone(&core);
            model::spawn(move || give_back(&core, Entry::new(7, 0, 0)))
        };
        let node = pin!(TestNode::new(u64::MAX));
        assert!(wait(&core, node.as_ref(), false));
        assert_eq!(returner.join().unwrap(), 0);
        match poll(&core, &node) {
            Poll::Ready(Outcome::Granted(Grant::Conn(entry))) => assert_eq!(entry.conn, 7),
            _ => panic!("the waiter missed the returned connection"),
        }
        assert!(core.take_idle().is_none());
        assert_eq!(core.slots.size(), 1);
    });
}

#[test]
fn a_freed_slot_reaches_a_waiter_that_queues_as_it_happens() {
    model::check(|| {
        let core = core_with_one_out();
        let releaser = {
            let core = Arc::clone(&core);
            model::spawn(move || {
                let then = core.release_slot();
                carry_out(&core, then, true)
            })
        };
        let node = pin!(TestNode::new(u64::MAX));
        assert!(wait(&core, node.as_ref(), true));
        assert_eq!(releaser.join().unwrap(), 0);
        assert!(
            matches!(
                poll(&core, &node),
                Poll::Ready(Outcome::Granted(Grant::Slot))
            ),
            "the waiter missed the freed slot"
        );
        assert_eq!(
            core.slots.size(),
            1,
            "the slot is the waiter's to dial into"
        );
    });
}

#[test]
fn a_close_never_misses_a_connection_returned_as_it_happens() {
    // Whichever side sees the other closes the connection, exactly once,
    // and its slot comes back.
    model::check(|| {
        let core = core_with_one_out();
        let returner = {
            let core = Arc::clone(&core);
            model::spawn(move || give_back(&core, Entry::new(7, 0, 0)))
        };
        assert!(core.close());
        let closed_here = close_idle(&core);
        let closed_there = returner.join().unwrap();
        assert_eq!(closed_here + closed_there, 1);
        assert!(core.take_idle().is_none());
        assert_eq!(core.slots.size(), 0);
    });
}

#[test]
fn a_waiter_queued_at_a_close_is_failed_or_refused() {
    model::check(|| {
        let core = core_with_one_out();
        let closer = {
            let core = Arc::clone(&core);
            model::spawn(move || core.close())
        };
        let node = pin!(TestNode::new(u64::MAX));
        let queued = wait(&core, node.as_ref(), true);
        assert!(closer.join().unwrap());
        if queued {
            assert!(
                matches!(poll(&core, &node), Poll::Ready(Outcome::Closed)),
                "a waiter queued before the close is failed by it"
            );
        }
        assert_eq!(core.waiters.count(), 0);
    });
}

#[test]
fn the_fast_checkout_gives_way_to_waiters_and_a_close() {
    model::check(|| {
        let core = TestCore::new(2, 4, true, 0);
        assert!(core.slots.try_reserve());
        assert!(matches!(
            core.store(Entry::new(1, 0, 0), Some(1), 0),
            Stored::Kept(Then {
                closed: false,
                waiting: false
            })
        ));
        let FastTake {
            entry,
            word,
            counted,
            thread,
        } = core.take_fast().expect("idle and nobody waits");
        assert_eq!((entry.conn, entry.last_used, word), (1, 1, 0));
        assert_eq!(thread, crate::thread_number::thread_number(), "the taker's");
        assert!(counted, "from this thread's slot, counted there");
        assert_eq!(core.idle.taken_from_slots(), 1);
        assert!(matches!(core.store(entry, None, 1 << 3), Stored::Kept(_)));
        // A flag the caller names sends it the general route.
        let core_flags = TestCore::new(2, 4, true, 1 << 3);
        assert!(matches!(
            core_flags.store(Entry::new(2, 0, 0), None, 1 << 3),
            Stored::Slow { word, .. } if word != 0
        ));
        assert!(core.close());
        assert!(!core.close(), "closing twice says so");
        assert!(
            core.take_fast().is_none(),
            "a closed core hands nothing out"
        );
        assert!(matches!(
            core.store(Entry::new(3, 0, 0), None, 0),
            Stored::Closed(_)
        ));
    });
}

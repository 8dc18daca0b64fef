use super::{Grant, Node, Outcome, Waiters};
use crate::sync::model;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

type Queue = Waiters<u32, std::io::Error>;
type TestNode = Node<u32, std::io::Error>;

fn poll(queue: &Queue, node: &TestNode) -> Poll<Outcome<u32, std::io::Error>> {
    queue.poll(node, &mut Context::from_waker(Waker::noop()))
}

fn register(queue: &Queue, node: std::pin::Pin<&TestNode>) {
    assert!(queue.register(node, Waker::noop(), || false, || None));
}

#[test]
fn the_front_waiter_is_served_first() {
    model::check(|| {
        let queue = Queue::new();
        let first = pin!(TestNode::new(10));
        let second = pin!(TestNode::new(10));
        register(&queue, first.as_ref());
        register(&queue, second.as_ref());
        assert_eq!(queue.count(), 2);
        let mut grants = vec![Grant::Slot];
        queue.serve(|| grants.pop());
        assert!(matches!(
            poll(&queue, &first),
            Poll::Ready(Outcome::Granted(Grant::Slot))
        ));
        assert!(poll(&queue, &second).is_pending());
        assert_eq!(queue.count(), 1);
        assert!(
            queue.withdraw(&second).is_none(),
            "still queued: simply leaves"
        );
        assert_eq!(queue.count(), 0);
    });
}

#[test]
fn withdrawing_a_served_waiter_hands_back_its_grant() {
    model::check(|| {
        let queue = Queue::new();
        let node = pin!(TestNode::new(10));
        register(&queue, node.as_ref());
        let mut grants = vec![Grant::Slot];
        queue.serve(|| grants.pop());
        assert!(matches!(
            queue.withdraw(&node),
            Some(Outcome::Granted(Grant::Slot))
        ));
        assert!(queue.withdraw(&node).is_none(), "collected once only");
    });
}

#[test]
fn a_waiter_in_the_middle_leaves_without_breaking_the_order() {
    model::check(|| {
        let queue = Queue::new();
        let nodes = [
            pin!(TestNode::new(10)),
            pin!(TestNode::new(10)),
            pin!(TestNode::new(10)),
        ];
        for node in &nodes {
            register(&queue, node.as_ref());
        }
        assert!(queue.withdraw(&nodes[1]).is_none());
        let mut grants = vec![Grant::Slot, Grant::Slot];
        queue.serve(|| grants.pop());
        assert!(poll(&queue, &nodes[0]).is_ready());
        assert!(poll(&queue, &nodes[2]).is_ready());
        assert_eq!(queue.count(), 0);
        // The list is empty again: a newcomer is at the front.
        let late = pin!(TestNode::new(10));
        register(&queue, late.as_ref());
        let mut grants = vec![Grant::Slot];
        queue.serve(|| grants.pop());
        assert!(grants.is_empty(), "served the newcomer");
        assert!(poll(&queue, &late).is_ready());
    });
}

#[test]
fn expiry_times_out_only_due_waiters() {
    model::check(|| {
        let queue = Queue::new();
        let early = pin!(TestNode::new(5));
        let late = pin!(TestNode::new(9));
        let earliest = pin!(TestNode::new(3));
        register(&queue, late.as_ref());
        register(&queue, early.as_ref());
        register(&queue, earliest.as_ref());
        assert_eq!(queue.expire(5), Some(9));
        assert!(matches!(
            poll(&queue, &early),
            Poll::Ready(Outcome::TimedOut)
        ));
        assert!(matches!(
            poll(&queue, &earliest),
            Poll::Ready(Outcome::TimedOut)
        ));
        assert!(poll(&queue, &late).is_pending());
        assert_eq!(queue.count(), 1);
        assert_eq!(queue.expire(9), None);
    });
}

#[test]
fn a_closed_queue_refuses_new_waiters() {
    model::check(|| {
        let queue = Queue::new();
        let node = pin!(TestNode::new(10));
        assert!(!queue.register(node.as_ref(), Waker::noop(), || true, || None));
        assert_eq!(queue.count(), 0);
        assert!(queue.withdraw(&node).is_none());
    });
}

#[test]
fn a_waiter_registered_while_a_grant_races_in_is_served() {
    // Registration serves from what is available under the same lock.
    model::check(|| {
        let queue = Queue::new();
        let mut grants = vec![Grant::Slot];
        let node = pin!(TestNode::new(10));
        assert!(queue.register(node.as_ref(), Waker::noop(), || false, || grants.pop()));
        assert!(matches!(
            node.take_settled(),
            Some(Outcome::Granted(Grant::Slot))
        ));
        assert_eq!(queue.count(), 0);
    });
}

#[test]
fn a_waiter_served_while_it_withdraws_is_served_exactly_once() {
    // The server hands a slot over on one thread while the waiter's get
    // is dropped on another: the slot ends with exactly one of them.
    model::check(|| {
        let queue = std::sync::Arc::new(Queue::new());
        let node = Box::pin(TestNode::new(10));
        register(&queue, node.as_ref());
        let server = {
            let queue = std::sync::Arc::clone(&queue);
            model::spawn(move || {
                let mut grants = vec![Grant::Slot];
                queue.serve(|| grants.pop());
                grants.len()
            })
        };
        let handed_back = usize::from(queue.withdraw(&node).is_some());
        drop(node);
        let unused = server.join().unwrap();
        // Granted and handed back, or never granted (still unused).
        assert_eq!(handed_back + unused, 1);
        assert_eq!(queue.count(), 0);
    });
}

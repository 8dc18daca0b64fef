//! One operation on the ring: what the kernel must see until it completes,
//! its result, the future that waits for it, and how its submissions are
//! named in `user_data`.
//!
//! Invariant: an operation's buffers (socket address, timeout, the socket
//! itself) live in its `Op`, and the ring thread holds that `Op` until every
//! completion the operation produces has arrived, so the kernel never sees a
//! dangling pointer, and a future dropped mid-operation only stops waiting
//! (the socket is closed once the kernel is done with it).

use std::future::Future;
use std::os::fd::{OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use io_uring::types;

use super::watch::WatchCell;
use crate::sync::plain::Mutex;

/// What an operation needs the kernel to see until it completes.
pub(super) enum Kind {
    Connect {
        socket: Mutex<Option<OwnedFd>>,
        addr: socket2::SockAddr,
        timeout: types::Timespec,
    },
    /// Closes `fd`, removing the poll of its idle watch first, if any.
    Close {
        fd: RawFd,
        watch: Option<Arc<WatchCell>>,
    },
    /// Removes poll `id` of an idle watch (`0`: whichever it holds).
    /// Settled by the ring thread; nothing waits for it.
    Unwatch { cell: Arc<WatchCell>, id: u64 },
    /// Completes once every operation submitted before it has completed.
    /// Never reaches the kernel: the ring thread settles it.
    Barrier,
    /// A protocol ping: send `request`, then receive exactly
    /// `reply.len()` bytes, linked, under `timeout`. The socket stays the
    /// pool's; the kernel holds its own reference to it until the
    /// operation completes, which the timeout bounds.
    Ping {
        fd: RawFd,
        request: Vec<u8>,
        reply: Mutex<Vec<u8>>,
        timeout: types::Timespec,
    },
}

pub(super) struct Op {
    pub(super) kind: Kind,
    state: Mutex<OpState>,
}

#[derive(Default)]
struct OpState {
    /// The results of the operation's submissions (not its timeout), in
    /// the order they completed.
    results: Vec<i32>,
    waker: Option<Waker>,
}

impl Op {
    pub(super) fn new(kind: Kind) -> Arc<Op> {
        Arc::new(Op {
            kind,
            state: Mutex::new(OpState::default()),
        })
    }

    /// How many results the operation's future waits for.
    fn results_expected(&self) -> usize {
        match self.kind {
            Kind::Ping { .. } => 2,
            _ => 1,
        }
    }

    /// Records a result, and wakes the waiting future once all are in.
    pub(super) fn complete(&self, result: i32) {
        let waker = {
            let mut state = self.state.lock();
            state.results.push(result);
            match state.results.len() >= self.results_expected() {
                true => state.waker.take(),
                false => None,
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// Waits for an operation's results (one per submission, its timeout
/// aside).
pub(super) struct Completion(pub(super) Arc<Op>);

impl Future for Completion {
    type Output = Vec<i32>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<i32>> {
        let expected = self.0.results_expected();
        let mut state = self.0.state.lock();
        match state.results.len() >= expected {
            true => Poll::Ready(std::mem::take(&mut state.results)),
            false => {
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// The `user_data` of the eventfd read that wakes the ring thread.
pub(super) const WAKE: u64 = 0;

/// How an operation's submissions are named: its id (from 1) in the high
/// bits, and whether the submission is the operation's linked timeout in
/// the lowest bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct UserData {
    pub(super) id: u64,
    pub(super) is_timeout: bool,
}

impl UserData {
    pub(super) fn encode(self) -> u64 {
        self.id << 1 | u64::from(self.is_timeout)
    }

    pub(super) fn decode(user_data: u64) -> Self {
        UserData {
            id: user_data >> 1,
            is_timeout: user_data & 1 == 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{UserData, WAKE};

    #[test]
    fn user_data_round_trips_and_never_collides_with_the_wake_up() {
        for id in [1, 2, 7, u64::MAX >> 1] {
            for is_timeout in [false, true] {
                let data = UserData { id, is_timeout };
                assert_eq!(UserData::decode(data.encode()), data);
                assert_ne!(data.encode(), WAKE);
            }
        }
    }
}

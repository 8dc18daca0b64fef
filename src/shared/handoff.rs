//! The one-shot cell a queued caller waits on: a release hands it a lease,
//! or tells it to try again (a dial it was counting on failed).
//!
//! Cancellation is safe both ways: a caller that gives up closes the cell,
//! and a lease given to a closed cell comes back to the giver; a lease that
//! arrived just before the caller gave up is dropped with the cell's
//! contents, which releases it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crate::sync::Mutex;

/// What a queued caller is told.
pub(crate) enum Message<L> {
    /// A stream on a connection, already counted in its load.
    Lease(L),
    /// Look again: a dial that was to make room failed or was cancelled.
    Retry,
}

enum State<L> {
    Waiting(Option<Waker>),
    Told(Message<L>),
    Taken,
    Closed,
}

/// Shared by the queue (the giving side) and the waiting caller.
pub(crate) struct Handoff<L> {
    state: Mutex<State<L>>,
}

impl<L> Handoff<L> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Handoff {
            state: Mutex::new(State::Waiting(None)),
        })
    }

    /// Tells the caller; gives the message back if it already gave up or
    /// was told.
    pub(crate) fn tell(&self, message: Message<L>) -> Result<(), Message<L>> {
        let waker = {
            let mut state = self.state.lock();
            match &mut *state {
                State::Waiting(waker) => {
                    let waker = waker.take();
                    *state = State::Told(message);
                    waker
                }
                _ => return Err(message),
            }
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// The caller gives up: what it was told and had not taken, if anything
    /// (for the caller to keep or drop outside any lock).
    pub(crate) fn close(&self) -> Option<Message<L>> {
        let mut state = self.state.lock();
        match std::mem::replace(&mut *state, State::Closed) {
            State::Told(message) => Some(message),
            _ => None,
        }
    }

    /// Waits for the message.
    pub(crate) fn wait(self: &Arc<Self>) -> Wait<'_, L> {
        Wait { cell: self }
    }
}

/// The future of [`Handoff::wait`].
pub(crate) struct Wait<'a, L> {
    cell: &'a Arc<Handoff<L>>,
}

impl<L> Future for Wait<'_, L> {
    type Output = Message<L>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Message<L>> {
        let mut state = self.cell.state.lock();
        match &mut *state {
            State::Waiting(waker) => {
                match waker {
                    Some(waker) if waker.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            State::Told(_) => match std::mem::replace(&mut *state, State::Taken) {
                State::Told(message) => Poll::Ready(message),
                _ => unreachable!("matched Told above"),
            },
            // Taken or closed: only the caller takes or closes, and it does
            // not poll again after either.
            State::Taken | State::Closed => Poll::Pending,
        }
    }
}

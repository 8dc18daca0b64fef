//! The concurrent protocol, the part the loom models check: the slot
//! counter, the idle queue's entries, the waiter queue, the claims a get
//! holds, and the put/handoff handshake that moves connections and slots
//! between them.
//!
//! Owns: [`sync`] (the only door to atomics, locks, fences and the
//! lock-free queue), `Slots`, `Entry`, `Waiters`, `Claim` and the handoff
//! functions. May touch: the pool's shared state (`pool::Inner`), the
//! manager's `can_recycle` and `close` on return, and the dial gate's
//! read-only "may a dial start" check. Everything else builds on it.
//!
//! The state and its invariants (the bound, one owner per connection, FIFO,
//! cancellation, ...) are listed, each with the tests that check it, in
//! `docs/design.md`; the argument for the one invariant that needs one is
//! here.
//!
//! # No lost wake-up
//!
//! A returner publishes a resource (pushes a connection to the idle queue,
//! or decrements the slot counter, or ends a dial), issues a `SeqCst` fence,
//! then reads the waiter count (`handoff::after_publish`, and the tail of
//! `handoff::reinsert`). A new waiter raises the waiter count, issues a
//! `SeqCst` fence, then looks for an idle connection or a free slot under
//! the queue lock (`Waiters::register`). This is the store-buffering litmus
//! test with a `SeqCst` fence on each side, which forbids both loads missing
//! both stores: at least one side sees the other, so the waiter takes the
//! resource itself or the returner dispatches it to the waiter. Closing
//! uses the same pattern with the `closed` flag (`handoff::reinsert` pairs
//! with `lifecycle::close`).
//!
//! The dial gate and the mirrored limits are part of "a free slot": a slot
//! is only dispatched while a dial may start (`next_grant`). Whoever
//! reopens dialing (a dial ends, the gate's backoff passes) publishes it the
//! same way, fence then count, so the handshake covers them too; that is why
//! they are read through the facade as well.

pub(crate) mod affinity;
pub(crate) mod claim;
pub(crate) mod handoff;
pub(crate) mod idle;
pub(crate) mod slots;
pub(crate) mod sync;
pub(crate) mod waiters;

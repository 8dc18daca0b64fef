//! The concurrent protocol, the part the loom models check: one type,
//! [`protocol::Core`], over the slot counter (`slots`), the idle store
//! (`idle_store`: the per-thread slots in front of the lock-free queue),
//! the parked connections (`parked`), the intrusive waiter list
//! (`waiters`) and the closed flag, with the entry that moves between them
//! (`entry`).
//!
//! The bottom layer: it imports only the sync facade (`crate::sync`) and
//! the thread number, and knows nothing of managers, hooks, policies,
//! statistics or the pool. `Core`'s operations run the handshake below and
//! hand back a decision (kept, and a waiter or a close needs serving; the
//! pool is closed; surplus; take the general route) and the pool layer
//! above (`pool::handoff`, `pool::release`) carries out the side effects:
//! closes, hooks, the idle watch, counters.
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
//! then reads the waiter count (`Core::published`, which every store,
//! park, slot release, dial end and pass runs). A new waiter raises the waiter count, issues a
//! `SeqCst` fence, then looks for an idle connection or a free slot under
//! the queue lock (`Waiters::register`). This is the store-buffering litmus
//! test with a `SeqCst` fence on each side, which forbids both loads missing
//! both stores: at least one side sees the other, so the waiter takes the
//! resource itself or the returner dispatches it to the waiter. Closing
//! uses the same pattern with the `closed` flag (`Core::published` pairs
//! with `Core::close`). The models in `protocol/tests.rs` check both on
//! the core alone.
//!
//! The common return, into the returner's own idle slot, needs no fence:
//! the slot's fill starts with a `SeqCst` compare-and-swap (`EMPTY` to
//! `BUSY`) and the returner reads the closed flag and the waiter count
//! with `SeqCst` loads (`Core::published_by_fill`). In the `SeqCst` order,
//! either the other side's fence comes after the compare-and-swap, and its
//! scan then sees the slot `BUSY` or later, or it comes before, and the
//! returner's `SeqCst` load then sees the other side's count or flag (the
//! C++20 rules for `SeqCst` fences, [atomics.order]). Seeing `BUSY` is not
//! seeing the connection, so the scans that must not miss it (a new
//! waiter's, a close's: `Core::take_idle`) wait a `BUSY` slot out; its
//! holder finishes without blocking. On x86 the compare-and-swap is a
//! locked instruction either way and a `SeqCst` load is a plain load, so
//! this return has one locked instruction where the fence made two. loom
//! models a `SeqCst` read-modify-write as acquire-release only, so under
//! `ringpool_loom` the fill adds the fence right after its compare-and-swap,
//! which gives the same order by the fence rules alone; the models check
//! the waiting-out with that form.
//!
//! The dial gate and the mirrored limits are part of "a free slot": a slot
//! is only dispatched while a dial may start (`next_grant`). Whoever
//! reopens dialing (a dial ends, the gate's backoff passes) publishes it the
//! same way, fence then count, so the handshake covers them too; that is why
//! they are read through the facade as well.

pub(crate) mod entry;
pub(crate) mod grant;
pub(crate) mod idle_stack;
pub(crate) mod idle_store;
pub(crate) mod parked;
pub(crate) mod protocol;
pub(crate) mod slots;
pub(crate) mod waiters;

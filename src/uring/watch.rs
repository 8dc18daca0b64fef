//! The idle watch: a multishot poll for hang-up, error or unsolicited
//! bytes, armed on the ring for each connection idle past a threshold, so a
//! connection that dies while idle announces itself and no sweep visits
//! the living.
//!
//! Each watched connection has a [`WatchCell`]; its `state` word is the
//! whole protocol between the pool's threads and the ring thread:
//!
//! - a pool thread moves `IN_USE` to `IDLE` as the connection goes idle,
//!   setting `TICKET` and queueing the cell for the ring thread unless a
//!   ticket is already queued;
//! - the ring thread, on its tick, arms a poll on a cell idle for long
//!   enough (`IDLE` to `ARMED`, with a fresh poll id) and drops the ticket
//!   of any other (clearing `TICKET` by compare-and-swap, so a cell that
//!   went idle meanwhile keeps its ticket);
//! - a pool thread moves any state to `IN_USE` as the connection leaves
//!   idle, without waiting: if it was `ARMED` it asks the ring thread to
//!   remove that poll; if it was `DEAD`, the connection is closed;
//! - a poll completion for the cell's current arming moves `ARMED` to
//!   `DEAD` and tells the pool. A completion of an older arming, or one
//!   that comes after the connection left idle, changes nothing;
//! - closing the connection, or its leaving the pool, moves any state to
//!   `RETIRED`, which is never armed: a ticket still queued for a closed
//!   connection would otherwise arm a poll on its descriptor's number,
//!   which another socket may have by then.
//!
//! The kernel holds a reference to the socket while a poll is armed, so a
//! close, a detach or a drop of the connection removes its poll first.

use crate::sync::plain::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::collections::HashMap;
use std::os::fd::RawFd;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use io_uring::{IoUring, cqueue, opcode, types};

use super::submit::push;
use crate::manager::IdleDeaths;

const IN_USE: u32 = 0;
const IDLE: u32 = 1;
const ARMED: u32 = 2;
const DEAD: u32 = 3;
/// Closed or out of the pool: never armed again (its descriptor may
/// already be closed, and its number reused by another socket).
const RETIRED: u32 = 4;
const STATE: u32 = 0b111;
const TICKET: u32 = 0b1000;

/// How often the ring thread arms polls on connections gone idle.
pub(crate) const TICK: Duration = Duration::from_millis(25);

/// The events whose arrival on an idle connection means it cannot be
/// reused: end of file, a reset or error, bytes nobody asked for.
const EVENTS: u32 = (libc::POLLIN | libc::POLLRDHUP | libc::POLLERR | libc::POLLHUP) as u32;

/// The ring thread as the watch sees it (implemented by `driver::Driver`;
/// named here so the watch needs nothing else of the driver).
pub(crate) trait WatchRing: Send + Sync {
    /// The watch's manager is gone: the ring may stop its ticks.
    fn stop_watching(&self);
    /// Removes poll `id` (`0`: the newest) of `cell` from the kernel.
    fn unwatch(&self, cell: Arc<WatchCell>, id: u64);
}

/// What the watches of one manager share.
pub(crate) struct WatchSink {
    driver: Box<dyn WatchRing>,
    deaths: OnceLock<IdleDeaths>,
    /// Ticks a connection must stay idle before it is watched.
    after_ticks: u64,
    /// Polls the kernel holds for this manager's connections.
    polls: AtomicUsize,
    /// Idle connections armed now.
    armed: AtomicUsize,
    /// Deaths the watch has seen.
    seen_dead: AtomicU64,
}

impl WatchSink {
    /// A sink for a manager whose connections go idle for `after` before
    /// they are watched; the caller has started the ring's watching.
    pub(crate) fn new(driver: Box<dyn WatchRing>, after: Duration) -> Arc<WatchSink> {
        let tick = TICK.as_nanos();
        Arc::new(WatchSink {
            driver,
            deaths: OnceLock::new(),
            after_ticks: after.as_nanos().div_ceil(tick) as u64,
            polls: AtomicUsize::new(0),
            armed: AtomicUsize::new(0),
            seen_dead: AtomicU64::new(0),
        })
    }

    /// Where deaths are reported (set once, as the pool is built).
    pub(crate) fn report_to(&self, deaths: IdleDeaths) {
        let _ = self.deaths.set(deaths);
    }

    /// Whether connections are armed as soon as they go idle.
    pub(crate) fn at_once(&self) -> bool {
        self.after_ticks == 0
    }

    pub(crate) fn armed(&self) -> usize {
        self.armed.load(Ordering::Relaxed)
    }

    pub(crate) fn polls(&self) -> usize {
        self.polls.load(Ordering::Relaxed)
    }

    pub(crate) fn seen_dead(&self) -> u64 {
        self.seen_dead.load(Ordering::Relaxed)
    }

    pub(crate) fn driver(&self) -> &dyn WatchRing {
        &*self.driver
    }
}

impl std::fmt::Debug for WatchSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchSink")
            .field("after_ticks", &self.after_ticks)
            .field("armed", &self.armed())
            .finish_non_exhaustive()
    }
}

impl Drop for WatchSink {
    fn drop(&mut self) {
        self.driver.stop_watching();
    }
}

/// One connection's watch.
pub(crate) struct WatchCell {
    state: AtomicU32,
    fd: RawFd,
    /// The ring tick at which the connection last went idle.
    idle_since: AtomicU64,
    sink: Arc<WatchSink>,
    /// The poll id of the current arming (written by the ring thread
    /// before it publishes `ARMED`).
    armed_id: AtomicU64,
    /// The poll the kernel holds for this cell, 0 if none (ring thread
    /// only).
    active_id: AtomicU64,
}

impl WatchCell {
    pub(crate) fn new(fd: RawFd, sink: Arc<WatchSink>) -> Arc<WatchCell> {
        Arc::new(WatchCell {
            state: AtomicU32::new(IN_USE),
            fd,
            idle_since: AtomicU64::new(0),
            sink,
            armed_id: AtomicU64::new(0),
            active_id: AtomicU64::new(0),
        })
    }

    /// The connection went idle at ring tick `tick`. `true` if the cell
    /// must be queued for the ring thread (no ticket was outstanding).
    pub(crate) fn went_idle(&self, tick: u64) -> bool {
        self.idle_since.store(tick, Ordering::Relaxed);
        match self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| {
                (state & STATE == IN_USE).then_some(IDLE | TICKET)
            }) {
            Ok(before) => before & TICKET == 0,
            Err(_) => false, // still watched (a pass of maintenance), or dead
        }
    }

    /// The connection leaves idle to be used. Returns whether the watch saw
    /// it die, and the poll to remove if one was armed.
    pub(crate) fn leave_idle(&self) -> (bool, Option<u64>) {
        // In use, keeping the ticket bit: one locked instruction.
        let before = self.state.fetch_and(TICKET, Ordering::AcqRel);
        match before & STATE {
            DEAD => (true, None),
            ARMED => {
                self.sink.armed.fetch_sub(1, Ordering::Relaxed);
                (false, Some(self.armed_id.load(Ordering::Relaxed)))
            }
            _ => (false, None),
        }
    }

    /// Whether the connection is armed as soon as it goes idle.
    pub(crate) fn at_once(&self) -> bool {
        self.sink.at_once()
    }

    pub(crate) fn driver(&self) -> &dyn WatchRing {
        self.sink.driver()
    }

    /// The connection is being closed or leaves the pool: the ring thread
    /// must never arm a poll on it again. Returns whether the kernel may
    /// still hold one (to be removed, or the socket stays open).
    pub(crate) fn retire(&self) -> bool {
        let before = self.state.swap(RETIRED, Ordering::AcqRel);
        let armed = before & STATE == ARMED;
        if armed {
            self.sink.armed.fetch_sub(1, Ordering::Relaxed);
        }
        armed || self.active_id.load(Ordering::Acquire) != 0
    }

    /// Whether the watch saw the idle connection die.
    pub(crate) fn is_dead(&self) -> bool {
        self.state.load(Ordering::Acquire) & STATE == DEAD
    }
}

/// The `user_data` tags of the watch's submissions (operations' ids never
/// reach them).
pub(crate) const POLL_TAG: u64 = 1 << 63;
pub(crate) const REMOVE_TAG: u64 = 1 << 62;

/// The ring thread's side: cells queued as they go idle, the polls armed,
/// the tick.
pub(crate) struct Watches {
    polls: HashMap<u64, Arc<WatchCell>>,
    next_id: u64,
}

/// What pool threads share with the ring thread about watches.
#[derive(Default)]
pub(crate) struct WatchQueue {
    pub(crate) tickets: crate::sync::plain::SegQueue<Arc<WatchCell>>,
    /// Cells queued to be armed at once (not at the next tick).
    pub(crate) urgent: AtomicBool,
    pub(crate) tick: AtomicU64,
    /// Managers with the watch on: the ring thread ticks (its wait for
    /// completions is bounded by the tick) while there are any.
    pub(crate) watchers: AtomicUsize,
}

impl Watches {
    pub(crate) fn new() -> Self {
        Watches {
            polls: HashMap::new(),
            next_id: 1,
        }
    }

    /// The tick: count it and arm what has been idle long enough.
    pub(crate) fn on_tick(&mut self, ring: &mut IoUring, queue: &WatchQueue) {
        queue.tick.fetch_add(1, Ordering::Relaxed);
        self.arm_due(ring, queue);
    }

    /// Goes through the queued cells: arms those idle long enough, keeps
    /// the others queued, drops the tickets of those no longer idle.
    pub(crate) fn arm_due(&mut self, ring: &mut IoUring, queue: &WatchQueue) {
        queue.urgent.store(false, Ordering::Relaxed);
        let tick = queue.tick.load(Ordering::Relaxed);
        let mut keep = Vec::new();
        for _ in 0..queue.tickets.len() {
            let Some(cell) = queue.tickets.pop() else {
                break;
            };
            let mut state = cell.state.load(Ordering::Acquire);
            loop {
                if state & STATE != IDLE {
                    match cell.state.compare_exchange(
                        state,
                        state & !TICKET,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => break,
                        Err(now) => state = now,
                    }
                    continue;
                }
                let idle_since = cell.idle_since.load(Ordering::Relaxed);
                if tick.saturating_sub(idle_since) < cell.sink.after_ticks {
                    keep.push(cell);
                    break;
                }
                let id = self.next_id;
                cell.armed_id.store(id, Ordering::Relaxed);
                match cell
                    .state
                    .compare_exchange(state, ARMED, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => {
                        cell.sink.armed.fetch_add(1, Ordering::Relaxed);
                        self.next_id += 1;
                        self.arm(ring, id, cell);
                        break;
                    }
                    Err(now) => state = now,
                }
            }
        }
        for cell in keep {
            queue.tickets.push(cell);
        }
    }

    fn arm(&mut self, ring: &mut IoUring, id: u64, cell: Arc<WatchCell>) {
        // An older arming still held by the kernel goes first.
        self.remove(ring, &cell, 0);
        let poll = opcode::PollAdd::new(types::Fd(cell.fd), EVENTS)
            .multi(true)
            .build()
            .user_data(POLL_TAG | id);
        push(ring, &poll);
        cell.active_id.store(id, Ordering::Relaxed);
        cell.sink.polls.fetch_add(1, Ordering::Relaxed);
        self.polls.insert(id, cell);
    }

    /// Asks the kernel to drop poll `id` of `cell` (`0`: the newest it
    /// holds), if it still holds it.
    pub(crate) fn remove(&mut self, ring: &mut IoUring, cell: &WatchCell, id: u64) {
        let active = cell.active_id.load(Ordering::Relaxed);
        let target = if id == 0 { active } else { id };
        if target == 0 {
            return;
        }
        if active == target {
            cell.active_id.store(0, Ordering::Relaxed);
        }
        self.remove_poll(ring, target);
    }

    fn remove_poll(&mut self, ring: &mut IoUring, id: u64) {
        if !self.polls.contains_key(&id) {
            return; // already over
        }
        let remove = opcode::PollRemove::new(POLL_TAG | id)
            .build()
            .user_data(REMOVE_TAG | id);
        push(ring, &remove);
    }

    /// The removal of poll `id` completed with `result`. A poll caught
    /// mid-wake-up refuses it (`EALREADY`): ask again, or the kernel keeps
    /// the socket open.
    pub(crate) fn on_removed(&mut self, ring: &mut IoUring, id: u64, result: i32) {
        if result == -libc::EALREADY {
            self.remove_poll(ring, id);
        }
    }

    /// A completion of poll `id`.
    pub(crate) fn on_poll(&mut self, ring: &mut IoUring, id: u64, result: i32, flags: u32) {
        let Some(cell) = self.polls.get(&id).cloned() else {
            return;
        };
        let more = cqueue::more(flags);
        if !more {
            self.polls.remove(&id);
            cell.sink.polls.fetch_sub(1, Ordering::Relaxed);
            if cell.active_id.load(Ordering::Relaxed) == id {
                cell.active_id.store(0, Ordering::Relaxed);
            }
        }
        if result == -libc::ECANCELED {
            return; // removed
        }
        // An event (or an error) on the connection.
        if cell.armed_id.load(Ordering::Relaxed) == id
            && cell
                .state
                .compare_exchange(ARMED, DEAD, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            cell.sink.armed.fetch_sub(1, Ordering::Relaxed);
            cell.sink.seen_dead.fetch_add(1, Ordering::Relaxed);
            if let Some(deaths) = cell.sink.deaths.get() {
                deaths.notify();
            }
        }
        // Dead, or in use: no further events are wanted.
        if more {
            self.remove(ring, &cell, id);
        }
    }
}

//! The connections of a shared pool, each with its count of requests in
//! flight, and the first-in-first-out queue of callers waiting for room.
//!
//! A lease is one request's place on a connection: taking one is a
//! compare-and-swap on the least loaded connection's count, under its
//! capacity, over a snapshot of the list; no lock. Releasing one is a
//! decrement, then, if anyone waits, a handoff to the oldest waiter. A
//! sequentially consistent fence on each side orders the decrement before
//! the releaser's read of the waiter count, and a queuing caller's count
//! before its second look for room, so at least one of them sees the
//! other: a waiter never sleeps through room made while it queued.
//!
//! A draining connection takes no new lease; it is retired, exactly once,
//! when its last lease ends (`retired` is swapped by whichever of the last
//! release and the drain sees the other's write). Locks: `waiters` before
//! `conns`, never the other way round. The table calls no user code: how
//! many requests a connection may carry is a number its owner stores in
//! the entry ([`Entry::set_limit`]), outside any lock.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::sync::plain::{AtomicU64 as PlainU64, Ordering as PlainOrdering};
use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Mutex, Ordering, SwapCell, fence};

use super::handoff::{Handoff, Message};

/// One connection and its load.
pub(crate) struct Entry<C> {
    pub(crate) conn: C,
    pub(crate) id: u64,
    /// Requests in flight.
    load: AtomicUsize,
    /// How many it may carry at once.
    limit: AtomicUsize,
    /// Requests ever started on it.
    started: AtomicU64,
    draining: AtomicBool,
    retired: AtomicBool,
    /// Clock nanoseconds when it was dialed.
    pub(crate) born: u64,
}

impl<C> Entry<C> {
    pub(crate) fn load(&self) -> usize {
        self.load.load(Ordering::SeqCst)
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit.load(Ordering::SeqCst)
    }

    /// A new limit: it bounds the leases taken from now on (those already
    /// out stay out, even above it).
    pub(crate) fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::SeqCst);
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Requests ever started on it: unchanged between two looks with no
    /// load at either means it carried nothing in between.
    pub(crate) fn started(&self) -> u64 {
        self.started.load(Ordering::SeqCst)
    }
}

/// Why a connection stopped taking requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DrainCause {
    /// It takes no more: the server is closing it (HTTP/2 `GOAWAY`), or it
    /// broke.
    Closed,
    /// `max_lifetime` reached.
    Lifetime,
    /// `max_requests_per_connection` reached.
    Requests,
    /// Idle for `idle_timeout`.
    Idle,
}

/// What a caller that found no room does next.
pub(crate) enum Plan<C: Send + Sync + 'static> {
    /// Dial: a place among the dials in flight is reserved;
    /// [`Table::add`] or [`Table::dial_failed`] gives it back.
    Dial,
    /// Wait on this cell.
    Wait(Arc<Handoff<Grant<C>>>),
}

struct Conns<C> {
    entries: Vec<Arc<Entry<C>>>,
    dialing: usize,
}

/// The table itself.
pub(crate) struct Table<C: Send + Sync + 'static> {
    snapshot: SwapCell<Vec<Arc<Entry<C>>>>,
    conns: Mutex<Conns<C>>,
    waiters: Mutex<VecDeque<Arc<Handoff<Grant<C>>>>>,
    waiting: AtomicUsize,
    /// After how many requests a connection drains (0: never).
    max_requests: PlainU64,
    /// Connections that began to drain, by cause: closed, lifetime,
    /// requests, idle.
    drained: [PlainU64; 4],
    next_id: PlainU64,
    /// The limit of the connection dialed last (0 before the first): what
    /// a dial in flight will likely carry.
    last_limit: PlainU64,
}

/// A request's place on a connection; released on drop.
pub(crate) struct Grant<C: Send + Sync + 'static> {
    table: Arc<Table<C>>,
    entry: Arc<Entry<C>>,
}

impl<C: Send + Sync + 'static> Grant<C> {
    pub(crate) fn entry(&self) -> &Arc<Entry<C>> {
        &self.entry
    }

    /// Stops new requests on this grant's connection (a broken
    /// connection, or one the server is closing).
    pub(crate) fn drain(&self, cause: DrainCause) {
        self.table.drain(&self.entry, cause);
    }
}

impl<C: Send + Sync + 'static> Drop for Grant<C> {
    fn drop(&mut self) {
        self.table.release(&self.entry);
    }
}

impl<C: Send + Sync + 'static> Table<C> {
    /// A table whose connections drain after `max_requests` requests each
    /// (never if `None`), numbered from `first_id`.
    pub(crate) fn new(max_requests: Option<u64>, first_id: u64) -> Arc<Self> {
        Arc::new(Table {
            snapshot: SwapCell::new(Vec::new()),
            conns: Mutex::new(Conns {
                entries: Vec::new(),
                dialing: 0,
            }),
            waiters: Mutex::new(VecDeque::new()),
            waiting: AtomicUsize::new(0),
            max_requests: PlainU64::new(max_requests.unwrap_or(0)),
            drained: [0; 4].map(PlainU64::new),
            next_id: PlainU64::new(first_id),
            last_limit: PlainU64::new(0),
        })
    }

    /// Requests in flight on every connection, from the lock-free
    /// snapshot.
    pub(crate) fn in_flight(&self) -> usize {
        self.snapshot
            .load_full()
            .iter()
            .map(|entry| entry.load())
            .sum()
    }

    /// Callers queued now.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Connections that began to drain for `cause`, ever.
    pub(crate) fn drained(&self, cause: DrainCause) -> u64 {
        self.drained[cause as usize].load(PlainOrdering::Relaxed)
    }

    /// The connections now (draining ones included), and dials in flight.
    pub(crate) fn connections(&self) -> (Vec<Arc<Entry<C>>>, usize) {
        let conns = self.conns.lock();
        (conns.entries.clone(), conns.dialing)
    }

    /// A place on the least loaded connection with room, if any; never
    /// waits, never dials. Callers that find others queued should queue
    /// behind them ([`Table::plan`]) instead, so the first to wait is the
    /// first served.
    #[cfg(test)]
    pub(crate) fn try_lease(self: &Arc<Self>) -> Option<Grant<C>> {
        self.try_lease_except(None)
    }

    /// [`Table::try_lease`] on any connection but `avoid`.
    pub(crate) fn try_lease_except(self: &Arc<Self>, avoid: Option<u64>) -> Option<Grant<C>> {
        let mut freed = false;
        let grant = self.lease(&mut freed, avoid);
        if freed {
            self.kick();
        }
        grant
    }

    /// [`Table::try_lease`] without the kick, for use under the waiters'
    /// lock: `freed` is set when a connection began to drain, which frees
    /// a place under the pool's bound for a dial.
    fn lease(self: &Arc<Self>, freed: &mut bool, avoid: Option<u64>) -> Option<Grant<C>> {
        let snapshot = self.snapshot.load_full();
        // Each failed swap means another caller took or gave back a place
        // just now: look again, a bounded number of times.
        for _ in 0..snapshot.len() * 2 + 2 {
            let mut best: Option<(&Arc<Entry<C>>, usize)> = None;
            for entry in snapshot.iter() {
                if entry.is_draining() || Some(entry.id) == avoid {
                    continue;
                }
                let load = entry.load();
                if load < entry.limit() && best.is_none_or(|(_, least)| load < least) {
                    best = Some((entry, load));
                }
            }
            let (entry, load) = best?;
            if entry
                .load
                .compare_exchange(load, load + 1, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
            {
                continue;
            }
            // A drain that raced the swap: give the place back (retiring
            // the connection if this was its last) and look again.
            if entry.is_draining() {
                if entry.load.fetch_sub(1, Ordering::SeqCst) == 1 {
                    self.retire(entry);
                }
                continue;
            }
            let started = entry.started.fetch_add(1, Ordering::Relaxed) + 1;
            let max = self.max_requests.load(PlainOrdering::Relaxed);
            if max != 0 && started >= max && self.mark_draining(entry, DrainCause::Requests) {
                // Its last request: it retires when this grant ends.
                *freed = true;
            }
            return Some(Grant {
                table: Arc::clone(self),
                entry: Arc::clone(entry),
            });
        }
        None
    }

    /// For a caller that found no room: dial, if the pool may own another
    /// open connection and neither the places free now nor the dials in
    /// flight (`streams_hint` places each) cover everyone queued; or
    /// queue, and look once more for room made while it queued.
    pub(crate) fn plan(self: &Arc<Self>, max_open: usize, streams_hint: usize) -> Plan<C> {
        let mut freed = false;
        let (cell, refused) = {
            let mut waiters = self.waiters.lock();
            {
                let mut conns = self.conns.lock();
                let (mut open, mut free) = (0, 0);
                for entry in conns.entries.iter().filter(|e| !e.is_draining()) {
                    open += 1;
                    free += entry.limit().saturating_sub(entry.load());
                }
                // Room already there (places a release is handing to the
                // callers queued) or promised by dials in flight serves the
                // queue first; only demand beyond both dials.
                // A dial promises what the last one carried, if smaller
                // than the hint (a server's stream limit below it).
                let last = self.last_limit.load(PlainOrdering::Relaxed) as usize;
                let promise = match last {
                    0 => streams_hint,
                    last => last.min(streams_hint),
                };
                if open + conns.dialing < max_open
                    && waiters.len() >= free + conns.dialing * promise.max(1)
                {
                    conns.dialing += 1;
                    return Plan::Dial;
                }
            }
            let cell = Handoff::new();
            waiters.push_back(Arc::clone(&cell));
            self.waiting.fetch_add(1, Ordering::SeqCst);
            // Pairs with the fence in `release`: either it sees this
            // caller counted, or the look below sees its place free.
            fence(Ordering::SeqCst);
            // A release that came after this caller's look but before it
            // counted itself saw no waiter: serve the queue once now.
            let refused = self.serve_locked(&mut waiters, &mut freed);
            (cell, refused)
        };
        drop(refused);
        if freed {
            self.kick();
        }
        Plan::Wait(cell)
    }

    /// Reserves a dial, whatever the queue, if the pool may own another
    /// open connection now (a request the server refused, to be sent on
    /// another connection); [`Table::add`] or [`Table::dial_failed`]
    /// gives the place back.
    pub(crate) fn reserve_dial(&self, max_open: usize) -> bool {
        let mut conns = self.conns.lock();
        let open = conns.entries.iter().filter(|e| !e.is_draining()).count();
        if open + conns.dialing < max_open {
            conns.dialing += 1;
            return true;
        }
        false
    }

    /// A waiter gives up: takes it out of the queue; what it was told
    /// meanwhile, if anything, is returned for it to keep or drop.
    pub(crate) fn withdraw(&self, cell: &Arc<Handoff<Grant<C>>>) -> Option<Message<Grant<C>>> {
        {
            let mut waiters = self.waiters.lock();
            if let Some(at) = waiters.iter().position(|w| Arc::ptr_eq(w, cell)) {
                waiters.remove(at);
                self.waiting.fetch_sub(1, Ordering::SeqCst);
            }
        }
        cell.close()
    }

    /// A dial succeeded: the connection joins the table, carrying at most
    /// `limit` requests at once, with the dialer's request on it; its
    /// other places go to the queue.
    pub(crate) fn add(self: &Arc<Self>, conn: C, limit: usize, born: u64) -> Grant<C> {
        let entry = Arc::new(Entry {
            conn,
            id: self.next_id.fetch_add(1, PlainOrdering::Relaxed),
            load: AtomicUsize::new(1),
            limit: AtomicUsize::new(limit),
            started: AtomicU64::new(1),
            draining: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            born,
        });
        {
            let mut conns = self.conns.lock();
            conns.dialing -= 1;
            conns.entries.push(Arc::clone(&entry));
            self.snapshot.store(conns.entries.clone());
        }
        self.last_limit.store(limit as u64, PlainOrdering::Relaxed);
        let max = self.max_requests.load(PlainOrdering::Relaxed);
        if max == 1 {
            self.mark_draining(&entry, DrainCause::Requests);
        }
        let grant = Grant {
            table: Arc::clone(self),
            entry,
        };
        self.serve_waiters();
        // The connection carried fewer than the callers counting on it
        // (a server's stream limit below the hint): the oldest caller
        // left looks again, and dials if the pool may.
        if self.waiting() > 0 {
            self.kick();
        }
        grant
    }

    /// A dial failed or was cancelled: its place is given back, and the
    /// oldest waiter looks again (it may dial).
    pub(crate) fn dial_failed(&self) {
        self.conns.lock().dialing -= 1;
        self.kick();
    }

    fn release(self: &Arc<Self>, entry: &Arc<Entry<C>>) {
        let before = entry.load.fetch_sub(1, Ordering::SeqCst);
        // Pairs with the fences in `plan` and `drain` (see the module's
        // documentation): this release or the drain sees the other, and
        // this release or a queuing caller sees the other.
        fence(Ordering::SeqCst);
        if before == 1 && entry.is_draining() {
            self.retire(entry);
        }
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.serve_waiters();
        }
    }

    /// Stops new requests on `entry`; it retires when its last request
    /// ends. True if this call began the drain.
    pub(crate) fn drain(&self, entry: &Arc<Entry<C>>, cause: DrainCause) -> bool {
        if !self.mark_draining(entry, cause) {
            return false;
        }
        fence(Ordering::SeqCst);
        if entry.load() == 0 {
            self.retire(entry);
        }
        // Its place under the pool's bound is free: a waiter may dial.
        self.kick();
        true
    }

    fn mark_draining(&self, entry: &Entry<C>, cause: DrainCause) -> bool {
        if entry.draining.swap(true, Ordering::SeqCst) {
            return false;
        }
        self.drained[cause as usize].fetch_add(1, PlainOrdering::Relaxed);
        true
    }

    fn retire(&self, entry: &Arc<Entry<C>>) {
        if entry.retired.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut conns = self.conns.lock();
        conns.entries.retain(|e| !Arc::ptr_eq(e, entry));
        self.snapshot.store(conns.entries.clone());
    }

    /// Hands places to the oldest waiters while there are any.
    fn serve_waiters(self: &Arc<Self>) {
        let mut freed = false;
        let refused = {
            let mut waiters = self.waiters.lock();
            self.serve_locked(&mut waiters, &mut freed)
        };
        // Places of waiters that gave up as they were served: released
        // here, outside the lock, each serving the next waiter.
        drop(refused);
        if freed {
            self.kick();
        }
    }

    fn serve_locked(
        self: &Arc<Self>,
        waiters: &mut VecDeque<Arc<Handoff<Grant<C>>>>,
        freed: &mut bool,
    ) -> Vec<Message<Grant<C>>> {
        let mut refused = Vec::new();
        while !waiters.is_empty() {
            let Some(grant) = self.lease(freed, None) else {
                break;
            };
            let cell = waiters.pop_front().expect("checked non-empty");
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            if let Err(message) = cell.tell(Message::Lease(grant)) {
                refused.push(message);
            }
        }
        refused
    }

    /// Tells the oldest waiter to look again: it may dial now.
    fn kick(&self) {
        let cell = {
            let mut waiters = self.waiters.lock();
            let Some(cell) = waiters.pop_front() else {
                return;
            };
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            cell
        };
        // A waiter that already gave up needs nothing.
        let _ = cell.tell(Message::Retry);
    }
}

#[cfg(test)]
mod tests;

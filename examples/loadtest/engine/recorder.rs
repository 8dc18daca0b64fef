//! Records each request's outcome and latency: one histogram and set of
//! counters per thread slot, so client threads do not contend on one lock,
//! merged when the cell ends.

use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

use super::payment::RequestError;

/// Slots; threads beyond this share one (correct, only slower).
const SLOTS: usize = 16;
/// Latencies are recorded in microseconds, up to a minute.
const MAX_MICROS: u64 = 60_000_000;

/// One slot's share of a cell.
pub struct Tally {
    pub latencies: Histogram<u64>,
    pub timeouts: u64,
    pub desyncs: u64,
    pub other_errors: u64,
    pub stalls: u64,
    pub first_error: Option<String>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            latencies: Histogram::new_with_bounds(1, MAX_MICROS, 3)
                .expect("constant, valid histogram bounds"),
            timeouts: 0,
            desyncs: 0,
            other_errors: 0,
            stalls: 0,
            first_error: None,
        }
    }

    fn merge(&mut self, other: &Tally) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latencies.add(&other.latencies);
        self.timeouts += other.timeouts;
        self.desyncs += other.desyncs;
        self.other_errors += other.other_errors;
        self.stalls += other.stalls;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
    }

    /// Every failed request.
    pub fn errors(&self) -> u64 {
        self.timeouts + self.desyncs + self.other_errors
    }
}

/// The cell's recorder, shared by its tasks.
pub struct Recorder {
    slots: Vec<Mutex<Tally>>,
    stall: Duration,
}

fn slot_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    INDEX.with(|index| {
        if index.get() == usize::MAX {
            index.set(NEXT.fetch_add(1, Ordering::Relaxed) % SLOTS);
        }
        index.get()
    })
}

impl Recorder {
    pub fn new(stall: Duration) -> Recorder {
        Recorder {
            slots: (0..SLOTS).map(|_| Mutex::new(Tally::new())).collect(),
            stall,
        }
    }

    fn with_slot(&self, f: impl FnOnce(&mut Tally)) {
        let mut slot = match self.slots[slot_index()].lock() {
            Ok(slot) => slot,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut slot);
    }

    /// A request answered correctly after `took`.
    pub fn answered(&self, took: Duration) {
        let micros = (took.as_micros() as u64).clamp(1, MAX_MICROS);
        let stalled = took >= self.stall;
        self.with_slot(|tally| {
            tally.latencies.saturating_record(micros);
            tally.stalls += u64::from(stalled);
        });
    }

    /// A request that failed.
    pub fn failed(&self, error: &RequestError) {
        self.with_slot(|tally| {
            match error {
                RequestError::Desync(_) => tally.desyncs += 1,
                _ => tally.other_errors += 1,
            }
            if tally.first_error.is_none() {
                tally.first_error = Some(error.to_string());
            }
        });
    }

    /// A request that hit its timeout.
    pub fn timed_out(&self, limit: Duration) {
        self.with_slot(|tally| {
            tally.timeouts += 1;
            if tally.first_error.is_none() {
                tally.first_error = Some(format!("timed out after {limit:?}"));
            }
        });
    }

    /// Everything recorded, merged.
    pub fn total(&self) -> Tally {
        let mut total = Tally::new();
        for slot in &self.slots {
            match slot.lock() {
                Ok(slot) => total.merge(&slot),
                Err(poisoned) => total.merge(&poisoned.into_inner()),
            }
        }
        total
    }
}

//! Lifecycle state shared by maintenance, drain and the slow path: the warm
//! size derived from recent demand, and the wake-ups of the maintenance task
//! and of a draining caller. Bookkeeping outside the modelled protocol, so
//! it uses `std` primitives.

use crate::sync::plain::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::Waker;

use crate::sync::plain::Mutex;

pub(crate) struct Lifecycle {
    maintenance: Mutex<Option<Waker>>,
    drain: Mutex<Option<Waker>>,
    /// Connections maintenance keeps open (at least `min_idle`).
    warm_target: AtomicUsize,
    /// Highest demand (in use + dialing + waiting) a slow-path get saw since
    /// the last housekeeping round.
    burst_peak: AtomicUsize,
    demand: Mutex<Demand>,
    /// A checkout asked for a refill that the maintenance task has not
    /// started yet (so a burst of checkouts wakes it once).
    refill_requested: AtomicBool,
    /// Dials whose get gave up (timed out or dropped) before they finished:
    /// maintenance makes up for each, so the next user finds the
    /// connection the abandoned get was waiting for.
    owed_dials: AtomicUsize,
    /// Idle connections the manager's watch reported dead, and how many of
    /// those reports maintenance has reaped.
    idle_deaths: AtomicU64,
    reaped_deaths: AtomicU64,
}

/// The decaying peak of demand.
struct Demand {
    peak: f64,
    sampled_at: u64,
}

fn wake(slot: &Mutex<Option<Waker>>) {
    let waker = slot.lock().take();
    if let Some(waker) = waker {
        waker.wake();
    }
}

fn register(slot: &Mutex<Option<Waker>>, waker: &Waker) {
    let mut slot = slot.lock();
    match &mut *slot {
        Some(existing) if existing.will_wake(waker) => {}
        other => *other = Some(waker.clone()),
    }
}

impl Lifecycle {
    pub(crate) fn new() -> Self {
        Lifecycle {
            maintenance: Mutex::new(None),
            drain: Mutex::new(None),
            warm_target: AtomicUsize::new(0),
            burst_peak: AtomicUsize::new(0),
            demand: Mutex::new(Demand {
                peak: 0.0,
                sampled_at: 0,
            }),
            refill_requested: AtomicBool::new(false),
            owed_dials: AtomicUsize::new(0),
            idle_deaths: AtomicU64::new(0),
            reaped_deaths: AtomicU64::new(0),
        }
    }

    /// The manager's idle watch saw a connection die: wake maintenance to
    /// reap it.
    pub(crate) fn note_idle_death(&self) {
        self.idle_deaths.fetch_add(1, Ordering::Release);
        self.wake_maintenance();
    }

    /// Whether deaths were reported since the last reap.
    pub(crate) fn deaths_to_reap(&self) -> bool {
        self.idle_deaths.load(Ordering::Acquire) != self.reaped_deaths.load(Ordering::Relaxed)
    }

    /// Starts a reap: every death reported before this call is covered by
    /// the pass that follows. Returns how many were reported since the last.
    pub(crate) fn reap_started(&self) -> u64 {
        let reported = self.idle_deaths.load(Ordering::Acquire);
        let before = self.reaped_deaths.swap(reported, Ordering::Relaxed);
        reported.wrapping_sub(before)
    }

    pub(crate) fn wake_maintenance(&self) {
        wake(&self.maintenance);
    }

    pub(crate) fn register_maintenance(&self, waker: &Waker) {
        register(&self.maintenance, waker);
    }

    /// Wakes the maintenance task to refill, once until it next runs.
    pub(crate) fn request_refill(&self) {
        if !self.refill_requested.load(Ordering::Relaxed)
            && !self.refill_requested.swap(true, Ordering::AcqRel)
        {
            self.wake_maintenance();
        }
    }

    /// A get gave up on its dial: owe one (at most `cap` owed at once) and
    /// wake maintenance to make it.
    pub(crate) fn owe_dial(&self, cap: usize) {
        let owed = self.owed_dials.load(Ordering::Relaxed);
        if owed < cap
            && self
                .owed_dials
                .compare_exchange(owed, owed + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.request_refill();
        }
    }

    /// Dials owed to gets that gave up.
    pub(crate) fn owed_dials(&self) -> usize {
        self.owed_dials.load(Ordering::Relaxed)
    }

    /// A refill dial ended (made a connection or failed): one owed dial is
    /// paid.
    pub(crate) fn pay_dial(&self) {
        let _ = self
            .owed_dials
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |owed| {
                owed.checked_sub(1)
            });
    }

    /// The maintenance task starts a round: later checkouts may ask again.
    pub(crate) fn refill_started(&self) {
        self.refill_requested.store(false, Ordering::Release);
    }

    pub(crate) fn wake_drain(&self) {
        wake(&self.drain);
    }

    pub(crate) fn register_drain(&self, waker: &Waker) {
        register(&self.drain, waker);
    }

    pub(crate) fn warm_target(&self) -> usize {
        self.warm_target.load(Ordering::Relaxed)
    }

    /// Records the demand a slow-path get sees.
    pub(crate) fn observe_demand(&self, demand: usize) {
        // A load first: in steady state the peak is already higher, and a
        // read-modify-write would pull the line from the other cores.
        if demand > self.burst_peak.load(Ordering::Relaxed) {
            self.burst_peak.fetch_max(demand, Ordering::Relaxed);
        }
    }

    /// Folds the burst peak and the current `demand` into the decaying peak
    /// and sets the new warm target, within `[min_idle, max_size]`.
    pub(crate) fn update_warm_target(
        &self,
        now: u64,
        demand: usize,
        half_life_ns: Option<u64>,
        min_idle: usize,
        max_size: usize,
    ) {
        let burst = self.burst_peak.swap(0, Ordering::Relaxed);
        let target = match half_life_ns {
            None => min_idle,
            Some(half_life) => {
                let mut state = self.demand.lock();
                let elapsed = now.saturating_sub(state.sampled_at) as f64;
                let decayed = state.peak * 0.5f64.powf(elapsed / half_life as f64);
                state.peak = decayed.max(burst.max(demand) as f64);
                state.sampled_at = now;
                (state.peak.ceil() as usize).clamp(min_idle, max_size.max(min_idle))
            }
        };
        self.warm_target.store(target, Ordering::Relaxed);
    }
}

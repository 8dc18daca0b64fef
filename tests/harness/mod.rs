//! A pool on the mock clock (with the mock manager of `tests/common`) and
//! its maintenance task on a single-threaded `LocalPool`, stepped with
//! `run_until_stalled` after each clock move: deterministic, no sleeping.
#![allow(dead_code)]

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use futures_executor::LocalPool;
use futures_util::task::LocalSpawnExt;
use ringpool::{Builder, Clock, MockClock, Pool};

use crate::common::Mock;

/// The pool under test, its manager, and what moves time and maintenance.
pub struct Harness {
    pub pool: Pool<Mock>,
    pub mock: Mock,
    pub run: Stepper,
}

/// Moves the mock clock and runs the maintenance task.
pub struct Stepper {
    pub clock: MockClock,
    executor: LocalPool,
    pub maintenance_done: Rc<Cell<bool>>,
}

impl Harness {
    pub fn new(edit: impl FnOnce(Builder<Mock>) -> Builder<Mock>) -> Self {
        let mock = Mock::new();
        let (clock, control) = Clock::mock();
        let pool = edit(
            Pool::builder(mock.clone())
                .young_death_window(None)
                .max_size(8)
                .clock(clock),
        )
        .build()
        .unwrap();
        let executor = LocalPool::new();
        let maintenance_done = Rc::new(Cell::new(false));
        let task = pool.maintenance();
        let done = Rc::clone(&maintenance_done);
        executor
            .spawner()
            .spawn_local(async move {
                task.await;
                done.set(true);
            })
            .unwrap();
        let mut run = Stepper {
            clock: control,
            executor,
            maintenance_done,
        };
        run.settle();
        Harness { pool, mock, run }
    }
}

impl Stepper {
    /// Lets the maintenance task run until it waits on something.
    pub fn settle(&mut self) {
        self.executor.run_until_stalled();
    }

    /// Moves the clock in `step`s over `span`, letting maintenance run after each.
    pub fn advance(&mut self, span: Duration, step: Duration) {
        let mut moved = Duration::ZERO;
        while moved < span {
            self.clock.advance(step);
            self.settle();
            moved += step;
        }
    }
}

//! The `put_get` fuzz harness: bytes become a sequence of pool operations,
//! run single-threaded against the real pool with the mock manager and
//! clock, and every step is checked against a reference model. Shared by the
//! cargo-fuzz target and by the corpus replay test that runs on stable.
#![allow(dead_code)]

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use ringpool::{Clock, Error, Pool, Pooled};

use crate::common::{Conn, Mock, MockError, Step, poll_once};

/// One operation on the pool.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Op {
    /// Start a `get` and poll it once.
    Get,
    /// `try_get`.
    TryGet,
    /// Poll the n-th pending get again.
    Poll(u8),
    /// Drop the n-th pending get (cancellation).
    Cancel(u8),
    /// Drop the n-th held guard (return).
    Return(u8),
    /// Discard the n-th held guard.
    Discard(u8),
    /// Detach the n-th held guard's connection.
    Detach(u8),
    /// Mark the n-th held connection broken (found at its next checkout).
    Break(u8),
    /// Make the next dial fail (fatally or not).
    FailNextDial { fatal: bool },
    /// Make the next dial wait for `ReleaseSlow`.
    SlowNextDial,
    /// Let one slow dial finish.
    ReleaseSlow,
    /// Move the mock clock forward.
    Advance { millis: u16 },
    /// Set `max_size` to 1 + n % 8 (grow or shrink), and the idle order to
    /// `fifo` when n's top bit is set, else `lifo` (so the corpus decodes
    /// as it did before the order existed).
    Reconfigure(u8),
    /// Close the pool.
    Close,
    /// Let the maintenance task run (refills, liveness checks, pings).
    Maintain,
    /// Make pings of the n-th held connection fail from now on.
    FailPings(u8),
    /// Set `min_idle` to n % 4 and turn checkout pings on or off.
    Lifecycle { min_idle: u8, ping: bool },
}

type GetFuture<'p> = Pin<Box<dyn Future<Output = Result<Pooled<'p, Mock>, Error<MockError>>> + 'p>>;

const CAPACITY: usize = 8;

/// What the reference model knows.
#[derive(Default)]
struct Model {
    gets: u64,
    discarded: u64,
    detached: u64,
    closed: bool,
    max_size: usize,
}

/// The `config_parse` check: config text never panics the parser, and what
/// parses prints back to text that parses to the same config.
pub fn config_round_trip(text: &str) {
    let Ok(config) = text.parse::<ringpool::Config>() else {
        return;
    };
    let _ = config.validate(1024);
    let printed = config.to_string();
    let reparsed: ringpool::Config = printed.parse().expect("Display output parses");
    assert_eq!(reparsed, config, "round trip through {printed:?}");
}

/// Runs the operations encoded in `data`; panics on any violated invariant.
pub fn run(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let Ok(ops) = input.arbitrary::<Vec<Op>>() else {
        return;
    };
    run_ops(&ops);
}

pub fn run_ops(ops: &[Op]) {
    let mock = Mock::new();
    let (clock, time) = Clock::mock();
    let pool = Pool::builder(mock.clone())
        .young_death_window(None)
        .max_size(4)
        .idle_capacity(CAPACITY)
        .check_after(Duration::ZERO)
        .acquire_timeout(Duration::from_secs(1))
        .clock(clock)
        .build()
        .expect("valid config");
    let mut model = Model {
        max_size: 4,
        ..Model::default()
    };
    let mut pending: Vec<GetFuture<'_>> = Vec::new();
    let mut held: Vec<Pooled<'_, Mock>> = Vec::new();
    let mut detached: Vec<Conn> = Vec::new();
    let mut released = 0usize;
    let mut maintenance: Pin<Box<dyn Future<Output = ()> + '_>> = Box::pin(pool.maintenance());
    let mut maintenance_done = false;

    for op in ops.iter().copied() {
        let size_before = pool.status().size;
        match op {
            Op::Get => {
                model.gets += 1;
                let mut get: GetFuture<'_> = Box::pin(pool.get());
                match poll_once(get.as_mut()) {
                    Poll::Ready(result) => take(result, &mut held, &model),
                    Poll::Pending => pending.push(get),
                }
            }
            Op::TryGet => {
                model.gets += 1;
                match pool.try_get() {
                    Ok(conn) => {
                        assert!(!model.closed, "try_get served by a closed pool");
                        held.push(conn);
                    }
                    Err(Error::Closed) => assert!(model.closed),
                    Err(Error::Exhausted { .. }) => {}
                    Err(other) => panic!("try_get failed with {other}"),
                }
            }
            Op::Poll(n) => {
                if let Some(i) = pick(n, pending.len())
                    && let Poll::Ready(result) = poll_once(pending[i].as_mut())
                {
                    drop(pending.swap_remove(i));
                    take(result, &mut held, &model);
                }
            }
            Op::Cancel(n) => {
                if let Some(i) = pick(n, pending.len()) {
                    drop(pending.swap_remove(i));
                }
            }
            Op::Return(n) => {
                if let Some(i) = pick(n, held.len()) {
                    drop(held.swap_remove(i));
                }
            }
            Op::Discard(n) => {
                if let Some(i) = pick(n, held.len()) {
                    held.swap_remove(i).discard();
                    model.discarded += 1;
                }
            }
            Op::Detach(n) => {
                if let Some(i) = pick(n, held.len()) {
                    detached.push(held.swap_remove(i).detach());
                    model.detached += 1;
                }
            }
            Op::Break(n) => {
                if let Some(i) = pick(n, held.len()) {
                    mock.break_conn(held[i].id);
                }
            }
            Op::FailNextDial { fatal } => {
                mock.script(&[if fatal { Step::Denied } else { Step::Refused }])
            }
            Op::SlowNextDial => mock.script(&[Step::Slow]),
            Op::ReleaseSlow => {
                mock.release(1);
                released += 1;
            }
            Op::Advance { millis } => time.advance(Duration::from_millis(millis.into())),
            Op::Reconfigure(n) => {
                let mut config = pool.config();
                config.max_size = 1 + usize::from(n) % CAPACITY;
                config.min_idle = config.min_idle.min(config.max_size);
                config.idle_order = match n & 0x80 {
                    0 => ringpool::IdleOrder::Lifo,
                    _ => ringpool::IdleOrder::Fifo,
                };
                pool.reconfigure(config).expect("within the idle capacity");
                model.max_size = 1 + usize::from(n) % CAPACITY;
            }
            Op::Close => {
                pool.close();
                model.closed = true;
            }
            Op::Maintain => {
                if !maintenance_done {
                    maintenance_done = poll_once(maintenance.as_mut()).is_ready();
                    assert!(
                        !maintenance_done || model.closed,
                        "maintenance ends only with the pool"
                    );
                }
            }
            Op::FailPings(n) => {
                if let Some(i) = pick(n, held.len()) {
                    mock.fail_pings(held[i].id);
                }
            }
            Op::Lifecycle { min_idle, ping } => {
                let mut config = pool.config();
                config.min_idle = usize::from(min_idle % 4).min(config.max_size);
                config.ping_after = ping.then_some(Duration::from_millis(100));
                pool.reconfigure(config).expect("valid lifecycle settings");
            }
        }
        check_step(&pool, &mock, &model, &held, detached.len(), size_before);
    }

    // Wind down: cancel what waits, return what is held, then everything
    // must be accounted for.
    drop(maintenance);
    drop(pending);
    drop(held);
    mock.release(1_000);
    let status = pool.status();
    assert_eq!(
        (status.waiting, status.creating, status.in_use),
        (0, 0, 0),
        "{status:?}"
    );
    assert_eq!(status.size, status.idle, "{status:?}");
    assert_eq!(mock.live(), status.size + detached.len(), "{status:?}");
    let stats = pool.stats();
    assert_eq!(
        mock.made() as u64,
        stats.closed_total() + stats.detached + status.size as u64,
        "made = closed + detached + owned: {stats:?}"
    );
    if model.closed {
        assert_eq!(status.size, 0, "a closed pool keeps nothing");
    }
    drop(detached);
    let _ = released;
}

fn pick(n: u8, len: usize) -> Option<usize> {
    (len > 0).then(|| usize::from(n) % len)
}

fn take<'p>(
    result: Result<Pooled<'p, Mock>, Error<MockError>>,
    held: &mut Vec<Pooled<'p, Mock>>,
    model: &Model,
) {
    match result {
        Ok(conn) => {
            assert!(!model.closed, "a closed pool handed out a connection");
            held.push(conn);
        }
        Err(Error::Closed) => assert!(model.closed, "Closed from an open pool"),
        Err(Error::Timeout(_) | Error::Connect(_) | Error::Unavailable(_)) => {}
        Err(other) => panic!("get failed with {other}"),
    }
}

fn check_step(
    pool: &Pool<Mock>,
    mock: &Mock,
    model: &Model,
    held: &[Pooled<'_, Mock>],
    detached: usize,
    size_before: usize,
) {
    let status = pool.status();
    let stats = pool.stats();
    // Nothing is handed out twice.
    let ids: HashSet<u64> = held.iter().map(|conn| conn.id).collect();
    assert_eq!(ids.len(), held.len(), "a connection is held twice");
    // The bound: never grows past max_size; shrinks toward it.
    assert_eq!(status.max_size, model.max_size);
    if status.size > model.max_size {
        assert!(status.size <= size_before, "grew past max_size: {status:?}");
    }
    // Every live connection is owned by the pool or detached by the test.
    assert!(
        mock.live() <= status.size + detached,
        "{status:?}, live {}",
        mock.live()
    );
    assert!(
        held.len() <= status.in_use,
        "{status:?}, held {}",
        held.len()
    );
    // Counters follow the model exactly where the model knows them.
    assert_eq!(stats.gets, model.gets, "{stats:?}");
    assert_eq!(stats.closed.discarded, model.discarded);
    assert_eq!(stats.detached, model.detached);
}

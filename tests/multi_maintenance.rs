//! A multi-endpoint pool's maintenance, ejection policy and factory, on
//! the in-memory manager and the mock clock, stepped by hand: health
//! checks and refills eject endpoints with no get asking, endpoints that
//! join later are maintained and removed ones are not, the cap on the
//! share ejected holds, and a factory that fails or panics costs only its
//! endpoint.

mod common;

use std::collections::BTreeMap;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use common::{Mock, Step, poll_once};
use ringpool::multi::{Endpoint, EndpointStatus, MultiBuilder, MultiError, MultiPool};
use ringpool::{Clock, Config, MockClock};

const ROUND: Duration = Duration::from_secs(1);

/// One mock manager per endpoint name.
#[derive(Clone, Default)]
struct Fleet(Arc<Mutex<BTreeMap<String, Mock>>>);

impl Fleet {
    fn mock(&self, endpoint: &str) -> Mock {
        self.0
            .lock()
            .unwrap()
            .entry(endpoint.to_owned())
            .or_default()
            .clone()
    }
}

/// Sub-pools keeping one idle connection each, pinged at every round
/// (every second), pings cut off after a second.
fn config() -> Config {
    let mut config = Config::default();
    config.max_size = 2;
    config.min_idle = 1;
    config.check_after = Duration::ZERO;
    config.maintenance_interval = ROUND;
    config.ping_timeout = ROUND;
    config.young_death_window = None; // every connection is young on a clock that stands still
    config
}

fn builder(fleet: &Fleet, endpoints: &[&str]) -> (MultiBuilder<Mock>, MockClock) {
    let (clock, control) = Clock::mock();
    let fleet = fleet.clone();
    let builder = MultiPool::builder(move |endpoint: &Endpoint| fleet.mock(endpoint.as_str()))
        .endpoint_config(config())
        .endpoints(endpoints.iter().copied())
        .clock(clock);
    (builder, control)
}

fn status(pool: &MultiPool<Mock>, endpoint: &str) -> EndpointStatus {
    pool.endpoints()
        .into_iter()
        .find(|status| status.endpoint.as_str() == endpoint)
        .unwrap_or_else(|| panic!("{endpoint} is in the set"))
}

fn gets(status: &EndpointStatus) -> u64 {
    let stats = &status.stats;
    stats.reused + stats.dialed + stats.timeouts + stats.get_failures
}

/// Polls `task` once, then moves the clock a round at a time (polling
/// after each) until `done`, at most `rounds` rounds; the rounds it took.
fn step_until(
    task: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    clock: &MockClock,
    rounds: usize,
    mut done: impl FnMut() -> bool,
) -> usize {
    let mut task = task;
    assert!(poll_once(task.as_mut()).is_pending());
    for round in 0..=rounds {
        if done() {
            return round;
        }
        clock.advance(ROUND);
        assert!(
            poll_once(task.as_mut()).is_pending(),
            "maintenance runs until close"
        );
    }
    panic!("not done after {rounds} rounds");
}

#[test]
fn maintenance_alone_ejects_an_endpoint_whose_pings_hang() {
    let fleet = Fleet::default();
    let (builder, clock) = builder(&fleet, &["good:1", "hung:1"]);
    let pool = builder.eject_after(3).build().unwrap();
    fleet
        .mock("hung:1")
        .state
        .ping_hangs
        .store(true, Ordering::SeqCst);
    let mut task = pin!(pool.maintenance());
    let rounds = step_until(task.as_mut(), &clock, 20, || {
        status(&pool, "hung:1").ejected_for.is_some()
    });
    // A hung ping is cut off after a round (ping_timeout), then a new
    // connection is dialed and pinged: about two rounds per failure.
    assert!(
        (3..=8).contains(&rounds),
        "three failed checks in a row took {rounds} rounds"
    );
    let (hung, good) = (status(&pool, "hung:1"), status(&pool, "good:1"));
    assert_eq!(hung.ejections, 1, "{hung:?}");
    assert_eq!(gets(&hung), 0, "no get asked: {hung:?}");
    assert!(hung.stats.health_check_failures >= 3, "{hung:?}");
    assert_eq!(good.ejected_for, None, "{good:?}");
    assert_eq!(good.consecutive_failures, 0, "{good:?}");
    assert!(
        fleet.mock("good:1").pings() >= 3,
        "the good one was checked too"
    );
    pool.close();
    assert!(
        poll_once(task.as_mut()).is_ready(),
        "maintenance ends with the pool"
    );
}

#[test]
fn maintenance_alone_ejects_an_endpoint_whose_pings_fail() {
    let fleet = Fleet::default();
    let (builder, clock) = builder(&fleet, &["good:1", "sick:1"]);
    let pool = builder.eject_after(3).build().unwrap();
    let sick = fleet.mock("sick:1");
    for id in 0..64 {
        sick.fail_pings(id); // every connection it will make
    }
    let mut task = pin!(pool.maintenance());
    let rounds = step_until(task.as_mut(), &clock, 10, || {
        status(&pool, "sick:1").ejected_for.is_some()
    });
    assert!(rounds <= 3, "one failed check a round: {rounds} rounds");
    let (sick, good) = (status(&pool, "sick:1"), status(&pool, "good:1"));
    assert_eq!(sick.ejections, 1, "{sick:?}");
    assert_eq!(gets(&sick), 0, "{sick:?}");
    assert_eq!(good.ejected_for, None, "{good:?}");
}

#[test]
fn failed_refill_dials_eject_an_endpoint_with_no_get_asking() {
    let fleet = Fleet::default();
    let (builder, clock) = builder(&fleet, &["good:1", "down:1"]);
    fleet.mock("down:1").script(&[Step::Refused; 64]);
    let pool = builder.eject_after(3).build().unwrap();
    futures_executor::block_on(async {
        for round in 1..=3 {
            let before = status(&pool, "down:1");
            assert_eq!(before.ejected_for, None, "round {round}: {before:?}");
            pool.run_maintenance().await;
            let after = status(&pool, "down:1");
            assert_eq!(after.consecutive_failures, round, "{after:?}");
            // Past the failed dial's backoff, so the next round dials again.
            clock.advance(Duration::from_secs(60));
        }
    });
    let down = status(&pool, "down:1");
    assert!(down.ejected_for.is_some(), "{down:?}");
    assert_eq!(down.ejections, 1);
    assert_eq!(down.stats.connect_errors, 3, "{down:?}");
    assert_eq!(gets(&down), 0, "no get asked: {down:?}");
    let good = status(&pool, "good:1");
    assert_eq!((good.ejected_for, good.status.idle), (None, 1), "{good:?}");
}

#[test]
fn a_dial_that_works_in_between_resets_the_count() {
    let fleet = Fleet::default();
    let (builder, clock) = builder(&fleet, &["a:1", "flaky:1"]);
    let flaky = fleet.mock("flaky:1");
    flaky.script(&[Step::Refused, Step::Refused, Step::Ok]);
    let pool = builder.eject_after(3).build().unwrap();
    futures_executor::block_on(async {
        for _ in 0..3 {
            pool.run_maintenance().await;
            clock.advance(Duration::from_secs(60));
        }
    });
    let status = status(&pool, "flaky:1");
    assert_eq!(status.status.idle, 1, "the third dial worked: {status:?}");
    assert_eq!(
        (status.consecutive_failures, status.ejections),
        (0, 0),
        "{status:?}"
    );
}

#[test]
fn endpoints_that_join_later_are_maintained_and_removed_ones_are_not() {
    let fleet = Fleet::default();
    let (builder, clock) = builder(&fleet, &["a:1"]);
    let pool = builder.build().unwrap();
    let mut task = pin!(pool.maintenance());
    assert!(poll_once(task.as_mut()).is_pending());
    assert_eq!(status(&pool, "a:1").status.idle, 1, "refilled at once");

    let change = pool.set_endpoints(["a:1", "b:1"]).unwrap();
    assert_eq!(change.added, [Endpoint::new("b:1")]);
    assert!(poll_once(task.as_mut()).is_pending());
    assert_eq!(status(&pool, "b:1").status.idle, 1, "the newcomer refilled");
    let b = fleet.mock("b:1");
    let pings = b.pings();
    clock.advance(ROUND);
    assert!(poll_once(task.as_mut()).is_pending());
    assert!(b.pings() > pings, "and health-checked");

    pool.set_endpoints(["a:1"]).unwrap();
    assert!(poll_once(task.as_mut()).is_pending());
    let (pings, dials) = (b.pings(), b.connect_calls());
    for _ in 0..3 {
        clock.advance(ROUND);
        assert!(poll_once(task.as_mut()).is_pending());
    }
    assert_eq!(
        (b.pings(), b.connect_calls()),
        (pings, dials),
        "nothing more at a removed endpoint"
    );
    assert_eq!(b.live(), 0, "its connection was closed");

    // Re-added: a new sub-pool, maintained again.
    pool.set_endpoints(["a:1", "b:1"]).unwrap();
    assert!(poll_once(task.as_mut()).is_pending());
    assert_eq!(status(&pool, "b:1").status.idle, 1);
    drop(pool);
    assert!(
        poll_once(task.as_mut()).is_ready(),
        "maintenance ends when the pool is dropped"
    );
}

#[test]
fn the_maintenance_thread_refills_every_endpoint_and_ends_at_close() {
    let fleet = Fleet::default();
    let (builder, _clock) = builder(&fleet, &["a:1", "b:1"]);
    let pool = builder.build().unwrap();
    let thread = pool.spawn_maintenance_thread().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while pool.endpoints().iter().any(|e| e.status.size < 1) {
        assert!(std::time::Instant::now() < deadline, "never refilled");
        std::thread::yield_now();
    }
    pool.close();
    thread.join().unwrap();
}

#[test]
fn a_fleet_wide_fault_ejects_no_more_than_max_ejected_share() {
    let run = |share: Option<f64>| {
        let fleet = Fleet::default();
        let names = ["a:1", "b:1", "c:1", "d:1"];
        for name in names {
            fleet.mock(name).script(&[Step::Refused; 64]);
        }
        let (builder, _clock) = builder(&fleet, &names);
        let builder = builder.eject_after(1);
        let pool = match share {
            Some(share) => builder.max_ejected_share(share).build().unwrap(),
            None => builder.build().unwrap(),
        };
        for _ in 0..8 {
            let error = futures_executor::block_on(pool.get()).unwrap_err();
            assert!(
                matches!(error, MultiError::Failed { .. }),
                "the endpoints left in rotation are still tried: {error:?}"
            );
        }
        let ejected = pool
            .endpoints()
            .iter()
            .filter(|e| e.ejected_for.is_some())
            .count();
        let failing_in_rotation = pool
            .endpoints()
            .iter()
            .filter(|e| e.ejected_for.is_none() && e.consecutive_failures >= 1)
            .count();
        (ejected, failing_in_rotation)
    };
    assert_eq!(run(None), (2, 2), "the default: half of four");
    assert_eq!(run(Some(0.1)), (1, 3), "at least one, as Envoy");
    assert_eq!(run(Some(0.0)), (0, 4), "never");
    let fleet = Fleet::default();
    for name in ["a:1", "b:1"] {
        fleet.mock(name).script(&[Step::Refused; 64]);
    }
    let (builder, _clock) = builder(&fleet, &["a:1", "b:1"]);
    let pool = builder
        .eject_after(1)
        .max_ejected_share(1.0)
        .build()
        .unwrap();
    let _ = futures_executor::block_on(pool.get());
    let error = futures_executor::block_on(pool.get()).unwrap_err();
    assert!(
        matches!(error, MultiError::AllEjected { ejected: 2, .. }),
        "with a share of 1 all may go: {error:?}"
    );
}

#[test]
fn an_ejected_endpoint_returning_makes_room_for_the_next() {
    let fleet = Fleet::default();
    let names = ["a:1", "b:1", "c:1"];
    fleet.mock("a:1").script(&[Step::Refused]);
    fleet.mock("b:1").script(&[Step::Refused; 64]);
    let (builder, clock) = builder(&fleet, &names);
    let pool = builder
        .eject_after(1)
        .ejection_time(Duration::from_secs(1), Duration::from_secs(1))
        .build()
        .unwrap();
    let get = || futures_executor::block_on(pool.get());
    // a fails and is ejected (one of three may be); b fails and stays.
    for _ in 0..3 {
        drop(get().unwrap());
    }
    assert!(status(&pool, "a:1").ejected_for.is_some());
    assert_eq!(status(&pool, "b:1").ejected_for, None);
    // a's probe succeeds: a is back, and b's next failure ejects b.
    clock.advance(Duration::from_secs(60));
    for _ in 0..6 {
        drop(get().unwrap());
    }
    assert_eq!(status(&pool, "a:1").ejected_for, None, "the probe worked");
    let b = status(&pool, "b:1");
    assert!(b.ejected_for.is_some(), "{b:?}");
}

#[test]
fn a_factory_that_fails_or_panics_costs_only_its_endpoint() {
    let calls = Arc::new(AtomicUsize::new(0));
    let made = Arc::clone(&calls);
    let pool = MultiPool::try_builder(move |endpoint: &Endpoint| {
        made.fetch_add(1, Ordering::SeqCst);
        match endpoint.as_str() {
            "bad" => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not host:port",
            )),
            "boom" => panic!("the factory blew up"),
            _ => Ok(Mock::new()),
        }
    })
    .endpoints(["good:1", "bad", "boom"])
    .build()
    .expect("a bad endpoint does not fail the build");
    let names: Vec<_> = pool.endpoints().into_iter().map(|e| e.endpoint).collect();
    assert_eq!(names, [Endpoint::new("good:1")]);
    assert!(futures_executor::block_on(pool.get()).is_ok());

    let change = pool
        .set_endpoints(["good:1", "bad", "boom", "new:1"])
        .unwrap();
    assert_eq!(change.added, [Endpoint::new("new:1")]);
    let failed: BTreeMap<_, _> = change
        .failed
        .iter()
        .map(|f| (f.endpoint.as_str().to_owned(), f.reason.clone()))
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert_eq!(failed["bad"], "not host:port");
    assert!(
        failed["boom"].contains("panicked: the factory blew up"),
        "{failed:?}"
    );
    let message = change.failed[0].to_string();
    assert!(
        message.contains("left out") && message.contains("check its address"),
        "{message}"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3 + 3,
        "retried at each update"
    );
    assert_eq!(pool.endpoints().len(), 2);
    assert!(!change.is_empty());
}

#[test]
fn max_ejected_share_outside_zero_to_one_is_refused_with_the_fix() {
    let fleet = Fleet::default();
    for share in [-0.1, 1.5, f64::NAN] {
        let (builder, _clock) = builder(&fleet, &["a:1"]);
        let error = builder.max_ejected_share(share).build().unwrap_err();
        let text = error.to_string();
        assert!(text.contains("max_ejected_share"), "{text}");
        assert!(text.contains("from 0"), "{text}");
    }
}

#[test]
fn a_maintenance_round_that_panics_in_the_manager_leaks_nothing() {
    let fleet = Fleet::default();
    let (builder, clock) = builder(&fleet, &["a:1", "b:1"]);
    let pool = builder.build().unwrap();
    let a = fleet.mock("a:1");
    a.panic_in(common::Callback::Connect);
    futures_executor::block_on(pool.run_maintenance());
    a.stop_panics();
    assert_eq!(
        status(&pool, "a:1").status.size,
        0,
        "the panicked dial left nothing"
    );
    assert_eq!(
        pool.total_size(),
        1,
        "its unit of the global count went back"
    );
    clock.advance(Duration::from_secs(60)); // past any backoff of the panicked dial
    let mut task = pin!(pool.maintenance());
    assert!(matches!(poll_once(task.as_mut()), Poll::Pending));
    assert_eq!(pool.total_size(), 2);
}

#[test]
fn a_probe_must_answer_a_ping_so_a_hung_endpoint_stays_ejected() {
    let fleet = Fleet::default();
    let (builder, clock) = builder(&fleet, &["good:1", "hung:1"]);
    let base = Duration::from_secs(10);
    let pool = builder
        .eject_after(3)
        .ejection_time(base, Duration::from_secs(60))
        .build()
        .unwrap();
    fleet
        .mock("hung:1")
        .state
        .ping_hangs
        .store(true, Ordering::SeqCst);
    {
        let mut task = Box::pin(pool.maintenance());
        step_until(task.as_mut(), &clock, 20, || {
            status(&pool, "hung:1").ejected_for.is_some()
        });
    } // maintenance stops: only the probe reaches the endpoint now
    clock.advance(base);
    assert_eq!(
        status(&pool, "hung:1").ejected_for,
        Some(Duration::ZERO),
        "due"
    );
    let mut probed = false;
    for _ in 0..4 {
        let mut get = Box::pin(pool.get());
        let mut waits = 0;
        let conn = loop {
            if let Poll::Ready(result) = poll_once(get.as_mut()) {
                break result.expect("the good endpoint serves");
            }
            // The probe's ping hangs until ping_timeout.
            probed = true;
            waits += 1;
            assert!(waits <= 2, "the probe's ping is cut off after ping_timeout");
            clock.advance(ROUND);
        };
        assert_eq!(conn.endpoint().as_str(), "good:1");
        if probed {
            break;
        }
    }
    assert!(probed, "a get reached the hung endpoint as its probe");
    let hung = status(&pool, "hung:1");
    assert_eq!(
        hung.ejected_for,
        Some(2 * base),
        "ejected again, for twice as long: {hung:?}"
    );
    assert_eq!(hung.ejections, 2, "{hung:?}");
    assert_eq!(
        hung.status.in_use, 0,
        "the probe's connection was closed: {hung:?}"
    );
}

#[test]
fn a_probe_whose_ping_panics_leaks_nothing_and_the_next_get_probes() {
    let fleet = Fleet::default();
    let (builder, clock) = builder(&fleet, &["a:1", "good:1"]);
    let base = Duration::from_secs(10);
    let a = fleet.mock("a:1");
    a.script(&[Step::Refused]);
    let pool = builder
        .eject_after(1)
        .ejection_time(base, Duration::from_secs(60))
        .build()
        .unwrap();
    let get = || futures_executor::block_on(pool.get());
    while status(&pool, "a:1").ejected_for.is_none() {
        drop(get().expect("good:1 serves"));
    }
    clock.advance(base);
    a.panic_in(common::Callback::Ping);
    let mut panicked = false;
    for _ in 0..2 {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(get)) {
            Ok(conn) => drop(conn.expect("good:1 serves")),
            Err(_) => {
                panicked = true;
                break;
            }
        }
    }
    assert!(
        panicked,
        "the probe's ping panicked, and the panic reached the get"
    );
    a.stop_panics();
    let after = status(&pool, "a:1");
    assert_eq!(
        after.ejected_for,
        Some(Duration::ZERO),
        "no verdict: still due"
    );
    assert_eq!(
        (after.status.size, after.status.in_use),
        (0, 0),
        "the probe's connection was closed: {after:?}"
    );
    assert_eq!(a.live(), 0, "closed through the manager");
    let sizes: usize = pool.endpoints().iter().map(|e| e.status.size).sum();
    assert_eq!(
        pool.total_size(),
        sizes,
        "no unit of the global count leaked"
    );
    for _ in 0..2 {
        drop(get().unwrap());
    }
    assert_eq!(
        status(&pool, "a:1").ejected_for,
        None,
        "the next probe passed"
    );
}

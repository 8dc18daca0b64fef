//! The Prometheus exporter: every metric the docs list, with values that
//! follow what the pool did, and the alerts' inputs derivable.
#![cfg(feature = "prometheus")]
mod common;

use std::time::Duration;

use common::{Mock, mock_pool};
use prometheus_client::registry::Registry;
use ringpool::multi::{Endpoint, MultiPool};
use ringpool::{Clock, Pool};

fn scrape(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text
}

/// The value of the sample whose line starts with `series`.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn the_exporter_reports_what_the_pool_did() {
    let mock = Mock::new();
    let (clock, control) = Clock::mock();
    let pool = Pool::builder(mock.clone())
        .name("payments")
        .young_death_window(None)
        .max_size(2)
        .acquire_timeout(Duration::from_millis(50))
        .clock(clock)
        .build()
        .unwrap();
    let mut registry = Registry::default();
    pool.register_metrics(registry.sub_registry_with_prefix("svc"));

    let first = pool.get_blocking().unwrap();
    drop(first);
    let (a, b) = (pool.get_blocking().unwrap(), pool.get_blocking().unwrap());
    mock.break_conn(a.id);
    a.discard();
    let text = scrape(&registry);
    let p = r#"pool="payments""#;
    assert_eq!(
        sample(
            &text,
            &format!(r#"svc_ringpool_connections{{{p},state="in_use"}}"#)
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            &format!(r#"svc_ringpool_connections{{{p},state="idle"}}"#)
        ),
        0.0
    );
    assert_eq!(
        sample(&text, &format!(r#"svc_ringpool_max_size{{{p}}}"#)),
        2.0
    );
    assert_eq!(
        sample(
            &text,
            &format!(r#"svc_ringpool_gets_total{{{p},outcome="reused"}}"#)
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            &format!(r#"svc_ringpool_gets_total{{{p},outcome="new"}}"#)
        ),
        2.0
    );
    assert_eq!(
        sample(&text, &format!(r#"svc_ringpool_connects_total{{{p}}}"#)),
        2.0
    );
    assert_eq!(
        sample(
            &text,
            &format!(r#"svc_ringpool_closed_total{{{p},reason="discarded"}}"#)
        ),
        1.0
    );
    // A get that waits and times out: the histogram and the outcome.
    let held = pool.get_blocking().unwrap(); // both slots now in use
    {
        let mut get = std::pin::pin!(pool.get());
        assert!(common::poll_once(get.as_mut()).is_pending());
        control.advance(Duration::from_millis(50));
        assert!(common::poll_once(get.as_mut()).is_ready());
    }
    drop((held, b));
    let text = scrape(&registry);
    assert_eq!(
        sample(
            &text,
            &format!(r#"svc_ringpool_gets_total{{{p},outcome="timed_out"}}"#)
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            &format!(r#"svc_ringpool_acquire_wait_seconds_count{{{p}}}"#)
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            &format!(r#"svc_ringpool_acquire_wait_seconds_bucket{{{p},le="0.01"}}"#)
        ),
        0.0
    );
    assert_eq!(
        sample(
            &text,
            &format!(r#"svc_ringpool_acquire_wait_seconds_bucket{{{p},le="0.05"}}"#)
        ),
        1.0,
        "waited 50 ms"
    );
    drop(pool);
    assert!(
        !scrape(&registry).contains("ringpool_connections{"),
        "a dropped pool reports nothing"
    );
}

#[test]
fn two_pools_are_told_apart_by_their_name() {
    let (a, _, _) = mock_pool(1);
    let b = Pool::builder(Mock::new()).name("cache").build().unwrap();
    let mut registry = Registry::default();
    a.register_metrics(&mut registry);
    b.register_metrics(&mut registry);
    drop(b.get_blocking().unwrap());
    let text = scrape(&registry);
    assert_eq!(
        sample(&text, r#"ringpool_connects_total{pool="cache"}"#),
        1.0
    );
    assert_eq!(
        sample(&text, r#"ringpool_connects_total{pool="default"}"#),
        0.0
    );
}

#[test]
fn a_multi_endpoint_pool_reports_every_endpoint_under_one_description() {
    let (healthy, down, newcomer) = (Mock::new(), Mock::new(), Mock::new());
    down.script(&[common::Step::Refused; 16]);
    let mocks = [
        ("a:1", healthy.clone()),
        ("b:1", down.clone()),
        ("c:1", newcomer.clone()),
    ];
    let (clock, _control) = Clock::mock();
    let pool = MultiPool::builder(move |endpoint: &Endpoint| {
        let (_, mock) = mocks
            .iter()
            .find(|(name, _)| *name == endpoint.as_str())
            .unwrap();
        mock.clone()
    })
    .name("users")
    .endpoints(["a:1", "b:1"])
    .eject_after(1)
    .max_total(8)
    .clock(clock)
    .build()
    .unwrap();
    let mut registry = Registry::default();
    pool.register_metrics(registry.sub_registry_with_prefix("svc"));

    for _ in 0..2 {
        let conn = pool.get_blocking().expect("b:1 fails over to a:1");
        assert_eq!(conn.endpoint().as_str(), "a:1");
    }
    let text = scrape(&registry);
    let (a, b) = (
        r#"pool="users",endpoint="a:1""#,
        r#"pool="users",endpoint="b:1""#,
    );
    assert_eq!(
        sample(
            &text,
            &format!(r#"svc_ringpool_connections{{{a},state="idle"}}"#)
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            &format!(r#"svc_ringpool_connections{{{b},state="idle"}}"#)
        ),
        0.0
    );
    assert_eq!(
        sample(&text, &format!(r#"svc_ringpool_connects_total{{{a}}}"#)),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            &format!(r#"svc_ringpool_connect_errors_total{{{b}}}"#)
        ),
        1.0
    );
    assert_eq!(
        sample(&text, &format!(r#"svc_ringpool_endpoint_ejected{{{b}}}"#)),
        1.0
    );
    assert_eq!(
        sample(&text, &format!(r#"svc_ringpool_endpoint_ejected{{{a}}}"#)),
        0.0
    );
    assert_eq!(
        sample(
            &text,
            &format!(r#"svc_ringpool_endpoint_ejections_total{{{b}}}"#)
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            &format!(r#"svc_ringpool_endpoint_consecutive_failures{{{b}}}"#)
        ),
        1.0
    );
    assert_eq!(
        sample(&text, r#"svc_ringpool_total_connections{pool="users"}"#),
        1.0
    );
    assert_eq!(
        sample(&text, r#"svc_ringpool_max_total{pool="users"}"#),
        8.0
    );
    assert_eq!(
        sample(
            &text,
            &format!(r#"svc_ringpool_acquire_wait_seconds_count{{{a}}}"#)
        ),
        0.0
    );
    for family in [
        "svc_ringpool_connections",
        "svc_ringpool_gets",
        "svc_ringpool_acquire_wait_seconds",
        "svc_ringpool_endpoint_ejected",
    ] {
        let described = text
            .lines()
            .filter(|line| line.starts_with(&format!("# TYPE {family} ")))
            .count();
        assert_eq!(described, 1, "{family} described once:\n{text}");
    }

    // The set is read at each scrape: a newcomer appears, a removed
    // endpoint goes.
    pool.set_endpoints(["a:1", "c:1"]).unwrap();
    let text = scrape(&registry);
    assert_eq!(
        sample(
            &text,
            r#"svc_ringpool_endpoint_ejected{pool="users",endpoint="c:1"}"#
        ),
        0.0
    );
    assert!(!text.contains(r#"endpoint="b:1""#), "{text}");
    drop(pool);
    assert!(
        !scrape(&registry).contains("ringpool_"),
        "a dropped pool reports nothing"
    );
}

/// Every metric the dashboard in `docs/grafana-dashboard.json` queries is
/// one the exporter writes (a multi-endpoint pool writes every family).
#[test]
fn the_grafana_dashboard_queries_only_metrics_that_exist() {
    let dashboard = include_str!("../docs/grafana-dashboard.json");
    let mut queried: Vec<&str> = dashboard
        .match_indices("ringpool_")
        .map(|(at, _)| {
            let rest = &dashboard[at..];
            let end = rest
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect();
    queried.sort_unstable();
    queried.dedup();
    assert!(queried.len() >= 12, "{queried:?}");

    let (clock, _control) = Clock::mock();
    let mock = Mock::new();
    let pool = MultiPool::builder(move |_: &Endpoint| mock.clone())
        .name("users")
        .endpoints(["a:1"])
        .clock(clock)
        .build()
        .unwrap();
    let mut registry = Registry::default();
    pool.register_metrics(&mut registry);
    drop(pool.get_blocking().unwrap());
    let text = scrape(&registry);
    for name in queried {
        assert!(
            text.lines().any(|line| line.starts_with(name)),
            "the dashboard queries {name}, which the exporter does not write:\n{text}"
        );
    }
}

/// A connection of the shared-pool test: a place count the manager
/// reports as its capacity.
struct Stream;

#[derive(Debug, thiserror::Error)]
#[error("refused")]
struct Refused;

struct Streams {
    refuse: std::sync::atomic::AtomicBool,
}

impl ringpool::shared::SharedManager for Streams {
    type Connection = Stream;
    type Error = Refused;
    async fn connect(&self) -> Result<Stream, Refused> {
        match self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
            true => Err(Refused),
            false => Ok(Stream),
        }
    }
    fn capacity(&self, _: &Stream) -> usize {
        2
    }
}

#[test]
fn a_shared_pool_reports_its_connections_requests_and_drains() {
    use ringpool::shared::SharedPool;
    let (clock, control) = Clock::mock();
    let pool = SharedPool::builder(Streams {
        refuse: std::sync::atomic::AtomicBool::new(false),
    })
    .name("orders")
    .max_size(3)
    .max_lifetime(Duration::from_secs(60))
    .clock(clock)
    .build()
    .unwrap();
    let mut registry = Registry::default();
    pool.register_metrics(registry.sub_registry_with_prefix("svc"));
    let block_on = futures_executor::block_on;
    // Four requests, two places a connection: two connections.
    let mut leases: Vec<_> = (0..4).map(|_| block_on(pool.get()).unwrap()).collect();
    pool.manager()
        .refuse
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(block_on(pool.get()).is_err(), "full, and the dial refused");
    let text = scrape(&registry);
    let p = r#"pool="orders""#;
    let value = |series: &str| sample(&text, &format!("svc_ringpool_shared_{series}"));
    assert_eq!(value(&format!(r#"connections{{{p},state="open"}}"#)), 2.0);
    assert_eq!(
        value(&format!(r#"connections{{{p},state="draining"}}"#)),
        0.0
    );
    assert_eq!(value(&format!("requests_in_flight{{{p}}}")), 4.0);
    assert_eq!(value(&format!("busiest_connection_requests{{{p}}}")), 2.0);
    assert_eq!(value(&format!("max_size{{{p}}}")), 3.0);
    assert_eq!(value(&format!("max_streams{{{p}}}")), 100.0);
    assert_eq!(value(&format!("leases_total{{{p}}}")), 4.0);
    assert_eq!(value(&format!("connects_total{{{p}}}")), 2.0);
    assert_eq!(value(&format!("connect_errors_total{{{p}}}")), 1.0);
    assert_eq!(value(&format!("failed_dials_in_a_row{{{p}}}")), 1.0);
    // Past max_lifetime both drain; the one with no request left goes.
    leases.truncate(2);
    control.advance(Duration::from_secs(61));
    pool.run_maintenance();
    let text = scrape(&registry);
    let value = |series: &str| sample(&text, &format!("svc_ringpool_shared_{series}"));
    assert_eq!(
        value(&format!(r#"drained_total{{{p},reason="lifetime"}}"#)),
        2.0
    );
    assert_eq!(
        value(&format!(r#"connections{{{p},state="draining"}}"#)),
        1.0
    );
    assert_eq!(value(&format!(r#"connections{{{p},state="open"}}"#)), 0.0);
    drop(pool);
    assert!(
        !scrape(&registry).contains("ringpool_shared"),
        "a dropped pool reports nothing"
    );
}

#[test]
fn a_shared_set_reports_each_endpoint_and_follows_the_set() {
    use ringpool::multi::Endpoint;
    use ringpool::shared::SharedSet;
    let set = SharedSet::builder(|_: &Endpoint| Streams {
        refuse: std::sync::atomic::AtomicBool::new(false),
    })
    .name("orders")
    .endpoints(["10.0.0.1:50051", "10.0.0.2:50051"])
    .build()
    .unwrap();
    let mut registry = Registry::default();
    set.register_metrics(&mut registry);
    let block_on = futures_executor::block_on;
    let leases: Vec<_> = (0..3).map(|_| block_on(set.get()).unwrap()).collect();
    let text = scrape(&registry);
    let in_flight = |endpoint: &str| {
        sample(
            &text,
            &format!(
                r#"ringpool_shared_requests_in_flight{{pool="orders",endpoint="{endpoint}"}}"#
            ),
        )
    };
    assert_eq!(
        in_flight("10.0.0.1:50051") + in_flight("10.0.0.2:50051"),
        3.0
    );
    assert!(in_flight("10.0.0.1:50051") >= 1.0 && in_flight("10.0.0.2:50051") >= 1.0);
    assert_eq!(
        text.matches("# HELP ringpool_shared_requests_in_flight")
            .count(),
        1,
        "each family described once"
    );
    drop(leases);
    set.set_endpoints(["10.0.0.2:50051"]).unwrap();
    let text = scrape(&registry);
    assert!(
        !text.contains("10.0.0.1"),
        "a removed endpoint is gone:\n{text}"
    );
    drop(set);
    assert!(!scrape(&registry).contains("ringpool_shared"));
}

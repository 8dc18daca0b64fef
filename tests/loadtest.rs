//! The loadtest's engine end to end at a tiny scale (two concurrency levels,
//! a fraction of a second per cell, loopback only), so the project's main
//! command cannot rot: every mode answers requests, no reply is ever
//! another request's, and the JSON carries every field the report and the
//! docs rely on. Nothing here compares performance.

#[path = "../examples/loadtest/engine/mod.rs"]
mod engine;

use std::time::Duration;

use engine::payment::{RequestError, check_reply};
use engine::{Config, MockApi, MockApiConfig, Mode, Protocol, Target};

const FIELDS: [&str; 11] = [
    "mode",
    "concurrency",
    "qps",
    "avg_us",
    "p50_us",
    "p99_us",
    "cpu_pct",
    "rss_mb",
    "connects",
    "reuse_rate",
    "errors",
];

fn tiny(target: Target, modes: Vec<Mode>) -> Config {
    Config {
        modes,
        rounds: 1,
        concurrency: vec![1, 8],
        duration: Duration::from_millis(150),
        warmup: Duration::from_millis(50),
        // Smaller than the larger concurrency, so gets also wait.
        pool_size: 4,
        ringpool: ringpool::Config::default(),
        timeout: Duration::from_secs(2),
        stall: Duration::from_secs(1),
        client_threads: 2,
        target,
        protocol: Protocol::Line,
        tls: false,
        endpoints: 1,
    }
}

fn api() -> MockApiConfig {
    MockApiConfig {
        service_time: Duration::from_micros(200),
        jitter: Duration::from_micros(50),
        threads: 1,
        protocol: Protocol::Line,
    }
}

#[test]
fn every_mode_answers_in_step_and_reports_every_field() {
    let config = tiny(Target::Embedded(api()), Mode::LINE.to_vec());
    let (mut announced, mut started, mut done) = (None, Vec::new(), Vec::new());
    let report = engine::run(&config, &mut |event| match event {
        engine::Event::Started { cells, server } => announced = Some((cells, server.is_some())),
        engine::Event::Cell {
            index,
            mode,
            concurrency,
        } => started.push((index, mode, concurrency)),
        engine::Event::Done(cell) => done.push((cell.mode, cell.concurrency)),
    })
    .expect("the run completes");
    assert_eq!(announced, Some((12, true)));
    assert_eq!(report.cells.len(), 12);
    // Every mode at one concurrency, then every mode at the next.
    let order: Vec<_> = [1, 8]
        .into_iter()
        .flat_map(|c| Mode::LINE.into_iter().map(move |mode| (mode, c)))
        .collect();
    let expected: Vec<_> = order
        .iter()
        .enumerate()
        .map(|(i, &(m, c))| (i, m, c))
        .collect();
    assert_eq!(started, expected);
    let names: Vec<_> = order.iter().map(|&(m, c)| (m.name(), c)).collect();
    assert_eq!(done, names);
    let server = report.server.expect("an embedded server");
    assert!(
        server
            .measured_service_time_us
            .is_some_and(|us| us >= 150.0)
    );

    let json = serde_json::to_value(&report.cells).expect("results serialize");
    let cells = json.as_array().expect("a JSON array");
    for cell in cells {
        for field in FIELDS {
            assert!(cell.get(field).is_some(), "{field} missing in {cell}");
        }
        let name = format!("{} at {}", cell["mode"], cell["concurrency"]);
        assert!(
            cell["requests"].as_u64() > Some(0),
            "{name} answered nothing: {cell}"
        );
        assert_eq!(cell["desyncs"].as_u64(), Some(0), "{name} desynced: {cell}");
        assert!(cell["qps"].as_f64() > Some(0.0), "{name}: {cell}");
        assert!(cell["p99_us"].as_u64() >= cell["p50_us"].as_u64(), "{name}");
        let reuse = cell["reuse_rate"].as_f64().expect("a number");
        assert!((0.0..=1.0).contains(&reuse), "{name}: {cell}");
    }
    for mode in Mode::LINE {
        assert_eq!(Mode::parse(mode.name()), Some(mode));
        assert!(
            cells.iter().any(|cell| cell["mode"] == mode.name()),
            "{} did not run",
            mode.name()
        );
    }
}

#[test]
fn rounds_rotate_the_modes_and_report_the_median_round_with_the_failures_of_all() {
    let modes = vec![Mode::NoPool, Mode::Ringpool, Mode::Dedicated];
    let mut config = tiny(Target::Embedded(api()), modes.clone());
    config.concurrency = vec![4];
    config.rounds = 3;
    config.duration = Duration::from_millis(100);
    let mut started = Vec::new();
    let mut rounds: Vec<(&str, f64)> = Vec::new();
    let report = engine::run(&config, &mut |event| match event {
        engine::Event::Cell { mode, .. } => started.push(mode),
        engine::Event::Done(cell) => rounds.push((cell.mode, cell.qps)),
        engine::Event::Started { cells, .. } => assert_eq!(cells, 9),
    })
    .expect("the run completes");
    // Each round starts one mode later.
    use Mode::{Dedicated, NoPool, Ringpool};
    assert_eq!(
        started,
        [
            NoPool, Ringpool, Dedicated, Ringpool, Dedicated, NoPool, Dedicated, NoPool, Ringpool
        ]
    );
    // One cell per mode, in the configured order, each the median of its
    // own three rounds.
    let cells: Vec<_> = report.cells.iter().map(|cell| cell.mode).collect();
    assert_eq!(cells, ["no-pool", "ringpool", "dedicated"]);
    for cell in &report.cells {
        let mine: Vec<f64> = rounds
            .iter()
            .filter(|(mode, _)| *mode == cell.mode)
            .map(|&(_, qps)| qps)
            .collect();
        assert_eq!(cell.rounds, 3);
        assert_eq!(cell.qps_rounds, mine, "each round's QPS, in run order");
        let mut sorted = mine.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(cell.qps, sorted[1], "the median round");
        assert_eq!((cell.qps_min, cell.qps_max), (sorted[0], sorted[2]));
    }
}

#[test]
fn the_median_round_carries_every_rounds_failures() {
    let round = |qps: f64, errors: u64, first_error: Option<&str>| {
        let mut cell = engine::rounds::median(vec![placeholder_cell()]);
        cell.qps = qps;
        cell.errors = errors;
        cell.first_error = first_error.map(str::to_string);
        cell
    };
    let cell = engine::rounds::median(vec![
        round(300.0, 0, None),
        round(100.0, 2, Some("timed out")),
        round(200.0, 1, Some("reset")),
    ]);
    assert_eq!(cell.qps, 200.0);
    assert_eq!(cell.errors, 3, "summed over every round");
    assert_eq!(
        cell.first_error.as_deref(),
        Some("timed out"),
        "the first seen"
    );
    assert_eq!(cell.qps_rounds, [300.0, 100.0, 200.0]);
    assert!((engine::rounds::spread_pct(&cell) - 100.0).abs() < 1e-9);
}

/// A cell from a real tiny run, to vary.
fn placeholder_cell() -> engine::CellResult {
    let mut config = tiny(Target::Embedded(api()), vec![Mode::Dedicated]);
    config.concurrency = vec![1];
    config.duration = Duration::from_millis(20);
    config.warmup = Duration::from_millis(1);
    let report = engine::run(&config, &mut |_| {}).expect("the run completes");
    report.cells.into_iter().next().expect("one cell")
}

#[test]
fn a_remote_target_counts_connects_on_the_client() {
    let server = MockApi::start(([127, 0, 0, 1], 0).into(), api()).expect("a mock API");
    let mut config = tiny(
        Target::Remote(server.addr().to_string()),
        vec![Mode::NoPool, Mode::Ringpool],
    );
    config.concurrency = vec![2];
    let report = engine::run(&config, &mut |_| {}).expect("the run completes");
    assert!(report.server.is_none());
    for cell in &report.cells {
        assert!(cell.requests > 0, "{cell:?}");
        assert_eq!(cell.connects, cell.client_connects, "{cell:?}");
    }
    // Every no-pool request dials (the window's edges blur the count by a
    // few); the pool dialed its connections in the warm-up.
    let no_pool = &report.cells[0];
    assert!(no_pool.connects * 10 >= no_pool.requests * 9, "{no_pool:?}");
    assert!(no_pool.reuse_rate < 0.1, "{no_pool:?}");
    let pooled = &report.cells[1];
    assert!(pooled.connects * 10 < pooled.requests, "{pooled:?}");
    assert!(server.requests() > 0);
}

#[test]
fn a_reply_to_another_request_is_a_desync() {
    assert!(check_reply(b"OK 42\n", 42).is_ok());
    assert!(matches!(
        check_reply(b"OK 41\n", 42),
        Err(RequestError::Desync(_))
    ));
    assert!(matches!(
        check_reply(b"OK 42\nOK 43\n", 42),
        Err(RequestError::Desync(_))
    ));
    assert!(matches!(
        check_reply(b"ERR bad request\n", 42),
        Err(RequestError::Rejected(_))
    ));
}

#[test]
fn endpoints_spread_the_ringpool_mode_over_several_servers() {
    let mut config = tiny(Target::Embedded(api()), vec![Mode::Ringpool]);
    config.endpoints = 3;
    config.concurrency = vec![6];
    // Three servers to start and dial: a window of 150 ms can pass before
    // the first request on a busy machine (seen once: 0 requests).
    config.duration = Duration::from_secs(1);
    let report = engine::run(&config, &mut |_| {}).expect("the run completes");
    let cell = &report.cells[0];
    assert!(cell.requests > 0 && cell.errors == 0, "{cell:?}");
    assert_eq!(report.endpoint_requests.len(), 3);
    let counts: Vec<u64> = report.endpoint_requests.iter().map(|(_, n)| *n).collect();
    let total: u64 = counts.iter().sum();
    for count in &counts {
        // Round-robin: each a third of the total, give or take the
        // requests in flight when the cell ended.
        let third = total / 3;
        assert!(count.abs_diff(third) * 10 <= third, "uneven: {counts:?}");
    }
}

/// The gRPC modes against the embedded tonic server with a stream limit
/// of 4: every call is answered and in step, and the connections each
/// mode opened are what it promises: one per call without a pool, one
/// channel for tonic's, a connection per task for dedicated, and for
/// ringpool no more than the calls in flight need (8 tasks over 4 streams
/// a connection: 2, at most `--pool-size`).
#[test]
fn the_grpc_modes_answer_in_step_and_open_the_connections_they_promise() {
    let mut config = tiny(Target::Embedded(api()), Mode::GRPC.to_vec());
    config.protocol = Protocol::Grpc { max_streams: 4 };
    config.concurrency = vec![8];
    let report = engine::run(&config, &mut |_| {}).expect("the run completes");
    let names: Vec<_> = report.cells.iter().map(|cell| cell.mode).collect();
    assert_eq!(names, ["no-pool", "tonic-channel", "ringpool", "dedicated"]);
    for cell in &report.cells {
        assert!(
            cell.requests > 0,
            "{} answered nothing: {cell:?}",
            cell.mode
        );
        assert_eq!(cell.errors, 0, "{}: {cell:?}", cell.mode);
        assert_eq!(cell.desyncs, 0, "{}", cell.mode);
    }
    let cell = |mode: &str| report.cells.iter().find(|cell| cell.mode == mode).unwrap();
    // Connections opened in the measured window (counted by the server):
    // the pools and channels were connected before it.
    let no_pool = cell("no-pool");
    assert!(
        no_pool.reuse_rate < 0.1,
        "no-pool must dial per call: {no_pool:?}"
    );
    assert!(
        cell("tonic-channel").connects <= 1,
        "{:?}",
        cell("tonic-channel")
    );
    assert!(cell("dedicated").connects <= 8, "{:?}", cell("dedicated"));
    let ringpool = cell("ringpool");
    assert!(
        ringpool.connects <= 4 && ringpool.reuse_rate > 0.9,
        "ringpool must share its connections: {ringpool:?}"
    );
}

#[test]
fn a_mode_of_the_other_protocol_is_refused_with_the_modes_that_fit() {
    let mut config = tiny(Target::Embedded(api()), vec![Mode::Bb8]);
    config.protocol = Protocol::Grpc { max_streams: 4 };
    let error = engine::run(&config, &mut |_| {}).err().expect("refused");
    let message = error.to_string();
    assert!(
        message.contains("bb8") && message.contains("tonic-channel"),
        "{message}"
    );
    let config = tiny(Target::Embedded(api()), vec![Mode::TonicChannel]);
    let message = engine::run(&config, &mut |_| {})
        .err()
        .expect("refused")
        .to_string();
    assert!(message.contains("--protocol grpc"), "{message}");
}

/// The TLS modes against the embedded server over TLS: every request is
/// answered in step; no-pool dials per request, and the pools reuse.
#[test]
fn the_tls_modes_answer_in_step_over_tls() {
    let mut config = tiny(Target::Embedded(api()), Mode::TLS.to_vec());
    config.tls = true;
    config.concurrency = vec![4];
    let report = engine::run(&config, &mut |_| {}).expect("the run completes");
    let names: Vec<_> = report.cells.iter().map(|cell| cell.mode).collect();
    assert_eq!(
        names,
        ["no-pool", "no-pool-resumed", "ringpool", "deadpool", "bb8"]
    );
    for cell in &report.cells {
        assert!(
            cell.requests > 0,
            "{} answered nothing: {cell:?}",
            cell.mode
        );
        assert_eq!(
            (cell.errors, cell.desyncs),
            (0, 0),
            "{}: {cell:?}",
            cell.mode
        );
        match cell.mode {
            "no-pool" | "no-pool-resumed" => {
                assert!(cell.reuse_rate < 0.1, "{}: {cell:?}", cell.mode)
            }
            _ => assert!(cell.reuse_rate > 0.9, "{}: {cell:?}", cell.mode),
        }
    }
    let mut grpc = tiny(Target::Embedded(api()), vec![Mode::NoPool]);
    grpc.tls = true;
    grpc.protocol = Protocol::Grpc { max_streams: 4 };
    let message = engine::run(&grpc, &mut |_| {})
        .err()
        .expect("refused")
        .to_string();
    assert!(message.contains("--tls"), "{message}");
}

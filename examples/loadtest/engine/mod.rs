//! The loadtest's engine: runs every (mode, concurrency) cell against one
//! target and measures it. No printing here; the caller gets an [`Event`]
//! per cell and the results.
//!
//! Runtime layout:
//! - the embedded mock payment API (unless a remote target is given) runs on
//!   its own tokio runtime and threads (`mock_api`);
//! - every mode but `ringpool-uring` runs its client tasks on one shared
//!   multi-thread tokio runtime (`client-N` threads), built once, so the
//!   modes compete on the same executor;
//! - `ringpool-uring` runs one tokio-uring runtime per client thread, each
//!   on its own OS thread, with the cell's tasks spread over them.
//!
//! Every cell starts from scratch (a new pool, new dedicated connections),
//! runs a warm-up whose requests are not recorded, then a measured window.
//! Cells run concurrency by concurrency, every mode at one concurrency
//! before the next, so the cells compared with each other are close in time
//! on a noisy machine; and each cell runs `rounds` times, the modes in a
//! rotating order, its figure the median round's, with the spread beside
//! it ([`rounds`]).

#[path = "../../support/mock_api.rs"]
pub mod mock_api;
#[path = "../../support/payment.rs"]
pub mod payment;
#[path = "../../../tests/test_certs/mod.rs"]
pub mod test_certs;

mod cell;
mod grpc;
mod peers;
mod recorder;
pub mod rounds;
mod sessions;
mod sys;
pub mod tls;
mod uring;

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

pub use mock_api::{MockApi, MockApiConfig, Protocol};

/// How requests reach the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A new tokio `TcpStream` per request, closed after it.
    NoPool,
    /// `ringpool::tcp::TokioTcpManager`, one checkout per request.
    Ringpool,
    /// `ringpool::tcp::TcpManager` and `Pool::get_uring`, tokio-uring
    /// runtimes, one per client thread.
    RingpoolUring,
    /// Each task owns one connection for the whole cell.
    Dedicated,
    /// deadpool 0.12 (managed) over tokio `TcpStream`s.
    Deadpool,
    /// bb8 0.9 over tokio `TcpStream`s.
    Bb8,
    /// gRPC only: one tonic `Channel` (one HTTP/2 connection) shared by
    /// every task.
    TonicChannel,
    /// TLS only: a new connection per request whose handshake resumes the
    /// session of an earlier one (one shared client config, no pool's
    /// best case); `NoPool` over TLS makes a fresh config per request, so
    /// every handshake is full.
    NoPoolResumed,
}

impl Mode {
    /// Every mode.
    pub const ALL: [Mode; 8] = [
        Mode::NoPool,
        Mode::Ringpool,
        Mode::RingpoolUring,
        Mode::Dedicated,
        Mode::Deadpool,
        Mode::Bb8,
        Mode::TonicChannel,
        Mode::NoPoolResumed,
    ];

    /// The modes of the line protocol, in the order they run by default.
    pub const LINE: [Mode; 6] = [
        Mode::NoPool,
        Mode::Ringpool,
        Mode::RingpoolUring,
        Mode::Dedicated,
        Mode::Deadpool,
        Mode::Bb8,
    ];

    /// The modes of gRPC, in the order they run by default.
    pub const GRPC: [Mode; 4] = [
        Mode::NoPool,
        Mode::TonicChannel,
        Mode::Ringpool,
        Mode::Dedicated,
    ];

    /// The modes of the line protocol over TLS, in their default order.
    pub const TLS: [Mode; 5] = [
        Mode::NoPool,
        Mode::NoPoolResumed,
        Mode::Ringpool,
        Mode::Deadpool,
        Mode::Bb8,
    ];

    /// The modes that speak `protocol` (over TLS if `tls`), in their
    /// default order.
    pub fn of(protocol: Protocol, tls: bool) -> &'static [Mode] {
        match (protocol, tls) {
            (Protocol::Line, false) => &Mode::LINE,
            (Protocol::Line, true) => &Mode::TLS,
            (Protocol::Grpc { .. }, _) => &Mode::GRPC,
        }
    }

    /// The name used in flags, tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Mode::NoPool => "no-pool",
            Mode::Ringpool => "ringpool",
            Mode::RingpoolUring => "ringpool-uring",
            Mode::Dedicated => "dedicated",
            Mode::Deadpool => "deadpool",
            Mode::Bb8 => "bb8",
            Mode::TonicChannel => "tonic-channel",
            Mode::NoPoolResumed => "no-pool-resumed",
        }
    }

    /// The mode called `name`.
    pub fn parse(name: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|mode| mode.name() == name)
    }
}

/// Where the requests go.
#[derive(Clone, Debug)]
pub enum Target {
    /// Start the mock payment API on loopback, on its own threads.
    Embedded(MockApiConfig),
    /// A running server speaking the same line protocol.
    Remote(String),
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// The modes, run in this order at each concurrency (in the first
    /// round; each later round starts one mode later).
    pub modes: Vec<Mode>,
    /// Rounds per cell (at least 1): the cell's figures are its median
    /// round's.
    pub rounds: usize,
    /// Concurrent client tasks per cell.
    pub concurrency: Vec<usize>,
    /// Measured time per cell.
    pub duration: Duration,
    /// Unrecorded load before each cell's measured window.
    pub warmup: Duration,
    /// `max_size` of every pool.
    pub pool_size: usize,
    /// The settings of the ringpool pools (the library's defaults unless
    /// given); `pool_size` overrides its `max_size`.
    pub ringpool: ringpool::Config,
    /// Limit on one request (checkout, dial, write and reply together).
    pub timeout: Duration,
    /// A completed request at least this slow is counted as a stall.
    pub stall: Duration,
    /// Worker threads of the client runtime, and tokio-uring runtimes.
    pub client_threads: usize,
    /// Where the requests go.
    pub target: Target,
    /// What the requests are: the line protocol or gRPC (an embedded
    /// server is started speaking it, whatever its config says).
    pub protocol: Protocol,
    /// The line protocol over TLS: the embedded server terminates it with
    /// a certificate the run makes, which the clients trust.
    pub tls: bool,
    /// Mock API servers the embedded target runs (at least 1). With more
    /// than one, `ringpool` spreads its requests over all of them with a
    /// `MultiPool` (round-robin, `pool_size` in all); every other mode
    /// sends to the first.
    pub endpoints: usize,
}

/// One cell's measurements.
#[derive(Clone, Debug, Serialize)]
pub struct CellResult {
    pub mode: &'static str,
    pub concurrency: usize,
    /// Requests answered correctly in the measured window.
    pub requests: u64,
    /// From the start of the measured window until every task finished.
    pub duration_s: f64,
    pub qps: f64,
    pub avg_us: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// CPU time of the whole process (client, pool threads and the embedded
    /// server) over the window, as a percentage of one core.
    pub cpu_pct: f64,
    /// The same without the embedded server's threads.
    pub client_cpu_pct: f64,
    /// Client CPU time per answered request, in microseconds.
    pub cpu_us_per_req: f64,
    /// Peak resident memory of the process during the cell, in MiB.
    pub rss_mb: f64,
    /// `cell` when the kernel's peak counter was reset at the cell's start,
    /// `process` when it could not be (then it is the peak since start).
    pub rss_scope: &'static str,
    /// Connections opened in the window: counted by the embedded server, or
    /// by the client for a remote target.
    pub connects: u64,
    /// Connections the client opened in the window.
    pub client_connects: u64,
    /// `1 - connects / requests started in the window`: the share of
    /// requests that did not open a connection (0 if negative).
    pub reuse_rate: f64,
    /// Failed requests: timeouts, desyncs and every other error.
    pub errors: u64,
    pub timeouts: u64,
    pub desyncs: u64,
    /// Answered requests that took at least the stall threshold.
    pub stalls: u64,
    /// The first error seen, for the report.
    pub first_error: Option<String>,
    /// Rounds the cell ran; `qps` and every other figure are its median
    /// round's (by QPS), failures are summed over all of them.
    pub rounds: usize,
    /// Each round's QPS, in the order they ran.
    pub qps_rounds: Vec<f64>,
    /// The lowest and highest round's QPS.
    pub qps_min: f64,
    pub qps_max: f64,
    /// How long the embedded server held each request in the window, on
    /// average: the simulated service time plus the server's own delay in
    /// getting back to the request when its timer fired.
    pub server_hold_us: Option<f64>,
}

/// The embedded server's side of the run.
#[derive(Clone, Debug, Serialize)]
pub struct ServerSummary {
    pub addr: SocketAddr,
    pub service_time_us: f64,
    pub jitter_us: f64,
    /// What requests were actually held for, on average.
    pub measured_service_time_us: Option<f64>,
    pub threads: usize,
}

/// Progress of a run.
pub enum Event<'a> {
    /// The embedded server (if any) is up; `cells` will run (each cell's
    /// every round counts).
    Started {
        cells: usize,
        server: Option<&'a ServerSummary>,
    },
    /// A cell's round starts.
    Cell {
        index: usize,
        mode: Mode,
        concurrency: usize,
    },
    /// A cell's round finished (the report carries the median round).
    Done(&'a CellResult),
}

/// The results of a run.
pub struct Report {
    pub cells: Vec<CellResult>,
    pub server: Option<ServerSummary>,
    /// Requests each embedded server answered over the whole run.
    pub endpoint_requests: Vec<(SocketAddr, u64)>,
}

/// Runs every cell of `config`, reporting progress to `on_event`.
pub fn run(
    config: &Config,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Report, Box<dyn std::error::Error>> {
    if config.modes.is_empty() || config.concurrency.is_empty() {
        return Err("nothing to run: no modes or no concurrency levels".into());
    }
    if config.concurrency.contains(&0) || config.pool_size == 0 || config.rounds == 0 {
        return Err("concurrency levels, the pool size and --rounds must be at least 1".into());
    }
    if config.endpoints > 1 && config.protocol != Protocol::Line {
        return Err(
            "--endpoints above 1 runs the line protocol only: the gRPC modes \
                    send to one server"
                .into(),
        );
    }
    if config.tls
        && (config.protocol != Protocol::Line || !matches!(config.target, Target::Embedded(_)))
    {
        return Err(
            "--tls runs the line protocol against the embedded server (the run makes \
                    its certificate); drop --protocol grpc or --target"
                .into(),
        );
    }
    let speaks = Mode::of(config.protocol, config.tls);
    if let Some(mode) = config.modes.iter().find(|mode| !speaks.contains(mode)) {
        let names: Vec<_> = speaks.iter().map(|mode| mode.name()).collect();
        return Err(format!(
            "mode {} does not speak {}; its modes are: {}",
            mode.name(),
            match (config.protocol, config.tls) {
                (Protocol::Line, false) if *mode == Mode::NoPoolResumed => "plain TCP (add --tls)",
                (Protocol::Line, false) => "the line protocol (add --protocol grpc)",
                (Protocol::Line, true) => "TLS",
                (Protocol::Grpc { .. }, _) => "gRPC",
            },
            names.join(", ")
        )
        .into());
    }
    let tls = config.tls.then(tls::Tls::new).transpose()?;
    let servers = match &config.target {
        Target::Embedded(api) => (0..config.endpoints.max(1))
            .map(|_| {
                let api = MockApiConfig {
                    protocol: config.protocol,
                    ..*api
                };
                MockApi::start_with(
                    SocketAddr::from(([127, 0, 0, 1], 0)),
                    api,
                    tls.as_ref().map(tls::Tls::acceptor),
                )
            })
            .collect::<Result<Vec<_>, _>>()?,
        Target::Remote(_) => Vec::new(),
    };
    let server = servers.first();
    let targets: Vec<String> = match &config.target {
        Target::Embedded(_) => servers
            .iter()
            .map(|server| server.addr().to_string())
            .collect(),
        Target::Remote(target) => vec![target.clone()],
    };
    let client = cell::ClientRuntime::new(config.client_threads)?;
    let summarize = |server: &MockApi| ServerSummary {
        addr: server.addr(),
        service_time_us: micros(server.config().service_time),
        jitter_us: micros(server.config().jitter),
        measured_service_time_us: server.mean_service_time().map(micros),
        threads: server.config().threads,
    };
    let summary = server.map(summarize);
    let runs = config.modes.len() * config.concurrency.len() * config.rounds;
    on_event(Event::Started {
        cells: runs,
        server: summary.as_ref(),
    });
    let mut results = Vec::with_capacity(config.modes.len() * config.concurrency.len());
    let mut index = 0;
    for &concurrency in &config.concurrency {
        let mut by_mode: Vec<Vec<CellResult>> = vec![Vec::new(); config.modes.len()];
        for round in 0..config.rounds {
            for (slot, mode) in rounds::rotated(&config.modes, round) {
                on_event(Event::Cell {
                    index,
                    mode,
                    concurrency,
                });
                index += 1;
                let result = cell::run(
                    &client,
                    config,
                    &targets,
                    &servers,
                    tls.as_ref(),
                    mode,
                    concurrency,
                )?;
                on_event(Event::Done(&result));
                by_mode[slot].push(result);
            }
        }
        results.extend(by_mode.into_iter().map(rounds::median));
    }
    Ok(Report {
        cells: results,
        server: server.map(summarize),
        endpoint_requests: servers
            .iter()
            .map(|server| (server.addr(), server.requests()))
            .collect(),
    })
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

//! The loadtest: a service calling a payment API, with a connection pool and
//! without, at several concurrency levels, in one run.
//!
//! It starts a mock payment API on loopback (one line in, one line out:
//! `AUTH <id> <amount>` -> `OK <id>`, each request held for a simulated
//! service time with jitter, by a kernel timer in the server), then runs
//! every mode at every concurrency, one after another, with the same
//! request mix:
//!
//! - `no-pool`: a new tokio `TcpStream` per request, closed after it (the
//!   baseline);
//! - `ringpool`: `ringpool::tcp::TokioTcpManager`, one checkout per request;
//! - `ringpool-uring`: the pool's tokio-uring path (`Pool::get_uring`), one
//!   tokio-uring runtime per core;
//! - `dedicated`: each task owns one connection (the ceiling);
//! - `deadpool`, `bb8`: the same requests through those pools.
//!
//! Each cell runs `--rounds` times (3), the modes in a rotating order, and
//! reports its median round with the rounds' spread: on a shared machine a
//! single window lets the cell's position and the machine's moment decide.
//!
//! It prints a table (QPS, the rounds' spread, average, p50 and p99
//! latency, CPU, peak memory, connections opened, reuse rate, errors and
//! stalls per cell), then
//! ringpool's change over `no-pool` beside the figures of the article this
//! experiment comes from, and the project's targets as ratios within the
//! run. Every reply is checked against its own request; a mismatch is a
//! desync and counts as an error.
//!
//! Run it (about 90 s with the defaults on two cores):
//!
//! ```sh
//! cargo run --release --example loadtest --features tokio,tokio-uring,grpc,tls
//! cargo run --release --example loadtest --features tokio,tokio-uring,grpc,tls -- \
//!     --concurrency 1,50 --modes no-pool,ringpool --duration 3s \
//!     --json results.json --chart results.svg
//! ```
//!
//! `--protocol grpc` runs the same authorisations as unary gRPC calls over
//! HTTP/2 against an embedded tonic server that allows `--max-streams`
//! (100) concurrent streams per connection, in the modes `no-pool` (a new
//! channel per call), `tonic-channel` (one tonic `Channel`, one
//! connection), `ringpool` (`clients::grpc::Channel` over a `SharedPool`
//! of at most `--pool-size` connections) and `dedicated` (a channel per
//! task), with the same table, targets and chart:
//!
//! ```sh
//! cargo run --release --example loadtest --features tokio,tokio-uring,grpc,tls -- --protocol grpc
//! ```
//!
//! `--tls` runs the line protocol over TLS (the run makes the server's
//! certificate and its CA, which the clients trust): `no-pool` makes a
//! fresh client config per request (every handshake full),
//! `no-pool-resumed` shares one (handshakes resume), and ringpool, deadpool
//! and bb8 dial through the same connector.
//!
//! `--target host:port` sends the requests to a running server that speaks
//! the same protocol instead; `cargo run --release --example gateway
//! --features tokio -- --mock-api 127.0.0.1:9000` starts one. `--help`
//! lists every flag.

mod chart;
mod cli;
mod compare;
mod engine;
mod progress;
mod table;

use std::error::Error;
use std::io::Write;

use clap::Parser;

use engine::{Config, Event, Protocol, ServerSummary, Target};

fn main() -> Result<(), Box<dyn Error>> {
    let args = cli::Args::parse();
    let config = args.config();
    let progress = progress::Progress::new();
    let report = engine::run(&config, &mut |event| match event {
        Event::Started { cells, server } => {
            describe(&config, server);
            progress.start(cells, estimate(&config));
        }
        Event::Cell {
            index,
            mode,
            concurrency,
        } => progress.cell(index, mode.name(), concurrency),
        Event::Done(cell) => progress.done(cell),
    })?;
    progress.finish();

    if let Some(server) = &report.server
        && let Some(held) = server.measured_service_time_us
    {
        println!(
            "mock API held requests for {:.3} ms on average (timer overshoot included)",
            held / 1000.0
        );
    }
    if report.endpoint_requests.len() > 1 {
        println!("requests per endpoint (every mode but ringpool uses the first):");
        for (addr, requests) in &report.endpoint_requests {
            println!("  {addr}: {requests}");
        }
    }
    println!();
    table::print(&report.cells);
    compare::print_article(&report.cells);
    compare::print_targets(&report.cells);
    println!();
    println!(
        "qps: answered requests / measured window; latencies: answered requests only; \
         cpu %: whole process (client, and the embedded server if any), of one core; us/req: client \
         threads' CPU per answered request; rss: peak RSS during the cell (VmHWM, {}); \
         connects: {}; reuse: 1 - connects/requests started in the window.",
        report
            .cells
            .first()
            .map_or("", |cell| match cell.rss_scope {
                "cell" => "reset at each cell's start, whole process, allocator caches included",
                _ => "process-wide since start: the kernel refused a reset",
            }),
        match config.target {
            Target::Embedded(_) => "accepted by the embedded server",
            Target::Remote(_) => "dialed by the client",
        }
    );

    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report.cells)?;
        std::fs::write(path, json + "\n")
            .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.chart {
        chart::write(path, &report.cells)
            .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
        println!("wrote {}", path.display());
    }
    std::io::stdout().flush()?;
    Ok(())
}

/// What is about to run, and how.
fn describe(config: &Config, server: Option<&ServerSummary>) {
    match (&config.target, server) {
        (Target::Embedded(api), Some(server)) => println!(
            "target: embedded mock payment API on {} ({} threads of its own, {}), \
             service time {:?} ± {:?} simulated by a timer in the server \
             (loopback has no network delay to inject)",
            server.addr,
            api.threads,
            match config.protocol {
                Protocol::Line if config.tls => "line protocol over TLS 1.3".to_string(),
                Protocol::Line => "line protocol".to_string(),
                Protocol::Grpc { max_streams } =>
                    format!("gRPC over HTTP/2, at most {max_streams} streams per connection"),
            },
            api.service_time,
            api.jitter
        ),
        (Target::Remote(target), _) => println!("target: {target} (remote)"),
        (Target::Embedded(_), None) => {}
    }
    let modes: Vec<_> = config.modes.iter().map(|mode| mode.name()).collect();
    let mut defaults = ringpool::Config::default();
    defaults.max_size = config.pool_size;
    if config.ringpool != defaults {
        println!("ringpool settings: {}", config.ringpool);
    }
    println!(
        "modes: {}; concurrency: {:?}; pool size {}; {} rounds per cell, modes rotating, \
         each {:?} warm-up + {:?} measured; request timeout {:?}; stall >= {:?}",
        modes.join(", "),
        config.concurrency,
        config.pool_size,
        config.rounds,
        config.warmup,
        config.duration,
        config.timeout,
        config.stall
    );
    println!(
        "client: one multi-thread tokio runtime with {} workers for every mode but \
         ringpool-uring, which runs {} tokio-uring runtimes (one thread each)",
        config.client_threads, config.client_threads
    );
}

/// A lower bound on the run's length, for the progress bar.
fn estimate(config: &Config) -> std::time::Duration {
    let cells = (config.modes.len() * config.concurrency.len() * config.rounds) as u32;
    (config.warmup + config.duration) * cells
}

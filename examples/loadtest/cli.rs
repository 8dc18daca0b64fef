//! The loadtest's flags, and the engine configuration they make.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::engine::{Config, MockApiConfig, Mode, Protocol, Target};

/// Pool vs no pool against a mock payment API, every mode at every
/// concurrency, one after another.
#[derive(Parser, Debug)]
#[command(about, long_about = None)]
pub struct Args {
    /// Concurrent client tasks, one cell per value.
    #[arg(long, value_delimiter = ',', default_value = "1,50,150,1000")]
    pub concurrency: Vec<usize>,

    /// Modes to run, in this order [default: every mode of the protocol:
    /// no-pool, ringpool, ringpool-uring, dedicated, deadpool, bb8 for
    /// `line`; no-pool, no-pool-resumed, ringpool, deadpool, bb8 with
    /// `--tls`; no-pool, tonic-channel, ringpool, dedicated for `grpc`].
    #[arg(long, value_delimiter = ',', value_parser = parse_mode)]
    pub modes: Option<Vec<Mode>>,

    /// What the requests are: `line` (one request line, one reply line,
    /// one request at a time per connection) or `grpc` (unary calls over
    /// HTTP/2, many at once per connection).
    #[arg(long, value_parser = ["line", "grpc"], default_value = "line")]
    pub protocol: String,

    /// The line protocol over TLS: the embedded server terminates TLS 1.3
    /// with a certificate the run makes; modes no-pool (a fresh client
    /// config per request: full handshakes), no-pool-resumed (one shared
    /// config: resumed handshakes), ringpool, deadpool and bb8, every pool
    /// over the same connector.
    #[arg(long)]
    pub tls: bool,

    /// With `--protocol grpc`: the embedded server's limit on concurrent
    /// streams per connection (`SETTINGS_MAX_CONCURRENT_STREAMS`).
    #[arg(long, default_value_t = 100)]
    pub max_streams: u32,

    /// Measured time per cell and round.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    pub duration: Duration,

    /// Rounds per cell, the modes in a rotating order: each cell's figures
    /// are its median round's, with the rounds' spread beside it.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,

    /// Unrecorded load before each cell's measurement.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "250ms")]
    pub warmup: Duration,

    /// `max_size` of every pool (ringpool, deadpool, bb8).
    #[arg(long, default_value_t = 50)]
    pub pool_size: usize,

    /// Settings for the ringpool pools, as `name=value` pairs separated by
    /// commas (`young_death_window=none,check_after=1s`); the library's
    /// defaults otherwise. `--pool-size` sets `max_size`.
    #[arg(long, value_name = "SETTINGS", value_parser = parse_ringpool_config)]
    pub ringpool_config: Option<ringpool::Config>,

    /// Limit on one request: checkout or dial, write and reply.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub timeout: Duration,

    /// An answered request at least this slow counts as a stall.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    pub stall: Duration,

    /// Mean service time of the embedded mock API.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1ms")]
    pub service_time: Duration,

    /// Service times are drawn uniformly from service-time ± jitter.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "200us")]
    pub jitter: Duration,

    /// Threads of the embedded mock API [default: one per core].
    #[arg(long)]
    pub server_threads: Option<usize>,

    /// Client runtime worker threads, and tokio-uring runtimes
    /// [default: one per core].
    #[arg(long)]
    pub client_threads: Option<usize>,

    /// Embedded mock API servers: with more than one, `ringpool` spreads
    /// its requests over all of them (a round-robin `MultiPool`,
    /// `--pool-size` connections in all) and the per-endpoint request
    /// counts are printed; every other mode uses the first.
    #[arg(long, default_value_t = 1)]
    pub endpoints: usize,

    /// A running server speaking the mock API's protocol, instead of the
    /// embedded one.
    #[arg(long, value_name = "HOST:PORT")]
    pub target: Option<String>,

    /// Write the results as a JSON array.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,

    /// Write an SVG chart of QPS and p99 by concurrency.
    #[arg(long, value_name = "PATH")]
    pub chart: Option<PathBuf>,
}

fn parse_mode(name: &str) -> Result<Mode, String> {
    Mode::parse(name).ok_or_else(|| {
        let known: Vec<_> = Mode::ALL.iter().map(|mode| mode.name()).collect();
        format!("unknown mode {name:?}; known: {}", known.join(", "))
    })
}

fn parse_ringpool_config(text: &str) -> Result<ringpool::Config, String> {
    text.parse()
        .map_err(|error: ringpool::ConfigError| error.to_string())
}

impl Args {
    /// The engine configuration these flags describe.
    pub fn config(&self) -> Config {
        let protocol = match self.protocol.as_str() {
            "grpc" => Protocol::Grpc {
                max_streams: self.max_streams.max(1),
            },
            _ => Protocol::Line,
        };
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let target = match &self.target {
            Some(target) => Target::Remote(target.clone()),
            None => Target::Embedded(MockApiConfig {
                service_time: self.service_time,
                jitter: self.jitter.min(self.service_time),
                threads: self.server_threads.unwrap_or(cores),
                protocol,
            }),
        };
        let mut ringpool = self.ringpool_config.clone().unwrap_or_default();
        ringpool.max_size = self.pool_size;
        Config {
            modes: self
                .modes
                .clone()
                .unwrap_or_else(|| Mode::of(protocol, self.tls).to_vec()),
            concurrency: self.concurrency.clone(),
            rounds: self.rounds,
            duration: self.duration,
            warmup: self.warmup,
            pool_size: self.pool_size,
            ringpool,
            timeout: self.timeout,
            stall: self.stall,
            client_threads: self.client_threads.unwrap_or(cores),
            target,
            protocol,
            tls: self.tls,
            endpoints: self.endpoints,
        }
    }
}

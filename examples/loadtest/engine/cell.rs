//! One cell: a mode at one concurrency. Builds the mode's client state,
//! runs the load (warm-up, then the measured window), takes the process's
//! measurements at the window's start and end, and tears everything down.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ringpool::Pool;
use ringpool::multi::{Endpoint, MultiPool};
use ringpool::tcp::{TcpManager, TokioTcpManager};
use tokio::task::JoinSet;

use super::mock_api::{MockApi, Protocol};
use super::recorder::Recorder;
use super::sessions::{self, Session};
use super::tls::Tls;
use super::{CellResult, Config, Mode, grpc, peers, sys, uring};

/// The multi-thread tokio runtime every tokio mode's client tasks share.
pub struct ClientRuntime {
    runtime: tokio::runtime::Runtime,
    threads: usize,
}

impl ClientRuntime {
    pub fn new(threads: usize) -> std::io::Result<ClientRuntime> {
        let threads = threads.max(1);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("client")
            .enable_all()
            .build()?;
        Ok(ClientRuntime { runtime, threads })
    }
}

/// The timing of a cell, shared by its tasks.
pub struct Plan {
    /// Requests that finish from here on are recorded.
    pub measure_from: Instant,
    /// No request starts after this.
    pub end: Instant,
    pub timeout: Duration,
    pub recorder: Recorder,
    /// Requests started in the measured window (each no-pool one dials in
    /// it, so this, not the answered count, is what connects compare with).
    pub started: AtomicU64,
}

/// The process's counters at one instant.
struct Snapshot {
    at: Instant,
    cpu: Duration,
    server_cpu: Duration,
    accepts: u64,
    served: u64,
    held: Duration,
    client_connects: u64,
}

impl Snapshot {
    /// Sums over every embedded server (none for a remote target).
    fn take(servers: &[MockApi], client_connects: &(dyn Fn() -> u64 + Sync)) -> Snapshot {
        Snapshot {
            at: Instant::now(),
            cpu: sys::process_cpu_time(),
            server_cpu: servers.iter().map(MockApi::cpu_time).sum(),
            accepts: servers.iter().map(MockApi::connections).sum(),
            served: servers.iter().map(MockApi::requests).sum(),
            held: servers.iter().map(MockApi::held).sum(),
            client_connects: client_connects(),
        }
    }
}

type BoxError = Box<dyn std::error::Error>;

/// Runs `mode` at `concurrency` against `targets` (`ringpool` spreads
/// over all of them, every other mode sends to the first), served by
/// `servers` when embedded.
pub fn run(
    client: &ClientRuntime,
    config: &Config,
    targets: &[String],
    servers: &[MockApi],
    tls: Option<&Tls>,
    mode: Mode,
    concurrency: usize,
) -> Result<CellResult, BoxError> {
    let target: Arc<str> = targets[0].as_str().into();
    let dials = Arc::new(AtomicU64::new(0));
    let counted = {
        let dials = Arc::clone(&dials);
        move || dials.load(Ordering::Relaxed)
    };
    let measure_from = Instant::now() + config.warmup;
    let plan = Arc::new(Plan {
        measure_from,
        end: measure_from + config.duration,
        timeout: config.timeout,
        recorder: Recorder::new(config.stall),
        started: AtomicU64::new(0),
    });
    let measure = |load: &mut dyn FnMut() -> Result<(), BoxError>,
                   connects: &(dyn Fn() -> u64 + Sync)|
     -> Result<(Snapshot, Snapshot, bool), BoxError> {
        std::thread::scope(|scope| {
            let start = scope.spawn(|| {
                std::thread::sleep(measure_from.saturating_duration_since(Instant::now()));
                let reset = sys::reset_peak_rss();
                (Snapshot::take(servers, connects), reset)
            });
            let loaded = load();
            let end = Snapshot::take(servers, connects);
            let (start, reset) = start.join().map_err(|_| "the measuring thread panicked")?;
            loaded.map(|()| (start, end, reset))
        })
    };
    let speaks_grpc = config.protocol != Protocol::Line;
    let uri: Arc<str> = format!("http://{target}").into();
    let (start, end, reset) = match mode {
        Mode::NoPool | Mode::NoPoolResumed if tls.is_some() => {
            let shared = match mode {
                Mode::NoPoolResumed => tls.map(Tls::connector),
                _ => None,
            };
            measure(
                &mut || {
                    run_tokio(client, concurrency, &plan, |_| sessions::NoPoolTls {
                        target: Arc::clone(&target),
                        dials: Arc::clone(&dials),
                        shared: shared.clone(),
                    })
                },
                &counted,
            )?
        }
        Mode::Ringpool if tls.is_some() => {
            let _enter = client.runtime.enter();
            let connector = tls.map(Tls::connector).expect("checked");
            let manager = TokioTcpManager::new(target.to_string()).tls(connector);
            ringpool_cell(client, config, manager, concurrency, &plan, &measure)?
        }
        Mode::Ringpool if speaks_grpc => {
            let _enter = client.runtime.enter();
            let manager =
                ringpool::clients::h2::H2Manager::new(ringpool::tcp::Dialer::new(&*target)?);
            let pool = ringpool::shared::SharedPool::builder(manager)
                .max_size(config.pool_size)
                .acquire_timeout(config.timeout)
                .build()?;
            let channel = ringpool::clients::grpc::Channel::new(pool.clone())?;
            let stats = || pool.stats().connects;
            measure(
                &mut || {
                    run_tokio(client, concurrency, &plan, |_| grpc::Shared {
                        client: grpc::TextClient::new(channel.clone()),
                    })
                },
                &stats,
            )?
        }
        Mode::TonicChannel => {
            let channel = client.runtime.block_on(grpc::connect(&uri, &dials))?;
            measure(
                &mut || {
                    run_tokio(client, concurrency, &plan, |_| grpc::Shared {
                        client: grpc::TextClient::new(channel.clone()),
                    })
                },
                &counted,
            )?
        }
        Mode::NoPool if speaks_grpc => measure(
            &mut || {
                run_tokio(client, concurrency, &plan, |_| grpc::NoPool {
                    uri: Arc::clone(&uri),
                    dials: Arc::clone(&dials),
                })
            },
            &counted,
        )?,
        Mode::Dedicated if speaks_grpc => measure(
            &mut || {
                run_tokio(client, concurrency, &plan, |_| grpc::Dedicated {
                    uri: Arc::clone(&uri),
                    dials: Arc::clone(&dials),
                    client: None,
                })
            },
            &counted,
        )?,
        Mode::RingpoolUring => {
            let pool = Pool::builder(TcpManager::new(&*target)?)
                .config(config.ringpool.clone())
                .max_size(config.pool_size)
                .build()?;
            let maintenance = pool.spawn_maintenance_thread()?;
            let stats = || pool.stats().connects;
            let measured = measure(
                &mut || Ok(uring::run(&pool, client.threads, concurrency, &plan)?),
                &stats,
            );
            pool.close();
            let _ = maintenance.join();
            measured?
        }
        Mode::Ringpool if targets.len() > 1 => {
            let _enter = client.runtime.enter();
            let pool =
                MultiPool::builder(|endpoint: &Endpoint| TokioTcpManager::new(endpoint.as_str()))
                    .endpoint_config(config.ringpool.clone())
                    .endpoints(targets.iter().map(String::as_str))
                    .max_per_endpoint(config.pool_size)
                    .max_total(config.pool_size)
                    .build()?;
            let stats = || pool.endpoints().iter().map(|e| e.stats.connects).sum();
            let measured = measure(
                &mut || {
                    run_tokio(client, concurrency, &plan, |_| sessions::RingpoolMulti {
                        pool: pool.clone(),
                    })
                },
                &stats,
            );
            pool.close();
            measured?
        }
        Mode::Ringpool => {
            let _enter = client.runtime.enter();
            let manager = TokioTcpManager::new(target.to_string());
            ringpool_cell(client, config, manager, concurrency, &plan, &measure)?
        }
        Mode::NoPoolResumed => return Err("no-pool-resumed runs over TLS only (--tls)".into()),
        Mode::NoPool => measure(
            &mut || {
                run_tokio(client, concurrency, &plan, |_| sessions::NoPool {
                    target: Arc::clone(&target),
                    dials: Arc::clone(&dials),
                })
            },
            &counted,
        )?,
        Mode::Dedicated => measure(
            &mut || {
                run_tokio(client, concurrency, &plan, |_| sessions::Dedicated {
                    target: Arc::clone(&target),
                    dials: Arc::clone(&dials),
                    stream: None,
                })
            },
            &counted,
        )?,
        Mode::Deadpool => {
            let manager = peers::PeerManager {
                target: Arc::clone(&target),
                dials: Arc::clone(&dials),
                tls: tls.map(Tls::connector),
            };
            let pool = peers::deadpool(manager, config.pool_size)?;
            measure(
                &mut || {
                    run_tokio(client, concurrency, &plan, |_| sessions::Deadpool {
                        pool: pool.clone(),
                    })
                },
                &counted,
            )?
        }
        Mode::Bb8 => {
            let manager = peers::PeerManager {
                target: Arc::clone(&target),
                dials: Arc::clone(&dials),
                tls: tls.map(Tls::connector),
            };
            // bb8 spawns its reaper on the runtime it is built in.
            let pool = {
                let _enter = client.runtime.enter();
                peers::bb8(manager, config.pool_size)
            };
            let measured = measure(
                &mut || {
                    run_tokio(client, concurrency, &plan, |_| sessions::Bb8 {
                        pool: pool.clone(),
                    })
                },
                &counted,
            );
            let _enter = client.runtime.enter();
            drop(pool);
            measured?
        }
    };
    Ok(result(
        mode,
        concurrency,
        &plan,
        &start,
        &end,
        reset,
        !servers.is_empty(),
    ))
}

/// What `measure` is: runs the load, and snapshots the process at the
/// window's start and end, counting connects with the given counter.
type Measure<'a> = dyn Fn(
        &mut dyn FnMut() -> Result<(), BoxError>,
        &(dyn Fn() -> u64 + Sync),
    ) -> Result<(Snapshot, Snapshot, bool), BoxError>
    + 'a;

/// `ringpool` over the tokio manager, plain or TLS: the pool and its
/// maintenance on the client runtime (entered by the caller), one checkout
/// per request, closed after the cell.
fn ringpool_cell<M>(
    client: &ClientRuntime,
    config: &Config,
    manager: M,
    concurrency: usize,
    plan: &Arc<Plan>,
    measure: &Measure<'_>,
) -> Result<(Snapshot, Snapshot, bool), BoxError>
where
    M: ringpool::SendManager,
    M::Connection: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let pool = Pool::builder(manager)
        .config(config.ringpool.clone())
        .max_size(config.pool_size)
        .build()?;
    let maintenance = client.runtime.spawn(pool.maintenance());
    let stats = || pool.stats().connects;
    let measured = measure(
        &mut || {
            run_tokio(client, concurrency, plan, |_| sessions::Ringpool {
                pool: pool.clone(),
            })
        },
        &stats,
    );
    pool.close();
    let _ = client.runtime.block_on(maintenance);
    measured
}

/// Runs one task per unit of concurrency on the client runtime, each with
/// the session `make` returns for it, until the plan's end.
fn run_tokio<S: Session>(
    client: &ClientRuntime,
    concurrency: usize,
    plan: &Arc<Plan>,
    make: impl Fn(usize) -> S,
) -> Result<(), BoxError> {
    client.runtime.block_on(async {
        let mut tasks = JoinSet::new();
        for task in 0..concurrency {
            tasks.spawn(sessions::drive(make(task), task, Arc::clone(plan)));
        }
        while let Some(joined) = tasks.join_next().await {
            joined.map_err(|error| format!("a client task failed: {error}"))?;
        }
        Ok(())
    })
}

/// The cell's figures from what was recorded and the two snapshots.
fn result(
    mode: Mode,
    concurrency: usize,
    plan: &Plan,
    start: &Snapshot,
    end: &Snapshot,
    rss_reset: bool,
    embedded: bool,
) -> CellResult {
    let tally = plan.recorder.total();
    let requests = tally.latencies.len();
    let secs = end.at.duration_since(start.at).as_secs_f64().max(1e-9);
    let cpu = end.cpu.saturating_sub(start.cpu);
    let server_cpu = end.server_cpu.saturating_sub(start.server_cpu);
    let client_cpu = cpu.saturating_sub(server_cpu);
    let client_connects = end.client_connects.saturating_sub(start.client_connects);
    let connects = match embedded {
        true => end.accepts.saturating_sub(start.accepts),
        false => client_connects,
    };
    let served = end.served.saturating_sub(start.served);
    let server_hold_us = (embedded && served > 0)
        .then(|| end.held.saturating_sub(start.held).as_secs_f64() * 1e6 / served as f64);
    let started = plan.started.load(Ordering::Relaxed);
    let per_request = |value: f64| match requests {
        0 => 0.0,
        n => value / n as f64,
    };
    let latency = |quantile: f64| match requests {
        0 => 0,
        _ => tally.latencies.value_at_quantile(quantile),
    };
    let qps = requests as f64 / secs;
    CellResult {
        mode: mode.name(),
        concurrency,
        requests,
        duration_s: secs,
        qps,
        avg_us: if requests == 0 {
            0.0
        } else {
            tally.latencies.mean()
        },
        p50_us: latency(0.5),
        p99_us: latency(0.99),
        max_us: latency(1.0),
        cpu_pct: cpu.as_secs_f64() / secs * 100.0,
        client_cpu_pct: client_cpu.as_secs_f64() / secs * 100.0,
        cpu_us_per_req: per_request(client_cpu.as_secs_f64() * 1e6),
        rss_mb: sys::peak_rss_mib(),
        rss_scope: if rss_reset { "cell" } else { "process" },
        connects,
        client_connects,
        reuse_rate: if started == 0 {
            0.0
        } else {
            (1.0 - connects as f64 / started as f64).max(0.0)
        },
        errors: tally.errors(),
        timeouts: tally.timeouts,
        desyncs: tally.desyncs,
        stalls: tally.stalls,
        first_error: tally.first_error,
        server_hold_us,
        rounds: 1,
        qps_rounds: vec![qps],
        qps_min: qps,
        qps_max: qps,
    }
}

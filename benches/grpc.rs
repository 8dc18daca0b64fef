//! Unary gRPC calls through each way a tonic client can reach one server
//! (group `grpc`, parameter: the number of concurrent tasks, 64, 256 and
//! 1,024), against the tonic test server of `tests/grpc_server/` with
//! `max_concurrent_streams = 100`:
//! - `ringpool`: `clients::grpc::Channel` over a `SharedPool` of at most 8
//!   connections;
//! - `tonic_channel`: one `tonic::transport::Channel` (one connection),
//!   what most users have;
//! - `tonic_balance`: 8 channels balanced by `Channel::balance_list`;
//! - `dedicated`: one channel (and connection) per task, the physical
//!   floor of the question "what do more connections buy".
//!
//! The server runs on its own 2-thread runtime; the client tasks on a
//! 2-thread runtime; on a 2-core machine they share the CPU. Criterion
//! reports the time per call over all tasks (the inverse of throughput);
//! after the group, each function's p50 and p99 call latency is printed
//! from a separate pass of 20 calls per task.

#[path = "../tests/grpc_server/mod.rs"]
#[allow(unreachable_pub)]
mod grpc_server;

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use grpc_server::{EchoClient, Options, Server};
use hdrhistogram::Histogram;
use ringpool::clients::grpc::Channel;
use ringpool::clients::h2::H2Manager;
use ringpool::shared::SharedPool;
use ringpool::tcp::Dialer;
use tokio::runtime::Runtime;
use tonic::Request;

const TASKS: [usize; 3] = [64, 256, 1024];
const CONNECTIONS: usize = 8;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The ways to reach the server: a channel for each task.
#[derive(Clone, Copy, Debug)]
enum Way {
    Ringpool,
    TonicChannel,
    TonicBalance,
    Dedicated,
}

impl Way {
    const ALL: [Way; 4] = [
        Way::Ringpool,
        Way::TonicChannel,
        Way::TonicBalance,
        Way::Dedicated,
    ];

    fn name(self) -> &'static str {
        match self {
            Way::Ringpool => "ringpool",
            Way::TonicChannel => "tonic_channel",
            Way::TonicBalance => "tonic_balance",
            Way::Dedicated => "dedicated",
        }
    }
}

/// One client per task, all made (and connected) before measuring.
enum Clients {
    Ringpool(Vec<EchoClient<Channel>>),
    Tonic(Vec<EchoClient<tonic::transport::Channel>>),
}

async fn clients(way: Way, address: std::net::SocketAddr, tasks: usize) -> Clients {
    let uri = format!("http://{address}");
    let endpoint = || tonic::transport::Endpoint::from_shared(uri.clone()).unwrap();
    match way {
        Way::Ringpool => {
            let pool = SharedPool::builder(H2Manager::new(Dialer::new(address).unwrap()))
                .max_size(CONNECTIONS)
                .build()
                .unwrap();
            let channel = Channel::new(pool).unwrap();
            Clients::Ringpool(
                (0..tasks)
                    .map(|_| EchoClient::new(channel.clone()))
                    .collect(),
            )
        }
        Way::TonicChannel => {
            let channel = endpoint().connect().await.unwrap();
            Clients::Tonic(
                (0..tasks)
                    .map(|_| EchoClient::new(channel.clone()))
                    .collect(),
            )
        }
        Way::TonicBalance => {
            let channel =
                tonic::transport::Channel::balance_list((0..CONNECTIONS).map(|_| endpoint()));
            Clients::Tonic(
                (0..tasks)
                    .map(|_| EchoClient::new(channel.clone()))
                    .collect(),
            )
        }
        Way::Dedicated => {
            let mut clients = Vec::with_capacity(tasks);
            for _ in 0..tasks {
                clients.push(EchoClient::new(endpoint().connect().await.unwrap()));
            }
            Clients::Tonic(clients)
        }
    }
}

/// Runs `calls` calls on each client at once; returns the elapsed time and
/// each call's latency in microseconds.
async fn run(clients: &Clients, calls: u64, record: bool) -> (Duration, Vec<u64>) {
    macro_rules! drive {
        ($clients:expr) => {{
            let started = Instant::now();
            let tasks: Vec<_> = $clients
                .iter()
                .cloned()
                .map(|mut client| {
                    tokio::spawn(async move {
                        let mut latencies = Vec::new();
                        for _ in 0..calls {
                            let call = Instant::now();
                            client.say(Request::new("ping".to_string())).await.unwrap();
                            if record {
                                latencies.push(call.elapsed().as_micros() as u64);
                            }
                        }
                        latencies
                    })
                })
                .collect();
            let mut latencies = Vec::new();
            for task in tasks {
                latencies.extend(task.await.unwrap());
            }
            (started.elapsed(), latencies)
        }};
    }
    match clients {
        Clients::Ringpool(clients) => drive!(clients),
        Clients::Tonic(clients) => drive!(clients),
    }
}

fn grpc(c: &mut Criterion) {
    let server = Server::start(Options {
        max_concurrent_streams: Some(100),
        ..Options::default()
    });
    let rt = runtime();
    let mut group = c.benchmark_group("grpc");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    let mut percentiles = Vec::new();
    for tasks in TASKS {
        for way in Way::ALL {
            let clients = rt.block_on(clients(way, server.address, tasks));
            group.bench_with_input(BenchmarkId::new(way.name(), tasks), &tasks, |b, &tasks| {
                b.iter_custom(|iters| {
                    let calls = iters.div_ceil(tasks as u64).max(1);
                    let (elapsed, _) = rt.block_on(run(&clients, calls, false));
                    // Criterion's unit is one call of all the tasks made.
                    elapsed.mul_f64(iters as f64 / (calls * tasks as u64) as f64)
                })
            });
            let (_, latencies) = rt.block_on(run(&clients, 20, true));
            let mut histogram = Histogram::<u64>::new(3).unwrap();
            for latency in latencies {
                histogram.record(latency.max(1)).unwrap();
            }
            percentiles.push((
                way.name(),
                tasks,
                histogram.value_at_quantile(0.5),
                histogram.value_at_quantile(0.99),
            ));
            drop(clients);
        }
    }
    group.finish();
    println!("\ngrpc call latency (separate pass, 20 calls per task):");
    for (name, tasks, p50, p99) in percentiles {
        println!("  {name:>14} {tasks:>5} tasks: p50 {p50:>7} us, p99 {p99:>7} us");
    }
}

criterion_group!(benches, grpc);
criterion_main!(benches);

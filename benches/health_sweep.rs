//! What a maintenance round costs with 1,000 and 10,000 idle connections,
//! by how idle connections are checked (`TcpOptions::idle_check`):
//! - `watch`: the io_uring idle watch; a round only reaps the connections
//!   whose poll reported them dead (nothing at all when none died);
//! - `poll_batched`: one `poll(2)` call over all of them, zero timeout;
//! - `syscall_each`: one non-blocking `MSG_PEEK` `recv` per connection;
//! - `uring_batched`: one io_uring submission of `MSG_PEEK` receives.
//!
//! Each measured iteration is one `Pool::run_maintenance` (with
//! `check_after` zero, so every idle connection is due for the sweeps).
//! Group `health_sweep`: 1 % of the connections were closed by the server
//! just before the round (untimed: the close, the watch's notice, and the
//! refill after the round). Group `health_sweep_none_dead`: none were.
//!
//! Then two measurements printed after criterion's:
//! - detection latency: from asking the server to close one idle
//!   connection to the pool having closed it and freed its slot, over
//!   1,000 closures, p50 and p99 (the request's own round trip through a
//!   pipe is included, so these are upper bounds);
//! - group `watch_checkout`: a get and drop of a connection that was
//!   watched (`watched`, the poll armed before each get), of one recycled
//!   before the watch's threshold (`recycled`) and with the watch off
//!   (`unwatched`, the floor).
//!
//! Connections are real loopback TCP connections, held open by a helper
//! process (this same binary, re-run with `RINGPOOL_HOLD=1`) that closes
//! some on request, so the client side alone counts against this process's
//! descriptor limit.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode};
use futures_executor::block_on;
use ringpool::Pool;
use ringpool::tcp::{IdleCheck, TcpManager, TcpOptions};

/// The helper: accepts connections and holds them; `close N` on stdin
/// closes N of them chosen at random and answers `closed`.
fn hold() {
    // A backlog deep enough that dials never wait for this thread to
    // accept (a full queue drops SYNs, which come back after a second).
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    socket.bind(&any.into()).unwrap();
    socket.listen(4096).unwrap();
    let listener: TcpListener = socket.into();
    println!("{}", listener.local_addr().unwrap());
    std::io::stdout().flush().unwrap();
    let held = Arc::new(Mutex::new(Vec::<TcpStream>::new()));
    let accepted = Arc::clone(&held);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            accepted.lock().unwrap().push(stream);
        }
    });
    let mut rng = fastrand::Rng::with_seed(3);
    for line in std::io::stdin().lines() {
        let Ok(line) = line else { return };
        if line == "forget" {
            held.lock().unwrap().clear();
            println!("closed");
            std::io::stdout().flush().unwrap();
            continue;
        }
        let Some(count) = line.strip_prefix("close ") else {
            return;
        };
        let count: usize = count.parse().unwrap();
        let mut held = held.lock().unwrap();
        for _ in 0..count.min(held.len()) {
            let index = rng.usize(..held.len());
            drop(held.swap_remove(index));
        }
        drop(held);
        println!("closed");
        std::io::stdout().flush().unwrap();
    }
}

struct Helper {
    addr: SocketAddr,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Helper {
    fn start() -> (Helper, std::process::Child) {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env("RINGPOOL_HOLD", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut output = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        output.read_line(&mut line).unwrap();
        let helper = Helper {
            addr: line.trim().parse().unwrap(),
            input: child.stdin.take().unwrap(),
            output,
        };
        (helper, child)
    }

    /// Closes every connection the server holds (those of a pool that is
    /// gone), so later closes hit live connections only.
    fn forget(&mut self) {
        writeln!(self.input, "forget").unwrap();
        let mut line = String::new();
        self.output.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "closed");
    }

    /// Closes `count` of the server's connections; returns once it has.
    fn close(&mut self, count: usize) {
        writeln!(self.input, "close {count}").unwrap();
        let mut line = String::new();
        self.output.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "closed");
    }
}

const STRATEGIES: [(&str, IdleCheck); 4] = [
    ("watch", IdleCheck::Watch),
    ("poll_batched", IdleCheck::Poll),
    ("syscall_each", IdleCheck::PerSocket),
    ("uring_batched", IdleCheck::IoUring),
];

fn manager(addr: SocketAddr, idle_check: IdleCheck) -> TcpManager {
    let mut options = TcpOptions::default();
    options.idle_check = idle_check;
    TcpManager::new(addr).unwrap().options(options)
}

fn wait_for(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "the pool never got there");
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// A pool of `count` idle connections; with the watch, all of them armed.
/// No `min_idle` (nor warm size): a round never dials, so it measures the
/// check alone.
fn pool_of(addr: SocketAddr, idle_check: IdleCheck, count: usize) -> Pool<TcpManager> {
    let pool = Pool::builder(manager(addr, idle_check))
        .max_size(count)
        .check_after(Duration::ZERO)
        .young_death_window(None)
        .idle_timeout(None)
        .max_lifetime(None)
        .build()
        .unwrap();
    fill(&pool, idle_check, count);
    pool
}

/// Dials what is missing to `count` idle connections (checking them all
/// out at once, then returning them), then waits for the watch to arm
/// them all.
fn fill(pool: &Pool<TcpManager>, idle_check: IdleCheck, count: usize) {
    let held: Vec<_> = (0..count).map(|_| pool.get_blocking().unwrap()).collect();
    drop(held);
    if idle_check == IdleCheck::Watch {
        wait_for(|| pool.manager().watched_connections() == count);
    }
}

fn rounds(c: &mut Criterion, helper: &mut Helper) {
    for (group_name, dead_share) in [("health_sweep", 100), ("health_sweep_none_dead", 0)] {
        let mut group = c.benchmark_group(group_name);
        group
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_millis(1))
            .measurement_time(Duration::from_millis(1));
        for count in [1_000usize, 10_000] {
            for (name, idle_check) in STRATEGIES {
                let pool = pool_of(helper.addr, idle_check, count);
                let dead = count.checked_div(dead_share).unwrap_or(0);
                group.bench_function(BenchmarkId::new(name, count), |b| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            if dead > 0 {
                                let seen = pool.manager().watch_deaths();
                                helper.close(dead);
                                if idle_check == IdleCheck::Watch {
                                    wait_for(|| {
                                        pool.manager().watch_deaths() >= seen + dead as u64
                                    });
                                }
                            }
                            let started = Instant::now();
                            block_on(pool.run_maintenance());
                            total += started.elapsed();
                            if dead > 0 {
                                fill(&pool, idle_check, count);
                            }
                        }
                        total
                    })
                });
                pool.close();
                block_on(pool.manager().wait_for_closes());
                helper.forget();
            }
        }
        group.finish();
    }
}

/// From asking the server to close one idle connection to the pool having
/// closed it and freed its slot, with the maintenance task running.
fn detection_latency(helper: &mut Helper) {
    const CLOSURES: usize = 1_000;
    const SIZE: usize = 64;
    let pool = Pool::builder(manager(helper.addr, IdleCheck::Watch))
        .max_size(SIZE)
        .min_idle(SIZE)
        .young_death_window(None)
        .build()
        .unwrap();
    block_on(pool.warm_up()).unwrap();
    wait_for(|| pool.manager().watched_connections() == SIZE);
    let maintenance = pool.spawn_maintenance_thread().unwrap();
    let mut latencies = Vec::with_capacity(CLOSURES);
    for _ in 0..CLOSURES {
        let closed_before = pool.stats().closed.hangup;
        let started = Instant::now();
        helper.close(1);
        while pool.stats().closed.hangup == closed_before || pool.status().size == SIZE {
            std::hint::spin_loop();
            assert!(started.elapsed() < Duration::from_secs(10), "never seen");
        }
        latencies.push(started.elapsed());
        // Refilled (min_idle) and armed again before the next one.
        wait_for(|| pool.status().idle == SIZE && pool.manager().watched_connections() == SIZE);
    }
    latencies.sort();
    let at = |share: f64| latencies[((CLOSURES as f64 * share) as usize).min(CLOSURES - 1)];
    println!(
        "idle_watch_detection/{CLOSURES}: p50 {:?}, p99 {:?}, max {:?} (server close to slot freed, \
         pipe round trip included)",
        at(0.50),
        at(0.99),
        latencies[CLOSURES - 1]
    );
    pool.close();
    maintenance.join().unwrap();
    block_on(pool.manager().wait_for_closes());
    helper.forget();
}

/// What the watch adds to a checkout and return.
fn checkout(c: &mut Criterion, helper: &mut Helper) {
    let mut group = c.benchmark_group("watch_checkout");
    let unwatched = pool_of(helper.addr, IdleCheck::Poll, 1);
    group.bench_function("unwatched", |b| {
        b.iter(|| drop(unwatched.get_blocking().unwrap()))
    });
    let recycled = pool_of(helper.addr, IdleCheck::Watch, 1);
    group.bench_function("recycled", |b| {
        b.iter(|| drop(recycled.get_blocking().unwrap()))
    });
    let mut options = TcpOptions::default();
    options.idle_check = IdleCheck::Watch;
    options.watch_after = Duration::ZERO;
    let watched = Pool::builder(TcpManager::new(helper.addr).unwrap().options(options))
        .max_size(1)
        .young_death_window(None)
        .check_after(Duration::from_secs(3600))
        .build()
        .unwrap();
    drop(watched.get_blocking().unwrap());
    group.bench_function("watched", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // Armed, with no older poll left, before each timed get.
                wait_for(|| watched.manager().watched_connections() == 1);
                let started = Instant::now();
                drop(watched.get_blocking().unwrap());
                total += started.elapsed();
            }
            total
        })
    });
    group.finish();
    for pool in [unwatched, recycled, watched] {
        pool.close();
        block_on(pool.manager().wait_for_closes());
    }
    helper.forget();
}

fn main() {
    if std::env::var_os("RINGPOOL_HOLD").is_some() {
        return hold();
    }
    let (mut helper, mut child) = Helper::start();
    let mut criterion = Criterion::default().without_plots().configure_from_args();
    rounds(&mut criterion, &mut helper);
    checkout(&mut criterion, &mut helper);
    criterion.final_summary();
    if criterion_filter_allows("idle_watch_detection") {
        detection_latency(&mut helper);
    }
    drop(helper);
    let _ = child.wait();
}

/// Whether a filter given on the command line (as to criterion) lets
/// `name` run; no filter lets everything run.
fn criterion_filter_allows(name: &str) -> bool {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    args.is_empty() || args.iter().any(|filter| name.contains(filter.as_str()))
}

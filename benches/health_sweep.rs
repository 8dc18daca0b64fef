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
//! Then:
//! - group `watch_checkout`: a get and drop of a connection that was
//!   recycled before the watch's threshold (`recycled`) and with the watch
//!   off (`unwatched`, the floor); and the get alone of a connection whose
//!   poll is armed (`watched`, so the get disarms it) against the same get
//!   with the watch off (`watched_floor`);
//! - detection latency, printed after criterion's summary: from asking the
//!   server to close one idle connection to the pool closing it (its slot
//!   is freed right after), over 1,000 closures, p50 and p99; the request's
//!   round trip through a pipe to the helper is included, so these are
//!   upper bounds.
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

/// When the pool last closed a connection as `Hangup`: a `tracing` layer
/// stamps the pool's own close event, in the thread that closes, so the
/// measuring thread can sleep instead of spinning on the pool's counters
/// (on two cores, a spinning reader delays the very threads it measures).
#[derive(Default)]
struct HangupStamp {
    at: Mutex<Option<Instant>>,
    changed: std::sync::Condvar,
}

struct StampLayer(Arc<HangupStamp>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for StampLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Reason(bool);
        impl tracing::field::Visit for Reason {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "reason" && format!("{value:?}") == "Hangup" {
                    self.0 = true;
                }
            }
        }
        let mut reason = Reason(false);
        event.record(&mut reason);
        if reason.0 {
            *self.0.at.lock().unwrap() = Some(Instant::now());
            self.0.changed.notify_all();
        }
    }
}

/// From asking the server to close one idle connection to the pool closing
/// it (its slot is freed right after), with the maintenance task running.
fn detection_latency(helper: &mut Helper) {
    use tracing_subscriber::layer::SubscriberExt;
    const CLOSURES: usize = 1_000;
    const SIZE: usize = 64;
    let stamp = Arc::new(HangupStamp::default());
    let subscriber = tracing_subscriber::registry().with(StampLayer(Arc::clone(&stamp)));
    let _default = tracing::subscriber::set_default(subscriber);
    let pool = Pool::builder(manager(helper.addr, IdleCheck::Watch))
        .max_size(SIZE)
        .min_idle(SIZE)
        .young_death_window(None)
        .build()
        .unwrap();
    block_on(pool.warm_up()).unwrap();
    wait_for(|| pool.manager().watched_connections() == SIZE);
    // The maintenance thread must see the same subscriber: it is made here.
    let maintenance = {
        let dispatch = tracing::dispatcher::get_default(|current| current.clone());
        let task = pool.maintenance();
        std::thread::spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || block_on(task));
        })
    };
    let mut latencies = Vec::with_capacity(CLOSURES);
    for _ in 0..CLOSURES {
        *stamp.at.lock().unwrap() = None;
        let started = Instant::now();
        helper.close(1);
        let closed = stamp.at.lock().unwrap();
        let (closed, timeout) = stamp
            .changed
            .wait_timeout_while(closed, Duration::from_secs(10), |at| at.is_none())
            .unwrap();
        assert!(!timeout.timed_out(), "never seen");
        latencies.push(closed.expect("stamped") - started);
        drop(closed);
        // Refilled (min_idle) and armed again before the next one.
        wait_for(|| pool.status().idle == SIZE && pool.manager().watched_connections() == SIZE);
    }
    latencies.sort();
    let at = |share: f64| latencies[((CLOSURES as f64 * share) as usize).min(CLOSURES - 1)];
    println!(
        "idle_watch_detection/{CLOSURES}: p50 {:?}, p99 {:?}, max {:?} (asking the server to close \
         to the pool closing; the request's pipe round trip to the server included)",
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
    // Default settings: a connection reused at once takes the checkout's
    // quick path, with no peek.
    let checkout_pool = |idle_check| {
        let pool = Pool::builder(manager(helper.addr, idle_check))
            .max_size(1)
            .young_death_window(None)
            .build()
            .unwrap();
        drop(pool.get_blocking().unwrap());
        pool
    };
    let unwatched = checkout_pool(IdleCheck::Poll);
    group.bench_function("unwatched", |b| {
        b.iter(|| drop(unwatched.get_blocking().unwrap()))
    });
    let recycled = checkout_pool(IdleCheck::Watch);
    group.bench_function("recycled", |b| {
        b.iter(|| drop(recycled.get_blocking().unwrap()))
    });
    // Armed as soon as it goes idle; only the get is timed (with `zero`
    // the return wakes the ring thread, which a pool with the default
    // threshold does not pay: its return is `recycled`'s).
    let mut options = TcpOptions::default();
    options.idle_check = IdleCheck::Watch;
    options.watch_after = Duration::ZERO;
    let watched = Pool::builder(TcpManager::new(helper.addr).unwrap().options(options))
        .max_size(1)
        .young_death_window(None)
        .build()
        .unwrap();
    drop(watched.get_blocking().unwrap());
    let spin_until = |done: &dyn Fn() -> bool| {
        while !done() {
            std::thread::yield_now();
        }
    };
    group.bench_function("watched", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // Armed, with no older poll left, before each timed get.
                spin_until(&|| {
                    watched.manager().watched_connections() == 1
                        && watched.manager().watch_polls() == 1
                });
                let started = Instant::now();
                let conn = watched.get_blocking().unwrap();
                total += started.elapsed();
                drop(conn);
            }
            total
        })
    });
    // The same timed get with the watch off: the floor `watched` is read
    // against.
    group.bench_function("watched_floor", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                let conn = unwatched.get_blocking().unwrap();
                total += started.elapsed();
                drop(conn);
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

/// Whether a filter given on the command line (as to criterion; here
/// alternatives split on `|`, matched as substrings) lets `name` run; no
/// filter lets everything run.
fn criterion_filter_allows(name: &str) -> bool {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    args.is_empty()
        || args
            .iter()
            .flat_map(|filter| filter.split('|'))
            .any(|part| name.contains(part))
}

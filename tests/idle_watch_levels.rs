//! Descriptors, sockets and ring entries stay level over 10,000 cycles of
//! the idle watch arming and disarming, with connections dying at random
//! (reset by the server), discarded and detached. It counts the process's
//! open descriptors, so it is the only test in this binary.

mod loopback;

use std::time::Duration;

use loopback::{Server, open_fds, request, wait_for};
use ringpool::Pool;
use ringpool::tcp::{IdleCheck, TcpManager, TcpOptions};

/// Established TCP connections whose remote end is `port` on loopback:
/// a socket the kernel still holds open (a poll not removed keeps one
/// alive after its descriptor is closed) shows here.
fn established_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let remote = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields[2] == remote && fields[3] == "01"
        })
        .count()
}

#[test]
fn descriptors_sockets_and_ring_entries_stay_level_over_ten_thousand_watch_cycles() {
    ringpool::probe_io_uring().unwrap();
    // The ring thread's own descriptors are made once: make them first.
    drop(TcpManager::new("127.0.0.1:9").unwrap());
    let before = open_fds();
    let server = Server::start();
    let mut options = TcpOptions::default();
    options.idle_check = IdleCheck::Watch;
    options.watch_after = Duration::ZERO;
    let manager = TcpManager::new(server.addr).unwrap().options(options);
    let pool = Pool::builder(manager)
        .max_size(4)
        .young_death_window(None)
        .check_after(Duration::from_secs(3600))
        .build()
        .unwrap();
    let maintenance = pool.spawn_maintenance_thread().unwrap();
    let mut rng = fastrand::Rng::with_seed(12);
    let (mut detached, mut failed) = (0, 0);
    for round in 0..10_000 {
        match rng.u8(0..50) {
            0 => server.reset_all(),
            1 => pool.get_blocking().unwrap().discard(),
            2 => {
                // Out of the pool, closed by its new owner: the watch's
                // poll must not keep the socket open.
                drop(pool.get_blocking().unwrap().detach().into_std());
                detached += 1;
            }
            3 => std::thread::yield_now(), // let the ring arm what went idle
            _ => {
                let held: Vec<_> = (0..rng.usize(1..=4))
                    .map(|_| pool.get_blocking().unwrap())
                    .collect();
                for mut conn in held {
                    if request(&mut *conn).is_err() {
                        // Reset while in use: only the user can see that.
                        failed += 1;
                        conn.discard();
                    }
                }
            }
        }
        if round % 1_000 == 0 {
            assert!(pool.status().size <= 4);
        }
    }
    let stats = pool.stats();
    eprintln!(
        "{detached} detached, {failed} failed in use; watch saw {} die; {stats:?}",
        pool.manager().watch_deaths()
    );
    assert!(
        pool.manager().watch_deaths() > 0,
        "deaths were seen by the watch"
    );
    assert_eq!(stats.closed.hangup, pool.manager().watch_deaths());
    pool.close();
    maintenance.join().unwrap();
    futures_executor::block_on(pool.manager().wait_for_closes());
    // Every poll the watch armed is over: none left in the ring.
    wait_for("every poll gone", || {
        pool.manager().watched_connections() == 0
    });
    drop(pool);
    let port = server.addr.port();
    wait_for("every client socket closed", || established_to(port) == 0);
    server.stop();
    let links = || {
        let mut links: Vec<String> = std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .filter_map(|entry| std::fs::read_link(entry.path()).ok())
            .map(|link| link.display().to_string())
            .collect();
        links.sort();
        links
    };
    assert_eq!(
        open_fds(),
        before,
        "descriptors before and after: {:?}",
        links()
    );
}

//! The multi-endpoint pool against loopback backends: balance, failover
//! past a dead endpoint, ejection and its probe, a backend killed mid-run,
//! removal and drain, the global cap, discovery, and both TCP managers.

mod backends;

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backends::{Backend, dead_addr, wait_for};
use ringpool::multi::{DnsSource, Endpoint, MultiBuilder, MultiError, MultiPool, Selection};
use ringpool::tcp::{TcpManager, TokioConn, TokioTcpManager};
use ringpool::{Clock, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One echo round trip.
async fn request(conn: &mut TokioConn) -> io::Result<()> {
    let mut buf = [42u8; 64];
    conn.write_all(&buf).await?;
    conn.read_exact(&mut buf).await?;
    assert_eq!(buf, [42u8; 64], "the reply belongs to this request");
    Ok(())
}

/// A tokio pool over `addrs`, checking every connection at checkout.
fn builder(addrs: &[SocketAddr]) -> MultiBuilder<TokioTcpManager> {
    let mut config = Config::default();
    config.max_size = 4;
    config.check_after = Duration::ZERO;
    MultiPool::builder(|endpoint: &Endpoint| TokioTcpManager::new(endpoint.as_str()))
        .endpoint_config(config)
        .endpoints(addrs.iter().copied())
}

/// Nothing checked out, and the global count, the sub-pools' sizes and
/// the connections open at the backends all agree.
fn assert_quiescent(pool: &MultiPool<TokioTcpManager>, backends: &[&Backend]) {
    let endpoints = pool.endpoints();
    for endpoint in &endpoints {
        assert_eq!(endpoint.status.in_use, 0, "{endpoint:?}");
        assert_eq!(endpoint.status.size, endpoint.status.idle, "{endpoint:?}");
    }
    let sizes: usize = endpoints.iter().map(|e| e.status.size).sum();
    assert_eq!(
        pool.total_size(),
        sizes,
        "the global count is the sub-pools' sizes"
    );
    wait_for(
        "the backends to see every connection the pool holds",
        || backends.iter().map(|b| b.open()).sum::<usize>() == sizes,
    );
}

/// Runs `tasks` tasks of `each` requests; returns how many requests each
/// endpoint served, by the guards' word.
async fn run(
    pool: &MultiPool<TokioTcpManager>,
    tasks: usize,
    each: usize,
) -> BTreeMap<Endpoint, u64> {
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut seen = BTreeMap::new();
                for _ in 0..each {
                    let mut conn = pool.get().await.expect("a get succeeds");
                    request(&mut conn).await.expect("a request succeeds");
                    *seen.entry(conn.endpoint().clone()).or_insert(0) += 1;
                }
                seen
            })
        })
        .collect();
    let mut seen = BTreeMap::new();
    for handle in handles {
        for (endpoint, count) in handle.await.unwrap() {
            *seen.entry(endpoint).or_insert(0) += count;
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_balances_requests_within_ten_percent() {
    let backends = [Backend::start(), Backend::start(), Backend::start()];
    let addrs: Vec<_> = backends.iter().map(|b| b.addr).collect();
    let pool = builder(&addrs)
        .selection(Selection::RoundRobin)
        .build()
        .unwrap();
    let seen = run(&pool, 4, 150).await;
    let mean = 600.0 / 3.0;
    for backend in &backends {
        let served = backend.served() as f64;
        assert!(
            (served - mean).abs() <= mean * 0.10,
            "{} served {served}, mean {mean}: {seen:?}",
            backend.addr
        );
        assert_eq!(
            seen[&Endpoint::from(backend.addr)],
            backend.served(),
            "the guard names the endpoint that served it"
        );
    }
    assert_quiescent(&pool, &backends.iter().collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_in_use_sends_gets_to_the_endpoint_with_connections_free() {
    let backends = [Backend::start(), Backend::start()];
    let addrs: Vec<_> = backends.iter().map(|b| b.addr).collect();
    let pool = builder(&addrs)
        .selection(Selection::LeastInUse)
        .build()
        .unwrap();
    let held = pool.get().await.unwrap();
    for _ in 0..20 {
        let mut conn = pool.get().await.unwrap();
        assert_ne!(
            conn.endpoint(),
            held.endpoint(),
            "the other endpoint has none in use"
        );
        request(&mut conn).await.unwrap();
    }
    drop(held);
    assert_quiescent(&pool, &backends.iter().collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_fails_over_past_a_dead_endpoint_which_is_then_ejected() {
    let live = Backend::start();
    let dead = dead_addr();
    let (clock, _mock) = Clock::mock();
    let pool = builder(&[dead, live.addr])
        .clock(clock)
        .eject_after(3)
        .build()
        .unwrap();
    for _ in 0..10 {
        let mut conn = pool
            .get()
            .await
            .expect("the live endpoint serves every get");
        assert_eq!(conn.endpoint(), &Endpoint::from(live.addr));
        request(&mut conn).await.unwrap();
    }
    let dead_status = &pool.endpoints()[0];
    assert_eq!(dead_status.endpoint, Endpoint::from(dead));
    assert_eq!(dead_status.ejections, 1, "{dead_status:?}");
    assert!(dead_status.ejected_for.is_some(), "{dead_status:?}");
    assert_eq!(dead_status.status.size, 0, "{dead_status:?}");
    assert_eq!(live.served(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ejected_endpoint_is_probed_and_returns_once_it_serves() {
    let live = Backend::start();
    let port_holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let revived_addr = port_holder.local_addr().unwrap();
    drop(port_holder); // nothing listens there yet
    let (clock, mock) = Clock::mock();
    let base = Duration::from_secs(1);
    let pool = builder(&[revived_addr, live.addr])
        .clock(clock)
        .eject_after(1)
        .ejection_time(base, Duration::from_secs(3))
        .build()
        .unwrap();
    let revived = Endpoint::from(revived_addr);
    let ejected_for = |pool: &MultiPool<TokioTcpManager>| pool.endpoints()[0].ejected_for;

    drop(pool.get().await.unwrap());
    assert_eq!(ejected_for(&pool), Some(base), "one failure ejects it");
    drop(pool.get().await.unwrap());
    assert_eq!(
        ejected_for(&pool),
        Some(base),
        "no traffic, no change, until due"
    );

    mock.advance(base);
    let conn = pool.get().await.expect("the failed probe fails over");
    assert_eq!(conn.endpoint(), &Endpoint::from(live.addr));
    drop(conn);
    assert_eq!(
        ejected_for(&pool),
        Some(2 * base),
        "a failed probe doubles the ejection"
    );

    let backend = Backend::start_on(TcpListener::bind(revived_addr).unwrap());
    mock.advance(2 * base);
    // Within one turn of the rotation, a get reaches it and is its probe.
    let (mut first, mut second) = (pool.get().await.unwrap(), pool.get().await.unwrap());
    assert!(first.endpoint() == &revived || second.endpoint() == &revived);
    request(&mut first).await.unwrap();
    request(&mut second).await.unwrap();
    drop((first, second));
    assert_eq!(ejected_for(&pool), None, "back in rotation");
    let seen = run(&pool, 1, 10).await;
    assert_eq!(seen.get(&revived), Some(&5), "and gets its share: {seen:?}");
    assert_quiescent(&pool, &[&live, &backend]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_endpoint_ejected_a_get_fails_saying_so() {
    let (clock, _mock) = Clock::mock();
    let pool = builder(&[dead_addr()])
        .clock(clock)
        .eject_after(1)
        .max_ejected_share(1.0) // a lone endpoint is kept in rotation otherwise
        .build()
        .unwrap();
    match pool.get().await {
        Err(MultiError::Failed {
            tried: 1, error, ..
        }) => {
            assert!(
                error.connect_error().is_some(),
                "the refusal is the source: {error}"
            );
        }
        other => panic!("expected the endpoint's failure, got {other:?}"),
    }
    let error = pool.get().await.unwrap_err();
    assert!(
        matches!(error, MultiError::AllEjected { ejected: 1, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("ejected"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_killed_mid_run_is_ejected_and_no_get_fails_or_reaches_it() {
    let mut backends = [Backend::start(), Backend::start(), Backend::start()];
    let addrs: Vec<_> = backends.iter().map(|b| b.addr).collect();
    let killed = Endpoint::from(addrs[1]);
    // Ejections that never end during the test, on the real clock: on a
    // mock clock nobody moves, a get that must wait out a dial backoff (or
    // a paced dial) at the killed endpoint would wait forever.
    let hour = Duration::from_secs(3600);
    let pool = builder(&addrs)
        .ejection_time(hour, hour)
        .eject_after(2)
        .build()
        .unwrap();
    let after_kill = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (pool, after_kill, done) =
                (pool.clone(), Arc::clone(&after_kill), Arc::clone(&done));
            let killed = killed.clone();
            tokio::spawn(async move {
                let mut reached_killed_after_kill = 0;
                for _ in 0..400 {
                    let after = after_kill.load(Ordering::SeqCst);
                    let mut conn = pool.get().await.expect("no get fails while others are up");
                    match request(&mut conn).await {
                        Ok(()) if after && conn.endpoint() == &killed => {
                            reached_killed_after_kill += 1
                        }
                        Ok(()) => {}
                        // Checked out before the kill ended: the kill cut it.
                        Err(_) if !after => conn.discard(),
                        Err(error) => panic!(
                            "a request after the kill failed on {}: {error}",
                            conn.endpoint()
                        ),
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                }
                reached_killed_after_kill
            })
        })
        .collect();
    wait_for("the run to be under way", || {
        done.load(Ordering::SeqCst) >= 300
    });
    backends[1].kill();
    after_kill.store(true, Ordering::SeqCst);
    let served_before = backends[1].served();
    for task in tasks {
        assert_eq!(
            task.await.unwrap(),
            0,
            "no connection to the killed backend after the kill"
        );
    }
    assert!(done.load(Ordering::SeqCst) == 1600);
    assert_eq!(
        backends[1].served(),
        served_before,
        "nothing reached it after the kill"
    );
    let status = pool
        .endpoints()
        .into_iter()
        .find(|e| e.endpoint == killed)
        .unwrap();
    assert!(
        status.ejected_for.is_some() && status.ejections == 1,
        "{status:?}"
    );
    assert_eq!(status.status.size, 0, "{status:?}");
    assert_quiescent(&pool, &backends.iter().collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_endpoint_gets_nothing_new_and_ends_with_zero_connections() {
    let backends = [Backend::start(), Backend::start()];
    let addrs: Vec<_> = backends.iter().map(|b| b.addr).collect();
    let pool = builder(&addrs).build().unwrap();
    run(&pool, 2, 20).await;
    assert!(backends[1].open() > 0, "it had connections");
    let mut held = pool.get().await.unwrap();
    while held.endpoint() != &Endpoint::from(addrs[1]) {
        held = pool.get().await.unwrap();
    }
    let change = pool.set_endpoints([addrs[0]]).unwrap();
    assert_eq!(change.removed, vec![Endpoint::from(addrs[1])]);
    wait_for("its idle connections to close", || backends[1].open() == 1);
    let served = backends[1].served();
    let seen = run(&pool, 2, 20).await;
    assert_eq!(
        seen.keys().collect::<Vec<_>>(),
        vec![&Endpoint::from(addrs[0])]
    );
    request(&mut held)
        .await
        .expect("the connection in use keeps working");
    assert_eq!(backends[1].served(), served + 1);
    drop(held);
    wait_for("the last connection to close as it returns", || {
        backends[1].open() == 0
    });
    assert_quiescent(&pool, &backends.iter().collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_cap_closes_an_idle_connection_elsewhere_or_waits_for_one() {
    let backends = [Backend::start(), Backend::start(), Backend::start()];
    let addrs: Vec<_> = backends.iter().map(|b| b.addr).collect();
    let pool = builder(&addrs).max_total(2).build().unwrap();
    let (a, b) = (pool.get().await.unwrap(), pool.get().await.unwrap());
    assert_eq!(
        (a.endpoint(), b.endpoint()),
        (&Endpoint::from(addrs[0]), &Endpoint::from(addrs[1]))
    );
    drop((a, b));
    assert_eq!(pool.total_size(), 2);

    // Full, with idle connections at the other two: one of them makes room.
    let c = pool.get().await.unwrap();
    assert_eq!(c.endpoint(), &Endpoint::from(addrs[2]));
    assert_eq!(pool.total_size(), 2);
    wait_for("an idle connection elsewhere to close", || {
        backends[0].open() + backends[1].open() == 1
    });

    // Full, with nothing idle: the get waits until one closes.
    let a = pool.get().await.unwrap(); // the one idle connection left
    let waiting = tokio::spawn({
        let pool = pool.clone();
        async move { pool.get().await.map(|conn| conn.endpoint().clone()) }
    });
    let still = tokio::time::timeout(Duration::from_millis(50), async {
        while !waiting.is_finished() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(still.is_err(), "no room: the get waits");
    assert_eq!(pool.total_size(), 2);
    drop(a); // closed on its return, to make room
    waiting
        .await
        .unwrap()
        .expect("served once a connection closed");
    assert_eq!(pool.total_size(), 2, "never above the cap");
    drop(c);
    assert_quiescent(&pool, &backends.iter().collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_discovery_follows_a_changing_answer() {
    let backends = [Backend::start(), Backend::start(), Backend::start()];
    let answer = Arc::new(Mutex::new(Ok(vec![backends[0].addr, backends[1].addr])));
    let resolver = {
        let answer = Arc::clone(&answer);
        move |name: &str| {
            assert_eq!(name, "backends.svc:7000");
            match &*answer.lock().unwrap() {
                Ok(addrs) => Ok(addrs.clone()),
                Err(kind) => Err(io::Error::from(*kind)),
            }
        }
    };
    let pool = builder(&[]).build().unwrap();
    assert!(matches!(pool.get().await, Err(MultiError::NoEndpoints)));
    let endpoints = |pool: &MultiPool<TokioTcpManager>| {
        pool.endpoints()
            .into_iter()
            .map(|e| e.endpoint)
            .collect::<Vec<_>>()
    };
    let wanted = |addrs: &[SocketAddr]| {
        let mut addrs: Vec<Endpoint> = addrs.iter().copied().map(Endpoint::from).collect();
        addrs.sort();
        addrs
    };
    let discovery = pool
        .discover(
            DnsSource::with_resolver("backends.svc:7000", resolver.clone()),
            Duration::from_millis(5),
        )
        .unwrap();
    wait_for("the first answer", || {
        endpoints(&pool) == wanted(&[backends[0].addr, backends[1].addr])
    });
    run(&pool, 2, 10).await;

    *answer.lock().unwrap() = Ok(vec![backends[2].addr, backends[1].addr]);
    wait_for("the new answer", || {
        let mut now = endpoints(&pool);
        now.sort();
        now == wanted(&[backends[1].addr, backends[2].addr])
    });
    let seen = run(&pool, 2, 10).await;
    assert!(
        !seen.contains_key(&Endpoint::from(backends[0].addr)),
        "{seen:?}"
    );
    wait_for("the dropped backend to lose every connection", || {
        backends[0].open() == 0
    });
    discovery.stop();

    // A failed or empty answer keeps the set.
    let mut source = DnsSource::with_resolver("backends.svc:7000", resolver);
    *answer.lock().unwrap() = Err(io::ErrorKind::TimedOut);
    assert!(pool.refresh(&mut source).is_err());
    *answer.lock().unwrap() = Ok(Vec::new());
    assert!(pool.refresh(&mut source).is_err());
    assert_eq!(endpoints(&pool).len(), 2);
    assert_quiescent(&pool, &backends.iter().collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_alone_ejects_a_backend_that_accepts_but_never_answers() {
    let (good, hung) = (Backend::start(), Backend::start());
    hung.hang();
    let mut config = Config::default();
    config.max_size = 2;
    config.min_idle = 1;
    config.check_after = Duration::ZERO;
    config.maintenance_interval = Duration::from_millis(20);
    config.ping_timeout = Duration::from_millis(300);
    let message = [42u8; 64];
    let pool = MultiPool::builder(move |endpoint: &Endpoint| {
        TokioTcpManager::new(endpoint.as_str()).ping_with(message, message)
    })
    .endpoint_config(config)
    .endpoints([good.addr, hung.addr])
    .eject_after(3)
    .build()
    .unwrap();
    let maintenance = tokio::spawn(pool.maintenance());
    let hung_endpoint = Endpoint::from(hung.addr);
    let status = |endpoint: &Endpoint| {
        pool.endpoints()
            .into_iter()
            .find(|status| &status.endpoint == endpoint)
            .unwrap()
    };
    wait_for("health checks to eject the hung backend", || {
        status(&hung_endpoint).ejected_for.is_some()
    });
    // The ejection happens as the third timed-out ping is dropped, a moment
    // before the sub-pool counts that check.
    wait_for("the third failed check to be counted", || {
        status(&hung_endpoint).stats.health_check_failures >= 3
    });
    let (hung_status, good_status) = (status(&hung_endpoint), status(&Endpoint::from(good.addr)));
    assert_eq!(hung_status.ejections, 1, "{hung_status:?}");
    for endpoint in [&hung_status, &good_status] {
        let stats = &endpoint.stats;
        assert_eq!(stats.reused + stats.dialed, 0, "no get asked: {endpoint:?}");
    }
    assert_eq!(good_status.ejected_for, None, "{good_status:?}");
    assert!(good.served() >= 1, "the good backend answered its pings");
    assert_eq!(hung.served(), 0);
    pool.close();
    tokio::time::timeout(Duration::from_secs(10), maintenance)
        .await
        .expect("maintenance ends at close")
        .unwrap();
}

#[test]
fn the_io_uring_manager_serves_from_every_endpoint() {
    let backends = [Backend::start(), Backend::start()];
    let pool = MultiPool::builder(|endpoint: &Endpoint| {
        TcpManager::with_best_backend(endpoint)
            .expect("a valid target")
            .0
    })
    .endpoints(backends.iter().map(|b| b.addr))
    .build()
    .unwrap();
    for _ in 0..10 {
        let conn = pool.get_blocking().unwrap();
        let mut stream = conn.stream();
        let mut buf = [7u8; 64];
        stream.write_all(&buf).unwrap();
        stream.read_exact(&mut buf).unwrap();
    }
    assert_eq!(
        backends.iter().map(Backend::served).collect::<Vec<_>>(),
        [5, 5]
    );
}

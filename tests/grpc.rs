//! `clients::grpc` against a real tonic server (real HTTP/2, on loopback):
//! calls spread over as many connections as the server's stream limit
//! needs, a server that closes connections (`GOAWAY`) under load costs no
//! call, a killed server fails the calls in flight with a status that says
//! so and later calls recover, deadlines hold, and a refused stream is
//! sent again on another connection.

mod grpc_server;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use grpc_server::{EchoClient, Options, Server};
use ringpool::clients::grpc::Channel;
use ringpool::clients::h2::H2Manager;
use ringpool::shared::SharedPool;
use ringpool::tcp::Dialer;
use tonic::{Code, Request};

fn channel(address: std::net::SocketAddr, max_size: usize) -> Channel {
    let manager = H2Manager::new(Dialer::new(address).unwrap());
    let pool = SharedPool::builder(manager)
        .max_size(max_size)
        .acquire_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    Channel::new(pool).unwrap()
}

/// Waits for `condition`, polling, for at most 10 s.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < Duration::from_secs(10), "never: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_calls_at_once_spread_over_the_connections_the_stream_limit_needs() {
    let server = Server::start(Options {
        max_concurrent_streams: Some(100),
        ..Options::default()
    });
    let channel = channel(server.address, 16);
    let calls: Vec<_> = (0..1000)
        .map(|n| {
            let mut client = EchoClient::new(channel.clone());
            tokio::spawn(async move {
                client
                    .say(Request::new(format!("sleep:300:{n}")))
                    .await
                    .map(|reply| reply.into_inner())
            })
        })
        .collect();
    let mut failed = Vec::new();
    for (n, call) in calls.into_iter().enumerate() {
        match call.await.unwrap() {
            Ok(reply) => assert_eq!(reply, n.to_string()),
            Err(status) => failed.push(status),
        }
    }
    assert!(
        failed.is_empty(),
        "{} calls failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
    let stats = channel.pool().stats();
    assert!(
        stats.connects <= 10,
        "at most ceil(1000 / 100) connections: {stats:?}"
    );
    let shares = server.seen.shares();
    assert!(
        shares.len() <= 10,
        "the server saw {} connections",
        shares.len()
    );
    let mean = 1000.0 / shares.len() as f64;
    let most = *shares.iter().max().unwrap() as f64;
    assert!(most <= 1.2 * mean, "uneven: {shares:?} (mean {mean})");
    assert!(
        server.seen.most_in_flight.load(Ordering::SeqCst) > 100,
        "more than one connection's worth ran at once"
    );
    assert_eq!((stats.in_flight, stats.waiting), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_waves_spread_evenly_over_the_connections() {
    let server = Server::start(Options {
        max_concurrent_streams: Some(8),
        ..Options::default()
    });
    let channel = Channel::new(
        SharedPool::builder(H2Manager::new(Dialer::new(server.address).unwrap()))
            .max_size(4)
            .max_streams(8)
            .build()
            .unwrap(),
    )
    .unwrap();
    let workers: Vec<_> = (0..32)
        .map(|worker| {
            let mut client = EchoClient::new(channel.clone());
            tokio::spawn(async move {
                for n in 0..25 {
                    let delay = (worker + n) % 5;
                    let reply = client
                        .say(Request::new(format!("sleep:{delay}:{n}")))
                        .await
                        .expect("every call succeeds");
                    assert_eq!(reply.into_inner(), n.to_string());
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let shares = server.seen.shares();
    assert_eq!(
        shares.len(),
        4,
        "32 callers at 8 streams a connection: {shares:?}"
    );
    let mean = 800.0 / 4.0;
    assert!(
        shares.iter().all(|&share| share as f64 <= 1.2 * mean),
        "no connection's share above 1.2x the mean: {shares:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_the_server_closes_under_load_cost_no_call() {
    // The server closes every connection at 300 ms of age (GOAWAY, then
    // the streams in flight finish) while 48 callers keep calling.
    let server = Server::start(Options {
        max_concurrent_streams: Some(16),
        max_connection_age: Some(Duration::from_millis(300)),
        ..Options::default()
    });
    let channel = channel(server.address, 8);
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..48)
        .map(|_| {
            let mut client = EchoClient::new(channel.clone());
            let (stop, calls) = (Arc::clone(&stop), Arc::clone(&calls));
            tokio::spawn(async move {
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match client.say(Request::new("sleep:20:x".to_string())).await {
                        Ok(_) => {}
                        Err(status) => failures.push(status),
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                }
                failures
            })
        })
        .collect();
    // Until the server has closed a few generations of connections.
    eventually("connections closed by the server under load", || {
        server.seen.accepted.load(Ordering::SeqCst) >= 12
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for worker in workers {
        failures.extend(worker.await.unwrap());
    }
    let total = calls.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "{} of {total} calls failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    let stats = channel.pool().stats();
    assert!(
        stats.drained_closed >= 4,
        "the pool saw the GOAWAYs: {stats:?}"
    );
    // Every drained connection went after its last stream: the server's
    // open connections are the pool's open ones alone.
    eventually("drained connections closed", || {
        let stats = channel.pool().stats();
        stats.draining == 0 && server.seen.open.load(Ordering::SeqCst) <= stats.open
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_fails_calls_in_flight_clearly_and_calls_recover_after_it_returns() {
    let server = Server::start(Options::default());
    let address = server.address;
    let channel = channel(address, 4);
    let mut client = EchoClient::new(channel.clone());
    client.say(Request::new("warm".into())).await.unwrap();
    let in_flight: Vec<_> = (0..20)
        .map(|_| {
            let mut client = EchoClient::new(channel.clone());
            tokio::spawn(async move { client.say(Request::new("sleep:5000:late".into())).await })
        })
        .collect();
    eventually("20 calls in flight at the server", || {
        server.seen.in_flight.load(Ordering::SeqCst) == 20
    })
    .await;
    server.kill();
    for call in in_flight {
        let status = call.await.unwrap().expect_err("its server died");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(
            status.message().contains("connection"),
            "says what happened: {status:?}"
        );
    }
    // While it is down: a clear status, not a hang.
    let status = client.say(Request::new("down".into())).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let restarted = Server::start(Options {
        address: Some(address),
        ..Options::default()
    });
    let reply = client.say(Request::new("back".into())).await.unwrap();
    assert_eq!(reply.into_inner(), "back");
    assert_eq!(restarted.seen.accepted.load(Ordering::SeqCst), 1);
    let stats = channel.pool().stats();
    assert_eq!(
        (stats.in_flight, stats.waiting, stats.dialing),
        (0, 0, 0),
        "{stats:?}"
    );
    assert_eq!((stats.open, stats.draining), (1, 0), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_reaches_the_server_as_grpc_timeout() {
    let server = Server::start(Options::default());
    let channel = channel(server.address, 1);
    let mut client = EchoClient::new(channel.clone());
    let mut request = Request::new("sleep:10000:slow".to_string());
    request.set_timeout(Duration::from_millis(200));
    let started = Instant::now();
    let status = client.say(request).await.unwrap_err();
    let took = started.elapsed();
    // Whichever side's timer fires first ends the call: the channel's
    // (DEADLINE_EXCEEDED) or tonic's server's, which honours the header
    // (CANCELLED, "Timeout expired").
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    assert!(
        took >= Duration::from_millis(150),
        "not long before it: {took:?}"
    );
    assert!(
        took < Duration::from_secs(5),
        "long before the reply: {took:?}"
    );
    let header = server.seen.last_grpc_timeout.lock().unwrap().clone();
    let micros: u64 = header
        .as_deref()
        .and_then(|h| h.strip_suffix('u'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("grpc-timeout passed through: {header:?}"));
    assert!(micros <= 200_000 && micros > 100_000, "{header:?}");
    assert_eq!(
        channel.pool().stats().in_flight,
        0,
        "its stream was given back"
    );
    let reply = client.say(Request::new("next".into())).await.unwrap();
    assert_eq!(reply.into_inner(), "next", "the connection serves on");
}

/// A raw h2 server that takes every stream and never answers; counts the
/// streams its client reset.
async fn silent_server() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let resets = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&resets);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let resets = Arc::clone(&counted);
            tokio::spawn(async move {
                let mut connection = h2::server::handshake(socket).await.unwrap();
                while let Some(Ok((_request, mut respond))) = connection.accept().await {
                    let resets = Arc::clone(&resets);
                    tokio::spawn(async move {
                        if std::future::poll_fn(|cx| respond.poll_reset(cx))
                            .await
                            .is_ok()
                        {
                            resets.fetch_add(1, Ordering::SeqCst);
                        }
                    });
                }
            });
        }
    });
    (address, resets)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_ends_the_call_at_the_channel_and_cancels_its_stream() {
    let (address, resets) = silent_server().await;
    let channel = channel(address, 1);
    let mut client = EchoClient::new(channel.clone());
    let mut request = Request::new("never answered".to_string());
    request.set_timeout(Duration::from_millis(200));
    let started = Instant::now();
    let status = client.say(request).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(status.message().contains("deadline"), "{status:?}");
    assert!(
        took >= Duration::from_millis(200),
        "not before it: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(
        channel.pool().stats().in_flight,
        0,
        "its stream was given back"
    );
    eventually("the server saw the stream cancelled", || {
        resets.load(Ordering::SeqCst) == 1
    })
    .await;
}

/// A raw h2 server that refuses the first stream of each of its first
/// `refusals` connections (`REFUSED_STREAM`) and answers the rest.
async fn refusing_server(refusals: usize) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let answered = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&answered);
    tokio::spawn(async move {
        let mut connections = 0;
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            connections += 1;
            let refuse_first = connections <= refusals;
            let answered = Arc::clone(&counted);
            tokio::spawn(async move {
                let mut connection = h2::server::handshake(socket).await.unwrap();
                let mut first = true;
                while let Some(Ok((request, mut respond))) = connection.accept().await {
                    if std::mem::take(&mut first) && refuse_first {
                        respond.send_reset(h2::Reason::REFUSED_STREAM);
                        continue;
                    }
                    let answered = Arc::clone(&answered);
                    tokio::spawn(async move {
                        let mut body = request.into_body();
                        let mut message = Vec::new();
                        while let Some(Ok(chunk)) = body.data().await {
                            let _ = body.flow_control().release_capacity(chunk.len());
                            message.extend_from_slice(&chunk);
                        }
                        let response = http::Response::builder()
                            .header("content-type", "application/grpc")
                            .body(())
                            .unwrap();
                        let mut send = respond.send_response(response, false).unwrap();
                        // Echo the gRPC frame back as it came.
                        send.send_data(message.into(), false).unwrap();
                        let mut trailers = http::HeaderMap::new();
                        trailers.insert("grpc-status", "0".parse().unwrap());
                        send.send_trailers(trailers).unwrap();
                        answered.fetch_add(1, Ordering::SeqCst);
                    });
                }
            });
        }
    });
    (address, answered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_stream_is_sent_again_on_another_connection() {
    // Every connection refuses its first stream: the call, refused on the
    // first connection, is answered only if it is sent again on the same
    // one, which the pool avoids while it may dial another; so it is
    // refused twice and fails, having been sent exactly twice.
    let (address, answered) = refusing_server(usize::MAX).await;
    let first = channel(address, 2);
    let mut client = EchoClient::new(first.clone());
    let status = client.say(Request::new("no".into())).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("REFUSED_STREAM") || status.message().contains("refused"),
        "{status:?}"
    );
    let stats = first.pool().stats();
    assert_eq!(
        stats.connects, 2,
        "sent again on a second connection: {stats:?}"
    );
    assert_eq!(answered.load(Ordering::SeqCst), 0);
    // Only the first connection refuses: the call sent again on another
    // succeeds.
    let (address, answered) = refusing_server(1).await;
    let second = channel(address, 2);
    let mut client = EchoClient::new(second.clone());
    let reply = client.say(Request::new("again".into())).await.unwrap();
    assert_eq!(reply.into_inner(), "again");
    assert_eq!(answered.load(Ordering::SeqCst), 1);
    assert_eq!(second.pool().stats().connects, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_other_connection_allowed_a_refused_stream_is_sent_again_on_the_same() {
    let (address, answered) = refusing_server(usize::MAX).await;
    let channel = channel(address, 1);
    let mut client = EchoClient::new(channel.clone());
    let reply = client.say(Request::new("same".into())).await.unwrap();
    assert_eq!(reply.into_inner(), "same");
    assert_eq!(answered.load(Ordering::SeqCst), 1);
    assert_eq!(channel.pool().stats().connects, 1);
}

/// A server down for a second under 16 busy callers: the pool dials at
/// the backoff's pace (the breaker opens after five failures in a row,
/// then one probe per backoff), not once per call; calls fail with
/// `Unavailable` meanwhile, and succeed again soon after it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_down_under_load_sees_paced_dials_and_calls_recover() {
    let server = Server::start(Options::default());
    let address = server.address;
    let channel = channel(address, 4);
    EchoClient::new(channel.clone())
        .say(Request::new("warm".into()))
        .await
        .unwrap();
    server.kill();
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicUsize::new(0));
    let callers: Vec<_> = (0..16)
        .map(|_| {
            let (mut client, stop, failed) = (
                EchoClient::new(channel.clone()),
                Arc::clone(&stop),
                Arc::clone(&failed),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    if let Err(status) = client.say(Request::new("hi".into())).await {
                        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                        failed.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            })
        })
        .collect();
    // The load runs against the dead port for a second.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let down = channel.pool().stats();
    let calls_failed = failed.load(Ordering::SeqCst);
    // Five failures open the breaker; then a probe per backoff (100-200 ms
    // each at the default 200 ms cap): about 10 in the second.
    assert!(
        down.connect_failures <= 25,
        "{} dials in a second of downtime under {calls_failed} failed calls",
        down.connect_failures
    );
    assert!(
        calls_failed > 100,
        "the callers kept calling: {calls_failed}"
    );
    let restarted = Server::start(Options {
        address: Some(address),
        ..Options::default()
    });
    let back = Instant::now();
    let mut client = EchoClient::new(channel.clone());
    loop {
        match client.say(Request::new("back".into())).await {
            Ok(reply) => {
                assert_eq!(reply.into_inner(), "back");
                break;
            }
            Err(status) => assert_eq!(status.code(), Code::Unavailable, "{status:?}"),
        }
        assert!(back.elapsed() < Duration::from_secs(5), "never recovered");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let recovered_in = back.elapsed();
    stop.store(true, Ordering::SeqCst);
    for caller in callers {
        caller.await.unwrap();
    }
    println!(
        "down 1 s: {} dials, {calls_failed} failed calls; first success {recovered_in:?} after the restart",
        down.connect_failures
    );
    assert!(
        recovered_in < Duration::from_secs(1),
        "back within the backoff cap and a handshake: {recovered_in:?}"
    );
    assert!(restarted.seen.accepted.load(Ordering::SeqCst) >= 1);
}

/// Connections the server closes while they are idle (its
/// `max_connection_age`) leave the pool with no call asking: their
/// connection task saw the close, and maintenance drops them; the next
/// call dials anew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_the_server_closes_while_idle_leave_the_pool_by_maintenance() {
    let server = Server::start(Options {
        max_connection_age: Some(Duration::from_millis(200)),
        ..Options::default()
    });
    let manager = H2Manager::new(Dialer::new(server.address).unwrap());
    let pool = SharedPool::builder(manager)
        .max_size(4)
        .maintenance_interval(Duration::from_millis(20))
        .build()
        .unwrap();
    let maintenance = tokio::spawn(pool.maintenance());
    let channel = Channel::new(pool.clone()).unwrap();
    let mut client = EchoClient::new(channel.clone());
    client.say(Request::new("first".into())).await.unwrap();
    assert_eq!(pool.stats().open, 1);
    eventually(
        "the idle connection the server closed left the pool",
        || pool.stats().open == 0,
    )
    .await;
    eventually("and its socket closed at the server", || {
        server.seen.open.load(Ordering::SeqCst) == 0
    })
    .await;
    assert_eq!(pool.stats().drained_closed, 1, "{:?}", pool.stats());
    client.say(Request::new("again".into())).await.unwrap();
    assert_eq!(server.seen.accepted.load(Ordering::SeqCst), 2);
    drop((client, channel, pool));
    tokio::time::timeout(Duration::from_secs(5), maintenance)
        .await
        .expect("maintenance ends with the pool")
        .unwrap();
}

fn requests(server: &Server) -> usize {
    server.seen.shares().iter().sum()
}

/// A channel over a set of three servers: calls spread evenly over the
/// endpoints, fail over past a killed one with no call failing, and follow
/// the endpoint set as it changes by hand and by discovery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_balanced_channel_spreads_calls_fails_over_and_follows_the_endpoint_set() {
    use ringpool::multi::Endpoint;
    use ringpool::shared::SharedSet;
    let (a, b, c) = (
        Server::start(Options::default()),
        Server::start(Options::default()),
        Server::start(Options::default()),
    );
    let set = SharedSet::try_builder(|endpoint: &Endpoint| {
        Dialer::new(endpoint.as_str()).map(H2Manager::new)
    })
    .endpoints([a.address.to_string(), b.address.to_string()])
    .configure(|pool| pool.max_size(2).acquire_timeout(Duration::from_secs(20)))
    .build()
    .unwrap();
    let channel = Channel::balanced(set.clone(), "http://grpc.test:50051").unwrap();
    let wave = |n: usize, text: &'static str| {
        let calls: Vec<_> = (0..n)
            .map(|_| {
                let mut client = EchoClient::new(channel.clone());
                tokio::spawn(async move { client.say(Request::new(text.to_string())).await })
            })
            .collect();
        async move {
            let mut failed = Vec::new();
            for call in calls {
                if let Err(status) = call.await.unwrap() {
                    failed.push(status);
                }
            }
            failed
        }
    };
    // Balanced: 400 calls at once, each held 20 ms.
    assert!(wave(400, "sleep:20:x").await.is_empty());
    let (on_a, on_b) = (requests(&a), requests(&b));
    let mean = (on_a + on_b) as f64 / 2.0;
    assert!(
        on_a as f64 <= mean * 1.2 && on_b as f64 <= mean * 1.2,
        "calls spread over the two endpoints: {on_a} and {on_b}"
    );
    // B dies. Calls that raced the kill on its connections may fail (with
    // a clear status; they may have reached it). Once its pool has seen
    // its connections close, no call fails: each fails over to A.
    let b_address = Endpoint::from(b.address);
    b.kill();
    eventually("B's pool saw its connections close", || {
        set.run_maintenance();
        set.pool(&b_address).unwrap().stats().open == 0
    })
    .await;
    let before = requests(&a);
    let failed = wave(100, "sleep:5:y").await;
    assert!(
        failed.is_empty(),
        "calls failed over past the dead endpoint: {failed:?}"
    );
    assert_eq!(requests(&a) - before, 100);
    // By hand: B out, C in.
    let change = set
        .set_endpoints([a.address.to_string(), c.address.to_string()])
        .unwrap();
    assert_eq!(change.added.len(), 1);
    assert_eq!(change.removed.len(), 1);
    assert!(wave(200, "sleep:20:z").await.is_empty());
    assert!(
        requests(&c) >= 60,
        "the new endpoint took its share: {}",
        requests(&c)
    );
    // By discovery: only C is left.
    let only_c = vec![Endpoint::from(c.address)];
    let discovery = set
        .discover(move || Ok(only_c.clone()), Duration::from_millis(20))
        .unwrap();
    eventually("discovery left only C", || {
        set.endpoints() == [Endpoint::from(c.address)]
    })
    .await;
    let (before_a, before_c) = (requests(&a), requests(&c));
    assert!(wave(50, "w").await.is_empty());
    assert_eq!(requests(&a), before_a, "A left the set");
    assert_eq!(requests(&c) - before_c, 50);
    discovery.stop();
    eventually("A's connections closed once it left", || {
        a.seen.open.load(Ordering::SeqCst) == 0
    })
    .await;
}

/// Server-streaming calls through the channel: every message arrives in
/// order, each call holds its place (one stream) until its last message,
/// so four long streams over a 2-stream limit need two connections, and
/// the places come back when the streams end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_calls_hold_their_stream_until_their_last_message() {
    let server = Server::start(Options {
        max_concurrent_streams: Some(2),
        ..Options::default()
    });
    let channel = channel(server.address, 4);
    let streams: Vec<_> = (0..4)
        .map(|_| {
            let mut client = EchoClient::new(channel.clone());
            tokio::spawn(async move {
                let mut stream = client
                    .count(Request::new("20:5".into()))
                    .await
                    .unwrap()
                    .into_inner();
                let mut got = Vec::new();
                while let Some(message) = stream.message().await.unwrap() {
                    got.push(message);
                }
                got
            })
        })
        .collect();
    eventually("four streams open at once", || {
        channel.pool().stats().in_flight == 4
    })
    .await;
    assert_eq!(channel.pool().stats().open, 2, "2 streams a connection");
    let expected: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    for stream in streams {
        assert_eq!(stream.await.unwrap(), expected);
    }
    eventually("every place given back", || {
        channel.pool().stats().in_flight == 0
    })
    .await;
}

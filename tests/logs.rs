//! Every event the pool logs names its pool and its endpoint, so the lines
//! of two pools in one process can be told apart; a leak report names the
//! call site. (Tests that capture logs live here, apart from tests that
//! emit the same events with no subscriber: `tracing` caches whether a
//! call site is enabled process-wide, and a test racing to register it
//! with no subscriber could leave it off for a capturing one.)

mod common;

use std::time::Duration;

use common::{Captured, Mock, SECOND};
use ringpool::tcp::{TcpManager, TcpOptions};
use ringpool::{Clock, Pool};

#[test]
fn a_failed_dial_is_logged_with_the_pools_name_and_endpoint() {
    let refused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap(); // closed at once: connects are refused
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let mut options = TcpOptions::default();
        options.connect_timeout = Duration::from_millis(500);
        let manager = TcpManager::new(refused).unwrap().options(options);
        let pool = Pool::builder(manager)
            .name("payments")
            .acquire_timeout(Duration::from_millis(100))
            .build()
            .unwrap();
        assert!(pool.get_blocking().is_err());
    });
    let text = captured.text();
    let line = text
        .lines()
        .find(|line| line.contains("dial failed, backing off"))
        .unwrap_or_else(|| panic!("no dial failure logged:\n{text}"));
    assert!(line.contains("pool=payments"), "{line}");
    assert!(line.contains(&format!("endpoint={refused}")), "{line}");
}

#[test]
fn the_managers_own_events_are_inside_the_pools_span() {
    /// A manager that logs as it dials, without naming any pool.
    struct Chatty;

    impl ringpool::Manager for Chatty {
        type Connection = ();
        type Error = std::io::Error;

        async fn connect(&self) -> std::io::Result<()> {
            tracing::info!("handshake done");
            Ok(())
        }
    }

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let orders = Pool::builder(Chatty).name("orders").build().unwrap();
        let payments = Pool::builder(Chatty).name("payments").build().unwrap();
        drop(orders.get_blocking().unwrap());
        drop(payments.get_blocking().unwrap());
    });
    let text = captured.text();
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("handshake done"))
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].contains("ringpool{pool=orders"), "{}", lines[0]);
    assert!(lines[1].contains("ringpool{pool=payments"), "{}", lines[1]);
}

#[test]
fn a_leak_is_reported_once_with_its_call_site() {
    let log = Captured::default();
    let writer = {
        let log = log.clone();
        move || log.clone()
    };
    let subscriber = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let mock = Mock::new();
        let (clock, time) = Clock::mock();
        let pool = Pool::builder(mock.clone())
            .young_death_window(None)
            .leak_threshold(Some(10 * SECOND))
            .idle_timeout(None)
            .clock(clock)
            .build()
            .unwrap();
        let returned_in_time = pool.get_blocking().unwrap();
        let (leaked, leak_line) = (pool.get_blocking().unwrap(), line!());
        time.advance(5 * SECOND);
        drop(returned_in_time);
        time.advance(6 * SECOND);
        assert_eq!(pool.stats().leaks, 1, "only the held one is reported");
        time.advance(60 * SECOND);
        assert_eq!(pool.stats().leaks, 1, "reported once");
        drop(leaked); // still a normal return
        assert_eq!(pool.status().idle, 2);
        let text = log.text();
        assert!(text.contains(&format!("{}:{leak_line}", file!())), "{text}");
        assert_eq!(
            text.matches("possible connection leak").count(),
            1,
            "{text}"
        );
    });
}

#[test]
fn a_hook_refusal_is_logged_with_the_pools_name_and_where() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let pool = Pool::builder(Mock::new())
            .name("ledger")
            .max_size(1)
            .on_return(|_| Err(common::MockError::Denied))
            .build()
            .unwrap();
        drop(pool.get_blocking().unwrap());
        assert_eq!(pool.stats().closed.rejected, 1);
    });
    let text = captured.text();
    let line = text
        .lines()
        .find(|line| line.contains("a hook refused a connection"))
        .unwrap_or_else(|| panic!("no refusal logged:\n{text}"));
    assert!(line.contains("pool=ledger"), "{line}");
    assert!(line.contains("point=\"return\""), "{line}");
    assert!(line.contains("bad credentials"), "{line}");
}

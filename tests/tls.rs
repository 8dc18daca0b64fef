//! TLS through the pool, against a tokio-rustls server in the test on
//! loopback, with certificates the test makes (`rcgen`): a CA, a server
//! certificate for `localhost` and `127.0.0.1`, an expired one, one for
//! another name, a client certificate. The server counts what it accepts,
//! its full and resumed handshakes, and reports each step on a channel, so
//! the tests wait for events, never for time. Every network wait is bounded.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    date_time_ymd,
};
use ringpool::tcp::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use ringpool::tcp::rustls::server::WebPkiClientVerifier;
use ringpool::tcp::rustls::{self, HandshakeKind, RootCertStore, ServerConfig};
use ringpool::tcp::{TlsConnector, TlsError, TokioTcpManager, TokioTlsManager};
use ringpool::{Error, ErrorClass, Pool};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// The longest any single wait in these tests may take.
const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------

/// A certificate chain and its key, as DER (for the server) and PEM (for
/// the client's builder).
struct Issued {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    key_pem: String,
    key_der: Vec<u8>,
}

struct Certs {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    /// For `localhost` and `127.0.0.1`.
    server: Issued,
    /// For `localhost` and `127.0.0.1`, expired in 2021.
    expired: Issued,
    /// For `other.example` only.
    wrong_name: Issued,
    /// A client certificate the CA signed.
    client: Issued,
}

fn certs() -> &'static Certs {
    static CERTS: OnceLock<Certs> = OnceLock::new();
    CERTS.get_or_init(|| {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "ringpool test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issue = |names: &[&str], purpose: ExtendedKeyUsagePurpose, expired: bool| {
            let key = KeyPair::generate().unwrap();
            let mut params =
                CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                    .unwrap();
            params.extended_key_usages = vec![purpose];
            params.distinguished_name.push(
                DnType::CommonName,
                names.first().copied().unwrap_or("client"),
            );
            if expired {
                params.not_before = date_time_ymd(2020, 1, 1);
                params.not_after = date_time_ymd(2021, 1, 1);
            }
            let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
            Issued {
                cert_pem: cert.pem(),
                cert_der: cert.der().clone(),
                key_pem: key.serialize_pem(),
                key_der: key.serialize_der(),
            }
        };
        let server_names = ["localhost", "127.0.0.1"];
        Certs {
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
            server: issue(&server_names, ExtendedKeyUsagePurpose::ServerAuth, false),
            expired: issue(&server_names, ExtendedKeyUsagePurpose::ServerAuth, true),
            wrong_name: issue(
                &["other.example"],
                ExtendedKeyUsagePurpose::ServerAuth,
                false,
            ),
            client: issue(&["client"], ExtendedKeyUsagePurpose::ClientAuth, false),
        }
    })
}

#[allow(deprecated)] // ring has no post-quantum key exchange; fine for tests
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    use rustls::crypto::ring::kx_group;
    let mut provider = rustls::crypto::ring::default_provider();
    provider.kx_groups = vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1];
    Arc::new(provider)
}

/// A client connector that trusts the test CA.
fn connector() -> TlsConnector {
    TlsConnector::builder()
        .add_root_pem(&certs().ca_pem)
        .unwrap()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------

#[derive(Debug, PartialEq, Eq)]
enum Event {
    /// A handshake completed.
    Handshake { resumed: bool },
    /// A handshake failed.
    Refused,
    /// The server closed a connection on request.
    Closed,
}

#[derive(Default)]
struct Counts {
    accepted: AtomicUsize,
    full: AtomicUsize,
    resumed: AtomicUsize,
    refused: AtomicUsize,
}

/// A TLS server on 127.0.0.1 that answers `PING\n` with `PONG\n`. It stops
/// when dropped, and each connection ends after `WAIT` at the latest.
struct Server {
    addr: SocketAddr,
    counts: Arc<Counts>,
    events: mpsc::UnboundedReceiver<Event>,
    /// Raising it closes every connection opened before (with
    /// `close_notify`, then the socket).
    close_epoch: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    async fn start(cert: &Issued, require_client_cert: bool) -> Server {
        let chain = vec![cert.cert_der.clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_der.clone()));
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap();
        let config = match require_client_cert {
            true => {
                let mut roots = RootCertStore::empty();
                roots.add(certs().ca_der.clone()).unwrap();
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
            false => builder.with_no_client_auth(),
        }
        .with_single_cert(chain, key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counts = Arc::new(Counts::default());
        let (events_tx, events) = mpsc::unbounded_channel();
        let (close_epoch, close_rx) = watch::channel(0u64);
        let task = {
            let counts = Arc::clone(&counts);
            tokio::spawn(async move {
                let mut connections = tokio::task::JoinSet::new();
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        return;
                    };
                    counts.accepted.fetch_add(1, Ordering::SeqCst);
                    let (acceptor, counts, events, mut close) = (
                        acceptor.clone(),
                        Arc::clone(&counts),
                        events_tx.clone(),
                        close_rx.clone(),
                    );
                    let epoch = *close.borrow_and_update();
                    connections.spawn(async move {
                        let _ = tokio::time::timeout(WAIT, async move {
                            let mut tls = match acceptor.accept(tcp).await {
                                Ok(tls) => tls,
                                Err(_) => {
                                    counts.refused.fetch_add(1, Ordering::SeqCst);
                                    let _ = events.send(Event::Refused);
                                    return;
                                }
                            };
                            let resumed =
                                tls.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed);
                            match resumed {
                                true => counts.resumed.fetch_add(1, Ordering::SeqCst),
                                false => counts.full.fetch_add(1, Ordering::SeqCst),
                            };
                            let _ = events.send(Event::Handshake { resumed });
                            let mut request = [0u8; 5];
                            loop {
                                tokio::select! {
                                    read = tls.read_exact(&mut request) => {
                                        if read.is_err() || &request != b"PING\n" {
                                            return;
                                        }
                                        if tls.write_all(b"PONG\n").await.is_err()
                                            || tls.flush().await.is_err()
                                        {
                                            return;
                                        }
                                    }
                                    _ = closing(&mut close, epoch) => {
                                        let _ = tls.shutdown().await;
                                        drop(tls);
                                        let _ = events.send(Event::Closed);
                                        return;
                                    }
                                }
                            }
                        })
                        .await;
                    });
                }
            })
        };
        Server {
            addr,
            counts,
            events,
            close_epoch,
            task,
        }
    }

    fn accepted(&self) -> usize {
        self.counts.accepted.load(Ordering::SeqCst)
    }

    /// The next event, within `WAIT`.
    async fn next(&mut self) -> Event {
        tokio::time::timeout(WAIT, self.events.recv())
            .await
            .expect("a server event within the wait")
            .expect("the server runs")
    }

    /// Closes every connection open now, and waits until `n` have closed.
    async fn close_all(&mut self, n: usize) {
        self.close_epoch.send_modify(|epoch| *epoch += 1);
        let mut closed = 0;
        while closed < n {
            if self.next().await == Event::Closed {
                closed += 1;
            }
        }
    }
}

/// Returns once the close epoch passes `epoch`.
async fn closing(close: &mut watch::Receiver<u64>, epoch: u64) {
    loop {
        if *close.borrow_and_update() > epoch {
            return;
        }
        if close.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// One request through a pooled connection.
async fn ping(conn: &mut ringpool::Pooled<'_, TokioTlsManager>) -> std::io::Result<()> {
    tokio::time::timeout(WAIT, async {
        conn.write_all(b"PING\n").await?;
        conn.flush().await?;
        let mut reply = [0u8; 5];
        conn.read_exact(&mut reply).await?;
        assert_eq!(&reply, b"PONG\n");
        Ok(())
    })
    .await
    .expect("a reply within the wait")
}

fn pool(manager: TokioTlsManager, size: usize) -> Pool<TokioTlsManager> {
    Pool::builder(manager)
        .max_size(size)
        .check_after(Duration::ZERO)
        .acquire_timeout(Duration::from_secs(3))
        .build()
        .unwrap()
}

/// Whether `fd` has bytes to read, waiting up to `WAIT` with `poll(2)`.
fn wait_readable(fd: i32) -> bool {
    let mut polled = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd that outlives the call.
    let ready = unsafe { libc::poll(&mut polled, 1, WAIT.as_millis() as i32) };
    ready > 0 && polled.revents & libc::POLLIN != 0
}

// ---------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_tls_are_served_and_connections_reused() {
    let server = Server::start(&certs().server, false).await;
    let manager = TokioTcpManager::new(server.addr.to_string()).tls(connector());
    let pool = pool(manager, 4);
    for _round in 0..5 {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let pool = pool.clone();
            tasks.spawn(async move {
                let mut conn = pool.get_owned().await.unwrap();
                ping(&mut conn).await.unwrap();
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
    }
    let stats = pool.stats();
    assert_eq!(stats.gets, 20);
    assert!(server.accepted() <= 4, "accepted {}", server.accepted());
    assert_eq!(stats.connects as usize, server.accepted());
    assert_eq!(stats.reused, 20 - stats.connects);
    let handshakes = pool.manager().handshakes();
    assert_eq!(
        (handshakes.full + handshakes.resumed) as usize,
        server.accepted()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refill_after_the_connections_closed_resumes_their_sessions() {
    let mut server = Server::start(&certs().server, false).await;
    let manager = TokioTlsManager::new(server.addr.to_string(), connector());
    let pool = pool(manager, 3);
    let round = || async {
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut conn = pool.get().await.unwrap();
            ping(&mut conn).await.unwrap(); // reads the session tickets too
            held.push(conn);
        }
    };
    round().await;
    assert_eq!(server.accepted(), 3);
    // Only the first is a full handshake: the second dial already resumes
    // the session the first one's tickets carry.
    let first = pool.manager().handshakes();
    assert_eq!((first.full, first.resumed), (1, 2));
    for _ in 0..3 {
        assert!(matches!(server.next().await, Event::Handshake { .. }));
    }
    server.close_all(3).await;
    // The closed connections are found dead at checkout and replaced, each
    // with a resumed handshake.
    round().await;
    assert_eq!(server.accepted(), 6);
    let client = pool.manager().handshakes();
    assert_eq!((client.full, client.resumed), (1, 5), "client side");
    assert_eq!(server.counts.full.load(Ordering::SeqCst), 1, "server side");
    assert_eq!(
        server.counts.resumed.load(Ordering::SeqCst),
        5,
        "server side"
    );
    assert!(pool.stats().closed.broken >= 3, "{:?}", pool.stats().closed);
    // The pool's stats carry the manager's counts, and so does the
    // exporter.
    assert_eq!(pool.stats().tls_handshakes, client);
    #[cfg(feature = "prometheus")]
    {
        let mut registry = prometheus_client::registry::Registry::default();
        pool.register_metrics(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for (kind, count) in [("full", 1), ("resumed", 5)] {
            let line = text
                .lines()
                .find(|line| {
                    line.starts_with("ringpool_tls_handshakes_total{")
                        && line.contains(&format!("kind=\"{kind}\""))
                })
                .unwrap_or_else(|| panic!("no {kind} handshakes in:\n{text}"));
            assert!(line.ends_with(&format!(" {count}")), "{line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_name_is_refused_at_once_and_not_retried() {
    let server = Server::start(&certs().wrong_name, false).await;
    let target = format!("localhost:{}", server.addr.port());
    let pool = pool(TokioTlsManager::new(target, connector()), 4);
    let started = std::time::Instant::now();
    let mut failures = 0;
    while started.elapsed() < Duration::from_millis(500) {
        let error = pool.get().await.map(|_| ()).unwrap_err();
        let Error::Connect(cause) = &error else {
            panic!("expected a fatal connect error, got {error}");
        };
        assert_eq!(cause.class(), ErrorClass::Fatal);
        let message = cause.to_string();
        assert!(
            message.contains("not valid for name `localhost`"),
            "{message}"
        );
        assert!(message.contains("other.example"), "{message}");
        assert!(message.contains("server_name"), "{message}");
        failures += 1;
    }
    // Each get fails at once: one dial per failed get, no storm behind it.
    assert!(failures >= 1);
    assert!(
        server.accepted() <= failures + 4,
        "{} dials for {failures} failed gets",
        server.accepted()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_is_refused_with_its_date_and_not_retried() {
    let server = Server::start(&certs().expired, false).await;
    let pool = pool(
        TokioTlsManager::new(server.addr.to_string(), connector()),
        4,
    );
    let error = pool.get().await.map(|_| ()).unwrap_err();
    let Error::Connect(cause) = &error else {
        panic!("expected a fatal connect error, got {error}");
    };
    assert!(matches!(&**cause, TlsError::Refused { .. }));
    let message = cause.to_string();
    assert!(message.contains("expired at 2021-01-01"), "{message}");
    assert!(message.contains("renew"), "{message}");
    // Nothing dials on its own after a fatal error.
    let before = server.accepted();
    tokio::time::timeout(WAIT, pool.get())
        .await
        .unwrap()
        .map(|_| ())
        .unwrap_err();
    assert_eq!(server.accepted(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_issuer_says_to_add_its_ca() {
    let server = Server::start(&certs().server, false).await;
    let stranger = TlsConnector::webpki();
    let pool = pool(TokioTlsManager::new(server.addr.to_string(), stranger), 1);
    let error = pool.get().await.map(|_| ()).unwrap_err();
    let cause = error.connect_error().expect("a connect error");
    assert_eq!(cause.class(), ErrorClass::Fatal);
    assert!(cause.to_string().contains("add_root_pem"), "{cause}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_is_accepted_with_the_client_certificate() {
    let mut server = Server::start(&certs().server, true).await;
    let client = &certs().client;
    let tls = TlsConnector::builder()
        .add_root_pem(&certs().ca_pem)
        .unwrap()
        .client_cert_pem(&client.cert_pem, &client.key_pem)
        .unwrap()
        .build()
        .unwrap();
    let pool = pool(TokioTlsManager::new(server.addr.to_string(), tls), 1);
    let mut conn = pool.get().await.unwrap();
    ping(&mut conn).await.unwrap();
    assert_eq!(server.next().await, Event::Handshake { resumed: false });
    assert_eq!(server.counts.refused.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_is_refused_without_a_client_certificate() {
    let mut server = Server::start(&certs().server, true).await;
    let pool = pool(
        TokioTlsManager::new(server.addr.to_string(), connector()),
        1,
    );
    // TLS 1.3: the client's handshake ends before the server checks the
    // (missing) certificate, so the refusal arrives as an alert on the
    // first read, or the pool already found the connection closed.
    let refused = match pool.get().await {
        Err(_) => true,
        Ok(mut conn) => {
            let error = ping(&mut conn).await.unwrap_err();
            let alert = error
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .cloned();
            matches!(alert, Some(rustls::Error::AlertReceived(_)))
                || error.kind() == std::io::ErrorKind::UnexpectedEof
                || error.kind() == std::io::ErrorKind::ConnectionReset
        }
    };
    assert!(refused);
    assert_eq!(server.next().await, Event::Refused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ticket_after_the_handshake_does_not_break_the_connection() {
    let mut server = Server::start(&certs().server, false).await;
    let pool = pool(
        TokioTlsManager::new(server.addr.to_string(), connector()),
        1,
    );
    let conn = pool.get().await.unwrap();
    assert_eq!(server.next().await, Event::Handshake { resumed: false });
    // The server's TLS 1.3 tickets are now in the client's socket, unread.
    assert!(wait_readable(conn.tcp().as_raw_fd()));
    assert!(
        ringpool::tcp::peek_is_broken(conn.tcp()),
        "the plain byte peek would call it broken"
    );
    drop(conn);
    let mut conn = pool.get().await.unwrap();
    // The checkout took the tickets in: the socket is quiet, and the next
    // dial resumes although the connection was never read.
    assert!(!ringpool::tcp::peek_is_broken(conn.tcp()));
    let next = ringpool::SendManager::connect(pool.manager())
        .await
        .unwrap();
    assert_eq!(pool.manager().handshakes().resumed, 1);
    drop(next);
    ping(&mut conn).await.unwrap();
    assert_eq!(server.accepted(), 2);
    assert_eq!(pool.stats().reused, 1);
    assert_eq!(pool.stats().closed.broken, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_closing_an_idle_tls_connection_is_seen_at_checkout() {
    let mut server = Server::start(&certs().server, false).await;
    let pool = pool(
        TokioTlsManager::new(server.addr.to_string(), connector()),
        1,
    );
    {
        let mut conn = pool.get().await.unwrap();
        ping(&mut conn).await.unwrap();
    }
    assert_eq!(server.next().await, Event::Handshake { resumed: false });
    server.close_all(1).await;
    let mut conn = pool.get().await.unwrap();
    ping(&mut conn).await.unwrap();
    assert_eq!(server.accepted(), 2);
    assert_eq!(pool.stats().closed.broken, 1);
    assert_eq!(pool.stats().reused, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handshake_is_bounded_by_the_connect_timeout_and_retryable() {
    // A listener that accepts and never answers the ClientHello.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut options = ringpool::tcp::TcpOptions::default();
    options.connect_timeout = Duration::from_millis(200);
    let manager = TokioTlsManager::new(silent.local_addr().unwrap().to_string(), connector())
        .options(options);
    let started = std::time::Instant::now();
    let error = ringpool::SendManager::connect(&manager).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(matches!(error, TlsError::Handshake { .. }), "{error}");
    assert_eq!(error.class(), ErrorClass::Retryable);
    assert!(error.to_string().contains("connect_timeout"), "{error}");
}

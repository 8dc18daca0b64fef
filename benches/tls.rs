//! What a TLS dial costs, and what session resumption saves: criterion
//! group `tls_dial`, against a tokio-rustls server on loopback (its own
//! thread and runtime, so its work is not the client's).
//!
//! - `full_handshake`: a connector with resumption off, so every dial is a
//!   full TLS 1.3 handshake (certificate chain verified, key exchange).
//! - `resumed`: one shared connector with its session store, as a
//!   `TokioTlsManager` uses it: every dial after the first resumes.
//! - `tcp_only`: the TCP connect alone, the floor.
//!
//! Each dial connects, handshakes, and reads one byte the server sends
//! after its handshake (so the client has read the server's session
//! tickets, as a connection that served a request has). After the group,
//! the client thread's CPU time per dial (`CLOCK_THREAD_CPUTIME_ID` around
//! a fixed number of dials on a current-thread runtime) is printed for
//! each, with the full/resumed ratio.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use ringpool::tcp::TlsConnector;
use ringpool::tcp::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use ringpool::tcp::rustls::{self, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Dials per mode for the CPU figures.
const CPU_DIALS: u32 = 400;

struct Servers {
    tls: SocketAddr,
    plain: SocketAddr,
    ca_pem: String,
}

#[allow(deprecated)] // ring: no post-quantum key exchange, the same for both sides
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    use rustls::crypto::ring::kx_group;
    let mut provider = rustls::crypto::ring::default_provider();
    provider.kx_groups = vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1];
    Arc::new(provider)
}

/// Starts the servers on a thread of their own; they live as long as the
/// process.
fn start_servers() -> Servers {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ringpool bench CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let (ready, addrs) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("tls-server".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let tls = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
                ready
                    .send((tls.local_addr().unwrap(), plain.local_addr().unwrap()))
                    .unwrap();
                let plain_loop = async move {
                    loop {
                        let (mut stream, _) = plain.accept().await.unwrap();
                        tokio::spawn(async move {
                            let _ = stream.write_all(b"x").await;
                            let mut rest = Vec::new();
                            let _ = tokio::time::timeout(
                                Duration::from_secs(5),
                                stream.read_to_end(&mut rest),
                            )
                            .await;
                        });
                    }
                };
                let tls_loop = async move {
                    loop {
                        let (stream, _) = tls.accept().await.unwrap();
                        let _ = stream.set_nodelay(true);
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            let Ok(mut stream) = acceptor.accept(stream).await else {
                                return;
                            };
                            let _ = stream.write_all(b"x").await;
                            let _ = stream.flush().await;
                            let mut rest = Vec::new();
                            let _ = tokio::time::timeout(
                                Duration::from_secs(5),
                                stream.read_to_end(&mut rest),
                            )
                            .await;
                        });
                    }
                };
                tokio::join!(plain_loop, tls_loop);
            });
        })
        .unwrap();
    let (tls, plain) = addrs.recv().unwrap();
    Servers {
        tls,
        plain,
        ca_pem: ca.pem(),
    }
}

fn connector(servers: &Servers, resumption: bool) -> TlsConnector {
    TlsConnector::builder()
        .add_root_pem(&servers.ca_pem)
        .unwrap()
        .resumption(resumption)
        .build()
        .unwrap()
}

async fn dial_tls(connector: &TlsConnector, addr: SocketAddr) {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let mut tls = connector
        .handshake(&addr.to_string(), stream)
        .await
        .unwrap();
    let mut byte = [0u8; 1];
    tls.read_exact(&mut byte).await.unwrap();
}

async fn dial_tcp(addr: SocketAddr) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let mut byte = [0u8; 1];
    stream.read_exact(&mut byte).await.unwrap();
}

/// This thread's CPU time.
fn thread_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec into a valid local.
    let result = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(result, 0);
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Client CPU and wall time per dial over `CPU_DIALS` dials.
fn per_dial(runtime: &tokio::runtime::Runtime, dial: impl AsyncFn()) -> (Duration, Duration) {
    runtime.block_on(dial()); // warm: the first resumed dial is full
    let (cpu, wall) = (thread_cpu(), Instant::now());
    runtime.block_on(async {
        for _ in 0..CPU_DIALS {
            dial().await;
        }
    });
    ((thread_cpu() - cpu) / CPU_DIALS, wall.elapsed() / CPU_DIALS)
}

fn tls_dial(c: &mut Criterion) {
    let servers = start_servers();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let shared = connector(&servers, true);
    let (tls, plain) = (servers.tls, servers.plain);

    let mut group = c.benchmark_group("tls_dial");
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(4));
    group.bench_function("full_handshake", |b| {
        let fresh = connector(&servers, false);
        b.to_async(&runtime).iter(|| dial_tls(&fresh, tls));
    });
    group.bench_function("resumed", |b| {
        b.to_async(&runtime).iter(|| dial_tls(&shared, tls));
    });
    group.bench_function("tcp_only", |b| {
        b.to_async(&runtime).iter(|| dial_tcp(plain));
    });
    group.finish();

    let fresh = connector(&servers, false);
    let full = per_dial(&runtime, || dial_tls(&fresh, tls));
    let counted = shared.handshakes();
    let resumed = per_dial(&runtime, || dial_tls(&shared, tls));
    let after = shared.handshakes();
    let tcp = per_dial(&runtime, || dial_tcp(plain));
    // For comparison: TLS 1.2, whose resumption (a session id) skips the
    // key exchange that a TLS 1.3 resumption (psk_dhe_ke) still does.
    let tls12 = |resume: bool| {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(servers.ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        if !resume {
            config.resumption = rustls::client::Resumption::disabled();
        }
        TlsConnector::from_config(Arc::new(config))
    };
    let (full12, resumed12) = (tls12(false), tls12(true));
    let full12 = per_dial(&runtime, || dial_tls(&full12, tls));
    let resumed12 = per_dial(&runtime, || dial_tls(&resumed12, tls));
    eprintln!("tls_dial client CPU per dial over {CPU_DIALS} dials (wall time beside it):");
    for (name, (cpu, wall)) in [
        ("full_handshake", full),
        ("resumed", resumed),
        ("tcp_only", tcp),
        ("tls12_full", full12),
        ("tls12_resumed", resumed12),
    ] {
        eprintln!(
            "  {name:<15} cpu {:>8.1} us   wall {:>8.1} us",
            cpu.as_secs_f64() * 1e6,
            wall.as_secs_f64() * 1e6
        );
    }
    eprintln!(
        "  full/resumed client CPU: {:.2}x ({} of {} dials resumed)",
        full.0.as_secs_f64() / resumed.0.as_secs_f64(),
        after.resumed - counted.resumed,
        (after.resumed + after.full) - (counted.resumed + counted.full),
    );
    eprintln!(
        "  TLS 1.2 full/resumed client CPU: {:.2}x",
        full12.0.as_secs_f64() / resumed12.0.as_secs_f64(),
    );
}

criterion_group!(benches, tls_dial);
criterion_main!(benches);

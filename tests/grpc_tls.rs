//! `clients::grpc` over TLS against a real tonic server that terminates
//! TLS itself (tokio-rustls on loopback, certificates made by the test):
//! calls negotiate `h2` by ALPN and share connections as over plain TCP,
//! connections dialed after the server restarts resume their TLS sessions,
//! and a server that does not offer HTTP/2 fails calls with a status that
//! says so. Every wait is bounded.

mod grpc_server;
mod test_certs;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use grpc_server::{EchoClient, Options, Server};
use ringpool::clients::grpc::Channel;
use ringpool::clients::h2::H2Manager;
use ringpool::shared::SharedPool;
use ringpool::tcp::rustls::pki_types::pem::PemObject;
use ringpool::tcp::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use ringpool::tcp::rustls::{self, ServerConfig};
use ringpool::tcp::{Dialer, TlsConnector};
use tonic::Request;

const WAIT: Duration = Duration::from_secs(10);

/// A server configuration with the test certificate, offering `alpn`.
#[allow(deprecated)] // ring: no post-quantum key exchange; fine for a test
fn server_config(alpn: &[&[u8]]) -> Arc<ServerConfig> {
    let certs = test_certs::certs();
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(certs.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_slice(certs.key_pem.as_bytes()).unwrap();
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

fn start(tls: Arc<ServerConfig>, max_streams: u32, address: Option<SocketAddr>) -> Server {
    Server::start(Options {
        max_concurrent_streams: Some(max_streams),
        address,
        tls: Some(tls),
        ..Options::default()
    })
}

fn channel(address: SocketAddr, connector: &TlsConnector) -> Channel {
    let manager = H2Manager::new(Dialer::new(address).unwrap()).tls(connector.clone());
    let pool = SharedPool::builder(manager)
        .max_size(8)
        .acquire_timeout(WAIT)
        .build()
        .unwrap();
    Channel::new(pool).unwrap()
}

async fn calls(channel: &Channel, n: usize) -> Vec<Result<String, tonic::Status>> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let mut client = EchoClient::new(channel.clone());
            tokio::spawn(async move {
                client
                    .say(Request::new(format!("sleep:20:{i}")))
                    .await
                    .map(|reply| reply.into_inner())
            })
        })
        .collect();
    let mut replies = Vec::with_capacity(n);
    for task in tasks {
        replies.push(tokio::time::timeout(WAIT, task).await.unwrap().unwrap());
    }
    replies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_over_tls_negotiate_h2_and_share_connections() {
    let server = start(server_config(&[b"h2"]), 50, None);
    let connector = test_certs::connector();
    let channel = channel(server.address, &connector);
    let replies = calls(&channel, 200).await;
    for (i, reply) in replies.into_iter().enumerate() {
        assert_eq!(reply.unwrap(), i.to_string());
    }
    let accepted = server
        .seen
        .accepted
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (1..=4).contains(&accepted),
        "200 calls at once over a 50-stream limit need 4 connections, not {accepted}"
    );
    let alpn = server.seen.alpn.lock().unwrap().clone();
    assert_eq!(alpn.len(), accepted);
    assert!(
        alpn.iter().all(|p| p.as_deref() == Some(&b"h2"[..])),
        "every handshake agreed on h2: {alpn:?}"
    );
    let handshakes = connector.handshakes();
    assert_eq!(handshakes.full + handshakes.resumed, accepted as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_dialed_after_a_server_restart_resume_their_sessions() {
    let tls = server_config(&[b"h2"]);
    let server = start(Arc::clone(&tls), 100, None);
    let address = server.address;
    let connector = test_certs::connector();
    let channel = channel(address, &connector);
    assert!(calls(&channel, 20).await.iter().all(Result::is_ok));
    let before = connector.handshakes();
    assert!(before.full >= 1, "{before:?}");
    // GOAWAY, then a new server on the same port with the same
    // configuration (and so the same session store).
    server.shut_down();
    let server = start(tls, 100, Some(address));
    let replies = calls(&channel, 20).await;
    assert!(
        replies.iter().all(Result::is_ok),
        "calls after the restart: {replies:?}"
    );
    let after = connector.handshakes();
    assert!(
        after.resumed > before.resumed,
        "the new connections resumed: before {before:?}, after {after:?}"
    );
    assert_eq!(after.full, before.full, "no new full handshake: {after:?}");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_does_not_offer_http2_fails_calls_with_a_status_that_says_so() {
    let server = start(server_config(&[b"http/1.1"]), 100, None);
    let connector = test_certs::connector();
    let channel = channel(server.address, &connector);
    let mut client = EchoClient::new(channel);
    let status = tokio::time::timeout(WAIT, client.say(Request::new("hi".into())))
        .await
        .unwrap()
        .expect_err("no HTTP/2 to speak");
    let message = status.message().to_lowercase();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        message.contains("application protocol") || message.contains("alpn"),
        "the status names the protocol mismatch: {status:?}"
    );
    // The server counts its side of the failed handshake after the client
    // has seen the alert.
    let deadline = std::time::Instant::now() + WAIT;
    while server
        .seen
        .refused_handshakes
        .load(std::sync::atomic::Ordering::SeqCst)
        == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the server never saw the handshake fail"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

//! HTTPS through `clients::http::HttpManager`: requests over TLS to an
//! HTTP/1.1 responder in the test (tokio-rustls on loopback, ALPN
//! `http/1.1`), connections kept alive and reused, sessions resumed after
//! the server closes them. Certificates are made by the test (`rcgen`);
//! every wait is bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::BodyExt;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use ringpool::Pool;
use ringpool::clients::http::HttpManager;
use ringpool::tcp::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use ringpool::tcp::rustls::{self, ServerConfig};
use ringpool::tcp::{Dialer, TlsConnector};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(10);

#[allow(deprecated)] // ring: no post-quantum key exchange; fine for a test
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_requests_are_served_over_kept_alive_connections_and_resume() {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let alpn_ok = Arc::new(AtomicUsize::new(0));
    // Answers `limit` requests per connection, then closes it.
    let limit = 3;
    let server = {
        let (accepted, alpn_ok) = (Arc::clone(&accepted), Arc::clone(&alpn_ok));
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                accepted.fetch_add(1, Ordering::SeqCst);
                let (acceptor, alpn_ok) = (acceptor.clone(), Arc::clone(&alpn_ok));
                tokio::spawn(tokio::time::timeout(WAIT, async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    if tls.get_ref().1.alpn_protocol() == Some(b"http/1.1") {
                        alpn_ok.fetch_add(1, Ordering::SeqCst);
                    }
                    let mut tls = BufReader::new(tls);
                    for served in 1..=limit {
                        let mut line = String::new();
                        loop {
                            line.clear();
                            match tls.read_line(&mut line).await {
                                Ok(0) | Err(_) => return,
                                Ok(_) if line == "\r\n" => break,
                                Ok(_) => {}
                            }
                        }
                        let close = match served == limit {
                            true => "connection: close\r\n",
                            false => "",
                        };
                        let reply =
                            format!("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n{close}\r\nok");
                        if tls.write_all(reply.as_bytes()).await.is_err()
                            || tls.flush().await.is_err()
                        {
                            return;
                        }
                    }
                    let _ = tls.shutdown().await;
                }));
            }
        })
    };

    let tls = TlsConnector::builder()
        .add_root_pem(ca.pem())
        .unwrap()
        .build()
        .unwrap();
    let dialer = Dialer::new(format!("localhost:{port}")).unwrap();
    let manager = HttpManager::<String>::new(dialer).tls(tls);
    let pool = Pool::builder(manager).max_size(1).build().unwrap();
    for _ in 0..(2 * limit) {
        let mut conn = tokio::time::timeout(WAIT, pool.get())
            .await
            .unwrap()
            .unwrap();
        let request = hyper::Request::get("/")
            .header("host", "localhost")
            .body(String::new())
            .unwrap();
        let response = tokio::time::timeout(WAIT, conn.send(request))
            .await
            .unwrap()
            .unwrap();
        assert!(response.status().is_success());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"ok");
    }
    // One connection per `limit` requests; the second one resumed.
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    assert_eq!(alpn_ok.load(Ordering::SeqCst), 2);
    let handshakes = pool.manager().tls_connector().unwrap().handshakes();
    assert_eq!((handshakes.full, handshakes.resumed), (1, 1));
    server.abort();
}

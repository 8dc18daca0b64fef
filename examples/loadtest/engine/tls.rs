//! `--tls`: the run's certificates (a CA and a server certificate for
//! `127.0.0.1`, made with `rcgen`), the embedded server's side, and the
//! client connector every TLS mode shares or copies.

use std::sync::Arc;

use ringpool::tcp::TlsConnector;
use ringpool::tcp::rustls::ServerConfig;
use ringpool::tcp::rustls::pki_types::pem::PemObject;
use ringpool::tcp::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::test_certs;

/// The run's TLS: the server's configuration and the client's connector.
pub struct Tls {
    server: Arc<ServerConfig>,
    connector: TlsConnector,
}

impl Tls {
    pub fn new() -> Result<Tls, Box<dyn std::error::Error>> {
        let certs = test_certs::certs();
        let chain = CertificateDer::pem_slice_iter(certs.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_slice(certs.key_pem.as_bytes())?;
        #[allow(deprecated)] // ring: no post-quantum key exchange; the client matches
        let provider = Arc::new(ringpool::tcp::rustls::crypto::ring::default_provider());
        let server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        Ok(Tls {
            server: Arc::new(server),
            connector: test_certs::connector(),
        })
    }

    /// The embedded server's acceptor.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(Arc::clone(&self.server))
    }

    /// The connector every pool and `no-pool-resumed` share: one client
    /// config, so handshakes after the first resume.
    pub fn connector(&self) -> TlsConnector {
        self.connector.clone()
    }
}

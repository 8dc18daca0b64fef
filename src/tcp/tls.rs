//! TLS on a dialed stream (feature `tls`): the [`TlsConnector`] a manager
//! builds once and every dial shares, its handshake, the handshake counts,
//! and the classification of handshake failures.
//!
//! Owns: the connector and its builder (roots from `webpki-roots`, the
//! platform or PEM files; the server name; a client certificate for mutual
//! TLS; ALPN; or a `rustls::ClientConfig` of the application's own), the
//! handshake on any tokio stream, and [`TlsError`], which says what failed
//! and how to fix it. The counters live in `tls_counters`; the managers
//! that use the connector are [`TokioTlsManager`](super::TokioTlsManager)
//! and, with the `http` feature, `clients::http::HttpManager`.
//!
//! Why one connector per manager, and how failures are classified, is in
//! [`TlsConnector`]'s documentation.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::client::{Resumption, Tls12Resumption};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, HandshakeKind, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::client::TlsStream;

use super::tls_counters::HandshakeCounters;
pub use super::tls_error::{TlsConfigError, TlsError};
use super::tls_problem::{Knobs, explain_refusal};
use crate::manager::TlsHandshakes;

/// Sessions the in-memory store keeps (across all server names).
const SESSIONS: usize = 256;

/// The TLS side of a dial, built once per manager and shared by every dial
/// (cheap to clone: clones share the `ClientConfig`, its session store and
/// the handshake counts).
///
/// # Why one connector per manager
///
/// A full TLS 1.3 handshake costs a certificate chain's verification and a
/// key exchange; a resumed one skips both. rustls resumes only through the
/// session store of the `ClientConfig` that made the first connection, so
/// the connector holds one `Arc<ClientConfig>` that every dial shares, with
/// an in-memory session store (TLS 1.3 tickets and TLS 1.2 session ids or
/// tickets). A pool refilling after idle timeouts, replacing connections at
/// the end of their lifetime or growing after a quiet hour resumes instead
/// of repeating full handshakes. [`TlsConnector::handshakes`] counts both
/// kinds.
///
/// rustls stores a TLS 1.3 ticket when it reads it, and servers send
/// tickets just after the handshake, so a ticket waits in the socket until
/// the connection's first read, or until a checkout or maintenance check
/// of the [`TokioTlsManager`](super::TokioTlsManager) takes it in: a
/// connection warmed and never used still leaves its ticket behind.
///
/// # Failures
///
/// A certificate the connector cannot accept (expired, not valid for the
/// name, an unknown issuer, a bad signature), a client certificate the
/// server refuses, or a server that does not speak the connector's TLS is
/// [`ErrorClass::Fatal`](crate::ErrorClass::Fatal): the pool fails waiting gets at once instead of
/// dialing again and again. A reset, an end of file or a timeout during
/// the handshake is retryable, like a refused TCP dial.
///
/// In TLS 1.3 the client's side of the handshake ends before the server
/// has checked the client certificate, so a server that refuses it says so
/// on the connection's first read (an `io::Error` whose inner error is
/// `rustls::Error::AlertReceived`), not in the dial.
///
/// # Examples
///
/// ```
/// use ringpool::tcp::TlsConnector;
///
/// let tls = TlsConnector::builder()
///     .webpki_roots()
///     .alpn(["http/1.1"])
///     .build()
///     .expect("webpki roots are never empty");
/// assert_eq!(tls.handshakes().full, 0);
/// ```
///
/// A pool over TLS:
///
/// ```no_run
/// use ringpool::Pool;
/// use ringpool::tcp::{TlsConnector, TokioTcpManager};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let tls = TlsConnector::builder()
///     .webpki_roots()
///     .add_root_pem_file("/etc/ringpool/internal-ca.pem")?
///     .build()?;
/// let manager = TokioTcpManager::new("api.internal:443").tls(tls);
/// let pool = Pool::builder(manager).max_size(16).build()?;
/// let mut conn = pool.get().await?;
/// conn.write_all(b"GET /health HTTP/1.1\r\nhost: api.internal\r\n\r\n").await?;
/// conn.flush().await?;
/// let mut reply = [0u8; 12];
/// conn.read_exact(&mut reply).await?;
/// println!("{:?}", pool.manager().handshakes()); // full and resumed so far
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TlsConnector {
    config: Arc<ClientConfig>,
    connector: tokio_rustls::TlsConnector,
    server_name: Option<ServerName<'static>>,
    counters: Arc<HandshakeCounters>,
}

impl std::fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConnector")
            .field("server_name", &self.server_name)
            .field("alpn", &self.config.alpn_protocols.len())
            .field(
                "client_cert",
                &self.config.client_auth_cert_resolver.has_certs(),
            )
            .field("handshakes", &self.handshakes())
            .finish_non_exhaustive()
    }
}

impl TlsConnector {
    /// A builder: add roots, then [`build`](TlsConnectorBuilder::build).
    pub fn builder() -> TlsConnectorBuilder {
        TlsConnectorBuilder {
            roots: RootCertStore::empty(),
            server_name: None,
            client_cert: None,
            alpn: Vec::new(),
            resumption: true,
        }
    }

    /// A connector that trusts the Mozilla roots bundled by `webpki-roots`,
    /// with session resumption on.
    pub fn webpki() -> Self {
        Self::builder()
            .webpki_roots()
            .build()
            .expect("the bundled roots are not empty and no name or key was set")
    }

    /// A connector over a `ClientConfig` of the application's own, used as
    /// it is: its roots, verifier, client certificate, ALPN and resumption
    /// setting (rustls' default is an in-memory store of 256 sessions).
    pub fn from_config(config: Arc<ClientConfig>) -> Self {
        TlsConnector {
            connector: tokio_rustls::TlsConnector::from(Arc::clone(&config)),
            config,
            server_name: None,
            counters: Arc::default(),
        }
    }

    /// The same connector with `name` as the server name of every dial
    /// (instead of the target's host).
    ///
    /// # Errors
    ///
    /// [`TlsError::ServerName`] if `name` is neither a DNS name nor an IP
    /// address.
    pub fn with_server_name(mut self, name: &str) -> Result<Self, TlsError> {
        self.server_name = Some(parse_server_name(name)?);
        Ok(self)
    }

    /// The same connector offering `protocol` by ALPN if it offers none
    /// yet; the copy shares the session store and the counts.
    #[cfg(any(feature = "http", feature = "grpc", feature = "http2"))]
    pub(crate) fn with_default_alpn(self, protocol: &[u8]) -> Self {
        if !self.config.alpn_protocols.is_empty() {
            return self;
        }
        let mut config = (*self.config).clone();
        config.alpn_protocols = vec![protocol.to_vec()];
        let config = Arc::new(config);
        TlsConnector {
            connector: tokio_rustls::TlsConnector::from(Arc::clone(&config)),
            config,
            ..self
        }
    }

    /// The `ClientConfig` every dial shares.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// Handshakes completed so far, full and resumed, by every clone of
    /// this connector.
    pub fn handshakes(&self) -> TlsHandshakes {
        self.counters.read()
    }

    /// The server name a dial to `target` (`host:port`, or a socket
    /// address) presents and checks the certificate against: the one set
    /// on the connector, else the target's host (an IP address is allowed).
    ///
    /// # Errors
    ///
    /// [`TlsError::ServerName`] if the host is no valid name.
    pub fn server_name_for(&self, target: &str) -> Result<ServerName<'static>, TlsError> {
        match &self.server_name {
            Some(name) => Ok(name.clone()),
            None => parse_server_name(host_of(target)),
        }
    }

    /// Runs the client handshake on `stream`, a connection to `target`
    /// (which names the server in errors and, unless the connector sets
    /// one, gives the server name), counts it as full or resumed and logs
    /// it at debug. No timeout of its own: the caller bounds it (the
    /// managers by what is left of `connect_timeout`).
    ///
    /// # Errors
    ///
    /// A [`TlsError`] that says what failed and how to fix it; its
    /// [`class`](TlsError::class) says whether a retry can help.
    pub async fn handshake<IO>(&self, target: &str, stream: IO) -> Result<TlsStream<IO>, TlsError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let name = self.server_name_for(target)?;
        let shown = name.to_str().into_owned();
        let stream = self
            .connector
            .connect(name, stream)
            .await
            .map_err(|error| self.explain(target, &shown, error))?;
        let resumed = stream.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed);
        self.counters.count(resumed);
        tracing::debug!(
            endpoint = %target,
            server_name = %shown,
            resumed,
            version = ?stream.get_ref().1.protocol_version(),
            "tls handshake"
        );
        Ok(stream)
    }

    /// Turns a failed handshake into the error that says what to do.
    fn explain(&self, target: &str, name: &str, error: io::Error) -> TlsError {
        let tls = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .cloned();
        let Some(tls) = tls else {
            return TlsError::Handshake {
                target: target.to_string(),
                source: error,
            };
        };
        let has_client_cert = self.config.client_auth_cert_resolver.has_certs();
        let (problem, fatal) = explain_refusal(&tls, name, has_client_cert, &CONNECTOR_KNOBS);
        match fatal {
            true => TlsError::Refused {
                target: target.to_string(),
                problem,
                source: tls,
            },
            false => TlsError::Handshake {
                target: target.to_string(),
                source: error,
            },
        }
    }
}

/// Builds a [`TlsConnector`]: trusted roots (at least one source), and
/// optionally a server name, a client certificate, ALPN protocols and
/// whether sessions are resumed (on by default).
#[derive(Debug)]
pub struct TlsConnectorBuilder {
    roots: RootCertStore,
    server_name: Option<String>,
    client_cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    alpn: Vec<Vec<u8>>,
    resumption: bool,
}

impl TlsConnectorBuilder {
    /// Trusts the Mozilla roots bundled by `webpki-roots`.
    pub fn webpki_roots(mut self) -> Self {
        self.roots
            .extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        self
    }

    /// Trusts the platform's roots (`rustls-native-certs`: the system
    /// bundle, or `SSL_CERT_FILE` / `SSL_CERT_DIR`). Certificates it cannot
    /// read are logged at warn and skipped.
    ///
    /// # Errors
    ///
    /// [`TlsConfigError::NoNativeRoots`] if none could be loaded.
    pub fn native_roots(mut self) -> Result<Self, TlsConfigError> {
        let loaded = rustls_native_certs::load_native_certs();
        for error in &loaded.errors {
            tracing::warn!(%error, "a platform root certificate could not be loaded");
        }
        let (added, _ignored) = self.roots.add_parsable_certificates(loaded.certs);
        if added == 0 {
            return Err(TlsConfigError::NoNativeRoots {
                errors: loaded.errors.len(),
            });
        }
        Ok(self)
    }

    /// Trusts every certificate in `pem` (one or more `BEGIN CERTIFICATE`
    /// blocks): a private CA.
    ///
    /// # Errors
    ///
    /// [`TlsConfigError::Pem`] if `pem` holds no certificate or one that
    /// cannot be read.
    pub fn add_root_pem(mut self, pem: impl AsRef<[u8]>) -> Result<Self, TlsConfigError> {
        let certs = read_certs(pem.as_ref(), "the CA PEM")?;
        for cert in certs {
            self.roots
                .add(cert)
                .map_err(|source| TlsConfigError::Rustls {
                    what: "a CA certificate",
                    source,
                })?;
        }
        Ok(self)
    }

    /// [`add_root_pem`](Self::add_root_pem) with a file's contents.
    ///
    /// # Errors
    ///
    /// [`TlsConfigError::File`] if it cannot be read; as `add_root_pem`.
    pub fn add_root_pem_file(self, path: impl AsRef<Path>) -> Result<Self, TlsConfigError> {
        let pem = read_file(path.as_ref())?;
        self.add_root_pem(pem)
    }

    /// The server name every dial presents (SNI) and checks the
    /// certificate against, instead of the target's host: for a target
    /// given as an address whose certificate names a host.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// A client certificate for mutual TLS: `chain_pem` holds the
    /// certificate first, then any intermediates; `key_pem` its private key
    /// (PKCS#8, PKCS#1 or SEC1).
    ///
    /// # Errors
    ///
    /// [`TlsConfigError::Pem`] if either cannot be read.
    pub fn client_cert_pem(
        mut self,
        chain_pem: impl AsRef<[u8]>,
        key_pem: impl AsRef<[u8]>,
    ) -> Result<Self, TlsConfigError> {
        let chain = read_certs(chain_pem.as_ref(), "the client certificate PEM")?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_ref()).map_err(|error| {
            TlsConfigError::Pem {
                what: "the client key PEM",
                problem: error.to_string(),
            }
        })?;
        self.client_cert = Some((chain, key));
        Ok(self)
    }

    /// The ALPN protocols offered, most preferred first (`"http/1.1"`,
    /// `"h2"`, ...). None by default.
    pub fn alpn<P: AsRef<[u8]>>(mut self, protocols: impl IntoIterator<Item = P>) -> Self {
        self.alpn = protocols
            .into_iter()
            .map(|protocol| protocol.as_ref().to_vec())
            .collect();
        self
    }

    /// Whether sessions are resumed (on by default). Off, every dial is a
    /// full handshake: only for measuring what resumption saves.
    pub fn resumption(mut self, on: bool) -> Self {
        self.resumption = on;
        self
    }

    /// The connector.
    ///
    /// # Errors
    ///
    /// [`TlsConfigError::NoRoots`] if no root was added; a
    /// [`TlsConfigError::ServerName`] for a name that is not one; a
    /// [`TlsConfigError::Rustls`] if the client key does not fit its
    /// certificate.
    pub fn build(self) -> Result<TlsConnector, TlsConfigError> {
        if self.roots.is_empty() {
            return Err(TlsConfigError::NoRoots);
        }
        let server_name = match &self.server_name {
            Some(name) => Some(
                parse_server_name(name)
                    .map_err(|_| TlsConfigError::ServerName { name: name.clone() })?,
            ),
            None => None,
        };
        let provider = Arc::new(provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|source| TlsConfigError::Rustls {
                what: "the protocol versions",
                source,
            })?
            .with_root_certificates(self.roots);
        let mut config = match self.client_cert {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .map_err(|source| TlsConfigError::Rustls {
                    what: "the client certificate and key",
                    source,
                })?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = self.alpn;
        config.resumption = match self.resumption {
            true => Resumption::in_memory_sessions(SESSIONS)
                .tls12_resumption(Tls12Resumption::SessionIdOrTickets),
            false => Resumption::disabled(),
        };
        let mut connector = TlsConnector::from_config(Arc::new(config));
        connector.server_name = server_name;
        Ok(connector)
    }
}

/// The connector's settings, as a fix names them.
const CONNECTOR_KNOBS: Knobs = Knobs {
    roots: "`add_root_pem` (or `native_roots()` for the platform's)",
    server_name: "`server_name`",
    client_cert: "`client_cert_pem`",
    alpn: "`alpn`",
};

/// The crypto provider of the connectors this crate builds: ring, not
/// aws-lc-rs, because it builds with a C compiler alone; with X25519 as the
/// first key exchange. rustls 0.23.48 moved ring's default to P-384 first,
/// and ring's P-384 costs about 1.7 ms of client CPU per handshake here
/// (two point multiplications), which made a resumed handshake as dear as
/// a full one; X25519 costs a few tens of microseconds. (It also
/// deprecated ring's provider for lacking post-quantum key exchange.)
pub(crate) fn provider() -> rustls::crypto::CryptoProvider {
    use rustls::crypto::ring::kx_group;
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    provider.kx_groups = vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1];
    provider
}

/// The host part of `host:port`, `[v6]:port` or a bare host.
fn host_of(target: &str) -> &str {
    if let Ok(addr) = target.parse::<std::net::SocketAddr>() {
        return match addr {
            std::net::SocketAddr::V4(_) => target.rsplit_once(':').map_or(target, |(host, _)| host),
            std::net::SocketAddr::V6(_) => target
                .rsplit_once(':')
                .map_or(target, |(host, _)| host)
                .trim_start_matches('[')
                .trim_end_matches(']'),
        };
    }
    match target.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => {
            host.trim_start_matches('[').trim_end_matches(']')
        }
        _ => target,
    }
}

fn parse_server_name(name: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(name.to_string()).map_err(|_| TlsError::ServerName {
        name: name.to_string(),
    })
}

fn read_certs(
    pem: &[u8],
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsConfigError::Pem {
            what,
            problem: error.to_string(),
        })?;
    match certs.is_empty() {
        true => Err(TlsConfigError::Pem {
            what,
            problem: "no `BEGIN CERTIFICATE` block found".to_string(),
        }),
        false => Ok(certs),
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsConfigError> {
    std::fs::read(path).map_err(|source| TlsConfigError::File {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests;

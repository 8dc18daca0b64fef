//! Why a TLS connector could not be built, and why a TLS dial failed.

use std::io;

use crate::manager::ErrorClass;

/// Why a [`TlsConnector`](super::TlsConnector) could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// No trusted root was added.
    #[error(
        "the TLS connector trusts no root: call `webpki_roots()`, `native_roots()` or \
         `add_root_pem(...)` on the builder"
    )]
    NoRoots,
    /// The platform's root store gave no usable certificate.
    #[error(
        "no platform root certificate could be loaded ({errors} errors, logged at warn): install \
         the system's CA bundle (Debian: ca-certificates), set SSL_CERT_FILE, or use `webpki_roots()`"
    )]
    NoNativeRoots {
        /// Errors met while loading them.
        errors: usize,
    },
    /// A PEM input could not be read.
    #[error("{what}: {problem}")]
    Pem {
        /// Which input.
        what: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The server name is neither a DNS name nor an IP address.
    #[error("`{name}` is not a TLS server name: give a DNS name (api.internal) or an IP address")]
    ServerName {
        /// The name given.
        name: String,
    },
    /// rustls refused part of the configuration.
    #[error("{what}: {source}")]
    Rustls {
        /// Which part.
        what: &'static str,
        /// rustls' error.
        #[source]
        source: rustls::Error,
    },
}

/// Why a TLS dial failed. [`class`](TlsError::class) says whether the pool
/// should dial again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The TCP dial failed (refused, reset, timed out: see
    /// [`Dialer::classify`](super::Dialer::classify)).
    #[error("dial {target}: {source}")]
    Dial {
        /// The target dialed.
        target: String,
        /// What the dial failed with.
        #[source]
        source: io::Error,
    },
    /// The handshake was cut short (a reset, an end of file, a timeout):
    /// retryable.
    #[error("TLS handshake with {target}: {source}")]
    Handshake {
        /// The target dialed.
        target: String,
        /// What the handshake failed with.
        #[source]
        source: io::Error,
    },
    /// The handshake was refused: a certificate this client cannot accept,
    /// a client certificate the server refused, or a server that does not
    /// speak this client's TLS. Fatal: retrying cannot help.
    #[error("TLS handshake with {target} refused: {problem}")]
    Refused {
        /// The target dialed.
        target: String,
        /// What failed and how to fix it.
        problem: String,
        /// rustls' error.
        #[source]
        source: rustls::Error,
    },
    /// The server name is neither a DNS name nor an IP address.
    #[error(
        "`{name}` is not a TLS server name: dial a host name or an IP address, or set `server_name`"
    )]
    ServerName {
        /// The name.
        name: String,
    },
}

impl TlsError {
    /// Whether retrying can help: a refused handshake or a bad server name
    /// cannot; a cut-short handshake can; a TCP dial error as
    /// [`Dialer::classify`](super::Dialer::classify) says.
    pub fn class(&self) -> ErrorClass {
        match self {
            TlsError::Dial { source, .. } => super::ping::classify(source),
            TlsError::Handshake { .. } => ErrorClass::Retryable,
            TlsError::Refused { .. } | TlsError::ServerName { .. } => ErrorClass::Fatal,
        }
    }

    /// The rustls error behind a refused handshake.
    pub fn rustls_error(&self) -> Option<&rustls::Error> {
        match self {
            TlsError::Refused { source, .. } => Some(source),
            _ => None,
        }
    }
}

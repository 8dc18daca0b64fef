#![allow(dead_code)]
//! A CA and a server certificate it issued for `localhost` and
//! `127.0.0.1`, made once per test binary with `rcgen`, for the tests that
//! run real servers over TLS.

use std::sync::OnceLock;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// The CA's certificate and the server's certificate and key, in PEM.
pub struct Certs {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// The binary's certificates.
pub fn certs() -> &'static Certs {
    static CERTS: OnceLock<Certs> = OnceLock::new();
    CERTS.get_or_init(|| {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "ringpool test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        Certs {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    })
}

/// A connector that trusts the test CA alone.
pub fn connector() -> ringpool::tcp::TlsConnector {
    ringpool::tcp::TlsConnector::builder()
        .add_root_pem(certs().ca_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap()
}

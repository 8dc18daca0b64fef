#![allow(dead_code)]
//! A CA and the certificates it issued, made once per test binary with
//! `rcgen`, for the tests that run real servers over TLS: a server
//! certificate for `localhost` and `127.0.0.1`, an expired one, one for
//! another name, and a client certificate for mutual TLS.

use std::sync::OnceLock;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    date_time_ymd,
};

/// A certificate and its key, in PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// The CA's certificate and the server's certificate and key, in PEM,
/// with the other certificates the CA issued.
pub struct Certs {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    /// For `localhost` and `127.0.0.1`, expired in 2021.
    pub expired: Issued,
    /// For `other.example` only.
    pub wrong_name: Issued,
    /// A client certificate (`client`).
    pub client: Issued,
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
        let issue = |names: &[&str], client: bool, expired: bool| {
            let key = KeyPair::generate().unwrap();
            let mut params =
                CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                    .unwrap();
            if client {
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            }
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
                key_pem: key.serialize_pem(),
            }
        };
        let server = issue(&["localhost", "127.0.0.1"], false, false);
        Certs {
            ca_pem: ca.pem(),
            cert_pem: server.cert_pem,
            key_pem: server.key_pem,
            expired: issue(&["localhost", "127.0.0.1"], false, true),
            wrong_name: issue(&["other.example"], false, false),
            client: issue(&["client"], true, false),
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

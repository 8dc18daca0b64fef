//! What a refused TLS handshake means and how to fix it, from rustls'
//! error: shared by ringpool's own TLS dials and by the clients that run
//! rustls themselves (`mysql_async`).

use std::time::{Duration, SystemTime};

use rustls::pki_types::UnixTime;
use rustls::{AlertDescription, CertificateError};

/// The settings a fix names, as the caller's API spells them.
pub(crate) struct Knobs {
    /// Where trusted roots are added.
    pub(crate) roots: &'static str,
    /// Where the name the certificate is checked against is set.
    pub(crate) server_name: &'static str,
    /// Where the client certificate is set.
    pub(crate) client_cert: &'static str,
    /// Where the ALPN protocols are set.
    pub(crate) alpn: &'static str,
}

/// What failed in a handshake that ended with `tls` (dialing the server
/// named `name`, with or without a client certificate), what to do about
/// it in terms of `knobs`, and whether it is fatal (retrying cannot help).
pub(crate) fn explain_refusal(
    tls: &rustls::Error,
    name: &str,
    has_client_cert: bool,
    knobs: &Knobs,
) -> (String, bool) {
    match tls {
        rustls::Error::InvalidCertificate(certificate) => {
            (certificate_problem(certificate, name, knobs), true)
        }
        rustls::Error::AlertReceived(alert) => alert_problem(*alert, has_client_cert, knobs),
        rustls::Error::NoApplicationProtocol => (
            format!(
                "the server speaks none of the ALPN protocols offered: change {} to one it \
                 supports",
                knobs.alpn
            ),
            true,
        ),
        rustls::Error::PeerIncompatible(why) => (
            format!(
                "the server and this client share no TLS version or cipher suite ({why:?}): \
                 enable TLS 1.2 or 1.3 with a modern suite on the server"
            ),
            true,
        ),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => (
            "the server's reply is not TLS: check that this port serves TLS \
             (and is not a plain-text port)"
                .to_string(),
            true,
        ),
        other => (format!("the handshake failed: {other}"), false),
    }
}

/// What is wrong with the server's certificate, and what to do about it.
fn certificate_problem(error: &CertificateError, name: &str, knobs: &Knobs) -> String {
    match error {
        CertificateError::NotValidForNameContext { presented, .. } => format!(
            "the server's certificate is not valid for name `{name}` (it names {}): connect with \
             the name the certificate was issued for, or set {}",
            match presented.is_empty() {
                true => "no name".to_string(),
                false => presented
                    .iter()
                    .map(|name| format!("`{name}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
            },
            knobs.server_name
        ),
        CertificateError::NotValidForName => format!(
            "the server's certificate is not valid for name `{name}`: connect with the name the \
             certificate was issued for, or set {}",
            knobs.server_name
        ),
        CertificateError::ExpiredContext { time, not_after } => format!(
            "the server's certificate expired at {} (it is now {}): renew it on the server, or \
             check this machine's clock",
            show_time(*not_after),
            show_time(*time)
        ),
        CertificateError::Expired => "the server's certificate has expired: renew it on the \
                                      server, or check this machine's clock"
            .to_string(),
        CertificateError::NotValidYetContext { time, not_before } => format!(
            "the server's certificate is not valid before {} (it is now {}): check the clocks of \
             this machine and the server",
            show_time(*not_before),
            show_time(*time)
        ),
        CertificateError::NotValidYet => "the server's certificate is not valid yet: check the \
                                          clocks of this machine and the server"
            .to_string(),
        CertificateError::UnknownIssuer => format!(
            "the server's certificate was issued by a CA this client does not trust: add its CA \
             with {}, or make the server send its intermediate certificates",
            knobs.roots
        ),
        CertificateError::BadSignature => "the server's certificate chain has a bad signature \
                                           (a certificate not signed by the CA it names): \
                                           reissue the server's certificate"
            .to_string(),
        CertificateError::Revoked => "the server's certificate has been revoked: issue it a new \
                                      one"
        .to_string(),
        other => format!(
            "the server's certificate was not accepted ({other}): check it with \
                          `openssl s_client -connect host:port -showcerts`"
        ),
    }
}

/// What an alert from the server during the handshake means; whether it is
/// fatal.
fn alert_problem(alert: AlertDescription, has_client_cert: bool, knobs: &Knobs) -> (String, bool) {
    use AlertDescription as A;
    match alert {
        A::CertificateRequired if !has_client_cert => (
            format!(
                "the server requires a client certificate (mutual TLS): set one with {}",
                knobs.client_cert
            ),
            true,
        ),
        A::BadCertificate
        | A::UnsupportedCertificate
        | A::CertificateRevoked
        | A::CertificateExpired
        | A::CertificateUnknown
        | A::UnknownCA
        | A::CertificateRequired
        | A::AccessDenied => (
            format!(
                "the server refused the client certificate (alert {alert:?}): {}",
                match has_client_cert {
                    true => "check that the server trusts its CA and that it has not expired"
                        .to_string(),
                    false => format!(
                        "the server requires mutual TLS: set a client certificate with {}",
                        knobs.client_cert
                    ),
                }
            ),
            true,
        ),
        A::HandshakeFailure | A::ProtocolVersion | A::InsufficientSecurity => (
            format!(
                "the server found no TLS version or cipher suite it shares with this client \
                 (alert {alert:?}): enable TLS 1.2 or 1.3 with a modern suite on the server"
            ),
            true,
        ),
        A::NoApplicationProtocol => (
            format!(
                "the server speaks none of the ALPN protocols offered: change {}",
                knobs.alpn
            ),
            true,
        ),
        A::UnrecognisedName => (
            format!(
                "the server does not serve the name presented (SNI): set {} to one it serves",
                knobs.server_name
            ),
            true,
        ),
        other => (format!("the server sent alert {other:?}"), false),
    }
}

fn show_time(time: UnixTime) -> String {
    humantime::format_rfc3339_seconds(SystemTime::UNIX_EPOCH + Duration::from_secs(time.as_secs()))
        .to_string()
}

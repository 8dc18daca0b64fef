use super::*;

#[test]
fn the_server_name_is_the_targets_host_or_address() {
    assert_eq!(host_of("api.internal:443"), "api.internal");
    assert_eq!(host_of("127.0.0.1:443"), "127.0.0.1");
    assert_eq!(host_of("[::1]:443"), "::1");
    assert_eq!(host_of("api.internal"), "api.internal");
    let tls = TlsConnector::webpki();
    assert!(matches!(
        tls.server_name_for("127.0.0.1:443"),
        Ok(ServerName::IpAddress(_))
    ));
    assert!(matches!(
        tls.server_name_for("[::1]:443"),
        Ok(ServerName::IpAddress(_))
    ));
    assert!(matches!(
        tls.server_name_for("localhost:443"),
        Ok(ServerName::DnsName(_))
    ));
}

#[test]
fn a_connector_without_roots_says_how_to_add_them() {
    let error = TlsConnector::builder().build().unwrap_err();
    assert!(error.to_string().contains("webpki_roots()"), "{error}");
    let error = TlsConnector::builder().add_root_pem("not pem").unwrap_err();
    assert!(error.to_string().contains("BEGIN CERTIFICATE"), "{error}");
}

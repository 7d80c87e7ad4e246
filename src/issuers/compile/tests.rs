use super::*;

#[test]
fn fetch_urls_are_https_or_loopback_http() {
    assert!(fetch_uri("https://idp.example.com/realms/a/protocol/openid-connect/certs").is_ok());
    for ok in [
        "http://127.0.0.1:8080/certs",
        "http://[::1]:9/x",
        "http://localhost/x",
    ] {
        assert!(fetch_uri(ok).is_ok(), "{ok}");
    }
    for bad in [
        "http://idp.example.com/certs",
        "http://10.0.0.1/certs",
        "ftp://127.0.0.1/x",
        "https://user:pw@idp.example.com/x",
        "/certs",
    ] {
        assert!(fetch_uri(bad).is_err(), "{bad}");
    }
}

//! Behind a load balancer: X-Forwarded-For / -Proto are believed only from trusted proxies.

use std::net::SocketAddr;

use crate::common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PUBLIC_ROUTE: &str = r#"
[upstreams.api]
url = "UPSTREAM"

[[routes]]
path = "/public/**"
upstream = "api"
auth = "none"
"#;

/// Sends a plain-HTTP GET with extra header lines and returns the status line.
async fn plain_request(addr: SocketAddr, extra: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect plain listener");
    let request =
        format!("GET /public/x HTTP/1.1\r\nHost: lb.example\r\n{extra}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    answer.lines().next().unwrap_or_default().to_string()
}

async fn forwarded_headers(trusted: &str) -> (String, String) {
    let up = MockUpstream::start(Mode::Record).await;
    let mut cfg = GatewayConfig::new(PUBLIC_ROUTE.replace("UPSTREAM", &up.url())).plain();
    if !trusted.is_empty() {
        cfg = cfg.listen(&format!("trusted_proxies = [{trusted}]"));
    }
    let gw = Gateway::start(cfg).await;
    let status = plain_request(
        gw.plain.expect("plain listener"),
        "X-Forwarded-For: 6.6.6.6, 198.51.100.7\r\nX-Forwarded-Proto: https\r\n",
    )
    .await;
    assert!(status.contains("200"), "{status}\n{}", gw.log());
    let seen = up.seen().pop().expect("the upstream saw the request");
    let header = |name: &str| {
        seen.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    (header("x-forwarded-for"), header("x-forwarded-proto"))
}

#[tokio::test]
async fn an_untrusted_peer_cannot_choose_its_forwarded_address_or_scheme() {
    let (xff, proto) = forwarded_headers("").await;
    assert_eq!(xff, "127.0.0.1");
    assert_eq!(proto, "http");
}

#[tokio::test]
async fn a_trusted_proxy_chain_is_kept_and_the_peer_appended() {
    let (xff, proto) = forwarded_headers("\"127.0.0.0/8\"").await;
    assert_eq!(xff, "6.6.6.6, 198.51.100.7, 127.0.0.1");
    assert_eq!(proto, "https");
}

#[tokio::test]
async fn an_invalid_trusted_range_is_a_config_error_with_position() {
    let dir = TestDir::new();
    let up = "http://127.0.0.1:9";
    let cfg = GatewayConfig::new(PUBLIC_ROUTE.replace("UPSTREAM", up))
        .listen("trusted_proxies = [\"10.0.0.0/40\"]");
    let gw_dir = Gateway::prepare(&dir, &cfg);
    let out = run_cli(&["check", "--config", gw_dir.to_str().expect("utf-8 path")]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("invalid address range \"10.0.0.0/40\""),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("gateway.toml:9:"), "{}", out.stderr);
}

#[tokio::test]
async fn check_warns_about_an_upstream_nothing_listens_on_but_still_passes() {
    let dir = TestDir::new();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let cfg = GatewayConfig::new(PUBLIC_ROUTE.replace("UPSTREAM", &dead));
    let (cert_pem, key_pem, _) = tls_cert();
    dir.write("cert.pem", &cert_pem);
    dir.write("key.pem", &key_pem);
    let gateway_toml = Gateway::prepare(&dir, &cfg);
    let out = run_cli(&[
        "check",
        "--config",
        gateway_toml.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("upstream \"api\" cannot be contacted now"),
        "{}",
        out.stderr
    );
}

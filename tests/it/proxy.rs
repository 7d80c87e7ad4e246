//! Forwarding: protocols, streaming bodies, upstream faults, host and prefix routing.

use std::time::Duration;

use crate::common::*;
use http::{StatusCode, Version};

const TEN_MB: u64 = 10 * 1024 * 1024;

#[tokio::test]
async fn http1_request_is_proxied() {
    let echo = Upstream::echo().await;
    let gw = Gateway::start(GatewayConfig::standard(&echo.url())).await;
    let resp = gw.client().get("/public/a?b=c").send_h1().await;
    assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());
    assert_eq!(resp.version, Version::HTTP_11);
    let body = resp.json();
    assert_eq!(body["method"], "GET");
    assert_eq!(body["path"], "/public/a");
    assert_eq!(body["query"], "b=c");
}

#[tokio::test]
async fn http2_is_negotiated_by_alpn_and_proxied() {
    let echo = Upstream::echo().await;
    let gw = Gateway::start(GatewayConfig::standard(&echo.url())).await;
    let resp = gw
        .client()
        .get("/api/x")
        .bearer(&gw.token("alice", &["user"]))
        .send_h2()
        .await;
    assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());
    assert_eq!(resp.version, Version::HTTP_2);
    assert_eq!(resp.json()["path"], "/api/x");
    assert_eq!(resp.echoed_header("x-auth-user").as_deref(), Some("alice"));
}

#[tokio::test]
async fn client_without_alpn_gets_http1() {
    let echo = Upstream::echo().await;
    let gw = Gateway::start(GatewayConfig::standard(&echo.url())).await;
    let resp = gw
        .client()
        .raw(b"GET /public/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(resp.status, 200, "{}", resp.all);
    let tls = gw
        .client()
        .connect_tls(&[])
        .await
        .expect("TLS without ALPN");
    assert_eq!(tls.get_ref().1.alpn_protocol(), None);
}

/// Both protocols a client may speak to the gateway.
const VERSIONS: [Version; 2] = [Version::HTTP_11, Version::HTTP_2];

#[tokio::test]
async fn ten_megabyte_upload_streams_through_intact_over_http1_and_http2() {
    let up = MockUpstream::start(Mode::Digest).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url())).await;
    let want = Digest::of_pattern(TEN_MB);
    for version in VERSIONS {
        let resp = gw
            .client()
            .post("/open/upload")
            .pattern_body(TEN_MB)
            .send(version)
            .await;
        assert_eq!(resp.status, StatusCode::OK, "{version:?}: {}", resp.text());
        assert_eq!(resp.version, version);
        let got = resp.json();
        assert_eq!(got["len"], want.len, "{version:?}: upstream got {got}");
        assert_eq!(
            got["fnv"],
            want.hash.to_string(),
            "{version:?}: upstream got {got}"
        );
    }
}

#[tokio::test]
async fn ten_megabyte_download_streams_through_intact_over_http1_and_http2() {
    let up = MockUpstream::start(Mode::Download(TEN_MB)).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url())).await;
    for version in VERSIONS {
        let resp = gw.client().get("/public/big.bin").send(version).await;
        assert_eq!(resp.status, StatusCode::OK, "{version:?}");
        assert_eq!(resp.version, version);
        assert_eq!(resp.body.len() as u64, TEN_MB, "{version:?}");
        assert_eq!(resp.digest(), Digest::of_pattern(TEN_MB), "{version:?}");
    }
}

#[tokio::test]
async fn dead_upstream_is_502_json() {
    let dead = format!("http://127.0.0.1:{}", free_port());
    let gw = Gateway::start(GatewayConfig::standard(&dead)).await;
    let resp = gw.client().get("/public/x").send_h1().await;
    assert_eq!(
        resp.status,
        StatusCode::BAD_GATEWAY,
        "body: {}",
        resp.text()
    );
    let body = resp.json();
    assert!(body["error"].is_string(), "502 body: {body}");
}

#[tokio::test]
async fn slow_upstream_is_504_json() {
    let up = MockUpstream::start(Mode::Slow(Duration::from_secs(10))).await;
    let routes = format!(
        r#"[upstreams.slow]
url = "{}"
connect_timeout = "1s"
timeout = "500ms"

[[routes]]
path = "/**"
upstream = "slow"
auth = "none"
"#,
        up.url()
    );
    let gw = Gateway::start(GatewayConfig::new(routes)).await;
    let resp = gw.client().get("/anything").send_h1().await;
    assert_eq!(
        resp.status,
        StatusCode::GATEWAY_TIMEOUT,
        "body: {}",
        resp.text()
    );
    let body = resp.json();
    assert!(body["error"].is_string(), "504 body: {body}");
    assert_eq!(up.seen_targets(), vec!["/anything".to_string()]);
}

#[tokio::test]
async fn host_route_matches_only_its_host() {
    let up = MockUpstream::start(Mode::Record).await;
    let routes = format!(
        r#"[upstreams.api]
url = "{}"

[[routes]]
host = "a.example"
path = "/site/**"
upstream = "api"
auth = "none"
"#,
        up.url()
    );
    let gw = Gateway::start(GatewayConfig::new(routes)).await;
    let resp = gw.client().get("/site/x").host("a.example").send_h1().await;
    assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());
    let resp = gw.client().get("/site/y").host("b.example").send_h1().await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND, "body: {}", resp.text());
    let resp = gw.client().get("/site/z").send_h1().await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND, "body: {}", resp.text());
    assert_eq!(up.seen_targets(), vec!["/site/x".to_string()]);
}

#[tokio::test]
async fn host_route_ignores_the_port_in_host() {
    let up = MockUpstream::start(Mode::Record).await;
    let routes = format!(
        r#"[upstreams.api]
url = "{}"

[[routes]]
host = "a.example"
path = "/site/**"
upstream = "api"
auth = "none"
"#,
        up.url()
    );
    let gw = Gateway::start(GatewayConfig::new(routes)).await;
    let with_port = format!("a.example:{}", gw.https.port());
    let resp = gw.client().get("/site/x").host(&with_port).send_h1().await;
    assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());
    let resp = gw.client().get("/site/h2").host(&with_port).send_h2().await;
    assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());
}

#[tokio::test]
async fn strip_prefix_rewrites_the_forwarded_path() {
    let up = MockUpstream::start(Mode::Record).await;
    let routes = format!(
        r#"[upstreams.api]
url = "{}"

[[routes]]
path = "/svc/**"
upstream = "api"
auth = "none"
strip_prefix = "/svc"
"#,
        up.url()
    );
    let gw = Gateway::start(GatewayConfig::new(routes)).await;
    let resp = gw.client().get("/svc/a/b?x=1").send_h1().await;
    assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());
    assert_eq!(up.seen_targets(), vec!["/a/b?x=1".to_string()]);
}

#[tokio::test]
async fn roles_all_and_claims_policies_are_enforced() {
    let up = MockUpstream::start(Mode::Record).await;
    let routes = format!(
        r#"[upstreams.api]
url = "{}"

[[routes]]
path = "/both/**"
upstream = "api"
roles_all = ["a", "b"]

[[routes]]
path = "/acme/**"
upstream = "api"
claims = {{ tenant = "acme" }}
"#,
        up.url()
    );
    let gw = Gateway::start(GatewayConfig::new(routes)).await;
    let c = gw.client();
    assert_eq!(
        c.get("/both/x")
            .bearer(&gw.token("u", &["a"]))
            .send_h1()
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        c.get("/both/x")
            .bearer(&gw.token("u", &["b", "a"]))
            .send_h1()
            .await
            .status,
        StatusCode::OK
    );
    let mut acme = gw.claims("u", &[]);
    acme["tenant"] = "acme".into();
    let mut other = gw.claims("u", &[]);
    other["tenant"] = "other".into();
    assert_eq!(
        c.get("/acme/x")
            .bearer(&gw.sign(&gw.header(), &acme))
            .send_h1()
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        c.get("/acme/x")
            .bearer(&gw.sign(&gw.header(), &other))
            .send_h1()
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        up.seen_targets(),
        vec!["/both/x".to_string(), "/acme/x".to_string()]
    );
}

#[tokio::test]
async fn plain_listener_serves_routes() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url()).plain()).await;
    let plain = gw.plain.expect("plain listener configured");
    let (status, _) = plain_get(plain, "/public/x")
        .await
        .expect("plain HTTP request");
    assert_eq!(status, 200);
    let (status, _) = plain_get(plain, "/admin/x")
        .await
        .expect("plain HTTP request");
    assert_eq!(status, 401);
    assert_eq!(up.seen_targets(), vec!["/public/x".to_string()]);
}

#[tokio::test]
async fn admin_health_endpoints_answer_200() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url())).await;
    assert_eq!(
        plain_get(gw.admin, "/healthz").await.expect("healthz").0,
        200
    );
    assert_eq!(plain_get(gw.admin, "/readyz").await.expect("readyz").0, 200);
}

#[tokio::test]
async fn connection_is_reused_for_several_requests() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url())).await;
    let mut req = String::new();
    req.push_str("GET /public/1 HTTP/1.1\r\nHost: localhost\r\n\r\n");
    req.push_str("GET /public/2 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let resp = gw.client().raw(req.as_bytes()).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.all.matches("HTTP/1.1 200").count(), 2, "{}", resp.all);
    assert_eq!(
        up.seen_targets(),
        vec!["/public/1".to_string(), "/public/2".to_string()]
    );
}

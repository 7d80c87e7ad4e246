//! Host confusion: a host-specific admin route must not be dodged by spelling the host
//! differently, sending two of them, or naming another host in the request target.

use crate::common::*;
use http::StatusCode;

/// `admin.example` needs role admin; every other host falls through to a public route.
fn host_routes(upstream_url: &str) -> String {
    format!(
        r#"[upstreams.api]
url = "{upstream_url}"
connect_timeout = "2s"
timeout = "10s"

[[routes]]
host = "admin.example"
path = "/**"
upstream = "api"
roles_any = ["admin"]

[[routes]]
path = "/**"
upstream = "api"
auth = "none"
"#
    )
}

async fn start() -> (Gateway, MockUpstream) {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::new(host_routes(&up.url()))).await;
    (gw, up)
}

/// Raw bytes in, first response out; the request must end with `Connection: close`.
async fn raw_status(gw: &Gateway, request: &str) -> RawResponse {
    gw.client().raw(request.as_bytes()).await
}

fn header_values(seen: &Seen, name: &str) -> Vec<String> {
    seen.headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

#[tokio::test]
async fn admin_host_without_token_is_401_over_h1_and_h2() {
    let (gw, up) = start().await;
    let h1 = gw.client().get("/x").host("admin.example").send_h1().await;
    assert_eq!(h1.status, StatusCode::UNAUTHORIZED, "body: {}", h1.text());
    let h2 = gw.client().get("/x").host("admin.example").send_h2().await;
    assert_eq!(h2.status, StatusCode::UNAUTHORIZED, "body: {}", h2.text());
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}

#[tokio::test]
async fn admin_host_with_admin_token_reaches_the_upstream() {
    let (gw, up) = start().await;
    let resp = gw
        .client()
        .get("/x")
        .host("admin.example")
        .bearer(&gw.token("root", &["admin"]))
        .send_h1()
        .await;
    assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());
    let user = gw
        .client()
        .get("/x")
        .host("admin.example")
        .bearer(&gw.token("bob", &["user"]))
        .send_h1()
        .await;
    assert_eq!(user.status, StatusCode::FORBIDDEN, "body: {}", user.text());
    let seen = up.seen();
    assert_eq!(seen.len(), 1, "upstream saw {:?}", up.seen_targets());
    assert_eq!(header_values(&seen[0], "host"), ["admin.example"]);
}

#[tokio::test]
async fn absolute_form_target_disagreeing_with_host_is_400() {
    let (gw, up) = start().await;
    for (target_host, host) in [
        ("public.example", "admin.example"),
        ("admin.example", "public.example"),
    ] {
        let resp = raw_status(
            &gw,
            &format!(
                "GET http://{target_host}/x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            ),
        )
        .await;
        assert_eq!(
            resp.status, 400,
            "target {target_host}, Host {host}: {}",
            resp.all
        );
    }
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}

#[tokio::test]
async fn absolute_form_target_picks_the_route_when_it_agrees_with_host() {
    let (gw, up) = start().await;
    let resp = raw_status(
        &gw,
        "GET http://admin.example/x HTTP/1.1\r\nHost: admin.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(resp.status, 401, "{}", resp.all);
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}

#[tokio::test]
async fn admin_host_in_other_spellings_is_still_the_admin_host() {
    let (gw, up) = start().await;
    for host in [
        "ADMIN.example:8443",
        "admin.example.",
        "Admin.Example",
        "admin.example.:8443",
    ] {
        let h1 = gw.client().get("/x").host(host).send_h1().await;
        assert_eq!(h1.status, StatusCode::UNAUTHORIZED, "h1 Host {host:?}");
        let h2 = gw.client().get("/x").host(host).send_h2().await;
        assert_eq!(
            h2.status,
            StatusCode::UNAUTHORIZED,
            "h2 :authority {host:?}"
        );
    }
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}

#[tokio::test]
async fn two_host_headers_are_400() {
    let (gw, up) = start().await;
    for (first, second) in [
        ("public.example", "admin.example"),
        ("admin.example", "public.example"),
        ("public.example", "public.example"),
    ] {
        let resp = raw_status(
            &gw,
            &format!(
                "GET /x HTTP/1.1\r\nHost: {first}\r\nHost: {second}\r\nConnection: close\r\n\r\n"
            ),
        )
        .await;
        assert_eq!(resp.status, 400, "Host {first} + {second}: {}", resp.all);
    }
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}

#[tokio::test]
async fn h2_host_header_disagreeing_with_authority_is_400() {
    let (gw, up) = start().await;
    let resp = gw
        .client()
        .get("/x")
        .host("public.example")
        .header("host", "admin.example")
        .send_h2()
        .await;
    assert_eq!(
        resp.status,
        StatusCode::BAD_REQUEST,
        "body: {}",
        resp.text()
    );
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}

#[tokio::test]
async fn public_host_reaches_the_upstream_as_host_and_forwarded_host() {
    let (gw, up) = start().await;
    let h1 = gw.client().get("/x").host("public.example").send_h1().await;
    assert_eq!(h1.status, StatusCode::OK, "body: {}", h1.text());
    let h2 = gw.client().get("/y").host("public.example").send_h2().await;
    assert_eq!(h2.status, StatusCode::OK, "body: {}", h2.text());
    let seen = up.seen();
    assert_eq!(seen.len(), 2, "upstream saw {:?}", up.seen_targets());
    for s in &seen {
        assert_eq!(header_values(s, "host"), ["public.example"], "{}", s.target);
        assert_eq!(
            header_values(s, "x-forwarded-host"),
            ["public.example"],
            "{}",
            s.target
        );
    }
}

/// RFC 9112 3.2: a Host that is not `host [":" port]` is a 400. Passed on, it would route
/// as "some other host" while an upstream that parses it as a URL authority (userinfo
/// dropped, first comma-separated value taken) reads `admin.example`.
#[tokio::test]
async fn host_with_invalid_syntax_is_400() {
    let (gw, up) = start().await;
    for host in [
        "x@admin.example",
        "admin.example, public.example",
        "admin.example public",
        "admin.example/",
    ] {
        let resp = raw_status(
            &gw,
            &format!("GET /x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(resp.status, 400, "Host {host:?}: {}", resp.all);
    }
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}

/// RFC 9110 4.2.4: userinfo in an http(s) URI is an error.
#[tokio::test]
async fn absolute_form_target_with_userinfo_is_400() {
    let (gw, up) = start().await;
    let resp = raw_status(
        &gw,
        "GET http://x@admin.example/x HTTP/1.1\r\nHost: x@admin.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(resp.status, 400, "{}", resp.all);
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}

/// RFC 9112 3.2: an HTTP/1.1 request without Host is a 400.
#[tokio::test]
async fn http11_request_without_host_is_400() {
    let (gw, up) = start().await;
    let resp = raw_status(&gw, "GET /x HTTP/1.1\r\nConnection: close\r\n\r\n").await;
    assert_eq!(resp.status, 400, "{}", resp.all);
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}

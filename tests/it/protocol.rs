//! Protocol and limits: the request-head size and field count (431 with the JSON body), the
//! bearer syntax RFC 6750 allows, and JSON objects only as /auth bodies.

use crate::common::*;
use http::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ALICE_PW: &str = "correct horse battery";

/// A raw HTTP/1.1 GET whose head, as written, is exactly `size` bytes (padded by `X-Pad`).
fn head_of(size: usize, host: &str) -> String {
    let head = |pad: &str| {
        format!(
            "GET /public/x HTTP/1.1\r\nHost: {host}\r\nX-Pad: {pad}\r\nConnection: close\r\n\r\n"
        )
    };
    let pad = "a".repeat(size - head("").len());
    let head = head(&pad);
    assert_eq!(head.len(), size);
    head
}

/// `GET /public/x` with `fields` header fields in all (Host and Connection included).
fn fields_of(fields: usize, host: &str) -> String {
    let mut head = format!("GET /public/x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for i in 0..fields - 2 {
        head.push_str(&format!("X-Field-{i}: v\r\n"));
    }
    head + "\r\n"
}

/// The gateway's refusal: status 431 and its JSON body.
fn assert_head_refused(resp: &RawResponse, reason: &str) {
    assert_eq!(resp.status, 431, "{}", resp.head);
    let body: Value = serde_json::from_str(&resp.body)
        .unwrap_or_else(|e| panic!("431 without the JSON body ({e}): {:?}", resp.all));
    assert_eq!(body["error"], "request_header_fields_too_large", "{body}");
    assert_eq!(body["error_description"], reason, "{body}");
}

/// Raw bytes over the plain listener; the whole answer once the gateway closes.
async fn plain_raw(addr: std::net::SocketAddr, request: &str) -> RawResponse {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut got = Vec::new();
    let read = tcp.read_to_end(&mut got);
    tokio::time::timeout(DEADLINE, read)
        .await
        .expect("answered within the deadline")
        .expect("read");
    RawResponse::parse(&got).expect("an HTTP response")
}

#[tokio::test]
async fn max_header_bytes_is_enforced_to_the_byte_on_http1() {
    let up = MockUpstream::start(Mode::Record).await;
    let limit = 65536;
    let gw = Gateway::start(
        GatewayConfig::standard(&up.url())
            .max_header_bytes(limit)
            .plain(),
    )
    .await;
    let host = gw.authority();
    let resp = gw.client().raw(head_of(limit, &host).as_bytes()).await;
    assert_eq!(resp.status, 200, "{}", resp.head);
    // The 66.6 KB head that used to slip through hyper's buffer limit, and one byte over.
    for size in [66_600, limit * 3 / 2, limit + 1] {
        let resp = gw.client().raw(head_of(size, &host).as_bytes()).await;
        assert_head_refused(&resp, "request head too large");
    }
    // The plain listener (no ALPN: the protocol is sniffed) holds the same limit.
    let plain = gw.plain.expect("plain listener");
    let resp = plain_raw(plain, &head_of(limit + 1, &host)).await;
    assert_head_refused(&resp, "request head too large");
    assert_eq!(up.seen().len(), 1, "upstream saw {:?}", up.seen_targets());
}

#[tokio::test]
async fn more_header_fields_than_the_default_limit_get_431_with_the_json_body() {
    let echo = Upstream::echo().await;
    let gw = Gateway::start(GatewayConfig::standard(&echo.url())).await;
    let host = gw.authority();
    // 100 fields: served, and the echo upstream takes them with the headers the gateway adds.
    let resp = gw.client().raw(fields_of(100, &host).as_bytes()).await;
    assert_eq!(resp.status, 200, "{}", resp.all);
    let resp = gw.client().raw(fields_of(101, &host).as_bytes()).await;
    assert_head_refused(&resp, "too many header fields");
    // HTTP/2 counts its fields the same way.
    let mut request = gw.client().get("/public/x");
    for i in 0..101 {
        request = request.header(&format!("x-field-{i}"), "v");
    }
    let resp = request.send_h2().await;
    assert_eq!(resp.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(resp.json()["error"], "request_header_fields_too_large");
}

#[tokio::test]
async fn max_header_fields_is_configurable_and_the_echo_upstream_takes_what_passes() {
    let echo = Upstream::echo().await;
    let cfg = GatewayConfig::standard(&echo.url()).listen("max_header_fields = 150");
    let gw = Gateway::start(cfg).await;
    let host = gw.authority();
    let resp = gw.client().raw(fields_of(150, &host).as_bytes()).await;
    assert_eq!(resp.status, 200, "{}", resp.all);
    let echoed: Value = serde_json::from_str(&resp.body).expect("the echo's JSON");
    assert!(echoed["headers"]["x-field-147"].is_string(), "{echoed}");
    let resp = gw.client().raw(fields_of(151, &host).as_bytes()).await;
    assert_head_refused(&resp, "too many header fields");
}

#[tokio::test]
async fn bearer_followed_by_several_spaces_is_accepted() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url())).await;
    let token = gw.token("alice", &[]);
    for spaces in [" ", "  ", "     "] {
        let auth = format!("Bearer{spaces}{token}");
        let resp = gw
            .client()
            .get("/api/x")
            .header("authorization", &auth)
            .send_h1()
            .await;
        assert_eq!(resp.status, StatusCode::OK, "{spaces:?}: {}", resp.text());
    }
    // A tab is not a space: RFC 6750 allows only SP between the scheme and the token.
    let auth = format!("Bearer\t{token}");
    let resp = gw
        .client()
        .get("/api/x")
        .header("authorization", &auth)
        .send_h1()
        .await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED, "{}", resp.text());
}

#[tokio::test]
async fn auth_endpoints_take_json_objects_only() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = AuthSetup::new(&up.url())
        .user("alice", ALICE_PW, &[])
        .users("registration = true")
        .start()
        .await;
    let pair = gw.login_ok("alice", ALICE_PW).await;
    let arrays = [
        ("/auth/login", json!(["alice", ALICE_PW])),
        ("/auth/refresh", json!([pair.refresh])),
        ("/auth/register", json!(["carol", "a long enough secret"])),
    ];
    for (path, body) in arrays {
        let resp = gw.post_json(path, &body).await;
        assert_eq!(
            resp.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            resp.text()
        );
        assert_eq!(resp.json()["error"], "invalid_request", "{path}");
    }
    // Nothing was spent or created by the refused bodies.
    assert_eq!(gw.refresh(&pair.refresh).await.status, StatusCode::OK);
    let resp = gw.login("carol", "a long enough secret").await;
    assert_eq!(resp.status, StatusCode::UNAUTHORIZED, "{}", resp.text());
}

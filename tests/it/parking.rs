//! Idle HTTP/1.1 keep-alive connections are parked (only their socket and TLS session kept)
//! and served anew when the client sends again: nothing lost, nothing mixed, the timeouts
//! and the drain as before.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

/// Long beside the 1 s a connection idles before it is parked.
const PARK_DEADLINE: Duration = Duration::from_secs(15);

/// `portcullis_parked_connections` now.
async fn parked(gw: &Gateway) -> usize {
    let (status, body) = plain_get(gw.admin, "/metrics").await.expect("GET /metrics");
    assert_eq!(status, 200);
    body.lines()
        .find_map(|l| l.strip_prefix("portcullis_parked_connections "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no portcullis_parked_connections in:\n{body}"))
}

/// Waits until exactly `n` connections are parked.
async fn until_parked(gw: &Gateway, n: usize) {
    eventually(PARK_DEADLINE, || async {
        let now = parked(gw).await;
        (now == n)
            .then_some(())
            .ok_or(format!("{now} parked, waiting for {n}"))
    })
    .await
    .expect("connections parked");
}

#[tokio::test]
async fn a_parked_connection_serves_its_next_request_over_tls_and_plain_http() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url()).plain()).await;
    let mut tls = gw.client().connect_tls(&[b"http/1.1"]).await.expect("TLS");
    let mut plain = TcpStream::connect(gw.plain.expect("plain listener"))
        .await
        .expect("TCP connect");
    for round in 1..=2 {
        let resp = keep_alive_get(&mut tls, &format!("/public/tls-{round}")).await;
        assert_eq!(resp.status, 200, "{}", resp.all);
        assert!(
            resp.body.contains(&format!("/public/tls-{round}")),
            "{}",
            resp.all
        );
        let resp = keep_alive_get(&mut plain, &format!("/public/plain-{round}")).await;
        assert_eq!(resp.status, 200, "{}", resp.all);
        assert!(
            resp.body.contains(&format!("/public/plain-{round}")),
            "{}",
            resp.all
        );
        until_parked(&gw, 2).await;
    }
    let targets = up.seen_targets();
    assert_eq!(targets.len(), 4, "{targets:?}");
}

#[tokio::test]
async fn bytes_of_the_next_request_read_before_parking_are_not_lost() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url())).await;
    let mut tls = gw.client().connect_tls(&[b"http/1.1"]).await.expect("TLS");
    // One whole request and the start of the next in one write: the gateway answers the
    // first and has read part of the second when the connection parks.
    let first_and_part = "GET /public/first HTTP/1.1\r\nHost: localhost\r\n\r\nGET /public/sec";
    tls.write_all(first_and_part.as_bytes())
        .await
        .expect("write");
    tls.flush().await.expect("flush");
    let resp = read_sized_response(&mut tls).await.expect("first answer");
    assert!(resp.body.contains("/public/first"), "{}", resp.all);
    until_parked(&gw, 1).await;
    tls.write_all(b"ond HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    tls.flush().await.expect("flush");
    let resp = read_sized_response(&mut tls).await.expect("second answer");
    assert_eq!(resp.status, 200, "{}", resp.all);
    assert!(resp.body.contains("/public/second"), "{}", resp.all);
    assert_eq!(up.seen_targets(), ["/public/first", "/public/second"]);
}

#[tokio::test]
async fn a_request_body_still_arriving_is_never_read_as_a_request() {
    // The upstream answers an upload at once and goes on reading its body. The client's
    // connection then idles with the body unfinished: were it parked, the rest of the body
    // would be read as a new request (here a GET smuggled inside it).
    let body_bytes = Arc::new(AtomicUsize::new(0));
    let counted = body_bytes.clone();
    let upload = ScriptedUpstream::start(move |mut conn| {
        let counted = counted.clone();
        async move {
            let mut got = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                match conn.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got.extend_from_slice(&chunk[..n]),
                }
                if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                    counted.fetch_add(got.len() - end - 4, Ordering::SeqCst);
                    break;
                }
            }
            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
            let _ = conn.stream.write_all(answer).await;
            while let Ok(n @ 1..) = conn.stream.read(&mut chunk).await {
                counted.fetch_add(n, Ordering::SeqCst);
            }
        }
    })
    .await;
    let up = MockUpstream::start(Mode::Record).await;
    let routes = format!(
        "{}\n[upstreams.upload]\nurl = \"{}\"\n\n[[routes]]\npath = \"/upload/**\"\nupstream = \"upload\"\nauth = \"none\"\n",
        standard_routes(&up.url()),
        upload.url
    );
    let gw = Gateway::start(GatewayConfig::new(routes)).await;
    let smuggled = "GET /public/smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let rest = format!("{smuggled}{}", "x".repeat(200 - smuggled.len()));
    let mut tls = gw.client().connect_tls(&[b"http/1.1"]).await.expect("TLS");
    let head =
        "POST /upload/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 210\r\n\r\n0123456789";
    tls.write_all(head.as_bytes()).await.expect("write");
    tls.flush().await.expect("flush");
    let resp = read_sized_response(&mut tls)
        .await
        .expect("the upload's answer");
    assert_eq!(resp.status, 200, "{}", resp.all);
    // A second connection, idle from later on, parks: the upload's would have by now.
    let mut other = gw.client().connect_tls(&[b"http/1.1"]).await.expect("TLS");
    assert_eq!(
        keep_alive_get(&mut other, "/public/other").await.status,
        200
    );
    eventually(PARK_DEADLINE, || async {
        let now = parked(&gw).await;
        (now >= 1).then_some(()).ok_or(format!("{now} parked"))
    })
    .await
    .expect("the other connection parked");
    tls.write_all(rest.as_bytes()).await.expect("write");
    tls.flush().await.expect("flush");
    // Either the rest of the body reaches the upload's upstream, or the smuggled request
    // reaches the other upstream.
    eventually(PARK_DEADLINE, || async {
        let n = body_bytes.load(Ordering::SeqCst);
        (n >= 210 || up.seen().len() > 1)
            .then_some(())
            .ok_or(format!("{n} of 210 body bytes upstream"))
    })
    .await
    .expect("the rest of the upload went somewhere");
    assert_eq!(
        up.seen_targets(),
        ["/public/other"],
        "body bytes read as a request"
    );
    assert_eq!(parked(&gw).await, 1, "the upload's connection was parked");
}

#[tokio::test]
async fn a_parked_connection_is_closed_at_the_idle_timeout() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url()).idle_timeout("3s")).await;
    let mut tls = gw.client().connect_tls(&[b"http/1.1"]).await.expect("TLS");
    assert_eq!(keep_alive_get(&mut tls, "/public/x").await.status, 200);
    until_parked(&gw, 1).await;
    let mut rest = Vec::new();
    let read = tokio::time::timeout(PARK_DEADLINE, tls.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "still open after {PARK_DEADLINE:?}");
    assert!(rest.is_empty(), "sent after the answer: {rest:?}");
    until_parked(&gw, 0).await;
}

#[tokio::test]
async fn sigterm_closes_parked_connections_at_once() {
    // header_timeout 60 s, shutdown_grace 30 s: only closing the parked connection at once
    // lets the gateway exit within the deadline below.
    let up = MockUpstream::start(Mode::Record).await;
    let cfg = GatewayConfig::standard(&up.url()).header_timeout("60s");
    let mut gw = Gateway::start(cfg).await;
    let mut tls = gw.client().connect_tls(&[b"http/1.1"]).await.expect("TLS");
    assert_eq!(keep_alive_get(&mut tls, "/public/x").await.status, 200);
    until_parked(&gw, 1).await;
    gw.signal("TERM");
    let exit = eventually(Duration::from_secs(10), || {
        let status = gw.exited();
        async move { status.ok_or("still running".to_string()) }
    })
    .await
    .expect("gateway exited without waiting for the parked connection");
    assert!(exit.success(), "exit status {exit:?}");
}

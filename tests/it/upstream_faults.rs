//! Upstream faults after the response head: a malformed body is a 502 while nothing has been
//! sent, a head sent ahead of its body is not held back, and a body that stops moving is cut
//! after the read timeout, while one that keeps moving never is.

use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use http::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// Everything to `url`, public, with this body read timeout.
fn routes_with_read_timeout(url: &str, read_timeout: &str) -> String {
    format!(
        r#"[upstreams.api]
url = "{url}"
timeout = "10s"

[[routes]]
path = "/**"
upstream = "api"
auth = "none"
read_timeout = "{read_timeout}"
"#
    )
}

/// Reads until the peer closes or fails; None if that takes longer than `wait`.
async fn read_until_closed<S: AsyncRead + Unpin>(stream: &mut S, wait: Duration) -> Option<String> {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(wait, read_all).await.ok()?;
    Some(String::from_utf8_lossy(&got).into_owned())
}

#[tokio::test]
async fn a_malformed_body_before_any_byte_was_sent_is_a_502() {
    let up = ScriptedUpstream::start(|mut conn| async move {
        while conn.next_request().await.is_some() {
            // A valid head, then a chunk size that is not hex, in one write.
            let bad = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n";
            if conn.stream.write_all(bad).await.is_err() {
                return;
            }
        }
    })
    .await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url)).await;
    let h1 = gw.client().get("/public/a").try_send_h1().await;
    let h2 = gw.client().get("/public/b").try_send_h2().await;
    for (protocol, resp) in [("h1", h1), ("h2", h2)] {
        let resp = resp.unwrap_or_else(|e| panic!("{protocol}: no status at all: {e}"));
        assert_eq!(
            resp.status,
            StatusCode::BAD_GATEWAY,
            "{protocol}: {}",
            resp.text()
        );
        assert_eq!(resp.json()["error"], "bad_gateway", "{protocol}");
    }
}

#[tokio::test]
async fn a_head_sent_ahead_of_its_body_reaches_the_client_at_once() {
    let release = Arc::new(tokio::sync::Notify::new());
    let gate = Arc::clone(&release);
    let up = ScriptedUpstream::start(move |mut conn| {
        let gate = Arc::clone(&gate);
        async move {
            if conn.next_request().await.is_none() {
                return;
            }
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
            if conn.stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            // The first event only once the client has the head, as an SSE stream does.
            gate.notified().await;
            let event = b"c\r\ndata: hello\n\r\n0\r\n\r\n";
            let _ = conn.stream.write_all(event).await;
        }
    })
    .await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url)).await;
    let mut tls = gw.client().connect_tls(&[b"http/1.1"]).await.expect("tls");
    let request = b"GET /public/events HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    tls.write_all(request).await.expect("write");
    let (head, _) = read_head(&mut tls)
        .await
        .expect("the head, with no body yet");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    release.notify_one();
    let rest = read_until_closed(&mut tls, DEADLINE)
        .await
        .expect("the event");
    assert!(rest.contains("data: hello"), "{rest}");
}

#[tokio::test]
async fn a_body_that_stalls_after_its_head_is_cut_after_the_read_timeout() {
    let up = ScriptedUpstream::start(|mut conn| async move {
        if conn.next_request().await.is_none() {
            return;
        }
        let partial = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789";
        if conn.stream.write_all(partial).await.is_err() {
            return;
        }
        // Then nothing more, with the connection open, until the gateway hangs up.
        let _ = conn.next_request().await;
    })
    .await;
    let gw = Gateway::start(GatewayConfig::new(routes_with_read_timeout(
        &up.url, "300ms",
    )))
    .await;
    let mut tls = gw.client().connect_tls(&[b"http/1.1"]).await.expect("tls");
    tls.write_all(b"GET /stall HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    // Far below the client idle timeout (60 s), which was the only bound before.
    let got = read_until_closed(&mut tls, Duration::from_secs(10))
        .await
        .expect("the gateway ends the stalled response");
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(got.ends_with("0123456789"), "what came is forwarded: {got}");
    let counted = "portcullis_upstream_read_timeouts_total{upstream=\"api\"} 1";
    let metrics = eventually(DEADLINE, || async {
        let (_, text) = plain_get(gw.admin, "/metrics").await?;
        text.contains(counted).then_some(()).ok_or(text)
    })
    .await;
    metrics.expect("the stall is counted");
    // A reload builds the upstream anew; its count goes on.
    gw.signal("HUP");
    let reloads = "portcullis_config_reloads_total{result=\"ok\"} 1";
    let after = eventually(DEADLINE, || async {
        let (_, text) = plain_get(gw.admin, "/metrics").await?;
        text.contains(reloads).then_some(text.clone()).ok_or(text)
    })
    .await
    .expect("reloaded");
    assert!(
        after.contains(counted),
        "the stall count went back:\n{after}"
    );
}

#[tokio::test]
async fn a_body_that_keeps_moving_is_never_cut_however_long_it_takes() {
    let up = ScriptedUpstream::start(|mut conn| async move {
        if conn.next_request().await.is_none() {
            return;
        }
        let head = b"HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\n";
        if conn.stream.write_all(head).await.is_err() {
            return;
        }
        // 1.5 s in all, longer than the read timeout, but never 1 s without a byte.
        for byte in b"abcdefghijklmno".chunks(1) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if conn.stream.write_all(byte).await.is_err() {
                return;
            }
        }
    })
    .await;
    let gw = Gateway::start(GatewayConfig::new(routes_with_read_timeout(&up.url, "1s"))).await;
    let resp = gw.client().get("/trickle").send_h1().await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(resp.text(), "abcdefghijklmno");
}

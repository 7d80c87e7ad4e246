//! Upstream keep-alive: connections are reused, a connection is only reused once its
//! response has fully arrived, and one the upstream closed is never used again.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A raw HTTP/1.1 upstream that counts the connections it accepts. Every request is answered
/// `200` with a body naming the request target; a connection idle for `close_idle` is closed
/// without notice, as an upstream's keep-alive timeout does.
struct CountingUpstream {
    url: String,
    accepted: Arc<AtomicUsize>,
}

impl CountingUpstream {
    async fn start(close_idle: Duration) -> CountingUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, close_idle));
            }
        });
        CountingUpstream { url, accepted }
    }

    fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Answers bodiless requests until the client closes or `close_idle` passes between them.
async fn serve(mut stream: TcpStream, close_idle: Duration) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout(close_idle, stream.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return,
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end);
        let target = head.split(' ').nth(1).unwrap_or("?").to_string();
        let body = if head.starts_with("HEAD ") {
            ""
        } else {
            &target
        };
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
            target.len()
        );
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn sequential_requests_share_one_upstream_connection() {
    let up = CountingUpstream::start(Duration::from_secs(60)).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url)).await;
    for i in 0..20 {
        let resp = gw.client().get(&format!("/public/{i}")).send_h1().await;
        assert_eq!(resp.status, StatusCode::OK);
        assert_eq!(
            resp.text(),
            format!("/public/{i}"),
            "each answer is its own"
        );
    }
    // One connection, or two if a finished one had not yet said it was ready again.
    assert!(up.connections() <= 2, "{} connections", up.connections());
}

#[tokio::test]
async fn head_answers_free_their_connection_at_once() {
    let up = CountingUpstream::start(Duration::from_secs(60)).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url)).await;
    for i in 0..10 {
        let resp = gw
            .client()
            .request("HEAD", &format!("/public/{i}"))
            .send_h1()
            .await;
        assert_eq!(resp.status, StatusCode::OK);
    }
    let resp = gw.client().get("/public/after").send_h1().await;
    assert_eq!(resp.text(), "/public/after");
    assert!(up.connections() <= 2, "{} connections", up.connections());
}

#[tokio::test]
async fn a_connection_the_upstream_closed_while_idle_costs_no_request() {
    let up = CountingUpstream::start(Duration::from_millis(100)).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url)).await;
    for i in 0..3 {
        let resp = gw.client().get(&format!("/public/{i}")).send_h1().await;
        assert_eq!(resp.status, StatusCode::OK, "request {i}");
        assert_eq!(resp.text(), format!("/public/{i}"));
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert_eq!(
        up.connections(),
        3,
        "a new connection after each idle close"
    );
}

#[tokio::test]
async fn a_download_abandoned_midway_never_lends_its_connection_to_the_next_request() {
    let big = MockUpstream::start(Mode::Download(10 * 1024 * 1024)).await;
    let gw = Gateway::start(GatewayConfig::standard(&big.url())).await;
    // Read the head and a little of the body, then hang up.
    let mut tls = gw.client().connect_tls(&[b"http/1.1"]).await.expect("tls");
    tls.write_all(b"GET /public/big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let mut first = vec![0u8; 64 * 1024];
    let n = tls.read(&mut first).await.expect("read");
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    drop(tls);
    // Were the half-read connection reused, this answer would be the rest of the download.
    for i in 0..5 {
        let resp = gw.client().get(&format!("/public/next{i}")).send_h1().await;
        assert_eq!(resp.status, StatusCode::OK);
        assert_eq!(resp.body.len(), 10 * 1024 * 1024, "a whole, fresh download");
        assert_eq!(resp.digest(), Digest::of_pattern(10 * 1024 * 1024));
    }
}

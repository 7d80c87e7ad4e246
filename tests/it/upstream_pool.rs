//! Upstream keep-alive: connections are reused, a connection is only reused once its
//! response has fully arrived, and one the upstream closed is never used again; an idempotent
//! bodiless request whose pooled connection dies unanswered goes out again on a new one, any
//! other request never twice.

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

/// How a `one_answer` upstream ends a connection after answering its first request.
#[derive(Clone, Copy)]
enum Hangup {
    /// 0-3 ms after the answer (by connection), as an upstream ending keep-alive at once.
    Soon,
    /// Once the next request has arrived, without answering it.
    OnNextRequest,
}

/// Answers the first request of the connection with a keep-alive `200` naming its target,
/// then hangs up as `hangup` says; a request left unread makes the close a reset.
async fn one_answer(mut conn: Conn, hangup: Hangup) {
    let Some(line) = conn.next_request().await else {
        return;
    };
    let target = line.split(' ').nth(1).unwrap_or("?").to_string();
    let answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{target}",
        target.len()
    );
    if conn.stream.write_all(answer.as_bytes()).await.is_err() {
        return;
    }
    match hangup {
        Hangup::Soon => {
            let after = Duration::from_millis(conn.index as u64 % 4);
            tokio::time::sleep(after).await;
        }
        Hangup::OnNextRequest => {
            conn.next_request().await;
        }
    }
}

#[tokio::test]
async fn gets_survive_an_upstream_that_closes_each_connection_just_after_its_answer() {
    let up = ScriptedUpstream::start(|conn| one_answer(conn, Hangup::Soon)).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url)).await;
    // One client connection, so each request follows the previous answer as closely as can be.
    let mut tls = gw.client().connect_tls(&[b"http/1.1"]).await.expect("tls");
    for i in 0..200 {
        let path = format!("/public/{i}");
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        tls.write_all(request.as_bytes()).await.expect("write");
        let resp = read_sized_response(&mut tls).await.expect("response");
        assert_eq!(resp.status, 200, "request {i}: {}", resp.body);
        assert_eq!(resp.body, path, "request {i}");
    }
}

#[tokio::test]
async fn a_get_whose_pooled_connection_dies_unanswered_goes_out_again_on_a_new_one() {
    let up = ScriptedUpstream::start(|conn| one_answer(conn, Hangup::OnNextRequest)).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url)).await;
    for i in 0..10 {
        let resp = gw.client().get(&format!("/public/{i}")).send_h1().await;
        assert_eq!(resp.status, StatusCode::OK, "request {i}: {}", resp.text());
        assert_eq!(resp.text(), format!("/public/{i}"));
    }
    let sent = |i: usize| up.count(&format!("GET /public/{i}"));
    assert!(
        (0..10).all(|i| sent(i) <= 2),
        "once, or once more: {:?}",
        up.requests()
    );
    assert!(
        (0..10).any(|i| sent(i) == 2),
        "no request met a dead pooled connection: {:?}",
        up.requests()
    );
}

#[tokio::test]
async fn a_post_or_a_put_with_a_body_whose_pooled_connection_dies_is_never_sent_twice() {
    let up = ScriptedUpstream::start(|conn| one_answer(conn, Hangup::OnNextRequest)).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url)).await;
    let mut unanswered = 0;
    for i in 0..6 {
        let post = gw.client().post(&format!("/open/post{i}")).send_h1().await;
        let put = gw
            .client()
            .request("PUT", &format!("/open/put{i}"))
            .body("data")
            .send_h1()
            .await;
        for (resp, line) in [
            (post, format!("POST /open/post{i}")),
            (put, format!("PUT /open/put{i}")),
        ] {
            // Answered on a new connection, or lost with the dead one: never a second copy.
            let lost = resp.status == StatusCode::BAD_GATEWAY;
            assert!(
                lost || resp.status == StatusCode::OK,
                "{line}: {}",
                resp.status
            );
            unanswered += usize::from(lost);
            assert_eq!(up.count(&line), 1, "{line}: {:?}", up.requests());
        }
    }
    assert!(unanswered > 0, "no request met a dead pooled connection");
}

#[tokio::test]
async fn a_reload_keeps_the_connections_of_an_upstream_whose_address_is_unchanged() {
    let up = CountingUpstream::start(Duration::from_secs(60)).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url)).await;
    // One client connection, so every request is served by the same worker (pools are per
    // worker thread).
    let mut client = gw.client().connect_tls(&[b"http/1.1"]).await.expect("TLS");
    assert_eq!(
        keep_alive_get(&mut client, "/public/before").await.status,
        200
    );
    assert_eq!(up.connections(), 1);
    // A reload that leaves the upstream as it was (a route added; users.toml changes reload
    // the same way) goes on with the same upstream connection.
    let extra = "\n[[routes]]\npath = \"/extra/**\"\nupstream = \"api\"\nauth = \"none\"\n";
    gw.reload_with("routes.toml", &(standard_routes(&up.url) + extra))
        .await;
    let resp = keep_alive_get(&mut client, "/extra/after").await;
    assert_eq!(resp.status, 200, "{}", resp.all);
    assert_eq!(up.connections(), 1, "the reload dropped the pool");
    // The upstream moved: the new address gets the requests, the old one nothing more.
    let moved = CountingUpstream::start(Duration::from_secs(60)).await;
    gw.reload_with("routes.toml", &standard_routes(&moved.url))
        .await;
    let resp = keep_alive_get(&mut client, "/public/moved").await;
    assert_eq!(resp.status, 200, "{}", resp.all);
    assert!(resp.body.contains("/public/moved"), "{}", resp.all);
    assert_eq!((up.connections(), moved.connections()), (1, 1));
}

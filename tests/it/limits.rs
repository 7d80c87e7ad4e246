//! Connection limits and request-framing attacks.

use std::time::Duration;

use crate::common::*;
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Generous: the server must have closed well before this; no precise timing is asserted.
const CLOSE_DEADLINE: Duration = Duration::from_secs(15);

#[tokio::test]
async fn header_dribbling_client_is_disconnected_after_header_timeout() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url()).header_timeout("1s")).await;
    let tls = gw
        .client()
        .connect_tls(&[b"http/1.1"])
        .await
        .expect("TLS connect");
    let (mut rd, mut wr) = tokio::io::split(tls);

    // Reader: returns once the server closes (EOF or error), with whatever it sent.
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    });

    // Writer: a request head that never ends, one byte every 100 ms.
    let head = b"GET /public/x HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";
    let start = tokio::time::Instant::now();
    let mut i = 0usize;
    while !reader.is_finished() && start.elapsed() < CLOSE_DEADLINE {
        let byte = if i < head.len() { head[i] } else { b'a' };
        i += 1;
        if wr.write_all(&[byte]).await.is_err() || wr.flush().await.is_err() {
            break; // the server has gone away
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .expect("server did not close the dribbling connection")
        .expect("reader task");
    assert!(
        start.elapsed() < CLOSE_DEADLINE,
        "still connected after {CLOSE_DEADLINE:?}"
    );
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "unexpected answer: {text}"
    );
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}

#[tokio::test]
async fn silent_tcp_connection_is_closed_after_header_timeout() {
    // Never starts the TLS handshake: the handshake is inside header_timeout too.
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url()).header_timeout("1s")).await;
    let mut tcp = tokio::net::TcpStream::connect(gw.https)
        .await
        .expect("TCP connect");
    let closed = read_until_closed(&mut tcp).await;
    assert!(
        closed.is_some(),
        "a silent connection was still open after {CLOSE_DEADLINE:?}"
    );
}

#[tokio::test]
async fn silent_tls_connection_is_closed_after_header_timeout() {
    // Completes the handshake, then sends nothing: the first request is inside
    // header_timeout too (idle_timeout stays at 60 s, far beyond the deadline below).
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url()).header_timeout("1s")).await;
    for alpn in [&[b"http/1.1".as_slice()][..], &[b"h2"], &[]] {
        let mut tls = gw.client().connect_tls(alpn).await.expect("TLS connect");
        let closed = read_until_closed(&mut tls).await;
        assert!(
            closed.is_some(),
            "a silent TLS connection (ALPN {alpn:?}) was still open after {CLOSE_DEADLINE:?}"
        );
    }
}

#[tokio::test]
async fn silent_plain_connection_is_closed_after_header_timeout() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(
        GatewayConfig::standard(&up.url())
            .header_timeout("1s")
            .plain(),
    )
    .await;
    let addr = gw.plain.expect("plain listener");
    let mut tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("TCP connect");
    let closed = read_until_closed(&mut tcp).await;
    assert!(
        closed.is_some(),
        "a silent plain connection was still open after {CLOSE_DEADLINE:?}"
    );
}

#[tokio::test]
async fn a_first_request_sent_a_while_after_the_handshake_is_served() {
    // The connection is built only once the client speaks; what it then sends is all served.
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url())).await;
    let mut tls = gw
        .client()
        .connect_tls(&[b"http/1.1"])
        .await
        .expect("TLS connect");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(keep_alive_get(&mut tls, "/public/a").await.status, 200);
    assert_eq!(keep_alive_get(&mut tls, "/public/b").await.status, 200);
    assert_eq!(
        up.seen_targets(),
        vec!["/public/a".to_string(), "/public/b".to_string()]
    );
}

#[tokio::test]
async fn gateway_keeps_serving_while_a_client_dribbles() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url()).header_timeout("5s")).await;
    let mut slow = gw
        .client()
        .connect_tls(&[b"http/1.1"])
        .await
        .expect("TLS connect");
    slow.write_all(b"GET /public/slow HTTP/1.1\r\nHo")
        .await
        .expect("write");
    slow.flush().await.expect("flush");
    let resp = gw.client().get("/public/fast").send_h1().await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(up.seen_targets(), vec!["/public/fast".to_string()]);
}

#[tokio::test]
async fn oversized_request_head_is_431() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url()).max_header_bytes(16384)).await;
    let big = "a".repeat(20_000);
    let resp = gw.client().raw_get("/public/x", &[("X-Big", &big)]).await;
    assert_eq!(resp.status, 431, "{}", resp.head);
    let many: Vec<(String, String)> = (0..40)
        .map(|i| (format!("X-Many-{i}"), "b".repeat(500)))
        .collect();
    let many_ref: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let resp = gw.client().raw_get("/public/x", &many_ref).await;
    assert_eq!(resp.status, 431, "{}", resp.head);
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}

#[tokio::test]
async fn request_head_under_the_limit_is_accepted() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url()).max_header_bytes(16384)).await;
    let resp = gw
        .client()
        .get("/public/x")
        .header("X-Big", &"a".repeat(8_000))
        .send_h1()
        .await;
    assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());
}

#[tokio::test]
async fn smuggled_request_behind_conflicting_lengths_never_reaches_admin() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url())).await;
    let smuggled = "GET /admin/secret HTTP/1.1\r\nHost: localhost\r\n\r\n";
    // Each attempt ends with a closing request so the server hangs up once it is done.
    let end = "GET /public/end HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let chunked_then_smuggled = format!("0\r\n\r\n{smuggled}");
    let attempts = [
        // CL.TE: Content-Length covers the smuggled request, chunked ends before it.
        format!(
            "POST /open/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n{chunked_then_smuggled}{end}",
            chunked_then_smuggled.len()
        ),
        // TE.CL: a Content-Length too short for the chunked body.
        format!(
            "POST /open/x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n{:x}\r\n{smuggled}\r\n0\r\n\r\n{end}",
            smuggled.len()
        ),
        // Obfuscated Transfer-Encoding.
        format!(
            "POST /open/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nTransfer-Encoding: xchunked\r\n\r\n{chunked_then_smuggled}{end}",
            chunked_then_smuggled.len()
        ),
        format!(
            "POST /open/x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked, identity\r\n\r\n{chunked_then_smuggled}{end}"
        ),
    ];
    for req in &attempts {
        let answer = gw
            .client()
            .raw_collect(req.as_bytes(), Duration::from_secs(3))
            .await;
        assert!(
            !answer.contains("\"path\":\"/admin"),
            "smuggled request answered by the upstream:\n{answer}"
        );
    }
    let admin: Vec<String> = up
        .seen_targets()
        .into_iter()
        .filter(|t| t.contains("admin"))
        .collect();
    assert!(
        admin.is_empty(),
        "smuggled request reached the upstream: {admin:?}"
    );
    for seen in up.seen() {
        let te = seen.headers.contains_key("transfer-encoding");
        let cl = seen.headers.contains_key("content-length");
        assert!(
            !(te && cl),
            "upstream got both Transfer-Encoding and Content-Length: {:?}",
            seen.headers
        );
    }
}

#[tokio::test]
async fn conflicting_content_lengths_are_400() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url())).await;
    let req = "POST /open/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nContent-Length: 40\r\nConnection: close\r\n\r\nabcd";
    let resp = gw.client().raw(req.as_bytes()).await;
    assert_eq!(resp.status, 400, "{}", resp.all);
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}

#[tokio::test]
async fn idle_keep_alive_connection_is_closed_after_idle_timeout() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url()).idle_timeout("1s")).await;
    let mut tls = gw
        .client()
        .connect_tls(&[b"http/1.1"])
        .await
        .expect("TLS connect");
    tls.write_all(b"GET /public/x HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    tls.flush().await.expect("flush");
    let got = read_until_closed(&mut tls).await.unwrap_or_else(|| {
        panic!("idle keep-alive connection still open after {CLOSE_DEADLINE:?}")
    });
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 200"),
        "the request itself was answered first: {text}"
    );
    assert_eq!(up.seen_targets(), vec!["/public/x".to_string()]);
}

#[tokio::test]
async fn a_request_waiting_on_its_upstream_outlives_the_idle_timeout() {
    // No byte moves while the upstream thinks; that is not the client being idle.
    let up = MockUpstream::start(Mode::Slow(Duration::from_secs(3))).await;
    let cfg = GatewayConfig::standard(&up.url())
        .idle_timeout("1s")
        .header_timeout("1s");
    let gw = Gateway::start(cfg).await;
    let resp = gw.client().get("/public/slow").send_h1().await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    let resp = gw.client().get("/public/slow").send_h2().await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
}

#[tokio::test]
async fn a_login_body_that_stalls_is_408_after_the_idle_timeout() {
    // The idle timeout pauses while a request is served, so a stalled body has its own limit.
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url()).idle_timeout("1s")).await;
    let mut tls = gw
        .client()
        .connect_tls(&[b"http/1.1"])
        .await
        .expect("TLS connect");
    let head = "POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user";
    tls.write_all(head.as_bytes()).await.expect("write");
    tls.flush().await.expect("flush");
    let got = read_until_closed(&mut tls)
        .await
        .unwrap_or_else(|| panic!("stalled body still held after {CLOSE_DEADLINE:?}"));
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
}

#[tokio::test]
async fn connection_over_max_connections_waits_for_a_free_slot() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url()).max_connections(1)).await;
    let client = gw.client();

    // The first connection takes the only slot and stays open, idle, after its request.
    let mut first = client
        .connect_tls(&[b"http/1.1"])
        .await
        .expect("TLS connect");
    let resp = keep_alive_get(&mut first, "/public/first-1").await;
    assert_eq!(resp.status, 200, "{}", resp.all);

    // The second connection is made (the kernel completes it in the backlog) before its
    // TLS handshake and request run in a task of their own.
    let tcp = tokio::net::TcpStream::connect(gw.https)
        .await
        .expect("TCP connect");
    let second_client = client.clone();
    let mut second = tokio::spawn(async move {
        let mut tls = second_client
            .tls_over(tcp, &[b"http/1.1"])
            .await
            .expect("TLS handshake of the second connection");
        keep_alive_get(&mut tls, "/public/second").await
    });

    // While the first is held it keeps being served, and the second is not answered.
    // A correct gateway never answers here, so this bounded wait cannot flake.
    let resp = keep_alive_get(&mut first, "/public/first-2").await;
    assert_eq!(resp.status, 200, "{}", resp.all);
    let early = tokio::time::timeout(Duration::from_millis(500), &mut second).await;
    assert!(
        early.is_err(),
        "the second connection was served while the only slot was taken: {early:?}"
    );
    let resp = keep_alive_get(&mut first, "/public/first-3").await;
    assert_eq!(resp.status, 200, "{}", resp.all);
    assert!(
        !second.is_finished(),
        "the second connection was served while the only slot was taken"
    );

    // Closing the first frees the slot: the second is accepted and answered.
    drop(first);
    let resp = tokio::time::timeout(DEADLINE, second)
        .await
        .expect("second connection answered once the first closed")
        .expect("second connection task");
    assert_eq!(resp.status, 200, "{}", resp.all);
    assert_eq!(
        up.seen_targets(),
        [
            "/public/first-1",
            "/public/first-2",
            "/public/first-3",
            "/public/second"
        ],
        "the second request reached the upstream only after the first connection closed"
    );
}

/// Everything the server sent until it closed the connection, or None if it was still open
/// after CLOSE_DEADLINE.
async fn read_until_closed<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(CLOSE_DEADLINE, read_all).await.ok()?;
    Some(got)
}

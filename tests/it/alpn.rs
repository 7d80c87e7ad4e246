//! ALPN decides the protocol: a connection that negotiated http/1.1 is never served h2, one
//! that negotiated h2 is never served HTTP/1.1; a client that offered no ALPN gets either,
//! picked by its first bytes.

use std::time::Duration;

use crate::common::*;
use http::StatusCode;
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame: what an h2 client sends right after the preface.
const EMPTY_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

/// Writes `bytes` on a connection that offered `alpn`; returns what the gateway sent until it
/// closed the connection (or 10 s passed).
async fn exchange(gw: &Gateway, alpn: &[&[u8]], bytes: &[u8]) -> Vec<u8> {
    let mut tls = gw.client().connect_tls(alpn).await.expect("TLS connect");
    tls.write_all(bytes).await.expect("write");
    tls.flush().await.expect("flush");
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = [0u8; 4096];
        loop {
            match tls.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    got
}

#[tokio::test]
async fn h2_preface_on_a_connection_that_chose_http11_is_not_served_h2() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url())).await;
    let got = exchange(&gw, &[b"http/1.1"], &[H2_PREFACE, EMPTY_SETTINGS].concat()).await;
    // An h2 server would answer with its SETTINGS frame; HTTP/1.1 refuses the preface.
    assert!(
        got.is_empty() || got.starts_with(b"HTTP/1.1 "),
        "answered {:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}

#[tokio::test]
async fn http11_request_on_a_connection_that_chose_h2_is_not_served() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url())).await;
    let got = exchange(
        &gw,
        &[b"h2"],
        b"GET /public/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        !got.starts_with(b"HTTP/"),
        "answered over HTTP/1.1: {:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}

#[tokio::test]
async fn without_alpn_both_http11_and_h2_prior_knowledge_are_served() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url())).await;
    let request = || {
        http::Request::get("https://localhost/public/x")
            .body(Empty::<bytes::Bytes>::new())
            .expect("request")
    };

    let tls = gw.client().connect_tls(&[]).await.expect("TLS connect");
    assert_eq!(tls.get_ref().1.alpn_protocol(), None);
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("h1 handshake");
    tokio::spawn(conn);
    let h1 = send
        .send_request(request())
        .await
        .expect("HTTP/1.1 request");
    assert_eq!(h1.status(), StatusCode::OK);
    assert_eq!(h1.version(), http::Version::HTTP_11);

    let tls = gw.client().connect_tls(&[]).await.expect("TLS connect");
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    let h2 = send.send_request(request()).await.expect("h2 request");
    assert_eq!(h2.status(), StatusCode::OK);
    assert_eq!(h2.version(), http::Version::HTTP_2);
    assert_eq!(up.seen().len(), 2);
}

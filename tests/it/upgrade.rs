//! Upgrade handshakes (WebSocket and the like) over HTTP/1.1 TLS: the tunnel works for a
//! valid token, and without one the upstream never hears of the handshake.

use crate::common::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::client::TlsStream;

type Tls = TlsStream<tokio::net::TcpStream>;

/// `GET {path}` asking to switch to websocket, plus `headers`, written byte for byte.
fn upgrade_request(path: &str, headers: &[(&str, &str)]) -> String {
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req
}

/// A TLS connection (ALPN http/1.1) with `request` already written.
async fn send_raw(gw: &Gateway, request: &str) -> Tls {
    let mut tls = gw
        .client()
        .connect_tls(&[b"http/1.1"])
        .await
        .expect("TLS connect");
    tls.write_all(request.as_bytes())
        .await
        .expect("write request");
    tls.flush().await.expect("flush");
    tls
}

/// Sends the handshake and expects 101; returns the tunnel and any bytes read past the head.
async fn open_tunnel(gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> (Tls, Vec<u8>) {
    let mut tls = send_raw(gw, &upgrade_request(path, headers)).await;
    let (head, rest) = read_head(&mut tls).await.expect("101 head");
    assert!(
        head.starts_with("HTTP/1.1 101"),
        "expected 101 Switching Protocols, got: {head}"
    );
    let parsed = RawResponse::parse(head.as_bytes()).expect("parsable head");
    assert_eq!(
        parsed.header("upgrade").map(|v| v.to_ascii_lowercase()),
        Some("websocket".to_string()),
        "head: {head}"
    );
    (tls, rest)
}

/// Write `msg` into the tunnel and read exactly as many bytes back, starting with `pending`.
async fn round_trip<S>(tunnel: &mut S, pending: &mut Vec<u8>, msg: &[u8]) -> Vec<u8>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tunnel.write_all(msg).await.expect("write into tunnel");
    tunnel.flush().await.expect("flush tunnel");
    let mut got = std::mem::take(pending);
    let read = async {
        let mut chunk = [0u8; 16384];
        while got.len() < msg.len() {
            match tunnel.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("read from tunnel: {e}"),
            }
        }
    };
    tokio::time::timeout(DEADLINE, read)
        .await
        .expect("echo through the tunnel within the deadline");
    if got.len() > msg.len() {
        *pending = got.split_off(msg.len());
    }
    got
}

#[tokio::test]
async fn upgrade_with_valid_token_tunnels_bytes_both_ways() {
    let echo = Upstream::echo().await;
    let gw = Gateway::start(GatewayConfig::standard(&echo.url())).await;
    let auth = format!("Bearer {}", gw.token("alice", &["user"]));
    let (mut tunnel, mut pending) =
        open_tunnel(&gw, "/api/ws", &[("Authorization", auth.as_str())]).await;

    for msg in [
        b"hello through the tunnel\n".as_slice(),
        b"GET /admin/x HTTP/1.1\r\nHost: localhost\r\n\r\n".as_slice(),
    ] {
        let got = round_trip(&mut tunnel, &mut pending, msg).await;
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(msg),
            "the tunnel must carry bytes verbatim"
        );
    }
    let big: Vec<u8> = (0..64 * 1024).map(pattern_byte).collect();
    let (mut rd, mut wr) = tokio::io::split(tunnel);
    let writer = tokio::spawn(async move {
        wr.write_all(&big).await.expect("write 64 KiB into tunnel");
        wr.flush().await.expect("flush");
        wr
    });
    let mut got = pending;
    let mut chunk = [0u8; 16384];
    tokio::time::timeout(DEADLINE, async {
        while got.len() < 64 * 1024 {
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .expect("64 KiB echoed within the deadline");
    let _wr = writer.await.expect("writer task");
    let mut d = Digest::new();
    d.update(&got);
    assert_eq!(
        d,
        Digest::of_pattern(64 * 1024),
        "64 KiB through the tunnel"
    );
}

#[tokio::test]
async fn upgrade_without_token_is_401_and_never_reaches_the_upstream() {
    let up = MockUpstream::start(Mode::Upgrade).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url())).await;
    let mut tls = send_raw(&gw, &upgrade_request("/api/ws", &[])).await;
    let resp = read_sized_response(&mut tls)
        .await
        .expect("an answer to the handshake");
    assert_eq!(resp.status, 401, "response: {}", resp.all);
    assert!(!resp.all.contains(" 101"), "response: {}", resp.all);
    let body: serde_json::Value = serde_json::from_str(&resp.body).expect("JSON 401 body");
    assert_eq!(body["error"], "missing_token", "body: {body}");

    // The connection is still HTTP, not a tunnel: the next bytes are a request of their own.
    tls.write_all(upgrade_request("/api/ws", &[]).as_bytes())
        .await
        .expect("write second handshake");
    tls.flush().await.expect("flush");
    let again = read_sized_response(&mut tls)
        .await
        .expect("an answer to the second handshake");
    assert_eq!(again.status, 401, "response: {}", again.all);
    assert!(
        up.seen().is_empty(),
        "the upstream saw the refused handshake: {:?}",
        up.seen_targets()
    );
}

#[tokio::test]
async fn upgrade_with_a_bad_token_or_missing_role_is_refused_before_the_upstream() {
    let up = MockUpstream::start(Mode::Upgrade).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url())).await;
    let user = format!("Bearer {}", gw.token("bob", &["user"]));
    let cases = [
        ("/api/ws", "Bearer not.a.token".to_string(), 401),
        ("/admin/ws", user, 403),
    ];
    for (path, auth, status) in cases {
        let mut tls = send_raw(
            &gw,
            &upgrade_request(path, &[("Authorization", auth.as_str())]),
        )
        .await;
        let resp = read_sized_response(&mut tls).await.expect("an answer");
        assert_eq!(resp.status, status, "{path}: {}", resp.all);
    }
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}

#[tokio::test]
async fn forged_identity_on_an_upgrade_does_not_reach_the_upstream() {
    let up = MockUpstream::start(Mode::Upgrade).await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url())).await;
    let auth = format!("Bearer {}", gw.token("alice", &["user"]));
    let (mut tunnel, mut pending) = open_tunnel(
        &gw,
        "/api/ws",
        &[
            ("Authorization", auth.as_str()),
            ("X-Auth-User", "admin"),
            ("x_auth_user", "admin"),
            ("X-Auth-Roles", "admin"),
            ("X.Auth.Roles", "admin"),
        ],
    )
    .await;
    let got = round_trip(&mut tunnel, &mut pending, b"ping").await;
    assert_eq!(got, b"ping", "the mock's tunnel echoes");

    let seen = up.seen();
    assert_eq!(seen.len(), 1, "one handshake: {:?}", up.seen_targets());
    let h = &seen[0].headers;
    let values = |name: &str| -> Vec<String> {
        h.get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    };
    assert_eq!(values("x-auth-user"), ["alice"], "headers: {h:?}");
    assert_eq!(values("x-auth-roles"), ["user"], "headers: {h:?}");
    for name in h.keys() {
        let n = name.as_str();
        assert!(
            !(n.contains('_') || n.contains('.')),
            "client-spelled {n:?} reached the upstream"
        );
    }
    assert_eq!(values("upgrade"), ["websocket"], "headers: {h:?}");
    let connection = values("connection").join(",").to_ascii_lowercase();
    assert!(connection.contains("upgrade"), "headers: {h:?}");
}

//! Hot reload (SIGHUP and file change) and graceful shutdown (SIGTERM), against the real binary.

use std::time::Duration;

use crate::common::*;
use http::StatusCode;

fn routes(upstream: &str, role: &str) -> String {
    format!(
        r#"
[upstreams.api]
url = "{upstream}"

[[routes]]
path = "/api/**"
upstream = "api"
roles_any = ["{role}"]
"#
    )
}

async fn status(gw: &Gateway, token: &str) -> StatusCode {
    let auth = format!("Bearer {token}");
    gw.client()
        .get("/api/x")
        .header("authorization", &auth)
        .send_h1()
        .await
        .status
}

#[tokio::test]
async fn reload_under_load_fails_no_request_and_the_new_policy_holds() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::new(routes(&up.url(), "a"))).await;
    let both = gw.token("carol", &["a", "b"]);
    let only_a = gw.token("alice", &["a"]);
    assert_eq!(status(&gw, &only_a).await, StatusCode::OK);

    // A client loop keeps going while the policy changes under it.
    let loop_gw = gw.client();
    let auth = format!("Bearer {both}");
    let load = tokio::spawn(async move {
        let mut statuses = Vec::new();
        for _ in 0..200 {
            statuses.push(
                loop_gw
                    .get("/api/x")
                    .header("authorization", &auth)
                    .send_h1()
                    .await
                    .status,
            );
        }
        statuses
    });
    gw.dir.write("routes.toml", &routes(&up.url(), "b"));
    gw.signal("HUP");
    let flipped = eventually(Duration::from_secs(10), || async {
        let got = status(&gw, &only_a).await;
        (got == StatusCode::FORBIDDEN)
            .then_some(())
            .ok_or(format!("status {got}"))
    })
    .await;
    assert!(flipped.is_ok(), "new policy never applied:\n{}", gw.log());
    let statuses = load.await.expect("load loop");
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "a request failed during reload: {statuses:?}"
    );
    assert_eq!(status(&gw, &gw.token("bob", &["b"])).await, StatusCode::OK);
    assert!(gw.log().contains("configuration reloaded"), "{}", gw.log());
}

#[tokio::test]
async fn a_token_accepted_before_its_key_is_replaced_is_refused_after_the_reload() {
    // Verified tokens are cached; a reload that replaces a (say, leaked) key must not let a
    // cached token signed with the old key through.
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::new(routes(&up.url(), "a"))).await;
    let old = gw.token("alice", &["a"]);
    // Several connections, so the token is cached on every worker thread.
    for _ in 0..8 {
        assert_eq!(status(&gw, &old).await, StatusCode::OK);
    }
    let (replacement, _) = ed25519_pem();
    gw.dir.write("main.pem", &replacement);
    gw.signal("HUP");
    let refused = eventually(Duration::from_secs(10), || async {
        let got = status(&gw, &old).await;
        (got == StatusCode::UNAUTHORIZED)
            .then_some(())
            .ok_or(format!("status {got}"))
    })
    .await;
    assert!(
        refused.is_ok(),
        "old key's token still served:\n{}",
        gw.log()
    );
    for _ in 0..8 {
        assert_eq!(status(&gw, &old).await, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn invalid_routes_file_is_rejected_and_the_old_policy_keeps_serving() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::new(routes(&up.url(), "a"))).await;
    let only_a = gw.token("alice", &["a"]);
    gw.dir.write(
        "routes.toml",
        &routes(&up.url(), "b").replace("upstream = \"api\"", "upstream = \"nope\""),
    );
    gw.signal("HUP");
    let rejected = eventually(Duration::from_secs(10), || async {
        gw.log()
            .contains("reload rejected")
            .then_some(())
            .ok_or("not yet".to_string())
    })
    .await;
    assert!(rejected.is_ok(), "no rejection logged:\n{}", gw.log());
    assert!(
        gw.log()
            .contains("routes.toml:7:12: unknown upstream \"nope\""),
        "{}",
        gw.log()
    );
    assert_eq!(status(&gw, &only_a).await, StatusCode::OK);
}

#[tokio::test]
async fn a_changed_routes_file_is_picked_up_without_a_signal() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::new(routes(&up.url(), "a"))).await;
    let only_a = gw.token("alice", &["a"]);
    // A different length as well as a new mtime, so even a coarse clock sees the change.
    gw.dir.write(
        "routes.toml",
        &format!("# changed\n{}", routes(&up.url(), "b")),
    );
    let flipped = eventually(Duration::from_secs(15), || async {
        let got = status(&gw, &only_a).await;
        (got == StatusCode::FORBIDDEN)
            .then_some(())
            .ok_or(format!("status {got}"))
    })
    .await;
    assert!(flipped.is_ok(), "file change never applied:\n{}", gw.log());
}

#[tokio::test]
async fn a_replaced_certificate_is_served_to_new_connections() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::new(routes(&up.url(), "a"))).await;
    let (cert_pem, key_pem, cert_der) = tls_cert();
    gw.dir.write("key.pem", &key_pem);
    gw.dir.write("cert.pem", &cert_pem);
    gw.signal("HUP");
    let new_client = Client::new(gw.https, cert_der);
    let served = eventually(Duration::from_secs(10), || async {
        new_client
            .connect_tls(&[b"http/1.1"])
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await;
    assert!(
        served.is_ok(),
        "new certificate never served:\n{}",
        gw.log()
    );
    assert!(
        gw.client().connect_tls(&[b"http/1.1"]).await.is_err(),
        "old certificate still served"
    );
}

#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish_then_exits_zero() {
    let up = MockUpstream::start(Mode::Slow(Duration::from_millis(1500))).await;
    let mut gw = Gateway::start(GatewayConfig::new(
        routes(&up.url(), "a").replace("roles_any = [\"a\"]", "auth = \"none\""),
    ))
    .await;
    let client = gw.client();
    let in_flight = tokio::spawn(async move { client.get("/api/slow").send_h1().await.status });
    eventually(Duration::from_secs(5), || async {
        (!up.seen().is_empty())
            .then_some(())
            .ok_or("not yet".to_string())
    })
    .await
    .expect("request reached the upstream");
    gw.signal("TERM");
    assert_eq!(in_flight.await.expect("request task"), StatusCode::OK);
    let exit = eventually(Duration::from_secs(10), || {
        let status = gw.exited();
        async move { status.ok_or("still running".to_string()) }
    })
    .await
    .expect("gateway exited");
    assert!(exit.success(), "exit status {exit:?}");
}

#[tokio::test]
async fn sigterm_does_not_wait_for_connections_that_never_spoke() {
    // header_timeout 60 s and shutdown_grace 30 s: only closing the silent connections at
    // once lets the gateway exit within the deadline below.
    let up = MockUpstream::start(Mode::Record).await;
    let mut gw = Gateway::start(GatewayConfig::standard(&up.url()).header_timeout("60s")).await;
    let mut silent = Vec::new();
    for alpn in [&[b"http/1.1".as_slice()][..], &[b"h2"], &[]] {
        silent.push(gw.client().connect_tls(alpn).await.expect("TLS connect"));
    }
    gw.signal("TERM");
    let exit = eventually(Duration::from_secs(10), || {
        let status = gw.exited();
        async move { status.ok_or("still running".to_string()) }
    })
    .await
    .expect("gateway exited without waiting for the silent connections");
    assert!(exit.success(), "exit status {exit:?}");
    drop(silent);
}

/// Whether a TCP connect to `addr` is refused outright (nothing listening), as opposed to
/// accepted, or left pending because the listen queue is full.
async fn refused(addr: std::net::SocketAddr) -> Result<(), String> {
    let connect = tokio::net::TcpStream::connect(addr);
    match tokio::time::timeout(Duration::from_secs(1), connect).await {
        Ok(Err(err)) if err.kind() == std::io::ErrorKind::ConnectionRefused => Ok(()),
        Ok(Err(err)) => Err(format!("{addr}: {err}")),
        Ok(Ok(_)) => Err(format!("{addr} still accepts connections")),
        Err(_) => Err(format!(
            "{addr}: connect still pending (queued, not refused)"
        )),
    }
}

#[tokio::test]
async fn sigterm_closes_every_listener_at_once_while_the_request_in_flight_finishes() {
    // The upstream holds the request until released, and the route waits for it longer than
    // this test polls, so the drain lasts as long as needed.
    let up = MockUpstream::start(Mode::Held).await;
    let routes = standard_routes(&up.url()).replace("timeout = \"10s\"", "timeout = \"60s\"");
    let cfg = GatewayConfig::new(routes).plain();
    let mut gw = Gateway::start(cfg).await;
    let client = gw.client();
    let in_flight = tokio::spawn(async move { client.get("/public/held").send_h1().await });
    eventually(Duration::from_secs(5), || async {
        (!up.seen().is_empty())
            .then_some(())
            .ok_or("not yet".to_string())
    })
    .await
    .expect("request reached the upstream");
    gw.signal("TERM");
    let listeners = [Some(gw.https), gw.plain, Some(gw.admin)];
    for addr in listeners.into_iter().flatten() {
        let closed = eventually(Duration::from_secs(10), || refused(addr)).await;
        assert!(closed.is_ok(), "{closed:?}\n{}", gw.log());
    }
    assert!(gw.exited().is_none(), "the gateway exited before the drain");
    assert!(
        !in_flight.is_finished(),
        "the held request was answered early"
    );
    up.release();
    let resp = in_flight.await.expect("request task");
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    let exit = eventually(Duration::from_secs(10), || {
        let status = gw.exited();
        async move { status.ok_or("still running".to_string()) }
    })
    .await
    .expect("gateway exited");
    assert!(exit.success(), "exit status {exit:?}");
}

/// The kids the running gateway publishes in its JWK Set.
async fn published_kids(gw: &Gateway) -> Vec<String> {
    let resp = gw.client().get("/.well-known/jwks.json").send_h1().await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text());
    let mut kids: Vec<String> = resp.json()["keys"]
        .as_array()
        .expect("a keys array")
        .iter()
        .filter_map(|key| key["kid"].as_str().map(str::to_owned))
        .collect();
    kids.sort();
    kids
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("a JWT header")
        .kid
        .expect("a kid")
}

/// Rewrites gateway.toml with `edit` and reloads, then waits for the reload to be logged.
async fn reload_until(gw: &Gateway, edit: impl FnOnce(String) -> String, what: &str) {
    let path = gw.dir.join("gateway.toml");
    let text = std::fs::read_to_string(&path).expect("gateway.toml");
    let edited = edit(text.clone());
    assert_ne!(edited, text, "{what}: the edit changed nothing");
    gw.reload_with("gateway.toml", &edited).await;
}

#[tokio::test]
async fn the_readme_key_rotation_works_step_by_step_with_reloads_only() {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = Gateway::start(GatewayConfig::new(routes(&up.url(), "a"))).await;
    let old = gw.cli_token("alice", &["a"]);
    assert_eq!(kid_of(&old), "main");

    // 1. keygen prints the block to paste.
    let dir = gw.dir.path().to_str().expect("utf-8").to_owned();
    let out = run_cli(&["keygen", "--alg", "EdDSA", "--kid", "k2", "--out", &dir]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let block = out
        .stdout
        .split_once("[[keys]]\n")
        .map(|(_, block)| format!("[[keys]]\n{}\n", block.trim_end()))
        .expect("a [[keys]] block");

    // 2. Publish: in the JWK Set, signing nothing yet.
    reload_until(&gw, |text| format!("{text}\n{block}"), "publish").await;
    assert_eq!(published_kids(&gw).await, ["k2", "main"]);
    assert_eq!(kid_of(&gw.cli_token("alice", &["a"])), "main");

    // 4. Switch: new tokens are signed with k2; the old key's tokens still pass.
    reload_until(
        &gw,
        |text| {
            text.replace("signing_kid = \"main\"", "signing_kid = \"k2\"")
                .replace(
                    "private_key = \"main.pem\"",
                    "private_key = \"main.pem\"\nverify_only = true",
                )
        },
        "switch",
    )
    .await;
    let new = gw.cli_token("alice", &["a"]);
    assert_eq!(kid_of(&new), "k2");
    assert_eq!(status(&gw, &new).await, StatusCode::OK);
    assert_eq!(status(&gw, &old).await, StatusCode::OK);
    assert_eq!(published_kids(&gw).await, ["k2", "main"]);

    // 5. Retire: the old key and its tokens are gone.
    reload_until(
        &gw,
        |text| {
            text.replace(
                "[[keys]]\nkid = \"main\"\nalg = \"EdDSA\"\nprivate_key = \"main.pem\"\nverify_only = true\n",
                "",
            )
        },
        "retire",
    )
    .await;
    assert_eq!(published_kids(&gw).await, ["k2"]);
    assert_eq!(status(&gw, &old).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(&gw, &new).await, StatusCode::OK);
}

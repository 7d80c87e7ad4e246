//! POST /auth/login: the pair it answers, the one 401 for every bad credential, the body
//! rules (415, 413, 400) and failed-login throttling (429 + Retry-After).

use crate::common::*;
use http::StatusCode;
use serde_json::json;

const ALICE_PW: &str = "correct horse battery";
const BOB_PW: &str = "tr0ub4dor and then some";

/// A gateway with alice (admin) and bob (no role), in front of a recording upstream.
async fn gateway(customize: impl FnOnce(AuthSetup) -> AuthSetup) -> (Gateway, MockUpstream) {
    let up = MockUpstream::start(Mode::Record).await;
    let setup = AuthSetup::new(&up.url())
        .user("alice", ALICE_PW, &["admin"])
        .user("bob", BOB_PW, &[]);
    let gw = customize(setup).start().await;
    (gw, up)
}

#[tokio::test]
async fn login_returns_a_pair_whose_access_token_opens_protected_routes() {
    let (gw, up) = gateway(|s| s).await;
    let resp = gw.login("alice", ALICE_PW).await;
    let pair = Pair::from_response(&resp);
    assert_eq!(pair.body["expires_in"], 900, "access_ttl is 15m");
    assert_eq!(resp.header("cache-control").as_deref(), Some("no-store"));

    let access = pair.access_claims();
    let refresh = pair.refresh_claims();
    assert_eq!(access["sub"], "alice");
    assert_eq!(access["roles"], json!(["admin"]));
    assert_eq!(access["typ"], "access");
    assert_eq!(access["iss"], "portcullis");
    assert_eq!(refresh["typ"], "refresh");
    assert_eq!(refresh["sub"], "alice");
    assert!(refresh["fam"].is_string(), "refresh claims: {refresh}");
    assert_ne!(access["jti"], refresh["jti"]);
    assert_eq!(token_part(&pair.access, 0)["kid"], "main");

    let admin = gw
        .client()
        .get("/admin/reports")
        .bearer(&pair.access)
        .send_h1()
        .await;
    assert_eq!(admin.status, StatusCode::OK, "body: {}", admin.text());
    assert_eq!(
        up.seen()[0]
            .headers
            .get("x-auth-user")
            .map(|v| v.as_bytes()),
        Some(b"alice".as_slice())
    );
}

#[tokio::test]
async fn refresh_token_is_not_an_access_token() {
    let (gw, up) = gateway(|s| s).await;
    let pair = gw.login_ok("alice", ALICE_PW).await;
    let resp = gw.get_api(&pair.refresh).await;
    assert_invalid_token(&resp, "wrong token type", &pair.refresh);
    assert!(up.seen().is_empty(), "upstream saw {:?}", up.seen_targets());
}

#[tokio::test]
async fn unknown_user_wrong_password_and_disabled_user_get_the_same_answer() {
    let pw = "mallory's long password";
    let disabled = format!(
        "[[users]]\nname = \"mallory\"\nhash = \"{}\"\nroles = []\ndisabled = true\n",
        hash_password(pw)
    );
    let (gw, _up) = gateway(|s| s.file("users.toml", &disabled)).await;

    let unknown = gw.login("nobody", ALICE_PW).await;
    let wrong = gw.login("alice", "not alice's password").await;
    let off = gw.login("mallory", pw).await;
    for resp in [&unknown, &wrong, &off] {
        assert_bad_credentials(resp);
        assert_eq!(resp.text(), unknown.text(), "bodies differ");
        assert_eq!(
            resp.header("www-authenticate"),
            unknown.header("www-authenticate"),
            "WWW-Authenticate differs"
        );
        assert_eq!(resp.header("content-type"), unknown.header("content-type"));
    }
    assert!(
        unknown.header("www-authenticate").is_some(),
        "a 401 carries a challenge"
    );
    // The users added with the CLI next to the hand-written entry still log in.
    gw.login_ok("alice", ALICE_PW).await;
}

#[tokio::test]
async fn usernames_are_case_insensitive_at_login() {
    let (gw, _up) = gateway(|s| s).await;
    let pair = gw.login_ok("Alice", ALICE_PW).await;
    assert_eq!(pair.access_claims()["sub"], "alice");
}

#[tokio::test]
async fn login_needs_a_json_content_type() {
    let (gw, _up) = gateway(|s| s).await;
    let body = json!({ "username": "alice", "password": ALICE_PW }).to_string();
    for ctype in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut req = gw.client().post("/auth/login").body(body.clone());
        if let Some(c) = ctype {
            req = req.header("content-type", c);
        }
        let resp = req.send_h1().await;
        assert_eq!(
            resp.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content-type {ctype:?}: {}",
            resp.text()
        );
    }
    let charset = gw
        .client()
        .post("/auth/login")
        .header("content-type", "application/json; charset=utf-8")
        .body(body)
        .send_h1()
        .await;
    Pair::from_response(&charset);
}

#[tokio::test]
async fn login_body_over_16_kib_is_413() {
    let (gw, _up) = gateway(|s| s).await;
    let big = json!({ "username": "alice", "password": "x".repeat(17 * 1024) });
    let resp = gw.post_json("/auth/login", &big).await;
    assert_eq!(
        resp.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body: {}",
        resp.text()
    );
    // Chunked, without a Content-Length, the cap still holds.
    let mut req = format!(
        "POST /auth/login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        gw.authority()
    );
    let chunk = format!(r#"{{"username":"alice","password":"{}"#, "x".repeat(4066));
    for _ in 0..5 {
        req.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    req.push_str("0\r\n\r\n");
    let raw = gw.client().raw(req.as_bytes()).await;
    assert_eq!(raw.status, 413, "answer: {}", raw.all);
}

#[tokio::test]
async fn malformed_or_incomplete_login_body_is_400() {
    let (gw, _up) = gateway(|s| s).await;
    let bodies = [
        "{".to_string(),
        "".to_string(),
        "[]".to_string(),
        json!({ "username": "alice" }).to_string(),
        json!({ "password": ALICE_PW }).to_string(),
        json!({ "username": 7, "password": ALICE_PW }).to_string(),
        json!({ "username": "alice", "password": null }).to_string(),
    ];
    for body in bodies {
        let resp = gw
            .client()
            .post("/auth/login")
            .header("content-type", "application/json")
            .body(body.clone())
            .send_h1()
            .await;
        assert_eq!(
            resp.status,
            StatusCode::BAD_REQUEST,
            "body {body:?} -> {}",
            resp.text()
        );
        assert!(resp.json()["error"].is_string(), "JSON error body");
    }
}

/// `Retry-After` of a 429: whole seconds, at least 1, at most the window.
fn assert_throttled(resp: &Response, window_secs: u64) {
    assert_eq!(
        resp.status,
        StatusCode::TOO_MANY_REQUESTS,
        "body: {}",
        resp.text()
    );
    let after = resp.header("retry-after").expect("429 carries Retry-After");
    let secs: u64 = after.parse().expect("Retry-After in seconds");
    assert!((1..=window_secs).contains(&secs), "Retry-After {secs}");
}

#[tokio::test]
async fn failed_logins_per_username_are_throttled_with_retry_after() {
    let limits = "max_failures_per_user = 3\nmax_failures_per_ip = 100\nwindow = \"15m\"";
    let (gw, _up) = gateway(|s| s.login(limits)).await;
    for _ in 0..3 {
        assert_bad_credentials(&gw.login("alice", "guess guess guess").await);
    }
    // Now even the right password is refused, in any spelling of the name.
    assert_throttled(&gw.login("alice", ALICE_PW).await, 900);
    assert_throttled(&gw.login("ALICE", ALICE_PW).await, 900);
    // Another user on the same address is not affected.
    gw.login_ok("bob", BOB_PW).await;
}

#[tokio::test]
async fn failed_logins_per_address_are_throttled_with_retry_after() {
    let limits = "max_failures_per_user = 100\nmax_failures_per_ip = 3\nwindow = \"15m\"";
    let (gw, _up) = gateway(|s| s.login(limits)).await;
    for name in ["carol", "dave", "erin"] {
        assert_bad_credentials(&gw.login(name, "guess guess guess").await);
    }
    assert_throttled(&gw.login("alice", ALICE_PW).await, 900);
}

#[tokio::test]
async fn successful_login_clears_the_username_failure_count() {
    let limits = "max_failures_per_user = 3\nmax_failures_per_ip = 100\nwindow = \"15m\"";
    let (gw, _up) = gateway(|s| s.login(limits)).await;
    for _ in 0..2 {
        assert_bad_credentials(&gw.login("alice", "guess guess guess").await);
    }
    gw.login_ok("alice", ALICE_PW).await;
    for _ in 0..2 {
        assert_bad_credentials(&gw.login("alice", "guess guess guess").await);
    }
    gw.login_ok("alice", ALICE_PW).await;
}

#[tokio::test]
async fn user_add_refuses_a_weak_password() {
    let up = MockUpstream::start(Mode::Record).await;
    let dir = TestDir::new();
    let cfg = AuthSetup::new(&up.url()).config();
    let config = Gateway::prepare(&dir, &cfg);
    let config = config.to_str().expect("utf-8 temp path");
    let short = add_user(config, "alice", "short", &[]);
    assert_ne!(short.code, Some(0), "a 5-character password was accepted");
    let named = add_user(config, "alice", "alice-alice-alice", &[]);
    assert_ne!(
        named.code,
        Some(0),
        "a password holding the name was accepted"
    );
    let ok = add_user(config, "alice", ALICE_PW, &["admin".to_string()]);
    assert_eq!(ok.code, Some(0), "{ok:?}");
    let users = std::fs::read_to_string(dir.join("users.toml")).expect("users.toml written");
    assert!(
        users.contains("alice") && users.contains("$argon2id$"),
        "{users}"
    );
    assert!(!users.contains(ALICE_PW), "users.toml holds the password");
}

#[tokio::test]
async fn login_works_over_http2() {
    let (gw, _up) = gateway(|s| s).await;
    let body = json!({ "username": "alice", "password": ALICE_PW }).to_string();
    let resp = gw
        .client()
        .post("/auth/login")
        .header("content-type", "application/json")
        .body(body)
        .send_h2()
        .await;
    let pair = Pair::from_response(&resp);
    assert_eq!(gw.get_api(&pair.access).await.status, StatusCode::OK);
}

#[tokio::test]
async fn endpoint_prefix_is_configurable() {
    let (gw, up) = gateway(|s| s.extra("[endpoints]\nprefix = \"/sso\"")).await;
    let body = json!({ "username": "alice", "password": ALICE_PW });
    Pair::from_response(&gw.post_json("/sso/login", &body).await);
    let old = gw.post_json("/auth/login", &body).await;
    assert_eq!(old.status, StatusCode::NOT_FOUND, "body: {}", old.text());
    assert!(up.seen().is_empty(), "forwarded: {:?}", up.seen_targets());
}

#[tokio::test]
async fn full_hash_queue_is_503_with_retry_after() {
    let (gw, _up) =
        gateway(|s| s.users_section("backend = \"file\"\nhash_workers = 1\nhash_queue = 1\n"))
            .await;
    let client = gw.client();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let body = json!({ "username": "alice", "password": ALICE_PW });
                client
                    .post("/auth/login")
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send_h1()
                    .await
            })
        })
        .collect();
    let (mut ok, mut busy) = (0, 0);
    for t in tasks {
        let resp = t.await.expect("login task");
        match resp.status {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                busy += 1;
                assert_eq!(resp.header("retry-after").as_deref(), Some("1"));
            }
            s => panic!("unexpected {s}: {}", resp.text()),
        }
    }
    assert!(ok >= 1, "no login got through");
    assert!(busy >= 1, "16 logins at once fit a queue of 1");
    // Refusals for a full queue are not failed logins: the user is not throttled.
    gw.login_ok("alice", ALICE_PW).await;
}

//! The rest of a session: refresh rotation and reuse detection, logout, and
//! `portcullis revoke` by token id or by subject.

use crate::common::*;
use http::StatusCode;

const ALICE_PW: &str = "correct horse battery";
const BOB_PW: &str = "tr0ub4dor and then some";

/// alice (admin) and bob on the file store; `tokens` lines go into `[tokens]`.
async fn gateway(tokens: &str) -> (Gateway, MockUpstream) {
    let up = MockUpstream::start(Mode::Record).await;
    let gw = AuthSetup::new(&up.url())
        .tokens(tokens)
        .user("alice", ALICE_PW, &["admin"])
        .user("bob", BOB_PW, &[])
        .start()
        .await;
    (gw, up)
}

async fn assert_open(gw: &Gateway, access: &str) {
    let resp = gw.get_api(access).await;
    assert_eq!(resp.status, StatusCode::OK, "body: {}", resp.text());
}

async fn assert_revoked(gw: &Gateway, access: &str) {
    assert_invalid_token(&gw.get_api(access).await, "token revoked", access);
}

#[tokio::test]
async fn refresh_issues_the_next_pair_of_the_same_family() {
    let (gw, _up) = gateway("").await;
    let first = gw.login_ok("alice", ALICE_PW).await;
    let next = Pair::from_response(&gw.refresh(&first.refresh).await);
    assert_ne!(next.access, first.access);
    assert_ne!(next.refresh, first.refresh);
    let (a, r) = (next.access_claims(), next.refresh_claims());
    assert_eq!(r["fam"], first.refresh_claims()["fam"], "same family");
    assert_eq!(a["sub"], "alice");
    assert_eq!(a["roles"], serde_json::json!(["admin"]));
    assert_eq!(r["typ"], "refresh");
    assert_ne!(r["jti"], first.refresh_claims()["jti"]);
    assert_open(&gw, &next.access).await;
    // The next refresh token rotates again.
    let third = Pair::from_response(&gw.refresh(&next.refresh).await);
    assert_eq!(third.refresh_claims()["fam"], r["fam"]);
}

#[tokio::test]
async fn a_login_says_how_and_when_and_refreshes_keep_saying_it() {
    let (gw, _up) = gateway("").await;
    let first = gw.login_ok("alice", ALICE_PW).await;
    let login = first.access_claims();
    assert_eq!(login["amr"], serde_json::json!(["pwd"]));
    assert_eq!(
        login["auth_time"], login["iat"],
        "signed in when the pair was issued"
    );
    assert!(
        login.get("idp").is_none(),
        "no provider for a password sign-in"
    );
    // A second later the refreshed pair is issued anew, but the sign-in is the same one.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let next = Pair::from_response(&gw.refresh(&first.refresh).await);
    let (access, refresh) = (next.access_claims(), next.refresh_claims());
    assert_ne!(access["iat"], login["iat"]);
    for claims in [&access, &refresh] {
        assert_eq!(claims["amr"], login["amr"]);
        assert_eq!(claims["auth_time"], login["auth_time"]);
    }
}

#[tokio::test]
async fn spent_refresh_token_within_the_grace_gets_the_same_pair() {
    let (gw, _up) = gateway("refresh_reuse_grace = \"10s\"").await;
    let first = gw.login_ok("alice", ALICE_PW).await;
    let a = Pair::from_response(&gw.refresh(&first.refresh).await);
    let b = Pair::from_response(&gw.refresh(&first.refresh).await);
    assert_eq!(a.access, b.access, "a second tab gets the same pair");
    assert_eq!(a.refresh, b.refresh, "a second tab gets the same pair");
    assert_open(&gw, &a.access).await;
    assert_open(&gw, &first.access).await;
}

#[tokio::test]
async fn spent_refresh_token_after_the_grace_revokes_the_whole_family() {
    let (gw, _up) = gateway("refresh_reuse_grace = \"1s\"").await;
    let first = gw.login_ok("alice", ALICE_PW).await;
    let other = gw.login_ok("alice", ALICE_PW).await;
    let next = Pair::from_response(&gw.refresh(&first.refresh).await);

    // Within the grace the replay gets `next` again; after it, reuse is detected.
    let reuse = eventually(DEADLINE, || async {
        let resp = gw.refresh(&first.refresh).await;
        if resp.status == StatusCode::OK {
            let again = Pair::from_response(&resp);
            assert_eq!(again.access, next.access, "replay within the grace");
            return Err("still within the grace".to_string());
        }
        Ok(resp)
    })
    .await
    .expect("reuse detected once the grace has passed");
    assert_invalid_grant(&reuse);
    assert_no_token_in(&reuse, &first.refresh);

    // The newest pair of that family is dead, and so is the original access token.
    assert_revoked(&gw, &next.access).await;
    assert_revoked(&gw, &first.access).await;
    let r = gw.refresh(&next.refresh).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "body: {}", r.text());
    // Another login of the same user is another family: untouched.
    assert_open(&gw, &other.access).await;
    Pair::from_response(&gw.refresh(&other.refresh).await);
}

#[tokio::test]
async fn a_refresh_loop_is_answered_429_with_retry_after() {
    let (gw, _up) = gateway("").await;
    let other = gw.login_ok("alice", ALICE_PW).await;
    let mut pair = gw.login_ok("alice", ALICE_PW).await;
    let mut throttled = None;
    for _ in 0..50 {
        let resp = gw.refresh(&pair.refresh).await;
        if resp.status == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some(resp);
            break;
        }
        pair = Pair::from_response(&resp);
    }
    let resp = throttled.expect("50 refreshes of one session in a row are never throttled");
    assert_eq!(resp.json()["error"], "too_many_requests", "{}", resp.text());
    let retry_after: u64 = resp
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // Throttling spends and revokes nothing: the session goes on, and so does another.
    assert_open(&gw, &pair.access).await;
    Pair::from_response(&gw.refresh(&other.refresh).await);
    assert!(gw.audit_events("refresh_reuse_detected").is_empty());
    assert_eq!(gw.audit_events("refresh_throttled").len(), 1);
}

#[tokio::test]
async fn access_token_is_not_a_refresh_token() {
    let (gw, _up) = gateway("").await;
    let pair = gw.login_ok("alice", ALICE_PW).await;
    let resp = gw.refresh(&pair.access).await;
    assert_eq!(
        resp.status,
        StatusCode::UNAUTHORIZED,
        "body: {}",
        resp.text()
    );
    assert_eq!(resp.json()["error_description"], "wrong token type");
    assert_no_token_in(&resp, &pair.access);
}

#[tokio::test]
async fn forged_or_garbage_refresh_tokens_are_401() {
    let (gw, _up) = gateway("").await;
    let mut claims = gw.claims("alice", &["admin"]);
    claims["typ"] = "refresh".into();
    claims["fam"] = "made-up-family".into();
    let (foreign, _) = ed25519_pem();
    let key = jsonwebtoken::EncodingKey::from_ed_pem(foreign.as_bytes()).expect("PEM");
    let forged = jsonwebtoken::encode(&gw.header(), &claims, &key).expect("sign");
    for token in [forged.as_str(), "not.a.token", ""] {
        let resp = gw.refresh(token).await;
        assert_eq!(
            resp.status,
            StatusCode::UNAUTHORIZED,
            "{token:?}: {}",
            resp.text()
        );
    }
}

#[tokio::test]
async fn logout_revokes_the_access_token_and_the_refresh_token() {
    let (gw, _up) = gateway("").await;
    let pair = gw.login_ok("alice", ALICE_PW).await;
    let other = gw.login_ok("alice", ALICE_PW).await;
    assert_open(&gw, &pair.access).await;
    let resp = gw.logout(&pair.access, Some(&pair.refresh)).await;
    assert_eq!(resp.status, StatusCode::NO_CONTENT, "body: {}", resp.text());
    assert_revoked(&gw, &pair.access).await;
    let r = gw.refresh(&pair.refresh).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "body: {}", r.text());
    // The other session of the same user goes on.
    assert_open(&gw, &other.access).await;
}

#[tokio::test]
async fn logout_without_a_body_revokes_the_access_token() {
    let (gw, _up) = gateway("").await;
    let pair = gw.login_ok("alice", ALICE_PW).await;
    let resp = gw.logout(&pair.access, None).await;
    assert_eq!(resp.status, StatusCode::NO_CONTENT, "body: {}", resp.text());
    assert_revoked(&gw, &pair.access).await;
}

#[tokio::test]
async fn logout_with_only_the_bearer_token_ends_the_whole_sign_in() {
    let (gw, _up) = gateway("").await;
    let first = gw.login_ok("alice", ALICE_PW).await;
    let next = Pair::from_response(&gw.refresh(&first.refresh).await);
    let other = gw.login_ok("alice", ALICE_PW).await;
    let resp = gw.logout(&next.access, None).await;
    assert_eq!(resp.status, StatusCode::NO_CONTENT, "body: {}", resp.text());
    // An older access token of the same sign-in, and its refresh token, die with it.
    assert_revoked(&gw, &first.access).await;
    assert_invalid_token(
        &gw.refresh(&next.refresh).await,
        "token revoked",
        &next.refresh,
    );
    // Another sign-in of the same user goes on.
    assert_open(&gw, &other.access).await;
}

#[tokio::test]
async fn logout_needs_a_valid_access_token() {
    let (gw, _up) = gateway("").await;
    let pair = gw.login_ok("alice", ALICE_PW).await;
    let none = gw.client().post("/auth/logout").send_h1().await;
    assert_eq!(
        none.status,
        StatusCode::UNAUTHORIZED,
        "body: {}",
        none.text()
    );
    let with_refresh = gw.logout(&pair.refresh, None).await;
    assert_eq!(with_refresh.status, StatusCode::UNAUTHORIZED);
    // Nothing was revoked by the refused attempts.
    assert_open(&gw, &pair.access).await;
    Pair::from_response(&gw.refresh(&pair.refresh).await);
}

#[tokio::test]
async fn revoke_by_jti_rejects_that_token_only() {
    let (gw, _up) = gateway("").await;
    let one = gw.login_ok("alice", ALICE_PW).await;
    let two = gw.login_ok("alice", ALICE_PW).await;
    let jti = one.access_claims()["jti"]
        .as_str()
        .expect("jti claim")
        .to_string();
    gw.revoke_cli(&["--jti", &jti]);
    assert_revoked(&gw, &one.access).await;
    assert_open(&gw, &two.access).await;
}

#[tokio::test]
async fn revoke_by_subject_rejects_every_token_it_holds_now() {
    // The cut-off lies one leeway past the revocation (a clock that far ahead may have
    // dated a token issued before it that late): a short leeway keeps the wait short.
    let up = MockUpstream::start(Mode::Record).await;
    let gw = AuthSetup::new(&up.url())
        .leeway("1s")
        .user("alice", ALICE_PW, &["admin"])
        .user("bob", BOB_PW, &[])
        .start()
        .await;
    let one = gw.login_ok("alice", ALICE_PW).await;
    let two = gw.login_ok("alice", ALICE_PW).await;
    let bob = gw.login_ok("bob", BOB_PW).await;
    let minted = gw.token("alice", &["admin"]);
    gw.revoke_cli(&["--sub", "alice"]);
    let revoked_at = now_secs();
    for access in [&one.access, &two.access, &minted] {
        assert_revoked(&gw, access).await;
    }
    let r = gw.refresh(&one.refresh).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "body: {}", r.text());
    assert_open(&gw, &bob.access).await;

    // Tokens issued past the cut-off work (iat has 1-second resolution).
    eventually(DEADLINE, || async {
        (now_secs() > revoked_at + 1)
            .then_some(())
            .ok_or_else(|| "same second".to_string())
    })
    .await
    .expect("the clock moves");
    let fresh = gw.login_ok("alice", ALICE_PW).await;
    assert_open(&gw, &fresh.access).await;
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_get_one_pair() {
    let (gw, _up) = gateway("").await;
    let first = gw.login_ok("alice", ALICE_PW).await;
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let client = gw.client();
            let body = serde_json::json!({ "refresh_token": first.refresh }).to_string();
            tokio::spawn(async move {
                client
                    .post("/auth/refresh")
                    .header("content-type", "application/json")
                    .body(body)
                    .send_h1()
                    .await
            })
        })
        .collect();
    let mut pairs = Vec::new();
    for t in tasks {
        pairs.push(Pair::from_response(&t.await.expect("refresh task")));
    }
    for p in &pairs[1..] {
        assert_eq!(p.access, pairs[0].access, "racing tabs got different pairs");
        assert_eq!(
            p.refresh, pairs[0].refresh,
            "racing tabs got different pairs"
        );
    }
    Pair::from_response(&gw.refresh(&pairs[0].refresh).await);
}

#[tokio::test]
async fn disabled_or_deleted_user_cannot_refresh() {
    let up = MockUpstream::start(Mode::Record).await;
    let setup = AuthSetup::new(&up.url())
        .user("alice", ALICE_PW, &["admin"])
        .user("bob", BOB_PW, &[]);
    let cfg = setup.config();
    let gw = setup.start().await;
    let alice = gw.login_ok("alice", ALICE_PW).await;
    let bob = gw.login_ok("bob", BOB_PW).await;

    // Offline edit: alice disabled, bob deleted; same signing key after the restart.
    let dir = gw.stop();
    let path = dir.join("users.toml");
    let text = std::fs::read_to_string(&path).expect("users.toml");
    let mut doc: toml::Table = toml::from_str(&text).expect("users.toml is TOML");
    let users = doc["users"].as_array_mut().expect("[[users]]");
    users.retain(|u| u["name"].as_str() != Some("bob"));
    users[0]
        .as_table_mut()
        .expect("a user table")
        .insert("disabled".into(), true.into());
    std::fs::write(&path, toml::to_string(&doc).expect("TOML")).expect("write users.toml");
    let gw = Gateway::start_in(dir, cfg).await;

    assert_invalid_grant(&gw.refresh(&alice.refresh).await);
    assert_invalid_grant(&gw.refresh(&bob.refresh).await);
    assert_bad_credentials(&gw.login("alice", ALICE_PW).await);
}

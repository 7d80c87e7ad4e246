//! Several gateways sharing one real redis-server: revocations cross instances, a dead
//! Redis follows `on_error`, a restarted Redis is rejoined without a gateway restart.

use std::time::{Duration, Instant};

use crate::common::*;
use http::StatusCode;

fn store(redis: &Redis, on_error: &str) -> String {
    format!(
        "[store]\nbackend = \"redis\"\nredis_url = \"{}\"\non_error = \"{on_error}\"\n",
        redis.url()
    )
}

/// A second gateway on the same Redis that verifies the first one's tokens.
async fn twin(first: &Gateway, cfg: GatewayConfig) -> Gateway {
    let dir = TestDir::new();
    dir.write("main.pem", &first.signing_key_pem);
    dir.write("main.pub.pem", &first.public_key_pem);
    Gateway::start_in(dir, cfg).await
}

async fn get(gw: &Gateway, token: &str) -> StatusCode {
    let auth = format!("Bearer {token}");
    gw.client()
        .get("/api/x")
        .header("authorization", &auth)
        .send_h1()
        .await
        .status
}

fn jti_of(token: &str) -> String {
    claims_of(token)["jti"]
        .as_str()
        .expect("jti claim")
        .to_string()
}

#[tokio::test]
async fn a_revocation_on_one_gateway_is_enforced_by_the_other() {
    let redis = Redis::start().await;
    let up = Upstream::echo().await;
    let cfg = GatewayConfig::standard(&up.url()).extra(&store(&redis, "deny"));
    let a = Gateway::start(cfg.clone()).await;
    let b = twin(&a, cfg).await;
    let token = a.token("alice", &["user"]);
    assert_eq!(get(&b, &token).await, StatusCode::OK);

    let out = run_cli(&[
        "revoke",
        "--config",
        &a.config_arg(),
        "--jti",
        &jti_of(&token),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let revoked_at = Instant::now();
    let seen = eventually(Duration::from_secs(5), || async {
        let status = get(&b, &token).await;
        (status == StatusCode::UNAUTHORIZED)
            .then_some(())
            .ok_or(format!("B answered {status}"))
    })
    .await;
    assert!(
        seen.is_ok(),
        "B never enforced A's revocation:\n{}",
        b.log()
    );
    // A generous bound for a loaded CI machine; the mirror itself works in milliseconds.
    assert!(
        revoked_at.elapsed() < Duration::from_secs(2),
        "took {:?}",
        revoked_at.elapsed()
    );
    assert_eq!(get(&b, &a.token("bob", &["user"])).await, StatusCode::OK);
}

#[tokio::test]
async fn a_dead_redis_denies_with_503_when_on_error_is_deny() {
    let mut redis = Redis::start().await;
    let up = Upstream::echo().await;
    // No staleness allowed: the mirror stops deciding the moment it loses Redis.
    let cfg = store(&redis, "deny") + "max_mirror_staleness = \"0s\"\n";
    let gw = Gateway::start(GatewayConfig::standard(&up.url()).extra(&cfg)).await;
    let token = gw.token("alice", &["user"]);
    assert_eq!(get(&gw, &token).await, StatusCode::OK);
    redis.kill();
    let denied = eventually(Duration::from_secs(10), || async {
        let resp = gw
            .client()
            .get("/api/x")
            .header("authorization", &format!("Bearer {token}"))
            .send_h1()
            .await;
        (resp.status == StatusCode::SERVICE_UNAVAILABLE
            && resp.text().contains("revocation store unavailable"))
        .then_some(())
        .ok_or(format!("answered {}", resp.status))
    })
    .await;
    assert!(denied.is_ok(), "{denied:?}\n{}", gw.log());
    let (ready, _) = plain_get(gw.admin, "/readyz").await.expect("readyz");
    assert_eq!(ready, 503, "an out-of-sync instance must not be ready");
    assert_eq!(
        gw.client().get("/public/x").send_h1().await.status,
        StatusCode::OK
    );

    redis.restart().await;
    let back = eventually(Duration::from_secs(15), || async {
        let status = get(&gw, &token).await;
        (status == StatusCode::OK)
            .then_some(())
            .ok_or(format!("answered {status}"))
    })
    .await;
    assert!(
        back.is_ok(),
        "the gateway did not rejoin the restarted Redis:\n{}",
        gw.log()
    );
}

#[tokio::test]
async fn a_dead_redis_lets_valid_tokens_through_when_on_error_is_allow() {
    let mut redis = Redis::start().await;
    let up = Upstream::echo().await;
    let cfg = store(&redis, "allow") + "max_mirror_staleness = \"0s\"\n";
    let gw = Gateway::start(GatewayConfig::standard(&up.url()).extra(&cfg)).await;
    let token = gw.token("alice", &["user"]);
    redis.kill();
    // Every request stays 200, before and after the gateway notices Redis is gone.
    let unchecked = eventually(Duration::from_secs(10), || async {
        let status = get(&gw, &token).await;
        if status != StatusCode::OK {
            panic!("on_error = allow answered {status}");
        }
        gw.log()
            .contains("revocation_unchecked")
            .then_some(())
            .ok_or("not yet".to_string())
    })
    .await;
    assert!(
        unchecked.is_ok(),
        "the unchecked pass is never logged:\n{}",
        gw.log()
    );
    assert_eq!(get(&gw, "not-a-token").await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn revocations_survive_a_redis_restart() {
    let mut redis = Redis::start().await;
    let up = Upstream::echo().await;
    let gw = Gateway::start(GatewayConfig::standard(&up.url()).extra(&store(&redis, "deny"))).await;
    let token = gw.token("alice", &["user"]);
    let out = run_cli(&[
        "revoke",
        "--config",
        &gw.config_arg(),
        "--jti",
        &jti_of(&token),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    redis.restart().await;
    let other = gw.token("bob", &["user"]);
    let back = eventually(Duration::from_secs(15), || async {
        let status = get(&gw, &other).await;
        (status == StatusCode::OK)
            .then_some(())
            .ok_or(format!("answered {status}"))
    })
    .await;
    assert!(back.is_ok(), "{back:?}\n{}", gw.log());
    assert_eq!(get(&gw, &token).await, StatusCode::UNAUTHORIZED);
    // A fresh instance loads the revocation from the restarted Redis.
    let fresh = twin(
        &gw,
        GatewayConfig::standard(&up.url()).extra(&store(&redis, "deny")),
    )
    .await;
    assert_eq!(get(&fresh, &token).await, StatusCode::UNAUTHORIZED);
}

const ALICE_PW: &str = "correct horse battery";

fn alice_setup(redis: &Redis, upstream: &str) -> AuthSetup {
    AuthSetup::new(upstream)
        .user("alice", ALICE_PW, &["user"])
        .extra(&store(redis, "deny"))
}

#[tokio::test]
async fn two_gateways_racing_on_one_refresh_token_issue_one_pair() {
    let redis = Redis::start().await;
    let up = Upstream::echo().await;
    let a = alice_setup(&redis, &up.url()).start().await;
    // B: same signing key and users, same Redis.
    let dir = TestDir::new();
    dir.write("main.pem", &a.signing_key_pem);
    dir.write("main.pub.pem", &a.public_key_pem);
    let users = std::fs::read_to_string(a.dir.join("users.toml")).expect("A's users.toml");
    dir.write("users.toml", &users);
    let b = Gateway::start_in(dir, alice_setup(&redis, &up.url()).config()).await;

    let pair = a.login_ok("alice", ALICE_PW).await;
    let (on_a, on_b) = tokio::join!(a.refresh(&pair.refresh), b.refresh(&pair.refresh));
    let (from_a, from_b) = (Pair::from_response(&on_a), Pair::from_response(&on_b));
    // Within the grace interval the loser gets the winner's pair: one pair was minted.
    assert_eq!(from_a.refresh, from_b.refresh);
    assert_eq!(from_a.access, from_b.access);
    assert_eq!(from_a.refresh_claims()["fam"], pair.refresh_claims()["fam"]);
    assert_eq!(get(&b, &from_a.access).await, StatusCode::OK);
    assert_eq!(get(&a, &from_b.access).await, StatusCode::OK);
}

#[tokio::test]
async fn reuse_detected_on_one_gateway_revokes_the_family_on_the_other() {
    let redis = Redis::start().await;
    let up = Upstream::echo().await;
    let setup = || alice_setup(&redis, &up.url()).tokens("refresh_reuse_grace = \"1s\"");
    let a = setup().start().await;
    let dir = TestDir::new();
    dir.write("main.pem", &a.signing_key_pem);
    dir.write("main.pub.pem", &a.public_key_pem);
    dir.write(
        "users.toml",
        &std::fs::read_to_string(a.dir.join("users.toml")).expect("users"),
    );
    let b = Gateway::start_in(dir, setup().config()).await;

    let first = a.login_ok("alice", ALICE_PW).await;
    let next = Pair::from_response(&a.refresh(&first.refresh).await);
    // Once the grace is over, replaying the spent token on B is reuse.
    let reused = eventually(Duration::from_secs(10), || async {
        let resp = b.refresh(&first.refresh).await;
        let status = resp.status;
        (status == StatusCode::UNAUTHORIZED)
            .then_some(resp)
            .ok_or(format!("B answered {status}"))
    })
    .await
    .expect("reuse detected on B");
    assert_invalid_grant(&reused);
    let revoked = eventually(Duration::from_secs(5), || async {
        let status = get(&a, &next.access).await;
        (status == StatusCode::UNAUTHORIZED)
            .then_some(())
            .ok_or(format!("A answered {status}"))
    })
    .await;
    assert!(
        revoked.is_ok(),
        "the family's newest access token still works on A"
    );
}

#[tokio::test]
async fn a_refresh_retried_after_a_redis_stall_gets_its_pair_and_keeps_the_session() {
    let redis = Redis::start().await;
    let up = Upstream::echo().await;
    let gw = alice_setup(&redis, &up.url()).start().await;
    let first = gw.login_ok("alice", ALICE_PW).await;
    let next = Pair::from_response(&gw.refresh(&first.refresh).await);

    // Writes (and so the refresh's claim script) wait for 2 s, past the 500 ms the
    // gateway gives Redis: the refresh is answered 503, and its script runs on wake.
    assert_eq!(
        redis.command(&["CLIENT", "PAUSE", "2000", "WRITE"]).await,
        "+OK"
    );
    let stalled = gw.refresh(&next.refresh).await;
    assert_eq!(
        stalled.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        stalled.text()
    );
    assert_eq!(stalled.header("retry-after").as_deref(), Some("1"));
    // The client retries with the same token, as Retry-After invites.
    let retried = eventually(DEADLINE, || async {
        let resp = gw.refresh(&next.refresh).await;
        match resp.status {
            StatusCode::SERVICE_UNAVAILABLE => Err("still stalled".to_string()),
            _ => Ok(resp),
        }
    })
    .await
    .expect("Redis answers again");
    let pair = Pair::from_response(&retried);
    assert_eq!(get(&gw, &pair.access).await, StatusCode::OK);
    // The family was not revoked: the sign-in's older access token still works, and the
    // new refresh token rotates.
    assert_eq!(get(&gw, &first.access).await, StatusCode::OK);
    Pair::from_response(&gw.refresh(&pair.refresh).await);
    let reuse = gw.audit_events("refresh_reuse_detected");
    assert!(reuse.is_empty(), "false reuse: {reuse:?}");
}

#[tokio::test]
async fn a_tls_redis_is_reached_with_rediss_and_a_private_ca() {
    let redis = Redis::start_tls().await;
    let up = Upstream::echo().await;
    let ca = redis.tls_cert_file();
    let store = format!(
        "[store]\nbackend = \"redis\"\nredis_url = \"{}\"\n",
        redis.tls_url()
    );
    let cfg = GatewayConfig::standard(&up.url())
        .extra(&store)
        .env("SSL_CERT_FILE", ca.to_str().expect("utf-8"));
    let a = Gateway::start(cfg.clone()).await;
    let b = twin(&a, cfg).await;
    let token = a.token("alice", &["user"]);
    assert_eq!(get(&b, &token).await, StatusCode::OK);
    let out = run_cli(&[
        "revoke",
        "--config",
        &a.config_arg(),
        "--jti",
        &jti_of(&token),
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let seen = eventually(Duration::from_secs(5), || async {
        let status = get(&b, &token).await;
        (status == StatusCode::UNAUTHORIZED)
            .then_some(())
            .ok_or(format!("B answered {status}"))
    })
    .await;
    assert!(
        seen.is_ok(),
        "revocation did not cross a TLS Redis:\n{}",
        b.log()
    );
}

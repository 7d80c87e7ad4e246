//! Several gateways sharing one real redis-server: revocations cross instances, a dead
//! Redis follows `on_error`, a restarted Redis is rejoined without a gateway restart.

mod common;

use std::time::{Duration, Instant};

use common::*;
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
    let gw = Gateway::start(GatewayConfig::standard(&up.url()).extra(&store(&redis, "deny"))).await;
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
    let gw =
        Gateway::start(GatewayConfig::standard(&up.url()).extra(&store(&redis, "allow"))).await;
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

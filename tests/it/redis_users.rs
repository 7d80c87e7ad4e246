//! `[users] backend = "redis"`: two gateways sharing one real redis-server share their
//! users, so a user registered on one logs in on the other, and `portcullis user add`
//! writes there too.

use crate::common::*;
use http::StatusCode;

const ALICE_PW: &str = "correct horse battery";
const CAROL_PW: &str = "a long secret passphrase";

/// A gateway whose users and revocations live in `redis`, with registration open.
async fn gateway(redis: &Redis, upstream_url: &str) -> Gateway {
    let store = format!(
        "[store]\nbackend = \"redis\"\nredis_url = \"{}\"\n",
        redis.url()
    );
    AuthSetup::new(upstream_url)
        .users_section("backend = \"redis\"\nregistration = true\nhash_workers = 2\n")
        .extra(&store)
        .start()
        .await
}

#[tokio::test]
async fn user_registered_on_one_gateway_logs_in_on_the_other() {
    let redis = Redis::start().await;
    let up = Upstream::echo().await;
    let a = gateway(&redis, &up.url()).await;
    let b = gateway(&redis, &up.url()).await;
    let made = a.register("carol", CAROL_PW).await;
    assert_eq!(made.status, StatusCode::CREATED, "body: {}", made.text());
    let again = b.register("Carol", CAROL_PW).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "body: {}", again.text());
    let resp = b.login("carol", CAROL_PW).await;
    assert_eq!(
        resp.status,
        StatusCode::OK,
        "body: {}\nB's log:\n{}",
        resp.text(),
        b.log()
    );
}

#[tokio::test]
async fn user_add_writes_to_redis() {
    let redis = Redis::start().await;
    let up = Upstream::echo().await;
    let a = gateway(&redis, &up.url()).await;
    let config = a.config_arg();
    let out = add_user(&config, "alice", ALICE_PW, &["admin".to_string()]);
    assert_eq!(out.code, Some(0), "user add: {out:?}");
    let twice = add_user(&config, "alice", ALICE_PW, &[]);
    assert_eq!(twice.code, Some(1), "second user add: {twice:?}");
    assert!(twice.stderr.contains("taken"), "{twice:?}");
    let pair = a.login_ok("alice", ALICE_PW).await;
    assert_eq!(
        claims_of(&pair.access)["roles"],
        serde_json::json!(["admin"])
    );
}

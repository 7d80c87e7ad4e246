//! Failed-login throttling shared by two gateways on one real redis-server: the limit holds
//! for the pair, not per instance.

use crate::common::*;
use http::StatusCode;

const ALICE_PW: &str = "correct horse battery";

/// A gateway with alice on the Redis store, at most 3 failures per username.
async fn gateway(redis: &Redis, upstream_url: &str) -> Gateway {
    let store = format!(
        "[store]\nbackend = \"redis\"\nredis_url = \"{}\"\n",
        redis.url()
    );
    AuthSetup::new(upstream_url)
        .user("alice", ALICE_PW, &["user"])
        .login("max_failures_per_user = 3\nmax_failures_per_ip = 100\nwindow = \"15m\"")
        .extra(&store)
        .start()
        .await
}

#[tokio::test]
async fn failed_logins_on_one_gateway_throttle_the_user_on_the_other() {
    let redis = Redis::start().await;
    let up = Upstream::echo().await;
    let a = gateway(&redis, &up.url()).await;
    let b = gateway(&redis, &up.url()).await;
    for _ in 0..3 {
        assert_bad_credentials(&a.login("alice", "guess guess guess").await);
    }
    // B never saw a failure, yet refuses even the right password.
    let resp = b.login("alice", ALICE_PW).await;
    assert_eq!(
        resp.status,
        StatusCode::TOO_MANY_REQUESTS,
        "body: {}\nB's log:\n{}",
        resp.text(),
        b.log()
    );
    let after = resp.header("retry-after").expect("429 carries Retry-After");
    let secs: u64 = after.parse().expect("Retry-After in seconds");
    assert!((1..=900).contains(&secs), "Retry-After {secs}");
}

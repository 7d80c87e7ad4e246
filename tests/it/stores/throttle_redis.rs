//! Two `RedisThrottle`s (the gateway instances) on one real redis-server per test.

use std::time::{Duration, Instant};

use std::net::IpAddr;

use portcullis::throttle::redis::RedisThrottle;
use portcullis::throttle::Limits;

use crate::common::Redis;
use portcullis::revoke::redis::DEFAULT_PREFIX;

fn ip(text: &str) -> IpAddr {
    text.parse().expect("a test address")
}

fn limits(per_user: u32, per_ip: u32, window_secs: u64) -> Limits {
    Limits {
        per_user,
        per_ip,
        window_secs,
    }
}

async fn throttle(server: &Redis, limits: Limits) -> RedisThrottle {
    RedisThrottle::connect(&server.target(), DEFAULT_PREFIX, limits)
        .await
        .expect("the test redis-server answers")
}

async fn fail(t: &RedisThrottle, user: &str, addr: &str, times: u32) {
    for _ in 0..times {
        t.record_failure(user, ip(addr)).await;
    }
}

#[tokio::test]
async fn failures_on_one_instance_throttle_the_user_on_another() {
    let server = Redis::start_volatile().await;
    let a = throttle(&server, limits(3, 100, 60)).await;
    let b = throttle(&server, limits(3, 100, 60)).await;
    fail(&a, "alice", "10.0.0.1", 2).await;
    assert_eq!(b.check("alice", ip("10.0.0.2")).await, Ok(()));
    fail(&a, "alice", "10.0.0.1", 1).await;
    let refused = b.check("alice", ip("10.0.0.2")).await;
    assert!(
        matches!(refused, Err(secs) if (1..=60).contains(&secs)),
        "{refused:?}"
    );
    assert_eq!(b.check("bob", ip("10.0.0.2")).await, Ok(()));
}

#[tokio::test]
async fn a_reset_on_one_instance_clears_the_user_everywhere_but_not_the_address() {
    let server = Redis::start_volatile().await;
    let a = throttle(&server, limits(2, 2, 60)).await;
    let b = throttle(&server, limits(2, 2, 60)).await;
    fail(&a, "alice", "10.0.0.1", 2).await;
    assert!(a.check("alice", ip("10.0.0.9")).await.is_err());
    b.reset_user("alice").await;
    assert_eq!(a.check("alice", ip("10.0.0.9")).await, Ok(()));
    assert!(a.check("alice", ip("10.0.0.1")).await.is_err());
}

#[tokio::test]
async fn ipv6_clients_are_counted_per_64_prefix_across_instances() {
    let server = Redis::start_volatile().await;
    let a = throttle(&server, limits(100, 2, 60)).await;
    let b = throttle(&server, limits(100, 2, 60)).await;
    a.record_failure("a", ip("2001:db8:1:2::1")).await;
    b.record_failure("b", ip("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        .await;
    assert!(a.check("c", ip("2001:db8:1:2::99")).await.is_err());
    assert_eq!(a.check("c", ip("2001:db8:1:3::1")).await, Ok(()));
    a.record_failure("d", ip("::ffff:192.0.2.1")).await;
    b.record_failure("e", ip("192.0.2.1")).await;
    assert!(b.check("f", ip("192.0.2.1")).await.is_err());
}

#[tokio::test]
async fn the_window_ends_and_frees_the_user() {
    let server = Redis::start_volatile().await;
    let a = throttle(&server, limits(1, 100, 1)).await;
    let b = throttle(&server, limits(1, 100, 1)).await;
    fail(&a, "alice", "10.0.0.1", 1).await;
    assert_eq!(b.check("alice", ip("10.0.0.1")).await, Err(1));
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.check("alice", ip("10.0.0.1")).await.is_err() {
        assert!(Instant::now() < deadline, "the 1 s window never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn zero_limits_keep_no_counter() {
    let server = Redis::start_volatile().await;
    let a = throttle(&server, limits(0, 0, 60)).await;
    fail(&a, "alice", "10.0.0.1", 5).await;
    assert_eq!(a.check("alice", ip("10.0.0.1")).await, Ok(()));
    let client = ::redis::Client::open(server.url()).expect("a loopback URL");
    let mut conn = client.get_multiplexed_async_connection().await.expect("up");
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    assert!(keys.is_empty(), "{keys:?}");
}

#[tokio::test]
async fn a_dead_redis_lets_logins_through() {
    let mut server = Redis::start_volatile().await;
    let a = throttle(&server, limits(1, 1, 60)).await;
    fail(&a, "alice", "10.0.0.1", 1).await;
    assert!(a.check("alice", ip("10.0.0.1")).await.is_err());
    server.kill();
    assert_eq!(a.check("alice", ip("10.0.0.1")).await, Ok(()));
    a.record_failure("alice", ip("10.0.0.1")).await;
    a.reset_user("alice").await;
    assert_eq!(a.check("alice", ip("10.0.0.1")).await, Ok(()));
}

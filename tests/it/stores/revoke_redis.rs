//! Two or three `RedisStore`s (the gateway instances) sharing one real redis-server each test.
//! Times are wall-clock based: the stores purge Redis with the real clock on every reload.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Client;

use portcullis::revoke::redis::{RedisStore, Timers, DEFAULT_PREFIX};
use portcullis::store::{StoreError, Target};

use crate::common::Redis;
use portcullis::revoke::{Redemption, RefreshLimit, Rotation, Successor};

/// The grace interval of every redemption here, seconds.
pub(super) const GRACE: u64 = 10;

pub(super) fn now() -> u64 {
    portcullis::runtime::unix_now()
}

/// Short reload and ping periods, so that the safety nets are seen to work within a test.
const QUICK: Timers = Timers {
    resync_every: Duration::from_millis(200),
    ping_every: Duration::from_millis(50),
    ping_timeout: Duration::from_millis(200),
    // Out of sync means Redis per request at once: these tests watch that fallback.
    max_staleness: Duration::ZERO,
};

pub(super) async fn store(server: &Redis) -> RedisStore {
    RedisStore::connect_with(&server.target(), DEFAULT_PREFIX, QUICK)
        .await
        .expect("the test redis-server answers")
}

/// Polls `check` until it holds or `within` has passed; the answer is whether it held.
pub(super) async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

const LIMIT: RefreshLimit = RefreshLimit {
    max: 1000,
    window: 60,
};

/// Redeems `jti` of `fam` with the caller's clock at `now` (whole seconds).
pub(super) async fn redeem(
    store: &RedisStore,
    jti: &str,
    fam: &str,
    now: u64,
) -> Result<Rotation, StoreError> {
    redeem_at_ms(store, jti, fam, now * 1000, GRACE * 1000).await
}

/// Redeems `jti` of `fam` with the caller's clock at `now_ms` and a grace of `grace_ms`.
pub(super) async fn redeem_at_ms(
    store: &RedisStore,
    jti: &str,
    fam: &str,
    now_ms: u64,
    grace_ms: u64,
) -> Result<Rotation, StoreError> {
    let now = now_ms / 1000;
    let r = Redemption {
        jti,
        issued: now,
        fam,
        until: now + 3600,
        now,
        now_ms,
        grace_ms,
        limit: LIMIT,
    };
    store.redeem(&r).await
}

pub(super) fn minted(rotation: Result<Rotation, StoreError>) -> Successor {
    match rotation {
        Ok(Rotation::Mint(next)) => next,
        other => panic!("expected a mint, got {other:?}"),
    }
}

pub(super) async fn command(server: &Redis, args: &[&str]) -> redis::Value {
    let client = Client::open(server.url()).expect("a loopback URL");
    let mut conn = client.get_multiplexed_async_connection().await.expect("up");
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query_async(&mut conn).await.expect("the command runs")
}

pub(super) fn revoked(store: &RedisStore, jti: &str, sub: &str, fam: Option<&str>) -> bool {
    let now = now();
    store.is_revoked(jti, sub, now - 1, fam, now) == Ok(true)
}

async fn zcard(server: &Redis, key: &str) -> usize {
    let client = Client::open(server.url()).expect("a loopback URL");
    let mut conn = client.get_multiplexed_async_connection().await.expect("up");
    redis::cmd("ZCARD")
        .arg(key)
        .query_async(&mut conn)
        .await
        .expect("ZCARD")
}

#[tokio::test]
async fn a_revocation_on_one_instance_is_enforced_on_another_within_100_ms() {
    let server = Redis::start_volatile().await;
    let (a, b) = (store(&server).await, store(&server).await);
    let hour = now() + 3600;
    assert!(!revoked(&b, "j1", "alice", Some("f1")));
    a.revoke_jti("j1", hour).await.unwrap();
    assert!(
        revoked(&a, "j1", "bob", None),
        "the writer's mirror has it on return"
    );
    let seen = eventually(Duration::from_millis(100), || {
        revoked(&b, "j1", "bob", None)
    })
    .await;
    assert!(seen, "jti not mirrored on B within 100 ms");
    a.revoke_family("f1", hour).await.unwrap();
    a.revoke_subject("alice", now() + 1).await.unwrap();
    let seen = eventually(Duration::from_millis(100), || {
        revoked(&b, "x", "bob", Some("f1")) && revoked(&b, "y", "alice", None)
    })
    .await;
    assert!(seen, "family and subject not mirrored on B within 100 ms");
    assert!(!revoked(&b, "j2", "bob", Some("f2")));
    assert_eq!(b.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_10000_revocations_is_mirrored_on_the_other_instance() {
    let server = Redis::start_volatile().await;
    let a = Arc::new(store(&server).await);
    let b = store(&server).await;
    let hour = now() + 3600;
    let mut writers = tokio::task::JoinSet::new();
    for chunk in 0..50 {
        let a = a.clone();
        writers.spawn(async move {
            for i in 0..200 {
                // A write may outlast its 500 ms deadline on a loaded test machine; the
                // caller's retry (logout answers 503 and the client retries) is idempotent,
                // and what is tested here is the mirroring, not the latency.
                let mut tries = 0;
                while let Err(err) = a.revoke_jti(&format!("burst-{chunk}-{i}"), hour).await {
                    tries += 1;
                    if tries == 5 {
                        return Err(err);
                    }
                }
            }
            Ok::<_, StoreError>(())
        });
    }
    while let Some(written) = writers.join_next().await {
        written.unwrap().unwrap();
    }
    let mirrored = eventually(Duration::from_secs(5), || b.len() == 10_000).await;
    assert!(mirrored, "B holds {} of 10000", b.len());
    assert!(revoked(&b, "burst-0-0", "x", None) && revoked(&b, "burst-49-199", "x", None));
    assert_eq!(zcard(&server, "portcullis:revoked:jti").await, 10_000);
}

#[tokio::test]
async fn expired_entries_leave_the_mirror_and_redis() {
    let server = Redis::start_volatile().await;
    let (a, b) = (store(&server).await, store(&server).await);
    let now = now();
    a.revoke_jti("short", now + 100).await.unwrap();
    a.revoke_jti("long", now + 3600).await.unwrap();
    a.revoke_family("fam", now + 100).await.unwrap();
    a.revoke_jti("gone", now - 1).await.unwrap();
    assert!(eventually(Duration::from_secs(1), || b.len() == 4).await);
    assert_eq!(b.purge(now + 99), 1, "only the already expired one");
    assert_eq!(b.purge(now + 100), 2);
    assert_eq!(b.len(), 1);
    assert!(b.is_revoked("long", "x", now, None, now + 100) == Ok(true));
    // A new instance's load purges Redis with the real clock and skips what expired.
    let c = store(&server).await;
    assert_eq!(c.len(), 3);
    assert_eq!(zcard(&server, "portcullis:revoked:jti").await, 2);
}

#[tokio::test]
async fn the_periodic_reload_catches_what_pub_sub_missed_and_pings_keep_it_in_sync() {
    let server = Redis::start_volatile().await;
    let b = store(&server).await;
    // Written behind the stores' back: in Redis, never published.
    let client = Client::open(server.url()).expect("a loopback URL");
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("ZADD")
        .arg("portcullis:revoked:jti")
        .arg(now() + 60)
        .arg("silent")
        .query_async(&mut conn)
        .await
        .unwrap();
    let started = Instant::now();
    let reloaded = eventually(Duration::from_secs(2), || revoked(&b, "silent", "x", None));
    assert!(reloaded.await, "the periodic reload never loaded it");
    // Several ping and reload periods later, the mirror never left sync.
    let left_sync = eventually(Duration::from_millis(500), || !b.in_sync()).await;
    assert!(!left_sync, "out of sync after {:?}", started.elapsed());
}

#[tokio::test]
async fn a_subscription_that_stops_answering_is_noticed_and_recovered() {
    let server = Redis::start_volatile().await;
    let b = store(&server).await;
    let client = Client::open(server.url()).expect("a loopback URL");
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    // The connection stays open but nothing is answered: a silent partition.
    let _: () = redis::cmd("CLIENT")
        .arg(&["PAUSE", "1000", "ALL"][..])
        .query_async(&mut conn)
        .await
        .unwrap();
    let noticed = eventually(Duration::from_secs(1), || !b.in_sync()).await;
    assert!(noticed, "an unanswered ping went unnoticed");
    let now = now();
    let checked = b.is_revoked_checked("j", "x", now, None, now).await;
    assert_eq!(checked, Err(StoreError::Unavailable));
    let back = eventually(Duration::from_secs(5), || b.in_sync()).await;
    assert!(back, "never back in sync after the pause");
}

/// A silent partition is noticed at the first command that fails, not at the next ping
/// (an hour away here): the failed write has the subscriber ping at once.
#[tokio::test]
async fn a_failed_write_has_the_mirror_check_its_subscription_at_once() {
    let server = Redis::start_volatile().await;
    let hour = Duration::from_secs(3600);
    let timers = Timers {
        resync_every: hour,
        ping_every: hour,
        ..QUICK
    };
    let b = RedisStore::connect_with(&server.target(), DEFAULT_PREFIX, timers)
        .await
        .expect("the test redis-server answers");
    // Every connection stays open and nothing is answered for 3 s.
    command(&server, &["CLIENT", "PAUSE", "3000", "ALL"]).await;
    let written = b.revoke_jti("j1", now() + 60).await;
    assert_eq!(written, Err(StoreError::Unavailable));
    let noticed = eventually(Duration::from_secs(2), || !b.in_sync()).await;
    assert!(noticed, "the failed write left the mirror in sync");
    let back = eventually(Duration::from_secs(10), || b.in_sync()).await;
    assert!(back, "never back in sync once Redis answers again");
}

#[tokio::test]
async fn the_remote_check_answers_like_the_mirror() {
    let server = Redis::start_volatile().await;
    let a = store(&server).await;
    let now = now();
    a.revoke_jti("j1", now + 60).await.unwrap();
    a.revoke_family("f1", now + 60).await.unwrap();
    a.revoke_subject("alice", now).await.unwrap();
    let remote = |jti, sub, iat, fam| a.is_revoked_remote(jti, sub, iat, fam, now);
    assert_eq!(remote("j1", "bob", now, None).await, Ok(true));
    assert_eq!(remote("j2", "bob", now, Some("f1")).await, Ok(true));
    assert_eq!(remote("j2", "alice", now - 1, None).await, Ok(true));
    assert_eq!(remote("j2", "alice", now, Some("f2")).await, Ok(false));
    let later = a
        .is_revoked_remote("j1", "bob", now, Some("f1"), now + 60)
        .await;
    assert_eq!(later, Ok(false), "entries stop counting at their expiry");
}

#[tokio::test]
async fn stores_with_different_prefixes_do_not_share_revocations() {
    let server = Redis::start_volatile().await;
    let a = store(&server).await;
    let other = RedisStore::connect(&server.target(), "other:")
        .await
        .unwrap();
    a.revoke_jti("j1", now() + 60).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!revoked(&other, "j1", "x", None));
    assert!(other.is_empty());
}

#[tokio::test]
async fn a_bad_url_is_refused_without_echoing_it() {
    let err = Target::parse("bogus://:secret@127.0.0.1:1/", None).unwrap_err();
    assert!(matches!(err, StoreError::InvalidUrl(_)), "{err}");
    assert!(!err.to_string().contains("secret"), "{err}");
    let err = Target::parse("http://127.0.0.1/", None);
    assert!(matches!(err, Err(StoreError::InvalidUrl(_))));
    // A TLS URL to a dead port: refused on connecting, still without the password.
    let tls = Target::parse("rediss://:secret@127.0.0.1:1/", None).unwrap();
    let err = RedisStore::connect(&tls, DEFAULT_PREFIX).await.unwrap_err();
    assert!(!err.to_string().contains("secret"), "{err}");
}

#[tokio::test]
async fn connecting_to_a_dead_port_is_unavailable() {
    let mut server = Redis::start_volatile().await;
    server.kill();
    let err = RedisStore::connect(&server.target(), DEFAULT_PREFIX).await;
    assert_eq!(err.unwrap_err(), StoreError::Unavailable);
}

#[tokio::test]
async fn redis_down_makes_writes_and_unsynced_checks_unavailable_quickly() {
    let mut server = Redis::start_volatile().await;
    let a = store(&server).await;
    let hour = now() + 3600;
    a.revoke_jti("before", hour).await.unwrap();
    server.kill();
    let started = Instant::now();
    assert_eq!(a.revoke_jti("j1", hour).await, Err(StoreError::Unavailable));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let noticed = eventually(Duration::from_secs(3), || !a.in_sync());
    assert!(noticed.await, "the subscriber never noticed");
    let now = now();
    assert_eq!(
        a.is_revoked("j2", "x", now, None, now),
        Err(StoreError::Unavailable)
    );
    let checked = a.is_revoked_checked("j2", "x", now, None, now).await;
    assert_eq!(checked, Err(StoreError::Unavailable));
    let known = a.is_revoked_checked("before", "x", now, None, now).await;
    assert_eq!(known, Ok(true), "the mirror's revocations still count");
    assert_eq!(
        redeem(&a, "r1", "f1", now).await,
        Err(StoreError::Unavailable)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_redis_restart_revocations_persist_and_the_same_instances_recover() {
    let mut server = Redis::start().await;
    let (a, b) = (store(&server).await, store(&server).await);
    let hour = now() + 3600;
    a.revoke_jti("before", hour).await.unwrap();
    a.revoke_subject("alice", now() + 1).await.unwrap();
    server.kill();
    let noticed = eventually(Duration::from_secs(3), || !a.in_sync() && !b.in_sync());
    assert!(noticed.await, "the subscribers never noticed the kill");
    server.restart().await;
    let back = eventually(Duration::from_secs(10), || a.in_sync() && b.in_sync());
    assert!(back.await, "the instances did not resync by themselves");
    assert!(revoked(&b, "before", "x", None) && revoked(&b, "j", "alice", None));
    // A fresh instance loads them from the restarted server: they survived the kill.
    let c = store(&server).await;
    assert!(revoked(&c, "before", "x", None) && revoked(&c, "j", "alice", None));
    a.revoke_jti("after", hour).await.unwrap();
    let seen = eventually(Duration::from_millis(100), || {
        revoked(&b, "after", "x", None) && revoked(&c, "after", "x", None)
    });
    assert!(
        seen.await,
        "a new revocation is not mirrored after the restart"
    );
}

//! Refresh rotation through the Redis store: instances racing on one family get one
//! successor, the grace interval holds to the millisecond, a claim Redis runs late is the
//! retry's, and a family keeps one record.

use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::revoke::Rotation;
use portcullis::store::StoreError;

use super::revoke_redis::{
    command, eventually, minted, now, redeem, redeem_at_ms, revoked, store, GRACE,
};
use crate::common::Redis;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_redemptions_on_two_instances_get_one_successor_and_reuse_after_grace_revokes() {
    let server = Redis::start_volatile().await;
    let (a, b) = (
        Arc::new(store(&server).await),
        Arc::new(store(&server).await),
    );
    let now = now();
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let racers: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|store| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                minted(redeem(&store, "r1", "fam1", now).await)
            })
        })
        .collect();
    let mut successors = Vec::new();
    for racer in racers {
        successors.push(racer.await.unwrap());
    }
    assert_eq!(successors[0], successors[1], "one successor for both");
    let repeat = redeem(&b, "r1", "fam1", now + GRACE - 1).await;
    assert_eq!(minted(repeat), successors[0]);
    // The grace counts from when Redis ran the first claim, to the millisecond: a second
    // later than the callers' whole seconds say.
    let reuse = redeem(&a, "r1", "fam1", now + GRACE + 1).await;
    assert_eq!(reuse, Ok(Rotation::Reuse));
    assert!(revoked(&a, "new-access", "x", Some("fam1")));
    let seen = eventually(Duration::from_millis(100), || {
        revoked(&b, "new-access", "x", Some("fam1"))
    });
    assert!(seen.await, "family revocation not mirrored on B");
    let next = &successors[0].refresh_jti;
    assert_eq!(
        redeem(&b, next, "fam1", now + GRACE).await,
        Ok(Rotation::Reuse)
    );
}

#[tokio::test]
async fn a_claim_redis_runs_after_its_caller_gave_up_is_the_retrys_successor() {
    let server = Redis::start_volatile().await;
    let (a, b) = (store(&server).await, store(&server).await);
    let now = now();
    let first = minted(redeem(&a, "r0", "fam1", now).await);
    // Scripts wait while the pause lasts; the caller gives up after WRITE_TIMEOUT.
    command(&server, &["CLIENT", "PAUSE", "1500", "WRITE"]).await;
    let stalled = redeem(&a, &first.refresh_jti, "fam1", now).await;
    assert_eq!(stalled, Err(StoreError::Unavailable));
    let deadline = Instant::now() + Duration::from_secs(10);
    let retried = loop {
        match redeem(&b, &first.refresh_jti, "fam1", now).await {
            Err(StoreError::Unavailable) if Instant::now() < deadline => continue,
            other => break minted(other),
        }
    };
    // The session goes on: the successor rotates, nothing was revoked.
    minted(redeem(&a, &retried.refresh_jti, "fam1", now).await);
    assert!(!revoked(&a, "x", "alice", Some("fam1")));
}

#[tokio::test]
async fn a_family_keeps_one_record_in_redis_however_often_it_rotates() {
    let server = Redis::start_volatile().await;
    let a = store(&server).await;
    let now = now();
    let mut jti = "login".to_string();
    for _ in 0..200 {
        jti = minted(redeem(&a, &jti, "fam1", now).await).refresh_jti;
    }
    let keys = command(&server, &["KEYS", "portcullis:*"]).await;
    let mut keys: Vec<String> = redis::from_redis_value(keys).expect("a key list");
    keys.sort();
    // One record for the family, beside the store's data-loss marker.
    assert_eq!(keys, ["portcullis:epoch", "portcullis:family:fam1"]);
    let ttl = command(&server, &["TTL", "portcullis:family:fam1"]).await;
    let ttl: i64 = redis::from_redis_value(ttl).expect("a TTL");
    assert!(
        ttl > 0 && ttl <= 3600,
        "the record expires with the family: {ttl}"
    );
}

/// Two tabs refreshing 20 ms apart across a second boundary, with a 1 s grace: the second
/// gets the same pair. (In whole seconds the grace had ended at the boundary: reuse, and
/// the session revoked.) The callers' clocks run ahead of Redis's here, so theirs decide.
#[tokio::test]
async fn a_one_second_grace_holds_for_the_other_instance_in_the_next_second() {
    let server = Redis::start_volatile().await;
    let (a, b) = (store(&server).await, store(&server).await);
    let spent = (now() + 100) * 1000 + 990;
    let first = minted(redeem_at_ms(&a, "r1", "fam1", spent, 1000).await);
    let racer = redeem_at_ms(&b, "r1", "fam1", spent + 20, 1000).await;
    assert_eq!(minted(racer), first, "20 ms later, in the next second");
    let last = redeem_at_ms(&b, "r1", "fam1", spent + 999, 1000).await;
    assert_eq!(minted(last), first, "the grace's last millisecond");
    let late = redeem_at_ms(&a, "r1", "fam1", spent + 1000, 1000).await;
    assert_eq!(late, Ok(Rotation::Reuse), "the grace is over");
}

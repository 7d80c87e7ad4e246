//! The revocation set, checked on every proxied request after the token verifies.
//!
//! `is_revoked` is a local read with no I/O, so it is a plain fn; the writes are async so the
//! Redis store can write them through and publish them. Every time is unix seconds from the
//! caller. The Redis store answers `is_revoked` from its local mirror while that is in sync;
//! `is_revoked_checked` is the same check that, out of sync, asks Redis instead.

pub mod memory;
pub mod redis;
pub mod rotation;
pub mod sessions;

pub use rotation::{Redemption, RefreshLimit, Rotation, Successor};

use std::fmt;

use crate::store::StoreError;

/// What a request gets when the revocation store cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// 503: nobody gets in unchecked (the default).
    #[default]
    Deny,
    /// Let valid tokens through unchecked, logging loudly.
    Allow,
}

/// One enum over the stores.
// One per process, so the memory store's inline shards (a few KB) cost nothing, and keeping
// them inline spares the memory store's hot path a pointer hop.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum RevocationStore {
    /// This process only.
    Memory(memory::MemoryStore),
    /// Shared by every instance through Redis, read from a local mirror.
    Redis(redis::RedisStore),
}

/// A token pair, as login and refresh hand it out.
#[derive(Clone, PartialEq, Eq)]
pub struct Pair {
    /// The new access token.
    pub access_token: String,
    /// The new refresh token.
    pub refresh_token: String,
}

impl fmt::Debug for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Both are bearer credentials: never in a log.
        f.debug_struct("Pair")
            .field("access_token", &format_args!("<redacted>"))
            .field("refresh_token", &format_args!("<redacted>"))
            .finish()
    }
}

impl RevocationStore {
    /// An empty in-memory store.
    pub fn memory() -> Self {
        RevocationStore::Memory(memory::MemoryStore::new())
    }

    /// A Redis store: connects, subscribes and loads the mirror (see
    /// [`redis::RedisStore::connect`]); the mirror keeps to `timers` (ping period,
    /// `max_mirror_staleness`), and revocations wait for `min_replica_acks` replicas.
    pub async fn redis(
        target: &crate::store::Target,
        prefix: &str,
        timers: redis::Timers,
        replica_acks: Option<(u32, std::time::Duration)>,
    ) -> Result<Self, StoreError> {
        let store = redis::RedisStore::connect_with(target, prefix, timers).await?;
        Ok(RevocationStore::Redis(
            store.with_replica_acks(replica_acks),
        ))
    }

    /// False while a Redis store's mirror is out of sync (metrics, login under
    /// `on_error`); always true for the memory store.
    pub fn in_sync(&self) -> bool {
        match self {
            RevocationStore::Memory(_) => true,
            RevocationStore::Redis(store) => store.in_sync(),
        }
    }

    /// False once a Redis store's mirror has been out of sync for `max_mirror_staleness`
    /// (readiness); always true for the memory store.
    pub fn fresh(&self) -> bool {
        match self {
            RevocationStore::Memory(_) => true,
            RevocationStore::Redis(store) => store.fresh(),
        }
    }

    /// How long the mirror has been out of sync, and how many times Sentinel named a new
    /// master (metrics); zeros for the memory store.
    pub fn staleness_and_master_changes(&self) -> (std::time::Duration, u64) {
        match self {
            RevocationStore::Memory(_) => (std::time::Duration::ZERO, 0),
            RevocationStore::Redis(store) => (store.stale_for(), store.master_changes()),
        }
    }

    /// Local read: jti revoked, or iat < the subject's revoked-before time, or fam (if Some)
    /// revoked. No I/O, no await. `Err(Unavailable)` once a Redis mirror has been out of
    /// sync for `max_mirror_staleness`.
    pub fn is_revoked(
        &self,
        jti: &str,
        sub: &str,
        iat: u64,
        fam: Option<&str>,
        now: u64,
    ) -> Result<bool, StoreError> {
        match self {
            RevocationStore::Memory(store) => Ok(store.is_revoked(jti, sub, iat, fam, now)),
            RevocationStore::Redis(store) => store.is_revoked(jti, sub, iat, fam, now),
        }
    }

    /// `is_revoked`, except that a Redis store out of sync past its staleness asks Redis (one round trip,
    /// 200 ms at most; `Err(Unavailable)` when Redis does not answer). Awaits nothing while
    /// in sync.
    pub async fn is_revoked_checked(
        &self,
        jti: &str,
        sub: &str,
        iat: u64,
        fam: Option<&str>,
        now: u64,
    ) -> Result<bool, StoreError> {
        match self {
            RevocationStore::Memory(store) => Ok(store.is_revoked(jti, sub, iat, fam, now)),
            RevocationStore::Redis(store) => {
                store.is_revoked_checked(jti, sub, iat, fam, now).await
            }
        }
    }

    /// Revokes one token until `exp`, then purges it. Pass the token's exp plus the
    /// verification leeway: verify still accepts the token that long, and the entry stops
    /// counting at `exp`.
    pub async fn revoke_jti(&self, jti: &str, exp: u64) -> Result<(), StoreError> {
        match self {
            RevocationStore::Memory(store) => {
                store.revoke_jti(jti, exp);
                Ok(())
            }
            RevocationStore::Redis(store) => store.revoke_jti(jti, exp).await,
        }
    }

    /// Revokes every token of `sub` with iat < `before`. "Everything now" is
    /// now + 1 + leeway (see `admin::subject_cut_off`): verification accepts an iat up to
    /// now + leeway. Kept for good: the store cannot know when such tokens run out.
    pub async fn revoke_subject(&self, sub: &str, before: u64) -> Result<(), StoreError> {
        match self {
            RevocationStore::Memory(store) => {
                store.revoke_subject(sub, before);
                Ok(())
            }
            RevocationStore::Redis(store) => store.revoke_subject(sub, before).await,
        }
    }

    /// Revokes every token carrying `fam` until `until`: the latest expiry (plus leeway) any
    /// token of the family can have.
    pub async fn revoke_family(&self, fam: &str, until: u64) -> Result<(), StoreError> {
        match self {
            RevocationStore::Memory(store) => {
                store.revoke_family(fam, until);
                Ok(())
            }
            RevocationStore::Redis(store) => store.revoke_family(fam, until).await,
        }
    }

    /// Atomically redeems refresh token `r.jti` of family `r.fam` (see `rotation.rs`):
    /// - the family's current token (or, before its first rotation, any of its tokens):
    ///   `Mint` with fresh successor ids, recorded as the family's next current token;
    ///   `Throttled` instead when the family has rotated `r.limit.max` times this window;
    /// - the previous token within `r.grace_ms` of that rotation: `Mint` with the same
    ///   successor, so the caller signs the same pair again (a second tab, a retry);
    /// - any other token of the family, or a revoked family: revokes the whole family until
    ///   `r.until` and returns `Reuse`.
    ///
    /// The caller signs the pair after this returns; a failed signing leaves a successor
    /// nobody holds, which the same token redeems again within the grace interval.
    ///
    /// With Redis the rules hold across instances (one claim script; see `redis/redeem.rs`),
    /// and a claim that Redis runs after the caller gave up on it (a stall longer than the
    /// write timeout: the client got a 503) still leaves the successor for its retry.
    pub async fn redeem(&self, r: &Redemption<'_>) -> Result<Rotation, StoreError> {
        match self {
            RevocationStore::Memory(store) => Ok(store.redeem(r)),
            RevocationStore::Redis(store) => store.redeem(r).await,
        }
    }

    /// Drops entries whose expiry passed (the gateway calls this every ~30 s); returns how
    /// many were dropped.
    pub fn purge(&self, now: u64) -> usize {
        match self {
            RevocationStore::Memory(store) => store.purge(now),
            RevocationStore::Redis(store) => store.purge(now),
        }
    }

    /// Number of live entries (jtis + subjects + families + rotation records; for Redis,
    /// the mirror's jtis + subjects + families), for tests and metrics.
    pub fn len(&self) -> usize {
        match self {
            RevocationStore::Memory(store) => store.len(),
            RevocationStore::Redis(store) => store.len(),
        }
    }

    /// True when the store holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn pair(n: usize) -> Pair {
        Pair {
            access_token: format!("access-{n}"),
            refresh_token: format!("refresh-{n}"),
        }
    }

    const LIMIT: RefreshLimit = RefreshLimit {
        max: 1000,
        window: 60,
    };

    async fn redeem(store: &RevocationStore, jti: &str, now: u64) -> Rotation {
        let r = Redemption {
            jti,
            issued: now,
            fam: "fam1",
            until: NOW + 1000,
            now,
            now_ms: now * 1000,
            grace_ms: 10_000,
            limit: LIMIT,
        };
        store.redeem(&r).await.unwrap()
    }

    fn minted(rotation: Rotation) -> Successor {
        match rotation {
            Rotation::Mint(next) => next,
            other => panic!("expected a mint, got {other:?}"),
        }
    }

    fn revoked(store: &RevocationStore, jti: &str, fam: Option<&str>) -> bool {
        store.is_revoked(jti, "alice", NOW, fam, NOW).unwrap()
    }

    #[tokio::test]
    async fn revoked_jti_is_revoked_and_other_jtis_are_not() {
        let store = RevocationStore::memory();
        assert!(!revoked(&store, "j1", None));
        store.revoke_jti("j1", NOW + 60).await.unwrap();
        assert!(revoked(&store, "j1", None));
        assert!(!revoked(&store, "j2", None));
    }

    #[tokio::test]
    async fn expired_entries_are_purged_and_len_shrinks() {
        let store = RevocationStore::memory();
        store.revoke_jti("short", NOW + 10).await.unwrap();
        store.revoke_jti("long", NOW + 100).await.unwrap();
        store.revoke_family("fam", NOW + 10).await.unwrap();
        assert_eq!(store.len(), 3);
        assert_eq!(store.purge(NOW + 9), 0);
        assert_eq!(store.purge(NOW + 10), 2);
        assert_eq!(store.len(), 1);
        assert!(store.is_revoked("long", "a", NOW, None, NOW + 10).unwrap());
        assert_eq!(store.purge(NOW + 100), 1);
        assert!(store.is_empty());
    }

    #[tokio::test]
    async fn subject_revocation_covers_tokens_issued_before_the_cut_off_only() {
        let store = RevocationStore::memory();
        store.revoke_subject("alice", NOW).await.unwrap();
        let check = |sub: &str, iat: u64| store.is_revoked("j", sub, iat, None, NOW + 5);
        assert_eq!(check("alice", NOW - 1), Ok(true));
        assert_eq!(check("alice", NOW), Ok(false));
        assert_eq!(check("alice", NOW + 1), Ok(false));
        assert_eq!(check("bob", NOW - 1), Ok(false));
        assert_eq!(store.purge(u64::MAX), 0, "subject cut-offs have no expiry");
    }

    #[tokio::test]
    async fn family_revocation_covers_every_jti_carrying_that_family() {
        let store = RevocationStore::memory();
        store.revoke_family("fam1", NOW + 60).await.unwrap();
        assert!(revoked(&store, "any", Some("fam1")));
        assert!(revoked(&store, "other", Some("fam1")));
        assert!(!revoked(&store, "any", Some("fam2")));
        assert!(!revoked(&store, "any", None));
    }

    #[tokio::test]
    async fn a_repeat_within_grace_gets_the_same_successor() {
        let store = RevocationStore::memory();
        let next = minted(redeem(&store, "r1", NOW).await);
        assert_eq!(redeem(&store, "r1", NOW + 9).await, Rotation::Mint(next));
        assert!(!revoked(&store, "r1", Some("fam1")));
    }

    #[tokio::test]
    async fn redemption_after_grace_is_reuse_and_revokes_the_family() {
        let store = RevocationStore::memory();
        redeem(&store, "r1", NOW).await;
        assert_eq!(redeem(&store, "r1", NOW + 10).await, Rotation::Reuse);
        assert!(revoked(&store, "new-access", Some("fam1")));
        // The family stays revoked until the `until` given to redeem.
        let later = |now| store.is_revoked("x", "alice", NOW, Some("fam1"), now);
        assert_eq!(later(NOW + 999), Ok(true));
        assert_eq!(later(NOW + 1000), Ok(false));
    }

    #[tokio::test]
    async fn redeeming_any_token_of_a_revoked_family_is_reuse() {
        let store = RevocationStore::memory();
        store.revoke_family("fam1", NOW + 60).await.unwrap();
        assert_eq!(redeem(&store, "r1", NOW).await, Rotation::Reuse);
    }

    #[tokio::test]
    async fn many_rotations_of_one_family_keep_one_record() {
        let store = RevocationStore::memory();
        let mut jti = "login".to_string();
        for _ in 0..500 {
            jti = minted(redeem(&store, &jti, NOW).await).refresh_jti;
        }
        assert_eq!(
            store.len(),
            1,
            "one rotation record, no spent-token records"
        );
        assert_eq!(store.purge(NOW + 1000), 1);
        assert!(store.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
    async fn concurrent_redemptions_of_one_token_get_one_successor() {
        let store = Arc::new(RevocationStore::memory());
        let barrier = Arc::new(tokio::sync::Barrier::new(8));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (store, barrier) = (store.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    minted(redeem(&store, "r1", NOW).await)
                })
            })
            .collect();
        let mut successors = Vec::new();
        for task in tasks {
            successors.push(task.await.unwrap());
        }
        assert!(successors.iter().all(|s| *s == successors[0]));
    }

    #[test]
    fn pair_debug_shows_no_token() {
        let text = format!("{:?}", pair(7));
        assert!(
            !text.contains("access-7") && !text.contains("refresh-7"),
            "{text}"
        );
        assert!(text.contains("<redacted>"));
    }
}
